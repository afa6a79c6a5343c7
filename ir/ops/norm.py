"""Normalization ops: BatchNormalization (inference), InstanceNormalization,
LayerNormalization, GroupNormalization, MeanVarianceNormalization and LRN.

The statistics-based normalizations share :func:`standardize` (subtract the
mean, divide by the standard deviation over some axes) and differ only in
which axes they reduce and how scale and bias broadcast. Statistics are
computed in float32, or float64 for float64 inputs (or ``stash_type`` double),
and the result is cast back to the input dtype once, at the end.

Only the ``Y`` output of these ops exists in ember: the training outputs of
BatchNormalization and the Mean/InvStdDev outputs of LayerNormalization are
refused by the frontend.

The compute definitions mirror the references: :func:`standardized` builds
the statistics stages (sum, mean, sum of squared deviations, denominator)
over a :class:`_Grouping` (which elements of X each statistic covers), in
the same dtype and order as :func:`standardize`. Statistics over whole axes of X
go through :func:`~ember.ir.ops.reduce.reduce_over` (lane-partial sums along a
contiguous last axis), and these ops are scheduled by
:func:`~ember.ir.ops.reduce.reduction_schedule`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..loops.expr import Expr, call, cast, const
from ..loops.tensor import Tensor, compute, reduce_axis, reduce_sum
from ..types import TensorType
from .common import expect_float, normalize_axes, normalize_axis, require
from .compute import broadcast_read, padded_read
from .reduce import reduce_over, reduction_schedule
from .registry import Float, Fusion, Int, Ints, define

# ONNX TensorProto dtype codes accepted for stash_type: FLOAT and DOUBLE.
_STASH_TYPES = {1: np.dtype(np.float32), 11: np.dtype(np.float64)}


def compute_dtype(dtype: np.dtype, stash_type: int = 1) -> np.dtype:
    """The dtype statistics are computed in: the stash type, widened to float64 for float64 inputs."""
    if stash_type not in _STASH_TYPES:
        raise UnsupportedOpError(f"stash_type {stash_type} is not supported (only 1 = float and 11 = double)")
    return np.promote_types(_STASH_TYPES[stash_type], np.dtype(dtype) if dtype == np.float64 else np.float32)


def standardize(x: np.ndarray, axes: tuple[int, ...], epsilon: float) -> np.ndarray:
    """``(x - mean) / sqrt(var + epsilon)`` with mean and (biased) variance over ``axes``."""
    centered = x - x.mean(axis=axes, keepdims=True)
    variance = np.mean(np.square(centered), axis=axes, keepdims=True)
    return centered / np.sqrt(variance + epsilon)


def per_channel(v: np.ndarray, rank: int, dtype: np.dtype) -> np.ndarray:
    """A per-channel vector shaped to broadcast along axis 1 of a rank-``rank`` tensor."""
    return v.astype(dtype, copy=False).reshape((-1,) + (1,) * (rank - 2))


def _check_floats(types: list[TensorType], names: str) -> None:
    for t, name in zip(types, names.split()):
        expect_float(t, name)


def _check_channel_vectors(types: list[TensorType], names: str, channels: int) -> None:
    """Require each of ``types`` (named by ``names``) to be a vector of ``channels`` entries."""
    for t, name in zip(types, names.split()):
        require(t.shape == (channels,), f"{name} has shape {t.shape}, expected ({channels},)")


def _check_epsilon(attrs: dict) -> None:
    require(attrs["epsilon"] >= 0, f"epsilon {attrs['epsilon']} must be non-negative")


def _cast_like(y: np.ndarray, x: np.ndarray) -> list[np.ndarray]:
    return [y.astype(x.dtype, copy=False)]


# --- Compute definitions: statistics ---------------------------------------------------------------


def _acc(dtype: str, stash_type: int = 1) -> str:
    """:func:`compute_dtype` by name, for the compute definitions."""
    return compute_dtype(np.dtype(dtype), stash_type).name


@dataclass(frozen=True)
class _Grouping:
    """Which elements of X each statistic covers.

    ``shape`` is the statistics' shape and ``reduced`` the extents of the
    elements one statistic covers; ``element(stat, red)`` is the X index of
    element ``red`` of statistic ``stat``, and ``stat_of(index)`` the
    statistic an X index belongs to.
    """

    shape: tuple[int, ...]
    reduced: tuple[int, ...]
    element: Callable[[Sequence[Expr], Sequence[Expr]], tuple[Expr, ...]]
    stat_of: Callable[[Sequence[Expr]], tuple[Expr, ...]]
    axes: tuple[int, ...] | None = None  # the axes of X reduced, when statistics are over whole axes


def _over_axes(shape: tuple[int, ...], axes: Sequence[int]) -> _Grouping:
    """One statistic per position of the axes not in ``axes``, over ``axes``."""
    axes = sorted(axes)
    kept = [a for a in range(len(shape)) if a not in axes]

    def element(stat: Sequence[Expr], red: Sequence[Expr]) -> tuple[Expr, ...]:
        index: list = [None] * len(shape)
        for a, i in list(zip(kept, stat)) + list(zip(axes, red)):
            index[a] = i
        return tuple(index)

    return _Grouping(tuple(shape[a] for a in kept), tuple(shape[a] for a in axes), element,
                     lambda index: tuple(index[a] for a in kept), tuple(axes))


def _channel_groups(shape: tuple[int, ...], groups: int) -> _Grouping:
    """One statistic per (n, group of channels), over the group's channels and the spatial axes."""
    per_group = shape[1] // groups
    return _Grouping((shape[0], groups), (per_group, *shape[2:]),
                     lambda stat, red: (stat[0], stat[1] * per_group + red[0], *red[1:]),
                     lambda index: (index[0], index[1] // per_group))


def _sum_over(grouping: _Grouping, value: Callable[[tuple, tuple], Expr], name: str,
              x_shape: tuple[int, ...]) -> Tensor:
    """Per statistic ``s``, the sum of ``value(s, x_index)`` over its elements (over whole axes of X:
    :func:`~ember.ir.ops.reduce.reduce_over`, in lane-partial sums along a contiguous last axis)."""
    if grouping.axes is not None:
        return reduce_over("sum", x_shape, grouping.axes, 0, lambda index, stat: value(stat, index), name)
    axes = [reduce_axis(extent, f"r{i}") for i, extent in enumerate(grouping.reduced)]

    def element(*stat: Expr) -> Expr:
        v = value(stat, grouping.element(stat, [a.var for a in axes]))
        return reduce_sum(v, axes) if axes else v

    return compute(grouping.shape, element, name)


def standardized(x: Tensor, grouping: _Grouping, acc: str, denominator: Callable[[Expr], Expr],
                 name: str) -> Callable[[Sequence[Expr]], Expr]:
    """``(x - mean) / denominator(variance)`` at an X index, statistics over ``grouping`` in ``acc``.

    Like :func:`standardize`: the mean first, then the mean of the squared
    deviations from it; both are sums divided by the element count.
    """
    count = const(math.prod(grouping.reduced), acc)

    def value(index: Sequence[Expr]) -> Expr:
        return cast(acc, x[tuple(index)])

    total = _sum_over(grouping, lambda stat, index: value(index), f"{name}_sum", x.shape)
    mean = compute(grouping.shape, lambda *stat: total[stat] / count, f"{name}_mean")

    def squared_deviation(stat: tuple, index: tuple) -> Expr:
        deviation = value(index) - mean[stat]
        return deviation * deviation

    squares = _sum_over(grouping, squared_deviation, f"{name}_squares", x.shape)
    scale = compute(grouping.shape, lambda *stat: denominator(squares[stat] / count), f"{name}_denominator")

    def at(index: Sequence[Expr]) -> Expr:
        stat = grouping.stat_of(index)
        return (value(index) - mean[stat]) / scale[stat]

    return at


def _sqrt_plus_epsilon(epsilon: float, acc: str) -> Callable[[Expr], Expr]:
    return lambda variance: call("sqrt", variance + const(epsilon, acc))


def _per_channel_affine(y: Callable[[Sequence[Expr]], Expr], scale: Tensor, bias: Tensor, acc: str,
                        out: TensorType, name: str) -> Tensor:
    """``y(index) * scale[c] + bias[c]`` (c = axis 1) in ``acc``, cast to the output dtype."""
    return compute(out.shape, lambda *i: cast(out.dtype, y(i) * cast(acc, scale[i[1]]) + cast(acc, bias[i[1]])),
                   name)


# --- BatchNormalization -----------------------------------------------------------------------


def _batch_norm_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    if attrs["training_mode"] != 0:
        raise UnsupportedOpError("BatchNormalization with training_mode=1 is not supported (inference only)")
    _check_floats(types, "X scale B input_mean input_var")
    x = types[0]
    require(x.rank >= 2, f"X must have rank >= 2 (N, C, ...), got shape {x.shape}")
    require(types[1].dtype == types[2].dtype, f"scale and B have different dtypes {types[1].dtype}, {types[2].dtype}")
    require(types[3].dtype == types[4].dtype,
            f"input_mean and input_var have different dtypes {types[3].dtype}, {types[4].dtype}")
    _check_channel_vectors(types[1:], "scale B input_mean input_var", x.shape[1])
    _check_epsilon(attrs)
    return [x]


def _batch_norm_reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    x, scale, bias, mean, var = arrays
    acc = compute_dtype(x.dtype)
    # The affine form x * a + b is what BatchNorm folding produces, so folding is exact.
    a = scale.astype(acc) / np.sqrt(var.astype(acc) + attrs["epsilon"])
    b = bias.astype(acc) - mean.astype(acc) * a
    return _cast_like(x.astype(acc) * per_channel(a, x.ndim, acc) + per_channel(b, x.ndim, acc), x)


def _batch_norm_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    x, scale, bias, mean, var = inputs
    acc = _acc(x.dtype)
    channels = (x.shape[1],)
    epsilon = const(attrs["epsilon"], acc)
    a = compute(channels, lambda c: cast(acc, scale[c]) / call("sqrt", cast(acc, var[c]) + epsilon), "bn_scale")
    b = compute(channels, lambda c: cast(acc, bias[c]) - cast(acc, mean[c]) * a[c], "bn_shift")
    out = outputs[0]
    return [compute(out.shape, lambda *i: cast(out.dtype, cast(acc, x[i]) * a[i[1]] + b[i[1]]), "batch_norm")]


define(
    "BatchNormalization",
    infer=_batch_norm_infer,
    reference=_batch_norm_reference,
    compute=_batch_norm_compute,
    attrs={"epsilon": Float(1e-5), "momentum": Float(0.9), "training_mode": Int(0)},
    inputs=5,
    fusion=Fusion.BROADCAST,
    doc="Inference batch norm: (X - mean) / sqrt(var + epsilon) * scale + B per channel (axis 1).",
)


# --- Instance, Group and Layer normalization ----------------------------------------------------


def _instance_norm_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    _check_floats(types, "input scale B")
    x = types[0]
    require(len({t.dtype for t in types}) == 1, "input, scale and B must have the same dtype")
    require(x.rank >= 3, f"input must have rank >= 3 (N, C, spatial...), got shape {x.shape}")
    _check_channel_vectors(types[1:], "scale B", x.shape[1])
    _check_epsilon(attrs)
    return [x]


def _instance_norm_reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    x, scale, bias = arrays
    acc = compute_dtype(x.dtype)
    y = standardize(x.astype(acc), tuple(range(2, x.ndim)), attrs["epsilon"])
    return _cast_like(y * per_channel(scale, x.ndim, acc) + per_channel(bias, x.ndim, acc), x)


def _instance_norm_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    x, scale, bias = inputs
    acc = _acc(x.dtype)
    y = standardized(x, _over_axes(x.shape, range(2, x.ndim)), acc, _sqrt_plus_epsilon(attrs["epsilon"], acc),
                     "instance_norm")
    return [_per_channel_affine(y, scale, bias, acc, outputs[0], "instance_norm")]


define(
    "InstanceNormalization",
    infer=_instance_norm_infer,
    reference=_instance_norm_reference,
    compute=_instance_norm_compute,
    attrs={"epsilon": Float(1e-5)},
    inputs=3,
    fusion=Fusion.REDUCTION,
    schedule=reduction_schedule,
    doc="Normalize each (n, c) over the spatial axes, then scale and B per channel.",
)


def _group_norm_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    _check_floats(types, "X scale bias")
    x = types[0]
    require(len({t.dtype for t in types}) == 1, "X, scale and bias must have the same dtype")
    require(x.rank >= 2, f"X must have rank >= 2 (N, C, ...), got shape {x.shape}")
    groups = attrs["num_groups"]
    require(groups >= 1 and x.shape[1] % groups == 0,
            f"num_groups {groups} must be positive and divide the {x.shape[1]} channels")
    _check_channel_vectors(types[1:], "scale bias", x.shape[1])
    _check_epsilon(attrs)
    compute_dtype(np.dtype(x.dtype), attrs["stash_type"])
    return [x]


def _group_norm_reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    x, scale, bias = arrays
    acc = compute_dtype(x.dtype, attrs["stash_type"])
    n, c = x.shape[:2]
    groups = attrs["num_groups"]
    grouped = x.astype(acc).reshape(n, groups, c // groups * int(np.prod(x.shape[2:])))
    y = standardize(grouped, (2,), attrs["epsilon"]).reshape(x.shape)
    return _cast_like(y * per_channel(scale, x.ndim, acc) + per_channel(bias, x.ndim, acc), x)


def _group_norm_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    x, scale, bias = inputs
    acc = _acc(x.dtype, attrs["stash_type"])
    y = standardized(x, _channel_groups(x.shape, attrs["num_groups"]), acc,
                     _sqrt_plus_epsilon(attrs["epsilon"], acc), "group_norm")
    return [_per_channel_affine(y, scale, bias, acc, outputs[0], "group_norm")]


define(
    "GroupNormalization",
    infer=_group_norm_infer,
    reference=_group_norm_reference,
    compute=_group_norm_compute,
    attrs={"epsilon": Float(1e-5), "num_groups": Int(), "stash_type": Int(1)},
    inputs=3,
    fusion=Fusion.REDUCTION,
    schedule=reduction_schedule,
    doc="Normalize each group of num_groups channel groups (with the spatial axes), then scale and bias "
        "per channel (opset 21 semantics).",
)


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether ``shape`` broadcasts to ``target`` without changing it (numpy rules, right-aligned)."""
    return len(shape) <= len(target) and all(d in (1, t) for d, t in zip(reversed(shape), reversed(target)))


def _layer_norm_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    _check_floats(types, "X Scale B")
    x = types[0]
    require(len({t.dtype for t in types}) == 1, "X, Scale and B must have the same dtype")
    require(x.rank >= 1, "X must have rank >= 1")
    axis = normalize_axis(attrs["axis"], x.rank)
    normalized = x.shape[axis:]
    for t, name in zip(types[1:], ("Scale", "B")):
        require(_broadcasts_to(t.shape, normalized),
                f"{name} of shape {t.shape} does not broadcast to the normalized shape {normalized}")
    _check_epsilon(attrs)
    compute_dtype(np.dtype(x.dtype), attrs["stash_type"])
    return [x]


def _layer_norm_reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    x, scale = arrays[0], arrays[1]
    acc = compute_dtype(x.dtype, attrs["stash_type"])
    axis = normalize_axis(attrs["axis"], x.ndim)
    y = standardize(x.astype(acc), tuple(range(axis, x.ndim)), attrs["epsilon"]) * scale.astype(acc)
    if len(arrays) > 2 and arrays[2] is not None:
        y = y + arrays[2].astype(acc)
    return _cast_like(y, x)


def _layer_norm_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    x, scale = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    acc = _acc(x.dtype, attrs["stash_type"])
    axis = normalize_axis(attrs["axis"], x.ndim)
    y = standardized(x, _over_axes(x.shape, range(axis, x.ndim)), acc, _sqrt_plus_epsilon(attrs["epsilon"], acc),
                     "layer_norm")

    def element(*i: Expr) -> Expr:
        value = y(i) * cast(acc, broadcast_read(scale, i, x.shape))
        if bias is not None:
            value = value + cast(acc, broadcast_read(bias, i, x.shape))
        return cast(x.dtype, value)

    return [compute(outputs[0].shape, element, "layer_norm")]


define(
    "LayerNormalization",
    infer=_layer_norm_infer,
    reference=_layer_norm_reference,
    compute=_layer_norm_compute,
    attrs={"axis": Int(-1), "epsilon": Float(1e-5), "stash_type": Int(1)},
    inputs=(2, 3),
    fusion=Fusion.REDUCTION,
    schedule=reduction_schedule,
    doc="Normalize over the axes from `axis` to the last, then multiply by Scale and add B (broadcast).",
)


# --- MeanVarianceNormalization ------------------------------------------------------------------


def _mvn_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    x = types[0]
    expect_float(x, "X")
    normalize_axes(attrs["axes"], x.rank)
    return [x]


def _mvn_reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    x = arrays[0]
    acc = compute_dtype(x.dtype)
    axes = normalize_axes(attrs["axes"], x.ndim)
    centered = x.astype(acc) - x.astype(acc).mean(axis=axes, keepdims=True)
    std = np.sqrt(np.mean(np.square(centered), axis=axes, keepdims=True))
    # The ONNX function body adds its epsilon (1e-9) to the standard deviation, not the variance.
    return _cast_like(centered / (std + 1e-9), x)


def _mvn_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    x = inputs[0]
    acc = _acc(x.dtype)
    axes = normalize_axes(attrs["axes"], x.ndim)
    y = standardized(x, _over_axes(x.shape, axes), acc,
                     lambda variance: call("sqrt", variance) + const(1e-9, acc), "mvn")
    return [compute(outputs[0].shape, lambda *i: cast(x.dtype, y(i)), "mvn")]


define(
    "MeanVarianceNormalization",
    infer=_mvn_infer,
    reference=_mvn_reference,
    compute=_mvn_compute,
    attrs={"axes": Ints((0, 2, 3))},
    inputs=1,
    fusion=Fusion.REDUCTION,
    schedule=reduction_schedule,
    doc="(X - mean) / (std + 1e-9) with mean and std over `axes`.",
)


# --- LRN ----------------------------------------------------------------------------------------


def _lrn_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    x = types[0]
    expect_float(x, "X")
    require(x.rank >= 3, f"X must have rank >= 3 (N, C, spatial...), got shape {x.shape}")
    require(attrs["size"] >= 1, f"size {attrs['size']} must be positive")
    return [x]


def channel_window_sum(v: np.ndarray, before: int, after: int) -> np.ndarray:
    """``out[:, c] = sum(v[:, c - before : c + after + 1])`` with zeros beyond the channel axis."""
    padded = np.pad(v, [(0, 0), (before, after)] + [(0, 0)] * (v.ndim - 2))
    channels = v.shape[1]
    return sum(padded[:, i:i + channels] for i in range(before + after + 1))


def _lrn_reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    x = arrays[0]
    acc = compute_dtype(x.dtype)
    size = attrs["size"]
    before = (size - 1) // 2  # floor((size - 1) / 2) channels before c, ceil((size - 1) / 2) after
    square_sum = channel_window_sum(np.square(x.astype(acc)), before, size - 1 - before)
    scale = (attrs["bias"] + attrs["alpha"] / size * square_sum) ** attrs["beta"]
    return _cast_like(x.astype(acc) / scale, x)


def _lrn_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    x = inputs[0]
    acc = _acc(x.dtype)
    size = attrs["size"]
    before = (size - 1) // 2
    squares = compute(x.shape, lambda *i: cast(acc, x[i]) * cast(acc, x[i]), "lrn_square", tag="inline")
    r = reduce_axis(size, "r")
    # the window sum is a reduction of its own: its stage cannot inline into the output
    window_sum = compute(x.shape, lambda n, c, *rest: reduce_sum(
        padded_read(squares, (n, c - before + r.var, *rest), 0.0), r), "lrn_window_sum")

    def element(*i: Expr) -> Expr:
        base = const(attrs["bias"], acc) + const(attrs["alpha"] / size, acc) * window_sum[i]
        return cast(x.dtype, cast(acc, x[i]) / call("pow", base, attrs["beta"]))

    return [compute(outputs[0].shape, element, "lrn")]


define(
    "LRN",
    infer=_lrn_infer,
    reference=_lrn_reference,
    compute=_lrn_compute,
    attrs={"alpha": Float(1e-4), "beta": Float(0.75), "bias": Float(1.0), "size": Int()},
    inputs=1,
    fusion=Fusion.REDUCTION,
    doc="Local response normalization across channels: X / (bias + alpha / size * sum of squares)^beta.",
)

