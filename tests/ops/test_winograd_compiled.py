"""The Winograd transforms (WinogradInput, WinogradOutput) against the plain convolution and compiled.

The three-op composition (input transform, batched MatMul with the transformed
weights, output transform) must equal the plain Conv reference (which the Conv
tests check against onnxruntime); each transform's compiled kernel must equal
its reference, on this CPU and on plain x86-64 (SSE2 only).
"""

from __future__ import annotations

import numpy as np
import pytest
from ember.ir import Graph, TensorType
from ember.ir.errors import EmberError
from ember.ir.ops import get_op
from ember.ir.ops.layout import to_blocked
from ember.ir.ops.winograd import transform_weight
from ember.runtime.reference import ReferenceModule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ember
from tests.ops.harness import COMPILE_TARGETS, assert_same

SETTINGS = settings(max_examples=6, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
TOL = {"rtol": 1e-4, "atol": 1e-4}


def run_op(op: str, arrays: list[np.ndarray], attrs: dict) -> np.ndarray:
    opdef = get_op(op)
    (out,) = opdef.run_reference(arrays, opdef.normalize_attrs(attrs))
    return out


@st.composite
def winograd_convs(draw):
    """(x NCHW, w KCHW, bias or None, pads, block, tile) of a 3x3 stride-1 conv (sizes the tile does
    not divide: partial tiles)."""
    block = draw(st.sampled_from([4, 8]))
    tile = draw(st.sampled_from([2, 4]))
    channels = draw(st.integers(1, 3)) * block
    out_channels = draw(st.integers(1, 2)) * block
    pads = [draw(st.integers(0, 1)) for _ in range(4)]
    out_size = [draw(st.integers(1, 9)) for _ in range(2)]
    spatial = [out_size[0] + 2 - pads[0] - pads[2], out_size[1] + 2 - pads[1] - pads[3]]
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.uniform(-1, 1, (draw(st.integers(1, 2)), channels, *spatial)).astype(np.float32)
    w = rng.uniform(-1, 1, (out_channels, channels, 3, 3)).astype(np.float32)
    bias = rng.uniform(-1, 1, out_channels).astype(np.float32) if draw(st.booleans()) else None
    return x, w, bias, pads, block, tile


def winograd_pieces(x, w, bias, pads, block, tile):
    """The blocked input, the transforms' attributes, and the conv's expected blocked output."""
    attrs = {"pads": pads, "strides": [1, 1], "dilations": [1, 1], "group": 1, "kernel_shape": [3, 3]}
    expected = run_op("Conv", [x, w] + ([bias] if bias is not None else []), attrs)
    return to_blocked(x, block), list(expected.shape[2:]), to_blocked(expected, block)


@SETTINGS
@given(winograd_convs())
def test_the_three_ops_compute_the_convolution(case):
    x, w, bias, pads, block, tile = case
    xb, size, expected = winograd_pieces(*case)
    v = run_op("WinogradInput", [xb], {"pads": pads, "tile": tile})
    product = np.matmul(v, transform_weight(w, tile))
    inputs = [product] + ([bias.reshape(-1, block)] if bias is not None else [])
    y = run_op("WinogradOutput", inputs, {"size": size, "tile": tile, "block": block})
    assert_same(y, expected, what="Winograd composition", **TOL)


def one_node(op: str, x: np.ndarray, constants: list[np.ndarray], attrs: dict) -> Graph:
    graph = Graph("g")
    inputs = [graph.add_input("x", TensorType.of(x))] + [graph.add_constant(c, f"c{i}") for i, c in enumerate(constants)]
    graph.set_outputs(graph.add_node(op, inputs, attrs).outputs)
    return graph


def check_compiled(graph: Graph, x: np.ndarray) -> None:
    (expected,) = ReferenceModule(graph).run({"x": x})
    for target in COMPILE_TARGETS:
        (actual,) = ember.compile(graph, target=target, opt_level=0).run({"x": x})
        assert_same(actual, expected, what=f"{graph.nodes[-1].op} ({target})", **TOL)


@SETTINGS
@given(winograd_convs())
def test_input_transform_compiled(case):
    x, w, bias, pads, block, tile = case
    xb, _, _ = winograd_pieces(*case)
    check_compiled(one_node("WinogradInput", xb, [], {"pads": pads, "tile": tile}), xb)


@SETTINGS
@given(winograd_convs())
def test_output_transform_compiled(case):
    x, w, bias, pads, block, tile = case
    xb, size, _ = winograd_pieces(*case)
    product = np.matmul(run_op("WinogradInput", [xb], {"pads": pads, "tile": tile}), transform_weight(w, tile))
    constants = [bias.reshape(-1, block)] if bias is not None else []
    check_compiled(one_node("WinogradOutput", product, constants, {"size": size, "tile": tile, "block": block}),
                   product)


@pytest.mark.parametrize("op, shape, attrs, reason", [
    ("WinogradInput", (1, 2, 2, 6, 4), {"pads": [0, 0, 0, 0], "tile": 2}, "must be positive"),
    ("WinogradInput", (1, 2, 6, 6, 4), {"pads": [0, 0, 0, 0], "tile": 3}, "tile 3 is not supported"),
    ("WinogradOutput", (36, 4, 8), {"size": [4, 4], "tile": 2, "block": 4}, "M must be"),
    ("WinogradOutput", (9, 4, 8), {"size": [4, 4], "tile": 2, "block": 4}, "M must be"),
    ("WinogradOutput", (16, 3, 8), {"size": [4, 4], "tile": 2, "block": 4}, "whole number"),
])
def test_bad_shapes_are_refused_with_the_reason(op, shape, attrs, reason):
    graph = Graph("g")
    x = graph.add_input("x", TensorType("float32", shape))
    with pytest.raises(EmberError, match=reason):
        graph.add_node(op, [x], attrs)
