"""Measuring candidate configs: build and time each in a child process, with a timeout.

:func:`measure_batch` measures a list of configs of one task. It starts a
child Python process (:mod:`ember.autotune.worker`, with ``subprocess``, so it
works inside daemonic pool workers and Dask workers alike) that builds each candidate kernel
(:meth:`Task.lower` then :func:`ember.codegen.run.compile_kernel`), runs it
once on seeded random inputs and checks the answer against the op's numpy
reference, then times it: ``warmup`` runs, then ``repeats`` timed runs of
enough calls each to last ``min_repeat_s``, more runs until ``min_total_s``
has been measured (with ``flush_cache``, single calls each after its weights
are flushed from the caches: :mod:`.cache_flush`). A candidate that crashes the child (a segfault), does not
answer within ``timeout_s`` (the child is killed) or computes a wrong answer
costs one failed trial, recorded in :attr:`MeasureResult.error`; the child
is restarted for the rest of the batch.

:class:`Measurer` measures a task's batches with ``jobs`` children at once:
children of its own, kept from batch to batch, or ``jobs`` calls of
:func:`measure_batch` per batch on any :class:`concurrent.futures.Executor`,
so measurements can run on a cluster::

    from dask.distributed import Client
    client = Client("tcp://scheduler:8786")
    ember.tune("model.onnx", records="tune.jsonl", executor=client.get_executor(), jobs=8)

Testing the failure paths: the environment variable ``EMBER_TUNE_FAULT``
plants faults, ``KIND:KNOB=VALUE[,KNOB=VALUE...]`` separated by ``;`` with
KIND ``crash`` (the child segfaults), ``hang`` (it never answers) or
``wrong`` (the candidate's first output is off by one somewhere), applied
to every candidate whose config has those knob values, e.g.
``EMBER_TUNE_FAULT="crash:vector_chunk=2;hang:vector_chunk=4"``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_ENV = "EMBER_TUNE_FAULT"


@dataclass
class MeasureResult:
    """The outcome of measuring one config: seconds per run, or why it failed.

    ``error`` is ``None``, ``"timeout"``, ``"crash: ..."``, ``"wrong answer: ..."``
    or ``"build: ..."``.
    """

    config: dict
    costs: list[float] | None
    error: str | None = None

    @property
    def cost(self) -> float:
        """The median seconds per run; infinite when the candidate failed."""
        if self.error is not None or not self.costs:
            return float("inf")
        return statistics.median(self.costs)

    @property
    def ok(self) -> bool:
        """Whether the candidate ran and computed the right answer."""
        return self.error is None and bool(self.costs)


@dataclass
class MeasureOptions:
    """How candidates are measured (see the module docstring)."""

    repeats: int = 5  # timed runs at least
    warmup: int = 1  # untimed runs after the first (checked) one
    min_repeat_s: float = 0.004  # each timed run calls the kernel enough times to last this long
    min_total_s: float = 0.02  # keep adding timed runs (up to 4 x repeats) until this much is measured
    timeout_s: float = 20.0  # per candidate: build, check and timing
    startup_timeout_s: float = 120.0  # the child's imports and reference computation
    threads: int | None = None  # threads of parallel loops (None: every core)
    check: bool = True  # compare the first run with the numpy reference
    rtol: float = 1e-3
    seed: int = 0  # of the random inputs
    # time single calls, each after the kernel's inputs but the first (its weights) are flushed from
    # the caches, as inside a model (:mod:`.cache_flush`); runs until min_total_s, up to 4 x repeats
    flush_cache: bool = False
    fault: str | None = field(default_factory=lambda: os.environ.get(FAULT_ENV) or None)


def task_payload(task) -> dict:
    """What a child needs to rebuild ``task``: its node as the IR text of a one-node graph
    (inputs as graph inputs) and the name of the target to build for."""
    from ember.ir import Graph, print_graph

    graph = Graph("task")
    inputs = [graph.add_input(f"in{i}", v.type) for i, v in enumerate(task.node.inputs)]
    node = graph.add_node(task.node.op, inputs, task.node.attrs)
    graph.set_outputs(node.outputs)
    return {"graph": print_graph(graph), "target": task.build_target.name, "kernel": task.kernel_name}


# ------------------------------------------------------------------ the parent side

def measure_batch(payload: dict, configs: list[dict], options: MeasureOptions | None = None) -> list[MeasureResult]:
    """Measure ``configs`` of the task ``payload`` (:func:`task_payload`) in a child process,
    restarted after every candidate that crashes or hangs. Runs anywhere ember is installed
    (a thread, a process pool worker, a Dask worker)."""
    session = _Session(payload, options or MeasureOptions())
    try:
        return session.measure(configs)
    finally:
        session.close()


class _Session:
    """Measures configs in one child process at a time, started when needed and replaced after a
    crash, a hang, or ``CANDIDATES_PER_CHILD`` candidates (so JIT-compiled code does not pile up)."""

    CANDIDATES_PER_CHILD = 64

    def __init__(self, payload: dict, options: MeasureOptions):
        self.payload, self.options = payload, options
        self.child: _Child | None = None
        self.served = 0

    def measure(self, configs: list[dict]) -> list[MeasureResult]:
        results: list[MeasureResult] = []
        for config in configs:
            if self.child is not None and self.served >= self.CANDIDATES_PER_CHILD:
                self.close()
            if self.child is None:
                self.child, self.served = _Child(self.payload, self.options), 0
                if self.child.startup_error:
                    error, self.child = self.child.startup_error, None
                    return results + [MeasureResult(c, None, error) for c in configs[len(results):]]
            results.append(self.child.measure(config))
            self.served += 1
            if not self.child.alive:
                self.child = None
        return results

    def close(self) -> None:
        if self.child is not None:
            self.child.close()
            self.child = None


class _Child:
    """One measuring child process, spoken to in JSON lines over its stdin and stdout."""

    def __init__(self, payload: dict, options: MeasureOptions):
        self.options = options
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from ember.autotune.worker import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, bufsize=0)
        self.buffer = b""
        self.alive = True
        self.startup_error: str | None = None
        self._send({"payload": payload, "options": asdict(options)})
        reply = self._receive(options.startup_timeout_s)
        if reply is None or "error" in reply:
            self.startup_error = f"build: the measuring process failed to start: {self._failure(reply)}"
            self.close(kill=True)

    def measure(self, config: dict) -> MeasureResult:
        try:
            self._send({"config": config})
            reply = self._receive(self.options.timeout_s)
        except OSError:  # the pipe broke: the child is gone
            reply = None
        if reply is None:
            message = "timeout" if self.proc.poll() is None else f"crash: {self._failure(None)}"
            self.close(kill=True)
            return MeasureResult(config, None, message)
        return MeasureResult(config, reply.get("costs"), reply.get("error"))

    def _send(self, message: dict) -> None:
        self.proc.stdin.write((json.dumps(message) + "\n").encode())

    def _receive(self, timeout: float) -> dict | None:
        """The child's next message; ``None`` when it died or did not answer in ``timeout`` s."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self.proc.wait()
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def _failure(self, reply: dict | None) -> str:
        """Why the child failed: its message, its exit signal or status, its last stderr line."""
        if reply is not None:
            return reply["error"]
        code = self.proc.poll()
        if code is None:
            return "no answer"
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        self.stderr.seek(0)
        tail = self.stderr.read().decode(errors="replace").strip().splitlines()
        return how + (f" ({tail[-1]})" if tail else "")

    def close(self, kill: bool = False) -> None:
        """End the child: at once with ``kill`` (a hung one), else by closing its input."""
        if self.proc.poll() is None:
            if not kill:
                try:
                    self.proc.stdin.close()  # a healthy child exits at end of input
                    self.proc.wait(timeout=5.0)
                except (OSError, subprocess.TimeoutExpired):
                    kill = True
            if kill:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.stderr):
            try:
                stream.close()
            except OSError:
                pass
        self.alive = False


class Measurer:
    """Measures batches of one task's configs, ``jobs`` child processes at once.

    With an ``executor`` (any :class:`concurrent.futures.Executor`, a Dask
    client's ``get_executor()`` included) each batch is ``jobs`` calls of
    :func:`measure_batch` on it, each with a child process of its own. Without,
    the measurer keeps ``jobs`` child processes alive from batch to batch (on
    threads of its own), sparing a process start per batch.
    """

    def __init__(self, task, *, options: MeasureOptions | None = None, executor: Executor | None = None,
                 jobs: int = 1):
        self.payload = task_payload(task)
        self.options = options or MeasureOptions()
        parse_faults(self.options.fault)  # a bad spec fails here, not in every child
        self.jobs = max(1, jobs)
        self.executor = executor
        self._sessions = [] if executor is not None else [_Session(self.payload, self.options)
                                                          for _ in range(self.jobs)]
        self._threads = ThreadPoolExecutor(self.jobs) if executor is None and self.jobs > 1 else None

    def measure(self, configs: list[dict]) -> list[MeasureResult]:
        """Results of ``configs``, in order."""
        if not configs:
            return []
        if self.executor is None and self._threads is None:
            return self._sessions[0].measure(configs)
        size = -(-len(configs) // self.jobs)
        chunks = [configs[i:i + size] for i in range(0, len(configs), size)]
        if self.executor is not None:
            futures = [self.executor.submit(measure_batch, self.payload, chunk, self.options) for chunk in chunks]
        else:
            futures = [self._threads.submit(session.measure, chunk) for session, chunk in zip(self._sessions, chunks)]
        return [result for future in futures for result in future.result()]

    def close(self) -> None:
        """Stop the child processes (and threads) the measurer owns."""
        for session in self._sessions:
            session.close()
        if self._threads is not None:
            self._threads.shutdown()

    def __enter__(self) -> Measurer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def parse_faults(spec: str | None) -> list[tuple[str, dict]]:
    """``"crash:a=1,b=x;hang:a=2"`` -> ``[("crash", {"a": 1, "b": "x"}), ("hang", {"a": 2})]``."""
    faults = []
    for part in (spec or "").split(";"):
        if not part.strip():
            continue
        kind, _, knobs = part.partition(":")
        if kind.strip() not in ("crash", "hang", "wrong"):
            raise ValueError(f"{FAULT_ENV}: unknown fault {kind!r} (crash, hang or wrong)")
        wanted = {}
        for item in knobs.split(","):
            name, _, value = item.partition("=")
            try:
                wanted[name.strip()] = json.loads(value)
            except json.JSONDecodeError:
                wanted[name.strip()] = value.strip()
        faults.append((kind.strip(), wanted))
    return faults


def same_value(a: Any, b: Any) -> bool:
    """Config values compare as JSON does (tuples equal lists)."""
    return json.dumps(a, default=list) == json.dumps(b, default=list)


__all__ = ["FAULT_ENV", "MeasureOptions", "MeasureResult", "Measurer", "measure_batch", "parse_faults", "task_payload"]
