"""Resize compiled to native code against ember's reference: every mode, coordinate transformation,
nearest mode, axes and aspect-ratio policy, on both targets.

The compiled kernel computes the coordinates with the reference's own float32
formulas and interpolates axis by axis in the reference's order, so it is
checked bit for bit (nearest, linear and cubic alike, float16 included).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ops.harness import COMPILE_TARGETS, Const, check_compiled
from tests.ops.test_resize import (
    COORDINATE_MODES,
    NEAREST_MODES,
    SCALES,
    interpolation_case,
    coordinate_attrs,
    random_array,
)

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True, database=None)
NEAREST_DTYPES = ("float32", "float16", "float64", "int8", "uint8", "int32", "int64", "bool")

targets = st.sampled_from(COMPILE_TARGETS)
seeds = st.integers(0, 2**31 - 1)


def resize(x, *, scales=None, sizes=None, roi=None, targets=("host",), **attrs):
    """Check the compiled Resize on ``x`` (scales/sizes/roi as constant inputs).

    Nearest is exact; linear and cubic may differ in the last bits where the
    compiled code fuses a multiply and an add into one FMA.
    """
    inputs = [x,
              None if roi is None else Const(np.array(roi, np.float32)),
              None if scales is None else Const(np.array(scales, np.float32)),
              None if sizes is None else Const(np.array(sizes, np.int64))]
    while inputs[-1] is None:
        inputs.pop()
    exact = attrs.get("mode", "nearest") == "nearest"
    tolerance = 0 if exact or x.dtype.kind != "f" else max(1e-5, 4 * float(np.finfo(x.dtype).eps))
    return check_compiled("Resize", inputs, attrs, rtol=tolerance, atol=tolerance, targets=targets)


def any_array(shape, dtype, seed):
    if dtype == "bool":
        return np.random.default_rng(seed).random(shape) < 0.5
    return random_array(shape, dtype, seed)


@settings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple), st.sampled_from(NEAREST_DTYPES), seeds,
       targets, st.data())
def test_nearest(shape, dtype, seed, target, data):
    """Nearest on any axes, rank and dtype, by scales or by sizes, with every rounding."""
    attrs = data.draw(coordinate_attrs(len(shape)))
    attrs["nearest_mode"] = data.draw(st.sampled_from(NEAREST_MODES))
    if data.draw(st.booleans()):
        attrs["scales"] = [data.draw(st.sampled_from(SCALES)) for _ in shape]
    else:
        attrs["sizes"] = [data.draw(st.integers(1, 9)) for _ in shape]
    resize(any_array(shape, dtype, seed), mode="nearest", targets=(target,), **attrs)


@settings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(st.sampled_from(["linear", "cubic"]), st.booleans(), st.sampled_from(["float32", "float16", "float64"]),
       seeds, targets, st.data())
def test_interpolating_modes(mode, by_sizes, dtype, seed, target, data):
    """linear and cubic, by scales or by sizes, up and down, over every coordinate mode."""
    shape, attrs = interpolation_case(data, mode, by_sizes)
    resize(random_array(shape, dtype, seed), mode=mode, targets=(target,), **attrs)


@SETTINGS
@given(st.sampled_from(["nearest", "linear", "cubic"]), st.sampled_from(["stretch", "not_larger", "not_smaller"]),
       seeds, targets, st.data())
def test_axes_and_aspect_ratio(mode, policy, seed, target, data):
    """scales or sizes on `axes` only (any order, negative too), sizes with each keep_aspect_ratio_policy."""
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), data.draw(st.integers(1, 6)),
             data.draw(st.integers(1, 6)))
    axes = data.draw(st.sampled_from([[2, 3], [-1, -2], [3, 0], [1]]))
    attrs = {"mode": mode, "axes": axes, "keep_aspect_ratio_policy": policy}
    attrs.update(data.draw(coordinate_attrs(len(axes))))
    x = random_array(shape, "float32", seed)
    if policy == "stretch" and data.draw(st.booleans()):
        resize(x, scales=[data.draw(st.sampled_from(SCALES)) for _ in axes], targets=(target,), **attrs)
    else:
        resize(x, sizes=[data.draw(st.integers(1, 9)) for _ in axes], targets=(target,), **attrs)


@pytest.mark.parametrize("ctm", COORDINATE_MODES + ("tf_half_pixel_for_nn",))
@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_every_mode_up_and_down(mode, ctm):
    if ctm == "tf_half_pixel_for_nn" and mode != "nearest":
        pytest.skip("tf_half_pixel_for_nn is a nearest-only mode")
    x = random_array((1, 2, 5, 7), "float32", 0)
    roi = [0, 0, 0.1, -0.2, 1, 1, 0.9, 1.1] if ctm == "tf_crop_and_resize" else None
    for scales in ([1, 1, 2, 2], [1, 1, 0.5, 0.7], [1, 1, 1.7, 0.4]):
        for nm in NEAREST_MODES if mode == "nearest" else NEAREST_MODES[:1]:
            resize(x, scales=scales, roi=roi, mode=mode, coordinate_transformation_mode=ctm, nearest_mode=nm)
    resize(x.astype(np.float16), sizes=[1, 2, 9, 3], roi=roi, mode=mode, coordinate_transformation_mode=ctm,
           extrapolation_value=-3.0, targets=COMPILE_TARGETS)


def test_cubic_exclude_outside_on_every_target():
    x = random_array((1, 1, 4, 6), "float32", 3)
    resize(x, scales=[1, 1, 2.5, 0.6], mode="cubic", exclude_outside=1, cubic_coeff_a=-0.5,
           targets=COMPILE_TARGETS)


def test_unchanged_shape_and_empty_axes():
    x = random_array((1, 1, 2, 4), "float32", 1)
    out = resize(x, scales=[1, 1, 1.2, 1.1], mode="linear")  # the shape is unchanged: a copy
    np.testing.assert_array_equal(out[0], x)
    resize(random_array((1, 1, 0, 3), "float32", 0), scales=[1, 1, 2, 2], mode="nearest")
    resize(random_array((1, 2, 3, 3), "float32", 0), sizes=[1, 0, 6, 6], mode="linear")


def test_nearest_upsample_of_a_feature_map():
    """The common case in detection networks: 2x nearest on NCHW."""
    x = random_array((1, 8, 13, 13), "float32", 5)
    resize(x, scales=[1, 1, 2, 2], mode="nearest", nearest_mode="floor", coordinate_transformation_mode="asymmetric",
           targets=COMPILE_TARGETS)
