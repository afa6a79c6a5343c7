"""Old-opset semantics translated by the importer, checked against onnxruntime."""

import numpy as np
import pytest

from tests.ops.harness import Const, check_node

rng = np.random.default_rng(0)


def rand(*shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("opset", [9, 11])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_softmax_before_13_flattens_to_2d(opset, axis):
    check_node("Softmax", [rand(2, 3, 4)], {"axis": axis}, opset=opset)
    check_node("LogSoftmax", [rand(2, 3, 4)], {"axis": axis}, opset=opset, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scales", [[1, 1, 2, 3], [1, 1, 0.5, 0.5], [1, 1, 0.6, 0.6]])
def test_resize_10_and_upsample(scales):
    x = rand(1, 2, 10, 10)
    check_node("Resize", [x, Const(np.array(scales, np.float32))], {"mode": "nearest"}, opset=10)
    if min(scales) >= 1:
        check_node("Upsample", [x, Const(np.array(scales, np.float32))], {"mode": "nearest"}, opset=9)
        check_node("Upsample", [x, Const(np.array(scales, np.float32))], {"mode": "linear"}, opset=9, atol=1e-5)


def test_pad_before_11_uses_attributes():
    check_node("Pad", [rand(2, 3)], {"pads": [1, 0, 0, 2], "value": 1.5}, opset=9)
    check_node("Pad", [rand(2, 3)], {"pads": [1, 1, 1, 1], "mode": "edge"}, opset=9)


def test_split_and_squeeze_attributes():
    check_node("Split", [rand(6, 2)], {"axis": 0, "split": [1, 5]}, opset=11, num_outputs=2)
    check_node("Squeeze", [rand(1, 3, 1)], {"axes": [0]}, opset=11)
    check_node("ReduceSum", [rand(2, 3)], {"axes": [1], "keepdims": 0}, opset=11)


def test_group_normalization_per_group_scale():
    x = rand(2, 6, 3, 3)
    check_node("GroupNormalization", [x, rand(3), rand(3)], {"num_groups": 3}, opset=18, rtol=1e-4, atol=1e-5)


def test_clip_before_11_and_slice_before_10():
    check_node("Clip", [rand(4, 4)], {"min": -0.5, "max": 0.5}, opset=6)
    check_node("Slice", [rand(5, 6)], {"starts": [1, 0], "ends": [4, 5], "axes": [0, 1]}, opset=9)
