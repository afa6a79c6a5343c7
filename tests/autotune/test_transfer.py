"""Transfer learning in the driver and in replays: a model tuner starts trained on earlier tasks of the same op."""

from __future__ import annotations

import numpy as np
from ember.autotune.measure import MeasureResult
from ember.autotune.replay import Landscape, replay
from ember.autotune.search import make_tuner
from ember.autotune.space import ConfigSpace
from ember.autotune.task import extract_tasks
from ember.autotune.tune import TaskResult, warm_start

from .test_features import MatmulTask
from .workloads import MIXED, write_model


def test_earlier_tasks_of_the_same_op_warm_start_the_model(tmp_path):
    tasks = extract_tasks(write_model(tmp_path, MIXED))
    relus = [t for t in tasks if t.workload["op"] == "Relu"]
    matmul = next(t for t in tasks if t.workload["op"] == "MatMul")
    assert len(relus) == 2
    first, second = relus
    configs = list(ConfigSpace(first.space()))[:6]
    earlier = [TaskResult(first, [MeasureResult(c, [1.0 + i]) for i, c in enumerate(configs)]),
               TaskResult(matmul, [MeasureResult(matmul.defaults(), [1.0])])]

    tuner = make_tuner("xgb", second, seed=0)
    assert not tuner.model.trained
    warm_start(tuner, earlier)
    assert tuner.model.trained and len(tuner.transfer) == 1  # the Relu task only, not the MatMul
    x, costs = tuner.transfer[0]
    assert x.shape[0] == len(configs) and np.array_equal(costs, 1.0 + np.arange(len(configs)))
    assert len(tuner.next_batch(4)) == 4

    knob_tuner = make_tuner("xgb-knob", second, seed=0)  # knob features differ per task: no transfer
    warm_start(knob_tuner, earlier)
    assert not knob_tuner.model.trained and knob_tuner.transfer == []


class _Matmul(MatmulTask):
    """The hand-written matmul template as a task of ``op``."""

    def __init__(self, op: str = "MatMul"):
        super().__init__()
        self.workload = {"op": op}


def _cost(config: dict) -> float:
    return 1.0 / config["tile_j"] + (0.0 if config["inner"] == "vectorized" else 1.0)


def test_a_replay_starts_trained_on_earlier_tasks_of_the_same_op():
    task = _Matmul()
    configs = [c for c in ConfigSpace(task.space()) if c["tile_j"] != 3]
    landscape = Landscape.from_results(MeasureResult(c, [_cost(c)]) for c in configs)
    best = min(_cost(c) for c in configs)

    def earlier(op: str) -> list[TaskResult]:
        return [TaskResult(_Matmul(op), [MeasureResult(c, [_cost(c)]) for c in configs])]

    guided = replay(task, landscape, "xgb", seed=0, trials=2, transfer_from=earlier("MatMul"))
    assert guided[0].config == task.defaults() and guided[1].cost == best  # the first search trial
    alone = replay(task, landscape, "xgb", seed=0, trials=16)
    other_op = replay(task, landscape, "xgb", seed=0, trials=16, transfer_from=earlier("Conv"))
    assert [r.config for r in other_op] == [r.config for r in alone]  # another op's measurements are not used
