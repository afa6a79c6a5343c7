"""The confirm phase inside the model: time each task's best configs where they will run.

A kernel timed alone, even with its weights flushed from the caches, runs in
other conditions than inside its model: there its input was just written by
the previous kernel (by other threads, into other caches), its output lands
in memory another kernel used, and every kernel of the model competes for the
same caches. A config can win alone and lose in the model: on ResNet-50 at
2 threads, a Winograd product's config that was 6% faster alone was 7% slower
in the model, and a tuning confirmed kernel by kernel ran no faster than the
defaults end to end (see docs/tuning.md).

So this phase measures the candidates (:func:`~ember.autotune.confirm.candidates`:
each task's default and its ``top`` fastest search configs) in the model
itself. Variant ``v`` of the model is compiled with every task's ``v``-th
candidate (its default when it has fewer; a task not being confirmed keeps
its applied config), as a profiling build; the variants are then run in rounds, in a
carryover-balanced order that changes each round, each run after a short pause and a warm-up call. A
task's figure for a round is the time its kernels took in that variant's
profile, per kernel; its confirmed cost is the median over rounds, and
:func:`~ember.autotune.confirm.choose` picks as the kernel phase does (the
default unless a candidate beats it by the margin).

Every task is confirmed at once, so ``top + 1`` builds of the model cover them
all (ResNet-50: 5 builds, 30 s, and 30 rounds, 40 s). A kernel's time also
depends a little on its neighbours' configs, which change between variants
too; the rounds' medians average over that. The variants are alive together:
memory for ``top + 1`` copies of the model's packed weights.

>>> phases = confirm_in_model(graph, target, tasks, ConfirmOptions())   # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ember.runtime.round_order import round_order

from .confirm import ConfirmOptions, ConfirmPhase, candidates, choose
from .measure import MeasureResult
from .task import Task, workload_key, workload_of

PAUSE_S = 0.05  # between two variants' runs: the previous one's spinning threads go idle
CALLS = 2  # timed calls per variant and round (after one untimed call)


@dataclass
class ModelTask:
    """A task of the model: its search results and, when it is not to be confirmed, the config
    every variant gives it."""

    task: Task
    results: list[MeasureResult]
    applied: dict | None = None  # None: its default
    confirm: bool = True  # False: held at ``applied`` in every variant


def confirm_in_model(graph, target, tasks: Sequence[ModelTask], options: ConfirmOptions, *,
                     num_threads: int | None = None,
                     progress: Callable[[int, int], None] | None = None) -> dict[str, ConfirmPhase]:
    """Confirm the tasks of ``tasks`` marked ``confirm`` inside ``graph`` (the optimized graph the
    tasks were extracted from) compiled for ``target``: their phases by task key (a task with
    fewer than two candidates has none). ``progress(done, total)`` is called after each round."""
    from ember.runtime.compiled import CompiledModule

    choices = {workload_key(t.task.workload): _choices(t, options.top) for t in tasks}
    confirming = [t for t in tasks if t.confirm and len(choices[workload_key(t.task.workload)]) > 1]
    if not confirming:
        return {}
    variants = max(len(choices[workload_key(t.task.workload)]) for t in confirming)

    def configs_of(variant: int) -> Callable:
        def configs(node):
            options_ = choices.get(workload_key(workload_of(node)))
            if not options_:
                return None
            return options_[variant] if variant < len(options_) else options_[0]  # the default (or applied)
        return configs

    modules = [CompiledModule(graph, target, profile=True, num_threads=num_threads, configs=configs_of(v))
               for v in range(variants)]
    feeds = modules[0].random_feeds()
    figures = _time_variants(modules, feeds, options.model_rounds, progress)

    phases = {}
    for t in confirming:
        key = workload_key(t.task.workload)
        results = [MeasureResult(config, [seconds / t.task.weight for seconds in figures[v][key]])
                   for v, config in enumerate(choices[key])]
        phases[t.task.key] = ConfirmPhase(results, choose(results, t.task.defaults(), options.margin),
                                          len(t.results), where="model")
    return phases


def _choices(t: ModelTask, top: int) -> list[dict]:
    """The configs variant 0, 1, ... give ``t``: its candidates (default first) when it is confirmed,
    else only its applied config."""
    if not t.confirm:
        return [t.applied or t.task.defaults()]
    return candidates(t.results, t.task.defaults(), top)


def _time_variants(modules, feeds, rounds: int,
                   progress: Callable[[int, int], None] | None) -> list[dict[str, list[float]]]:
    """Per variant, per task key: the seconds its kernels took in each round (per call)."""
    figures: list[dict[str, list[float]]] = [{} for _ in modules]
    for module in modules:
        module.run(feeds)  # first calls: page faults, the thread pool started
    # the variants compile one graph: the same kernel calls, in the same order
    keys = [workload_key(workload_of(node)) for node, _ in modules[0].kernel_seconds()]
    for round_ in range(rounds):
        for v in round_order(len(modules), round_):
            module = modules[v]
            time.sleep(PAUSE_S)
            module.run(feeds)
            module.kernel_seconds()  # reset
            for _ in range(CALLS):
                module.run(feeds)
            per_task: dict[str, float] = {}
            for key, (_, seconds) in zip(keys, module.kernel_seconds()):
                per_task[key] = per_task.get(key, 0.0) + seconds / CALLS
            for key, seconds in per_task.items():
                figures[v].setdefault(key, []).append(seconds)
        if progress is not None:
            progress(round_ + 1, rounds)
    return figures


__all__ = ["ModelTask", "confirm_in_model"]
