"""The tuning driver: propose, measure, record, for every task of a model.

:func:`tune_task` alternates a tuner's proposals (:mod:`ember.autotune.search`)
with measurements (:mod:`ember.autotune.measure`), appending every measured
batch to the records file before anything else happens, so a killed run
loses at most the batch in flight. Started again on the same file, it
resumes: the task's earlier records count as trials, the tuner learns from
them, and no config is measured twice. After the search, a confirm phase
(:mod:`ember.autotune.confirm`) measures the best configs and the default
again, interleaved, and chooses the one the records apply. :func:`tune` does
this for every task of a model (:func:`extract_tasks`), with a progress bar
per task, then by default confirms every task at once inside the model
(:mod:`ember.autotune.model_confirm`) instead of each kernel alone, and returns a :class:`TuneSummary` (a table of default against
tuned time; a plot of the best GFLOP/s found against trials).

>>> summary = tune("model.onnx", records="tune.jsonl", trials_per_task=64)   # doctest: +SKIP
>>> print(summary.table())                                                    # doctest: +SKIP
>>> mod = ember.compile("model.onnx", records="tune.jsonl")                   # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any

from .confirm import ConfirmOptions, ConfirmPhase, confirm, confirm_options, latest_confirmation, phase_records
from .measure import MeasureOptions, Measurer, MeasureResult
from .records import Record, append_records, config_key, load_records
from .task import Task, extract_tasks


@dataclass
class TaskResult:
    """Everything measured for one task (earlier records first), and what came of it: the search
    trials in ``results``, and the confirm phase in force for the task, if any."""

    task: Task
    results: list[MeasureResult] = field(default_factory=list)
    resumed: int = 0  # how many of the results came from the records file
    confirmed: ConfirmPhase | None = None

    @property
    def default_s(self) -> float:
        """The default config's seconds per run: its confirm-phase median when it was confirmed,
        else its search measurement (NaN when it was not measured, inf when it failed)."""
        confirmed = self.confirmed.cost_of(self.task.defaults()) if self.confirmed else None
        if confirmed is not None:
            return confirmed
        default = config_key(self.task.defaults())
        costs = [r.cost for r in self.results if config_key(r.config) == default]
        return costs[0] if costs else math.nan

    @property
    def chosen(self) -> MeasureResult | None:
        """The result whose config the records apply: the confirm phase's choice when one was
        made, else the fastest search result."""
        if self.confirmed is not None and self.confirmed.chosen is not None:
            return self.confirmed.chosen
        return self.best

    @property
    def tuned_s(self) -> float:
        """The applied config's seconds per run (a confirm-phase median when confirmed)."""
        chosen = self.chosen
        return chosen.cost if chosen else math.inf

    @property
    def chose_default(self) -> bool:
        """Whether the records apply the default config."""
        chosen = self.chosen
        return chosen is not None and config_key(chosen.config) == config_key(self.task.defaults())

    @property
    def best(self) -> MeasureResult | None:
        """The fastest successful result, if any."""
        ok = [r for r in self.results if r.ok]
        return min(ok, key=lambda r: r.cost) if ok else None

    @property
    def best_s(self) -> float:
        """The best seconds per run (inf when every trial failed)."""
        return self.best.cost if self.best else math.inf

    @property
    def failed(self) -> int:
        """How many trials failed."""
        return sum(1 for r in self.results if not r.ok)

    def best_so_far(self) -> list[float]:
        """The best GFLOP/s found after each trial (0 until one succeeds)."""
        flops, best, curve = self.task.flops(), 0.0, []
        for r in self.results:
            if r.ok:
                best = max(best, flops / r.cost * 1e-9)
            curve.append(best)
        return curve


@dataclass
class TuneSummary:
    """The outcome of :func:`tune`: one :class:`TaskResult` per task, and the records file."""

    tasks: list[TaskResult]
    records: str | None = None

    def table(self) -> str:
        """Per task: weight, trials, failures, default and tuned milliseconds, speedup, GFLOP/s
        (a ``*`` marks the confirmed figures, ``=`` a task whose default was kept); then the weighted
        total (an estimate of the model's time in tuned kernels) and a note on the figures."""
        header = f"{'task':<40} {'weight':>6} {'trials':>6} {'failed':>6} {'default ms':>11} {'tuned ms':>9} " \
                 f"{'speedup':>7} {'GFLOP/s':>8}"
        lines = [header, "-" * len(header)]
        total_default = total_tuned = 0.0
        for t in self.tasks:
            default, tuned = t.default_s, t.tuned_s
            gflops = t.task.flops() / tuned * 1e-9 if math.isfinite(tuned) else 0.0
            speedup = default / tuned if math.isfinite(tuned) and math.isfinite(default) else math.nan
            mark = ("=" if t.chose_default else "*") if t.confirmed is not None else " "
            lines.append(f"{t.task.describe()[:39]:<39}{mark} {t.task.weight:>6} {len(t.results):>6} {t.failed:>6} "
                         f"{_ms(default):>11} {_ms(tuned):>9} {_ratio(speedup):>7} {gflops:>8.2f}")
            if math.isfinite(default) and math.isfinite(tuned):
                total_default += t.task.weight * default
                total_tuned += t.task.weight * tuned
        if total_default:
            lines.append(f"{'total (weighted)':<40} {'':>6} {'':>6} {'':>6} {_ms(total_default):>11} "
                         f"{_ms(total_tuned):>9} {_ratio(total_default / total_tuned):>7}")
        wheres = {t.confirmed.where for t in self.tasks if t.confirmed is not None}
        if wheres:
            inside = ", inside the model, per kernel" if "model" in wheres else ""
            lines.append("* default and tuned ms are medians of the confirm phase (the best configs and the default "
                         f"re-measured, interleaved{inside}); = the default was kept (nothing beat it by the margin)")
        if any(t.confirmed is None for t in self.tasks):
            lines.append("tasks without a mark: tuned ms is the fastest single search measurement (not confirmed)")
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike) -> None:
        """Save a plot of the best GFLOP/s so far against trials, one line per task (matplotlib)."""
        try:
            import matplotlib
        except ImportError:
            from ember.ir.errors import EmberError

            raise EmberError("plotting needs matplotlib: pip install 'ember[plot]'") from None
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 5))
        for t in self.tasks:
            curve = t.best_so_far()
            ax.plot(range(1, len(curve) + 1), curve, label=t.task.describe()[:48])
        ax.set_xlabel("trials")
        ax.set_ylabel("best GFLOP/s so far")
        ax.set_title("tuning progress per task")
        if self.tasks:
            ax.legend(fontsize="small")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else ("failed" if math.isinf(seconds) else f"{seconds * 1e3:.4f}")


def _ratio(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:.2f}x"


def make_tuner(tuner: Any, task: Task, seed: int = 0):
    """A tuner for ``task``: a name of :data:`ember.autotune.search.TUNERS` (``"xgb"``, ``"random"``,
    ``"grid"``, ``"beam"``, ``"xgb-rank"``, ...), a tuner class, or a tuner object (used as is)."""
    if isinstance(tuner, str):
        from .search import make_tuner as by_name

        try:
            return by_name(tuner, task, seed)
        except ValueError as err:
            from ember.ir.errors import EmberError

            raise EmberError(str(err)) from None
    if isinstance(tuner, type):
        return tuner(task, seed=seed)
    return tuner


def tune_task(task: Task, *, trials: int, tuner: Any = "xgb", records: str | os.PathLike | None = None,
              executor: Executor | None = None, batch_size: int = 8, early_stopping: int | None = None,
              seed: int = 0, progress: bool = True, jobs: int = 1, options: MeasureOptions | None = None,
              description: str | None = None, confirm: int | ConfirmOptions | None = 4,
              transfer_from: Sequence[TaskResult] = ()) -> list[MeasureResult]:
    """Tune ``task`` for up to ``trials`` measured configs; returns every search result of the
    task, the ones found in ``records`` (a resumed run) first.

    Each batch of ``batch_size`` proposals of ``tuner`` (see :func:`make_tuner`) is
    measured on ``executor`` (``jobs`` parallel calls, see :class:`Measurer`), then
    appended to ``records``. The default config is measured first. Stops early after
    ``early_stopping`` trials without improvement, or when the tuner runs out. Then
    the ``confirm`` fastest configs and the default are measured again, interleaved,
    and the records apply the one chosen (see :mod:`ember.autotune.confirm`; a
    :class:`ConfirmOptions` sets rounds and margin too, 0 skips the phase). A task
    alone has no model around it: its confirm phase times the kernel alone. ``transfer_from``
    (:class:`TaskResult` of tasks tuned before) warm-starts a model tuner on the
    measurements of those of the same op, as :func:`tune` does for a model's tasks.
    """
    confirming = confirm_options(confirm)
    if confirming is not None and confirming.where == "model":
        confirm = replace(confirming, where="kernel")
    return _tune_task(task, trials=trials, tuner=tuner, records=records, executor=executor, batch_size=batch_size,
                      early_stopping=early_stopping, seed=seed, progress=progress, jobs=jobs, options=options,
                      description=description, confirm=confirm, transfer_from=transfer_from).results


def _tune_task(task: Task, *, trials: int, tuner: Any, records, executor, batch_size: int,
               early_stopping: int | None, seed: int, progress: bool, jobs: int,
               options: MeasureOptions | None, description: str | None,
               transfer_from: Sequence[TaskResult] = (), confirm: int | ConfirmOptions | None = 4) -> TaskResult:
    from tqdm.auto import tqdm

    confirming = confirm_options(confirm)
    earlier = load_records(records) if records is not None else []
    outcome = TaskResult(task, _earlier_results(task, earlier), confirmed=latest_confirmation(task, earlier))
    outcome.resumed = len(outcome.results)
    search = make_tuner(tuner, task, seed)
    warm_start(search, transfer_from)
    if outcome.results:
        search.update(outcome.results)
    measured = {config_key(r.config) for r in outcome.results}
    default = task.defaults()
    bar = tqdm(total=trials, initial=min(outcome.resumed, trials), desc=description or task.describe(),
               unit="trial", disable=not progress, dynamic_ncols=True)
    bar.set_postfix_str(_progress_note(outcome))
    stalls = 0
    with Measurer(task, options=options, executor=executor, jobs=jobs) as measurer:
        while len(outcome.results) < trials and not search.exhausted() and not _stalled(outcome, early_stopping):
            left = trials - len(outcome.results)
            configs = [c for c in search.next_batch(min(batch_size, left)) if config_key(c) not in measured]
            if config_key(default) not in measured and all(config_key(c) != config_key(default) for c in configs):
                configs = [default, *configs][:left]  # the table compares with the default: measure it first
            if not configs:
                stalls += 1  # a tuner proposing only measured configs: give it a few chances
                if stalls > 3:
                    break
                continue
            batch = measurer.measure(configs)
            if records is not None:
                append_records(records, [Record(task.workload, task.target, r.config, list(r.costs or []), r.error)
                                         for r in batch])
            search.update(batch)
            outcome.results += batch
            measured.update(config_key(r.config) for r in batch)
            bar.update(len(batch))
            bar.set_postfix_str(_progress_note(outcome))
    if confirming is not None and confirming.where == "kernel" and not _confirmed_already(outcome):
        bar.set_postfix_str(f"confirming the best {confirming.top} and the default")
        _confirm(outcome, confirming, records=records, executor=executor, options=options)
        bar.set_postfix_str(_progress_note(outcome))
    bar.close()
    return outcome


def _confirmed_already(outcome: TaskResult, where: str = "kernel") -> bool:
    """Whether the task's latest confirm phase measured ``where`` and followed exactly the
    search trials there are now."""
    return (outcome.confirmed is not None and outcome.confirmed.where == where
            and outcome.confirmed.trials == len(outcome.results))


def _confirm(outcome: TaskResult, confirming: ConfirmOptions, *, records, executor,
             options: MeasureOptions | None) -> None:
    """Run the confirm phase of ``outcome``'s task and append it to ``records`` in one write. Each round
    is measured by one process (whatever ``jobs``), so that its candidates are timed alike, one after
    the other on one machine, rather than at once, disturbing each other."""
    measure_options = confirming.measure_options(options or MeasureOptions())
    with Measurer(outcome.task, options=measure_options, executor=executor, jobs=1) as measurer:
        phase = confirm(outcome.task, outcome.results, measurer.measure, confirming)
    if phase is None:
        return
    outcome.confirmed = phase
    if records is not None:
        append_records(records, phase_records(outcome.task, phase))


def _confirm_in_model(graph, target, outcomes: list[TaskResult], confirming: ConfirmOptions, *, records,
                      progress: bool, threads: int | None) -> None:
    """Confirm every task not yet confirmed in the model after its current search, all at once inside
    the model (:mod:`.model_confirm`), the others held at their applied configs; append the phases
    to ``records`` in one write."""
    from tqdm.auto import tqdm

    from .model_confirm import ModelTask, confirm_in_model

    pending = {o.task.key for o in outcomes if not _confirmed_already(o, "model")}
    if not pending:
        return
    tasks = [ModelTask(o.task, o.results, o.chosen.config if o.chosen is not None else None, o.task.key in pending)
             for o in outcomes]
    with tqdm(total=confirming.model_rounds, desc=f"confirming the best {confirming.top} and the default in the model",
              unit="round", disable=not progress, dynamic_ncols=True) as bar:
        phases = confirm_in_model(graph, target, tasks, confirming, num_threads=threads,
                                  progress=lambda done, total: bar.update(1))
    lines = []
    for outcome in outcomes:
        phase = phases.get(outcome.task.key)
        if phase is not None:
            outcome.confirmed = phase
            lines += phase_records(outcome.task, phase)
    if records is not None and lines:
        append_records(records, lines)


def warm_start(search: Any, earlier: Sequence[TaskResult]) -> None:
    """Train ``search``, when it is a model tuner on loop features, also on the measurements of the
    ``earlier`` tasks of its task's op (transfer learning: their kernels' features mean the same);
    other tuners are left as they are."""
    from .search import ModelTuner, transfer_set

    if not isinstance(search, ModelTuner) or search.features.kind != "loop":
        return
    search.warm_start([transfer_set(t.task, t.results) for t in earlier if learns_from(search.task, t.task) and t.results])


def learns_from(task: Task, earlier: Task) -> bool:
    """Whether a model tuner of ``task`` is warm-started on the measurements of ``earlier``
    (:func:`warm_start`): tasks of the same op."""
    return task.workload["op"] == earlier.workload["op"]


def _earlier_results(task: Task, records: list[Record]) -> list[MeasureResult]:
    """The task's search results among ``records`` (same workload and target), each config once."""
    results: dict[str, MeasureResult] = {}
    for r in records:
        if r.confirm is None and r.target == task.target and r.key == task.key:
            results.setdefault(config_key(r.config), MeasureResult(r.config, list(r.cost_s) or None, r.error))
    return list(results.values())


def _stalled(outcome: TaskResult, early_stopping: int | None) -> bool:
    """Whether the last ``early_stopping`` trials brought no improvement."""
    if not early_stopping or len(outcome.results) <= early_stopping:
        return False
    costs = [r.cost for r in outcome.results]
    return min(costs[-early_stopping:]) >= min(costs[:-early_stopping])


def _progress_note(outcome: TaskResult) -> str:
    best = outcome.best_s
    gflops = outcome.task.flops() / best * 1e-9 if math.isfinite(best) else 0.0
    return f"best {gflops:.2f} GFLOP/s, {outcome.failed} failed"


def tune(model: Any, *, records: str | os.PathLike, trials_per_task: int = 200, tuner: Any = "xgb", jobs: int = 1,
         executor: Executor | None = None, target: Any = "host", batch_size: int = 8,
         early_stopping: int | None = None, seed: int = 0, progress: bool = True,
         plot: str | os.PathLike | None = None, options: MeasureOptions | None = None, opt_level: int = 3,
         input_shapes: Any = None, input_values: Any = None, transfer: bool = True,
         confirm: int | ConfirmOptions | None = 4) -> TuneSummary:
    """Tune every tunable workload of ``model`` for ``target``, appending to ``records``
    (resuming from what it holds); see :func:`tune_task` for the options (``confirm``: how
    many of each task's best configs the confirm phase measures again with the default; by
    default after every task's search, inside the model, :mod:`.model_confirm`).
    Returns a :class:`TuneSummary`; ``plot`` also saves its plot there. With ``transfer``, a model
    tuner (on loop features) starts each task trained on the measurements of the tasks of
    the same op tuned before it.

    >>> summary = ember.tune("model.onnx", records="tune.jsonl", trials_per_task=32)   # doctest: +SKIP
    """
    from ember.codegen.target import as_target
    from ember.ir.errors import CompileError

    build_target = as_target(target)
    missing = build_target.runs_on_host()
    if missing:
        raise CompileError(f"cannot tune for {build_target.name} on this machine: it lacks {', '.join(missing)}")
    tasks = extract_tasks(model, build_target, opt_level=opt_level, input_shapes=input_shapes,
                          input_values=input_values)
    outcomes = []
    for i, task in enumerate(tasks, start=1):
        outcomes.append(_tune_task(task, trials=trials_per_task, tuner=tuner, records=records, executor=executor,
                                   batch_size=batch_size, early_stopping=early_stopping, seed=seed,
                                   progress=progress, jobs=jobs, options=options,
                                   description=f"[{i}/{len(tasks)}] {task.describe()}",
                                   transfer_from=outcomes if transfer else [], confirm=confirm))
    confirming = confirm_options(confirm)
    if confirming is not None and confirming.where == "model":
        from ember.api import optimized_graph

        graph, _ = optimized_graph(model, opt_level=opt_level, input_shapes=input_shapes, input_values=input_values,
                                   target=build_target)
        _confirm_in_model(graph, build_target, outcomes, confirming, records=records, progress=progress,
                          threads=options.threads if options is not None else None)
    summary = TuneSummary(outcomes, os.fspath(records))
    if plot is not None:
        summary.plot(plot)
    return summary


__all__ = ["ConfirmOptions", "TaskResult", "TuneSummary", "make_tuner", "learns_from", "tune", "tune_task", "warm_start"]
