"""Whole-model latency: ember against onnxruntime and the reference executor; writes RESULTS.md.

Models: the onnx wheel's nine light models (``light:NAME``) with random
weights (``tests.models.randomize_weights``: their shipped constant weights
would let CSE merge equal weights, flattering ember), and a BERT-base encoder
layer (``benchmarks/bert.py``: seq 128, hidden 768, 12 heads, FFN 3072). Each
model is written to a temporary ``.onnx`` file and timed with
:func:`ember.bench.bench` (one process, runners interleaved round by round),
once per thread count. The reference executor is numpy and ignores the
thread count, so it is timed at the first thread count only.

    python benchmarks/models.py [--models resnet50,bert] [--threads 1,2] [--repeat R]
                                [--output benchmarks/RESULTS.md] [--include gemm.md] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

BERT = "bert"
BERT_TINY = "bert_tiny"  # seq 16, hidden 64, 4 heads, FFN 256: for smoke tests


def model_names() -> tuple[str, ...]:
    from ember.examples import LIGHT_MODELS

    return (*LIGHT_MODELS, BERT)


def build_model(name: str):
    """The ONNX model benchmarked as ``name``."""
    from bert import bert_layer

    if name == BERT:
        return bert_layer()
    if name == BERT_TINY:
        return bert_layer(seq=16, hidden=64, heads=4, ffn=256)
    from tests.models import light_model, randomize_weights

    return randomize_weights(light_model(name.removeprefix("light:")))


def versions() -> dict[str, str]:
    import llvmlite
    import numpy
    import onnxruntime

    import ember

    return {"ember": getattr(ember, "__version__", "?"), "numpy": numpy.__version__,
            "onnxruntime": onnxruntime.__version__, "llvmlite": llvmlite.__version__}


def run(names: list[str], thread_counts: list[int], repeat: int, warmup: int, workdir: str,
        progress=print) -> dict[str, Any]:
    """Bench every model at every thread count; failures are recorded, not raised."""
    import onnx
    import onnxruntime

    from ember.bench import bench, cpu_name

    onnxruntime.set_default_logger_severity(3)  # randomized light models leave unused initializers: warnings

    report: dict[str, Any] = {"cpu": cpu_name(), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
                              "loadavg_1min": os.getloadavg()[0], "versions": versions(), "repeat": repeat,
                              "results": []}
    for name in names:
        path = os.path.join(workdir, f"{name}.onnx")
        onnx.save(build_model(name), path)
        for i, threads in enumerate(thread_counts):
            compare = ("reference", "onnxruntime") if i == 0 else ("onnxruntime",)
            start = time.perf_counter()
            try:
                r = bench(path, compare=compare, threads=threads, repeat=repeat, warmup=warmup)
            except Exception as err:  # noqa: BLE001  (a model ember cannot compile yet is a result too)
                traceback.print_exc()
                r = {"threads": threads, "error": f"{type(err).__name__}: {err}"}
            r["model"] = name
            report["results"].append(r)
            progress(f"{format_row(r)}   ({time.perf_counter() - start:.0f} s)")
    return report


def _ms(r: dict, runner: str, key: str = "median_s") -> str:
    return f"{r['results'][runner][key] * 1e3:.2f}" if runner in r.get("results", {}) else "-"


def _ratio(r: dict, runner: str) -> str:
    ratio = r.get("ratios", {}).get(f"{runner}/ember")
    return f"{ratio:.2f}" if ratio is not None else "-"


COLUMNS = ("model", "threads", "ember median ms", "ember min ms", "onnxruntime median ms", "onnxruntime min ms",
           "reference median ms", "onnxruntime/ember", "reference/ember", "compile s")


def row_cells(r: dict) -> list[str]:
    if "error" in r:
        return [r["model"], str(r["threads"]), f"error: {r['error'][:80]}"] + [""] * (len(COLUMNS) - 3)
    return [r["model"], str(r["threads"]), _ms(r, "ember"), _ms(r, "ember", "min_s"), _ms(r, "onnxruntime"),
            _ms(r, "onnxruntime", "min_s"), _ms(r, "reference"), _ratio(r, "onnxruntime"),
            _ratio(r, "reference"), f"{r['compile_s']:.1f}"]


def format_row(r: dict) -> str:
    return "  ".join(f"{c:>10}" if i > 0 else f"{c:<14}" for i, c in enumerate(row_cells(r)))


def format_markdown(report: dict, includes: list[str] = ()) -> str:
    v = report["versions"]
    target = next((r["target"] for r in report["results"] if "target" in r), "?")
    lines = [
        "# Benchmark results", "",
        "Written by `python benchmarks/models.py`; see `benchmarks/README.md` for how to read it.", "",
        f"- CPU: {report['cpu']} ({os.cpu_count()} logical CPUs); ember target: {target}",
        (f"- date: {report['date']}; 1-min load average at start: {report['loadavg_1min']:.2f} "
         "(a shared VM: other jobs may run alongside)"),
        (f"- versions: ember {v['ember']}, numpy {v['numpy']}, onnxruntime {v['onnxruntime']}, "
         f"llvmlite {v['llvmlite']}"),
        (f"- {report['repeat']} interleaved rounds per model after warm-up; ratios are of medians "
         "(> 1: ember is faster); light models with random weights; "
         "the reference executor is timed at the first thread count only"), "",
        "## Models", "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---|" + "---:|" * (len(COLUMNS) - 1),
    ]
    lines += ["| " + " | ".join(row_cells(r)) + " |" for r in report["results"]]
    for path in includes:
        lines += ["", Path(path).read_text().rstrip()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", help=f"comma-separated, from: light model names, {BERT}, {BERT_TINY} "
                                         "(default: the nine light models and bert)")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--repeat", type=int, default=10, help="interleaved rounds per model")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "RESULTS.md"), help="markdown file to write")
    parser.add_argument("--include", action="append", default=[],
                        help="markdown file appended to the output (e.g. gemm.py --markdown)")
    parser.add_argument("--json", help="also write the raw report as JSON here")
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {BERT_TINY}, 1 round")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.warmup = 1, 1
        args.models = args.models or BERT_TINY
    names = [m.removeprefix("light:") for m in args.models.split(",")] if args.models else list(model_names())
    thread_counts = [int(t) for t in args.threads.split(",")]
    print("  ".join(f"{c:>10}" if i > 0 else f"{c:<14}" for i, c in enumerate(COLUMNS)))
    with tempfile.TemporaryDirectory(prefix="ember-bench-") as workdir:
        report = run(names, thread_counts, args.repeat, args.warmup, workdir)
    Path(args.output).write_text(format_markdown(report, args.include))
    print(f"wrote {args.output}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 1 if any("error" in r for r in report["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
