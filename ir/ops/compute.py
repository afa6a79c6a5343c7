"""Shared building blocks for op compute definitions (loop-level IR).

Op families build their ``compute`` functions from these: broadcasting reads,
pointwise maps over broadcast inputs, padded reads, and reductions over a set
of axes.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ..loops.expr import INDEX, Expr, as_expr, const, guarded_select, logical_and
from ..loops.knobs import Knobs
from ..loops.tensor import Tensor, compute
from ..types import TensorType


def broadcast_indices(indices: Sequence[Expr], shape: Sequence[int], out_shape: Sequence[int]) -> tuple[Expr, ...]:
    """Indices into a tensor of ``shape`` broadcast (numpy rules) to ``out_shape``."""
    offset = len(out_shape) - len(shape)
    return tuple(const(0, INDEX) if dim == 1 else indices[offset + d] for d, dim in enumerate(shape))


def broadcast_read(t: Tensor, indices: Sequence[Expr], out_shape: Sequence[int]) -> Expr:
    """``t`` read at the output position ``indices`` under numpy broadcasting."""
    return t[broadcast_indices(indices, t.shape, out_shape)]


def pointwise(inputs: Sequence[Tensor], out: TensorType, fn: Callable[..., Expr], name: str = "pointwise",
              tag: str = "") -> Tensor:
    """The tensor ``fn(a[i], b[i], ...)`` over the broadcast shape ``out.shape``.

    ``fn`` gets one scalar expression per input and returns the element
    (it must have dtype ``out.dtype``).
    """
    def element(*idx):
        return fn(*[broadcast_read(t, idx, out.shape) for t in inputs])

    result = compute(out.shape, element, name, tag)
    if result.dtype != out.dtype:
        raise TypeError(f"{name}: element dtype {result.dtype}, expected {out.dtype}")
    return result


def padded_read(t: Tensor, indices: Sequence[Expr], value: Expr | float | int) -> Expr:
    """``t[indices]`` where every index is in bounds, else ``value`` (for padding).

    Indices may run outside ``[0, dim)``; the read happens only when they do not.
    """
    conds = []
    for i, dim in zip(indices, t.shape):
        conds += [i >= 0, i < dim]
    value = as_expr(value, t.dtype)
    if not conds:
        return t[tuple(indices)]
    return guarded_select(logical_and(*conds), t[tuple(indices)], value)


def annotate_pointwise(stage, knobs: Knobs | None = None) -> None:
    """Mark a plain stage's loops as a pointwise op wants them: the innermost loop
    vectorized, the first outer loop with more than one iteration parallel.

    ::

        for n in 0..1: for c in 0..64:          for n in 0..1: parallel c in 0..64:
          for h in 0..56: for w in 0..56:  ==>     for h in 0..56: vectorized w in 0..56:

    Knobs (when given): ``vector_chunk`` splits the innermost loop and vectorizes
    the inner part only (default: the whole loop); ``parallel`` (default on)
    whether the outer loop runs on the thread pool.
    """
    knobs = knobs or Knobs()
    data = [ax for ax in stage.leaf if ax.kind == "data"]
    if data and data[-1] is stage.leaf[-1] and data[-1].extent > 1:
        inner = data[-1]
        chunk = knobs.split("vector_chunk", inner.extent, default=inner.extent)
        if chunk < inner.extent:
            data[-1:] = stage.split(inner, chunk)
        stage.vectorize(data[-1])
    outer = next((ax for ax in data[:-1] if ax.extent > 1), None)
    if outer is not None and knobs.choose("parallel", (True, False), default=True):
        stage.parallel(outer)
