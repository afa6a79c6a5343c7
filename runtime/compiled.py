"""The compiled module: validated feeds in, one native call, numpy outputs out."""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np

from ember.codegen.parallel import available_cores, set_threads
from ember.codegen.target import Target
from ember.ir import Graph
from ember.ir.errors import CompileError, InputError

from .build import ENTRY, build
from .memory import ALIGNMENT
from .module import ModuleBase


def aligned_empty(nbytes: int, alignment: int = ALIGNMENT) -> np.ndarray:
    """A byte array whose data pointer is ``alignment``-aligned."""
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    start = (-raw.ctypes.data) % alignment
    return raw[start:start + nbytes]


class CompiledModule(ModuleBase):
    """A graph compiled to native code for ``target`` (see :func:`ember.compile`)."""

    def __init__(self, graph: Graph, target: Target, *, opt_level: int = 3, passes: list | None = None,
                 num_threads: int | None = None, profile: bool = False, configs=None):
        super().__init__(graph)
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise CompileError(f"num_threads must be a positive integer or None, got {num_threads!r}")
        self.target = target
        self.opt_level = opt_level
        # configs: node -> tuned schedule config or None (see ember.runtime.build.build)
        builder, self._jit, self.compile_s = build(graph, target, profile=profile, configs=configs)
        self._builder = builder
        plan = builder.plan
        self._weights = plan.weights  # kept alive: the native code reads them
        self._arena = aligned_empty(plan.arena_bytes)
        self._entry = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p)(self._jit.address(ENTRY))
        # parallel loops run on the process's native pool (started here, shared by all modules)
        self.num_threads = set_threads(self._jit, num_threads or available_cores())
        n_in, n_out = len(self.input_names), len(self.output_names)
        self._args = (ctypes.c_void_p * (n_in + n_out + len(plan.weights) + 2))()
        for i, w in enumerate(plan.weights):
            self._args[n_in + n_out + i] = w.ctypes.data
        self._args[n_in + n_out + len(plan.weights)] = self._arena.ctypes.data
        # per-call nanoseconds, written by a profiling build's entry point
        self._profile = np.zeros(len(builder.calls), np.int64) if profile else None
        if profile:
            self._args[n_in + n_out + len(plan.weights) + 1] = self._profile.ctypes.data
        self._passes = passes or []
        self._lock = threading.Lock()  # the argument table and the arena are shared by calls

    def _execute(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        outputs = [np.empty(t.shape, t.np_dtype) for t in self.output_types]
        with self._lock:
            args = self._args
            for i, a in enumerate(arrays):
                args[i] = a.ctypes.data
            for j, o in enumerate(outputs, start=len(arrays)):
                args[j] = o.ctypes.data
            status = self._entry(ctypes.addressof(args))
        if status:
            node, message = self._builder.failure(status)
            raise InputError(message, node=node.name, op=node.op)
        return outputs

    def kernel_seconds(self, reset: bool = True) -> list[tuple[Any, float]]:
        """``(node, seconds)`` per kernel call since the last reset, in call order (needs
        ``ember.compile(..., profile=True)``)."""
        if self._profile is None:
            raise CompileError("this module was compiled without profile=True")
        times = [(node, nanos * 1e-9) for (node, _, _), nanos in zip(self._builder.calls, self._profile.tolist())]
        if reset:
            self._profile[:] = 0
        return times

    def profile(self, reset: bool = True) -> list[dict[str, Any]]:
        """Time per kernel since the last reset, slowest first (needs ``ember.compile(..., profile=True)``).

        Each entry: ``{"node", "op", "ops" (a Fused group's ops), "output" (its type), "seconds"}``.
        """
        rows = []
        for node, seconds in self.kernel_seconds(reset):
            ops = [node.op]
            if node.op == "Fused":
                from ember.ir.ops.fused import body_graph

                ops = [n.op for n in body_graph(node.attrs).nodes]
            rows.append({"node": node.name, "op": node.op, "ops": ops, "output": str(node.outputs[0].type),
                         "seconds": seconds})
        return sorted(rows, key=lambda r: -r["seconds"])

    def stats(self) -> dict[str, Any]:
        """Kernel count, planned arena bytes (and the sum of all intermediates, the arena
        without reuse), weight bytes, compile seconds, target, pass timings."""
        b = self._builder
        return {
            "kernels": len(b.calls),
            "unique_kernels": len(b.kernels),
            "arena_bytes": b.plan.arena_bytes,
            "intermediate_bytes": b.plan.unplanned_bytes,
            "weight_bytes": int(sum(w.nbytes for w in b.plan.weights)),
            "compile_s": self.compile_s,
            "target": str(self.target),
            "threads": self.num_threads,
            "passes": list(self._passes),
        }

    def kernels_text(self) -> str:
        """The loop IR of every distinct kernel (for debugging)."""
        return "\n".join(str(kernel) for _, kernel in self._builder.kernels.values())

    def llvm_ir(self) -> str:
        """The LLVM IR of the whole module before optimization."""
        return str(self._builder.module)

    def assembly(self) -> str:
        """The optimized machine code, as assembly text."""
        return self._jit.assembly()
