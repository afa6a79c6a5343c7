"""PoolNCHWc: MaxPool and AveragePool over 2-D inputs in the blocked layout (see :mod:`.layout`).

::

    %y: f32[N, C/c, OH, OW, c] = PoolNCHWc(%x: f32[N, C/c, H, W, c]) {pool="MaxPool", kernel_shape=[3, 3], ...}

``pool`` names the plain op; the other attributes are that op's, with its
meaning (auto_pad, pads, strides, dilations, ceil_mode, count_include_pad).
The reference unpacks, runs the plain pool's reference and packs again. The
compute shares the plain pools' rows (:mod:`.pool`: padding value, accumulator,
finish) over a padded copy of the blocked input; its schedule keeps the
channels of a block in one vector and a few output positions in registers.
"""

from __future__ import annotations

import math

import numpy as np

from ..loops.expr import INDEX, Expr, cast, const, maximum, minimum
from ..loops.knobs import Knobs
from ..loops.schedule import Schedule, create_schedule
from ..loops.tensor import Tensor, compute, reduce_axis
from ..types import TensorType
from .common import require
from .compute import annotate_pointwise
from .layout import from_blocked, pad_blocked, to_blocked
from .pool import (
    _REDUCERS,
    _WINDOW_ATTRS,
    _WINDOWED_POOLS,
    _lowest,
    _native_accumulator,
    _pool_window,
    counted_taps,
)
from .registry import Int, Str, define, get_op

POOLS = ("MaxPool", "AveragePool")
WINDOW = "pool_blocked"  # tag of the reduction stage


def plain_attrs(attrs: dict) -> dict:
    """The attributes of the plain pool a PoolNCHWc node applies."""
    names = set(get_op(attrs["pool"]).attrs)
    return {k: v for k, v in attrs.items() if k in names}


def _plain_type(x: TensorType) -> TensorType:
    n, outer, *spatial, block = x.shape
    return x.with_shape((n, outer * block, *spatial))


def _check(types: list[TensorType], attrs: dict) -> TensorType:
    x = types[0]
    require(attrs["pool"] in POOLS, f"pool {attrs['pool']!r} is not one of {', '.join(POOLS)}")
    require(x.rank == 5, f"X must be blocked 2-D (N, C/c, H, W, c), got shape {x.shape}")
    return _plain_type(x)


def _infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    plain = _check(types, attrs)
    pool = get_op(attrs["pool"])
    (out,) = pool.infer_types([plain], pool.normalize_attrs(plain_attrs(attrs)))
    return [out.with_shape(out.shape[:1] + (out.shape[1] // types[0].shape[-1],) + out.shape[2:] +
                           types[0].shape[-1:])]


def _reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    x = arrays[0]
    _check([TensorType.of(x)], attrs)
    pool = get_op(attrs["pool"])
    (out,) = pool.run_reference([from_blocked(x)], pool.normalize_attrs(plain_attrs(attrs)))
    return [to_blocked(out, x.shape[-1])]


def _compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    x = inputs[0]
    pool = _WINDOWED_POOLS[attrs["pool"]]
    window = _pool_window(_plain_type(TensorType(x.dtype, x.shape)), attrs)
    spatial = x.shape[2:4]
    acc = _native_accumulator(x.dtype) if pool.widen else x.dtype
    pad = _lowest(np.dtype(x.dtype)) if pool.combiner == "max" else 0
    needed = [(o - 1) * s + e for o, s, e in zip(window.out, window.strides, window.extent)]
    top, left = window.pads_begin
    if top or left or any(n > size for n, size in zip(needed, spatial)):
        padded = pad_blocked(x, (top, left), tuple(needed), float(pad), "padded")
    else:
        padded = x
    kh, kw = (reduce_axis(k, name) for k, name in zip(window.kernel, ("kh", "kw")))
    (sh, sw), (dh, dw) = window.strides, window.dilations

    def element(n: Expr, c: Expr, oh: Expr, ow: Expr, j: Expr) -> Expr:
        value = padded[n, c, oh * sh + kh.var * dh, ow * sw + kw.var * dw, j]
        return _REDUCERS[pool.combiner](pool.prepare(cast(acc, value), attrs), [kh, kw])

    total = compute(outputs[0].shape, element, "pool_total", tag=WINDOW)

    def finish(n: Expr, c: Expr, oh: Expr, ow: Expr, j: Expr) -> Expr:
        def counted(include_pad: bool) -> Expr:
            return math.prod((counted_taps(o, axis, size, window, include_pad, maximum, minimum)
                              for axis, (o, size) in enumerate(zip((oh, ow), spatial))), start=const(1, INDEX))

        return cast(x.dtype, pool.finish(total[n, c, oh, ow, j], attrs, counted))

    return [compute(outputs[0].shape, finish, "pool")]


def schedule_pool_blocked(outputs: list[Tensor], target, knobs=None) -> Schedule:
    """The window reduction with a block of channels as one vector and ``tile_ow`` positions unrolled::

        parallel n.c.oh (fused): for ow.o: for kh, kw: for ow.i (unrolled): for j (vectorized): total (+)= ...

    The padded copy and the finishing stage loop over their elements.
    """
    knobs = knobs or Knobs()
    schedule = create_schedule(outputs)
    for stage in schedule.stages:
        if stage.is_extern:
            continue
        if stage.op.tag != WINDOW:
            annotate_pointwise(stage)
            continue
        n, c, oh, ow, j = stage.op.axes
        kh, kw = stage.op.reduce_axes
        ow_outer, ow_inner = stage.split(ow, knobs.split("tile_ow", ow.extent, default=4, limit=16))
        stage.reorder(n, c, oh, ow_outer, kh, kw, ow_inner, j)
        stage.parallel(stage.fuse(stage.fuse(n, c), oh))
        stage.unroll(ow_inner)
        stage.vectorize(j)
        stage.accumulate_locally()
        stage.compute_epilogue()  # the average's division, as the tile is stored
    return schedule


define(
    "PoolNCHWc",
    infer=_infer,
    reference=_reference,
    compute=_compute,
    schedule=schedule_pool_blocked,
    attrs={"pool": Str(), **_WINDOW_ATTRS, "count_include_pad": Int(0)},
    doc="MaxPool or AveragePool (attribute pool) of a blocked 2-D X (N, C/c, H, W, c), with that pool's attributes.",
)
