"""Validating feeds against a model's declared inputs, shared by every executor.

Native code must never see a buffer of the wrong size or dtype, so every
module checks names, dtypes and shapes here before it runs anything.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ember.ir import TensorType
from ember.ir.errors import InputError


def validate_feeds(feeds: Mapping[str, Any], names: Sequence[str], types: Sequence[TensorType]) -> list[np.ndarray]:
    """The feeds as C-contiguous arrays in input order; :class:`InputError` on any mismatch."""
    if not isinstance(feeds, Mapping):
        raise InputError(f"feeds must be a dict of input name -> array, got {type(feeds).__name__}")
    missing = [n for n in names if n not in feeds]
    unknown = [n for n in feeds if n not in names]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing input(s) {', '.join(map(repr, missing))}")
        if unknown:
            parts.append(f"unknown input(s) {', '.join(map(repr, unknown))}")
        raise InputError(f"{'; '.join(parts)} (the model's inputs are {', '.join(map(repr, names))})")
    arrays = []
    for name, t in zip(names, types):
        value = feeds[name]
        array = value if isinstance(value, np.ndarray) else np.asarray(value)
        if array.dtype != t.np_dtype:
            raise InputError(f"input {name!r} has dtype {array.dtype}, expected {t.dtype} "
                             f"(convert with .astype(np.{t.dtype}))")
        if tuple(array.shape) != t.shape:
            raise InputError(f"input {name!r} has shape {tuple(array.shape)}, expected {t.shape}")
        # (np.ascontiguousarray would turn a 0-d array into shape (1,))
        arrays.append(array if array.flags.c_contiguous else np.ascontiguousarray(array))
    return arrays


def positional_feeds(args: Sequence[Any], names: Sequence[str]) -> dict[str, Any]:
    """Map positional arguments onto input names (for ``module(x, y)``)."""
    if len(args) != len(names):
        raise InputError(f"expected {len(names)} positional input(s) ({', '.join(map(repr, names))}), "
                         f"got {len(args)}")
    return dict(zip(names, args))
