"""MatMulPacked: a matrix product whose right operand comes packed in column panels.

::

    %y: f32[..., M, N] = MatMulPacked(%a: f32[..., M, K], %bp: f32[..., ceil(N/p), K, p]) {columns=N}

``bp[..., q, k, r]`` is ``B[..., k, q * p + r]`` (zero past column N): the
layout the matrix-product template packs B into on every call
(:mod:`.gemm_schedule`), made once, at compile time, for a constant B (see
:mod:`ember.passes.pack_weights`). The template reads the panels in place,
its register tile ``p`` columns wide. ``bp`` has A's batch dims, or none.
"""

from __future__ import annotations

import numpy as np

from ..loops.expr import Expr
from ..loops.tensor import Tensor, compute, reduce_axis, reduce_sum
from ..types import TensorType
from .common import require
from .matmul import contraction_schedule
from .registry import Fusion, Int, define


def pack_gemm_weight(b: np.ndarray, panel: int) -> np.ndarray:
    """``b`` (..., K, N) in panels of ``panel`` columns: (..., ceil(N/panel), K, panel), zero-padded."""
    *batch, k, n = b.shape
    panels = -(-n // panel)
    padded = np.zeros((*batch, k, panels * panel), dtype=b.dtype)
    padded[..., :n] = b
    split = padded.reshape(*batch, k, panels, panel)
    return np.ascontiguousarray(np.moveaxis(split, -2, -3))


def unpack_gemm_weight(bp: np.ndarray, columns: int) -> np.ndarray:
    """The inverse of :func:`pack_gemm_weight`: (..., K, columns)."""
    *batch, panels, k, panel = bp.shape
    return np.moveaxis(bp, -3, -2).reshape(*batch, k, panels * panel)[..., :columns]


def _check(types: list[TensorType], attrs: dict) -> tuple[TensorType, TensorType]:
    a, bp = types
    require(a.dtype == bp.dtype and a.dtype in ("float32", "float64"), "MatMulPacked takes float32 or float64")
    require(a.rank >= 2 and bp.rank >= 3, f"A must have rank >= 2 and Bp rank >= 3, got {a.shape} and {bp.shape}")
    require(bp.shape[-2] == a.shape[-1], f"inner dimensions differ: A {a.shape} and packed B {bp.shape}")
    require(bp.rank == 3 or bp.shape[:-3] == a.shape[:-2],
            f"packed B's batch dims {bp.shape[:-3]} must be A's {a.shape[:-2]} or none")
    columns = attrs["columns"]
    require(0 < columns <= bp.shape[-3] * bp.shape[-1] and columns > (bp.shape[-3] - 1) * bp.shape[-1],
            f"columns {columns} do not fill {bp.shape[-3]} panels of {bp.shape[-1]}")
    return a, bp


def _infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    a, _ = _check(types, attrs)
    return [a.with_shape((*a.shape[:-1], attrs["columns"]))]


def _reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    _check([TensorType.of(x) for x in arrays], attrs)
    a, bp = arrays
    return [np.matmul(a, unpack_gemm_weight(bp, attrs["columns"])).astype(a.dtype, copy=False)]


def _compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    a, bp = inputs
    panel = bp.shape[-1]
    k = reduce_axis(a.shape[-1], "product_r0")

    def element(*index: Expr) -> Expr:
        *batch, i, j = index
        b_batch = batch if bp.ndim > 3 else []
        return reduce_sum(a[(*batch, i, k.var)] * bp[(*b_batch, j // panel, k.var, j % panel)], k)

    return [compute(outputs[0].shape, element, "product")]


define(
    "MatMulPacked",
    infer=_infer,
    reference=_reference,
    compute=_compute,
    schedule=contraction_schedule,
    attrs={"columns": Int()},
    inputs=2,
    fusion=Fusion.OUT_FUSABLE,
    doc="A @ B with B packed in column panels (..., ceil(N/p), K, p); columns = N.",
)
