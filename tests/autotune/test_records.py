"""The records log: format, torn lines, versions, best config per workload and target, applying records."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import ember
from ember.autotune.records import Record, RecordsError, append_records, best_configs, load_records, tuned_configs
from ember.autotune.task import extract_tasks, target_key

from .workloads import ONE_RELU, write_model

WORKLOAD = {"op": "Relu", "shapes": [[8, 64]], "dtype": "float32", "attrs": {}}
HOST = target_key("host")
OTHER = target_key("x86-64")


def test_lines_have_the_design_format(tmp_path):
    path = tmp_path / "r.jsonl"
    append_records(path, [Record(WORKLOAD, HOST, {"vector_chunk": 8}, [1e-6, 2e-6]),
                          Record(WORKLOAD, HOST, {"vector_chunk": 2}, [], "timeout")])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [set(line) for line in lines] == [{"workload", "target", "config", "cost_s", "error", "version",
                                              "time"}] * 2
    assert lines[0]["version"] == 1 and lines[0]["error"] is None and lines[0]["cost_s"] == [1e-6, 2e-6]
    assert lines[1]["error"] == "timeout" and lines[1]["cost_s"] == []
    loaded = load_records(path)
    assert [r.config for r in loaded] == [{"vector_chunk": 8}, {"vector_chunk": 2}]
    assert loaded[0].cost == 1.5e-6 and loaded[1].cost == float("inf")


def test_best_per_workload_ignores_failures_and_other_targets():
    other_workload = dict(WORKLOAD, shapes=[[4, 32]])
    records = [Record(WORKLOAD, HOST, {"c": 1}, [3.0]),
               Record(WORKLOAD, HOST, {"c": 2}, [2.0, 2.2]),
               Record(WORKLOAD, HOST, {"c": 3}, [], "crash: killed by SIGSEGV"),
               Record(WORKLOAD, OTHER, {"c": 4}, [0.5]),
               Record(other_workload, HOST, {"c": 5}, [9.0])]
    best = best_configs(records, "host")
    assert sorted(best.values(), key=str) == [{"c": 2}, {"c": 5}]
    assert list(best_configs(records, "x86-64").values()) == [{"c": 4}]


def test_a_torn_last_line_is_skipped_then_cut_off(tmp_path):
    path = tmp_path / "r.jsonl"
    append_records(path, [Record(WORKLOAD, HOST, {"c": 1}, [1.0])])
    with open(path, "a") as f:
        f.write('{"workload": {"op": "Re')  # the writer was killed mid-line
    with pytest.warns(UserWarning, match="truncated"):
        assert [r.config for r in load_records(path)] == [{"c": 1}]
    append_records(path, [Record(WORKLOAD, HOST, {"c": 2}, [1.0])])
    assert [r.config for r in load_records(path)] == [{"c": 1}, {"c": 2}]


def test_unknown_versions_and_bad_lines_are_refused(tmp_path):
    path = tmp_path / "r.jsonl"
    line = json.loads(Record(WORKLOAD, HOST, {"c": 1}, [1.0]).to_json())
    path.write_text(json.dumps(dict(line, version=2)) + "\n")
    with pytest.raises(RecordsError, match="version 2"):
        load_records(path)
    path.write_text("not json\n" + json.dumps(line) + "\n")
    with pytest.raises(RecordsError, match=":1: not a JSON record"):
        load_records(path)
    with pytest.raises(RecordsError, match="no tuning records"):
        tuned_configs(tmp_path / "missing.jsonl", "host")


def test_compile_applies_the_best_record_of_its_target(tmp_path):
    model = write_model(tmp_path, ONE_RELU)
    (task,) = extract_tasks(model)
    path = tmp_path / "r.jsonl"
    append_records(path, [Record(task.workload, task.target, {"vector_chunk": 8, "parallel": False}, [1.0]),
                          Record(task.workload, task.target, {"vector_chunk": 4, "parallel": True}, [2.0]),
                          Record(task.workload, OTHER, {"vector_chunk": 2, "parallel": True}, [0.1])])
    x = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)
    tuned = ember.compile(model, records=path)
    assert "Relu_i1.o" in tuned.kernels_text() and "parallel" not in tuned.kernels_text()
    np.testing.assert_array_equal(tuned(x)[0], np.maximum(x, 0))
    assert "Relu_i1.o" not in ember.compile(model).kernels_text()
    # another target's record only
    path.write_text(Record(task.workload, OTHER, {"vector_chunk": 2, "parallel": True}, [0.1]).to_json() + "\n")
    assert ember.compile(model, records=path).kernels_text() == ember.compile(model).kernels_text()


def test_a_config_that_no_longer_fits_falls_back_to_defaults(tmp_path):
    model = write_model(tmp_path, ONE_RELU)
    (task,) = extract_tasks(model)
    path = tmp_path / "r.jsonl"
    append_records(path, [Record(task.workload, task.target, {"vector_chunk": 3}, [1.0])])
    with pytest.warns(UserWarning, match="does not fit"):
        module = ember.compile(model, records=path)
    assert module.kernels_text() == ember.compile(model).kernels_text()


def test_applying_records_does_not_import_xgboost(tmp_path):
    model = write_model(tmp_path, ONE_RELU)
    (task,) = extract_tasks(model)
    path = tmp_path / "r.jsonl"
    append_records(path, [Record(task.workload, task.target, {"vector_chunk": 8}, [1.0])])
    code = (f"import sys, ember; m = ember.compile({model!r}, records={str(path)!r}); "
            "assert 'Relu_i1.o' in m.kernels_text(); print(sorted(k for k in sys.modules if 'xgboost' in k))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
