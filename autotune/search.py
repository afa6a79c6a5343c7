"""Search strategies over a task's config space: which candidates to measure next.

Every tuner follows one protocol (the driver, :func:`ember.autotune.tune.tune_task`,
alternates the two calls)::

    tuner = TUNERS["xgb"](task, seed=0)
    while not tuner.exhausted():
        configs = tuner.next_batch(8)        # never a config proposed (or reported) before; maybe fewer
        tuner.update(measure(configs))       # MeasureResults, failed trials included

* :class:`RandomTuner`: uniform samples without repetition.
* :class:`GridTuner`: every config in order (the last knob varies fastest).
* :class:`BeamTuner`: greedy beam search that measures every neighbour of its
  ``beam`` best configs (tinygrad's search: a strong baseline), restarting from a
  random config when a round brings no improvement.
* :class:`ModelTuner`: autoTVM's: an XGBoost cost model, refitted after every
  batch, guides simulated annealing from the best measured configs; the batch
  is diverse unmeasured configs with the best predictions, mixed ε-greedily
  (ε decaying) with random ones.

All tuners start by measuring the template's default config (``include_default``),
and remember every config reported to :meth:`Tuner.update` (records of an
earlier run, say), so that nothing is measured twice; configs lowering to a
kernel proposed before count as that kernel (:mod:`ember.autotune.lowering`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .cost_model import OBJECTIVES, make_cost_model
from .features import Featurizer
from .lowering import LoweredConfigs
from .space import Config, ConfigSpace


class Tuner:
    """Base class: the space, the configs proposed and measured so far, the best one.

    Subclasses implement :meth:`_propose` (config numbers not yet proposed) and may
    extend :meth:`update`. Configs are told apart by the kernel they lower to
    (:class:`LoweredConfigs`): a config whose kernel was proposed already, or that the
    template refuses, is never proposed (it would spend a trial on nothing new).
    ``candidates`` (configs) restricts the search to those, e.g. to replay a fixed set of
    measurements (:mod:`ember.autotune.replay`).
    """

    def __init__(self, task, seed: int = 0, *, include_default: bool = True, candidates: Iterable[Config] | None = None):
        self.task = task
        self.space = ConfigSpace(task.space())
        self.rng = np.random.default_rng(seed)
        self.lowered = LoweredConfigs(task, self.space)
        self.proposed: set[int] = set()
        self.costs: dict[int, float] = {}  # config number -> measured cost (inf when failed)
        self.best_cost = math.inf
        self.best_config: Config | None = None
        self.trials = 0
        self.best_trial = 0  # the trial (1-based) that found the best config
        self.duplicates = 0  # configs skipped because their kernel was proposed already
        self._kernels: dict[str, int] = {}  # kernel key -> the config proposed for it
        self._include_default = include_default
        self.candidates: list[int] | None = None
        if candidates is not None:
            self.candidates = sorted({self.space.index(c) for c in candidates if c in self.space})
        self._allowed = None if self.candidates is None else set(self.candidates)

    def next_batch(self, n: int) -> list[Config]:
        """Up to ``n`` configs never proposed before, each of a kernel not proposed before (fewer when
        the tuner is done, or wants these measured before it proposes more)."""
        picks: list[int] = []
        if n <= 0:
            return []
        if self._include_default and not self.proposed:
            default = self._default_index()
            if default is not None and self._admit(default):
                picks.append(default)
        while len(picks) < n and not self.exhausted():
            fresh = [i for i in dict.fromkeys(self._propose(n - len(picks))) if i not in self.proposed]
            if not fresh:
                break
            picks += [i for i in fresh if self._admit(i)]
        return [self.space.config(i) for i in picks[:n]]

    def _admit(self, index: int) -> bool:
        """Mark config ``index`` proposed; whether it is worth measuring (allowed, lowers, new kernel)."""
        self.proposed.add(index)
        if self._allowed is not None and index not in self._allowed:
            return False
        key = self.lowered.key(index)
        if key is None:
            return False
        if key in self._kernels:
            self.duplicates += 1
            return False
        self._kernels[key] = index
        return True

    def update(self, results: Iterable[Any]) -> None:
        """Take measured results (objects with ``config`` and ``cost``; inf cost = failed)."""
        for result in results:
            if result.config not in self.space:
                continue  # a record of another space (the template changed): nothing to learn
            index = self.space.index(result.config)
            if index not in self.proposed:  # measured elsewhere (records of an earlier run)
                self._admit(index)
            self.costs[index] = float(result.cost)
            self.trials += 1
            if result.cost < self.best_cost:
                self.best_cost, self.best_config, self.best_trial = float(result.cost), dict(result.config), self.trials

    def exhausted(self) -> bool:
        """Whether the tuner has nothing left to propose."""
        if self._allowed is not None:
            return self._allowed <= self.proposed
        return len(self.proposed) >= self.space.size

    @property
    def trials_since_improvement(self) -> int:
        """Measured trials since the best config was found (for early stopping)."""
        return self.trials - self.best_trial

    def _propose(self, n: int) -> list[int]:
        raise NotImplementedError

    def _default_index(self) -> int | None:
        defaults = self.task.defaults()
        return self.space.index(defaults) if defaults in self.space else None

    def _random(self, n: int, exclude: Iterable[int] = ()) -> list[int]:
        unavailable = self.proposed | set(exclude)
        if self.candidates is None:
            return self.space.random_unseen(self.rng, unavailable, n)
        left = [i for i in self.candidates if i not in unavailable]
        return [left[int(j)] for j in self.rng.choice(len(left), size=min(n, len(left)), replace=False)]

    def _best_measured(self, k: int, among: Iterable[int] | None = None) -> list[int]:
        pool = self.costs if among is None else {i: self.costs[i] for i in among if i in self.costs}
        ok = [i for i, c in pool.items() if math.isfinite(c)]
        return sorted(ok, key=lambda i: pool[i])[:k]


class RandomTuner(Tuner):
    """Uniformly random configs, each at most once."""

    def _propose(self, n: int) -> list[int]:
        return self._random(n)


class GridTuner(Tuner):
    """Every config in turn, in the space's order (the last knob varies fastest)."""

    def __init__(self, task, seed: int = 0, **options):
        super().__init__(task, seed, **options)
        self._cursor = 0

    def _propose(self, n: int) -> list[int]:
        picks = []
        while len(picks) < n and self._cursor < self.space.size:
            if self._cursor not in self.proposed:
                picks.append(self._cursor)
            self._cursor += 1
        return picks


class BeamTuner(Tuner):
    """Greedy beam search: each round measures every unmeasured neighbour (one knob changed) of
    the ``beam`` best configs of the current climb; the climb starts at the default config and
    restarts from a random one when a round does not improve on its best."""

    def __init__(self, task, seed: int = 0, *, beam: int = 4, **options):
        super().__init__(task, seed, **options)
        self.beam = beam
        self._queue: list[int] = []
        self._climb: set[int] = set()  # configs of the current climb
        self._climb_best = math.inf

    def _propose(self, n: int) -> list[int]:
        picks: list[int] = []
        while len(picks) < n and (self._queue or self._next_round(taken=set(picks))):
            index = self._queue.pop()
            if index not in self.proposed and index not in picks:
                picks.append(index)
        return picks

    def _next_round(self, taken: set[int]) -> bool:
        """Queue the neighbours of the beam (not proposed, not ``taken`` for the batch being built);
        False when nothing is left to propose."""
        unavailable = self.proposed | taken
        if len(unavailable) >= self.space.size:
            return False
        best = self._best_measured(self.beam, among=self._climb)
        best_cost = self.costs[best[0]] if best else math.inf
        if not self._climb:
            start = self._default_index() if self._include_default else None
            self._climb_from([start] if start is not None else self._random(1, taken), unavailable)
        elif best_cost >= self._climb_best or not self._queue_neighbors(best, unavailable):
            self._climb_from(self._random(1, taken), unavailable)  # no progress: climb again elsewhere
        else:
            self._climb_best = best_cost
        return bool(self._queue)

    def _climb_from(self, start: list[int], unavailable: set[int]) -> None:
        self._climb, self._climb_best = set(start), math.inf
        self._queue.extend(i for i in start if i not in unavailable)
        self._queue_neighbors(start, unavailable)

    def _queue_neighbors(self, beam: list[int], unavailable: set[int]) -> bool:
        """Queue the available neighbours of ``beam`` in random order; False when there are none."""
        frontier = sorted({j for i in beam for j in self.space.neighbors(i)} - unavailable)
        self.rng.shuffle(frontier)
        self._queue.extend(frontier)
        self._climb.update(frontier)
        return bool(frontier)


class ModelTuner(Tuner):
    """autoTVM's model-guided search: XGBoost (``model`` "xgb-reg", "xgb-log" or "xgb-rank") over
    ``features`` ("loop": of the lowered kernel, "knob": of the config) predicts which unmeasured
    configs are fastest.

    Until ``warmup`` trials have succeeded, batches are random configs spread over the space
    (each next one the farthest, in knobs changed, from those already picked), and a batch
    stops at the successes still missing, so the first fit guides the very next one. Then a batch
    of ``n`` is ``n·(1-ε)`` configs with the best predictions plus ``n·ε`` spread random ones;
    ε starts at ``epsilon`` and halves every ``epsilon_half_life`` trials down to
    ``epsilon_min``. The predicted best are taken so that each differs from the batch's
    earlier picks in at least ``diversity`` knobs, while such configs remain among the
    ``3n`` best (a batch of near-copies would measure one guess ``n`` times). Configs the
    template refuses (lowering raises) have no features and are never proposed; failed
    trials are learnt as the slowest. Candidates are scored by simulated annealing
    (``sa_population`` walkers, half started at the best measured configs, half at random
    ones; ``sa_steps`` one-knob moves each, temperature falling linearly to zero) together with
    every one-knob neighbour of the ``local_search`` best measured configs, or
    exhaustively when the space (or the ``candidates``) has at most ``exhaustive_limit``
    configs. ``transfer`` adds measurements of other tasks to the training set: (features,
    costs) pairs (loop features only: knob features differ per task).
    """

    def __init__(self, task, seed: int = 0, *, model: str = "xgb-reg", features: str = "loop",
                 epsilon: float = 0.25, epsilon_min: float = 0.05, epsilon_half_life: float = 48,
                 warmup: int = 8, diversity: int = 2, sa_population: int = 16, sa_steps: int = 20,
                 local_search: int = 2, exhaustive_limit: int = 4096,
                 transfer: Sequence[tuple[np.ndarray, np.ndarray]] = (), **options):
        super().__init__(task, seed, **options)
        self.model = make_cost_model(model, seed)
        self.features = Featurizer(task, self.space, features, lowered=self.lowered)
        self.epsilon, self.epsilon_min, self.epsilon_half_life = epsilon, epsilon_min, epsilon_half_life
        self.warmup, self.diversity = warmup, diversity
        self.sa_population, self.sa_steps, self.exhaustive_limit = sa_population, sa_steps, exhaustive_limit
        self.local_search = local_search
        self.transfer: list[tuple[np.ndarray, np.ndarray]] = []
        self.warm_start(transfer)

    def warm_start(self, transfer: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        """Add other tasks' (loop features, costs) to the training set and refit: the model guides
        the search from the first batch on."""
        transfer = [(x, c) for x, c in transfer if len(c)]
        if not transfer:
            return
        if self.features.kind != "loop":
            raise ValueError("transfer learning needs loop features (knob features differ per task)")
        self.transfer += transfer
        self._fit(*self._measured())

    @property
    def current_epsilon(self) -> float:
        """The share of random configs in the next batch."""
        return max(self.epsilon_min, self.epsilon * 0.5 ** (self.trials / self.epsilon_half_life))

    # ------------------------------------------------------------ learning
    def update(self, results: Iterable[Any]) -> None:
        super().update(results)
        x, costs = self._measured()
        if self.transfer or np.isfinite(costs).sum() >= self._fit_threshold():
            self._fit(x, costs)

    def _measured(self) -> tuple[np.ndarray, np.ndarray]:
        """Features and costs of this task's measured configs (those with features)."""
        measured = list(self.costs)
        x, valid = self.features(measured)
        return x[valid], np.array([self.costs[i] for i in measured])[valid]

    def _fit(self, x: np.ndarray, costs: np.ndarray) -> None:
        """Refit the model on this task's measurements (group 0) and the transferred ones."""
        groups = np.zeros(len(costs), dtype=np.int64)
        for g, (tx, tc) in enumerate(self.transfer, start=1):
            x, costs = np.vstack([x, tx]), np.concatenate([costs, tc])
            groups = np.concatenate([groups, np.full(len(tc), g)])
        self.model.fit(x, costs, groups)

    def _predict(self, indices: list[int]) -> np.ndarray:
        """Predicted scores of configs (-inf for those that cannot be lowered)."""
        x, valid = self.features(indices)
        scores = self.model.predict(x) if len(indices) else np.zeros(0)
        return np.where(valid, scores, -np.inf)

    # ------------------------------------------------------------ proposing
    def next_batch(self, n: int) -> list[Config]:
        """As :meth:`Tuner.next_batch`, but a warm-up batch stops at the trials the model still needs:
        its first fit then guides the very next batch, whatever the batch size."""
        if not self.model.trained:
            n = min(n, max(self._fit_threshold() - self._successes(), 1))
        return super().next_batch(n)

    def _fit_threshold(self) -> int:
        """Successful trials of this task before the first fit (without transfer)."""
        return min(self.warmup, self.space.size // 2 or 1)

    def _successes(self) -> int:
        """Successful trials the model can learn from (counted as :meth:`update` counts them)."""
        return int(np.isfinite(self._measured()[1]).sum())

    def _propose(self, n: int) -> list[int]:
        if not self.model.trained:
            return self._random_valid(n)
        n_random = round(self.current_epsilon * n)
        picks = self._best_predicted(n - n_random)
        return picks + self._random_valid(n - len(picks), exclude=picks)

    def _random_valid(self, n: int, exclude: Sequence[int] = ()) -> list[int]:
        """``n`` random configs that lower (it costs their features, which are needed anyway), spread
        out: drawn from a pool of ``4n``, each next one the farthest from the picks so far; topped up
        with unchecked ones when the draws find too few."""
        pool = [i for i in self._random(4 * n, exclude=exclude) if self.features.one(i) is not None]
        measured = [self.space.digits(self.space.config(i)) for i in self.costs]
        picks = _spread(self.space, pool, n, measured)
        return picks + self._random(n - len(picks), exclude=[*exclude, *picks])

    def _best_predicted(self, k: int) -> list[int]:
        if self.candidates is not None and len(self.candidates) <= self.exhaustive_limit:
            candidates = [i for i in self.candidates if i not in self.proposed]
        elif self.space.size <= self.exhaustive_limit:
            candidates = [i for i in range(self.space.size) if i not in self.proposed]
        else:
            candidates = None
        if candidates is not None:
            found = dict(zip(candidates, self._predict(candidates)))
        else:
            found = self._anneal()
        ranked = sorted((i for i, s in found.items() if s > -np.inf), key=lambda i: -found[i])
        return _diverse_top(self.space, ranked, k, self.diversity)

    def _anneal(self) -> dict[int, float]:
        """Simulated annealing over predictions, plus every one-knob neighbour of the ``local_search``
        best measured configs: every unproposed config it scored, with its score."""
        starts = self._best_measured(self.sa_population // 2)
        points = starts + self._random(self.sa_population - len(starts), exclude=starts)
        scores = self._predict(points)
        finite = scores[np.isfinite(scores)]
        scale = float(finite.std()) if len(finite) > 1 and finite.std() > 0 else 1.0
        found = {i: s for i, s in zip(points, scores) if i not in self.proposed}
        near_best = [j for i in self._best_measured(self.local_search) for j in self.space.neighbors(i)
                     if j not in self.proposed and j not in found]
        found.update(zip(near_best, self._predict(near_best)))
        for step in range(self.sa_steps):
            temperature = scale * (1 - step / self.sa_steps)
            moves = [self.space.random_neighbor(i, self.rng) for i in points]
            move_scores = self._predict(moves)
            with np.errstate(invalid="ignore"):  # -inf - -inf: both configs invalid, no move
                gain = np.nan_to_num(move_scores - scores, nan=-np.inf, neginf=-np.inf)
            accept = (gain >= 0) | (self.rng.random(len(points)) < np.exp(np.minimum(gain, 0) / temperature))
            for j in np.flatnonzero(accept):
                points[j], scores[j] = moves[j], move_scores[j]
            found.update((i, s) for i, s in zip(moves, move_scores) if i not in self.proposed)
        return found


def _knobs_changed(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    return sum(x != y for x, y in zip(a, b))


def _spread(space: ConfigSpace, pool: Sequence[int], n: int, chosen: Sequence[tuple[int, ...]] = ()) -> list[int]:
    """``n`` configs of ``pool`` picked greedily, each the farthest (in knobs changed) from ``chosen``
    and the picks before it (farthest-point sampling; ties go to the earlier in ``pool``)."""
    digits = {i: space.digits(space.config(i)) for i in dict.fromkeys(pool)}
    taken = list(chosen)
    picks: list[int] = []
    while len(picks) < n and len(picks) < len(digits):
        left = [i for i in digits if i not in picks]
        best = max(left, key=lambda i: min((_knobs_changed(digits[i], t) for t in taken), default=0))
        picks.append(best)
        taken.append(digits[best])
    return picks


def _diverse_top(space: ConfigSpace, ranked: Sequence[int], k: int, diversity: int) -> list[int]:
    """The first ``k`` of ``ranked`` that each differ from the earlier picks in at least ``diversity``
    knobs, looking no further than the ``3k`` best; the best remaining fill up the rest."""
    window = list(ranked[:3 * k])
    picks: list[int] = []
    taken: list[tuple[int, ...]] = []
    for i in window:
        if len(picks) == k:
            break
        d = space.digits(space.config(i))
        if all(_knobs_changed(d, t) >= diversity for t in taken):
            picks.append(i)
            taken.append(d)
    return picks + [i for i in ranked if i not in picks][:k - len(picks)]


def transfer_set(task, results: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The (loop features, costs) of another task's measured ``results``, for ``ModelTuner(transfer=...)``:
    e.g. the tasks of a model tuned earlier in the same run. Configs that no longer lower are left out."""
    space = ConfigSpace(task.space())
    results = [r for r in results if r.config in space]
    x, valid = Featurizer(task, space, "loop")([space.index(r.config) for r in results])
    return x[valid], np.array([float(r.cost) for r in results])[valid]


TUNERS: dict[str, type[Tuner]] = {"xgb": ModelTuner, "random": RandomTuner, "grid": GridTuner, "beam": BeamTuner}


def make_tuner(name: str, task, seed: int = 0, **options) -> Tuner:
    """A tuner of :data:`TUNERS` by name; ``"xgb-rank"`` and ``"xgb-knob"`` style suffixes pick the
    model tuner's objective and features (``"xgb"`` is regression on loop features)."""
    base, _, variant = name.partition("-")
    if base not in TUNERS:
        raise ValueError(f"unknown tuner {name!r}; expected one of {sorted(TUNERS)}")
    if variant:
        if base != "xgb":
            raise ValueError(f"tuner {base!r} has no variants (got {name!r})")
        for part in variant.split("-"):
            if part in OBJECTIVES:
                options["model"] = f"xgb-{part}"
            elif part in Featurizer.KINDS:
                options["features"] = part
            else:
                raise ValueError(f"unknown variant {part!r} of tuner 'xgb' (reg, log, rank, loop, knob)")
    return TUNERS[base](task, seed, **options)
