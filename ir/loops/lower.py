"""Lowering a schedule to a loop nest (:class:`Kernel`).

Each stage that is not inlined becomes one loop nest writing a buffer: kernel
outputs for the schedule's outputs, workspaces for intermediate stages.
Tensor reads become flat loads (row-major); reads of inlined stages are
replaced by their expressions. A reduction keeps its accumulator in a local
scalar when all its reduction loops are innermost, and otherwise initializes
the output buffer in a loop nest of its own first.
"""

from __future__ import annotations

from typing import Sequence

from .expr import INDEX, Expr, Var, const
from .schedule import Fuse, Schedule, Split, Stage
from .simplify import simplify
from .stmt import Allocate, Buffer, For, If, Kernel, Stmt, Store, seq
from .tensor import IterVar, Reduce, Tensor, TensorRead, combine
from .expr import Load, logical_and
from .visit import post_order, substitute


class LoweringError(ValueError):
    """The schedule cannot be lowered (e.g. it reads a tensor that is not a kernel input)."""


def flat_index(indices: Sequence[Expr], shape: Sequence[int]) -> Expr:
    """Row-major flat index of ``indices`` in ``shape``."""
    if not indices:
        return const(0, INDEX)
    index: Expr = indices[0]
    for i, extent in zip(indices[1:], shape[1:]):
        index = index * extent + i
    return index


class _Lowering:
    def __init__(self, schedule: Schedule, inputs: Sequence[Tensor], name: str):
        self.schedule = schedule
        self.name = name
        self.buffers: dict[int, Buffer] = {}
        params: list[Buffer] = []
        for t in inputs:
            params.append(self._buffer(t))
        outputs = schedule.outputs
        for t in outputs:
            params.append(self._buffer(t))
        self.workspaces = [self._buffer(s.tensor) for s in schedule.stages
                           if not s.inlined and id(s.tensor) not in self.buffers]
        self.params = params + self.workspaces
        self.num_inputs, self.num_outputs = len(inputs), len(outputs)

    def _buffer(self, t: Tensor) -> Buffer:
        if id(t) not in self.buffers:
            self.buffers[id(t)] = Buffer(t.name, t.dtype, t.shape)
        return self.buffers[id(t)]

    # ----------------------------------------------------------- expressions
    def reads_to_loads(self, e: Expr) -> Expr:
        """Replace tensor reads by loads of their buffers (or inlined expressions)."""
        def rule(x: Expr) -> Expr:
            if not isinstance(x, TensorRead):
                return x
            t = x.tensor
            if t.op is not None and self.schedule[t].inlined:
                body = substitute(t.op.body, {ax.var: i for ax, i in zip(t.op.axes, x.indices)})
                return self.reads_to_loads(body)
            if id(t) not in self.buffers:
                raise LoweringError(f"kernel {self.name} reads {t.name}, which is not one of its inputs")
            return Load(self.buffers[id(t)], flat_index(x.indices, t.shape), t.dtype)

        return post_order(e, rule)

    # ----------------------------------------------------------- loop nests
    def stage_nest(self, stage: Stage) -> Stmt:
        op = stage.op
        out = self.buffers[id(stage.tensor)]
        values = _axis_values(stage)
        ranges = {ax.var: (0, ax.extent - 1) for ax in stage.leaf}
        guards = _guards(stage, values)
        data_index = flat_index([values[ax] for ax in op.axes], stage.tensor.shape)
        leaf = stage.leaf
        body = op.body

        def fix(e: Expr) -> Expr:
            axis_map = {ax.var: values[ax] for ax in list(op.axes) + list(op.reduce_axes)}
            return simplify(self.reads_to_loads(substitute(e, axis_map)), ranges)

        if not isinstance(body, Reduce):
            return self._nest(stage, 0, len(leaf), guards, Store(out, simplify(data_index, ranges), fix(body)))

        data_leaves = [i for i, ax in enumerate(leaf) if ax.kind == "data"]
        reduce_leaves = [i for i, ax in enumerate(leaf) if ax.kind == "reduce"]
        identity = body.identity()
        if not data_leaves or not reduce_leaves or max(data_leaves) < min(reduce_leaves):
            # accumulate in a local scalar: for data { acc = id; for red { acc = acc (+) x }; out = acc }
            depth = len(data_leaves)
            acc = Buffer(f"{stage.tensor.name}.acc", body.dtype, (1,), scope="local")
            zero = const(0, INDEX)
            update = Store(acc, zero, combine(body.combiner, Load(acc, zero, acc.dtype), fix(body.source)))
            inner = seq(Store(acc, zero, identity), self._nest(stage, depth, len(leaf), guards, update),
                        Store(out, simplify(data_index, ranges), Load(acc, zero, acc.dtype)))
            return self._nest(stage, 0, depth, guards, Allocate(acc, inner))
        # general order: initialize the output first, then accumulate into it
        init_vars = [Var(f"{ax.name}.init") for ax in op.axes]
        init: Stmt = Store(out, flat_index(init_vars, stage.tensor.shape), identity)
        for v, ax in reversed(list(zip(init_vars, op.axes))):
            init = For(v, ax.extent, init)
        index = simplify(data_index, ranges)
        update = Store(out, index, combine(body.combiner, Load(out, index, out.dtype), fix(body.source)))
        return seq(init, self._nest(stage, 0, len(leaf), guards, update))

    def _nest(self, stage: Stage, start: int, stop: int, guards: list[tuple[int, Expr]], inner: Stmt) -> Stmt:
        """Loops ``leaf[start:stop]`` around ``inner``, each guard just inside its deepest loop."""
        body = inner
        for pos in range(stop - 1, start - 1, -1):
            conds = [g for level, g in guards if level == pos]
            if conds:
                body = If(logical_and(*conds), body)
            ax = stage.leaf[pos]
            body = For(ax.var, ax.extent, body, stage.annotations.get(ax, "serial"))
        return body

    def extern_nest(self, stage: Stage) -> Stmt | None:
        """The hand-written nest of an extern op, emitted once for all its outputs."""
        op = stage.op
        if stage.tensor is not op.outputs[0]:
            return None
        for t in op.outputs:
            if id(t) not in self.buffers:
                self.buffers[id(t)] = Buffer(t.name, t.dtype, t.shape)
        inputs = []
        for t in op.inputs:
            if t.op is not None and self.schedule[t].inlined:
                raise LoweringError(f"extern {t.name} reads an inlined stage")
            if id(t) not in self.buffers:
                raise LoweringError(f"kernel {self.name} reads {t.name}, which is not one of its inputs")
            inputs.append(self.buffers[id(t)])
        return op.body(inputs, [self.buffers[id(t)] for t in op.outputs])

    def lower(self) -> Kernel:
        nests = [self.extern_nest(s) if s.is_extern else self.stage_nest(s)
                 for s in self.schedule.stages if not s.inlined]
        return Kernel(self.name, self.params, seq(*nests), self.num_inputs, self.num_outputs)


def _axis_values(stage: Stage) -> dict[IterVar, Expr]:
    """Each original and intermediate axis as an expression of the leaf loop variables."""
    values: dict[IterVar, Expr] = {ax: ax.var for ax in stage.leaf}
    for rel in reversed(stage.relations):
        if isinstance(rel, Split):
            values[rel.parent] = values[rel.outer] * rel.factor + values[rel.inner]
        elif isinstance(rel, Fuse):
            fused = values[rel.fused]
            values[rel.outer] = fused // rel.inner.extent
            values[rel.inner] = fused % rel.inner.extent
    return values


def _guards(stage: Stage, values: dict[IterVar, Expr]) -> list[tuple[int, Expr]]:
    """Bounds checks of non-dividing splits, each with the leaf position it must sit inside."""
    from .visit import free_vars

    position = {ax.var: i for i, ax in enumerate(stage.leaf)}
    ranges = {ax.var: (0, ax.extent - 1) for ax in stage.leaf}
    guards = []
    for rel in stage.relations:
        if isinstance(rel, Split) and rel.parent.extent % rel.factor:
            cond = simplify(values[rel.parent] < rel.parent.extent, ranges)
            level = max(position[v] for v in free_vars(cond) if v in position)
            guards.append((level, cond))
    return guards


def lower(schedule: Schedule, inputs: Sequence[Tensor], name: str = "kernel") -> Kernel:
    """Lower ``schedule`` to a kernel whose parameters are ``inputs``, the outputs, then workspaces."""
    return _Lowering(schedule, inputs, name).lower()
