"""Pooling ops: windowed MaxPool, AveragePool, LpPool and their global forms.

The windowed pools share one window resolution (:mod:`.window`: auto_pad,
pads, strides, dilations, ceil_mode) and one reference mechanism: pad the
input with the reduction's neutral value, then combine the strided views of
all kernel positions. Only the reduction differs, so each pool is a row of
:data:`_WINDOWED_POOLS`; the global pools, plain reductions over all spatial
axes, are rows of :data:`_GLOBAL_POOLS`.

MaxPool's optional Indices output is not part of the op (the frontend refuses
a node that uses it), so ``storage_order`` is accepted and has no effect.
AveragePool's divisor with ``count_include_pad`` counts the explicit pads but
never the extra positions a ``ceil_mode`` window reaches past them
(onnxruntime's and PyTorch's rule).

The compute definitions (native code) follow the same rows: each pool says
how an element enters the reduction (``prepare``), the reduction
(``combiner``) and what becomes of the result (``finish``). Windowed pools
reduce over a staged copy of the input (:class:`.window.Staging`, padded with
the reference's padding value) into a wide output, cropped by a last stage;
global pools reduce each (n, c) plane directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..loops.expr import INDEX, Expr, call, cast, const, maximum, minimum
from ..loops.tensor import Tensor, compute, reduce_axis, reduce_max, reduce_sum
from ..types import FLOAT_DTYPES, TensorType
from .common import expect_dtype, require
from .registry import Attr, Fusion, Int, Ints, Str, define
from .window import (
    WIDE,
    Window,
    pad_input,
    plan_staging,
    resolve_window,
    schedule_windowed,
    spatial_ints,
    stage_input,
    taps,
)

_WINDOW_ATTRS = {
    "auto_pad": Str("NOTSET"),
    "ceil_mode": Int(0),
    "dilations": Ints(None),
    "kernel_shape": Ints(),
    "pads": Ints(None),
    "strides": Ints(None),
}


def _accumulator(dtype: np.dtype) -> np.dtype:
    """Sums run in float32 (float64 for float64 inputs)."""
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def _lowest(dtype: np.dtype):
    """The smallest finite value of ``dtype``: MaxPool's padding (and its value for an all-padding window)."""
    return np.finfo(dtype).min if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


def _check_flag(attrs: dict, name: str) -> None:
    require(attrs[name] in (0, 1), f"{name} must be 0 or 1, got {attrs[name]}")


def _pool_window(x: TensorType, attrs: dict) -> Window:
    """Validate a windowed pool over ``x`` and resolve its window."""
    require(x.rank >= 3, f"input must have rank >= 3 (N, C, spatial...), got shape {x.shape}")
    _check_flag(attrs, "ceil_mode")
    kernel = attrs["kernel_shape"]
    require(len(kernel) == x.rank - 2, f"kernel_shape {kernel} must have {x.rank - 2} entries, one per spatial axis")
    pads = spatial_ints(attrs["pads"], 2 * len(kernel), 0, "pads")
    # onnxruntime refuses pads >= kernel (a window could then read nothing but padding).
    require(all(p < k for p, k in zip(pads, kernel + kernel)),
            f"pads {pads} must be smaller than kernel_shape {kernel}")
    return resolve_window(x.shape[2:], kernel, attrs, ceil_mode=bool(attrs["ceil_mode"]))


def _combine_taps(x: np.ndarray, window: Window, pad_value, combine: Callable) -> np.ndarray:
    """Pad ``x`` with ``pad_value`` and fold ``combine`` over the views of all kernel positions."""
    padded = pad_input(x, window, pad_value)
    result = None
    for _, view in taps(padded, window):
        result = np.array(view) if result is None else combine(result, view, out=result)
    return result


def counted_taps(o, axis: int, size: int, window: Window, include_pad: bool, lower=np.maximum, upper=np.minimum):
    """How many kernel positions of the window at output position ``o`` along ``axis`` AveragePool counts.

    Kernel position ``t`` lands on padded position ``o * s + t * d``; counted are
    the input positions, and with ``include_pad`` the explicit pads too.
    ``o`` is a numpy array (the reference) or a loop-IR index (the compute,
    with ``lower``/``upper`` = the loop IR's maximum/minimum).
    """
    begin, end = window.pads_begin[axis], window.pads_end[axis]
    lo, hi = (0, begin + size + end) if include_pad else (begin, begin + size)
    stride, dilation, kernel = window.strides[axis], window.dilations[axis], window.kernel[axis]
    first = -((o * stride - lo) // dilation)  # the first t with o*s + t*d >= lo
    last = (hi - 1 - o * stride) // dilation  # the last t with o*s + t*d < hi
    return lower(upper(last, kernel - 1) - lower(first, 0) + 1, 0)


def _counts(spatial: tuple[int, ...], window: Window, include_pad: bool) -> np.ndarray:
    """AveragePool's divisor per output position: the counted taps of each window.

    The counted region is separable, so the count is an outer product of one
    count vector per axis.
    """
    counts = np.ones((), np.int64)
    for axis, size in enumerate(spatial):
        per_axis = counted_taps(np.arange(window.out[axis]), axis, size, window, include_pad)
        counts = np.multiply.outer(counts, per_axis)
    return counts


def _max_pool(x: np.ndarray, window: Window, attrs: dict) -> np.ndarray:
    return _combine_taps(x, window, _lowest(x.dtype), np.maximum)


def _average_pool(x: np.ndarray, window: Window, attrs: dict) -> np.ndarray:
    total = _combine_taps(x.astype(_accumulator(x.dtype), copy=False), window, 0, np.add)
    counts = _counts(x.shape[2:], window, bool(attrs["count_include_pad"]))
    # A window with nothing to count averages to 0, as in onnxruntime.
    return total / np.maximum(counts, 1)


def _lp_pool(x: np.ndarray, window: Window, attrs: dict) -> np.ndarray:
    p = attrs["p"]
    powered = np.abs(x.astype(_accumulator(x.dtype), copy=False)) ** p
    return _combine_taps(powered, window, 0, np.add) ** (1.0 / p)


def _native_accumulator(dtype: str) -> str:
    """:func:`_accumulator` by name, for the compute definitions."""
    return _accumulator(np.dtype(dtype)).name


def _power(v: Expr, attrs: dict) -> Expr:
    # numpy's float32 ** int is powf(x, float(p)), as is llvm.pow
    return call("pow", call("fabs", v), float(attrs["p"]))


def _root(v: Expr, attrs: dict, counted) -> Expr:
    return call("pow", v, 1.0 / attrs["p"])


def _average(v: Expr, attrs: dict, counted) -> Expr:
    # float32 sums over int64 counts divide in float64 in numpy, then round once to the output.
    return cast("float64", v) / cast("float64", maximum(counted(bool(attrs["count_include_pad"])), 1))


def _mean(v: Expr, attrs: dict, counted) -> Expr:
    return v / cast(v.dtype, counted(False))


def _keep(v: Expr, attrs: dict, counted=None) -> Expr:
    return v


@dataclass(frozen=True)
class _Pool:
    """One pool: its reduction (reference and compute), extra attributes (beyond the window's), dtypes.

    The compute reduces ``prepare(x)`` with ``combiner`` (in the accumulator
    dtype when ``widen``, else in the input's), then returns
    ``finish(total, attrs, counted)``, where ``counted(include_pad)`` is the
    number of elements (or counted window positions) reduced.
    """

    reduce: Callable[..., np.ndarray]  # (x, window or spatial axes, attrs) -> reduced x
    extra_attrs: dict[str, Attr]
    dtypes: frozenset[str]
    doc: str
    combiner: str = "sum"
    widen: bool = True
    prepare: Callable[[Expr, dict], Expr] = _keep
    finish: Callable[..., Expr] = _keep


_WINDOWED_POOLS = {
    "MaxPool": _Pool(_max_pool, {"storage_order": Int(0)}, FLOAT_DTYPES | {"int8", "uint8"},
                     "Maximum over each window; padding never wins.", combiner="max", widen=False),
    "AveragePool": _Pool(_average_pool, {"count_include_pad": Int(0)}, FLOAT_DTYPES,
                         "Mean over each window; count_include_pad=1 counts the explicit pads in the divisor.",
                         finish=_average),
    "LpPool": _Pool(_lp_pool, {"p": Int(2)}, FLOAT_DTYPES,
                    "(sum over each window of |x|^p)^(1/p); padding contributes zeros.",
                    prepare=_power, finish=_root),
}


def _windowed_infer(pool: _Pool) -> Callable:
    def infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
        x = types[0]
        expect_dtype(x, pool.dtypes, "X")
        for name in ("storage_order", "count_include_pad"):
            if name in attrs:
                _check_flag(attrs, name)
        if "p" in attrs:
            require(attrs["p"] >= 1, f"p must be >= 1, got {attrs['p']}")
        window = _pool_window(x, attrs)
        return [x.with_shape(x.shape[:2] + window.out)]
    return infer


def _windowed_reference(pool: _Pool) -> Callable:
    def reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
        x = arrays[0]
        window = _pool_window(TensorType.of(x), attrs)
        return [pool.reduce(x, window, attrs).astype(x.dtype, copy=False)]
    return reference


_REDUCERS = {"sum": reduce_sum, "max": reduce_max}


def _windowed_compute(pool: _Pool) -> Callable:
    """Stage the input (padded like the reference), reduce each window into the wide output, crop."""
    def compute_pool(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
        x = inputs[0]
        window = _pool_window(TensorType(x.dtype, x.shape), attrs)
        staging = plan_staging(x.shape[2:], window)
        acc = _native_accumulator(x.dtype) if pool.widen else x.dtype
        pad = _lowest(np.dtype(x.dtype)) if pool.combiner == "max" else 0
        staged = stage_input(x, staging, pad, acc, lambda v: pool.prepare(cast(acc, v), attrs), "pool_staged")
        kernel = [reduce_axis(k, f"k{axis}") for axis, k in enumerate(window.kernel)]

        def element(n: Expr, c: Expr, q: Expr) -> Expr:
            phase, offset = staging.tap([k.var for k in kernel])
            return _REDUCERS[pool.combiner](staged[n, c, phase, q + offset], kernel)

        wide = compute(x.shape[:2] + (staging.wide,), element, "pool_wide", tag=WIDE)

        def crop(n: Expr, c: Expr, *o: Expr) -> Expr:
            def counted(include_pad: bool) -> Expr:
                return math.prod((counted_taps(i, axis, size, window, include_pad, maximum, minimum)
                                  for axis, (i, size) in enumerate(zip(o, x.shape[2:]))), start=const(1, INDEX))

            return cast(x.dtype, pool.finish(wide[n, c, staging.position(o)], attrs, counted))

        return [compute(outputs[0].shape, crop, "pool")]
    return compute_pool


for _name, _pool in _WINDOWED_POOLS.items():
    define(_name, infer=_windowed_infer(_pool), reference=_windowed_reference(_pool),
           attrs={**_WINDOW_ATTRS, **_pool.extra_attrs}, inputs=1, fusion=Fusion.OPAQUE, doc=_pool.doc,
           compute=_windowed_compute(_pool), schedule=schedule_windowed)


# --- Global pools -------------------------------------------------------------------------------


def _global_mean(x: np.ndarray, axes: tuple[int, ...], attrs: dict) -> np.ndarray:
    return x.mean(axis=axes, keepdims=True, dtype=_accumulator(x.dtype))


def _global_max(x: np.ndarray, axes: tuple[int, ...], attrs: dict) -> np.ndarray:
    return x.max(axis=axes, keepdims=True)


def _global_lp(x: np.ndarray, axes: tuple[int, ...], attrs: dict) -> np.ndarray:
    p = attrs["p"]
    powered = np.abs(x.astype(_accumulator(x.dtype), copy=False)) ** p
    return powered.sum(axis=axes, keepdims=True) ** (1.0 / p)


_GLOBAL_POOLS = {
    "GlobalAveragePool": _Pool(_global_mean, {}, FLOAT_DTYPES, "Mean over all spatial axes (kept as size 1).",
                               finish=_mean),
    "GlobalMaxPool": _Pool(_global_max, {}, FLOAT_DTYPES, "Maximum over all spatial axes (kept as size 1).",
                           combiner="max", widen=False),
    "GlobalLpPool": _Pool(_global_lp, {"p": Int(2)}, FLOAT_DTYPES,
                          "(sum over all spatial axes of |x|^p)^(1/p), spatial axes kept as size 1.",
                          prepare=_power, finish=_root),
}


def _global_infer(pool: _Pool) -> Callable:
    def infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
        x = types[0]
        expect_dtype(x, pool.dtypes, "X")
        require(x.rank >= 3, f"input must have rank >= 3 (N, C, spatial...), got shape {x.shape}")
        require(all(d > 0 for d in x.shape[2:]), f"spatial axes of {x.shape} must not be empty")
        if "p" in attrs:
            require(attrs["p"] >= 1, f"p must be >= 1, got {attrs['p']}")
        return [x.with_shape(x.shape[:2] + (1,) * (x.rank - 2))]
    return infer


def _global_reference(pool: _Pool) -> Callable:
    def reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
        x = arrays[0]
        return [pool.reduce(x, tuple(range(2, x.ndim)), attrs).astype(x.dtype, copy=False)]
    return reference


def _global_compute(pool: _Pool) -> Callable:
    """Reduce each (n, c) plane with the reductions innermost (a scalar accumulator), then finish."""
    def compute_pool(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
        x = inputs[0]
        acc = _native_accumulator(x.dtype) if pool.widen else x.dtype
        spatial = [reduce_axis(size, f"r{axis}") for axis, size in enumerate(x.shape[2:])]
        total = compute(x.shape[:2], lambda n, c: _REDUCERS[pool.combiner](
            pool.prepare(cast(acc, x[(n, c, *spatial)]), attrs), spatial), "pool_total")
        count = const(math.prod(x.shape[2:]), INDEX)
        return [compute(outputs[0].shape, lambda n, c, *_: cast(x.dtype, pool.finish(
            total[n, c], attrs, lambda include_pad: count)), "pool")]
    return compute_pool


for _name, _pool in _GLOBAL_POOLS.items():
    define(_name, infer=_global_infer(_pool), reference=_global_reference(_pool),
           attrs=_pool.extra_attrs, inputs=1, fusion=Fusion.REDUCTION, doc=_pool.doc,
           compute=_global_compute(_pool))
