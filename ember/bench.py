"""Timing ember against the reference executor and onnxruntime, in one process, interleaved.

The result follows the benchmark contract of DESIGN.md::

    {"model": ..., "cpu": ..., "threads": N,
     "results": {"ember": {"median_s": ..., "min_s": ..., "runs": N}, "onnxruntime": {...}, "reference": {...}},
     "ratios": {"onnxruntime/ember": ..., "reference/ember": ...}}

Each round runs every runner once, in turn, so that a noisy machine slows
them alike; medians and minima are over rounds. The order changes from round to
round (:func:`ember.runtime.round_order.round_order`) so that every runner follows
every other one equally often (it inherits their caches and threads). The
report's ``"paired"`` entry (beyond the contract's fields) compares runners round by round: the median over rounds of a
runner's time over ember's in the same round, a 95% bootstrap interval of that
median, and the share of rounds in which ember was faster. On a noisy machine it
tells a real difference of a few percent from chance better than a ratio of
medians does. By default each timed call
comes after a pause (:func:`settle`): the latency of an isolated request, where
the CPU, its caches and the thread pools start cold. With ``steady=True`` each
round times :data:`STEADY_CALLS` back-to-back calls after an untimed one (a
runner's time is their mean): the latency under a sustained stream of requests,
as TVM's ``time_evaluator`` and onnxruntime's perf test measure. The two can
rank runners differently, so say which one a figure is.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ember.ir.errors import EmberError
from ember.runtime.round_order import ordered

RUNNERS = ("reference", "onnxruntime", "untuned")


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def onnxruntime_runner(model: Any, threads: int) -> Callable[[dict], list]:
    """A callable running ``model`` (path or ModelProto) in onnxruntime's CPU provider."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise EmberError("onnxruntime is not installed: pip install onnxruntime (or ember[dev])") from None
    import onnx

    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else Path(model).read_bytes()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(None, feeds)


# Pause before each timed call. onnxruntime's and OpenBLAS's worker threads spin for a
# while after a call; timed right after them, another runner's threads share the cores
# with those spinning ones (ember at 2 threads measured half its speed right after either).
SETTLE_S = 0.2


def settle() -> None:
    """Let the previous runner's spinning worker threads go idle before timing the next one."""
    time.sleep(SETTLE_S)


# back-to-back calls timed per round in steady mode (after one untimed call)
STEADY_CALLS = 10


def time_interleaved(runners: Mapping[str, Callable[[], Any]], *, repeat: int = 10, warmup: int = 1,
                     progress: Callable[[str], None] | None = None, steady: bool = False) -> dict[str, dict]:
    """Time each runner (a no-argument callable), ``warmup`` calls first, then ``repeat`` rounds
    that call every runner in turn, each after :func:`settle`: once, or (``steady``) once untimed
    and then :data:`STEADY_CALLS` times back to back, timed together; returns name ->
    ``{"median_s", "min_s", "runs"}`` (seconds per call)."""
    for run in runners.values():
        for _ in range(warmup):
            run()
    calls = STEADY_CALLS if steady else 1
    times: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for r in range(repeat):
        for name in ordered(names, r):
            run = runners[name]
            settle()
            if steady:
                run()
            start = time.perf_counter()
            for _ in range(calls):
                run()
            times[name].append((time.perf_counter() - start) / calls)
        if progress:
            progress(f"round {r + 1}/{repeat}")
    return {name: {"median_s": statistics.median(t), "min_s": min(t), "runs": len(t), "times_s": t}
            for name, t in times.items()}


# bootstrap resamples of the paired ratio's median (its 95% interval moves by well under 0.1% between seeds)
BOOTSTRAP_RESAMPLES = 2000


def paired_ratio(times: Sequence[float], baseline: Sequence[float], seed: int = 0) -> dict:
    """Round-by-round comparison of ``times`` with ``baseline`` (the same rounds, in order):
    ``{"median", "ci95", "baseline_faster"}``, the median over rounds of ``times[r] / baseline[r]``,
    a 95% percentile-bootstrap interval of that median, and the share of rounds with a ratio
    above 1 (the baseline faster)."""
    import numpy as np

    ratios = np.asarray(times, dtype=float) / np.asarray(baseline, dtype=float)
    if ratios.size == 0:
        raise EmberError("no rounds to compare")
    resampled = np.random.default_rng(seed).choice(ratios, size=(BOOTSTRAP_RESAMPLES, ratios.size))
    low, high = np.percentile(np.median(resampled, axis=1), [2.5, 97.5])
    return {"median": float(np.median(ratios)), "ci95": [float(low), float(high)],
            "baseline_faster": float(np.mean(ratios > 1))}


def bench(model: Any, *, compare: Sequence[str] = ("reference", "onnxruntime"), threads: int = 1,
          repeat: int = 10, warmup: int = 1, target: str = "host",
          input_shapes: Mapping[str, Sequence[int]] | None = None,
          progress: Callable[[str], None] | None = None, records: Any = None, steady: bool = False) -> dict:
    """Time ember (compiled) against the runners in ``compare``; returns the contract's dict
    (with ``"mode"``: ``"post-pause"``, or ``"steady"`` with ``steady``; see the module doc).

    With ``records`` (a tuning-records file) ember uses the tuned configs, and
    the runner ``untuned`` is the same model compiled with the defaults.
    """
    import ember
    from ember.examples import resolve_model

    model = resolve_model(model)
    unknown = set(compare) - set(RUNNERS)
    if unknown:
        raise EmberError(f"unknown runner(s) {', '.join(sorted(unknown))}; choose from {', '.join(RUNNERS)}")
    if "untuned" in compare and records is None:
        raise EmberError("the untuned runner compares with tuned ember: give records")
    module = ember.compile(model, target=target, num_threads=threads, input_shapes=input_shapes, records=records)
    feeds = module.random_feeds()
    runners: dict[str, Callable[[dict], Any]] = {"ember": module.run}
    if "untuned" in compare:
        runners["untuned"] = ember.compile(model, target=target, num_threads=threads, input_shapes=input_shapes).run
    if "reference" in compare:
        runners["reference"] = ember.reference(module.graph).run
    if "onnxruntime" in compare:
        if not isinstance(model, (str, os.PathLike)) and type(model).__name__ != "ModelProto":
            raise EmberError("onnxruntime can only be compared on an ONNX model")
        runners["onnxruntime"] = onnxruntime_runner(model, threads)
    results = time_interleaved({name: (lambda run=run: run(feeds)) for name, run in runners.items()},
                               repeat=repeat, warmup=warmup, progress=progress, steady=steady)
    ember_median = results["ember"]["median_s"]
    return {
        "model": str(model),
        "cpu": cpu_name(),
        "threads": threads,
        "mode": "steady" if steady else "post-pause",
        "target": str(module.target),
        "compile_s": module.stats()["compile_s"],
        "results": results,
        "ratios": {f"{name}/ember": results[name]["median_s"] / ember_median for name in runners if name != "ember"},
        "paired": {f"{name}/ember": paired_ratio(results[name]["times_s"], results["ember"]["times_s"])
                   for name in runners if name != "ember"},
    }


def kernel_profile(model: Any, *, threads: int = 1, repeat: int = 10, target: str = "host",
                   input_shapes: Mapping[str, Sequence[int]] | None = None) -> list[dict]:
    """Per-kernel times (seconds per run, slowest first) from a profiling build of ``model``."""
    import ember
    from ember.examples import resolve_model

    module = ember.compile(resolve_model(model), target=target, num_threads=threads, input_shapes=input_shapes,
                           profile=True)
    feeds = module.random_feeds()
    module.run(feeds)
    module.profile(reset=True)
    for _ in range(repeat):
        module.run(feeds)
    rows = module.profile()
    for row in rows:
        row["seconds"] /= repeat
    return rows


def format_profile(rows: list[dict], top: int = 15) -> str:
    """The slowest kernels as a text table with their share of the total."""
    total = sum(r["seconds"] for r in rows) or 1.0
    lines = [f"{'kernel (node)':<28} {'ops':<28} {'output':<20} {'ms/run':>8} {'share':>6}"]
    for r in rows[:top]:
        ops = "+".join(r["ops"])
        lines.append(f"{r['node'][:28]:<28} {ops[:28]:<28} {r['output'][:20]:<20} {r['seconds'] * 1e3:>8.3f} "
                     f"{r['seconds'] / total:>6.1%}")
    lines.append(f"{'all ' + str(len(rows)) + ' kernels':<28} {'':<28} {'':<20} {total * 1e3:>8.3f} {1:>6.0%}")
    return "\n".join(lines)


def format_table(report: dict) -> str:
    """The report as a text table: median, min, runs, and each runner's time over ember's."""
    lines = [f"model: {report['model']}", f"cpu: {report['cpu']}   threads: {report['threads']}",
             f"target: {report['target']}   compile: {report['compile_s']:.2f} s",
             "timing: " + ("back-to-back calls (steady)" if report.get("mode") == "steady"
                           else "one call after each pause (post-pause)"), "",
             f"{'runner':<12} {'median ms':>11} {'min ms':>11} {'runs':>5} {'x ember':>8}   paired x ember [95%]"]
    ember_median = report["results"]["ember"]["median_s"]
    for name, r in report["results"].items():
        paired = report.get("paired", {}).get(f"{name}/ember")
        pairs = (f"{paired['median']:.3f} [{paired['ci95'][0]:.3f}, {paired['ci95'][1]:.3f}]"
                 if paired else "")
        lines.append(f"{name:<12} {r['median_s'] * 1e3:>11.3f} {r['min_s'] * 1e3:>11.3f} {r['runs']:>5} "
                     f"{r['median_s'] / ember_median:>8.2f}   {pairs}".rstrip())
    return "\n".join(lines)


__all__ = ["bench", "cpu_name", "format_table", "paired_ratio", "time_interleaved"]
