"""Square fp32 GEMM: ember's MatMul against numpy (``a @ b``) and onnxruntime, as a fraction of peak.

Every runner computes ``C = A @ B`` for ``n x n`` float32 matrices:

* ``ember``: a one-node ONNX MatMul model through ``ember.compile``, called
  with ``module.run`` (so feed validation is included, as a user sees it);
* ``numpy``: ``a @ b`` on numpy's BLAS (OpenBLAS in the wheels);
* ``onnxruntime``: the same one-node model in the CPU provider.

The runners are timed in one process, interleaved round by round, so that
a noisy machine slows them alike. One sample is a batch of calls lasting at
least ``--min-sample`` seconds (small sizes take microseconds), after one
untimed call: GFLOP/s and % of peak are steady-state figures, as the peak is.
Peak FLOP/s is
measured in the same run with ``benchmarks/peak.py``'s FMA microkernel, for
the same thread count.

    python benchmarks/gemm.py [--sizes 64,128,...] [--threads 1,2] [--repeat R] [--json OUT]

Threads: ember gets ``num_threads``, onnxruntime ``intra_op_num_threads``;
numpy's BLAS is limited through threadpoolctl when installed, else through
OpenBLAS's own ``openblas_set_num_threads`` found in the loaded library; the
report says which (``blas_threads``). ``OPENBLAS_CORETYPE`` in the
environment forces OpenBLAS's kernel choice; the report records it.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ember.bench import settle

sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_SIZES = (64, 128, 256, 512, 1024, 2048)
RUNNERS = ("ember", "numpy", "onnxruntime")


def matmul_model(n: int):
    """A one-node ONNX model ``c = MatMul(a, b)`` on ``n x n`` float32 inputs."""
    from onnx import TensorProto, helper

    info = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in "abc"]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], f"matmul{n}", info[:2], info[2:])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def set_blas_threads(threads: int) -> str:
    """Limit numpy's BLAS to ``threads``; returns how it was done (or that it was not)."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads, user_api="blas")
        return f"{threads} (threadpoolctl)"
    except ImportError:
        pass
    import numpy  # noqa: F401  (loads the BLAS library, so it shows in the maps)

    try:
        with open("/proc/self/maps") as maps:
            libs = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        libs = set()
    for path in sorted(libs):
        lib = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                       "openblas_set_num_threads64_", "openblas_set_num_threads"):
            fn = getattr(lib, symbol, None)
            if fn is not None:
                fn(ctypes.c_int(threads))
                return f"{threads} (openblas_set_num_threads)"
    return "not controlled (install threadpoolctl)"


def _runners(n: int, threads: int) -> dict[str, Callable[[], Any]]:
    import numpy as np

    import ember
    from ember.bench import onnxruntime_runner

    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    model = matmul_model(n)
    module = ember.compile(model, num_threads=threads)
    ort = onnxruntime_runner(model, threads)
    feeds = {"a": a, "b": b}
    (c,) = module.run(feeds)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    error = float(np.abs(c - expected).max() / np.abs(expected).max())
    if error > 1e-4:
        raise AssertionError(f"ember's {n}x{n} MatMul is wrong: max relative error {error:.2e}")
    return {"ember": lambda: module.run(feeds), "numpy": lambda: a @ b, "onnxruntime": lambda: ort(feeds)}, \
        module.stats().get("threads")


def time_size(n: int, threads: int, repeat: int, min_sample: float) -> dict:
    """Median/min/max GFLOP/s per runner for one size, interleaved over ``repeat`` rounds."""
    runners, ember_threads = _runners(n, threads)
    batch = {}
    for name, run in runners.items():  # warm up, and size each runner's batch to about min_sample
        run()
        start = time.perf_counter()
        run()
        batch[name] = max(1, int(min_sample / max(time.perf_counter() - start, 1e-9)))
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeat):
        for name, run in runners.items():
            settle()  # the previous runner's spinning threads go idle first
            run()  # untimed: after the pause, a first call pays cold caches and waking threads
            start = time.perf_counter()
            for _ in range(batch[name]):
                run()
            seconds[name].append((time.perf_counter() - start) / batch[name])
    flops = 2.0 * n**3
    return {"ember_threads": ember_threads} | {name: {"median_gflops": flops / statistics.median(s) / 1e9, "min_gflops": flops / max(s) / 1e9,
                   "max_gflops": flops / min(s) / 1e9, "median_s": statistics.median(s), "runs": len(s),
                   "calls_per_run": batch[name]} for name, s in seconds.items()}


def run(sizes: list[int], thread_counts: list[int], repeat: int, min_sample: float, peak_repeat: int,
        progress: Callable[[str], None] = print) -> dict:
    """The whole benchmark; returns the report (see ``main`` for its printing)."""
    import llvmlite
    import numpy as np
    import onnxruntime
    from peak import measure_peak

    import ember
    from ember.bench import cpu_name

    report: dict[str, Any] = {
        "cpu": cpu_name(), "date": time.strftime("%Y-%m-%d %H:%M"), "loadavg_1min": os.getloadavg()[0],
        "versions": {"ember": getattr(ember, "__version__", "?"), "numpy": np.__version__,
                     "onnxruntime": onnxruntime.__version__, "llvmlite": llvmlite.__version__},
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"), "runs": {},
    }
    # every peak before any runner: measured after the 1-thread runners, the 2-thread peak came out
    # at 94.5, 94.7 and 135 GFLOP/s in three runs, against 183 alone (a core kept busy by their threads)
    peaks = {threads: measure_peak(threads, repeat=peak_repeat, seconds=min(0.2, max(min_sample, 0.01)))
             for threads in thread_counts}
    for threads in thread_counts:
        peak = peaks[threads]
        entry = {"peak_gflops": peak["median_gflops"], "peak": peak, "blas_threads": set_blas_threads(threads),
                 "sizes": {}}
        progress(f"threads {threads}: peak {peak['median_gflops']:.1f} GFLOP/s, numpy BLAS threads "
                 f"{entry['blas_threads']}")
        progress(f"  {'n':>5} | " + " | ".join(f"{name + ' GFLOP/s (min-max) %peak':<32}" for name in RUNNERS))
        for n in sizes:
            result = time_size(n, threads, repeat, min_sample)
            entry["sizes"][n] = result
            progress("  " + format_row(n, result, peak["median_gflops"])
                     + f" | ember threads {result['ember_threads']}")
        report["runs"][threads] = entry
    return report


def format_row(n: int, result: dict, peak: float) -> str:
    cells = [f"{n:>5}"]
    for name in RUNNERS:
        r = result[name]
        cells.append(f"{r['median_gflops']:7.1f} ({r['min_gflops']:.1f}-{r['max_gflops']:.1f}) "
                     f"{100 * r['median_gflops'] / peak:4.0f}%")
    return " | ".join(cells)


def format_markdown(report: dict) -> str:
    lines = [(f"CPU: {report['cpu']}; {report['date']}; 1-min load average at start "
              f"{report['loadavg_1min']:.2f}; OPENBLAS_CORETYPE={report['openblas_coretype']}"), ""]
    for threads, entry in report["runs"].items():
        lines += [(f"threads {threads}: peak {entry['peak_gflops']:.1f} GFLOP/s; numpy BLAS threads "
                   f"{entry['blas_threads']}"), "",
                  "| n | " + " | ".join(f"{name} GFLOP/s (min-max)" + f" | {name} % peak" for name in RUNNERS)
                  + " | ember threads |",
                  "|---:|" + "---:|---:|" * len(RUNNERS) + "---:|"]
        for n, result in entry["sizes"].items():
            cells = [str(n)]
            for name in RUNNERS:
                r = result[name]
                cells += [f"{r['median_gflops']:.1f} ({r['min_gflops']:.1f}-{r['max_gflops']:.1f})",
                          f"{100 * r['median_gflops'] / entry['peak_gflops']:.0f}%"]
            cells.append(str(result["ember_threads"]))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="comma-separated n")
    parser.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2")
    parser.add_argument("--repeat", type=int, default=7, help="interleaved rounds per size")
    parser.add_argument("--min-sample", type=float, default=0.05, help="seconds of calls per sample")
    parser.add_argument("--quick", action="store_true", help="tiny run for smoke tests")
    parser.add_argument("--json", help="write the report as JSON here")
    parser.add_argument("--markdown", help="write the tables as markdown here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    thread_counts = [int(t) for t in args.threads.split(",")]
    peak_repeat = 5
    if args.quick:
        sizes = [s for s in sizes if s <= 64] or [32]
        args.repeat, args.min_sample, peak_repeat = 1, 0.001, 1
    report = run(sizes, thread_counts, args.repeat, args.min_sample, peak_repeat)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(format_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
