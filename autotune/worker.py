"""The measuring child process: builds, checks and times the candidates its parent sends.

Started by :mod:`ember.autotune.measure` as ``python -c "from ember.autotune.worker
import serve; serve()"``; it reads JSON lines on stdin (first the task and the
:class:`~ember.autotune.measure.MeasureOptions`, then one config per line) and
answers each with ``{"costs": [...], "error": ...}`` on stdout. A candidate
that crashes or hangs this process is the parent's to notice and report.
The last few candidates that built and checked are kept, so a config sent
again (the rounds of a confirm phase) is timed without rebuilding it.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.codegen.parallel import available_cores, set_threads
from ember.codegen.run import compile_kernel
from ember.codegen.target import as_target
from ember.ir import parse

from .cache_flush import flush
from .measure import MeasureOptions, parse_faults, same_value
from .records import config_key
from .task import Task, target_key, workload_of


def serve() -> None:
    """The measuring child's main loop: read the task, then measure configs until end of input.

    Messages are JSON lines on stdin; answers go to the original stdout, which
    is then pointed at stderr so nothing else printed can corrupt them.
    """
    _die_with_parent()
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def answer(message: dict) -> None:
        answers.write(json.dumps(message) + "\n")
        answers.flush()

    setup = json.loads(sys.stdin.readline())
    try:
        bench = _Bench(setup["payload"], MeasureOptions(**setup["options"]))
    except Exception as err:  # noqa: BLE001 -- any failure to set up is reported, not raised
        answer({"error": f"{type(err).__name__}: {err}"})
        return
    answer({"ready": True})
    for line in sys.stdin:
        config = json.loads(line)["config"]
        answer(bench.measure(config))


def _die_with_parent() -> None:
    """Have Linux kill this process when its parent dies (a hung candidate must not outlive a
    killed tuning run); elsewhere a child only notices the end of its input."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class _Built:
    """A built and checked candidate, ready to time: its native entry and the buffers it runs on."""

    call: Any
    pointers: list[int]
    keep: list[Any]  # its buffers and compiled code, kept alive while it may be called


class _Bench:
    """Builds, checks and times candidates of one task in the child process."""

    KEEP_BUILT = 8  # candidates kept built for timing again

    def __init__(self, payload: dict, options: MeasureOptions):
        graph = parse(payload["graph"])
        node = graph.nodes[0]
        target = as_target(payload["target"])
        self.task = Task(workload_of(node), target_key(target), 1, node, target)
        self.options = options
        self.faults = parse_faults(options.fault)
        rng = np.random.default_rng(options.seed)
        self.inputs = [_random_array(rng, v.type.shape, v.type.np_dtype) for v in node.inputs]
        self.expected = None
        if options.check:
            self.expected = [np.asarray(a) for a in node.opdef.reference(list(self.inputs), node.attrs)]
        self.built: OrderedDict[str, _Built] = OrderedDict()

    def measure(self, config: dict) -> dict:
        """``{"costs": seconds per run, "error": None}``, or ``{"costs": None, "error": why}``."""
        self._plant_faults(config)
        key = config_key(config)
        built = self.built.get(key)
        if built is None:
            built = self._build(config)
            if isinstance(built, str):
                return {"costs": None, "error": built}
            self.built[key] = built
            while len(self.built) > self.KEEP_BUILT:
                self.built.popitem(last=False)
        self.built.move_to_end(key)
        before = (lambda: flush(self.inputs[1:])) if self.options.flush_cache else None
        return {"costs": _time(built.call, built.pointers, self.options, before), "error": None}

    def _build(self, config: dict) -> _Built | str:
        """``config`` built, run once and checked against the reference; or why it failed."""
        try:
            kernel = self.task.lower(config)
            function = compile_kernel(kernel, self.task.build_target)
        except Exception as err:  # noqa: BLE001 -- a candidate that cannot be built is a failed trial
            return f"build: {type(err).__name__}: {err}"
        set_threads(function.jit, self.options.threads or available_cores())
        outputs = [np.empty(b.shape, b.dtype) for b in kernel.outputs]
        workspaces = [np.empty(b.shape, b.dtype) for b in kernel.workspaces]
        pointers = [a.ctypes.data for a in [*self.inputs, *outputs, *workspaces]]
        call = ctypes.CFUNCTYPE(ctypes.c_int32, *[ctypes.c_void_p] * len(pointers))(
            function.jit.address(kernel.name))
        status = call(*pointers)
        if status:
            return f"crash: check failed: {kernel.checks()[status - 1]}"
        if self._faulty(config, "wrong"):
            outputs[0].reshape(-1)[:1] += 1
        wrong = self._compare(outputs)
        if wrong:
            return f"wrong answer: {wrong}"
        return _Built(call, pointers, [*outputs, *workspaces, function])

    def _compare(self, outputs) -> str | None:
        for i, (got, want) in enumerate(zip(outputs, self.expected or [])):
            want = want.reshape(got.shape)
            if got.dtype.kind in "fc":
                scale = float(np.max(np.abs(want[np.isfinite(want)]), initial=0.0))
                atol = self.options.rtol * max(scale, 1e-30)
                if not np.allclose(got, want, rtol=self.options.rtol, atol=atol, equal_nan=True):
                    return f"output {i} differs from the reference by up to {np.nanmax(np.abs(got - want)):.3g}"
            elif not np.array_equal(got, want):
                return f"output {i} differs from the reference in {int(np.sum(got != want))} elements"
        return None

    def _faulty(self, config: dict, kind: str) -> bool:
        """Whether a planted fault of ``kind`` matches ``config``."""
        return any(k == kind and all(same_value(config.get(name), v) for name, v in wanted.items())
                   for k, wanted in self.faults)

    def _plant_faults(self, config: dict) -> None:
        if self._faulty(config, "crash"):
            ctypes.string_at(0)  # reads address 0: SIGSEGV
        while self._faulty(config, "hang"):
            time.sleep(60)


def _time(call, pointers: list[int], options: MeasureOptions, before=None) -> list[float]:
    """Seconds per call of ``repeats`` or more timed runs (see :class:`MeasureOptions`); with
    ``before``, each timed run is one call, after an untimed ``before()``."""
    for _ in range(options.warmup):
        call(*pointers)
    number = 1  # calls per timed run: without ``before``, doubled until a run lasts min_repeat_s
    while before is None:
        elapsed = _run(call, pointers, number)
        if elapsed >= options.min_repeat_s or number >= 1 << 20:
            break
        number *= 2
    costs: list[float] = []  # the calibration runs are warm-up too
    measured = 0.0
    while len(costs) < options.repeats or (measured < options.min_total_s and len(costs) < 4 * options.repeats):
        if before is not None:
            before()
        elapsed = _run(call, pointers, number)
        measured += elapsed
        costs.append(elapsed / number)
    return costs


def _run(call, pointers: list[int], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        call(*pointers)
    return time.perf_counter() - start


def _random_array(rng, shape, dtype):
    """Seeded inputs: normal floats, 0/1 integers (valid indices and divisors of most ops), random bools."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    return rng.integers(0, 2, shape).astype(dtype)


__all__ = ["serve"]
