"""Resize against onnxruntime: every mode x coordinate transformation x nearest mode,
with scales and with sizes, upsampling and downsampling.

onnxruntime implements linear only for 2-D/3-D inputs, 4-D with the outer two (or
the outer and inner) scales 1, and 5-D with the outer two scales 1; cubic only for
2-D and 4-D with the outer two scales 1. ember resizes any axes; the tests draw
cases onnxruntime accepts.
"""

from __future__ import annotations

import numpy as np
import pytest
from ember.ir.errors import ShapeError, UnsupportedOpError
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ops.harness import Const, check_node, ember_import_node
from tests.ops.test_shape import random_array

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None)
COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                    "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
# Scales that hit exact .5 ties in the coordinates (2, 0.5, 4) and awkward float32 products.
SCALES = (0.5, 0.6, 0.7, 1.0, 1.3, 1.5, 2.0, 2.5, 3.0, 4.0, 0.25, 1.75)
seeds = st.integers(0, 2**31 - 1)


def resize(x, *, scales=None, sizes=None, roi=None, rtol=1e-5, atol=1e-5, **attrs):
    """Check Resize on ``x`` with scales/sizes/roi given as constant inputs."""
    inputs = [x,
              None if roi is None else Const(np.array(roi, np.float32)),
              None if scales is None else Const(np.array(scales, np.float32)),
              None if sizes is None else Const(np.array(sizes, np.int64))]
    while inputs[-1] is None:
        inputs.pop()
    return check_node("Resize", inputs, attrs, rtol=rtol, atol=atol)


@st.composite
def roi_for(draw, n: int):
    """A crop box (starts then ends) per axis, partly outside [0, 1] to exercise extrapolation."""
    starts = [draw(st.sampled_from([0.0, 0.1, -0.2, 0.4])) for _ in range(n)]
    ends = [draw(st.sampled_from([1.0, 0.9, 1.3, 0.6])) for _ in range(n)]
    return starts + ends


@st.composite
def coordinate_attrs(draw, n_roi: int):
    """coordinate_transformation_mode (+ roi and extrapolation value for tf_crop_and_resize)."""
    ctm = draw(st.sampled_from(COORDINATE_MODES))
    extra = {"coordinate_transformation_mode": ctm}
    if ctm == "tf_crop_and_resize":
        extra["roi"] = draw(roi_for(n_roi))
        extra["extrapolation_value"] = draw(st.sampled_from([0.0, -7.0]))
    return extra


@SETTINGS
@given(st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple), seeds, st.data(),
       st.sampled_from(["float32", "float16", "int32", "int8", "uint8"]))
def test_nearest_scales(shape, seed, data, dtype):
    """Nearest resizes any axes of any rank and dtype."""
    scales = [data.draw(st.sampled_from(SCALES)) for _ in shape]
    attrs = data.draw(coordinate_attrs(len(shape)))
    attrs["nearest_mode"] = data.draw(st.sampled_from(NEAREST_MODES))
    resize(random_array(shape, dtype, seed), scales=scales, mode="nearest", **attrs)


@SETTINGS
@given(st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple), seeds, st.data())
def test_nearest_sizes(shape, seed, data):
    sizes = [data.draw(st.integers(1, 9)) for _ in shape]
    attrs = data.draw(coordinate_attrs(len(shape)))
    attrs["nearest_mode"] = data.draw(st.sampled_from(NEAREST_MODES))
    resize(random_array(shape, "float32", seed), sizes=sizes, mode="nearest", **attrs)


def _interp_layout(data, mode: str):
    """(shape, index of each resized axis) for a layout onnxruntime supports in ``mode``."""
    if mode == "cubic":
        layout = data.draw(st.sampled_from(["2d", "nchw"]))
    else:
        layout = data.draw(st.sampled_from(["2d", "3d", "nchw", "nhwc", "ncdhw"]))
    dim = st.integers(1, 5)
    shape = {"2d": (data.draw(dim), data.draw(dim)),
             "3d": (data.draw(dim), data.draw(dim), data.draw(dim)),
             "nchw": (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), data.draw(dim), data.draw(dim)),
             "nhwc": (data.draw(st.integers(1, 2)), data.draw(dim), data.draw(dim), data.draw(st.integers(2, 3))),
             "ncdhw": (1, 2, data.draw(dim), data.draw(dim), data.draw(dim))}[layout]
    resized = {"2d": (0, 1), "3d": (0, 1, 2), "nchw": (2, 3), "nhwc": (1, 2), "ncdhw": (2, 3, 4)}[layout]
    return shape, resized


def interpolation_case(data, mode: str, by_sizes: bool) -> tuple[tuple[int, ...], dict]:
    """An input shape and Resize attributes for ``mode`` (linear or cubic): a coordinate mode,
    cubic's coefficients, and sizes or scales for the resized axes."""
    shape, resized = _interp_layout(data, mode)
    attrs = data.draw(coordinate_attrs(len(shape)))
    if mode == "cubic":
        attrs["cubic_coeff_a"] = data.draw(st.sampled_from([-0.75, -0.5]))
        attrs["exclude_outside"] = data.draw(st.sampled_from([0, 1]))
    if by_sizes:
        # The other axes keep their size (scale 1), as onnxruntime requires.
        attrs["sizes"] = [data.draw(st.integers(1, 9)) if i in resized else d for i, d in enumerate(shape)]
    else:
        attrs["scales"] = [data.draw(st.sampled_from(SCALES)) if i in resized else 1.0 for i in range(len(shape))]
    return shape, attrs


@SETTINGS
@given(st.sampled_from(["linear", "cubic"]), st.booleans(), st.sampled_from(["float32", "float16"]), seeds,
       st.data())
def test_interpolating_modes(mode, by_sizes, dtype, seed, data):
    """linear and cubic, by scales or by sizes, up and down, over every coordinate mode."""
    shape, attrs = interpolation_case(data, mode, by_sizes)
    tol = 1e-2 if dtype == "float16" else 1e-5
    resize(random_array(shape, dtype, seed), mode=mode, rtol=tol, atol=tol, **attrs)


@SETTINGS
@given(st.sampled_from(["nearest", "linear", "cubic"]), st.sampled_from(["stretch", "not_larger", "not_smaller"]),
       seeds, st.data())
def test_axes_and_aspect_ratio(mode, policy, seed, data):
    """scales or sizes on `axes` only; sizes with each keep_aspect_ratio_policy."""
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), data.draw(st.integers(1, 6)),
             data.draw(st.integers(1, 6)))
    # onnxruntime ignores sizes given on negative axes under not_larger/not_smaller (a bug).
    axes = [-2, -1] if policy == "stretch" and data.draw(st.booleans()) else [2, 3]
    attrs = {"mode": mode, "axes": axes, "keep_aspect_ratio_policy": policy}
    attrs.update(data.draw(coordinate_attrs(2)))
    x = random_array(shape, "float32", seed)
    if policy == "stretch" and data.draw(st.booleans()):
        resize(x, scales=[data.draw(st.sampled_from(SCALES)) for _ in axes], **attrs)
    else:
        resize(x, sizes=[data.draw(st.integers(1, 9)) for _ in axes], **attrs)


@pytest.mark.parametrize("ctm", COORDINATE_MODES)
@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_every_mode_up_and_down(mode, ctm):
    x = random_array((1, 2, 5, 7), "float32", 0)
    roi = [0, 0, 0.1, -0.2, 1, 1, 0.9, 1.1] if ctm == "tf_crop_and_resize" else None
    for scales in ([1, 1, 2, 2], [1, 1, 0.5, 0.7], [1, 1, 1.7, 0.4]):
        nearest = NEAREST_MODES if mode == "nearest" else NEAREST_MODES[:1]
        for nm in nearest:
            resize(x, scales=scales, roi=roi, mode=mode, coordinate_transformation_mode=ctm, nearest_mode=nm)
    resize(x, sizes=[1, 2, 9, 3], roi=roi, mode=mode, coordinate_transformation_mode=ctm)


def test_onnxruntime_copies_when_the_shape_is_unchanged():
    """scale 1.2 on a 2-long axis gives 2 again: the output is the input, whatever the mode."""
    x = random_array((1, 1, 2, 4), "float32", 1)
    out = resize(x, scales=[1, 1, 1.2, 1.1], mode="linear")
    np.testing.assert_array_equal(out[0], x)


def test_empty_output_axis():
    resize(random_array((1, 1, 0, 3), "float32", 0), scales=[1, 1, 2, 2], mode="nearest")


def test_old_tf_half_pixel_for_nn():
    x = random_array((1, 1, 3, 5), "float32", 0)
    resize(x, scales=[1, 1, 1.5, 0.6], mode="nearest", coordinate_transformation_mode="tf_half_pixel_for_nn")


# --- bad inputs ---------------------------------------------------------------

X = np.zeros((1, 1, 4, 4), np.float32)
SCALES_2X = Const(np.array([1, 1, 2, 2], np.float32))
SIZES_8 = Const(np.array([1, 1, 8, 8], np.int64))


@pytest.mark.parametrize("inputs, attrs, error, match", [
    ([X, None, SCALES_2X], {"antialias": 1, "mode": "linear"}, UnsupportedOpError, "antialias"),
    ([X.astype(np.int32), None, SCALES_2X], {"mode": "linear"}, UnsupportedOpError, "int32"),
    ([X, None, SCALES_2X, SIZES_8], {}, ShapeError, "exactly one"),
    ([X], {}, ShapeError, "exactly one"),
    ([X, None, Const(np.array([2, 2], np.float32))], {}, ShapeError, "one entry per axis"),
    ([X, None, Const(np.array([1, 1, 0, 2], np.float32))], {}, ShapeError, "positive"),
    ([X, None, SCALES_2X], {"mode": "bicubic"}, ShapeError, "mode"),
    ([X, None, SCALES_2X], {"nearest_mode": "up"}, ShapeError, "nearest_mode"),
    ([X, None, SCALES_2X], {"coordinate_transformation_mode": "corners"}, ShapeError, "coordinate"),
    ([X, None, SCALES_2X], {"exclude_outside": 1}, ShapeError, "exclude_outside"),
    ([X, None, None, Const(np.array([8, 8], np.int64))], {"axes": [2, 2]}, ShapeError, "repeat"),
    ([X, None, None, Const(np.array([1, 1, 8], np.int64))], {}, ShapeError, "one entry per axis"),
])
def test_resize_errors(inputs, attrs, error, match):
    with pytest.raises(error, match=match):
        ember_import_node("Resize", inputs, attrs)
