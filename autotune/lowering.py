"""Lowering a task's configs once each: which kernel a config yields, and its loop features.

Many configs of a template lower to the same kernel (a block size clamped to
the panels there are, a loop order that makes no difference for an extent of
one, ...). Measuring two of them would spend a trial on nothing new, so
tuners tell configs apart by their *kernel key*: a hash of the lowered
kernel's text (:func:`ember.ir.loops.printer.print_kernel`, deterministic for
a given schedule). :class:`LoweredConfigs` lowers each config at most once and
keeps its key (``None`` when the template refuses the config) and, when asked
for, its loop features, so the model tuner's features cost no extra lowering.

    >>> lowered = LoweredConfigs(task, ConfigSpace(task.space()))   # doctest: +SKIP
    >>> lowered.key(0) == lowered.key(1)                            # doctest: +SKIP
    True
"""

from __future__ import annotations

import hashlib

import numpy as np
from ember.ir.errors import EmberError

from .space import ConfigSpace


def kernel_key(kernel) -> str:
    """A short hash of a kernel's text: equal keys, equal kernels."""
    return hashlib.sha1(str(kernel).encode()).hexdigest()[:20]


class LoweredConfigs:
    """Per config number of ``space``: its kernel key and (``loop_features=True``) its loop features.

    A task without ``lower`` (a synthetic landscape) has no kernels: each config is its own key.
    """

    def __init__(self, task, space: ConfigSpace, *, loop_features: bool = False):
        self.task, self.space = task, space
        self.loop_features = loop_features
        self.lowers = callable(getattr(task, "lower", None))
        self._keys: dict[int, str | None] = {}
        self._features: dict[int, np.ndarray | None] = {}

    def key(self, index: int) -> str | None:
        """The kernel key of config ``index``; None when the template refuses the config."""
        if index not in self._keys:
            self._lower(index)
        return self._keys[index]

    def features(self, index: int) -> np.ndarray | None:
        """The loop features of config ``index`` (None when it cannot be lowered)."""
        if index not in self._features:
            self._lower(index, features=True)
        return self._features[index]

    def _lower(self, index: int, features: bool = False) -> None:
        from .features import loop_features

        if not self.lowers:
            self._keys[index] = f"config {index}"
            return
        features = features or self.loop_features
        try:
            kernel = self.task.lower(self.space.config(index))
        except (EmberError, ValueError):  # the template refuses the config
            self._keys[index] = None
            if features:
                self._features[index] = None
            return
        self._keys[index] = kernel_key(kernel)
        if features:
            self._features[index] = loop_features(kernel)
