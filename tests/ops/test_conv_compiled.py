"""Conv and ConvTranspose compiled to native code, against ember's reference.

The reference accumulates in float64, the kernels in the input dtype (float32
for float16), so floats compare with rtol/atol 1e-4 (data in [-1, 1]).
"""

from __future__ import annotations

import numpy as np
import pytest
from ember.codegen.target import Target
from ember.ir.loops import For, If, Select, Stmt
from ember.ir.loops.tensor import walk
from ember.runtime.build import lower_node
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ops.harness import COMPILE_TARGETS, Const, check_compiled, ember_import_node
from tests.ops.test_conv import _inputs, conv_geometry, conv_transpose_geometry

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TOL = {"rtol": 1e-4, "atol": 1e-4}
TARGETS = st.sampled_from(COMPILE_TARGETS)


@SETTINGS
@given(case=conv_geometry(), seed=st.integers(0, 2**31), bias=st.booleans(), const_weights=st.booleans(),
       dtype=st.sampled_from(["float32", "float32", "float64"]), target=TARGETS)
def test_conv(case, seed, bias, const_weights, dtype, target):
    x_shape, w_shape, out_channels, attrs = case
    inputs = _inputs(seed, x_shape, w_shape, out_channels, bias, const_weights, dtype)
    check_compiled("Conv", inputs, attrs, targets=[target], **TOL)


@settings(SETTINGS, max_examples=12)
@given(case=conv_transpose_geometry(), seed=st.integers(0, 2**31), bias=st.booleans(),
       const_weights=st.booleans(), target=TARGETS)
def test_conv_transpose(case, seed, bias, const_weights, target):
    x_shape, w_shape, out_channels, attrs = case
    inputs = _inputs(seed, x_shape, w_shape, out_channels, bias, const_weights)
    check_compiled("ConvTranspose", inputs, attrs, targets=[target], **TOL)


@pytest.mark.parametrize("op", ["Conv", "ConvTranspose"])
def test_float16(op):
    """float16 accumulates in float32 and rounds once, like the reference (up to float16's precision)."""
    inputs = _inputs(7, (2, 4, 6, 5), (4, 2, 3, 3), 4, True, False, "float16")
    check_compiled(op, inputs, {"pads": [1, 0, 0, 1], "strides": [2, 1], "group": 2},
                   rtol=2e-3, atol=2e-3, targets=COMPILE_TARGETS)


@pytest.mark.parametrize("op", ["Conv", "ConvTranspose"])
def test_empty_batch(op):
    check_compiled(op, _inputs(3, (0, 2, 5, 5), (2, 2, 3, 3), 2, True, True), {"pads": [1, 1, 1, 1]}, **TOL)


@pytest.mark.parametrize("x_shape, w_shape, attrs", [
    ((1, 16, 15, 15), (32, 1, 3, 3), {"group": 16, "pads": [1, 1, 1, 1], "strides": [2, 2]}),  # depthwise x2
    ((1, 8, 9, 9), (8, 1, 3, 3), {"group": 8, "pads": [1, 1, 1, 1]}),  # depthwise
    ((2, 12, 7, 6), (10, 12, 1, 1), {}),  # 1x1: no padding stage fill
    ((1, 6, 8, 8), (4, 6, 1, 1), {"strides": [2, 2]}),  # strided 1x1 (ResNet downsample)
    ((1, 3, 30, 30), (4, 3, 7, 7), {"pads": [3, 3, 3, 3], "strides": [2, 2]}),  # ResNet stem, small
    ((1, 2, 70, 70), (3, 2, 3, 3), {"pads": [1, 1, 1, 1]}),  # more wide positions than one block
    ((1, 2, 5, 6, 7), (3, 2, 2, 3, 2), {"pads": [1, 0, 1, 0, 1, 1], "strides": [1, 2, 1], "dilations": [2, 1, 3]}),
    ((1, 2, 1, 1), (5, 2, 1, 1), {}),  # one output position: reductions stay innermost
])
def test_fixed_geometries(x_shape, w_shape, attrs):
    inputs = _inputs(13, x_shape, w_shape, w_shape[0], True, True)
    check_compiled("Conv", inputs, attrs, targets=COMPILE_TARGETS, **TOL)


@pytest.mark.parametrize("attrs", [
    {"strides": [2, 2], "pads": [1, 2, 1, 0]},  # crops beyond the kernel extent: the staging skips inputs
    {"strides": [3, 1], "dilations": [2, 2], "output_padding": [2, 0]},
    {"strides": [2, 2], "output_shape": [9, 8], "auto_pad": "SAME_UPPER"},
    {"strides": [2, 1], "auto_pad": "SAME_LOWER", "group": 2},
])
def test_conv_transpose_fixed(attrs):
    inputs = _inputs(17, (1, 4, 4, 4), (4, 3, 1 if "pads" in attrs else 3, 3), 3 * attrs.get("group", 1), True, True)
    check_compiled("ConvTranspose", inputs, attrs, targets=COMPILE_TARGETS, **TOL)


def test_large_values_scaled_tolerance():
    """Values of order 100: the float32 kernel stays within 1e-4 relative of the float64 reference."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-100, 100, (1, 16, 12, 12)).astype(np.float32)
    w = rng.uniform(-1, 1, (8, 16, 3, 3)).astype(np.float32)
    check_compiled("Conv", [x, Const(w)], {"pads": [1, 1, 1, 1]}, rtol=1e-4, atol=1e-2)


def _innermost_loops(s: Stmt, enclosing: tuple = ()):
    """(loop, enclosing loops) for every For without a For inside."""
    body = getattr(s, "body", None)
    children = [c for c in (body, getattr(s, "then", None), getattr(s, "otherwise", None)) if isinstance(c, Stmt)]
    children += list(getattr(s, "stmts", ()))
    inner = [found for c in children for found in _innermost_loops(c, enclosing + ((s,) if isinstance(s, For) else ()))]
    if isinstance(s, For) and not inner:
        return [(s, enclosing)]
    return inner


def test_schedule_vectorizes_wide_loop_without_conditions():
    """The hot loop: stride-1 over wide positions, no branches, reductions (channels, taps) outside it."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1, 8, 12, 12)).astype(np.float32)
    w = rng.uniform(-1, 1, (8, 8, 3, 3)).astype(np.float32)
    node = ember_import_node("Conv", [x, Const(w)], {"pads": [1, 1, 1, 1]}).nodes[0]
    kernel = lower_node(node, Target.host(), "conv")
    vectorized = [(loop, outer) for loop, outer in _innermost_loops(kernel.body) if loop.kind == "vectorized"]
    # the multiply-adds inside the channel reduction; the tile's zeroing and final store outside it
    hot = [loop for loop, outer in vectorized if any(o.var.name.startswith("rc") for o in outer)]
    assert len(hot) == 1 and len(vectorized) == 3
    for loop, _ in vectorized:
        assert not isinstance(loop.body, If)
        assert not any(isinstance(e, Select) for e in walk(loop.body.value))


def _workspaces(op_type: str, inputs: list, attrs: dict) -> list[str]:
    node = ember_import_node(op_type, inputs, attrs).nodes[0]
    kernel = lower_node(node, Target.host(), "k")
    return [b.name for b in kernel.params[kernel.num_inputs + kernel.num_outputs:]]


@pytest.mark.parametrize("shape,attrs,in_place", [
    ((1, 12, 8, 8), {}, True),                               # 1x1 over whole chunks: the input itself
    ((2, 6, 40), {}, True),                                  # 1-D
    ((1, 12, 8, 8), {"group": 4}, True),                     # grouped
    ((1, 12, 7, 7), {}, False),                              # 49 positions: the wide rows pad to 56
    ((1, 12, 8, 8), {"pads": [1, 0, 0, 0]}, False),          # padded
    ((1, 12, 8, 8), {"strides": [2, 1]}, False),             # strided
    ((1, 12, 4, 4, 4), {}, False),                           # three spatial axes stay staged
])
def test_stride_one_unpadded_windows_read_the_input_in_place(shape, attrs, in_place):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(np.float32)
    kernel = (1,) * (len(shape) - 2)
    w = rng.standard_normal((8, shape[1] // attrs.get("group", 1), *kernel)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    staged = [name for name in _workspaces("Conv", [x, Const(w), Const(b)], attrs) if "staged" in name]
    assert (not staged) == in_place
    check_compiled("Conv", [x, Const(w), Const(b)], attrs, rtol=1e-4, atol=1e-5, targets=COMPILE_TARGETS)


def test_float16_conv_read_in_place_accumulates_in_float32():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 16, 8, 8)).astype(np.float16)
    w = rng.standard_normal((8, 16, 1, 1)).astype(np.float16)
    assert not [name for name in _workspaces("Conv", [x, Const(w)], {}) if "staged" in name]
    check_compiled("Conv", [x, Const(w)], {}, rtol=1e-2, atol=1e-2)


def test_the_staged_copy_is_spread_over_threads():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 12, 9, 9)).astype(np.float32)
    w = rng.standard_normal((8, 12, 3, 3)).astype(np.float32)
    attrs = {"pads": [1, 1, 1, 1], "strides": [2, 2]}
    node = ember_import_node("Conv", [x, Const(w)], attrs).nodes[0]
    kernel = lower_node(node, Target.host(), "k")
    staging = [s for s in kernel.body.stmts if isinstance(s, For) and s.var.name in ("fill", "row")]
    assert len(staging) == 1 + 4 and all(s.kind == "parallel" for s in staging)  # the fill, one copy per phase
    check_compiled("Conv", [x, Const(w)], attrs, rtol=1e-4, atol=1e-5, targets=COMPILE_TARGETS)
