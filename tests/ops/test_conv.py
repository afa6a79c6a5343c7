"""Conv and ConvTranspose against onnxruntime: 1-D/2-D/3-D, groups (depthwise too),
strides, asymmetric pads, dilations, auto_pad modes, output_padding/output_shape."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember.ir.errors import ShapeError
from tests.ops.harness import Const, check_node, ember_import_node, run_ember, run_ort

SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TOL = {"rtol": 1e-4, "atol": 1e-5}
AUTO_PADS = ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]


def random_values(seed: int, shape, dtype: str = "float32") -> np.ndarray:
    """Seeded uniform data in [-1, 1]."""
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(dtype)


@st.composite
def conv_geometry(draw, transpose: bool = False):
    """Shapes and attributes of a valid Conv (or ConvTranspose) node."""
    rank = draw(st.integers(1, 3))
    group = draw(st.sampled_from([1, 1, 2, 3]))
    depthwise = draw(st.booleans()) and not transpose
    in_per_group = 1 if depthwise else draw(st.integers(1, 3))
    out_per_group = draw(st.integers(1, 2))
    kernel = [draw(st.integers(1, 3)) for _ in range(rank)]
    strides = [draw(st.integers(1, 3)) for _ in range(rank)]
    auto_pad = draw(st.sampled_from(["NOTSET", *AUTO_PADS]))  # explicit pads twice as often
    # onnxruntime refuses dilations with SAME_* (see test_conv_same_with_dilations).
    same = auto_pad.startswith("SAME")
    dilations = [1 if same else draw(st.integers(1, 2)) for _ in range(rank)]
    pads = [draw(st.integers(0, 2)) for _ in range(2 * rank)] if auto_pad == "NOTSET" else [0] * (2 * rank)
    extents = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    spatial = []
    for axis in range(rank):
        smallest = 1 if transpose else max(1, extents[axis] - pads[axis] - pads[axis + rank])
        spatial.append(draw(st.integers(smallest, smallest + 5)))
    attrs = {"strides": strides}
    if draw(st.booleans()):
        attrs["kernel_shape"] = kernel
    if group != 1 or draw(st.booleans()):
        attrs["group"] = group
    if auto_pad != "NOTSET":
        attrs["auto_pad"] = auto_pad
    if not same and (any(d != 1 for d in dilations) or draw(st.booleans())):
        attrs["dilations"] = dilations
    if auto_pad == "NOTSET" and (any(pads) or draw(st.booleans())):
        attrs["pads"] = pads
    channels = group * in_per_group
    batch = draw(st.integers(1, 2))
    x_shape = (batch, channels, *spatial)
    if transpose:
        w_shape = (channels, out_per_group, *kernel)
        out_channels = group * out_per_group
    else:
        out_channels = group * out_per_group * (draw(st.integers(1, 2)) if depthwise else 1)
        w_shape = (out_channels, in_per_group, *kernel)
    return x_shape, w_shape, out_channels, attrs


def _inputs(seed: int, x_shape, w_shape, out_channels: int, bias: bool, const_weights: bool, dtype="float32"):
    x = random_values(seed, x_shape, dtype)
    w = random_values(seed + 1, w_shape, dtype)
    inputs = [x, Const(w) if const_weights else w]
    if bias:
        inputs.append(Const(random_values(seed + 2, (out_channels,), dtype)))
    return inputs


@SETTINGS
@given(case=conv_geometry(), seed=st.integers(0, 2**31), bias=st.booleans(), const_weights=st.booleans())
def test_conv(case, seed, bias, const_weights):
    x_shape, w_shape, out_channels, attrs = case
    check_node("Conv", _inputs(seed, x_shape, w_shape, out_channels, bias, const_weights), attrs, **TOL)


@st.composite
def conv_transpose_geometry(draw):
    """A valid ConvTranspose node: output_padding below the strides, or an explicit output_shape."""
    x_shape, w_shape, out_channels, attrs = draw(conv_geometry(transpose=True))
    rank = len(x_shape) - 2
    strides, kernel = attrs["strides"], w_shape[2:]
    dilations = attrs.get("dilations", [1] * rank)
    if draw(st.booleans()):
        attrs["output_padding"] = [draw(st.integers(0, s - 1)) for s in strides]
    padding = attrs.get("output_padding", [0] * rank)
    full = [(n - 1) * s + (k - 1) * d + 1 + p
            for n, s, k, d, p in zip(x_shape[2:], strides, kernel, dilations, padding)]
    pads = attrs.get("pads", [0] * 2 * rank)
    if draw(st.integers(0, 3)) == 0:
        attrs["output_shape"] = [f - draw(st.integers(0, min(f - 1, 3))) for f in full]
    elif any(f - pads[i] - pads[i + rank] <= 0 for i, f in enumerate(full)):
        attrs.pop("pads")  # the pads would crop the whole output
    return x_shape, w_shape, out_channels, attrs


@SETTINGS
@given(case=conv_transpose_geometry(), seed=st.integers(0, 2**31), bias=st.booleans(),
       const_weights=st.booleans())
def test_conv_transpose(case, seed, bias, const_weights):
    x_shape, w_shape, out_channels, attrs = case
    check_node("ConvTranspose", _inputs(seed, x_shape, w_shape, out_channels, bias, const_weights), attrs, **TOL)


@pytest.mark.parametrize("op", ["Conv", "ConvTranspose"])
def test_float16(op):
    x_shape, w_shape = (2, 4, 6, 5), (4, 2, 3, 3)
    inputs = _inputs(7, x_shape, w_shape, 4 if op == "Conv" else 4, True, False, "float16")
    check_node(op, inputs, {"pads": [1, 0, 0, 1], "strides": [2, 1], "group": 2}, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("op", ["Conv", "ConvTranspose"])
def test_empty_batch(op):
    check_node(op, _inputs(3, (0, 2, 5, 5), (2, 2, 3, 3), 2, True, True), {"pads": [1, 1, 1, 1]}, **TOL)


def test_depthwise_multiplier_large():
    """A MobileNet-like depthwise layer: group == channels, channel multiplier 2, stride 2."""
    inputs = _inputs(11, (1, 16, 15, 15), (32, 1, 3, 3), 32, True, True)
    check_node("Conv", inputs, {"group": 16, "pads": [1, 1, 1, 1], "strides": [2, 2]}, **TOL)


def _same_pads(spatial, kernel, strides, dilations, upper: bool) -> list[int]:
    """Explicit pads of auto_pad SAME_UPPER/SAME_LOWER as the ONNX spec defines them."""
    begins, ends = [], []
    for n, k, s, d in zip(spatial, kernel, strides, dilations):
        total = max(0, (-(-n // s) - 1) * s + (k - 1) * d + 1 - n)
        small = total // 2
        begins.append(small if upper else total - small)
        ends.append(total - small if upper else small)
    return begins + ends


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_conv_same_with_dilations(auto_pad):
    """onnxruntime refuses SAME with dilations > 1; ember follows the spec: the same as the explicit pads."""
    x_shape, w_shape, strides, dilations = (1, 2, 9, 8), (3, 2, 3, 2), [2, 1], [2, 3]
    inputs = _inputs(5, x_shape, w_shape, 3, True, True)
    pads = _same_pads(x_shape[2:], w_shape[2:], strides, dilations, auto_pad == "SAME_UPPER")
    expected = run_ort("Conv", inputs, {"pads": pads, "strides": strides, "dilations": dilations})
    actual = run_ember("Conv", inputs, {"auto_pad": auto_pad, "strides": strides, "dilations": dilations})
    assert actual[0].shape == (1, 3, 5, 8)
    np.testing.assert_allclose(actual[0], expected[0], **TOL)


def test_conv_transpose_same_output_size():
    """SAME_* makes the output input * stride; the odd pad goes to the end for SAME_UPPER."""
    inputs = _inputs(9, (1, 1, 3), (1, 1, 3), 1, False, True)
    for auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = check_node("ConvTranspose", inputs, {"auto_pad": auto_pad, "strides": [2]}, **TOL)
        assert out[0].shape == (1, 1, 6)


# ---------------------------------------------------------------- errors


def _conv_error(inputs, attrs, match: str, op: str = "Conv"):
    with pytest.raises(ShapeError, match=match):
        ember_import_node(op, inputs, attrs)


def test_error_channels_do_not_match_group():
    x, w = random_values(0, (1, 4, 5, 5)), random_values(1, (4, 4, 3, 3))
    _conv_error([x, w], {"group": 2}, "X has 4 channels, but W expects 4 per group x 2 groups")


def test_error_output_channels_not_divisible_by_group():
    x, w = random_values(0, (1, 4, 5, 5)), random_values(1, (3, 2, 3, 3))
    _conv_error([x, w], {"group": 2}, "not divisible by group 2")


def test_error_kernel_larger_than_padded_input():
    x, w = random_values(0, (1, 1, 3, 5)), random_values(1, (1, 1, 5, 3))
    _conv_error([x, w], {"pads": [0, 0, 1, 0]}, "kernel extent 5 is larger than the padded input size 4")
    _conv_error([x, w], {"pads": [1, 0, 1, 0], "dilations": [1, 3]},
                "kernel extent 7 is larger than the padded input size 5 on spatial axis 1")


def test_error_bad_auto_pad():
    x, w = random_values(0, (1, 1, 5, 5)), random_values(1, (1, 1, 3, 3))
    _conv_error([x, w], {"auto_pad": "SAME"}, "auto_pad 'SAME' is not one of")
    _conv_error([x, w], {"auto_pad": "VALID", "pads": [1, 1, 1, 1]}, "cannot be combined with auto_pad")
    _conv_error([x, w], {"auto_pad": "SAME"}, "auto_pad 'SAME' is not one of", op="ConvTranspose")


def test_error_attribute_lengths_and_shapes():
    x, w = random_values(0, (1, 2, 5, 5)), random_values(1, (2, 2, 3, 3))
    _conv_error([x, w], {"strides": [1, 1, 1]}, "strides .* must have 2 entries")
    _conv_error([x, w], {"pads": [1, 1]}, "pads .* must have 4 entries")
    _conv_error([x, w], {"kernel_shape": [3, 2]}, "does not match W's spatial shape")
    _conv_error([x, w, random_values(2, (3,))], {}, r"B has shape \(3,\), expected \(2,\)")
    _conv_error([x, random_values(1, (2, 2, 3))], {}, "W has rank 3, expected 4")
    _conv_error([random_values(0, (2, 5)), random_values(1, (2, 5))], {}, "rank >= 3")


def test_error_conv_transpose():
    x, w = random_values(0, (1, 2, 4, 4)), random_values(1, (2, 3, 3, 3))
    _conv_error([x, w], {"strides": [2, 2], "output_padding": [2, 0]}, "less than the strides", "ConvTranspose")
    _conv_error([x, w], {"output_shape": [12, 6]}, "larger than the full transposed output", "ConvTranspose")
    _conv_error([x, w], {"pads": [3, 0, 3, 0]}, "crop the whole output", "ConvTranspose")
    _conv_error([x, random_values(1, (3, 3, 3, 3))], {}, "W has 3 input channels, X has 2", "ConvTranspose")
