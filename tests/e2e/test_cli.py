"""The ember command line, run as a user runs it."""

import json
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

from ember.cli import main


def small_model(path):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_run_reference_prints_outputs_and_timing(tmp_path, capsys):
    model = small_model(tmp_path / "m.onnx")
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(model), "--executor", "reference", "--input", f"x={tmp_path / 'x.npy'}"]) == 0
    out = capsys.readouterr().out
    assert "y: float32[2, 3]  [0, 2, 0, 4, 0, 6]" in out
    assert "time: median" in out


def test_ir_prints_parseable_text(tmp_path, capsys):
    from ember.ir import parse

    model = small_model(tmp_path / "m.onnx")
    assert main(["ir", str(model)]) == 0
    graph = parse(capsys.readouterr().out)
    assert [n.op for n in graph.nodes] == ["Relu"]


def test_errors_exit_nonzero_with_a_message(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert main(["run", str(bad)]) == 1
    assert "ember: error: ModelError" in capsys.readouterr().err


def test_bench_json_follows_the_contract(tmp_path):
    model = small_model(tmp_path / "m.onnx")
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "ember", "bench", str(model), "--repeat", "3",
                             "--json", str(out), "--profile"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert set(report) >= {"model", "cpu", "threads", "results", "ratios"}
    assert set(report["results"]) == {"ember", "reference", "onnxruntime"}
    assert report["results"]["ember"]["runs"] == 3
    assert set(report["ratios"]) == {"onnxruntime/ember", "reference/ember"}
    assert set(report["paired"]) == set(report["ratios"])
    paired = report["paired"]["reference/ember"]
    assert paired["ci95"][0] <= paired["median"] <= paired["ci95"][1]
    assert "median ms" in result.stdout
    assert "ms/run" in result.stdout and "Relu" in result.stdout  # the per-kernel profile
    assert report["mode"] == "post-pause" and "post-pause" in result.stdout


def test_bench_steady_times_back_to_back_calls(monkeypatch):
    from ember import bench as bench_module

    calls = {"a": 0, "b": 0}
    monkeypatch.setattr(bench_module, "settle", lambda: None)

    def runner(name):
        def run():
            calls[name] += 1
        return run

    results = bench_module.time_interleaved({"a": runner("a"), "b": runner("b")}, repeat=3, warmup=1, steady=True)
    per_runner = 1 + 3 * (1 + bench_module.STEADY_CALLS)  # warm-up, then per round one untimed and the timed calls
    assert calls == {"a": per_runner, "b": per_runner}
    assert results["a"]["runs"] == 3 and results["a"]["median_s"] >= 0
    calls.update(a=0, b=0)
    bench_module.time_interleaved({"a": runner("a"), "b": runner("b")}, repeat=3, warmup=1)
    assert calls == {"a": 4, "b": 4}


def test_bench_balances_the_runner_order_over_rounds(monkeypatch):
    from ember import bench as bench_module

    monkeypatch.setattr(bench_module, "settle", lambda: None)
    order = []
    runners = {name: (lambda name=name: order.append(name)) for name in ("a", "b", "c")}
    results = bench_module.time_interleaved(runners, repeat=6, warmup=0)
    rounds = [order[i:i + 3] for i in range(0, len(order), 3)]
    assert rounds == [list("abc"), list("bca"), list("cab"), list("cba"), list("acb"), list("bac")]
    assert all(len(r["times_s"]) == 6 for r in results.values())


def test_paired_ratio_compares_round_by_round():
    from ember.bench import paired_ratio

    # a runner twice as slow as ember in every round, whatever the round's noise
    ember_times = [1.0, 3.0, 2.0, 5.0, 1.5]
    exact = paired_ratio([2 * t for t in ember_times], ember_times)
    assert exact == {"median": 2.0, "ci95": [2.0, 2.0], "baseline_faster": 1.0}
    # the ratio of medians (2.7 / 2.0) calls ember faster; round by round the other is faster in 4 of 5
    mixed = paired_ratio([0.9, 2.7, 1.8, 4.5, 3.0], ember_times)
    assert mixed["median"] == 0.9 and mixed["baseline_faster"] == 0.2
    assert mixed["ci95"][0] <= 0.9 <= mixed["ci95"][1] <= 2.0
