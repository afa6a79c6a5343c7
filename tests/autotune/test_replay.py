"""Replaying tuners over recorded measurements: only recorded configs, recorded costs, no measuring."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ember.autotune.measure import MeasureResult
from ember.autotune.records import config_key
from ember.autotune.replay import Landscape, replay
from ember.autotune.space import ConfigSpace

from .test_search import LandscapeTask


def recorded(task: LandscapeTask, fraction: float = 0.5, seed: int = 0) -> Landscape:
    """A landscape of a random ``fraction`` of the task's configs, failures included."""
    configs = list(ConfigSpace(task.space()))
    keep = np.random.default_rng(seed).random(len(configs)) < fraction
    return Landscape.from_results(
        MeasureResult(c, None, "build: too large") if math.isinf(task.cost(c)) else MeasureResult(c, [task.cost(c)])
        for c, k in zip(configs, keep) if k)


def trials_to_best(costs: list[float], best: float) -> int:
    return next(n for n, c in enumerate(costs, start=1) if c <= best)


@pytest.mark.parametrize("tuner", ["random", "xgb-knob", "beam"])
def test_replay_proposes_only_recorded_configs_and_answers_with_their_costs(tuner):
    task = LandscapeTask()
    landscape = recorded(task)
    results = replay(task, landscape, tuner, seed=1, trials=10_000)
    keys = [config_key(r.config) for r in results]
    assert set(keys) <= set(landscape.results) and len(keys) == len(set(keys))
    assert all(r.cost == landscape.results[config_key(r.config)].cost for r in results)
    if tuner != "beam":  # beam only walks to neighbours, some of which were never recorded
        assert len(results) == len(landscape)


def test_landscape_refuses_to_invent_a_measurement():
    landscape = Landscape.from_results([MeasureResult({"tile": 1}, [2.0]), MeasureResult({"tile": 1}, [9.0])])
    assert len(landscape) == 1 and landscape.measure([{"tile": 1}])[0].cost == 2.0
    with pytest.raises(KeyError):
        landscape.measure([{"tile": 2}])


def test_replayed_model_search_finds_the_best_recorded_config_in_half_the_trials_of_random():
    # Deterministic: fixed seeds, single-threaded xgboost, recorded costs.
    task = LandscapeTask()
    landscape = recorded(task, fraction=0.6)
    best = min(r.cost for r in landscape.results.values())

    def mean_trials(tuner: str, seeds) -> float:
        return float(np.mean([trials_to_best([r.cost for r in replay(task, landscape, tuner, seed=s, trials=400)],
                                             best) for s in seeds]))

    model, random = mean_trials("xgb-knob", range(3)), mean_trials("random", range(8))
    assert model <= 0.5 * random, (model, random)
