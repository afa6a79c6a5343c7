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

import math
from typing import Sequence

import numpy as np

from .expr import INDEX, Const, Expr, Load, Var, const, logical_and, minimum
from .fuse_parallel import fuse_parallel_nests
from .region import infer_region
from .schedule import Fuse, Schedule, Split, Stage
from .simplify import simplify
from .stmt import Allocate, Buffer, For, If, Kernel, Prefetch, Stmt, Store, seq
from .tensor import IterVar, Reduce, Tensor, TensorRead, combine, walk
from .visit import post_order, substitute


# the largest local accumulator tile (elements) of a reduction with data loops inside its reduction loops
MAX_ACCUMULATOR_TILE = 1024
# the most prefetches of a blocked reduction's output tile (a register tile's rows need a few dozen)
MAX_TILE_PREFETCHES = 64
CACHE_LINE_BYTES = 64  # every x86-64 CPU's


class LoweringError(ValueError):
    """The schedule cannot be lowered (e.g. it reads a tensor that is not a kernel input)."""


def _stage_loop(stage: Stage, ax: IterVar, body: Stmt, var: Var | None = None, extent: int | None = None) -> For:
    """The loop of ``stage`` over ``ax`` (over ``var`` in ``[0, extent)`` when given: a tile's own
    range) around ``body``, with the stage's annotation and unroll factor for it."""
    return For(ax.var if var is None else var, ax.extent if extent is None else extent, body,
               stage.annotations.get(ax, "serial"), stage.unroll_factors.get(ax, 0))


def flat_index(indices: Sequence[Expr], shape: Sequence[int]) -> Expr:
    """Row-major flat index of ``indices`` in ``shape``."""
    if not indices:
        return const(0, INDEX)
    index: Expr = indices[0]
    for i, extent in zip(indices[1:], shape[1:]):
        index = index * extent + i
    return index


def expand_inlined(schedule: Schedule, e: Expr) -> Expr:
    """``e`` with reads of ``schedule``'s inlined stages replaced by their expressions (other reads kept)."""
    def rule(x: Expr) -> Expr:
        if isinstance(x, TensorRead) and x.tensor.op is not None and not x.tensor.is_extern \
                and schedule[x.tensor].inlined:
            t = x.tensor
            return expand_inlined(schedule, substitute(t.op.body, {ax.var: i for ax, i in zip(t.op.axes, x.indices)}))
        return x

    return post_order(e, rule)


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
        return expand_inlined(self.schedule, e)

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
                        self._final_store(stage, values, ranges, Load(acc, zero, acc.dtype)))
            return self._nest(stage, 0, depth, guards, Allocate(acc, inner))
        index = simplify(data_index, ranges)
        inner_start = max(reduce_leaves) + 1
        if (stage.local_accumulator and math.prod(ax.extent for ax in leaf[inner_start:]) <= MAX_ACCUMULATOR_TILE
                and all(pos < inner_start for pos in self.attached)):
            return self._tiled_reduction(stage, inner_start, guards, values, fix(body.source), ranges)
        update = Store(out, index, combine(body.combiner, Load(out, index, out.dtype), fix(body.source)))
        return seq(self._init_output(stage), self._nest(stage, 0, len(leaf), guards, update))

    def _init_output(self, stage: Stage) -> Stmt:
        """A nest storing the reduction's identity into every element of its output."""
        op = stage.op
        init_vars = [Var(f"{ax.name}.init") for ax in op.axes]
        init: Stmt = Store(self.buffers[id(stage.tensor)], flat_index(init_vars, stage.tensor.shape),
                           op.body.identity())
        for v, ax in reversed(list(zip(init_vars, op.axes))):
            init = For(v, ax.extent, init)
        return init

    def _tiled_reduction(self, stage: Stage, inner_start: int, guards: list[tuple[int, Expr]],
                         values: dict[IterVar, Expr], source: Expr, ranges: dict[Var, tuple[int, int]]) -> Stmt:
        """A reduction accumulated in a local tile over the data loops inside its innermost reduction
        loops (see ``Stage.accumulate_locally``). Reduction loops outside the innermost group of them
        (a blocked reduction) store the tile into ``C`` at their first iteration and add it to ``C``
        at the others. Guards of the inner loops stay on the final stores; the accumulation drops
        those whose loads are in bounds anyway (a padded, packed operand).
        """
        leaf, body = stage.leaf, stage.op.body
        out = self.buffers[id(stage.tensor)]
        group_start = inner_start - 1
        while group_start > 0 and leaf[group_start - 1].kind == "reduce":
            group_start -= 1
        blocked = any(ax.kind == "reduce" for ax in leaf[:group_start])
        inner = leaf[inner_start:]
        acc = Buffer(f"{stage.tensor.name}.acc", body.dtype, tuple(ax.extent for ax in inner), scope="local")
        acc_index = flat_index([ax.var for ax in inner], acc.shape)

        def inner_loops(statement: Stmt, inner_guards: list[tuple[int, Expr]]) -> Stmt:
            for pos in range(len(leaf) - 1, inner_start - 1, -1):
                conds = [g for level, g in inner_guards if level == pos]
                if conds:
                    statement = If(logical_and(*conds), statement)
                ax = leaf[pos]
                statement = _stage_loop(stage, ax, statement)
            return statement

        index = simplify(flat_index([values[ax] for ax in stage.op.axes], stage.tensor.shape), ranges)
        sums = Load(acc, acc_index, acc.dtype)
        result = combine(body.combiner, Load(out, index, out.dtype), sums) if blocked else sums
        inner_guards = [(level, g) for level, g in guards if level >= inner_start]
        kept = [(level, g) for level, g in guards if level < inner_start or not self._loads_in_bounds(source, g, ranges)]
        if any(level >= inner_start for level, _ in kept):
            # a ragged tile: accumulate its positions past the edge from the edge's values (never stored)
            clamped = self._clamped_source(stage, values, ranges)
            if clamped is not None:
                unclamped = [(level, g) for level, g in kept
                             if level < inner_start or not self._loads_in_bounds(clamped, g, ranges)]
                if len(unclamped) < len(kept):
                    source, kept = clamped, unclamped
        update = Store(acc, acc_index, combine(body.combiner, Load(acc, acc_index, acc.dtype), source))
        write = inner_loops(self._final_store(stage, values, ranges, result), inner_guards)
        if blocked:
            # the first block of the reduction stores its sums (C is not initialized), the others add
            # theirs to C; with an epilogue, the last block stores it
            outer_reductions = [ax for ax in leaf[:group_start] if ax.kind == "reduce"]
            first = logical_and(*[ax.var <= 0 for ax in outer_reductions])

            def partial(value: Expr) -> Stmt:
                return inner_loops(Store(out, index, value), inner_guards)

            if id(stage.tensor) in self.epilogue_of:
                last = logical_and(*[ax.var >= ax.extent - 1 for ax in outer_reductions])
                alone = inner_loops(self._final_store(stage, values, ranges, sums), inner_guards)
                write = If(last, If(first, alone, write), If(first, partial(sums), partial(result)))
            else:
                write = If(first, partial(sums), write)
        prefetch = self._prefetch_tile(stage, inner_start, out, index) if blocked else None
        tile = seq(inner_loops(Store(acc, acc_index, body.identity()), []), prefetch,
                   self._nest(stage, group_start, inner_start, kept, inner_loops(update, kept)), write)
        return self._nest(stage, 0, group_start, guards, Allocate(acc, tile))

    def _clamped_source(self, stage: Stage, values: dict[IterVar, Expr], ranges: dict[Var, tuple[int, int]]
                        ) -> Expr | None:
        """The reduction's source with each data axis a non-dividing split makes ragged clamped to its
        last index (``min(value, extent - 1)``), so that every load stays in bounds and the tile's
        accumulation needs no guard: the sums of positions past the edge repeat the edge's and the
        final stores, still guarded, drop them. SqueezeNet's last conv (13 positions wide) with a
        ragged 5 x 2 tile took 4.15 ms at 1 thread with the guard in its multiply-add loop and
        2.73 ms clamped (two runs, in which the 1 x 13 default took 5.04 and 4.12 ms). Axes read
        along a vectorized loop are left alone (clamped lanes would not be contiguous); None when
        no axis is clamped."""
        from .visit import free_vars

        op = stage.op
        vector_vars = {ax.var for ax in stage.leaf if stage.annotations.get(ax) == "vectorized"}
        ragged = {id(rel.parent) for rel in stage.relations if isinstance(rel, Split) and rel.parent.extent % rel.factor}
        clamp = {id(ax) for ax in op.axes if id(ax) in ragged and not free_vars(values[ax]) & vector_vars}
        if not clamp:
            return None
        axis_map = {ax.var: minimum(values[ax], const(ax.extent - 1, INDEX)) if id(ax) in clamp else values[ax]
                    for ax in list(op.axes) + list(op.reduce_axes)}
        return simplify(self.reads_to_loads(substitute(op.body.source, axis_map)), ranges)

    def _prefetch_tile(self, stage: Stage, inner_start: int, out: Buffer, index: Expr) -> Stmt | None:
        """Prefetches of the part of ``out`` that a blocked reduction's tile will add its sums to,
        issued before its reduction loops: one per cache line along the innermost data loop (its
        first and last element and every line between), in the loops of the others. Without
        them each row of the tile missed the cache as the sums were added, once per block.
        None when that would be more than :data:`MAX_TILE_PREFETCHES`."""
        *outer, innermost = stage.leaf[inner_start:]
        line = max(1, CACHE_LINE_BYTES // np.dtype(out.dtype).itemsize)
        offsets = sorted({*range(0, innermost.extent, line), innermost.extent - 1})
        if len(offsets) * math.prod(ax.extent for ax in outer) > MAX_TILE_PREFETCHES:
            return None
        statement = seq(*[Prefetch(out, simplify(substitute(index, {innermost.var: const(at, INDEX)}))) for at in offsets])
        for ax in reversed(outer):
            statement = _stage_loop(stage, ax, statement)
        return statement

    def _final_store(self, stage: Stage, values: dict[IterVar, Expr], ranges: dict[Var, tuple[int, int]],
                     result: Expr) -> Stmt:
        """Store a reduction's ``result`` (at the axis ``values``), through its epilogue stage when it
        has one that can be applied here."""
        index = simplify(flat_index([values[ax] for ax in stage.op.axes], stage.tensor.shape), ranges)
        consumer = self._foldable_epilogue(stage)
        if consumer is None:
            return Store(self.buffers[id(stage.tensor)], index, result)
        self.folded.add(id(consumer.tensor))
        self.epilogue_of[id(stage.tensor)] = consumer
        at = {ax.var: values[own] for ax, own in zip(consumer.op.axes, stage.op.axes)}
        value = post_order(substitute(self.expand_inlined(consumer.op.body), at), lambda e: (
            result if isinstance(e, TensorRead) and e.tensor is stage.tensor else e))
        return Store(self.buffers[id(consumer.tensor)], index, simplify(self.reads_to_loads(value), ranges))

    def _foldable_epilogue(self, stage: Stage) -> Stage | None:
        """The stage that computes ``stage``'s epilogue at its stores, if it asked for one (see
        ``Stage.compute_epilogue``): the one emitted stage reading it (through inlined stages), of
        its shape, pointwise, reading it at its own indices and nothing computed after it."""
        if not stage.fold_epilogue or any(stage.tensor is t for t in self.schedule.outputs):
            return None
        order = {id(s.tensor): n for n, s in enumerate(self.schedule.stages)}
        readers = [s for s in self.schedule.stages if not s.inlined and s is not stage and not s.is_extern
                   and any(isinstance(e, TensorRead) and e.tensor is stage.tensor
                           for e in walk(self.expand_inlined(s.op.body)))]
        if len(readers) != 1 or any(s.is_extern and stage.tensor in s.op.inputs for s in self.schedule.stages):
            return None
        (consumer,) = readers
        if consumer.attach is not None or consumer.op.reduce_axes or consumer.tensor.shape != stage.tensor.shape:
            return None
        own = [ax.var for ax in consumer.op.axes]
        for e in walk(self.expand_inlined(consumer.op.body)):
            if not isinstance(e, TensorRead):
                continue
            if e.tensor is stage.tensor:
                if len(e.indices) != len(own) or not all(_same_index(i, ax) for i, ax in zip(e.indices, consumer.op.axes)):
                    return None
            elif e.tensor.op is not None and order.get(id(e.tensor), len(order)) >= order[id(stage.tensor)]:
                return None
        return consumer

    @staticmethod
    def _loads_in_bounds(e: Expr, guard: Expr, ranges: dict[Var, tuple[int, int]]) -> bool:
        """Whether every load in ``e`` that depends on ``guard``'s variables is within its buffer
        for all values of the loop variables (so the guard is not needed to keep it in bounds)."""
        from .simplify import bounds
        from .visit import free_vars

        guarded = free_vars(guard)
        for x in walk(e):
            if isinstance(x, Load) and free_vars(x.index) & guarded:
                span = bounds(x.index, ranges)
                if span is None or span[0] < 0 or span[1] >= x.buffer.size:
                    return False
        return True

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
            body = _stage_loop(stage, ax, body)
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
            reads = [[simplify(i, ranges) for i in e.indices] for e in walk(body)
                     if isinstance(e, TensorRead) and e.tensor is producer.tensor]
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
                update = _stage_loop(stage, ax, update)
            body: Stmt = Allocate(acc, seq(Store(acc, zero, op.body.identity()), update,
                                           Store(tile, index, Load(acc, zero, acc.dtype))))
        else:
            body = Store(tile, index, fix(op.body))
        cond = simplify(logical_and(*in_bounds), tile_ranges) if in_bounds else None
        if cond is not None and not (isinstance(cond, Const) and cond.value):
            body = If(cond, body)
        loops = {id(ax): (r, extent) for ax, r, extent in zip(op.axes, offsets, tile.shape)}
        # the stage's own loop order when it only reordered its axes (a tile has no splits)
        order = stage.leaf if sorted(map(id, stage.leaf)) == sorted(loops) else op.axes
        for ax in reversed(order):
            r, extent = loops[id(ax)]
            body = _stage_loop(stage, ax, body, r, extent)
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
        self.folded: set[int] = set()  # epilogue stages computed within their producer's nest
        self.epilogue_of: dict[int, Stage] = {}  # producer -> the epilogue stage computed in its nest
        nests = []
        for s in self.schedule.stages:
            if not s.inlined and s.attach is None and id(s.tensor) not in self.folded:
                nests.append(self.extern_nest(s) if s.is_extern else self.stage_nest(s))
        return Kernel(self.name, self.params, fuse_parallel_nests(seq(*nests)), self.num_inputs, self.num_outputs)


def _same_index(index: Expr, axis: IterVar) -> bool:
    """Whether ``index`` reads along ``axis`` at the axis's own value (a broadcast read of an
    axis of extent 1 indexes it by the constant 0)."""
    return index is axis.var or (axis.extent == 1 and isinstance(index, Const) and index.value == 0)


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
