"""Reductions and the softmax family.

* ``Reduce*`` (ReduceSum, ReduceMean, ReduceMax, ...): one table of reductions,
  one ``define`` loop. ``axes`` absent or empty means every axis, or none when
  ``noop_with_empty_axes=1`` (the element-wise part of the reduction, e.g. the
  square of ReduceSumSquare, still applies: that is what onnxruntime does).
* ``ArgMax`` / ``ArgMin``: int64 index of the first (or last) extreme element.
* ``Softmax`` / ``LogSoftmax`` / ``Hardmax``: along one axis (opset 13+
  semantics), numerically stable (the maximum is subtracted first).
* ``CumSum`` (``axis`` is an attribute here) and ``TopK`` (``k`` is an attribute).

Integer semantics follow onnxruntime: reductions that need real arithmetic
(ReduceMean, ReduceL2, ReduceLogSum, ReduceLogSumExp) are computed in float64
and truncated toward zero, saturating at the integer range (so the empty
ReduceLogSum, ``-inf``, becomes the dtype's minimum). Reducing an empty axis
gives the identity of the reduction: 0 for sums, 1 for ReduceProd, the lowest
value for ReduceMax, ``-inf`` for the log reductions, and 0 for ReduceMean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..types import FLOAT_DTYPES, NUMERIC_DTYPES, TensorType
from .common import expect_dtype, expect_float, normalize_axis, require
from .registry import Fusion, Int, Ints, define

# ONNX's numeric type sets restricted to ember's dtypes (ONNX also lists
# uint32/uint64/bfloat16, which ember does not have).
_ARITH_DTYPES = FLOAT_DTYPES | {"int32", "int64"}
_ORDER_DTYPES = NUMERIC_DTYPES | {"bool"}  # ReduceMax/ReduceMin take int8/uint8 (opset 18) and bool (opset 20)

Axes = tuple[int, ...]


# ---------------------------------------------------------------- helpers


def _require_flag(attrs: dict, name: str) -> None:
    """Require the 0/1 attribute ``name``."""
    require(attrs[name] in (0, 1), f"{name} must be 0 or 1, got {attrs[name]}")


def _reduced_shape(shape: tuple[int, ...], axes: Axes, keepdims: int) -> tuple[int, ...]:
    """``shape`` with ``axes`` set to 1 (``keepdims``) or removed."""
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _compute_dtype(dtype: np.dtype, float_math: bool) -> np.dtype:
    """The dtype a reference computes in: float16 widens to float32 for accuracy,
    integers widen to float64 when the op needs real arithmetic."""
    if dtype == np.float16:
        return np.dtype(np.float32)
    if float_math and dtype.kind in "iub":
        return np.dtype(np.float64)
    return dtype


def _cast_result(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``y`` as ``dtype``; floats going to integers truncate toward zero and saturate."""
    y = np.asarray(y)  # reductions of 0-d arrays return numpy scalars
    if dtype.kind not in "iu" or y.dtype.kind != "f":
        return y.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    with np.errstate(invalid="ignore"):
        out = y.astype(dtype)
    # float(info.max) may round up past the range (int64), so compare with >=.
    out[y >= float(info.max)] = info.max
    out[y <= float(info.min)] = info.min
    return out


def _lowest(dtype: np.dtype):
    """The identity of max: -inf for floats, the minimum for integers, False for bool."""
    if dtype.kind == "f":
        return -np.inf
    return False if dtype.kind == "b" else np.iinfo(dtype).min


def _highest(dtype: np.dtype):
    """The identity of min: +inf for floats, the maximum for integers, True for bool."""
    if dtype.kind == "f":
        return np.inf
    return True if dtype.kind == "b" else np.iinfo(dtype).max


# ---------------------------------------------------------------- Reduce*
# Each reduction maps (x, axes) to the reduced array with keepdims=True, in
# x's dtype; the caller picks the compute dtype, casts and drops the axes.


def _sum(x: np.ndarray, axes: Axes) -> np.ndarray:
    return np.sum(x, axis=axes, keepdims=True, dtype=x.dtype)


def _max(x: np.ndarray, axes: Axes) -> np.ndarray:
    return np.max(x, axis=axes, keepdims=True, initial=_lowest(x.dtype))


def _min(x: np.ndarray, axes: Axes) -> np.ndarray:
    return np.min(x, axis=axes, keepdims=True, initial=_highest(x.dtype))


def _mean(x: np.ndarray, axes: Axes) -> np.ndarray:
    count = math.prod(x.shape[a] for a in axes)
    return _sum(x, axes) / max(count, 1)  # onnxruntime gives 0 for an empty mean


def _log_sum_exp(x: np.ndarray, axes: Axes) -> np.ndarray:
    shift = _max(x, axes)
    # An empty or all -inf slice keeps shift 0 so that the result is log(0) = -inf, not nan.
    shift = np.where(np.isfinite(shift), shift, 0).astype(x.dtype)
    return np.log(_sum(np.exp(x - shift), axes)) + shift


@dataclass(frozen=True)
class _Reduction:
    """A Reduce* op: its numpy reduction, allowed dtypes, and whether integer
    inputs need real arithmetic (computed in float64, then truncated)."""

    fn: Callable[[np.ndarray, Axes], np.ndarray]
    dtypes: frozenset[str]
    float_math: bool = False


_REDUCTIONS: dict[str, _Reduction] = {
    "ReduceSum": _Reduction(_sum, _ARITH_DTYPES),
    "ReduceMean": _Reduction(_mean, _ARITH_DTYPES, float_math=True),
    "ReduceMax": _Reduction(_max, _ORDER_DTYPES),
    "ReduceMin": _Reduction(_min, _ORDER_DTYPES),
    "ReduceProd": _Reduction(lambda x, axes: np.prod(x, axis=axes, keepdims=True, dtype=x.dtype), _ARITH_DTYPES),
    "ReduceL1": _Reduction(lambda x, axes: _sum(np.abs(x), axes), _ARITH_DTYPES),  # sum |x|
    "ReduceL2": _Reduction(lambda x, axes: np.sqrt(_sum(np.square(x), axes)), _ARITH_DTYPES, float_math=True),
    "ReduceLogSum": _Reduction(lambda x, axes: np.log(_sum(x, axes)), _ARITH_DTYPES, float_math=True),
    "ReduceLogSumExp": _Reduction(_log_sum_exp, _ARITH_DTYPES, float_math=True),  # log sum exp(x)
    "ReduceSumSquare": _Reduction(lambda x, axes: _sum(np.square(x), axes), _ARITH_DTYPES),  # sum x^2
}

_REDUCE_ATTRS = {"axes": Ints(None), "keepdims": Int(1), "noop_with_empty_axes": Int(0)}


def _reduce_axes(rank: int, attrs: dict) -> Axes:
    """The sorted axes a Reduce* op reduces (duplicates are allowed, as in onnxruntime)."""
    if not attrs["axes"]:
        return () if attrs["noop_with_empty_axes"] else tuple(range(rank))
    return tuple(sorted({normalize_axis(a, rank, "axes entry") for a in attrs["axes"]}))


def _make_reduce_infer(reduction: _Reduction):
    """Type inference of one Reduce* op."""

    def infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
        (x,) = types
        expect_dtype(x, reduction.dtypes)
        _require_flag(attrs, "keepdims")
        _require_flag(attrs, "noop_with_empty_axes")
        axes = _reduce_axes(x.rank, attrs)
        return [x.with_shape(_reduced_shape(x.shape, axes, attrs["keepdims"]))]

    return infer


def _make_reduce_reference(reduction: _Reduction):
    """Numpy reference of one Reduce* op."""

    def reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
        (x,) = arrays
        axes = _reduce_axes(x.ndim, attrs)
        work = x.astype(_compute_dtype(x.dtype, reduction.float_math), copy=False)
        # log(0), 0/0 and overflow produce the ONNX values (-inf, inf) without warnings.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            y = reduction.fn(work, axes)
        return [_cast_result(y, x.dtype).reshape(_reduced_shape(x.shape, axes, attrs["keepdims"]))]

    return reference


for _name, _reduction in _REDUCTIONS.items():
    define(_name, infer=_make_reduce_infer(_reduction), reference=_make_reduce_reference(_reduction),
           attrs=_REDUCE_ATTRS, inputs=1, fusion=Fusion.REDUCTION,
           doc=f"{_name} over ``axes`` (all when absent; none when noop_with_empty_axes=1).")


# ---------------------------------------------------------------- ArgMax / ArgMin

_ARG_ATTRS = {"axis": Int(0), "keepdims": Int(1), "select_last_index": Int(0)}


def _arg_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    """ArgMax/ArgMin: int64 indices, the axis kept as 1 or dropped."""
    (x,) = types
    expect_dtype(x, NUMERIC_DTYPES)
    _require_flag(attrs, "keepdims")
    _require_flag(attrs, "select_last_index")
    axis = normalize_axis(attrs["axis"], x.rank)
    require(x.shape[axis] > 0, f"cannot take the index of an extreme along empty axis {axis}")
    return [TensorType("int64", _reduced_shape(x.shape, (axis,), attrs["keepdims"]))]


def _make_arg_reference(find: Callable):
    """Reference of ArgMax/ArgMin from np.argmax/np.argmin (which pick the first extreme)."""

    def reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
        (x,) = arrays
        axis = normalize_axis(attrs["axis"], x.ndim)
        if attrs["select_last_index"]:
            # The first extreme of the reversed axis is the last one of the original.
            index = x.shape[axis] - 1 - find(np.flip(x, axis), axis=axis, keepdims=True)
        else:
            index = find(x, axis=axis, keepdims=True)
        return [index.astype(np.int64).reshape(_reduced_shape(x.shape, (axis,), attrs["keepdims"]))]

    return reference


for _name, _find in {"ArgMax": np.argmax, "ArgMin": np.argmin}.items():
    define(_name, infer=_arg_infer, reference=_make_arg_reference(_find), attrs=_ARG_ATTRS, inputs=1,
           fusion=Fusion.REDUCTION, doc=f"{_name}: int64 index of the extreme along ``axis``.")


# ---------------------------------------------------------------- Softmax family


def _row_max(x: np.ndarray, axis: int) -> np.ndarray:
    return np.max(x, axis=axis, keepdims=True, initial=-np.inf)  # initial: an empty axis is fine


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    exps = np.exp(x - _row_max(x, axis))
    return exps / np.sum(exps, axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - _row_max(x, axis)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _hardmax(x: np.ndarray, axis: int) -> np.ndarray:
    out = np.zeros_like(x)
    if x.shape[axis] > 0:
        np.put_along_axis(out, np.argmax(x, axis=axis, keepdims=True), 1, axis=axis)  # first maximum wins
    return out


_SOFTMAXES: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "Softmax": _softmax,  # exp(x - max) / sum exp(x - max)
    "LogSoftmax": _log_softmax,  # (x - max) - log sum exp(x - max)
    "Hardmax": _hardmax,  # one-hot of the first argmax
}


def _softmax_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    """Softmax family: same type as the input, a float tensor of rank >= 1."""
    (x,) = types
    expect_float(x)
    require(x.rank >= 1, "input must have rank >= 1")
    normalize_axis(attrs["axis"], x.rank)
    return [x]


def _make_softmax_reference(fn: Callable[[np.ndarray, int], np.ndarray]):
    """Reference of a softmax-family op: ``fn`` along the normalized axis."""

    def reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
        (x,) = arrays
        axis = normalize_axis(attrs["axis"], x.ndim)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = fn(x.astype(_compute_dtype(x.dtype, True), copy=False), axis)
        return [y.astype(x.dtype, copy=False)]

    return reference


for _name, _fn in _SOFTMAXES.items():
    define(_name, infer=_softmax_infer, reference=_make_softmax_reference(_fn), attrs={"axis": Int(-1)},
           inputs=1, fusion=Fusion.REDUCTION, doc=f"{_name} along ``axis`` (opset 13+ semantics).")


# ---------------------------------------------------------------- CumSum


def _cumsum_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    """CumSum: same type as the input."""
    (x,) = types
    expect_dtype(x, _ARITH_DTYPES)
    _require_flag(attrs, "exclusive")
    _require_flag(attrs, "reverse")
    normalize_axis(attrs["axis"], x.rank)
    return [x]


def _cumsum_reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    """Inclusive scan, shifted by one for ``exclusive``, on the flipped axis for ``reverse``."""
    (x,) = arrays
    axis = normalize_axis(attrs["axis"], x.ndim)
    work = x.astype(_compute_dtype(x.dtype, False), copy=False)
    if attrs["reverse"]:
        work = np.flip(work, axis)
    y = np.cumsum(work, axis=axis, dtype=work.dtype)
    if attrs["exclusive"]:
        # Shift rather than subtract x: (a + b) - b is not exact in floating point.
        shifted = np.zeros_like(y)
        dst = [slice(None)] * x.ndim
        src = [slice(None)] * x.ndim
        dst[axis], src[axis] = slice(1, None), slice(None, -1)
        shifted[tuple(dst)] = y[tuple(src)]
        y = shifted
    if attrs["reverse"]:
        y = np.flip(y, axis)
    return [np.ascontiguousarray(y).astype(x.dtype, copy=False)]


# A scan is neither a reduction nor injective: TVM classes cumsum as opaque too.
define("CumSum", infer=_cumsum_infer, reference=_cumsum_reference,
       attrs={"axis": Int(), "exclusive": Int(0), "reverse": Int(0)}, inputs=1, fusion=Fusion.OPAQUE,
       doc="Cumulative sum along ``axis`` (ONNX's axis input is an attribute here).")


# ---------------------------------------------------------------- TopK


def _topk_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    """TopK: values (input dtype) and int64 indices, ``k`` along ``axis``."""
    (x,) = types
    expect_dtype(x, NUMERIC_DTYPES)
    _require_flag(attrs, "largest")
    _require_flag(attrs, "sorted")
    require(x.rank >= 1, "input must have rank >= 1")
    axis = normalize_axis(attrs["axis"], x.rank)
    k = attrs["k"]
    require(0 <= k <= x.shape[axis], f"k={k} must be in [0, {x.shape[axis]}] (the size of axis {axis})")
    shape = x.shape[:axis] + (k,) + x.shape[axis + 1:]
    return [x.with_shape(shape), TensorType("int64", shape)]


def _topk_reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    """The k largest (smallest) along ``axis``, sorted; ties keep the lower index first.

    ``sorted=0`` leaves the order unspecified in ONNX; ember returns it sorted too.
    """
    (x,) = arrays
    axis = normalize_axis(attrs["axis"], x.ndim)
    size = x.shape[axis]
    if attrs["largest"]:
        # A stable ascending sort of the reversed axis, read backwards, is a
        # descending sort in which equal values keep their original order.
        order = size - 1 - np.flip(np.argsort(np.flip(x, axis), axis=axis, kind="stable"), axis)
    else:
        order = np.argsort(x, axis=axis, kind="stable")
    indices = np.take(order, np.arange(attrs["k"]), axis=axis).astype(np.int64)
    return [np.take_along_axis(x, indices, axis=axis), indices]


# Sorting is not a reduction the fusion pass can use: opaque, as in TVM.
define("TopK", infer=_topk_infer, reference=_topk_reference,
       attrs={"k": Int(), "axis": Int(-1), "largest": Int(1), "sorted": Int(1)}, inputs=1, fusion=Fusion.OPAQUE,
       doc="The k largest (or smallest) elements along ``axis`` and their int64 indices "
           "(ONNX's K input is an attribute here).")
