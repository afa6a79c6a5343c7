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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..types import FLOAT_DTYPES, TensorType
from .common import expect_dtype, require
from .registry import Attr, Fusion, Int, Ints, Str, define
from .window import Window, pad_input, resolve_window, spatial_ints, taps

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


def _counts(spatial: tuple[int, ...], window: Window, include_pad: bool) -> np.ndarray:
    """AveragePool's divisor per output position: the counted taps of each window.

    The counted region is separable, so the count is an outer product of one
    count vector per axis.
    """
    counts = np.ones((), np.int64)
    for axis, size in enumerate(spatial):
        begin, end = window.pads_begin[axis], window.pads_end[axis]
        stride, dilation, out = window.strides[axis], window.dilations[axis], window.out[axis]
        reach = (out - 1) * stride + window.extent[axis]
        position = np.arange(max(reach, begin + size + end))
        counted = position < begin + size + end if include_pad else (position >= begin) & (position < begin + size)
        per_axis = sum(counted[k * dilation: k * dilation + (out - 1) * stride + 1: stride].astype(np.int64)
                       for k in range(window.kernel[axis]))
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


@dataclass(frozen=True)
class _Pool:
    """One pool: its reduction, extra attributes (beyond the window's), and allowed dtypes."""

    reduce: Callable[..., np.ndarray]  # (x, window or spatial axes, attrs) -> reduced x
    extra_attrs: dict[str, Attr]
    dtypes: frozenset[str]
    doc: str


_WINDOWED_POOLS = {
    "MaxPool": _Pool(_max_pool, {"storage_order": Int(0)}, FLOAT_DTYPES | {"int8", "uint8"},
                     "Maximum over each window; padding never wins."),
    "AveragePool": _Pool(_average_pool, {"count_include_pad": Int(0)}, FLOAT_DTYPES,
                         "Mean over each window; count_include_pad=1 counts the explicit pads in the divisor."),
    "LpPool": _Pool(_lp_pool, {"p": Int(2)}, FLOAT_DTYPES,
                    "(sum over each window of |x|^p)^(1/p); padding contributes zeros."),
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


for _name, _pool in _WINDOWED_POOLS.items():
    define(_name, infer=_windowed_infer(_pool), reference=_windowed_reference(_pool),
           attrs={**_WINDOW_ATTRS, **_pool.extra_attrs}, inputs=1, fusion=Fusion.OPAQUE, doc=_pool.doc)


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
    "GlobalAveragePool": _Pool(_global_mean, {}, FLOAT_DTYPES, "Mean over all spatial axes (kept as size 1)."),
    "GlobalMaxPool": _Pool(_global_max, {}, FLOAT_DTYPES, "Maximum over all spatial axes (kept as size 1)."),
    "GlobalLpPool": _Pool(_global_lp, {"p": Int(2)}, FLOAT_DTYPES,
                          "(sum over all spatial axes of |x|^p)^(1/p), spatial axes kept as size 1."),
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


for _name, _pool in _GLOBAL_POOLS.items():
    define(_name, infer=_global_infer(_pool), reference=_global_reference(_pool),
           attrs=_pool.extra_attrs, inputs=1, fusion=Fusion.REDUCTION, doc=_pool.doc)
