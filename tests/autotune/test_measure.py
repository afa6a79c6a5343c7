"""Measurement in child processes: a crashing, hanging, wrong or unbuildable candidate is one failed trial."""

from __future__ import annotations

import math

import pytest

from ember.autotune.measure import MeasureOptions, Measurer, MeasureResult, measure_batch, parse_faults, task_payload
from ember.autotune.task import extract_tasks

from .workloads import ONE_RELU, write_model

FAST = {"repeats": 2, "min_repeat_s": 0.0005, "min_total_s": 0.0, "timeout_s": 5.0}


@pytest.fixture(scope="module")
def relu_task(tmp_path_factory):
    (task,) = extract_tasks(write_model(tmp_path_factory.mktemp("m"), ONE_RELU))
    return task


def test_each_failing_candidate_costs_one_failed_trial(relu_task):
    options = MeasureOptions(**FAST, fault="crash:vector_chunk=2;hang:vector_chunk=4;wrong:vector_chunk=16")
    configs = [relu_task.defaults(), {"vector_chunk": 2, "parallel": True}, {"vector_chunk": 4, "parallel": True},
               {"vector_chunk": 16}, {"vector_chunk": 3}, {"vector_chunk": 8, "parallel": False}]
    results = measure_batch(task_payload(relu_task), configs, options)
    assert [r.config for r in results] == configs
    ok, crashed, hung, wrong, unbuildable, after = results
    assert ok.ok and after.ok, (ok, after)
    assert 0 < ok.cost < 1 and len(ok.costs) >= 2
    assert crashed.error.startswith("crash: killed by SIGSEGV") and crashed.costs is None
    assert hung.error == "timeout" and hung.costs is None
    assert wrong.error.startswith("wrong answer: output 0 differs")
    assert unbuildable.error.startswith("build: ScheduleError") and "vector_chunk" in unbuildable.error
    assert all(math.isinf(r.cost) for r in (crashed, hung, wrong, unbuildable))


def test_fault_specs_parse_and_bad_ones_are_refused(relu_task):
    assert parse_faults("crash:a=1,b=x; hang:c=true") == [("crash", {"a": 1, "b": "x"}), ("hang", {"c": True})]
    with pytest.raises(ValueError, match="unknown fault"):
        Measurer(relu_task, options=MeasureOptions(fault="explode:a=1"))


def test_a_result_cost_is_the_median_run():
    assert MeasureResult({}, [3.0, 1.0, 2.0]).cost == 2.0
    assert math.isinf(MeasureResult({}, None, "timeout").cost)


def test_a_config_measured_again_is_timed_from_its_kept_build(relu_task):
    from ember.autotune.records import config_key
    from ember.autotune.worker import _Bench

    bench = _Bench(task_payload(relu_task), MeasureOptions(**FAST))
    configs = [{"vector_chunk": c, "parallel": p} for p in (False, True) for c in (1, 2, 4, 8, 16)]
    assert all(bench.measure(c)["error"] is None for c in configs)
    assert list(bench.built) == [config_key(c) for c in configs[-_Bench.KEEP_BUILT:]], "the last few are kept"
    kept = bench.built[config_key(configs[3])]
    again = bench.measure(configs[3])
    assert again["error"] is None and len(again["costs"]) >= 2
    assert bench.built[config_key(configs[3])] is kept and list(bench.built)[-1] == config_key(configs[3])
    assert bench.measure({"vector_chunk": 3})["error"].startswith("build: "), "a failed build is not kept"
    assert len(bench.built) == _Bench.KEEP_BUILT
