"""Resize: nearest, n-linear and cubic interpolation of an n-D tensor (ONNX opset 19).

Interpolation is separable, so the reference resizes one axis at a time: each
resized axis gets a small table of taps (input index and weight per output
position: 1 tap for nearest, 2 for linear, 4 for cubic) and the tensor is
gathered and weighted along that axis. Coordinates are computed in float32
with the formulas of onnxruntime, whose results ember matches exactly (e.g.
which pixel ``nearest`` picks at a tie).

Two onnxruntime behaviours the ONNX text does not spell out are kept on
purpose: an axis whose scale is exactly 1 is copied untouched (no coordinate
transform), and when the output shape equals the input shape the input is
returned as is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..types import FLOAT_DTYPES
from .common import normalize_axes, require
from .registry import Float, Floats, Fusion, Int, Ints, Str, define

F32 = np.float32


# --- coordinate transformations: output index -> input coordinate (float32) ---
# Each takes (x, scale, out_len, in_len, roi_start, roi_end) with x a float32
# array of output indices and the rest float32 scalars.

def _half_pixel(x, s, out, inp, r0, r1):
    return (x + F32(0.5)) / s - F32(0.5)


def _half_pixel_symmetric(x, s, out, inp, r0, r1):
    adjustment = out / (s * inp)
    offset = inp / F32(2) * (F32(1) - adjustment)
    # onnxruntime evaluates this last step in double.
    return (np.float64(offset) + (x.astype(np.float64) + 0.5) / np.float64(s) - 0.5).astype(F32)


def _pytorch_half_pixel(x, s, out, inp, r0, r1):
    return _half_pixel(x, s, out, inp, r0, r1) if out > 1 else np.zeros_like(x)


def _align_corners(x, s, out, inp, r0, r1):
    return x * (inp - F32(1)) / (out - F32(1)) if out > 1 else np.zeros_like(x)


def _asymmetric(x, s, out, inp, r0, r1):
    return x / s


def _tf_half_pixel_for_nn(x, s, out, inp, r0, r1):
    return (x + F32(0.5)) / s


def _tf_crop_and_resize(x, s, out, inp, r0, r1):
    if out > 1:
        return r0 * (inp - F32(1)) + x * (r1 - r0) * (inp - F32(1)) / (out - F32(1))
    return np.full_like(x, F32(0.5 * (float(r0) + float(r1)) * (float(inp) - 1)))


COORDINATE_MODES = {
    "half_pixel": _half_pixel,
    "half_pixel_symmetric": _half_pixel_symmetric,
    "pytorch_half_pixel": _pytorch_half_pixel,
    "align_corners": _align_corners,
    "asymmetric": _asymmetric,
    "tf_half_pixel_for_nn": _tf_half_pixel_for_nn,  # removed in opset 13; kept for older models
    "tf_crop_and_resize": _tf_crop_and_resize,
}


# --- nearest rounding: input coordinate (float32) -> integer index ---
# onnxruntime treats a coordinate within 1e-6 of k + 0.5 as the tie k + 0.5
# (measured: 0.5 +- 9.5e-7 is a tie, 0.5 +- 1.01e-6 is not, at any magnitude),
# so float32 noise in the coordinate does not flip which pixel a tie picks.
TIE_TOLERANCE = 1e-6


def _round_half_away(x):
    """C's ``std::round``: halves round away from zero (computed exactly in float64)."""
    x = x.astype(np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _near_tie(x):
    x = x.astype(np.float64)
    return np.abs(x - np.floor(x) - 0.5) < TIE_TOLERANCE


def _round_prefer_floor(x):
    return np.where(_near_tie(x), np.floor(x.astype(np.float64)), _round_half_away(x))


def _round_prefer_ceil(x):
    return np.where(_near_tie(x), np.ceil(x.astype(np.float64)), _round_half_away(x))


NEAREST_MODES = {
    "round_prefer_floor": _round_prefer_floor,
    "round_prefer_ceil": _round_prefer_ceil,
    "floor": np.floor,
    "ceil": np.ceil,
}

MODES = ("nearest", "linear", "cubic")
ASPECT_POLICIES = ("stretch", "not_larger", "not_smaller")


# --- the resize plan: output shape and per-axis parameters ---

@dataclass(frozen=True)
class AxisResize:
    """How one axis is resized: lengths, float32 scale and region of interest."""

    axis: int
    in_len: int
    out_len: int
    scale: float
    roi: tuple[float, float]


def _check_modes(attrs) -> None:
    require(attrs["mode"] in MODES, f"mode {attrs['mode']!r} must be one of {', '.join(MODES)}")
    ctm = attrs["coordinate_transformation_mode"]
    require(ctm in COORDINATE_MODES, f"coordinate_transformation_mode {ctm!r} is not an ONNX mode")
    nm = attrs["nearest_mode"]
    require(nm in NEAREST_MODES, f"nearest_mode {nm!r} must be one of {', '.join(NEAREST_MODES)}")
    policy = attrs["keep_aspect_ratio_policy"]
    require(policy in ASPECT_POLICIES, f"keep_aspect_ratio_policy {policy!r} must be one of "
            f"{', '.join(ASPECT_POLICIES)}")
    if attrs["antialias"]:
        raise UnsupportedOpError("antialias=1 is not supported")
    require(not attrs["exclude_outside"] or attrs["mode"] == "cubic", "exclude_outside=1 needs mode cubic")


def _sizes_to_scales(in_shape, axes, sizes, policy) -> tuple[list[int], list[np.float32]]:
    """Output lengths and float32 scales on ``axes`` for the ``sizes`` attribute."""
    outs = list(sizes)
    for i, n in zip(axes, outs):
        require(in_shape[i] > 0 or n == 0, f"cannot resize an empty axis {i} to {n}")
    scales = [F32(n) / F32(in_shape[i]) if in_shape[i] else F32(1) for i, n in zip(axes, outs)]
    if policy != "stretch":
        # One common scale keeps the aspect ratio; the sizes are recomputed from it.
        common = min(scales) if policy == "not_larger" else max(scales)
        scales = [common] * len(axes)
        outs = [int(_round_half_away(np.array(common * F32(in_shape[i])))) for i in axes]
    return outs, scales


def resize_plan(in_shape: tuple[int, ...], attrs) -> tuple[tuple[int, ...], list[AxisResize]]:
    """The output shape and one :class:`AxisResize` per resized axis, validating ``attrs``."""
    _check_modes(attrs)
    rank = len(in_shape)
    require(rank >= 1, "cannot resize a scalar")
    axes = normalize_axes(attrs["axes"], rank) if attrs["axes"] is not None else tuple(range(rank))
    scales, sizes = attrs["scales"], attrs["sizes"]
    require((scales is None) != (sizes is None), "give exactly one of scales and sizes")
    if scales is not None:
        require(len(scales) == len(axes), f"scales {scales} need one entry per axis ({len(axes)})")
        require(all(s > 0 for s in scales), f"scales {scales} must be positive")
        f32_scales = [F32(s) for s in scales]
        # float32 product truncated, as onnxruntime computes it.
        outs = [int(s * F32(in_shape[i])) for s, i in zip(f32_scales, axes)]
    else:
        require(len(sizes) == len(axes), f"sizes {sizes} need one entry per axis ({len(axes)})")
        require(all(n >= 0 for n in sizes), f"sizes {sizes} must be non-negative")
        outs, f32_scales = _sizes_to_scales(in_shape, axes, sizes, attrs["keep_aspect_ratio_policy"])
    roi = attrs["roi"]
    if attrs["coordinate_transformation_mode"] == "tf_crop_and_resize" and roi is not None:
        require(len(roi) == 2 * len(axes), f"roi {roi} needs 2 x {len(axes)} entries")
        rois = [(F32(roi[k]), F32(roi[k + len(axes)])) for k in range(len(axes))]
    else:
        rois = [(F32(0), F32(1))] * len(axes)
    out_shape = list(in_shape)
    plan = []
    for axis, out, scale, r in zip(axes, outs, f32_scales, rois):
        out_shape[axis] = out
        plan.append(AxisResize(axis, in_shape[axis], out, scale, r))
    return tuple(out_shape), plan


# --- taps: which input elements each output position reads, with what weight ---

def _linear_taps(coord, in_len):
    """Two taps per position, as onnxruntime's bilinear kernel computes them."""
    c = np.clip(coord, F32(0), F32(in_len - 1))
    i1 = np.minimum(c.astype(np.int64), in_len - 1)
    i2 = np.minimum(i1 + 1, in_len - 1)
    d1, d2 = np.abs(c - i1.astype(F32)), np.abs(c - i2.astype(F32))
    same = i1 == i2
    w1, w2 = np.where(same, F32(0.5), d2), np.where(same, F32(0.5), d1)
    return [i1, i2], [w1, w2]


def _cubic_coeffs(s, a):
    """Keys cubic convolution weights of the 4 taps at floor(x)-1 .. floor(x)+2, s = x - floor(x)."""
    a, one, two = F32(a), F32(1), F32(2)

    def far(t):  # |t| in [1, 2)
        return ((a * t - F32(5) * a) * t + F32(8) * a) * t - F32(4) * a

    def near(t):  # |t| in [0, 1)
        return ((a + two) * t - (a + F32(3))) * t * t + one

    return [far(s + one), near(s), near(one - s), far(two - s)]


def _cubic_taps(coord, in_len, a, exclude_outside):
    base = np.floor(coord).astype(np.int64)
    weights = _cubic_coeffs(coord - np.floor(coord), a)
    raw = [base + k for k in (-1, 0, 1, 2)]
    if exclude_outside:
        # Taps outside the input get weight 0; the rest are renormalized to sum 1.
        weights = [np.where((i >= 0) & (i < in_len), w, F32(0)) for i, w in zip(raw, weights)]
        total = sum(weights)
        weights = [w / total for w in weights]
    return [np.clip(i, 0, in_len - 1) for i in raw], weights


def _axis_taps(r: AxisResize, attrs):
    """(indices, weights, outside) for one axis; ``outside`` marks positions to extrapolate."""
    x = np.arange(r.out_len, dtype=F32)
    transform = COORDINATE_MODES[attrs["coordinate_transformation_mode"]]
    coord = transform(x, r.scale, F32(r.out_len), F32(r.in_len), *r.roi).astype(F32)
    outside = (coord < 0) | (coord > F32(r.in_len - 1))
    if attrs["mode"] == "nearest":
        idx = NEAREST_MODES[attrs["nearest_mode"]](coord).astype(np.int64)
        return [np.clip(idx, 0, r.in_len - 1)], None, outside
    if attrs["mode"] == "linear":
        return (*_linear_taps(coord, r.in_len), outside)
    return (*_cubic_taps(coord, r.in_len, attrs["cubic_coeff_a"], attrs["exclude_outside"]), outside)


def _apply_taps(x: np.ndarray, axis: int, indices, weights) -> np.ndarray:
    """Gather ``x`` along ``axis`` at each tap and sum with the weights (plain gather if unweighted)."""
    if weights is None:
        return np.take(x, indices[0], axis=axis)
    shape = [1] * x.ndim
    shape[axis] = -1
    out = None
    for idx, w in zip(indices, weights):
        term = np.take(x, idx, axis=axis) * w.astype(x.dtype).reshape(shape)
        out = term if out is None else out + term
    return out


# --- the op ---

def _resize_infer(types, attrs):
    (x,) = types
    out_shape, _ = resize_plan(x.shape, attrs)
    if attrs["mode"] != "nearest" and x.dtype not in FLOAT_DTYPES:
        raise UnsupportedOpError(f"mode {attrs['mode']} on {x.dtype} tensors is not supported")
    return [x.with_shape(out_shape)]


def _resize_ref(arrays, attrs):
    (x,) = arrays
    out_shape, plan = resize_plan(x.shape, attrs)
    if out_shape == x.shape:
        return [x.copy()]
    if any(d == 0 for d in out_shape):
        return [np.zeros(out_shape, x.dtype)]
    extrapolate = attrs["coordinate_transformation_mode"] == "tf_crop_and_resize"
    # Interpolate in at least float32 (float16 inputs would lose precision between axes).
    y = x.astype(np.promote_types(x.dtype, F32)) if attrs["mode"] != "nearest" else x
    outside = np.zeros(out_shape, dtype=bool)
    for r in plan:
        if r.scale == F32(1):
            continue  # onnxruntime copies an axis of scale 1 untouched
        indices, weights, out_of_range = _axis_taps(r, attrs)
        y = _apply_taps(y, r.axis, indices, weights)
        if extrapolate:
            shape = [1] * x.ndim
            shape[r.axis] = -1
            outside = outside | out_of_range.reshape(shape)
    y = y.astype(x.dtype, copy=False)
    if extrapolate:
        y = np.where(outside, np.asarray(attrs["extrapolation_value"]).astype(x.dtype), y)
    return [np.ascontiguousarray(y)]


define(
    "Resize", infer=_resize_infer, reference=_resize_ref, fusion=Fusion.INJECTIVE,
    attrs={
        "roi": Floats(None),
        "scales": Floats(None),
        "sizes": Ints(None),
        "mode": Str("nearest"),
        "coordinate_transformation_mode": Str("half_pixel"),
        "nearest_mode": Str("round_prefer_floor"),
        "cubic_coeff_a": Float(-0.75),
        "exclude_outside": Int(0),
        "extrapolation_value": Float(0.0),
        "antialias": Int(0),
        "axes": Ints(None),
        "keep_aspect_ratio_policy": Str("stretch"),
    },
    doc="Resize by `scales` or to `sizes` on `axes` with nearest, n-linear or cubic interpolation.",
)
