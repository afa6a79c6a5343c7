"""Smoke tests of the scripts in benchmarks/: each runs in its --quick mode, and the BERT layer is correct.

No timing is asserted (the machine is shared); only that the scripts run end
to end and write what they promise.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"ember_benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peak_quick(tmp_path):
    out = tmp_path / "peak.json"
    assert load("peak").main(["--quick", "--threads", "2", "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert [r["threads"] for r in results] == [1, 2]
    assert all(r["median_gflops"] > 0 for r in results)


def test_peak_without_fma_counts_mul_and_add():
    r = load("peak").measure_peak(1, repeat=1, seconds=0.005, target="x86-64")
    assert (r["lanes"], r["fma"]) == (4, False) and r["median_gflops"] > 0


def test_gemm_quick(tmp_path):
    out, md = tmp_path / "gemm.json", tmp_path / "gemm.md"
    assert load("gemm").main(["--quick", "--sizes", "32", "--json", str(out), "--markdown", str(md)]) == 0
    sizes = json.loads(out.read_text())["runs"]["1"]["sizes"]
    assert set(sizes["32"]) >= {"ember", "numpy", "onnxruntime"}
    assert "% peak" in md.read_text()


def test_models_quick(tmp_path):
    out = tmp_path / "RESULTS.md"
    assert load("models").main(["--quick", "--threads", "1,2", "--output", str(out)]) == 0
    text = out.read_text()
    assert "| bert_tiny | 1 |" in text and "| bert_tiny | 2 |" in text and "onnxruntime/ember" in text


@pytest.mark.parametrize("size", [{}, {"seq": 16, "hidden": 64, "heads": 4, "ffn": 256, "gelu": "op"}],
                         ids=["bert_base", "tiny_gelu_op"])
def test_bert_layer_matches_onnxruntime(size):
    import ember
    from ember.bench import onnxruntime_runner

    model = load("bert").bert_layer(**size)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    (expected,) = onnxruntime_runner(model, 1)({"x": x})
    (reference,) = ember.reference(model).run({"x": x})
    np.testing.assert_allclose(reference, expected, rtol=1e-4, atol=1e-4)
    if size:  # the compiled tiny layer too (the full one is the benchmark's job)
        (compiled,) = ember.compile(model).run({"x": x})
        np.testing.assert_allclose(compiled, expected, rtol=1e-4, atol=1e-4)


def test_tuning_remeasure_fastest_corrects_a_lucky_measurement():
    from ember.autotune.measure import MeasureResult
    from ember.autotune.records import config_key

    tuning = load("tuning")

    class Planted:
        """Measures each config at its true time; records the order asked."""

        def __init__(self, true_s):
            self.true_s, self.asked = true_s, []

        def measure(self, configs):
            self.asked.append([c["t"] for c in configs])
            return [MeasureResult(c, [self.true_s[c["t"]]] * 3) for c in configs]

    shared = tuning.SharedMeasurements.__new__(tuning.SharedMeasurements)
    shared._measurer = Planted({0: 1.0, 1: 1.1, 2: 2.0, 3: 3.0})
    lucky = MeasureResult({"t": 0}, [0.5] * 3)  # measured once at half its true time
    shared._known = {config_key(r.config): r for r in
                     [lucky, MeasureResult({"t": 1}, [1.1] * 3), MeasureResult({"t": 2}, [2.0] * 3),
                      MeasureResult({"t": 3}, [3.0] * 3), MeasureResult({"t": 4}, None, "crash: planted")]}
    again = shared.remeasure_fastest(k=2, rounds=3)
    assert sorted(c["t"] for c in again) == [0, 1]
    assert shared._measurer.asked == [[0, 1], [1, 0], [0, 1]]  # interleaved, the order changing
    assert shared.cost({"t": 0}) == 1.0  # 3 lucky runs and 9 true ones: the median is the truth
    assert shared.cost({"t": 1}) == pytest.approx(1.1)
    assert shared.cost({"t": 3}) == 3.0  # not among the fastest: untouched
    assert min(shared.results(), key=lambda r: r.cost).config == {"t": 0}


def test_tuning_random_hit_rate_is_not_cut_off_at_the_budget():
    tuning = load("tuning")
    # 2 of 1000 draws within 95% of the best (cost 1.0): random search needs 500 trials on average,
    # although the one run that got there within its 500-trial budget did so at trial 3.
    runs = [[1.0 / 0.96] + [2.0] * 499, [2.0] * 2 + [1.0] + [2.0] * 497]
    rate = tuning.random_hit_rate(runs, best=1.0)
    assert (rate["hits"], rate["trials"]) == (2, 1000)
    low, high = rate["interval"]
    assert low < 0.002 < high < 0.01

    entry = {"trials": 500, "flops": 1.0, "runs": [
        {"tuner": "random", "costs": [3.0, *c], "failed": 0} for c in runs] + [
        {"tuner": "xgb", "costs": [3.0] + [2.0] * 9 + [1.0], "failed": 0}]}
    summary = tuning.summarize(entry, search_only=True)
    assert summary["tuners"]["random"]["trials_to_95"] == [1, 3]  # the means over runs: 2 trials
    assert summary["xgb_over_random"] == pytest.approx(10 / 2)
    ratio, low, high = summary["xgb_over_random_expected"]  # from the rate: 10 trials against 500
    assert ratio == pytest.approx(10 / 500) and low < ratio < high
