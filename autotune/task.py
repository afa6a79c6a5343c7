"""Tuning tasks: the distinct tunable workloads of a compiled model.

A *workload* names what a kernel computes, independently of the model it
came from: the op, its input shapes, dtype and attributes. A ``Fused`` node's
workload is its anchor op's (the op whose schedule template the group uses,
see :func:`ember.ir.ops.fused.anchor_node`), so every group built around the
same convolution shares one task and one tuned config. A :class:`Task` is a
workload for one target, with a representative node to lower it and the
number of nodes of the model that share it (its weight).

>>> tasks = extract_tasks("model.onnx")                       # doctest: +SKIP
>>> [(t.workload["op"], t.weight, len(t.space())) for t in tasks]   # doctest: +SKIP
[('Conv', 3, 4), ('MatMul', 1, 5)]
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ember.codegen.target import Target, as_target
from ember.ir import Node
from ember.ir.loops import Kernel
from ember.ir.loops.evaluate import evaluate
from ember.ir.loops.expr import Binary, Call, Expr, Not, Var, children, is_float
from ember.ir.loops.knobs import Knobs
from ember.ir.loops.stmt import Allocate, For, If, Let, Seq, Stmt, Store
from ember.ir.loops.visit import free_vars
from ember.runtime.build import lower_node

# float operations that count as useful work (comparisons, selects and index arithmetic do not)
_FLOAT_OPS = frozenset({"add", "sub", "mul", "div", "min", "max", "pow"})


def target_key(target: Target | str) -> str:
    """The target string records are keyed by: name, triple, CPU and vector width
    (``str(Target)``), so a record tuned on one CPU is not applied on another."""
    return str(as_target(target))


def workload_of(node: Node) -> dict:
    """The workload of ``node``: ``{"op", "shapes" (input shapes), "dtype", "attrs"}`` as plain
    JSON values; a ``Fused`` node's is its anchor op's."""
    if node.op == "Fused":
        from ember.ir.ops.fused import anchor_node

        node = anchor_node(node.attrs)
    first = node.inputs[0] if node.inputs else node.outputs[0]
    return {
        "op": node.op,
        "shapes": [list(v.type.shape) for v in node.inputs],
        "dtype": str(first.type.dtype),
        "attrs": {k: _plain(v) for k, v in sorted(node.attrs.items())},
    }


def workload_key(workload: dict) -> str:
    """A canonical string of ``workload`` (sorted keys), for dictionaries and comparisons."""
    return json.dumps(workload, sort_keys=True, separators=(",", ":"))


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back: tuples become lists, numpy scalars and arrays plain values."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, eq=False)
class Task:
    """One tunable workload of a model for one target.

    ``target`` is the records' target string (:func:`target_key`); the target
    the kernels are built for is ``compile_target`` (by default, the one the
    string names). ``node`` is a representative node, lowered by
    :func:`ember.runtime.build.lower_node` with the knobs of a config.

    >>> task.space()                                 # doctest: +SKIP
    {'vector_chunk': (1, 2, 4, 8, 16, 32, 64), 'parallel': (True, False)}
    >>> kernel = task.lower({"vector_chunk": 8})     # doctest: +SKIP
    """

    workload: dict
    target: str
    weight: int
    node: Node
    compile_target: Target | None = field(default=None, repr=False)

    @cached_property
    def build_target(self) -> Target:
        """The target kernels are built for."""
        return self.compile_target or as_target(self.target.split(" (")[0])

    @cached_property
    def _default_knobs(self) -> Knobs:
        knobs = Knobs()
        lower_node(self.node, self.build_target, self.kernel_name, knobs)
        return knobs

    @property
    def kernel_name(self) -> str:
        """The name candidate kernels get."""
        return f"tune_{self.workload['op']}"

    @property
    def key(self) -> str:
        """The workload's canonical string (:func:`workload_key`)."""
        return workload_key(self.workload)

    def space(self) -> dict[str, tuple]:
        """Knob name -> options, as the op's template declares them for this workload."""
        return dict(self._default_knobs.space)

    def space_size(self) -> int:
        """How many configs the space holds."""
        return self._default_knobs.size

    def defaults(self) -> dict:
        """The config the template picks without tuning."""
        return dict(self._default_knobs.defaults)

    def lower(self, config: dict) -> Kernel:
        """The kernel of this workload with the knobs of ``config`` (defaults for missing knobs)."""
        return lower_node(self.node, self.build_target, self.kernel_name, Knobs(config))

    def flops(self) -> float:
        """Useful float operations of one run, counted on the default kernel's loop nest
        (:func:`kernel_flops`); a kernel without float arithmetic counts its output elements."""
        return self._flops

    @cached_property
    def _flops(self) -> float:
        kernel = self.lower(self.defaults())
        return kernel_flops(kernel) or float(sum(math.prod(b.shape) for b in kernel.outputs))

    def describe(self) -> str:
        """A one-line summary: op, input shapes, weight."""
        shapes = " ".join("x".join(map(str, s)) or "scalar" for s in self.workload["shapes"])
        return f"{self.workload['op']} {shapes}" + (f" (x{self.weight})" if self.weight > 1 else "")

    def __repr__(self) -> str:
        return f"Task({self.describe()}, space {self.space_size()})"


def kernel_flops(kernel: Kernel) -> float:
    """Float arithmetic operations (add, sub, mul, div, min, max, pow, math calls) the kernel
    performs: the operations of every stored value, times the trip counts of its loops.

    A multiply-add in a reduction body counts 2 per iteration. Guarded (``if``) code counts
    for the share of its loops' iterations that take it, where the guard is an index
    expression of enclosing loop variables (a ragged tile's ``i < n``); under any other
    guard, both branches count as always taken.
    """
    total = 0.0

    def visit(stmt: Stmt | None, trips: float, loops: dict[int, tuple[Var, int]], guards: tuple[Expr, ...]) -> None:
        nonlocal total
        if stmt is None:
            return
        if isinstance(stmt, For):
            visit(stmt.body, trips * stmt.extent, {**loops, stmt.var.uid: (stmt.var, stmt.extent)}, guards)
        elif isinstance(stmt, Store):
            total += trips * _expr_flops(stmt.value)
        elif isinstance(stmt, Let):
            total += trips * _expr_flops(stmt.value)
            visit(stmt.body, trips, loops, guards)
        elif isinstance(stmt, If):
            taken = _share_taken(stmt.cond, guards, loops)
            visit(stmt.then, trips if taken is None else trips * taken, loops, (*guards, stmt.cond))
            visit(stmt.otherwise, trips if taken is None else trips * (1.0 - taken), loops, (*guards, Not(stmt.cond)))
        elif isinstance(stmt, Seq):
            for s in stmt.stmts:
                visit(s, trips, loops, guards)
        elif isinstance(stmt, Allocate):
            visit(stmt.body, trips, loops, guards)

    visit(kernel.body, 1.0, {}, ())
    return total


_MAX_GUARD_POINTS = 1 << 16  # iterations enumerated to weigh one guard; beyond, both branches count


def _share_taken(cond: Expr, guards: tuple[Expr, ...], loops: dict[int, tuple[Var, int]]) -> float | None:
    """The share of the iterations that pass the enclosing ``guards`` for which ``cond`` holds
    (over the enclosing ``loops``, by variable uid, that they mention); ``None`` when that cannot
    be worked out cheaply."""
    conditions = [*guards, cond]
    mentioned = {v.uid for c in conditions for v in free_vars(c)}
    if not mentioned <= loops.keys() or math.prod(loops[u][1] for u in mentioned) > _MAX_GUARD_POINTS:
        return None
    variables = [loops[u] for u in sorted(mentioned)]
    grid = np.meshgrid(*[np.arange(n) for _, n in variables], indexing="ij") if variables else []
    values = {v: g for (v, _), g in zip(variables, grid)}
    outcomes = [evaluate(c, values) for c in conditions]
    if any(o is None for o in outcomes):
        return None
    shape = grid[0].shape if grid else ()
    held = [np.broadcast_to(o, shape) for o in outcomes]  # a condition of fewer variables: constant along the rest
    inside = np.logical_and.reduce(held[:-1]) if guards else np.ones(shape, dtype=bool)
    passed = int(inside.sum())
    return float(held[-1][inside].sum() / passed) if passed else 0.0


def _expr_flops(expr: Expr) -> int:
    """Float operations in ``expr``, each shared subexpression counted once."""
    seen: set[int] = set()
    count = 0
    stack = [expr]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, Binary) and e.op in _FLOAT_OPS and is_float(e.dtype) or isinstance(e, Call):
            count += 1
        stack.extend(children(e))
    return count


def extract_tasks(model: Any, target: Target | str = "host", *, opt_level: int = 3, passes: Any = None,
                  input_shapes: Any = None, input_values: Any = None, tunable_only: bool = True) -> list[Task]:
    """The distinct workloads of ``model`` compiled for ``target`` (the graph
    :func:`ember.compile` would build: same import and pass pipeline), most
    frequent first, each with its weight. Only workloads whose space holds
    more than one config are returned unless ``tunable_only`` is false.
    """
    from ember.api import optimized_graph

    compile_target = as_target(target)
    graph, _ = optimized_graph(model, opt_level=opt_level, passes=passes, input_shapes=input_shapes,
                               input_values=input_values, target=compile_target)
    groups: dict[str, list[Node]] = {}
    for node in graph.nodes:
        if node.opdef.compute is None:
            continue
        groups.setdefault(workload_key(workload_of(node)), []).append(node)
    key = target_key(compile_target)
    tasks = [Task(workload_of(nodes[0]), key, len(nodes), nodes[0], compile_target) for nodes in groups.values()]
    if tunable_only:
        tasks = [t for t in tasks if t.space_size() > 1]
    return sorted(tasks, key=lambda t: -t.weight)


__all__ = ["Task", "extract_tasks", "kernel_flops", "target_key", "workload_key", "workload_of"]
