"""Building a graph into one native entry point.

Every node lowers to a kernel through its op's compute definition and
schedule; identical kernels (same op, attributes and input types) are emitted
once. The graph executor itself is generated code: ``i32 ember_main(ptr args)``
calls the kernels in order, reading inputs, outputs and weights from the
``args`` pointer table and placing intermediates in one scratch arena. When a
kernel's data-dependent check fails, the entry returns at once with
``(call index + 1) << 16 | check status``.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import llvmlite.ir as ir
import numpy as np

from ember.codegen.jit import JitModule
from ember.codegen.llvm import I32, I64, PTR, emit_kernel
from ember.codegen.target import Target
from ember.ir import Graph, Node, Value
from ember.ir.debug import debug_level, debug_print
from ember.ir.errors import CompileError, EmberError
from ember.ir.loops import Kernel, Tensor, create_schedule, lower, placeholder
from ember.ir.loops.knobs import Knobs
from ember.ir.loops.schedule import ScheduleError

from .memory import Lifetime, aligned, plan_arena

ENTRY = "ember_main"


def default_schedule(outputs: list[Tensor], target: Target, knobs=None):
    """The schedule used when an op has no template: stages tagged ``inline`` are inlined."""
    schedule = create_schedule(outputs)
    for stage in schedule.stages:
        if not stage.is_extern and stage.op.tag == "inline" and all(stage.tensor is not t for t in outputs):
            stage.compute_inline()
    return schedule


def lower_node(node: Node, target: Target, name: str, knobs: Knobs | None = None) -> Kernel:
    """The kernel of one node: compute definition, then its schedule (with ``knobs``, default
    choices when none), then lowering."""
    opdef = node.opdef
    inputs = [placeholder(v.type.shape, v.type.dtype, f"in{i}") for i, v in enumerate(node.inputs)]
    outputs = opdef.compute(inputs, node.attrs, [v.type for v in node.outputs])
    for out, value in zip(outputs, node.outputs):
        if (out.shape, out.dtype) != (value.type.shape, value.type.dtype):
            raise CompileError(f"compute gives {out.dtype}{list(out.shape)}, inference {value.type}",
                               node=node.name, op=node.op)
    schedule = (opdef.schedule or default_schedule)(list(outputs), target, knobs)
    return lower(schedule, inputs, name)


def kernel_key(node: Node, config: dict | None = None) -> tuple:
    """What makes two nodes' kernels identical: op, attributes, input types and schedule config."""
    return (node.op, tuple(sorted((k, v) for k, v in node.attrs.items())),
            tuple(v.type for v in node.inputs), json.dumps(config, sort_keys=True))


@dataclass
class Plan:
    """Where every value lives: ``args`` slot (inputs, outputs, weights) or arena offset."""

    slots: dict[int, int] = field(default_factory=dict)
    offsets: dict[Any, int] = field(default_factory=dict)
    arena_bytes: int = 0
    unplanned_bytes: int = 0  # what the arena would take without reuse
    weights: list[np.ndarray] = field(default_factory=list)


def materialize_outputs(graph: Graph) -> Graph:
    """A copy of ``graph`` in which every output is written by a node of its own.

    A graph output that is a graph input, a constant, or listed twice gets an
    Identity node, so the entry point always writes each output buffer.
    """
    graph = graph.copy()
    produced = {id(out) for node in graph.nodes for out in node.outputs}
    outputs, seen = [], set()
    for v in graph.outputs:
        if id(v) not in produced or id(v) in seen:
            v = graph.add_node("Identity", [v], output_names=[graph.fresh_name(v.name)]).output
        seen.add(id(v))
        outputs.append(v)
    graph.outputs = outputs
    return graph


def check_lowerable(graph: Graph) -> None:
    """Refuse, in one error, every op of the graph without a compute definition."""
    missing: dict[str, list[str]] = {}
    for node in graph.nodes:
        if node.opdef.compute is None:
            missing.setdefault(node.op, []).append(node.name)
    if missing:
        listing = "; ".join(f"{op} (nodes {', '.join(map(repr, names[:5]))})" for op, names in sorted(missing.items()))
        raise CompileError(f"cannot compile {len(missing)} op(s) that have no compute definition yet: {listing}")


class GraphBuilder:
    """Lowers every node, plans memory and emits the entry point into one LLVM module."""

    def __init__(self, graph: Graph, target: Target, *, profile: bool = False,
                 configs: Callable[[Node], dict | None] | None = None):
        self.graph = materialize_outputs(graph)
        self.target = target
        self.profile = profile  # time every kernel call into the args table's profile slot
        self.configs = configs  # node -> its schedule knobs' config (tuning records), None: defaults
        self.module = ir.Module(name=graph.name)
        self.kernels: dict[tuple, tuple[ir.Function, Kernel]] = {}
        self.calls: list[tuple[Node, ir.Function, Kernel]] = []
        self.plan = Plan()

    def build(self) -> "GraphBuilder":
        check_lowerable(self.graph)
        for node in self.graph.nodes:
            config = self.configs(node) if self.configs and node.opdef.compute is not None else None
            key = kernel_key(node, config)
            if key not in self.kernels:
                name = f"k{len(self.kernels)}_{node.op}"
                try:
                    kernel = self._lower(node, name, config)
                except EmberError as err:
                    raise err.at(node=node.name, op=node.op) from None
                self.kernels[key] = (emit_kernel(self.module, kernel, target=self.target), kernel)
                debug_print(3, f"kernel {name} for node {node.name!r}: {_loop_summary(kernel)}")
                debug_print(4, str(kernel))
            self.calls.append((node, *self.kernels[key]))
        self._plan_memory()
        self._emit_entry()
        return self

    def _lower(self, node: Node, name: str, config: dict | None) -> Kernel:
        """The node's kernel with the knobs of ``config``; the defaults when the config no
        longer fits the op's template (a record written by another ember version)."""
        if config is None:
            return lower_node(node, self.target, name)
        try:
            kernel = lower_node(node, self.target, name, Knobs(config))
        except ScheduleError as err:
            warnings.warn(f"node {node.name!r} ({node.op}): tuned config {config} does not fit the schedule "
                          f"template ({err}); using the default schedule", stacklevel=2)
            return lower_node(node, self.target, name)
        debug_print(3, f"kernel {name} for node {node.name!r}: tuned config {config}")
        return kernel

    def _plan_memory(self) -> None:
        """Slots for inputs, outputs and weights; arena offsets for intermediates and workspaces."""
        g, plan = self.graph, self.plan
        for i, v in enumerate(g.inputs):
            plan.slots[id(v)] = i
        for j, v in enumerate(g.outputs):
            plan.slots[id(v)] = len(g.inputs) + j
        base = len(g.inputs) + len(g.outputs)
        for c in g.constants():
            plan.slots[id(c)] = base + len(plan.weights)
            plan.weights.append(np.ascontiguousarray(c.data))
        self.arena_slot = base + len(plan.weights)
        lifetimes: dict[int, Lifetime] = {}
        for index, (node, _, kernel) in enumerate(self.calls):
            for out in node.outputs:
                if id(out) not in plan.slots:
                    lifetimes[id(out)] = Lifetime(id(out), out.type.nbytes, index, index)
            for v in node.inputs:
                if id(v) in lifetimes:
                    lifetimes[id(v)] = Lifetime(id(v), lifetimes[id(v)].nbytes, lifetimes[id(v)].first, index)
            for ws in kernel.workspaces:
                key = (id(ws), id(node))
                lifetimes[key] = Lifetime(key, ws.size * np.dtype(ws.dtype).itemsize, index, index)
        plan.offsets, plan.arena_bytes = plan_arena(list(lifetimes.values()))
        plan.unplanned_bytes = sum(aligned(b.nbytes) for b in lifetimes.values())

    def _emit_entry(self) -> None:
        fn = ir.Function(self.module, ir.FunctionType(I32, [PTR]), name=ENTRY)
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        args = fn.args[0]

        def slot(i: int) -> ir.Value:
            return b.load(b.gep(args, [ir.Constant(I64, i)], inbounds=True, source_etype=PTR), typ=PTR)

        arena = slot(self.arena_slot)

        def arena_at(offset: int) -> ir.Value:
            return b.gep(arena, [ir.Constant(I64, offset)], inbounds=True, source_etype=ir.IntType(8))

        def pointer(v: Value) -> ir.Value:
            if id(v) in self.plan.slots:
                return slot(self.plan.slots[id(v)])
            return arena_at(self.plan.offsets[id(v)])

        clock = self._clock(b) if self.profile else None
        for index, (node, kernel_fn, kernel) in enumerate(self.calls):
            ptrs = [pointer(v) for v in node.inputs] + [pointer(v) for v in node.outputs]
            ptrs += [arena_at(self.plan.offsets[id(ws), id(node)]) for ws in kernel.workspaces]
            start = clock() if clock else None
            status = b.call(kernel_fn, ptrs)
            if clock:
                total = b.gep(slot(self.arena_slot + 1), [ir.Constant(I64, index)], inbounds=True, source_etype=I64)
                b.store(b.add(b.load(total, typ=I64), b.sub(clock(), start)), total)
            if kernel.checks():
                failed = b.icmp_unsigned("!=", status, ir.Constant(I32, 0))
                with b.if_then(failed, likely=False):
                    b.ret(b.or_(status, ir.Constant(I32, (index + 1) << 16)))
        b.ret(ir.Constant(I32, 0))

    def _clock(self, b: ir.IRBuilder):
        """A function emitting ``clock_gettime(CLOCK_MONOTONIC)`` in nanoseconds at the builder."""
        timespec = ir.LiteralStructType([I64, I64])
        gettime = self.module.globals.get("clock_gettime") or ir.Function(
            self.module, ir.FunctionType(I32, [I32, PTR]), name="clock_gettime")
        with b.goto_entry_block():
            ts = b.alloca(timespec, name="ts")
        ts.type = PTR  # llvmlite types an alloca as a typed pointer; fields are addressed through ptr

        def now() -> ir.Value:
            b.call(gettime, [ir.Constant(I32, 1), ts])
            seconds = b.load(b.gep(ts, [ir.Constant(I32, 0), ir.Constant(I32, 0)], source_etype=timespec), typ=I64)
            nanos = b.load(b.gep(ts, [ir.Constant(I32, 0), ir.Constant(I32, 1)], source_etype=timespec), typ=I64)
            return b.add(b.mul(seconds, ir.Constant(I64, 1_000_000_000)), nanos)

        return now

    def failure(self, code: int) -> tuple[Node, str]:
        """The node and message of a failed check, from the entry point's return code."""
        node, _, kernel = self.calls[(code >> 16) - 1]
        return node, kernel.checks()[(code & 0xFFFF) - 1]


def _loop_summary(kernel: Kernel) -> str:
    """The kernel's loops, outermost first, with extents and annotations (``for i:56 parallel``)."""
    from ember.ir.loops.stmt import For, walk_stmts

    parts = [f"{s.var.name}:{s.extent}" + ("" if s.kind == "serial" else f" {s.kind}")
             for s in walk_stmts(kernel.body) if isinstance(s, For)]
    return ", ".join(parts) or "(no loops)"


def build(graph: Graph, target: Target, *, profile: bool = False,
          configs: Callable[[Node], dict | None] | None = None) -> tuple[GraphBuilder, JitModule, float]:
    """Lower, optimize and JIT-compile ``graph``; returns the builder, the JIT module and seconds taken.

    With ``profile``, the entry point adds each kernel call's nanoseconds to
    the int64 array in the slot after the arena's. ``configs`` gives a node's
    schedule config (from tuning records), ``None`` for the template's defaults.
    """
    start = time.perf_counter()
    builder = GraphBuilder(graph, target, profile=profile, configs=configs).build()
    jit = JitModule(builder.module, target)
    if debug_level() >= 5:
        debug_print(5, str(jit.llvm_module))
        debug_print(5, jit.assembly())
    return builder, jit, time.perf_counter() - start
