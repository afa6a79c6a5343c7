"""Strided reads: local strides, and the loop order that makes neighbouring iterations share lines."""

import numpy as np
import pytest
from ember.codegen.run import compile_kernel
from ember.ir.loops import compute, create_schedule, lower, maximum, minimum, placeholder
from ember.ir.loops.expr import Var, const
from ember.ir.loops.locality import local_stride, reuse_strided_lines
from ember.ir.ops.layout import from_blocked, to_blocked


def test_local_strides_follow_blocked_index_arithmetic():
    c, w = Var("c", "int64"), Var("w", "int64")
    assert local_stride(c // 16, c) == 0  # constant across runs of 16
    assert local_stride(c % 16, c) == 1
    assert local_stride((c * 16) // 4, c) == 4
    assert local_stride(((c // 16) * 56 + w) * 16 + c % 16, c) == 1
    assert local_stride(((c // 16) * 56 + w) * 16 + c % 16, w) == 16
    assert local_stride(minimum(maximum(w - 1, const(0, "int64")), const(55, "int64")), w) == 1  # a clamp
    assert local_stride(c * w, c) is None


def from_blocked_nest(channels=48, size=5, block=16):
    x = placeholder((1, channels // block, size, size, block), "float32", "x")
    y = compute((1, channels, size, size), lambda n, c, h, w: x[n, c // block, h, w, c % block], "y")
    return x, y


def names(stage):
    return [ax.var.name for ax in stage.leaf]


def test_a_conversion_out_of_the_blocked_layout_reads_each_line_for_a_block_of_channels():
    x, y = from_blocked_nest()
    s = create_schedule(y)
    assert reuse_strided_lines(s, s[y])
    # the channels of one block (one line of x per position) run just outside the positions
    assert names(s[y]) == ["y_i0", "y_i1.o", "y_i2", "y_i1.i", "y_i3"]
    assert [ax.extent for ax in s[y].leaf] == [1, 3, 5, 16, 5]
    s[y].vectorize(s[y].leaf[-1])
    data = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    (got,) = compile_kernel(lower(s, [x], "from_blocked"))(data)
    np.testing.assert_array_equal(got, from_blocked(data))


def test_a_transpose_to_channels_first_blocks_its_channels_by_the_line():
    x = placeholder((2, 4, 6, 40), "float32", "x")  # NHWC, 40 channels
    y = compute((2, 40, 4, 6), lambda n, c, h, w: x[n, h, w, c], "y")
    s = create_schedule(y)
    assert reuse_strided_lines(s, s[y])
    # blocks of 10 channels: the largest divisor of 40 within a line (16 floats)
    assert [ax.extent for ax in s[y].leaf] == [2, 4, 4, 10, 6]
    data = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    (got,) = compile_kernel(lower(s, [x], "nchw"))(data)
    np.testing.assert_array_equal(got, data.transpose(0, 3, 1, 2))


@pytest.mark.parametrize("case", ["contiguous", "to_blocked", "no_near_axis"])
def test_nests_that_already_reuse_their_lines_are_left_alone(case):
    if case == "contiguous":
        x = placeholder((4, 64), "float32", "x")
        y = compute((4, 64), lambda i, j: x[i, j] * 2.0, "y")
    elif case == "to_blocked":  # the positions, whose reads share lines, are next to the channels already
        x = placeholder((1, 32, 5, 5), "float32", "x")
        y = compute((1, 2, 5, 5, 16), lambda n, k, h, w, j: x[n, k * 16 + j, h, w], "y")
    else:  # every loop reads x a line or more apart
        x = placeholder((8, 64, 64), "float32", "x")
        y = compute((8, 64), lambda i, j: x[i, j, 0], "y")
    s = create_schedule(y)
    before = names(s[y])
    assert not reuse_strided_lines(s, s[y])
    assert names(s[y]) == before


def test_the_layout_conversions_keep_their_values_through_the_op_schedules():
    import ember
    from ember.ir import Graph
    from ember.ir.types import TensorType

    data = np.random.default_rng(2).standard_normal((2, 48, 7, 9)).astype(np.float32)
    g = Graph("round_trip")
    x = g.add_input("x", TensorType("float32", data.shape))
    blocked = g.apply("ToBlocked", [x], {"block": 16})
    g.set_outputs([blocked, g.apply("FromBlocked", [blocked])])
    got_blocked, got_plain = ember.compile(g, passes=[]).run({"x": data})
    np.testing.assert_array_equal(got_blocked, to_blocked(data, 16))
    np.testing.assert_array_equal(got_plain, data)
