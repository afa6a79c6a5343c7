"""Timing with the weights flushed from the caches: each timed run is one call after a flush."""

from __future__ import annotations

import numpy as np

from ember.autotune import worker
from ember.autotune.cache_flush import flush
from ember.autotune.measure import MeasureOptions, measure_batch, task_payload
from ember.autotune.task import extract_tasks

from .workloads import MIXED, write_model


def test_flush_leaves_any_array_unchanged():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(100_003).astype(np.float32), np.zeros(0, np.float32), np.arange(7.0)[1:6]]
    copies = [a.copy() for a in arrays]
    flush(arrays)
    assert all(np.array_equal(a, c) for a, c in zip(arrays, copies))


def test_flushed_timing_is_one_call_after_each_flush():
    events = []
    options = MeasureOptions(repeats=3, warmup=1, min_total_s=0.0, flush_cache=True)
    costs = worker._time(lambda: events.append("call"), [], options, before=lambda: events.append("flush"))
    assert len(costs) == 3
    assert events == ["call"] + ["flush", "call"] * 3  # the warm-up, then a flush before each timed call


def test_flushed_timing_runs_until_the_floor_up_to_four_times_the_repeats():
    calls = []
    options = MeasureOptions(repeats=2, warmup=0, min_total_s=1e9, flush_cache=True)
    costs = worker._time(lambda: calls.append(1), [], options, before=lambda: None)
    assert len(costs) == len(calls) == 8


def test_a_task_measured_with_flushes_is_checked_and_timed(tmp_path):
    # a product: its second input (the weights) is flushed before each timed call
    (task,) = [t for t in extract_tasks(write_model(tmp_path, MIXED)) if t.workload["op"] == "MatMul"]
    options = MeasureOptions(repeats=2, min_total_s=0.0, timeout_s=30.0, flush_cache=True)
    (result,) = measure_batch(task_payload(task), [task.defaults()], options)
    assert result.ok and 2 <= len(result.costs) <= 8 and 0 < result.cost < 1
