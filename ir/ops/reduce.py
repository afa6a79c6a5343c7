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

Compute definitions are built from :func:`reduce_over` (a reduction over a set
of axes), in stages: ArgMax is the extreme value, then the first index holding
it; Softmax is the max, the exps exp(x - max), their sum, then a normalizing
pass. A reduction of a contiguous last axis accumulates in
:data:`PARTIAL_LANES` interleaved partial results, then combines them (vector
code instead of one scalar accumulator). :func:`reduction_schedule` loops each
reduction in its input's memory order.
CumSum and TopK are hand-written loop nests (a scan; selection by insertion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..loops.expr import (INDEX, Expr, Load, Var, as_expr, call, cast, const, is_float, logical_and, logical_not,
                          logical_or, minimum, select)
from ..loops.knobs import Knobs
from ..loops.schedule import Schedule, Stage, create_schedule
from ..loops.stmt import Allocate, Buffer, If, Stmt, Store, for_range, seq
from ..loops.tensor import (Reduce, Tensor, TensorRead, compute, extern, reduce_axis, reduce_max, reduce_min,
                            reduce_prod, reduce_sum, walk)
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


# ---------------------------------------------------------------- loop-level building blocks
# The compute definitions below share these: a reduction over a set of axes of
# an index space, the schedule that loops over it in memory order, and casts.

_REDUCERS = {"sum": reduce_sum, "prod": reduce_prod, "max": reduce_max, "min": reduce_min}


def _work_dtype(dtype: str, float_math: bool) -> str:
    """The loop-level twin of :func:`_compute_dtype`, on dtype names."""
    return _compute_dtype(np.dtype(dtype), float_math).name


def _expand_index(out: tuple[Expr, ...], rank: int, raxes: dict[int, Var], keepdims: int) -> tuple[Expr, ...]:
    """The index into the reduced space: reduction variables on the reduced axes, ``out`` elsewhere."""
    rest = iter(out)
    index = []
    for d in range(rank):
        if d in raxes:
            index.append(raxes[d])
            if keepdims:
                next(rest)  # the kept axis of extent 1
        else:
            index.append(next(rest))
    return tuple(index)


def reduce_over(combiner: str, shape: tuple[int, ...], axes: Axes, keepdims: int,
                element: Callable[[tuple[Expr, ...], tuple[Expr, ...]], Expr], name: str) -> Tensor:
    """``combiner`` ("sum", "prod", "max", "min") of ``element`` over ``axes`` of the index space ``shape``.

    ``element(index, out)`` gets the index into ``shape`` (reduction variables
    on ``axes``) and the index of the result element, whose shape is ``shape``
    reduced (:func:`_reduced_shape`). With no axes the result is the element itself.

    >>> from ember.ir.loops import placeholder
    >>> x = placeholder((2, 3), "float32", "x")
    >>> rows = reduce_over("sum", x.shape, (1,), 0, lambda i, o: x[i], "rows")   # rows[i] = sum_j x[i, j]
    """
    if _in_lanes(shape, axes):
        return _reduce_in_lanes(combiner, shape, axes, keepdims, element, name)
    raxes = {a: reduce_axis(shape[a], f"{name}_r{a}") for a in axes}

    def body(*out: Expr) -> Expr:
        index = _expand_index(out, len(shape), {a: ax.var for a, ax in raxes.items()}, keepdims)
        source = as_expr(element(index, out))
        return _REDUCERS[combiner](source, tuple(raxes.values())) if raxes else source

    return compute(_reduced_shape(shape, axes, keepdims), body, name)


# Lane-partial accumulators. A reduction over the contiguous last axis has a scalar accumulator, a
# chain of dependent operations that vector code cannot help. Reduced as ``PARTIAL_LANES`` interleaved
# partial results instead (element j goes to partial j % PARTIAL_LANES), the accumulation is a
# vectorizable loop over lanes; a second, short reduction combines the partials. 16 is a multiple of
# every x86 target's float32 lanes (4, 8, 16), and more partials than one vector hide the latency
# of the adds.
PARTIAL_LANES = 16
PARTIAL_TAG = "lane_partial"  # the stage of the partial results (scheduled by reduction_schedule)


def _in_lanes(shape: tuple[int, ...], axes: Axes) -> bool:
    """Whether a reduction over ``axes`` of ``shape`` is done in lane-partial accumulators: it reduces
    the last axis, of at least two whole groups of lanes."""
    last = len(shape) - 1
    return last in axes and shape[last] % PARTIAL_LANES == 0 and shape[last] >= 2 * PARTIAL_LANES


def _reduce_in_lanes(combiner: str, shape: tuple[int, ...], axes: Axes, keepdims: int,
                     element: Callable[[tuple[Expr, ...], tuple[Expr, ...]], Expr], name: str) -> Tensor:
    """:func:`reduce_over` as ``PARTIAL_LANES`` partial results per output element, then their combination.

    ::

        partial[o, l] = combiner over (r..., k) of element(x index (r..., k * LANES + l))
        result[o]     = combiner over l of partial[o, l]
    """
    last = len(shape) - 1
    groups = reduce_axis(shape[last] // PARTIAL_LANES, f"{name}_k")
    raxes = {a: reduce_axis(shape[a], f"{name}_r{a}") for a in axes if a != last}

    def partial_body(*at: Expr) -> Expr:
        out, lane = at[:-1], at[-1]
        index = _expand_index(out, len(shape), {**{a: ax.var for a, ax in raxes.items()},
                                                last: groups.var * PARTIAL_LANES + lane}, keepdims)
        return _REDUCERS[combiner](as_expr(element(index, out)), (*raxes.values(), groups))

    out_shape = _reduced_shape(shape, axes, keepdims)
    partial = compute(out_shape + (PARTIAL_LANES,), partial_body, f"{name}_partial", tag=PARTIAL_TAG)
    lanes = reduce_axis(PARTIAL_LANES, f"{name}_lane")
    return compute(out_shape, lambda *out: _REDUCERS[combiner](partial[(*out, lanes.var)], (lanes,)), name)


def _at(index: tuple[Expr, ...], axis: int) -> tuple[Expr, ...]:
    """``index`` with ``axis`` set to 0: where a keepdims reduction along ``axis`` holds its result."""
    return index[:axis] + (const(0, INDEX),) + index[axis + 1:]


def _is_nan(x: Expr) -> Expr:
    return x.ne(x)


def _saturating_cast(y: Expr, dtype: str) -> Expr:
    """``y`` as ``dtype``; a float going to an integer truncates toward zero and saturates
    (NaN gives the minimum, as numpy's cast does on x86), like :func:`_cast_result`."""
    if y.dtype == dtype:
        return y
    if dtype not in NUMERIC_DTYPES or is_float(dtype) or not is_float(y.dtype):
        return cast(dtype, y)
    info = np.iinfo(dtype)
    highest, lowest = const(info.max, dtype), const(info.min, dtype)
    return select(y >= float(info.max), highest, select(y > float(info.min), cast(dtype, y), lowest))


def reduction_schedule(outputs: list[Tensor], target, knobs=None) -> Schedule:
    """Inline the stages tagged ``inline``; loop over every reduction in the memory order of the
    tensor it reads, so that the innermost loop has stride 1.

    Reducing axis 1 of an (N, C, H, W) input loops ``n, c, h, w`` and
    accumulates whole (h, w) planes of the output (vectorizable); reducing
    the last axis accumulates in lane-partial registers (:data:`PARTIAL_LANES`,
    vectorized). Plain stages (Softmax's exps and normalization, a norm's
    affine step) are vectorized along their last axis.

    Knobs: ``parallel`` (default on) whether the first data loop of each stage
    runs on the thread pool; with lane partials, ``partials_in_registers``
    (default on) whether they accumulate in a register tile; with a plain
    output, ``vector_chunk`` as in :func:`~ember.ir.ops.compute.annotate_pointwise`.
    """
    knobs = knobs or Knobs()
    parallel = knobs.choose("parallel", (True, False), default=True)
    schedule = create_schedule(outputs)
    for stage in schedule.stages:
        if stage.is_extern:
            continue
        is_output = any(stage.tensor is t for t in outputs)
        if stage.op.tag == "inline" and not is_output:
            stage.compute_inline()
        elif stage.op.tag == PARTIAL_TAG:
            _accumulate_in_lanes(stage, knobs.choose("partials_in_registers", (True, False), default=True))
        elif isinstance(stage.op.body, Reduce):
            _follow_memory_order(stage)
        elif stage.tensor.shape and stage.tensor.shape[-1] > 1:
            _vectorize_last(stage, knobs if is_output else None)
        if not stage.inlined and parallel:
            parallel_outer(stage)
    return schedule


def _accumulate_in_lanes(stage: Stage, in_registers: bool) -> None:
    """Loop a lane-partial stage as ``for o: for r...: for k: for vectorized lane``, accumulating in
    a tile of registers when ``in_registers``."""
    data = [ax for ax in stage.leaf if ax.kind == "data"]
    reduce = [ax for ax in stage.leaf if ax.kind == "reduce"]
    stage.reorder(*data[:-1], *reduce, data[-1])
    stage.vectorize(data[-1])
    if in_registers:
        stage.accumulate_locally()


def _vectorize_last(stage: Stage, knobs: Knobs | None) -> None:
    """Vectorize the innermost loop of a pointwise stage (``vector_chunk`` may split it first)."""
    inner = stage.leaf[-1]
    chunk = knobs.split("vector_chunk", inner.extent, default=inner.extent) if knobs is not None else inner.extent
    if chunk < inner.extent:
        inner = stage.split(inner, chunk)[1]
    stage.vectorize(inner)


def parallel_outer(stage: Stage) -> None:
    """Mark parallel the first loop of more than one iteration, if it is a data loop outside
    every reduction loop (and not the vectorized one)."""
    for ax in stage.leaf:
        if ax.kind == "reduce" or stage.annotations.get(ax) == "vectorized":
            return
        if ax.extent > 1:
            stage.parallel(ax)
            return


def _follow_memory_order(stage: Stage) -> None:
    """Order the loops of a reduction stage like the axes of the tensor it reads with most of them."""
    axes = {id(ax.var): ax for ax in stage.leaf}
    reduce_vars = {id(ax.var) for ax in stage.leaf if ax.kind == "reduce"}
    best: dict[int, int] = {}

    def weight(position: dict[int, int]) -> tuple[int, int]:  # the read the reduction walks, then the widest
        return len(reduce_vars & position.keys()), len(position)

    for e in walk(stage.op.body):
        if isinstance(e, TensorRead):
            position = {id(i): p for p, i in enumerate(e.indices) if isinstance(i, Var) and id(i) in axes}
            if weight(position) > weight(best):
                best = position
    # axes the read does not use (kept axes of extent 1) go outermost
    stage.reorder(*sorted(stage.leaf, key=lambda ax: best.get(id(ax.var), -1)))
    if stage.leaf[-1].kind == "data":
        stage.vectorize(stage.leaf[-1])


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


def _abs(x: Expr) -> Expr:
    return call("fabs", x) if is_float(x.dtype) else select(x < 0, -x, x)


@dataclass(frozen=True)
class _Reduction:
    """A Reduce* op: its numpy reduction, allowed dtypes, and whether integer
    inputs need real arithmetic (computed in float64, then truncated).

    The loop-level formula: ``finish(combiner over element(x), count)``, where
    ``count`` is the number of reduced elements. A ``shifted`` reduction sees
    ``x - max(x)`` (the max taken as 0 where it is not finite, like
    :func:`_log_sum_exp`) and gets the max added back to its result.
    """

    fn: Callable[[np.ndarray, Axes], np.ndarray]
    dtypes: frozenset[str]
    float_math: bool = False
    combiner: str = "sum"
    element: Callable[[Expr], Expr] | None = None
    finish: Callable[[Expr, int], Expr] | None = None
    shifted: bool = False


_REDUCTIONS: dict[str, _Reduction] = {
    "ReduceSum": _Reduction(_sum, _ARITH_DTYPES),
    "ReduceMean": _Reduction(_mean, _ARITH_DTYPES, float_math=True,
                             finish=lambda acc, count: acc / float(max(count, 1))),
    "ReduceMax": _Reduction(_max, _ORDER_DTYPES, combiner="max"),
    "ReduceMin": _Reduction(_min, _ORDER_DTYPES, combiner="min"),
    "ReduceProd": _Reduction(lambda x, axes: np.prod(x, axis=axes, keepdims=True, dtype=x.dtype), _ARITH_DTYPES,
                             combiner="prod"),
    "ReduceL1": _Reduction(lambda x, axes: _sum(np.abs(x), axes), _ARITH_DTYPES, element=_abs),  # sum |x|
    "ReduceL2": _Reduction(lambda x, axes: np.sqrt(_sum(np.square(x), axes)), _ARITH_DTYPES, float_math=True,
                           element=lambda x: x * x, finish=lambda acc, count: call("sqrt", acc)),
    "ReduceLogSum": _Reduction(lambda x, axes: np.log(_sum(x, axes)), _ARITH_DTYPES, float_math=True,
                               finish=lambda acc, count: call("log", acc)),
    "ReduceLogSumExp": _Reduction(_log_sum_exp, _ARITH_DTYPES, float_math=True,  # log sum exp(x)
                                  element=lambda x: call("exp", x), finish=lambda acc, count: call("log", acc),
                                  shifted=True),
    "ReduceSumSquare": _Reduction(lambda x, axes: _sum(np.square(x), axes), _ARITH_DTYPES,  # sum x^2
                                  element=lambda x: x * x),
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


def _make_reduce_compute(reduction: _Reduction):
    """Compute definition of one Reduce* op: an optional shift stage (the max), the
    reduction, and a last stage for ``finish`` and the cast back to the input dtype."""

    def compute_fn(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
        (x,), (out,) = inputs, outputs
        axes, keepdims = _reduce_axes(x.ndim, attrs), attrs["keepdims"]
        work = _work_dtype(x.dtype, reduction.float_math)
        shift = None
        if reduction.shifted:
            peak = reduce_over("max", x.shape, axes, keepdims, lambda i, o: cast(work, x[i]), "peak")
            # a non-finite max (empty, all -inf, inf or NaN) shifts by 0, as the reference does
            shift = compute(out.shape, lambda *o: select(call("fabs", peak[o]) < float("inf"), peak[o], 0.0),
                            "shift")

        def element(index: tuple[Expr, ...], o: tuple[Expr, ...]) -> Expr:
            value = cast(work, x[index])
            if shift is not None:
                value = value - shift[o]
            return reduction.element(value) if reduction.element else value

        acc = reduce_over(reduction.combiner, x.shape, axes, keepdims, element, "acc")
        if reduction.finish is None and shift is None and work == out.dtype:
            return [acc]
        count = math.prod(x.shape[a] for a in axes)

        def result(*o: Expr) -> Expr:
            y = reduction.finish(acc[o], count) if reduction.finish else acc[o]
            return _saturating_cast(y + shift[o] if shift is not None else y, out.dtype)

        return [compute(out.shape, result, "result")]

    return compute_fn


for _name, _reduction in _REDUCTIONS.items():
    define(_name, infer=_make_reduce_infer(_reduction), reference=_make_reduce_reference(_reduction),
           compute=_make_reduce_compute(_reduction), schedule=reduction_schedule,
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


def arg_extreme(x: Tensor, axis: int, keepdims: int, combiner: str, last: bool, name: str) -> Tensor:
    """The int64 index of the first (``last``: the last) extreme of ``x`` along ``axis``, in two stages.

    The extreme value (``combiner`` "max" or "min"), then the lowest (highest)
    index holding it. NaN counts as the extreme, as in np.argmax/np.argmin: the
    max/min propagates it and the index stage matches NaN with NaN.
    """
    extreme = reduce_over(combiner, x.shape, (axis,), keepdims, lambda i, o: x[i], f"{name}_value")
    size = x.shape[axis]

    def index_of(index: tuple[Expr, ...], o: tuple[Expr, ...]) -> Expr:
        value, best = x[index], extreme[o]
        hit = value.eq(best)
        if is_float(x.dtype):
            hit = logical_or(hit, logical_and(_is_nan(value), _is_nan(best)))
        return select(hit, index[axis], -1 if last else size)

    return reduce_over("max" if last else "min", x.shape, (axis,), keepdims, index_of, name)


def _make_arg_compute(combiner: str):
    def compute_fn(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
        (x,) = inputs
        axis = normalize_axis(attrs["axis"], x.ndim)
        return [arg_extreme(x, axis, attrs["keepdims"], combiner, bool(attrs["select_last_index"]), "index")]

    return compute_fn


for _name, _find in {"ArgMax": np.argmax, "ArgMin": np.argmin}.items():
    define(_name, infer=_arg_infer, reference=_make_arg_reference(_find), attrs=_ARG_ATTRS, inputs=1,
           compute=_make_arg_compute("max" if _name == "ArgMax" else "min"), schedule=reduction_schedule,
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


def _make_normalized(normalize: Callable[[Expr, Expr], Expr]):
    """Compute of LogSoftmax: a max stage, a stage summing exp(x - max), and
    ``normalize(x - max, sum)`` per element."""

    def compute_fn(x: Tensor, axis: int, out: TensorType) -> Tensor:
        work = _work_dtype(x.dtype, True)
        peak = reduce_over("max", x.shape, (axis,), 1, lambda i, o: cast(work, x[i]), "peak")
        total = reduce_over("sum", x.shape, (axis,), 1, lambda i, o: call("exp", cast(work, x[i]) - peak[o]), "total")

        def element(*i: Expr) -> Expr:
            return cast(out.dtype, normalize(cast(work, x[i]) - peak[_at(i, axis)], total[_at(i, axis)]))

        return compute(out.shape, element, "softmax")

    return compute_fn


def _softmax_compute(x: Tensor, axis: int, out: TensorType) -> Tensor:
    """Softmax: the max, the exps ``exp(x - max)`` (stored: computed once), their sum, and each exp
    divided by the sum."""
    work = _work_dtype(x.dtype, True)
    peak = reduce_over("max", x.shape, (axis,), 1, lambda i, o: cast(work, x[i]), "peak")
    exps = compute(x.shape, lambda *i: call("exp", cast(work, x[i]) - peak[_at(i, axis)]), "exps")
    total = reduce_over("sum", x.shape, (axis,), 1, lambda i, o: exps[i], "total")
    return compute(out.shape, lambda *i: cast(out.dtype, exps[i] / total[_at(i, axis)]), "softmax")


def _hardmax_compute(x: Tensor, axis: int, out: TensorType) -> Tensor:
    """One-hot of the first maximum: the ArgMax stages, then a compare per element."""
    first = arg_extreme(x, axis, 1, "max", False, "argmax")
    return compute(out.shape, lambda *i: select(i[axis].eq(first[_at(i, axis)]), 1.0, const(0, out.dtype)),
                   "hardmax")


@dataclass(frozen=True)
class _Softmax:
    """A softmax-family op: its numpy function and its compute ``(x, axis, output type) -> Tensor``."""

    fn: Callable[[np.ndarray, int], np.ndarray]
    compute: Callable[[Tensor, int, TensorType], Tensor]


_SOFTMAXES: dict[str, _Softmax] = {
    # exp(x - max) / sum exp(x - max)
    "Softmax": _Softmax(_softmax, _softmax_compute),
    # (x - max) - log sum exp(x - max)
    "LogSoftmax": _Softmax(_log_softmax, _make_normalized(lambda shifted, total: shifted - call("log", total))),
    "Hardmax": _Softmax(_hardmax, _hardmax_compute),  # one-hot of the first argmax
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


def _make_softmax_compute(softmax: _Softmax):
    def compute_fn(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
        (x,), (out,) = inputs, outputs
        return [softmax.compute(x, normalize_axis(attrs["axis"], x.ndim), out)]

    return compute_fn


for _name, _softmax_op in _SOFTMAXES.items():
    define(_name, infer=_softmax_infer, reference=_make_softmax_reference(_softmax_op.fn), attrs={"axis": Int(-1)},
           compute=_make_softmax_compute(_softmax_op), schedule=reduction_schedule, inputs=1, fusion=Fusion.REDUCTION,
           doc=f"{_name} along ``axis`` (opset 13+ semantics).")


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


def _split_at(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    """``shape`` as (outer, size of ``axis``, inner): element (o, k, i) sits at ``(o * size + k) * inner + i``."""
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def _scalar(name: str, dtype: str) -> Buffer:
    """A one-element local buffer: a mutable scalar of a hand-written loop nest."""
    return Buffer(name, dtype, (1,), scope="local")


_ZERO = const(0, INDEX)


def _cumsum_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    """A sequential scan per (outer, inner) line with a scalar accumulator (float16 sums in float32).

    ``exclusive`` stores the running sum before adding the element; ``reverse``
    walks the line backwards.
    """
    (x,) = inputs
    outer, size, inner = _split_at(x.shape, normalize_axis(attrs["axis"], x.ndim))
    work = _work_dtype(x.dtype, False)
    exclusive, reverse = attrs["exclusive"], attrs["reverse"]

    def body(ins: list[Buffer], outs: list[Buffer]) -> Stmt:
        (src,), (dst,) = ins, outs
        acc = _scalar("acc", work)

        def step(o: Expr, i: Expr, k: Expr) -> Stmt:
            at = (o * size + ((size - 1) - k if reverse else k)) * inner + i
            add = Store(acc, _ZERO, Load(acc, _ZERO, work) + cast(work, Load(src, at, x.dtype)))
            write = Store(dst, at, cast(x.dtype, Load(acc, _ZERO, work)))
            return seq(write, add) if exclusive else seq(add, write)

        def line(o: Expr, i: Expr) -> Stmt:
            return seq(Store(acc, _ZERO, const(0, work)), for_range(size, lambda k: step(o, i, k), "k"))

        return Allocate(acc, for_range(outer, lambda o: for_range(inner, lambda i: line(o, i), "i"), "o"))

    return extern([(x.shape, x.dtype)], [x], body, "cumsum")


# A scan is neither a reduction nor injective: TVM classes cumsum as opaque too.
define("CumSum", infer=_cumsum_infer, reference=_cumsum_reference, compute=_cumsum_compute,
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


def _comes_before(a: Expr, b: Expr, largest: int) -> Expr:
    """Whether value ``a`` strictly precedes ``b`` in TopK's order; NaN is the largest value,
    as in the reference's argsort (equal values are ordered by index elsewhere)."""
    if largest:
        before = a > b
        nan_first = logical_and(_is_nan(a), logical_not(_is_nan(b)))
    else:
        before = a < b
        nan_first = logical_and(logical_not(_is_nan(a)), _is_nan(b))
    return logical_or(before, nan_first) if is_float(a.dtype) else before


def _topk_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    """Selection by insertion: each line's outputs hold its best ``k`` elements so far, sorted.

    Element ``j`` enters when fewer than ``k`` are held or it precedes the last
    held one; it goes after every held element it does not strictly precede
    (so equal values keep the lower index first), the later ones move down.
    O(size * k) per line at worst, O(size) when few elements enter.
    """
    (x,) = inputs
    outer, size, inner = _split_at(x.shape, normalize_axis(attrs["axis"], x.ndim))
    k, largest = attrs["k"], attrs["largest"]

    def body(ins: list[Buffer], outs: list[Buffer]) -> Stmt:
        (src,), (values, indices) = ins, outs
        place = _scalar("place", INDEX)

        def line(o: Expr, i: Expr) -> Stmt:
            def held(p: Expr) -> Expr:  # flat position of the p-th held element
                return (o * k + p) * inner + i

            def insert(j: Expr) -> Stmt:
                value = Load(src, (o * size + j) * inner + i, x.dtype)
                count = minimum(j, k)  # elements held before j arrives

                def count_ahead(p: Expr) -> Stmt:  # the held elements value does not precede stay ahead
                    stays = logical_not(_comes_before(value, Load(values, held(p), x.dtype), largest))
                    return If(p < count, If(stays, Store(place, _ZERO, Load(place, _ZERO, INDEX) + 1)))

                find = seq(Store(place, _ZERO, _ZERO), for_range(k, count_ahead, "p"))
                at = Load(place, _ZERO, INDEX)

                def move_down(r: Expr) -> Stmt:
                    p = (k - 2) - r  # from the back, so nothing is overwritten before it moves
                    return If(logical_and(p >= at, p < count), seq(
                        Store(values, held(p + 1), Load(values, held(p), x.dtype)),
                        Store(indices, held(p + 1), Load(indices, held(p), INDEX))))

                enters = select(j < k, True, _comes_before(value, Load(values, held(k - 1), x.dtype), largest))
                return If(enters, seq(find, for_range(k - 1, move_down, "r"),
                                      Store(values, held(at), value), Store(indices, held(at), j)))

            return for_range(size, insert, "j")

        if k == 0:  # nothing to select (and no last held element to compare with)
            return seq()
        return Allocate(place, for_range(outer, lambda o: for_range(inner, lambda i: line(o, i), "i"), "o"))

    return extern([(out.shape, out.dtype) for out in outputs], [x], body, "topk")


# Sorting is not a reduction the fusion pass can use: opaque, as in TVM.
define("TopK", infer=_topk_infer, reference=_topk_reference, compute=_topk_compute,
       attrs={"k": Int(), "axis": Int(-1), "largest": Int(1), "sorted": Int(1)}, inputs=1, fusion=Fusion.OPAQUE,
       doc="The k largest (or smallest) elements along ``axis`` and their int64 indices "
           "(ONNX's K input is an attribute here).")
