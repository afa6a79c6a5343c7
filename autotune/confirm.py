"""The confirm phase: measure a task's best configs again, side by side, before trusting one.

The fastest of many noisy measurements is biased. Among dozens of configs
timed once each on a busy machine, the one that looks fastest is often one
that happened to be timed in a quiet moment, not one that is faster (the
winner's curse). So after the search, :func:`confirm` takes the ``top``
fastest distinct configs and the default config and measures them again,
interleaved: ``rounds`` rounds, each timing every candidate once (in a
carryover-balanced order that changes each round) with ``repeat_factor``
times the repeats of a search trial, so that a change in the machine's load hits every candidate
alike. A candidate's confirmed cost is the median of its round figures. The
fastest candidate is chosen only if the default takes at least ``margin``
longer; otherwise the default is.

The phase is written to the records as one line per candidate, all in one
append (see :mod:`ember.autotune.records`); :func:`latest_confirmation` reads
the last phase back, so a resumed run does not repeat it.

>>> phase = confirm(task, results, measurer.measure, ConfirmOptions(top=4))   # doctest: +SKIP
>>> phase.chosen.config                                                        # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from ember.runtime.round_order import round_order

from .measure import MeasureOptions, MeasureResult
from .records import Confirmation, Record, config_key


WHERE = ("model", "kernel")  # where the confirm phase measures


@dataclass(frozen=True)
class ConfirmOptions:
    """How a task's search result is confirmed (see the module docstring)."""

    top: int = 4  # the fastest distinct configs re-measured, besides the default
    rounds: int = 5  # each candidate is timed once per round
    margin: float = 0.03  # a config replaces the default only when the default is this much slower
    repeat_factor: int = 2  # times the repeats (and minimum measured time) of a search trial
    where: str = "model"  # "model": every task at once inside the model (.model_confirm); "kernel": alone
    model_rounds: int = 30  # rounds of the phase inside the model (each runs every variant once)

    def measure_options(self, search: MeasureOptions) -> MeasureOptions:
        """The measurement options of a confirm round, from those of the search."""
        return replace(search, repeats=search.repeats * self.repeat_factor,
                       min_total_s=search.min_total_s * self.repeat_factor)


def confirm_options(confirm: int | ConfirmOptions | None) -> ConfirmOptions | None:
    """``confirm`` as options: a number is ``top`` (0 or ``None`` turns the phase off)."""
    if isinstance(confirm, ConfirmOptions):
        if confirm.where not in WHERE:
            from ember.ir.errors import EmberError

            raise EmberError(f"confirm where must be one of {', '.join(WHERE)}, got {confirm.where!r}")
        rounds = confirm.model_rounds if confirm.where == "model" else confirm.rounds
        return confirm if confirm.top > 0 and rounds > 0 else None
    if not confirm:
        return None
    if isinstance(confirm, bool) or not isinstance(confirm, int) or confirm < 0:
        from ember.ir.errors import EmberError

        raise EmberError(f"confirm is the number of configs to re-measure (0 turns it off), got {confirm!r}")
    return ConfirmOptions(top=confirm)


@dataclass
class ConfirmPhase:
    """The outcome of a confirm phase: one result per candidate (``costs`` are its round
    figures), the chosen one (``None`` when every candidate failed), how many search
    trials of the task it followed, and where it measured (``"kernel"``: alone, ``"model"``:
    inside the model, :mod:`.model_confirm`)."""

    results: list[MeasureResult]
    chosen: MeasureResult | None
    trials: int
    where: str = "kernel"

    def cost_of(self, config: dict) -> float | None:
        """The confirmed seconds per run of ``config``, ``None`` when it was not a candidate."""
        key = config_key(config)
        return next((r.cost for r in self.results if config_key(r.config) == key), None)


def candidates(results: Iterable[MeasureResult], default: dict, top: int) -> list[dict]:
    """The default config then the ``top`` fastest other successful configs of ``results``,
    each once (the default comes first so that it wins a tie)."""
    chosen = {config_key(default): default}
    for r in sorted((r for r in results if r.ok), key=lambda r: r.cost):
        if len(chosen) > top:
            break
        chosen.setdefault(config_key(r.config), r.config)
    return list(chosen.values())


def measure_interleaved(measure: Callable[[list[dict]], list[MeasureResult]], configs: list[dict],
                        rounds: int) -> list[MeasureResult]:
    """Time every config of ``configs`` once per round for ``rounds`` rounds (one call of
    ``measure`` per round, in the order of :func:`~ember.runtime.round_order.round_order`);
    a result per config whose ``costs`` are its round figures. A config that fails in a round is dropped from the
    later rounds and keeps that error."""
    figures: list[list[float]] = [[] for _ in configs]
    errors: dict[int, str] = {}
    for round_ in range(rounds):
        order = [i for i in round_order(len(configs), round_) if i not in errors]
        if not order:
            break
        for i, result in zip(order, measure([configs[i] for i in order])):
            if result.ok:
                figures[i].append(result.cost)
            else:
                errors[i] = result.error or "no timings"
    return [MeasureResult(c, None, errors[i]) if i in errors else MeasureResult(c, figures[i])
            for i, c in enumerate(configs)]


def choose(results: list[MeasureResult], default: dict, margin: float) -> MeasureResult | None:
    """The fastest successful result of ``results``, unless the default's is within ``margin``
    of it (then the default's); ``None`` when none succeeded."""
    ok = [r for r in results if r.ok]
    if not ok:
        return None
    fastest = min(ok, key=lambda r: r.cost)
    base = next((r for r in ok if config_key(r.config) == config_key(default)), None)
    if base is None or base.cost >= fastest.cost * (1 + margin):
        return fastest
    return base


def confirm(task, results: list[MeasureResult], measure: Callable[[list[dict]], list[MeasureResult]],
            options: ConfirmOptions) -> ConfirmPhase | None:
    """Confirm the search ``results`` of ``task`` with ``measure`` (e.g. a
    :class:`~ember.autotune.measure.Measurer`'s, made with :meth:`ConfirmOptions.measure_options`);
    ``None`` when there is nothing to choose between (fewer than two candidates)."""
    configs = candidates(results, task.defaults(), options.top)
    if len(configs) < 2:
        return None
    confirmed = measure_interleaved(measure, configs, options.rounds)
    return ConfirmPhase(confirmed, choose(confirmed, task.defaults(), options.margin), len(results))


def phase_records(task, phase: ConfirmPhase) -> list[Record]:
    """The records lines of ``phase``: one per candidate, the chosen one marked."""
    chosen = config_key(phase.chosen.config) if phase.chosen is not None else None
    return [Record(task.workload, task.target, r.config, list(r.costs or []), r.error,
                   confirm=Confirmation(phase.trials, config_key(r.config) == chosen, phase.where))
            for r in phase.results]


def latest_confirmation(task, records: Iterable[Record]) -> ConfirmPhase | None:
    """The last confirm phase of ``task`` in ``records`` (file order), if any. A phase is a run
    of consecutive confirm lines of the task, following the same number of trials."""
    phases: list[list[Record]] = []
    continues = False  # whether the previous line was a confirm line of this task
    for r in records:
        mine = r.confirm is not None and r.target == task.target and r.key == task.key
        if mine and not (continues and r.confirm.trials == phases[-1][0].confirm.trials
                         and all(config_key(r.config) != config_key(p.config) for p in phases[-1])):
            phases.append([])
        if mine:
            phases[-1].append(r)
        continues = mine
    if not phases:
        return None
    lines = phases[-1]
    results = [MeasureResult(r.config, list(r.cost_s) or None, r.error) for r in lines]
    chosen = next((res for res, r in zip(results, lines) if r.confirm.chosen), None)
    return ConfirmPhase(results, chosen, lines[0].confirm.trials, lines[0].confirm.where)


__all__ = ["ConfirmOptions", "ConfirmPhase", "candidates", "choose", "confirm", "confirm_options",
           "latest_confirmation", "measure_interleaved", "phase_records"]
