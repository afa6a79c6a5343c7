"""Loop order for strided reads: iterations that share a cache line run next to each other.

When the innermost loop of a plain loop nest reads an input with a stride of a
cache line or more (a conversion out of the blocked layout, a transpose to
channels-first), each of its iterations touches another line, and the other
elements of those lines are read by an outer loop, by then often out of the L1
cache (one output channel's plane touches every line of the input). Moving the
iterations of that outer loop that share a line (a block of it) just outside
the innermost loop makes them reuse each line while it is cached::

    for c in 0..144: for h in 0..56: for w in 0..56: y[c, h, w] = x[c // 16, h, w, c % 16]
    ==>
    for c.o in 0..9: for h in 0..56: for c.i in 0..16: for w in 0..56: ...

The innermost loop is left in place (it stays the vectorized one). Strides
are *local*: how far an index moves between neighbouring iterations most of the
time (``c // 16`` does not move, ``c % 16`` moves by one).
"""

from __future__ import annotations

import numpy as np

from .expr import Binary, Cast, Const, Expr, Var, children
from .lower import expand_inlined, flat_index
from .schedule import Schedule, Stage
from .tensor import TensorRead, walk

LINE_BYTES = 64
"""The cache line of every x86-64 CPU."""


def local_stride(index: Expr, var: Var) -> int | None:
    """How far the integer ``index`` moves when ``var`` steps by one, between most neighbouring
    iterations; None when that is not a constant."""
    if isinstance(index, Var):
        return 1 if index.uid == var.uid else 0
    if isinstance(index, Const):
        return 0
    if isinstance(index, Cast):
        return local_stride(index.a, var)
    parts = [local_stride(c, var) for c in children(index)]
    if any(p is None for p in parts):
        return None
    if all(p == 0 for p in parts):
        return 0
    if isinstance(index, Binary):
        a, b = parts
        if index.op == "add":
            return a + b
        if index.op == "sub":
            return a - b
        if index.op == "mul" and isinstance(index.b, Const):
            return a * int(index.b.value)
        if index.op == "mul" and isinstance(index.a, Const):
            return b * int(index.a.value)
        if index.op in ("floordiv", "floormod") and isinstance(index.b, Const) and int(index.b.value) > 0:
            divisor = int(index.b.value)
            if index.op == "floordiv":
                return a // divisor if a % divisor == 0 else 0  # constant across runs of the divisor
            return a % divisor
        if index.op in ("min", "max"):  # a clamp: moves with its moving side
            moving = {p for p in parts if p}
            return moving.pop() if len(moving) == 1 else None
    return None


def _reads(schedule: Schedule, stage: Stage) -> list[tuple[Expr, int]]:
    """The flat index and item size of each read of a stored tensor in ``stage`` (inlined stages expanded)."""
    body = expand_inlined(schedule, stage.op.body)
    return [(flat_index(e.indices, e.tensor.shape), np.dtype(e.tensor.dtype).itemsize)
            for e in walk(body) if isinstance(e, TensorRead)]


def reuse_strided_lines(schedule: Schedule, stage: Stage) -> bool:
    """Reorder ``stage``'s plain nest (see the module docstring) when its innermost loop reads a
    stored tensor a cache line or more apart; True when it did."""
    axes = list(stage.leaf)
    if len(axes) < 2 or any(ax.kind != "data" for ax in axes) or stage.relations:
        return False
    inner = axes[-1]
    for index, itemsize in _reads(schedule, stage):
        stride = local_stride(index, inner.var)
        if stride is None or abs(stride) * itemsize < LINE_BYTES:
            continue
        near = [(ax, s) for ax in axes[:-1] if ax.extent > 1
                and (s := local_stride(index, ax.var)) and abs(s) * itemsize < LINE_BYTES]
        if not near:
            continue
        axis, step = near[-1]
        if all(ax.extent == 1 for ax in axes[axes.index(axis) + 1:-1]):
            return False  # already next to the innermost loop
        per_line = LINE_BYTES // (abs(step) * itemsize)
        block = max(d for d in range(1, min(per_line, axis.extent) + 1) if axis.extent % d == 0)
        if block == 1:
            return False
        if block < axis.extent:
            outer, block_axis = stage.split(axis, block)
            order = [outer if ax is axis else ax for ax in axes[:-1]]
        else:
            block_axis, order = axis, [ax for ax in axes[:-1] if ax is not axis]
        stage.reorder(*order, block_axis, inner)
        return True
    return False
