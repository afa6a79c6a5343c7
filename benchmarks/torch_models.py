"""PyTorch models: ember (through torch.export) against torch eager and torch.compile.

Models: the plain-torch zoo of the frontend tests (``tests/frontend/torch_zoo.py``)
at realistic sizes — a ResNet-18 and a MobileNetV2 at 224x224, a 2-layer
transformer encoder (seq 128, d_model 256), an MLP with LayerNorm and GELU
(batch 32), an M5-style 1-D conv audio model (8000 samples). Each model is
exported once; per thread count ember is compiled with ``num_threads`` and
torch runs with ``torch.set_num_threads``; all runners are timed in one process,
interleaved round by round (:func:`ember.bench.time_interleaved`), and the
table reports medians. ``torch.compile`` (inductor) is timed where it works on
this machine; where it fails the table says so.

    python benchmarks/torch_models.py [--models resnet18,mlp] [--threads 1,2] [--repeat R]
                                      [--no-torch-compile] [--out RESULTS.md] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUNNERS = ("ember", "torch", "torch.compile")
COLUMNS = ("model", "threads", "ember ms", "torch eager ms", "torch.compile ms", "eager/ember", "compile/ember",
           "ember compile s")


def torch_runner(fn: Callable, inputs: tuple, threads: int) -> Callable[[], Any]:
    """A no-argument callable running ``fn(*inputs)`` on ``threads`` intra-op threads, without autograd."""
    import torch

    def run():
        torch.set_num_threads(threads)
        with torch.inference_mode():
            return fn(*inputs)
    return run


def compiled_torch(model, inputs: tuple) -> tuple[Callable | None, str | None]:
    """``torch.compile(model)``, compiled by one call; (None, reason) when it does not work here."""
    import torch

    try:
        compiled = torch.compile(model)
        with torch.inference_mode():
            compiled(*inputs)
        return compiled, None
    except Exception as err:  # noqa: BLE001  (inductor needs a C++ toolchain; any failure is a result)
        return None, f"{type(err).__name__}: {str(err).splitlines()[0][:80] if str(err) else ''}"


def bench_model(name: str, scale: str, thread_counts: list[int], repeat: int, warmup: int, use_torch_compile: bool,
                progress=print) -> list[dict]:
    """One row per thread count: medians of ember, torch eager and torch.compile."""
    from ember.frontend.torch import export_program

    import ember
    from ember.bench import time_interleaved
    from tests.frontend.torch_zoo import zoo

    build, make_inputs = zoo(scale)[name]
    model, inputs = build(), make_inputs()
    program = export_program(model, inputs)
    fast, compile_error = compiled_torch(model, inputs) if use_torch_compile else (None, "not run")
    rows = []
    for threads in thread_counts:
        module = ember.compile(program, num_threads=threads)
        feeds = {n: t.numpy() for n, t in zip(module.input_names, inputs)}
        runners = {"ember": lambda module=module, feeds=feeds: module.run(feeds),
                   "torch": torch_runner(model, inputs, threads)}
        if fast is not None:
            runners["torch.compile"] = torch_runner(fast, inputs, threads)
        results = time_interleaved(runners, repeat=repeat, warmup=warmup)
        row = {"model": name, "threads": threads, "compile_s": module.stats()["compile_s"], "results": results}
        if compile_error:
            row["torch.compile error"] = compile_error
        rows.append(row)
        progress(format_row(row))
    return rows


def _ms(row: dict, runner: str) -> str:
    r = row.get("results", {}).get(runner)
    return f"{r['median_s'] * 1e3:.2f}" if r else "-"


def _ratio(row: dict, runner: str) -> str:
    results = row.get("results", {})
    if runner not in results or "ember" not in results:
        return "-"
    return f"{results[runner]['median_s'] / results['ember']['median_s']:.2f}"


def row_cells(row: dict) -> list[str]:
    if "error" in row:
        return [row["model"], str(row["threads"]), f"error: {row['error'][:80]}"] + [""] * (len(COLUMNS) - 3)
    return [row["model"], str(row["threads"]), _ms(row, "ember"), _ms(row, "torch"), _ms(row, "torch.compile"),
            _ratio(row, "torch"), _ratio(row, "torch.compile"), f"{row['compile_s']:.1f}"]


def format_row(row: dict) -> str:
    return "  ".join(f"{c:>10}" if i > 0 else f"{c:<14}" for i, c in enumerate(row_cells(row)))


def format_markdown(rows: list[dict], repeat: int, scale: str) -> str:
    import torch

    from ember.bench import cpu_name

    failures = sorted({r["torch.compile error"] for r in rows if "torch.compile error" in r})
    lines = [
        "## PyTorch models", "",
        "Written by `python benchmarks/torch_models.py`.", "",
        (f"- CPU: {cpu_name()} ({os.cpu_count()} logical CPUs); date: {time.strftime('%Y-%m-%d %H:%M %Z')}; "
         f"1-min load average at the end: {os.getloadavg()[0]:.2f} (a shared machine: numbers are noisy)"),
        (f"- torch {torch.__version__}; {scale} sizes; {repeat} interleaved rounds after warm-up; medians; "
         "ratios > 1: ember is faster"),
        *(f"- torch.compile not timed: {reason}" for reason in failures), "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---|" + "---:|" * (len(COLUMNS) - 1),
    ]
    lines += ["| " + " | ".join(row_cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from tests.frontend.torch_zoo import zoo

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", help=f"comma-separated, from: {', '.join(zoo('bench'))} (default: all)")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--repeat", type=int, default=10, help="interleaved rounds per model and thread count")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-torch-compile", action="store_true", help="leave torch.compile out")
    parser.add_argument("--out", help="also write the markdown table here")
    parser.add_argument("--quick", action="store_true", help="smoke run: test sizes, mlp, 1 round, no torch.compile")
    args = parser.parse_args(argv)
    scale = "bench"
    if args.quick:
        scale, args.repeat, args.warmup, args.no_torch_compile = "test", 1, 1, True
        args.models = args.models or "mlp"
    names = args.models.split(",") if args.models else list(zoo(scale))
    warnings.filterwarnings("ignore")  # torch.export's deprecation chatter
    print("  ".join(f"{c:>10}" if i > 0 else f"{c:<14}" for i, c in enumerate(COLUMNS)))
    rows: list[dict] = []
    for name in names:
        try:
            rows += bench_model(name, scale, [int(t) for t in args.threads.split(",")], args.repeat, args.warmup,
                                not args.no_torch_compile)
        except Exception as err:  # noqa: BLE001  (a model ember cannot compile yet is a result too)
            traceback.print_exc()
            rows.append({"model": name, "threads": args.threads, "error": f"{type(err).__name__}: {err}"})
    table = format_markdown(rows, args.repeat, scale)
    print()
    print(table)
    if args.out:
        Path(args.out).write_text(table)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
