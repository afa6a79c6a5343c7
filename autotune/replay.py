"""Replaying tuners over a fixed set of measurements: compare searches offline, without noise.

A :class:`Landscape` is what was measured of one task (config -> result). A
replayed run (:func:`replay`) restricts the tuner to the landscape's configs
(``candidates``: it may only propose those) and answers each proposal with
the recorded result instead of measuring. Many seeds then cost seconds, and
every tuner sees exactly the same costs.

What a replay shows is the search over *the measured set*, not over the whole
space: when the set is a sample of a large space, each tuner picks among the
sampled configs only (the model tuner ranks all of them instead of annealing),
so the numbers say how quickly a search finds the best of that set.

    >>> landscape = Landscape.from_results(results)                       # doctest: +SKIP
    >>> costs = [r.cost for r in replay(task, landscape, "xgb", seed=0, trials=64)]   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .measure import MeasureResult
from .records import config_key


@dataclass
class Landscape:
    """The measured results of one task's configs, by config."""

    results: dict[str, MeasureResult] = field(default_factory=dict)

    @classmethod
    def from_results(cls, results: Iterable[MeasureResult]) -> Landscape:
        """The landscape of ``results`` (the first result of a config wins)."""
        landscape = cls()
        for r in results:
            landscape.results.setdefault(config_key(r.config), r)
        return landscape

    def configs(self) -> list[dict]:
        """The measured configs."""
        return [r.config for r in self.results.values()]

    def measure(self, configs: Iterable[dict]) -> list[MeasureResult]:
        """The recorded results of ``configs`` (KeyError for a config that was not measured)."""
        return [replace(self.results[config_key(c)], config=dict(c)) for c in configs]

    def __len__(self) -> int:
        return len(self.results)


def replay(task, landscape: Landscape, tuner: str, *, seed: int = 0, trials: int = 64,
           batch_size: int = 8, transfer_from: Sequence[Any] = (), **options) -> list[MeasureResult]:
    """The results of tuning ``task`` with ``tuner`` (a name of :func:`ember.autotune.search.make_tuner`)
    for up to ``trials`` trials, each proposal answered from ``landscape``, in trial order;
    ``transfer_from`` (:class:`ember.autotune.tune.TaskResult` of other tasks) warm-starts a
    model tuner as :func:`ember.autotune.tune.tune` does."""
    from .search import make_tuner
    from .tune import warm_start

    search = make_tuner(tuner, task, seed, candidates=landscape.configs(), **options)
    warm_start(search, transfer_from)
    results: list[MeasureResult] = []
    while len(results) < trials and not search.exhausted():
        batch = landscape.measure(search.next_batch(min(batch_size, trials - len(results))))
        if not batch:
            break
        search.update(batch)
        results += batch
    return results
