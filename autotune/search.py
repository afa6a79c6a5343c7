"""Search strategies over a task's config space: which candidates to measure next.

Every tuner follows one protocol (the driver, :func:`ember.autotune.tune.tune_task`,
alternates the two calls)::

    tuner = TUNERS["xgb"](task, seed=0)
    while not tuner.exhausted():
        configs = tuner.next_batch(8)        # never a config proposed (or reported) before
        tuner.update(measure(configs))       # MeasureResults, failed trials included

* :class:`RandomTuner`: uniform samples without repetition.
* :class:`GridTuner`: every config in order (the last knob varies fastest).
* :class:`BeamTuner`: greedy beam search that measures every neighbour of its
  ``beam`` best configs (tinygrad's search: a strong baseline), restarting from a
  random config when a round brings no improvement.
* :class:`ModelTuner`: autoTVM's: an XGBoost cost model, refitted after every
  batch, guides simulated annealing from the best measured configs; the batch
  is the unmeasured configs with the best predictions, mixed ε-greedily with
  random ones.

All tuners start by measuring the template's default config (``include_default``),
and remember every config reported to :meth:`Tuner.update` (records of an
earlier run, say), so that nothing is measured twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .cost_model import make_cost_model
from .features import Featurizer
from .space import Config, ConfigSpace


class Tuner:
    """Base class: the space, the configs proposed and measured so far, the best one.

    Subclasses implement :meth:`_propose` (config numbers not yet proposed) and may
    extend :meth:`update`.
    """

    def __init__(self, task, seed: int = 0, *, include_default: bool = True):
        self.task = task
        self.space = ConfigSpace(task.space())
        self.rng = np.random.default_rng(seed)
        self.proposed: set[int] = set()
        self.costs: dict[int, float] = {}  # config number -> measured cost (inf when failed)
        self.best_cost = math.inf
        self.best_config: Config | None = None
        self.trials = 0
        self.best_trial = 0  # the trial (1-based) that found the best config
        self._include_default = include_default

    def next_batch(self, n: int) -> list[Config]:
        """Up to ``n`` configs never proposed before (fewer only when the tuner is done)."""
        picks: list[int] = []
        if n <= 0:
            return []
        if self._include_default and not self.proposed:
            default = self._default_index()
            if default is not None:
                picks.append(default)
                self.proposed.add(default)
        while len(picks) < n:
            fresh = [i for i in dict.fromkeys(self._propose(n - len(picks))) if i not in self.proposed]
            if not fresh:
                break
            self.proposed.update(fresh)
            picks += fresh
        return [self.space.config(i) for i in picks[:n]]

    def update(self, results: Iterable[Any]) -> None:
        """Take measured results (objects with ``config`` and ``cost``; inf cost = failed)."""
        for result in results:
            if result.config not in self.space:
                continue  # a record of another space (the template changed): nothing to learn
            index = self.space.index(result.config)
            self.proposed.add(index)
            self.costs[index] = float(result.cost)
            self.trials += 1
            if result.cost < self.best_cost:
                self.best_cost, self.best_config, self.best_trial = float(result.cost), dict(result.config), self.trials

    def exhausted(self) -> bool:
        """Whether the tuner has nothing left to propose."""
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
        return self.space.random_unseen(self.rng, self.proposed | set(exclude), n)

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
    """autoTVM's model-guided search: XGBoost (``model`` "xgb-reg" or "xgb-rank") over ``features``
    ("loop": of the lowered kernel, "knob": of the config) predicts which unmeasured configs are
    fastest.

    A batch of ``n`` is ``n·(1-epsilon)`` configs with the best predictions plus random ones;
    until ``warmup`` trials have succeeded the batch is random. Configs the template refuses
    (lowering raises) have no features and are never proposed, unless nothing else is left. Candidates are scored by
    simulated annealing (``sa_population`` walkers started at the best measured configs, ``sa_steps``
    one-knob moves each, temperature falling linearly to zero), or exhaustively when the space
    has at most ``exhaustive_limit`` configs. ``transfer`` adds measurements of other tasks to the
    training set: (features, costs) pairs (loop features only: knob features differ per task).
    """

    def __init__(self, task, seed: int = 0, *, model: str = "xgb-reg", features: str = "loop",
                 epsilon: float = 0.1, warmup: int = 8, sa_population: int = 16, sa_steps: int = 20,
                 exhaustive_limit: int = 1024,
                 transfer: Sequence[tuple[np.ndarray, np.ndarray]] = (), **options):
        super().__init__(task, seed, **options)
        if transfer and features != "loop":
            raise ValueError("transfer learning needs loop features (knob features differ per task)")
        self.model = make_cost_model(model, seed)
        self.features = Featurizer(task, self.space, features)
        self.epsilon, self.warmup = epsilon, warmup
        self.sa_population, self.sa_steps, self.exhaustive_limit = sa_population, sa_steps, exhaustive_limit
        self.transfer = list(transfer)
        if self.transfer:  # warm start: guided by the other tasks' measurements from the first batch
            self._fit(np.zeros((0, self.features.length)), np.zeros(0))

    # ------------------------------------------------------------ learning
    def update(self, results: Iterable[Any]) -> None:
        super().update(results)
        measured = list(self.costs)
        x, valid = self.features(measured)
        costs = np.array([self.costs[i] for i in measured])[valid]
        x = x[valid]
        if self.transfer or np.isfinite(costs).sum() >= min(self.warmup, self.space.size // 2 or 1):
            self._fit(x, costs)

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
    def _propose(self, n: int) -> list[int]:
        if not self.model.trained:
            return self._random_valid(n)
        n_random = round(self.epsilon * n)
        picks = self._best_predicted(n - n_random)
        return picks + self._random_valid(n - len(picks), exclude=picks)

    def _random_valid(self, n: int, exclude: Sequence[int] = ()) -> list[int]:
        """Random configs that lower (it costs their features, which are needed anyway); the batch is
        topped up with unchecked ones when a few rounds of draws find too few."""
        picks: list[int] = []
        for _ in range(4):
            if len(picks) >= n:
                break
            draws = self._random(2 * (n - len(picks)), exclude=[*exclude, *picks])
            _, valid = self.features(draws)
            picks += [i for i, ok in zip(draws, valid) if ok][:n - len(picks)]
        return picks + self._random(n - len(picks), exclude=[*exclude, *picks])

    def _best_predicted(self, k: int) -> list[int]:
        if self.space.size <= self.exhaustive_limit:
            candidates = [i for i in range(self.space.size) if i not in self.proposed]
            scores = self._predict(candidates)
            found = dict(zip(candidates, scores))
        else:
            found = self._anneal()
        ranked = sorted((i for i, s in found.items() if s > -np.inf), key=lambda i: -found[i])
        return ranked[:k]

    def _anneal(self) -> dict[int, float]:
        """Simulated annealing over predictions; every unproposed config it visits, with its score."""
        starts = self._best_measured(self.sa_population // 2)
        points = starts + self._random(self.sa_population - len(starts), exclude=starts)
        scores = self._predict(points)
        finite = scores[np.isfinite(scores)]
        scale = float(finite.std()) if len(finite) > 1 and finite.std() > 0 else 1.0
        found = {i: s for i, s in zip(points, scores) if i not in self.proposed}
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
            if part in ("reg", "rank"):
                options["model"] = f"xgb-{part}"
            elif part in Featurizer.KINDS:
                options["features"] = part
            else:
                raise ValueError(f"unknown variant {part!r} of tuner 'xgb' (reg, rank, loop, knob)")
    return TUNERS[base](task, seed, **options)
