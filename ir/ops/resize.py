"""Resize: nearest, n-linear and cubic interpolation of an n-D tensor (ONNX opset 19).

Interpolation is separable, so the reference resizes one axis at a time: each
resized axis gets a small table of taps (input index and weight per output
position: 1 tap for nearest, 2 for linear, 4 for cubic) and the tensor is
gathered and weighted along that axis. Coordinates are computed in float32
with the formulas of onnxruntime, whose results ember matches exactly (e.g.
which pixel ``nearest`` picks at a tie).

The tap formulas are written once over a small math interface (:class:`Math`):
the reference evaluates them on numpy arrays of output positions, the compute
definition on loop-IR expressions, into 1-D tap tables the kernel fills first.
The compiled kernel then resizes axis by axis in the reference's order and
precision, so it matches it bit for bit.

Two onnxruntime behaviours the ONNX text does not spell out are kept on
purpose: an axis whose scale is exactly 1 is copied untouched (no coordinate
transform), and when the output shape equals the input shape the input is
returned as is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..loops import expr as E
from ..loops.expr import Var
from ..loops.tensor import Tensor, compute
from ..loops.visit import substitute
from ..types import FLOAT_DTYPES
from .common import normalize_axes, require
from .registry import Float, Floats, Fusion, Int, Ints, Str, define
from .shape import injective_schedule, replaced

F32 = np.float32


# --- the math the tap formulas use: numpy arrays or loop-IR expressions ---

@dataclass(frozen=True)
class Math:
    """Element-wise functions the formulas below call, for one kind of operand.

    Operators (+ - * / < >) work on both kinds directly; numpy scalars keep
    the formulas' constants in float32 exactly as the reference computes them.
    """

    floor: Callable
    ceil: Callable
    abs: Callable
    where: Callable
    minimum: Callable
    maximum: Callable
    logical_and: Callable
    logical_or: Callable
    equal: Callable
    cast: Callable  # cast(x, dtype name)
    full: Callable  # full(x, value): value (float32) wherever x is

    def clip(self, x, lo, hi):
        return self.minimum(self.maximum(x, lo), hi)


NUMPY = Math(floor=np.floor, ceil=np.ceil, abs=np.abs, where=np.where, minimum=np.minimum, maximum=np.maximum,
             logical_and=np.logical_and, logical_or=np.logical_or, equal=np.equal,
             cast=lambda x, dtype: x.astype(dtype), full=lambda x, value: np.full_like(x, value))
EXPR = Math(floor=lambda x: E.call("floor", x), ceil=lambda x: E.call("ceil", x), abs=lambda x: E.call("fabs", x),
            where=E.select, minimum=E.minimum, maximum=E.maximum, logical_and=E.logical_and,
            logical_or=E.logical_or, equal=lambda a, b: a.eq(b), cast=lambda x, dtype: E.cast(dtype, x),
            full=lambda x, value: E.const(value, x.dtype))


# --- coordinate transformations: output index -> input coordinate (float32) ---
# Each takes (M, x, scale, out_len, in_len, roi_start, roi_end) with x the
# float32 output positions and the rest float32 scalars.

def _half_pixel(M, x, s, out, inp, r0, r1):
    return (x + F32(0.5)) / s - F32(0.5)


def _half_pixel_symmetric(M, x, s, out, inp, r0, r1):
    adjustment = out / (s * inp)
    offset = inp / F32(2) * (F32(1) - adjustment)
    # onnxruntime evaluates this last step in double.
    return M.cast(np.float64(offset) + (M.cast(x, "float64") + 0.5) / np.float64(s) - 0.5, "float32")


def _pytorch_half_pixel(M, x, s, out, inp, r0, r1):
    return _half_pixel(M, x, s, out, inp, r0, r1) if out > 1 else M.full(x, 0.0)


def _align_corners(M, x, s, out, inp, r0, r1):
    return x * (inp - F32(1)) / (out - F32(1)) if out > 1 else M.full(x, 0.0)


def _asymmetric(M, x, s, out, inp, r0, r1):
    return x / s


def _tf_half_pixel_for_nn(M, x, s, out, inp, r0, r1):
    return (x + F32(0.5)) / s


def _tf_crop_and_resize(M, x, s, out, inp, r0, r1):
    if out > 1:
        return r0 * (inp - F32(1)) + x * (r1 - r0) * (inp - F32(1)) / (out - F32(1))
    return M.full(x, F32(0.5 * (float(r0) + float(r1)) * (float(inp) - 1)))


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


def _round_half_away(M, x):
    """C's ``std::round``: halves round away from zero (computed exactly in float64)."""
    x = M.cast(x, "float64")
    return M.where(x < 0, -M.floor(-x + 0.5), M.floor(x + 0.5))


def _near_tie(M, x):
    x = M.cast(x, "float64")
    return M.abs(x - M.floor(x) - 0.5) < TIE_TOLERANCE


def _round_prefer_floor(M, x):
    return M.where(_near_tie(M, x), M.floor(M.cast(x, "float64")), _round_half_away(M, x))


def _round_prefer_ceil(M, x):
    return M.where(_near_tie(M, x), M.ceil(M.cast(x, "float64")), _round_half_away(M, x))


NEAREST_MODES = {
    "round_prefer_floor": _round_prefer_floor,
    "round_prefer_ceil": _round_prefer_ceil,
    "floor": lambda M, x: M.floor(x),
    "ceil": lambda M, x: M.ceil(x),
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
        outs = [int(_round_half_away(NUMPY, np.array(common * F32(in_shape[i])))) for i in axes]
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
# Formulas over the Math ``M`` (numpy arrays or loop-IR expressions).

def _linear_taps(M, coord, in_len):
    """Two taps per position, as onnxruntime's bilinear kernel computes them."""
    c = M.clip(coord, F32(0), F32(in_len - 1))
    i1 = M.minimum(M.cast(c, "int64"), in_len - 1)
    i2 = M.minimum(i1 + 1, in_len - 1)
    d1, d2 = M.abs(c - M.cast(i1, "float32")), M.abs(c - M.cast(i2, "float32"))
    same = M.equal(i1, i2)
    w1, w2 = M.where(same, F32(0.5), d2), M.where(same, F32(0.5), d1)
    return [i1, i2], [w1, w2]


def _cubic_coeffs(s, a):
    """Keys cubic convolution weights of the 4 taps at floor(x)-1 .. floor(x)+2, s = x - floor(x)."""
    a, one, two = F32(a), F32(1), F32(2)

    def far(t):  # |t| in [1, 2)
        return ((a * t - F32(5) * a) * t + F32(8) * a) * t - F32(4) * a

    def near(t):  # |t| in [0, 1)
        return ((a + two) * t - (a + F32(3))) * t * t + one

    return [far(s + one), near(s), near(one - s), far(two - s)]


def _cubic_taps(M, coord, in_len, a, exclude_outside):
    base = M.cast(M.floor(coord), "int64")
    weights = _cubic_coeffs(coord - M.floor(coord), a)
    raw = [base + k for k in (-1, 0, 1, 2)]
    if exclude_outside:
        # Taps outside the input get weight 0; the rest are renormalized to sum 1.
        weights = [M.where(M.logical_and(i >= 0, i < in_len), w, F32(0)) for i, w in zip(raw, weights)]
        total = weights[0] + weights[1] + weights[2] + weights[3]
        weights = [w / total for w in weights]
    return [M.clip(i, 0, in_len - 1) for i in raw], weights


def _coordinates(M: Math, x, r: AxisResize, attrs):
    """The float32 input coordinates of one axis at the float32 output positions ``x``."""
    transform = COORDINATE_MODES[attrs["coordinate_transformation_mode"]]
    return M.cast(transform(M, x, r.scale, F32(r.out_len), F32(r.in_len), *r.roi), "float32")


def _axis_taps(M: Math, coord, r: AxisResize, attrs):
    """(indices, weights, outside) of one axis at the float32 input coordinates ``coord``.

    ``weights`` is None for nearest; ``outside`` marks positions whose
    coordinate falls outside the input (tf_crop_and_resize extrapolates there).
    """
    outside = M.logical_or(coord < 0, coord > F32(r.in_len - 1))
    if attrs["mode"] == "nearest":
        idx = M.cast(NEAREST_MODES[attrs["nearest_mode"]](M, coord), "int64")
        return [M.clip(idx, 0, r.in_len - 1)], None, outside
    if attrs["mode"] == "linear":
        return (*_linear_taps(M, coord, r.in_len), outside)
    return (*_cubic_taps(M, coord, r.in_len, attrs["cubic_coeff_a"], attrs["exclude_outside"]), outside)


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
        coord = _coordinates(NUMPY, np.arange(r.out_len, dtype=F32), r, attrs)
        indices, weights, out_of_range = _axis_taps(NUMPY, coord, r, attrs)
        y = _apply_taps(y, r.axis, indices, weights)
        if extrapolate:
            shape = [1] * x.ndim
            shape[r.axis] = -1
            outside = outside | out_of_range.reshape(shape)
    y = y.astype(x.dtype, copy=False)
    if extrapolate:
        y = np.where(outside, np.asarray(attrs["extrapolation_value"]).astype(x.dtype), y)
    return [np.ascontiguousarray(y)]


def _tap_tables(r: AxisResize, attrs) -> tuple[list[Tensor], list[Tensor] | None, Tensor]:
    """The taps of one axis as 1-D stages over its output positions: index tables (int64), weight
    tables (float32; None for nearest) and the outside mask (bool), from the reference's formulas.

    The coordinates are a table of their own, which the others read: the tap
    formulas use each coordinate many times.
    """
    coord = compute((r.out_len,), lambda k: _coordinates(EXPR, E.cast("float32", k), r, attrs), f"coord{r.axis}")
    o = Var("o")
    indices, weights, outside = _axis_taps(EXPR, coord[o], r, attrs)

    def table(e, name: str) -> Tensor:
        return compute((r.out_len,), lambda k: substitute(e, {o: k}), f"{name}{r.axis}")

    return ([table(e, f"index{t}_") for t, e in enumerate(indices)],
            None if weights is None else [table(e, f"weight{t}_") for t, e in enumerate(weights)],
            table(outside, "outside"))


def _resize_axis(y: Tensor, r: AxisResize, index: list[Tensor], weight: list[Tensor], work: str,
                 finish: Callable | None) -> Tensor:
    """``y`` resized along ``r.axis``: the weighted sum of its taps in ``work`` precision, added in
    the reference's order; ``finish(indices, value)`` makes the output element of the last axis."""
    shape = list(y.shape)
    shape[r.axis] = r.out_len

    def element(*i):
        at = i[r.axis]
        total = None
        for idx, w in zip(index, weight):
            term = E.cast(work, y[replaced(i, r.axis, idx[at])]) * E.cast(work, w[at])
            total = term if total is None else total + term
        return total if finish is None else finish(i, total)

    return compute(tuple(shape), element, f"resize{r.axis}")


def _resize_compute(inputs, attrs, outputs):
    """Tap tables per resized axis, then one gather (nearest) or one interpolation stage per
    resized axis in the reference's order and precision; the last stage casts and extrapolates."""
    (x,), (out,) = inputs, outputs
    dtype = x.dtype
    out_shape, plan = resize_plan(x.shape, attrs)
    if out_shape == x.shape or 0 in out_shape:
        return [compute(out.shape, lambda *i: x[i], "resize")]
    plan = [r for r in plan if r.scale != F32(1)]  # copied untouched, as in the reference
    tables = [_tap_tables(r, attrs) for r in plan]
    extrapolate = attrs["coordinate_transformation_mode"] == "tf_crop_and_resize"
    fill = np.asarray(attrs["extrapolation_value"]).astype(dtype).item()

    def finish(i, value):
        """``value`` in the output dtype, or the extrapolation value where any axis is outside."""
        value = E.cast(dtype, value)
        if not extrapolate:
            return value
        outside = E.logical_or(*[mask[i[r.axis]] for r, (_, _, mask) in zip(plan, tables)])
        return E.guarded_select(outside, E.const(fill, dtype), value)

    if attrs["mode"] == "nearest":
        def gather(*i):
            source = list(i)
            for r, (index, _, _) in zip(plan, tables):
                source[r.axis] = index[0][i[r.axis]]
            return finish(i, x[tuple(source)])

        return [compute(out.shape, gather, "resize")]

    work = np.promote_types(dtype, F32).name  # interpolate in at least float32, as the reference
    y = x
    for k, (r, (index, weight, _)) in enumerate(zip(plan, tables)):
        y = _resize_axis(y, r, index, weight, work, finish if k == len(plan) - 1 else None)
    return [y]


define(
    "Resize", infer=_resize_infer, reference=_resize_ref, fusion=Fusion.INJECTIVE,
    compute=_resize_compute, schedule=injective_schedule,
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
