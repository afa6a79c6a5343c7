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
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..types import TensorType
from .common import expect_float, normalize_axis, normalize_axes, require
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


define(
    "BatchNormalization",
    infer=_batch_norm_infer,
    reference=_batch_norm_reference,
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


define(
    "InstanceNormalization",
    infer=_instance_norm_infer,
    reference=_instance_norm_reference,
    attrs={"epsilon": Float(1e-5)},
    inputs=3,
    fusion=Fusion.REDUCTION,
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


define(
    "GroupNormalization",
    infer=_group_norm_infer,
    reference=_group_norm_reference,
    attrs={"epsilon": Float(1e-5), "num_groups": Int(), "stash_type": Int(1)},
    inputs=3,
    fusion=Fusion.REDUCTION,
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


define(
    "LayerNormalization",
    infer=_layer_norm_infer,
    reference=_layer_norm_reference,
    attrs={"axis": Int(-1), "epsilon": Float(1e-5), "stash_type": Int(1)},
    inputs=(2, 3),
    fusion=Fusion.REDUCTION,
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


define(
    "MeanVarianceNormalization",
    infer=_mvn_infer,
    reference=_mvn_reference,
    attrs={"axes": Ints((0, 2, 3))},
    inputs=1,
    fusion=Fusion.REDUCTION,
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


define(
    "LRN",
    infer=_lrn_infer,
    reference=_lrn_reference,
    attrs={"alpha": Float(1e-4), "beta": Float(0.75), "bias": Float(1.0), "size": Int()},
    inputs=1,
    fusion=Fusion.REDUCTION,
    doc="Local response normalization across channels: X / (bias + alpha / size * sum of squares)^beta.",
)

