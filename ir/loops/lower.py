"""Lowering a schedule to a loop nest (:class:`Kernel`).

Each stage that is not inlined becomes one loop nest writing a buffer: kernel
outputs for the schedule's outputs, workspaces for intermediate stages, and a
local tile for a stage attached with ``compute_at`` (its nest then runs inside
the consumer's loop, over the region that :mod:`.region` infers).
Tensor reads become flat loads (row-major); reads of inlined stages are
replaced by their expressions. A reduction keeps its accumulator in a local
scalar when all its reduction loops are innermost, and otherwise initializes
the output buffer in a loop nest of its own first.
"""

from __future__ import annotations

from typing import Sequence

from .expr import INDEX, Const, Expr, Load, Var, const, logical_and
from .region import infer_region
from .schedule import Fuse, Schedule, Split, Stage
from .simplify import simplify
from .stmt import Allocate, Buffer, For, If, Kernel, Stmt, Store, seq
from .tensor import IterVar, Reduce, Tensor, TensorRead, combine, walk
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
                           if not s.inlined and s.attach is None and id(s.tensor) not in self.buffers]
        for s in schedule.stages:
            if s.attach is not None and any(s.tensor is t for t in outputs):
                raise LoweringError(f"output {s.tensor.name} cannot be computed at another stage")
        # attached stage -> (local tile buffer, start of the tile per dimension), while its consumer lowers
        self.tiles: dict[int, tuple[Buffer, list[Expr]]] = {}
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
            if id(t) in self.tiles:
                tile, starts = self.tiles[id(t)]
                local = [i - start for i, start in zip(x.indices, starts)]
                return Load(tile, flat_index(local, tile.shape), t.dtype)
            if t.op is not None and self.schedule[t].attach is not None:
                raise LoweringError(f"{t.name} is computed at another stage and cannot be read here")
            if id(t) not in self.buffers:
                raise LoweringError(f"kernel {self.name} reads {t.name}, which is not one of its inputs")
            return Load(self.buffers[id(t)], flat_index(x.indices, t.shape), t.dtype)

        return post_order(e, rule)

    # ----------------------------------------------------------- loop nests
    def expand_inlined(self, e: Expr) -> Expr:
        """``e`` with reads of inlined stages replaced by their expressions (other reads kept)."""
        def rule(x: Expr) -> Expr:
            if isinstance(x, TensorRead) and x.tensor.op is not None and not x.tensor.is_extern \
                    and self.schedule[x.tensor].inlined:
                t = x.tensor
                return self.expand_inlined(substitute(t.op.body, {ax.var: i for ax, i in zip(t.op.axes, x.indices)}))
            return x

        return post_order(e, rule)

    def stage_nest(self, stage: Stage) -> Stmt:
        op = stage.op
        out = self.buffers[id(stage.tensor)]
        values = _axis_values(stage)
        ranges = {ax.var: (0, ax.extent - 1) for ax in stage.leaf}
        guards = _guards(stage, values)
        self.attached = self._attachments(stage, values, ranges)
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
        """Loops ``leaf[start:stop]`` around ``inner``, each guard just inside its deepest loop,
        and the tiles of attached stages computed first inside their loop."""
        body = inner
        for pos in range(stop - 1, start - 1, -1):
            conds = [g for level, g in guards if level == pos]
            if conds:
                body = If(logical_and(*conds), body)
            for tile, nest in reversed(self.attached.get(pos, [])):
                body = Allocate(tile, seq(nest, body))
            ax = stage.leaf[pos]
            body = For(ax.var, ax.extent, body, stage.annotations.get(ax, "serial"))
        return body

    def _attachments(self, consumer: Stage, values: dict[IterVar, Expr],
                     ranges: dict[Var, tuple[int, int]]) -> dict[int, list[tuple[Buffer, Stmt]]]:
        """For each stage attached to ``consumer``: its tile buffer and nest, by leaf position."""
        attached: dict[int, list[tuple[Buffer, Stmt]]] = {}
        axis_map = {ax.var: values[ax] for ax in list(consumer.op.axes) + list(consumer.op.reduce_axes)}
        body = substitute(self.expand_inlined(consumer.op.body), axis_map)
        for producer in self.schedule.stages:
            if producer.attach is None or producer.attach[0] is not consumer:
                continue
            pos = consumer.leaf.index(producer.attach[1])
            inner = {ax.var: ax.extent for ax in consumer.leaf[pos + 1:]}
            reads = [e.indices for e in walk(body) if isinstance(e, TensorRead) and e.tensor is producer.tensor]
            if not reads:
                raise LoweringError(f"{producer.tensor.name} is attached to {consumer.tensor.name}, which does "
                                    "not read it")
            outer_ranges = {v: r for v, r in ranges.items() if v not in inner}
            region = [infer_region([r[d] for r in reads], inner, dim, outer_ranges)
                      for d, dim in enumerate(producer.tensor.shape)]
            tile = Buffer(f"{producer.tensor.name}.tile", producer.tensor.dtype, tuple(e for _, e in region),
                          scope="local")
            nest = self._tile_nest(producer, tile, [start for start, _ in region], ranges)
            self.tiles[id(producer.tensor)] = (tile, [start for start, _ in region])
            attached.setdefault(pos, []).append((tile, nest))
        return attached

    def _tile_nest(self, stage: Stage, tile: Buffer, starts: list[Expr],
                   ranges: dict[Var, tuple[int, int]]) -> Stmt:
        """Loops over the tile computing ``stage`` at ``start + r`` into the local buffer."""
        op = stage.op
        offsets = [Var(f"{ax.name}.t") for ax in op.axes]
        tile_ranges = dict(ranges)
        tile_ranges.update({v: (0, e - 1) for v, e in zip(offsets, tile.shape)})
        where = {ax.var: start + r for ax, start, r in zip(op.axes, starts, offsets)}
        in_bounds = [c for ax, start, r in zip(op.axes, starts, offsets)
                     for c in (start + r >= 0, start + r < ax.extent)]

        def fix(e: Expr) -> Expr:
            return simplify(self.reads_to_loads(substitute(e, where)), tile_ranges)

        index = flat_index(offsets, tile.shape)
        if isinstance(op.body, Reduce):
            acc = Buffer(f"{stage.tensor.name}.acc", op.body.dtype, (1,), scope="local")
            zero = const(0, INDEX)
            update: Stmt = Store(acc, zero, combine(op.body.combiner, Load(acc, zero, acc.dtype), fix(op.body.source)))
            for ax in reversed(op.reduce_axes):
                update = For(ax.var, ax.extent, update, stage.annotations.get(ax, "serial"))
            body: Stmt = Allocate(acc, seq(Store(acc, zero, op.body.identity()), update,
                                           Store(tile, index, Load(acc, zero, acc.dtype))))
        else:
            body = Store(tile, index, fix(op.body))
        cond = simplify(logical_and(*in_bounds), tile_ranges) if in_bounds else None
        if cond is not None and not (isinstance(cond, Const) and cond.value):
            body = If(cond, body)
        for ax, r, extent in reversed(list(zip(op.axes, offsets, tile.shape))):
            body = For(r, extent, body, stage.annotations.get(ax, "serial"))
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
        self.attached = {}
        nests = [self.extern_nest(s) if s.is_extern else self.stage_nest(s)
                 for s in self.schedule.stages if not s.inlined and s.attach is None]
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
