"""The XGBoost cost model: labels, the objectives, transfer from another task's measurements."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from ember.autotune.cost_model import (
    CostModel,
    log_throughput,
    make_cost_model,
    normalized_throughput,
)
from ember.autotune.search import ModelTuner, transfer_set
from ember.autotune.space import ConfigSpace

from .test_features import MatmulTask


def test_labels_are_throughput_relative_to_the_best_of_each_group():
    costs = np.array([2.0, 1.0, math.inf, 4.0, 40.0, 10.0])
    groups = np.array([0, 0, 0, 1, 1, 1])
    assert normalized_throughput(costs, groups).tolist() == [0.5, 1.0, 0.0, 1.0, 0.1, 0.4]
    assert normalized_throughput(np.array([math.inf, math.nan])).tolist() == [0.0, 0.0]


def test_log_labels_halve_per_factor_of_two_and_put_failures_below_the_slowest():
    costs = np.array([2.0, 1.0, math.inf, 4.0, 32.0, 8.0])
    groups = np.array([0, 0, 0, 1, 1, 1])
    assert log_throughput(costs, groups).tolist() == [-1.0, 0.0, -2.0, 0.0, -3.0, -1.0]
    assert log_throughput(np.array([math.inf])).tolist() == [-1.0]


def _landscape(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random points of [0, 1]^3 and a cost with its optimum at (0.3, 0.7, any)."""
    x = np.random.default_rng(seed).random((n, 3))
    return x, 1.0 + 4 * (x[:, 0] - 0.3) ** 2 + 2 * (x[:, 1] - 0.7) ** 2


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


@pytest.mark.parametrize("objective", ["reg", "log", "rank"])
def test_model_orders_unseen_candidates_by_speed(objective):
    x, costs = _landscape(200, seed=0)
    test_x, test_costs = _landscape(100, seed=1)
    model = CostModel(objective).fit(x, costs)
    assert _rank_correlation(model.predict(test_x), -test_costs) > 0.8


@pytest.mark.parametrize("objective", ["reg", "log"])
def test_failed_candidates_are_predicted_slowest(objective):
    x, costs = _landscape(200, seed=0)
    costs[x[:, 2] > 0.8] = math.inf  # a third knob that breaks the build
    model = CostModel(objective).fit(x, costs)
    scores = model.predict(np.array([[0.3, 0.7, 0.5], [0.3, 0.7, 0.95]]))
    slowest_ok = model.predict(np.array([[1.0, 0.0, 0.5]]))[0]
    assert scores[0] > slowest_ok > scores[1]
    if objective == "reg":  # labels: 1 for the fastest, 0 for a failure
        assert scores[0] > 0.8 and scores[1] < 0.2


def test_rank_learns_order_within_groups_of_very_different_scale():
    x, costs = _landscape(300, seed=2)
    groups = np.repeat([0, 1, 2], 100)
    costs = costs * np.array([1e-6, 1.0, 1e3])[groups]  # tasks of very different size
    model = CostModel("rank").fit(x, costs, groups)
    test_x, test_costs = _landscape(100, seed=3)
    assert _rank_correlation(model.predict(test_x), -test_costs) > 0.8


def test_untrained_model_predicts_nothing_and_names_are_checked():
    assert CostModel().predict(np.ones((3, 2))).tolist() == [0, 0, 0] and not CostModel().trained
    assert make_cost_model("xgb-rank").objective == "rank"
    with pytest.raises(ValueError, match="unknown cost model"):
        make_cost_model("mlp")
    with pytest.raises(ValueError, match="objective"):
        CostModel("lambdamart")


@dataclass
class Result:
    config: dict
    cost: float


def test_transfer_guides_the_first_batch():
    # Another task's measurements say: the wider the vectorized inner tile, the faster.
    other, task = MatmulTask(), MatmulTask()
    space = ConfigSpace(other.space())
    measured = [c for c in space if c["tile_j"] != 3]
    results = [Result(c, 1.0 / c["tile_j"] + (0 if c["inner"] == "vectorized" else 1.0)) for c in measured]
    x, costs = transfer_set(other, results)
    assert x.shape[0] == len(measured)
    tuner = ModelTuner(task, seed=0, transfer=[(x, costs)], epsilon=0.0, epsilon_min=0.0, diversity=1,
                       include_default=False)
    first = tuner.next_batch(2)
    assert all(c["tile_j"] == 64 and c["inner"] == "vectorized" for c in first)
    with pytest.raises(ValueError, match="loop features"):
        ModelTuner(task, transfer=[(x, costs)], features="knob")
