"""Tensor compute definitions: what each output element is, as an expression.

This is the algorithm half of the loop-level IR (a Halide/TVM-TE style
language); :mod:`.schedule` says how to loop over it.

>>> A = placeholder((4, 8), "float32", "A")
>>> B = placeholder((8, 3), "float32", "B")
>>> k = reduce_axis(8, "k")
>>> C = compute((4, 3), lambda i, j: reduce_sum(A[i, k] * B[k, j], k), "C")

A compute body may read other tensors (placeholders or computes) at index
expressions of its axes, use :func:`select` for padding and boundary
conditions, and may be a single reduction (:func:`reduce_sum`,
:func:`reduce_max`, ...) over reduction axes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .expr import INDEX, Const, Expr, Var, as_expr, binary, children, const, is_float

_names = itertools.count()


@dataclass(frozen=True, eq=False)
class IterVar:
    """A loop axis: a variable with the range ``[0, extent)``; ``kind`` is "data" or "reduce"."""

    var: Var
    extent: int
    kind: str = "data"

    @property
    def name(self) -> str:
        return self.var.name

    def __repr__(self) -> str:
        return f"IterVar({self.var.name}, {self.extent}, {self.kind})"


@dataclass(frozen=True, eq=False)
class TensorRead(Expr):
    """``tensor[indices]`` (multi-dimensional; flattened by lowering)."""

    tensor: "Tensor"
    indices: tuple[Expr, ...]
    dtype: str


@dataclass(frozen=True, eq=False)
class Reduce(Expr):
    """``combiner`` over ``axes`` of ``source``; only as the whole body of a compute."""

    combiner: str  # "sum", "prod", "max", "min"
    source: Expr
    axes: tuple[IterVar, ...]
    dtype: str

    def identity(self) -> Const:
        return reduction_identity(self.combiner, self.dtype)


def reduction_identity(combiner: str, dtype: str) -> Const:
    """The neutral element of ``combiner`` for ``dtype``."""
    if combiner == "sum":
        return const(0, dtype)
    if combiner == "prod":
        return const(1, dtype)
    if dtype == "bool":
        return const(combiner == "min", dtype)
    if is_float(dtype):
        return const(float("-inf") if combiner == "max" else float("inf"), dtype)
    info = np.iinfo(dtype)
    return const(info.min if combiner == "max" else info.max, dtype)


@dataclass(eq=False)
class ComputeOp:
    axes: tuple[IterVar, ...]
    body: Expr
    tag: str = ""

    @property
    def reduce_axes(self) -> tuple[IterVar, ...]:
        return self.body.axes if isinstance(self.body, Reduce) else ()


@dataclass(eq=False)
class ExternOp:
    """A stage whose loop nest is written by hand: ``body(input_buffers, output_buffers) -> Stmt``.

    For what a compute expression cannot say: sequential scans (CumSum),
    selection (TopK), data-dependent checks (Gather's index bounds).
    """

    inputs: tuple["Tensor", ...]
    body: Callable
    outputs: list["Tensor"]


class Tensor:
    """A placeholder (kernel input), the result of :func:`compute`, or an output of :func:`extern`."""

    def __init__(self, shape: Sequence[int], dtype: str, name: str, op: "ComputeOp | ExternOp | None" = None):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype
        self.name = name
        self.op = op

    @property
    def is_placeholder(self) -> bool:
        return self.op is None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, indices) -> TensorRead:
        if not isinstance(indices, tuple):
            indices = (indices,)
        indices = tuple(as_expr(i.var if isinstance(i, IterVar) else i, INDEX) for i in indices)
        if len(indices) != len(self.shape):
            raise IndexError(f"{self.name} has rank {len(self.shape)}, indexed with {len(indices)} indices")
        for i in indices:
            if i.dtype != INDEX:
                raise TypeError(f"index of {self.name} has dtype {i.dtype}; cast it to int64")
        return TensorRead(self, indices, self.dtype)

    @property
    def is_extern(self) -> bool:
        return isinstance(self.op, ExternOp)

    def inputs(self) -> list["Tensor"]:
        """The tensors this compute reads directly."""
        if self.op is None:
            return []
        if isinstance(self.op, ExternOp):
            return list(self.op.inputs)
        found: dict[int, Tensor] = {}
        for e in walk(self.op.body):
            if isinstance(e, TensorRead):
                found.setdefault(id(e.tensor), e.tensor)
        return list(found.values())

    def __repr__(self) -> str:
        return f"Tensor({self.name}, {self.shape}, {self.dtype})"


def walk(e: Expr):
    """Every sub-expression of ``e`` (pre-order), descending into reductions and tensor reads."""
    stack = [e]
    while stack:
        e = stack.pop()
        yield e
        if isinstance(e, Reduce):
            stack.append(e.source)
        elif isinstance(e, TensorRead):
            stack.extend(e.indices)
        else:
            stack.extend(children(e))


def placeholder(shape: Sequence[int], dtype: str, name: str = "in") -> Tensor:
    """An input tensor of a kernel."""
    return Tensor(shape, dtype, name)


def reduce_axis(extent: int, name: str = "k") -> IterVar:
    """A reduction axis over ``[0, extent)``."""
    return IterVar(Var(name), int(extent), "reduce")


def compute(shape: Sequence[int], fcompute: Callable[..., Expr], name: str | None = None, tag: str = "") -> Tensor:
    """The tensor whose element at ``(i0, i1, ...)`` is ``fcompute(i0, i1, ...)``.

    ``fcompute`` receives index variables (int64 expressions), one per dim.
    """
    name = name or f"t{next(_names)}"
    axes = tuple(IterVar(Var(f"{name}_i{d}"), extent) for d, extent in enumerate(shape))
    body = as_expr(fcompute(*[ax.var for ax in axes]))
    return Tensor(shape, body.dtype, name, ComputeOp(axes, body, tag))


def extern(outputs: Sequence[tuple[Sequence[int], str]], inputs: Sequence[Tensor], body: Callable,
           name: str = "extern") -> list[Tensor]:
    """Tensors computed by a hand-written loop nest.

    ``outputs`` lists (shape, dtype) pairs; ``body(input_buffers,
    output_buffers)`` returns the statement that fills the outputs (see
    :class:`ExternOp`). Such a stage is lowered as written: schedules cannot
    transform it.
    """
    op = ExternOp(tuple(inputs), body, [])
    op.outputs = [Tensor(shape, dtype, f"{name}{i}" if len(outputs) > 1 else name, op)
                  for i, (shape, dtype) in enumerate(outputs)]
    return list(op.outputs)


def _reduce(combiner: str, source: Expr, axes) -> Reduce:
    if isinstance(axes, IterVar):
        axes = (axes,)
    axes = tuple(axes)
    for ax in axes:
        if ax.kind != "reduce":
            raise ValueError(f"{ax} is not a reduction axis")
    source = as_expr(source)
    return Reduce(combiner, source, axes, source.dtype)


def reduce_sum(source: Expr, axes) -> Reduce:
    return _reduce("sum", source, axes)


def reduce_prod(source: Expr, axes) -> Reduce:
    return _reduce("prod", source, axes)


def reduce_max(source: Expr, axes) -> Reduce:
    return _reduce("max", source, axes)


def reduce_min(source: Expr, axes) -> Reduce:
    return _reduce("min", source, axes)


def combine(combiner: str, acc: Expr, value: Expr) -> Expr:
    """``acc (combiner) value`` as an expression."""
    op = {"sum": "add", "prod": "mul", "max": "max", "min": "min"}[combiner]
    if acc.dtype == "bool" and combiner in ("max", "sum"):
        op = "or"
    elif acc.dtype == "bool" and combiner in ("min", "prod"):
        op = "and"
    return binary(op, acc, value)
