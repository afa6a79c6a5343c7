"""Transfer learning in the driver: a model tuner starts trained on earlier tasks of the same op."""

from __future__ import annotations

import numpy as np
from ember.autotune.measure import MeasureResult
from ember.autotune.search import make_tuner
from ember.autotune.space import ConfigSpace
from ember.autotune.task import extract_tasks
from ember.autotune.tune import TaskResult, _warm_start

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
    _warm_start(tuner, earlier)
    assert tuner.model.trained and len(tuner.transfer) == 1  # the Relu task only, not the MatMul
    x, costs = tuner.transfer[0]
    assert x.shape[0] == len(configs) and np.array_equal(costs, 1.0 + np.arange(len(configs)))
    assert len(tuner.next_batch(4)) == 4

    knob_tuner = make_tuner("xgb-knob", second, seed=0)  # knob features differ per task: no transfer
    _warm_start(knob_tuner, earlier)
    assert not knob_tuner.model.trained and knob_tuner.transfer == []
