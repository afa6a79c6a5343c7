"""Convolution ops: Conv and ConvTranspose (1-D, 2-D and 3-D, grouped, dilated).

Both references loop over kernel positions; each position is one grouped
matrix product of a strided view (:mod:`.window`) with the weights at that
position, accumulated in float64 (see :func:`accumulator_dtype`). Depthwise
convolutions (one input channel per group) use
a broadcast multiply instead of tiny matrix products.

ConvTranspose is the adjoint of Conv: each kernel position scatters
``W[:, :, position]^T @ X`` into a strided view of the full (uncropped) output,
which is then cropped by the pads.

The compute definitions (native code) read a staged copy of the input
(:class:`.window.Staging`: padded, split by stride phase) and accumulate into
a *wide* output, one row of all output positions per output channel, that a
last stage crops to the output shape while adding the bias. ConvTranspose is
computed as the convolution of its zero-upsampled input with the flipped
kernel (stride 1, dilations kept), which is the same staging with
``upsample`` = the strides.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from ..loops.expr import Expr, cast
from ..loops.schedule import Schedule
from ..loops.tensor import Tensor, compute, reduce_axis, reduce_sum
from ..types import TensorType
from .common import expect_float, require, same_dtype
from .registry import Fusion, Int, Ints, Str, define
from .window import (
    WIDE,
    Staging,
    Window,
    check_auto_pad,
    explicit_pads,
    pad_input,
    plan_staging,
    resolve_window,
    schedule_windowed,
    spatial_ints,
    split_same_padding,
    stage_input,
    strides_and_dilations,
    tap_slices,
    taps,
)

_CONV_ATTRS = {
    "auto_pad": Str("NOTSET"),
    "dilations": Ints(None),
    "group": Int(1),
    "kernel_shape": Ints(None),
    "pads": Ints(None),
    "strides": Ints(None),
}


def accumulator_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype the references accumulate in: float64.

    Accumulating in float64 makes the reference more exact than any float32
    kernel it checks, and makes equal output channels bit-identical whatever
    order the matrix product sums in (models with constant weights rely on it).
    """
    return np.dtype(np.float64)


def grouped_matmul(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``out[n, g] = w[g] @ x[n, g]`` for ``w`` of shape (G, Mg, Cg) and ``x`` of shape (N, G, Cg, P)."""
    if w.shape[2] == 1:
        # Depthwise: a (Mg x 1) @ (1 x P) product is an outer product; broadcasting beats tiny GEMMs.
        return w * x
    return np.matmul(w, x)


def _check_operands(types: list[TensorType], attrs: dict) -> tuple[int, ...]:
    """Checks shared by Conv and ConvTranspose; returns the kernel shape (W's spatial dims)."""
    x, w = types[0], types[1]
    for t, what in zip(types, ("X", "W", "B")):
        expect_float(t, what)
    same_dtype(types)
    require(x.rank >= 3, f"X must have rank >= 3 (N, C, spatial...), got shape {x.shape}")
    require(w.rank == x.rank, f"W has rank {w.rank}, expected {x.rank} like X")
    group = attrs["group"]
    require(group >= 1, f"group {group} must be positive")
    kernel = w.shape[2:]
    if attrs["kernel_shape"] is not None:
        require(tuple(attrs["kernel_shape"]) == kernel,
                f"kernel_shape {attrs['kernel_shape']} does not match W's spatial shape {kernel}")
    check_auto_pad(attrs["auto_pad"])
    return kernel


def _check_bias(types: list[TensorType], out_channels: int) -> None:
    if len(types) > 2:
        require(types[2].shape == (out_channels,), f"B has shape {types[2].shape}, expected ({out_channels},)")


def _types_of(arrays: list[np.ndarray]) -> list[TensorType]:
    """The types of the given arrays (omitted optional inputs, None, are left out)."""
    return [TensorType.of(a) for a in arrays if a is not None]


def _add_bias(out: np.ndarray, arrays: list[np.ndarray]) -> np.ndarray:
    """``out`` plus the optional bias input (arrays[2]) along the channel axis."""
    if len(arrays) > 2 and arrays[2] is not None:
        out = out + arrays[2].astype(out.dtype).reshape((-1,) + (1,) * (out.ndim - 2))
    return out


def _tensor_types(tensors: list[Tensor]) -> list[TensorType]:
    return [TensorType(t.dtype, t.shape) for t in tensors]


def _compute_dtype(dtype: str) -> str:
    """The dtype native convolutions accumulate in: the input's, float32 for float16."""
    return "float32" if dtype == "float16" else dtype


def convolve(x: Tensor, bias: Tensor | None, staging: Staging, group: int, out_channels: int,
             weight: Callable[[Expr, Expr, list[Expr]], Expr], out: TensorType, name: str) -> Tensor:
    """The grouped convolution of ``x`` through ``staging``, plus ``bias``, as compute stages.

    ``weight(m, rc, taps)`` is the weight of output channel ``m``, input
    channel ``rc`` of its group and kernel position ``taps``.
    ::

        staged[n, c, phase, f]  = padded, phase-split x            (window.stage_input)
        wide[n, m, q]          = sum over rc, taps of staged[n, group(m) * Cg + rc, phase(taps), q + offset(taps)]
                                                  * weight(m, rc, taps)
        out[n, m, o...]        = wide[n, m, position(o)] + bias[m]
    """
    acc = _compute_dtype(x.dtype)
    batch, channels = x.shape[:2]
    in_per_group, out_per_group = channels // group, out_channels // group
    staged = stage_input(x, staging, 0, acc, lambda v: cast(acc, v), f"{name}_staged")
    rc = reduce_axis(in_per_group, "rc")
    kernel = [reduce_axis(k, f"k{axis}") for axis, k in enumerate(staging.window.kernel)]

    def element(n: Expr, m: Expr, q: Expr) -> Expr:
        c = rc.var if group == 1 else m // out_per_group * in_per_group + rc.var
        phase, offset = staging.tap([k.var for k in kernel])
        w = cast(acc, weight(m, rc.var, [k.var for k in kernel]))
        return reduce_sum(staged[n, c, phase, q + offset] * w, [rc, *kernel])

    wide = compute((batch, out_channels, staging.wide), element, f"{name}_wide", tag=WIDE)

    def crop(n: Expr, m: Expr, *o: Expr) -> Expr:
        value = wide[n, m, staging.position(o)]
        if bias is not None:
            value = value + cast(acc, bias[m])
        return cast(out.dtype, value)

    return compute(out.shape, crop, name)


def _schedule_conv(outputs: list[Tensor], target, knobs=None) -> Schedule:
    """The windowed ops' schedule with register tiles (see :func:`.window.schedule_windowed`)."""
    return schedule_windowed(outputs, target, knobs, register_block=True)


# --- Conv ---------------------------------------------------------------------------------------


def _conv_window(types: list[TensorType], attrs: dict) -> Window:
    """Validate a Conv node and resolve its window."""
    kernel = _check_operands(types, attrs)
    x, w = types[0], types[1]
    group = attrs["group"]
    require(x.shape[1] == w.shape[1] * group,
            f"X has {x.shape[1]} channels, but W expects {w.shape[1]} per group x {group} groups")
    require(w.shape[0] % group == 0, f"W has {w.shape[0]} output channels, not divisible by group {group}")
    _check_bias(types, w.shape[0])
    return resolve_window(x.shape[2:], kernel, attrs)


def _conv_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    window = _conv_window(types, attrs)
    x, w = types[0], types[1]
    return [x.with_shape((x.shape[0], w.shape[0]) + window.out)]


def _conv_reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    x, w = arrays[0], arrays[1]
    window = _conv_window(_types_of(arrays), attrs)
    acc = accumulator_dtype(x.dtype)
    n, c = x.shape[:2]
    m, group = w.shape[0], attrs["group"]
    padded = pad_input(x.astype(acc, copy=False), window)
    padded = padded.reshape((n, group, c // group) + padded.shape[2:])
    weights = w.astype(acc, copy=False).reshape((group, m // group, c // group) + window.kernel)
    positions = math.prod(window.out)
    out = np.zeros((n, group, m // group, positions), acc)
    for offset, view in taps(padded, window):
        out += grouped_matmul(weights[(Ellipsis, *offset)], view.reshape(n, group, c // group, positions))
    out = _add_bias(out.reshape((n, m) + window.out), arrays)
    return [out.astype(x.dtype, copy=False)]


def _conv_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    x, w = inputs[0], inputs[1]
    window = _conv_window(_tensor_types(inputs), attrs)
    bias = inputs[2] if len(inputs) > 2 else None
    return [convolve(x, bias, plan_staging(x.shape[2:], window), attrs["group"], w.shape[0],
                     lambda m, rc, kernel: w[(m, rc, *kernel)], outputs[0], "conv")]


define(
    "Conv",
    infer=_conv_infer,
    reference=_conv_reference,
    compute=_conv_compute,
    schedule=_schedule_conv,
    attrs=_CONV_ATTRS,
    inputs=(2, 3),
    fusion=Fusion.OUT_FUSABLE,
    doc="N-d grouped, strided, dilated, padded convolution of X (N, C, ...) with W (M, C/group, k...) plus bias B (M).",
)


# --- ConvTranspose ------------------------------------------------------------------------------


def _transpose_pads(spatial: tuple[int, ...], full: tuple[int, ...], strides: tuple[int, ...],
                    attrs: dict) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Begin and end crops of the full transposed-conv output (onnxruntime's rules).

    An explicit ``output_shape`` wins over ``pads``; its total padding is split
    with the odd element at the end for SAME_UPPER and at the beginning
    otherwise. SAME_* pads the output to ``input * stride`` (never negative).
    """
    rank = len(spatial)
    auto_pad = attrs["auto_pad"]
    if attrs["output_shape"] is not None:
        wanted = spatial_ints(attrs["output_shape"], rank, 0, "output_shape")
        totals = [f - o for f, o in zip(full, wanted)]
        require(all(t >= 0 for t in totals),
                f"output_shape {wanted} is larger than the full transposed output {tuple(full)}")
        split = "SAME_UPPER" if auto_pad == "SAME_UPPER" else "SAME_LOWER"
        return tuple(zip(*(split_same_padding(t, split) for t in totals)))  # type: ignore[return-value]
    begins, ends = explicit_pads(attrs["pads"], rank)
    if auto_pad != "NOTSET":
        require(not any(begins + ends), f"pads {attrs['pads']} cannot be combined with auto_pad {auto_pad}")
        begins, ends = (0,) * rank, (0,) * rank
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        totals = [max(0, f - size * s) for f, size, s in zip(full, spatial, strides)]
        return tuple(zip(*(split_same_padding(t, auto_pad) for t in totals)))  # type: ignore[return-value]
    return begins, ends


def _transpose_geometry(types: list[TensorType], attrs: dict) -> tuple[Window, tuple[int, ...]]:
    """Validate a ConvTranspose node; return its window and the full (uncropped) output size.

    The window's pads are the crops of the full output and ``out`` is the
    output's spatial shape.
    """
    kernel = _check_operands(types, attrs)
    x, w = types[0], types[1]
    require(w.shape[0] == x.shape[1], f"W has {w.shape[0]} input channels, X has {x.shape[1]}")
    require(x.shape[1] % attrs["group"] == 0, f"X has {x.shape[1]} channels, not divisible by group {attrs['group']}")
    _check_bias(types, w.shape[1] * attrs["group"])
    spatial, rank = x.shape[2:], x.rank - 2
    strides, dilations = strides_and_dilations(attrs, rank)
    output_padding = spatial_ints(attrs["output_padding"], rank, 0, "output_padding")
    # ONNX allows output_padding < max(stride, dilation), but onnxruntime rejects
    # output_padding >= stride as inconsistent; so do we.
    require(all(0 <= p < s for p, s in zip(output_padding, strides)),
            f"output_padding {output_padding} must be non-negative and less than the strides {strides}")
    full = tuple((size - 1) * s + (k - 1) * d + 1 + p
                 for size, s, k, d, p in zip(spatial, strides, kernel, dilations, output_padding))
    begins, ends = _transpose_pads(spatial, full, strides, attrs)
    out = tuple(f - b - e for f, b, e in zip(full, begins, ends))
    require(all(o > 0 for o in out), f"pads {begins + ends} crop the whole output {full}")
    return Window(kernel, strides, dilations, tuple(begins), tuple(ends), out), full


def _conv_transpose_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    window, _ = _transpose_geometry(types, attrs)
    x, w = types[0], types[1]
    return [x.with_shape((x.shape[0], w.shape[1] * attrs["group"]) + window.out)]


def _conv_transpose_reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    x, w = arrays[0], arrays[1]
    window, full = _transpose_geometry(_types_of(arrays), attrs)
    acc = accumulator_dtype(x.dtype)
    n, c = x.shape[:2]
    spatial = x.shape[2:]
    group = attrs["group"]
    mg = w.shape[1]
    inputs = x.astype(acc, copy=False).reshape(n, group, c // group, math.prod(spatial))
    weights = w.astype(acc, copy=False).reshape((group, c // group, mg) + window.kernel)
    # Each kernel position writes a strided view of the full output, exactly the
    # view a Conv over the full output would read: reuse the window's slicing.
    scatter = Window(window.kernel, window.strides, window.dilations, window.pads_begin, window.pads_end, spatial)
    result = np.zeros((n, group, mg) + full, acc)
    for offset in itertools.product(*(range(k) for k in window.kernel)):
        w_at = weights[(Ellipsis, *offset)].swapaxes(1, 2)  # (G, Mg, Cg)
        contribution = grouped_matmul(w_at, inputs).reshape((n, group, mg) + spatial)
        result[(Ellipsis, *tap_slices(scatter, offset))] += contribution
    crop = tuple(slice(b, b + o) for b, o in zip(window.pads_begin, window.out))
    out = result.reshape((n, group * mg) + full)[(Ellipsis, *crop)]
    out = _add_bias(out, arrays)
    return [np.ascontiguousarray(out).astype(x.dtype, copy=False)]


def _conv_transpose_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    """The convolution of the input upsampled by the strides with the flipped kernel.

    Full output position ``f`` gathers ``x[i] * W[t]`` over ``i * s + t * d = f``; the
    upsampled input holds ``x[i]`` at ``i * s``, so with ``t' = k - 1 - t`` that is a
    stride-1 convolution reading upsampled position ``f - (k - 1) * d + t' * d``. Output
    position ``o`` is full position ``o + crop``, hence a begin pad ``(k - 1) * d - crop``
    (negative when the crop exceeds the kernel extent: the staging then skips inputs).
    """
    x, w = inputs[0], inputs[1]
    window, _ = _transpose_geometry(_tensor_types(inputs), attrs)
    group = attrs["group"]
    kernel = window.kernel
    ones = (1,) * window.rank
    pads = tuple(e - 1 - crop for e, crop in zip(window.extent, window.pads_begin))
    conv_window = Window(kernel, ones, window.dilations, pads, (0,) * window.rank, window.out)
    staging = plan_staging(x.shape[2:], conv_window, upsample=window.strides)
    in_per_group, out_per_group = x.shape[1] // group, w.shape[1]

    def weight(m: Expr, rc: Expr, taps: list[Expr]) -> Expr:
        c = rc if group == 1 else m // out_per_group * in_per_group + rc
        return w[(c, m % out_per_group, *(k - 1 - t for k, t in zip(kernel, taps)))]

    bias = inputs[2] if len(inputs) > 2 else None
    return [convolve(x, bias, staging, group, group * out_per_group, weight, outputs[0], "conv_transpose")]


define(
    "ConvTranspose",
    infer=_conv_transpose_infer,
    reference=_conv_transpose_reference,
    compute=_conv_transpose_compute,
    schedule=_schedule_conv,
    attrs={**_CONV_ATTRS, "output_padding": Ints(None), "output_shape": Ints(None)},
    inputs=(2, 3),
    fusion=Fusion.OUT_FUSABLE,
    doc="Transposed (fractionally strided) convolution of X (N, C, ...) with W (C, M/group, k...) plus bias B.",
)
