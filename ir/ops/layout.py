"""Layout conversions between NCHW and the blocked layout NCHW[x]c, and the conv weight packing.

The blocked layout splits the channel axis into blocks of ``c`` channels and
makes the position inside the block the innermost axis, so a vector register
holds ``c`` channels of one pixel::

    ToBlocked(x)   {block=c}:  [N, C, spatial...]        -> [N, C/c, spatial..., c]
    FromBlocked(x)          :  [N, C/c, spatial..., c]   -> [N, C, spatial...]       (c: the last dim)
    PackConvWeight(w) {in_block=i, out_block=o}:
                               [O, I, kh, kw]            -> [O/o, I/i, kh, kw, i, o]

``x[n, k * c + j, s...]`` is ``blocked[n, k, s..., j]``. The packed weight
puts the output channels of one block innermost (one vector per input channel
and kernel position). Convolutions in this layout are
:mod:`ember.ir.ops.conv_blocked`; the pass choosing it is :mod:`ember.passes.layout`.
"""

from __future__ import annotations

import numpy as np

from ..loops.expr import Expr, const, logical_and, maximum, minimum, select
from ..loops.tensor import Tensor, compute
from ..types import TensorType
from .common import require
from .elementwise import pointwise_schedule
from .registry import Fusion, Int, define


def to_blocked(x: np.ndarray, block: int) -> np.ndarray:
    """``x`` (N, C, spatial...) in the blocked layout (N, C/block, spatial..., block)."""
    n, c, *spatial = x.shape
    return np.ascontiguousarray(np.moveaxis(x.reshape(n, c // block, block, *spatial), 2, -1))


def from_blocked(x: np.ndarray) -> np.ndarray:
    """``x`` (N, C/c, spatial..., c) back in the plain layout (N, C, spatial...)."""
    n, outer, *spatial, block = x.shape
    return np.ascontiguousarray(np.moveaxis(x, -1, 2).reshape(n, outer * block, *spatial))


def pack_conv_weight(w: np.ndarray, in_block: int, out_block: int) -> np.ndarray:
    """Weights (O, I, k...) packed as (O/out_block, I/in_block, k..., in_block, out_block)."""
    o, i, *kernel = w.shape
    split = w.reshape(o // out_block, out_block, i // in_block, in_block, *kernel)
    rank = len(kernel)
    order = (0, 2, *range(4, 4 + rank), 3, 1)
    return np.ascontiguousarray(split.transpose(order))


def unpack_conv_weight(w: np.ndarray) -> np.ndarray:
    """The inverse of :func:`pack_conv_weight`: packed weights back to (O, I, k...)."""
    outer_o, outer_i, *kernel, in_block, out_block = w.shape
    rank = len(kernel)
    order = (0, 3 + rank, 1, 2 + rank, *range(2, 2 + rank))
    return np.ascontiguousarray(w.transpose(order).reshape(outer_o * out_block, outer_i * in_block, *kernel))


def blocked_shape(shape: tuple[int, ...], block: int) -> tuple[int, ...]:
    """The blocked shape of a plain (N, C, spatial...) shape."""
    n, c, *spatial = shape
    return (n, c // block, *spatial, block)


def pad_blocked(x: Tensor, begins: tuple[int, int], sizes: tuple[int, int], value: float, name: str) -> Tensor:
    """A copy of the blocked 2-D ``x`` (N, C/c, H, W, c) over ``sizes`` rows and columns starting
    ``begins`` before its first ones: ``value`` where that lies outside ``x``.

    The read is clamped into ``x`` and the select keeps ``value`` outside, so
    nothing branches and the block of channels copies as one vector.
    """
    height, width = x.shape[2:4]

    def element(n: Expr, c: Expr, h: Expr, w: Expr, j: Expr) -> Expr:
        row, col = h - begins[0], w - begins[1]
        inside = logical_and(row >= 0, row < height, col >= 0, col < width)
        clamped = x[n, c, minimum(maximum(row, 0), height - 1), minimum(maximum(col, 0), width - 1), j]
        return select(inside, clamped, const(value, x.dtype))

    return compute((*x.shape[:2], *sizes, x.shape[4]), element, name)


# --------------------------------------------------------------------------- ToBlocked


def _to_blocked_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    x, block = types[0], attrs["block"]
    require(x.rank >= 2, f"input must have rank >= 2 (N, C, ...), got shape {x.shape}")
    require(block >= 1 and x.shape[1] % block == 0, f"block {block} does not divide the {x.shape[1]} channels")
    return [x.with_shape(blocked_shape(x.shape, block))]


def _to_blocked_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    x, block = inputs[0], attrs["block"]

    def element(n: Expr, k: Expr, *rest: Expr) -> Expr:
        *spatial, j = rest
        return x[(n, k * block + j, *spatial)]

    return [compute(outputs[0].shape, element, "to_blocked")]


define(
    "ToBlocked",
    infer=_to_blocked_infer,
    reference=lambda arrays, attrs: [to_blocked(arrays[0], attrs["block"])],
    compute=_to_blocked_compute,
    schedule=pointwise_schedule,
    attrs={"block": Int()},
    fusion=Fusion.INJECTIVE,
    doc="X (N, C, spatial...) in the blocked layout (N, C/block, spatial..., block).",
)


# --------------------------------------------------------------------------- FromBlocked


def _from_blocked_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    x = types[0]
    require(x.rank >= 3, f"input must have rank >= 3 (N, C/c, ..., c), got shape {x.shape}")
    n, outer, *spatial, block = x.shape
    return [x.with_shape((n, outer * block, *spatial))]


def _from_blocked_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    x = inputs[0]
    block = x.shape[-1]

    def element(n: Expr, c: Expr, *spatial: Expr) -> Expr:
        return x[(n, c // block, *spatial, c % block)]

    return [compute(outputs[0].shape, element, "from_blocked")]


define(
    "FromBlocked",
    infer=_from_blocked_infer,
    reference=lambda arrays, attrs: [from_blocked(arrays[0])],
    compute=_from_blocked_compute,
    schedule=pointwise_schedule,
    fusion=Fusion.INJECTIVE,
    doc="X in the blocked layout (N, C/c, spatial..., c) back in the plain layout (N, C, spatial...).",
)


# --------------------------------------------------------------------------- PackConvWeight


def _pack_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    w, ib, ob = types[0], attrs["in_block"], attrs["out_block"]
    require(w.rank >= 3, f"W must have rank >= 3 (O, I, k...), got shape {w.shape}")
    o, i, *kernel = w.shape
    require(ob >= 1 and o % ob == 0, f"out_block {ob} does not divide the {o} output channels")
    require(ib >= 1 and i % ib == 0, f"in_block {ib} does not divide the {i} input channels")
    return [w.with_shape((o // ob, i // ib, *kernel, ib, ob))]


def _pack_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    w, ib, ob = inputs[0], attrs["in_block"], attrs["out_block"]

    def element(oo: Expr, io: Expr, *rest: Expr) -> Expr:
        *kernel, ii, oi = rest
        return w[(oo * ob + oi, io * ib + ii, *kernel)]

    return [compute(outputs[0].shape, element, "packed")]


define(
    "PackConvWeight",
    infer=_pack_infer,
    reference=lambda arrays, attrs: [pack_conv_weight(arrays[0], attrs["in_block"], attrs["out_block"])],
    compute=_pack_compute,
    schedule=pointwise_schedule,
    attrs={"in_block": Int(), "out_block": Int()},
    fusion=Fusion.INJECTIVE,
    doc="Conv weights W (O, I, k...) packed as (O/out_block, I/in_block, k..., in_block, out_block).",
)
