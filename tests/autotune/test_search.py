"""Tuners on synthetic tasks: a known landscape of costs, no native measurement."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from ember.autotune.search import (
    TUNERS,
    BeamTuner,
    GridTuner,
    ModelTuner,
    RandomTuner,
    _diverse_top,
    make_tuner,
)
from ember.autotune.space import ConfigSpace

TILES = (1, 2, 4, 8, 16, 32, 64)
ORDER_PENALTY = {"ij": 0.5, "ji": 0.0, "kij": 1.0}


@dataclass
class Result:
    """What a tuner reads of a measurement (as :class:`ember.autotune.measure.MeasureResult`)."""

    config: dict
    cost: float


class LandscapeTask:
    """A task whose cost is a formula of its knobs, with a single optimum (tile_i 16, tile_j 8,
    order "ji", unroll on, cost 1.0) and failures where the tile is too large."""

    def __init__(self, space: dict | None = None):
        self._space = space or {"tile_i": TILES, "tile_j": TILES, "order": tuple(ORDER_PENALTY),
                                "unroll": (False, True)}

    def space(self) -> dict:
        return dict(self._space)

    def defaults(self) -> dict:
        return {k: v[0] for k, v in self._space.items()}

    def cost(self, config: dict) -> float:
        ti, tj = math.log2(config["tile_i"]), math.log2(config["tile_j"])
        if config["tile_i"] * config["tile_j"] > 1024:
            return math.inf  # "fails to build"
        return (1.0 + 0.3 * (ti - 4) ** 2 + 0.2 * (tj - 3) ** 2 + 0.1 * abs(ti - tj - 1)
                + ORDER_PENALTY[config["order"]] + (0.0 if config["unroll"] else 0.4))


def run(tuner, task, trials: int, batch: int = 8, until: float = -math.inf) -> list[Result]:
    """The driver loop: batches until ``trials`` measured, the tuner is exhausted, or a cost of
    at most ``until`` was measured."""
    results: list[Result] = []
    while len(results) < trials and not tuner.exhausted() and tuner.best_cost > until:
        configs = tuner.next_batch(min(batch, trials - len(results)))
        if not configs:
            break
        batch_results = [Result(c, task.cost(c)) for c in configs]
        tuner.update(batch_results)
        results += batch_results
    return results


def trials_to_optimum(tuner, task, budget: int) -> int:
    """Trials until the optimum (cost 1.0) is measured (``budget + 1`` if never)."""
    for n, r in enumerate(run(tuner, task, budget, until=1.0), start=1):
        if r.cost <= 1.0:
            return n
    return budget + 1


def tuner_for(name: str, task, seed: int = 0):
    """The tuner ``name``; the model tuner on knob features (a synthetic task has no loop nest)."""
    return make_tuner(name + ("-knob" if name == "xgb" else ""), task, seed=seed)


def key(config: dict) -> tuple:
    return tuple(sorted(config.items()))


TINY = {"a": (1, 2, 4), "b": ("x", "y"), "c": (False, True)}


@pytest.mark.parametrize("name", sorted(TUNERS))
def test_tuner_proposes_each_config_once_and_exhausts_a_tiny_space(name):
    task = LandscapeTask(TINY)
    task.cost = lambda config: 1.0 + config["a"] + (config["b"] == "y")  # type: ignore[method-assign]
    tuner = tuner_for(name, task, seed=1)
    seen = [key(r.config) for r in run(tuner, task, trials=100, batch=5)]
    assert len(seen) == len(set(seen)) == 12
    assert set(seen) == {key(c) for c in ConfigSpace(TINY)}
    assert tuner.exhausted() and tuner.next_batch(4) == []
    assert tuner.best_config == {"a": 1, "b": "x", "c": False} and tuner.best_cost == 2.0


def test_grid_walks_the_space_in_order_starting_at_the_default():
    task = LandscapeTask(TINY)
    tuner = GridTuner(task, include_default=False)
    assert tuner.next_batch(2) + tuner.next_batch(2) == [ConfigSpace(TINY).config(i) for i in range(4)]
    tuner = GridTuner(task)
    first = tuner.next_batch(12)
    assert first[0] == task.defaults() and [key(c) for c in first] == [key(c) for c in ConfigSpace(TINY)]


@pytest.mark.parametrize("name", sorted(TUNERS))
def test_configs_reported_from_elsewhere_are_never_proposed(name):
    # e.g. records of an earlier, interrupted run handed to a fresh tuner
    task = LandscapeTask(TINY)
    task.cost = lambda config: 1.0 + config["a"]  # type: ignore[method-assign]
    done = [ConfigSpace(TINY).config(i) for i in (0, 3, 5, 11)]
    tuner = tuner_for(name, task)
    tuner.update([Result(c, 3.0) for c in done])
    proposed = [key(r.config) for r in run(tuner, task, trials=12)]  # the model's warm-up may come in parts
    assert len(proposed) == 8 and not {key(c) for c in done} & set(proposed)


def test_failed_trials_are_not_the_best_and_count_as_trials():
    task = LandscapeTask()
    tuner = RandomTuner(task, seed=3)
    results = run(tuner, task, trials=60)
    assert any(math.isinf(r.cost) for r in results)
    assert tuner.trials == 60 and tuner.best_cost == min(r.cost for r in results) < math.inf
    assert tuner.trials_since_improvement == 60 - tuner.best_trial


def test_beam_search_climbs_from_the_default_to_the_optimum():
    task = LandscapeTask()
    tuner = BeamTuner(task, seed=0, beam=2)
    assert trials_to_optimum(tuner, task, budget=294) <= 120
    assert tuner.best_cost == pytest.approx(1.0)


def _mean_trials(make, seeds, budget=294) -> float:
    task = LandscapeTask()
    return float(np.mean([trials_to_optimum(make(task, seed), task, budget) for seed in seeds]))


@pytest.mark.parametrize("options", [
    {"features": "knob"},                                        # exhaustive scoring of the small space
    {"features": "knob", "exhaustive_limit": 0},                 # simulated annealing
    {"features": "knob", "model": "xgb-rank"},
], ids=["reg", "reg-annealing", "rank"])
def test_model_guided_search_needs_far_fewer_trials_than_random(options):
    # Deterministic (fixed seeds, single-threaded xgboost); random search needs ~150 trials on
    # average to hit one config of 294, the model a few dozen.
    model = _mean_trials(lambda task, seed: ModelTuner(task, seed, **options), seeds=range(3))
    random = _mean_trials(lambda task, seed: RandomTuner(task, seed), seeds=range(10))
    assert model <= 0.5 * random, (model, random)


def test_make_tuner_parses_model_variants_and_refuses_unknown_names():
    task = LandscapeTask(TINY)
    tuner = make_tuner("xgb-rank-knob", task)
    assert isinstance(tuner, ModelTuner) and tuner.model.objective == "rank" and tuner.features.kind == "knob"
    with pytest.raises(ValueError, match="unknown tuner"):
        make_tuner("anneal", task)
    with pytest.raises(ValueError, match="no variants"):
        make_tuner("random-rank", task)


def test_config_space_numbers_every_config_once_and_walks_one_knob_at_a_time():
    space = ConfigSpace({"tile": (1, 2, 4, 8), "order": ("ij", "ji"), "pair": ([1, 2], [2, 1])})
    configs = list(space)
    assert space.size == len(configs) == 16 and len({key(c) for c in configs}) == 16
    assert all(space.index(c) == i for i, c in enumerate(configs))
    assert space.index({"tile": 8, "order": "ji", "pair": [2, 1]}) == 15  # JSON lists match tuple options
    assert {"tile": 3, "order": "ij", "pair": (1, 2)} not in space
    for i in range(space.size):
        differing = [sum(a != b for a, b in zip(space.config(i).values(), space.config(j).values()))
                     for j in space.neighbors(i)]
        assert len(differing) == 3 + 1 + 1 and set(differing) == {1}
    rng = np.random.default_rng(0)
    steps = {space.random_neighbor(5, rng) for _ in range(200)}
    assert steps == set(space.neighbors(5))
    picked = space.random_unseen(rng, seen={0, 1, 2}, n=13)
    assert sorted(picked) == list(range(3, 16))


def test_annealing_also_scores_every_neighbour_of_the_best_measured_configs():
    task = LandscapeTask()
    tuner = ModelTuner(task, seed=0, features="knob", exhaustive_limit=0, local_search=2, warmup=8)
    run(tuner, task, trials=16)
    best_two = tuner._best_measured(2)
    scored = tuner._anneal()
    near = {j for i in best_two for j in tuner.space.neighbors(i)} - tuner.proposed
    assert near and near <= set(scored) and not set(scored) & tuner.proposed


def test_the_predicted_best_are_taken_a_few_knobs_apart_while_such_configs_rank_high():
    space = ConfigSpace({"a": (0, 1, 2, 3), "b": (0, 1, 2, 3), "c": (0, 1)})
    index = lambda a, b, c: space.index({"a": a, "b": b, "c": c})
    ranked = [index(0, 0, 0), index(1, 0, 0), index(0, 1, 0), index(1, 1, 0), index(2, 2, 1), index(3, 3, 1)]
    # (1,0,0) and (0,1,0) differ from the first in one knob only; (1,1,0) in two
    assert _diverse_top(space, ranked, 2, diversity=2) == [index(0, 0, 0), index(1, 1, 0)]
    assert _diverse_top(space, ranked, 2, diversity=1) == ranked[:2]
    # nothing diverse enough among the 3k best: the best remaining fill the batch
    assert _diverse_top(space, ranked[:3], 2, diversity=3) == ranked[:2]


def test_the_warm_up_batch_stops_where_the_model_can_be_fitted():
    task = LandscapeTask()
    tuner = ModelTuner(task, seed=0, features="knob", warmup=4)
    first = tuner.next_batch(8)
    assert len(first) == 4 and first[0] == task.defaults() and not tuner.model.trained
    failed, ok = first[:1], first[1:]  # one failure: one success still missing before the first fit
    tuner.update([Result(c, math.inf) for c in failed] + [Result(c, task.cost(c)) for c in ok])
    second = tuner.next_batch(8)
    assert len(second) == 1 and not tuner.model.trained
    tuner.update([Result(c, task.cost(c)) for c in second])
    assert tuner.model.trained and len(tuner.next_batch(8)) == 8
