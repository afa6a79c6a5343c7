"""Schedules: how to loop over a compute definition (the Halide/TVM split).

A :class:`Schedule` holds one :class:`Stage` per compute tensor. Each stage
starts with one loop per axis (data axes, then reduction axes) and is
transformed by primitives; lowering (:mod:`.lower`) turns the result into a
loop nest. Primitives never change *what* is computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .expr import Var
from .tensor import IterVar, Tensor


@dataclass(frozen=True, eq=False)
class Split:
    parent: IterVar
    outer: IterVar
    inner: IterVar
    factor: int


@dataclass(frozen=True, eq=False)
class Fuse:
    outer: IterVar
    inner: IterVar
    fused: IterVar


class ScheduleError(ValueError):
    """A schedule primitive was applied to axes it cannot act on."""


class Stage:
    """The loop structure of one compute tensor."""

    def __init__(self, tensor: Tensor):
        assert tensor.op is not None, "placeholders have no stage"
        self.tensor = tensor
        self.op = tensor.op
        self.is_extern = tensor.is_extern
        self.leaf: list[IterVar] = [] if self.is_extern else list(self.op.axes) + list(self.op.reduce_axes)
        self.relations: list[Split | Fuse] = []
        self.annotations: dict[IterVar, str] = {}
        self.unroll_factors: dict[IterVar, int] = {}
        self.inlined = False
        self.attach: tuple["Stage", IterVar] | None = None
        self.fold_epilogue = False
        self.local_accumulator = False

    def _check_leaf(self, *axes: IterVar) -> None:
        for ax in axes:
            if ax not in self.leaf:
                raise ScheduleError(f"{ax} is not a current loop of stage {self.tensor.name}")

    def split(self, axis: IterVar, factor: int) -> tuple[IterVar, IterVar]:
        """Split ``axis`` into ``outer`` x ``inner`` with ``inner`` of extent ``factor``.

        ::

            for i in 0..10:            for i.o in 0..3:
              body(i)          ==>       for i.i in 0..4:
                                           if i.o*4 + i.i < 10: body(i.o*4 + i.i)

        The guard is left out when ``factor`` divides the extent.
        """
        self._check_leaf(axis)
        factor = max(1, min(int(factor), axis.extent))
        outer = IterVar(Var(f"{axis.name}.o"), -(-axis.extent // factor), axis.kind)
        inner = IterVar(Var(f"{axis.name}.i"), factor, axis.kind)
        pos = self.leaf.index(axis)
        self.leaf[pos:pos + 1] = [outer, inner]
        self.relations.append(Split(axis, outer, inner, factor))
        return outer, inner

    def tile(self, x: IterVar, y: IterVar, x_factor: int, y_factor: int) -> tuple[IterVar, ...]:
        """Split ``x`` and ``y`` and order the loops ``x.o, y.o, x.i, y.i``."""
        xo, xi = self.split(x, x_factor)
        yo, yi = self.split(y, y_factor)
        self.reorder(xo, yo, xi, yi)
        return xo, yo, xi, yi

    def reorder(self, *axes: IterVar) -> None:
        """Put ``axes`` in the given order, in the positions they occupy now.

        ::

            for i: for j: for k: body    reorder(k, i)  ==>  for k: for j: for i: body
        """
        self._check_leaf(*axes)
        if len(set(axes)) != len(axes):
            raise ScheduleError("reorder got an axis twice")
        positions = sorted(self.leaf.index(a) for a in axes)
        for pos, ax in zip(positions, axes):
            self.leaf[pos] = ax

    def fuse(self, outer: IterVar, inner: IterVar) -> IterVar:
        """Fuse two adjacent loops into one.

        ::

            for i in 0..4:               for f in 0..12:
              for j in 0..3:     ==>       body(f // 3, f % 3)
                body(i, j)
        """
        self._check_leaf(outer, inner)
        pos = self.leaf.index(outer)
        if self.leaf.index(inner) != pos + 1:
            raise ScheduleError(f"can only fuse adjacent loops: {outer} and {inner}")
        if outer.kind != inner.kind:
            raise ScheduleError("cannot fuse a data axis with a reduction axis")
        fused = IterVar(Var(f"{outer.name}.{inner.name}.f"), outer.extent * inner.extent, outer.kind)
        self.leaf[pos:pos + 2] = [fused]
        self.relations.append(Fuse(outer, inner, fused))
        return fused

    def _annotate(self, axis: IterVar, kind: str) -> None:
        self._check_leaf(axis)
        self.annotations[axis] = kind

    def unroll(self, axis: IterVar) -> None:
        """Unroll the loop over ``axis`` (its extent must be a constant, as all are here)."""
        self._annotate(axis, "unrolled")

    def unroll_by(self, axis: IterVar, factor: int) -> None:
        """Unroll the serial loop over ``axis`` ``factor`` iterations at a time (LLVM does it, with
        the remainder): fewer loop branches, and more independent work in sight of the CPU's
        scheduler, where the body is short (a matrix product's micro-kernel). 1 leaves it alone."""
        self._check_leaf(axis)
        if self.annotations.get(axis, "serial") != "serial":
            raise ScheduleError(f"{axis} is {self.annotations[axis]}: only a serial loop unrolls by a factor")
        self.unroll_factors[axis] = max(1, int(factor))

    def vectorize(self, axis: IterVar) -> None:
        """Execute the loop over ``axis`` as vector operations (it should be innermost)."""
        if axis.kind == "reduce":
            raise ScheduleError("cannot vectorize a reduction axis")
        self._annotate(axis, "vectorized")

    def parallel(self, axis: IterVar) -> None:
        """Run the iterations of ``axis`` on the thread pool (a data axis)."""
        if axis.kind == "reduce":
            raise ScheduleError("cannot parallelize a reduction axis")
        self._annotate(axis, "parallel")

    def compute_inline(self) -> None:
        """Substitute this stage's expression into its consumers instead of storing it.

        ::

            for i: t[i] = f(x[i])               for i:
            for i: y[i] = g(t[i])      ==>        y[i] = g(f(x[i]))
        """
        if self.is_extern or self.op.reduce_axes:
            raise ScheduleError(f"cannot inline {self.tensor.name}: only plain computes inline")
        self.inlined = True

    def compute_at(self, consumer: "Stage", axis: IterVar) -> None:
        """Compute the tile of this stage that ``consumer`` needs inside its loop over ``axis``.

        ::

            for i: t[i] = f(x[i])                 for i.o:
            for i.o:                     ==>        for r in 0..4: t_local[r] = f(x[i.o*4 + r])
              for i.i: y[..] = g(t[i.o*4 + i.i])    for i.i: y[..] = g(t_local[i.i])

        The tile (region) is inferred from the consumer's reads; its size must
        be static (reads affine in the inner loops; otherwise the whole
        tensor is recomputed per iteration). This stage keeps its own loop
        order over the tile; splits and fuses of it are not supported.
        """
        if self.is_extern or self.inlined:
            raise ScheduleError(f"cannot attach {self.tensor.name}: only plain computes can be attached")
        if self.relations:
            raise ScheduleError(f"cannot attach {self.tensor.name}: it was split or fused")
        consumer._check_leaf(axis)
        if consumer.attach is not None:
            raise ScheduleError("cannot attach into a stage that is itself attached")
        self.attach = (consumer, axis)

    def accumulate_locally(self) -> None:
        """Accumulate a reduction in a local tile over the data loops inside its innermost reduction
        loops (TVM's ``cache_write``), stored to the output once; unrolled and vectorized, the tile
        is a block of registers:

        ::

            for o: for r: for i: C[o,i] += f(o,r,i)  ==>  for o: { acc[:] = 0; for r: for i: acc[i] += f(o,r,i);
                                                                   for i: C[o,i] = acc[i] }

        Reduction loops further out (a blocked reduction) add the tile to ``C``. Lowering keeps the
        accumulation in ``C`` when the tile would exceed ``MAX_ACCUMULATOR_TILE`` elements or a stage
        is attached inside it.
        """
        if self.is_extern or not self.op.reduce_axes:
            raise ScheduleError(f"{self.tensor.name} is not a reduction: it has nothing to accumulate")
        self.local_accumulator = True

    def compute_epilogue(self) -> None:
        """Compute the pointwise stage that reads this one (directly or through inlined stages, at
        its own indices) as this stage's results are stored, instead of in a loop nest of its own.

        ::

            for i: for r: C[i] += f(i, r)         for i: { acc = 0; for r: acc += f(i, r);
            for i: Y[i] = relu(C[i] + b[i]) ==>            Y[i] = relu(acc + b[i]) }

        Lowering applies it where it can (a reduction accumulating in a local tile or scalar, read
        by that one stage only, which reads nothing computed after it); otherwise nothing changes.
        """
        if self.is_extern or not self.op.reduce_axes:
            raise ScheduleError(f"{self.tensor.name} is not a reduction: it has no epilogue to compute")
        self.fold_epilogue = True

    def __repr__(self) -> str:
        return f"Stage({self.tensor.name}: {[a.name for a in self.leaf]})"


class Schedule:
    """The stages of every compute tensor reachable from ``outputs``, producers first."""

    def __init__(self, outputs: Sequence[Tensor]):
        self.outputs = list(outputs)
        order: list[Tensor] = []
        seen: set[int] = set()

        def visit(t: Tensor) -> None:
            if id(t) in seen or t.op is None:
                return
            seen.add(id(t))
            for dep in t.inputs():
                visit(dep)
            order.append(t)

        for t in self.outputs:
            visit(t)
        self.stages = [Stage(t) for t in order]
        self._by_tensor = {id(s.tensor): s for s in self.stages}

    def extend(self, outputs: Sequence[Tensor]) -> None:
        """Make ``outputs`` the schedule's outputs, adding stages for computes not yet in it.

        Used to grow one op's schedule into a fused kernel's: the new stages
        (consumers of the existing ones) come after them, in dependency order.
        """
        for t in outputs:
            self._visit_new(t)
        self.outputs = list(outputs)

    def _visit_new(self, t: Tensor) -> None:
        if t.op is None or id(t) in self._by_tensor:
            return
        for dep in t.inputs():
            self._visit_new(dep)
        stage = Stage(t)
        self.stages.append(stage)
        self._by_tensor[id(t)] = stage

    def consumers(self, tensor: Tensor) -> list[Stage]:
        """The stages that read ``tensor``."""
        return [s for s in self.stages if any(dep is tensor for dep in s.tensor.inputs())]

    def cache_read(self, tensor: Tensor, readers: Sequence[Tensor]) -> Tensor:
        """See :func:`cache_read`."""
        return cache_read(self, tensor, readers)

    def pack(self, tensor: Tensor, readers: Sequence[Tensor], axis: int, factor: int) -> Tensor:
        """See :func:`pack`."""
        return pack(self, tensor, readers, axis, factor)

    def __getitem__(self, tensor: Tensor) -> Stage:
        try:
            return self._by_tensor[id(tensor)]
        except KeyError:
            raise ScheduleError(f"{tensor.name} is not a compute stage of this schedule") from None


def cache_read(schedule: "Schedule", tensor: Tensor, readers: Sequence[Tensor]) -> Tensor:
    """A copy of ``tensor`` that ``readers`` read instead; attach it with ``compute_at`` to pack tiles.

    ::

        for i: for k: C[i] += A[i, k] * B[k]      s.cache_read(B, [C]); compute_at(C, i)
                                          ==>  for i: { for k: B_local[k] = B[k]; for k: C[i] += A[i,k] * B_local[k] }
    """
    from .tensor import compute

    cache = compute(tensor.shape, lambda *i: tensor[i], f"{tensor.name}.cache")
    _redirect_reads(schedule, tensor, readers, cache, lambda indices: cache[indices])
    return cache


def _redirect_reads(schedule: "Schedule", tensor: Tensor, readers: Sequence[Tensor], copy: Tensor,
                    read_copy) -> None:
    """Make ``readers`` read ``copy`` (``read_copy(indices)``) where they read ``tensor``, and add
    ``copy``'s stage just before the first of them."""
    from .tensor import TensorRead
    from .visit import post_order

    for reader in readers:
        stage = schedule[reader]
        if stage.is_extern:
            raise ScheduleError("cannot redirect the reads of an extern stage")
        stage.op.body = post_order(stage.op.body, lambda e: (
            read_copy(e.indices) if isinstance(e, TensorRead) and e.tensor is tensor else e))
    new = Stage(copy)
    position = min(schedule.stages.index(schedule[r]) for r in readers)
    schedule.stages.insert(position, new)
    schedule._by_tensor[id(copy)] = new


def pack(schedule: "Schedule", tensor: Tensor, readers: Sequence[Tensor], axis: int, factor: int) -> Tensor:
    """A copy of ``tensor`` in panels of ``factor`` along ``axis``, which ``readers`` read instead.

    The panel index comes first, the element in the panel last, the other dims
    in between: ``P[i // f, ..., i % f] = T[..., i, ...]``, zero past the end of
    ``axis`` (the last panel is padded). Attached with ``compute_at``, each tile of
    ``P`` is a contiguous run of panels (a packed GEMM operand)::

        for k: for j: C[j] += A[k] * B[k, j]     s.pack(B, [C], axis=1, factor=4)
                                          ==>  for k: for j: C[j] += A[k] * P[j // 4, k, j % 4]
    """
    from .expr import const, minimum, select
    from .tensor import compute

    extent = tensor.shape[axis]
    factor = max(1, min(int(factor), extent))
    others = [d for d in range(tensor.ndim) if d != axis]
    shape = (-(-extent // factor),) + tuple(tensor.shape[d] for d in others) + (factor,)

    def element(panel, *rest):
        index = [const(0, "int64")] * tensor.ndim
        for d, i in zip(others, rest[:-1]):
            index[d] = i
        position = panel * factor + rest[-1]
        if extent % factor == 0:
            index[axis] = position
            return tensor[tuple(index)]
        # past the end: read the last element (in bounds, no branch) and select zero
        index[axis] = minimum(position, const(extent - 1, "int64"))
        return select(position < extent, tensor[tuple(index)], const(0, tensor.dtype))

    packed = compute(shape, element, f"{tensor.name}.packed")

    def read(indices):
        i = indices[axis]
        return packed[(i // factor,) + tuple(indices[d] for d in others) + (i % factor,)]

    _redirect_reads(schedule, tensor, readers, packed, read)
    return packed


def create_schedule(outputs: Tensor | Sequence[Tensor]) -> Schedule:
    """A schedule with the naive loop nest for every stage."""
    return Schedule([outputs] if isinstance(outputs, Tensor) else outputs)
