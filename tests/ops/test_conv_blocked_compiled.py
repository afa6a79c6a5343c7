"""The blocked-layout ops (ToBlocked, FromBlocked, PackConvWeight, ConvNCHWc) compiled, against their references.

ConvNCHWc's reference is checked against the plain Conv's (which the Conv tests
check against onnxruntime); the compiled kernels against the reference on
this CPU and on plain x86-64 (SSE2 only).
"""

from __future__ import annotations

import numpy as np
import pytest
from ember.ir import Graph, TensorType
from ember.ir.loops.knobs import Knobs
from ember.ir.ops import get_op
from ember.ir.ops.conv_blocked import default_register_tile
from ember.ir.ops.layout import (
    from_blocked,
    pack_conv_weight,
    to_blocked,
    unpack_conv_weight,
)
from ember.runtime.reference import ReferenceModule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ember
from tests.helpers import statements
from tests.ops.harness import COMPILE_TARGETS, assert_same

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
TOL = {"rtol": 1e-4, "atol": 1e-4}


def one_node(op: str, x: np.ndarray, constants: list[np.ndarray], attrs: dict) -> Graph:
    """A graph applying ``op`` to the input ``x`` and the constants."""
    graph = Graph("g")
    inputs = [graph.add_input("x", TensorType.of(x))] + [graph.add_constant(c, f"c{i}") for i, c in enumerate(constants)]
    graph.set_outputs(graph.add_node(op, inputs, attrs).outputs)
    return graph


def check_compiled_graph(graph: Graph, x: np.ndarray, targets=COMPILE_TARGETS) -> np.ndarray:
    """Compile ``graph`` (no graph passes) for each target; assert it matches the reference."""
    (expected,) = ReferenceModule(graph).run({"x": x})
    for target in targets:
        (actual,) = ember.compile(graph, target=target, opt_level=0).run({"x": x})
        assert_same(actual, expected, what=f"{graph.nodes[-1].op} ({target})", **TOL)
    return expected


@st.composite
def blocked_convs(draw):
    """(x NCHW, w OIHW, bias or None, attrs, in block, out block) of a conv ConvNCHWc supports:
    ungrouped, depthwise, or in groups of whole blocks of input and output channels."""
    kind = draw(st.sampled_from(["plain", "depthwise", "grouped"]))
    out_block = draw(st.sampled_from([4, 8]))
    if kind == "depthwise":
        in_block = out_block
        channels = out_block * draw(st.integers(1, 2))
        out_channels, per_group, group = channels, 1, channels
    else:
        group = draw(st.integers(2, 3)) if kind == "grouped" else 1
        in_block = draw(st.sampled_from([1, 2, 3, 4, 8]))
        per_group = in_block * draw(st.integers(1, 3))
        channels, out_channels = per_group * group, out_block * draw(st.integers(1, 2)) * group
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    strides = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    dilations = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    spatial = [max(1, e - pads[i] - pads[i + 2]) + draw(st.integers(0, 7)) for i, e in enumerate(extent)]
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.uniform(-1, 1, (draw(st.integers(1, 2)), channels, *spatial)).astype(np.float32)
    w = rng.uniform(-1, 1, (out_channels, per_group, *kernel)).astype(np.float32)
    bias = rng.uniform(-1, 1, out_channels).astype(np.float32) if draw(st.booleans()) else None
    attrs = {"pads": pads, "strides": strides, "dilations": dilations, "group": group}
    return x, w, bias, attrs, in_block, out_block


def blocked_graph(x, w, bias, attrs, in_block, out_block) -> tuple[Graph, np.ndarray]:
    """The ConvNCHWc node of a conv, and its blocked input."""
    packed = pack_conv_weight(w, 1 if attrs["group"] == x.shape[1] > 1 else in_block, out_block)
    constants = [packed] + ([bias.reshape(-1, out_block)] if bias is not None else [])
    return one_node("ConvNCHWc", to_blocked(x, in_block), constants, attrs), to_blocked(x, in_block)


@SETTINGS
@given(case=blocked_convs())
def test_reference_is_the_plain_conv(case):
    x, w, bias, attrs, *_ = case
    graph, xb = blocked_graph(*case)
    (blocked,) = ReferenceModule(graph).run({"x": xb})
    conv = get_op("Conv")
    (plain,) = conv.run_reference([x, w] + ([bias] if bias is not None else []), conv.normalize_attrs(attrs))
    np.testing.assert_allclose(from_blocked(blocked), plain, rtol=1e-6, atol=1e-6)


@SETTINGS
@given(case=blocked_convs(), target=st.sampled_from(COMPILE_TARGETS))
def test_conv_nchwc_compiled(case, target):
    graph, xb = blocked_graph(*case)
    check_compiled_graph(graph, xb, targets=[target])


@pytest.mark.parametrize("strides, pads", [([2, 2], [0, 0, 0, 0]), ([2, 1], [0, 0, 0, 0]), ([3, 2], [1, 0, 1, 1])])
@pytest.mark.parametrize("target", COMPILE_TARGETS)
def test_strided_1x1_conv_reads_a_subsampled_copy(strides, pads, target):
    """A strided 1x1 kernel first gathers the positions it reads (with any padding) into a copy."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (2, 8, 9, 7)).astype(np.float32)
    w = rng.uniform(-1, 1, (8, 8, 1, 1)).astype(np.float32)
    attrs = {"pads": pads, "strides": strides, "dilations": [1, 1], "group": 1}
    graph, xb = blocked_graph(x, w, rng.uniform(-1, 1, 8).astype(np.float32), attrs, 4, 4)
    check_compiled_graph(graph, xb, targets=[target])


@pytest.mark.parametrize("config", [{"tile_ow": 4, "order": "kh_kw_ic", "unroll_ic": True}, {"tile_ow": 8, "tile_oc": 2},
                                    {"tile_ow": 5, "tile_oc": 2, "outer": "oh"}, {"tile_ow": 2, "outer": "oc"},
                                    {"ic_block": 1, "tile_ow": 5}])
def test_conv_nchwc_other_schedules(config):
    """Non-default knobs (a ragged ow tile, the other reduction order, unrolled channels, rows along
    the output height first, input channels in blocks summed in the output) compute the same."""
    from ember.codegen.run import compile_kernel
    from ember.codegen.target import Target
    from ember.runtime.build import lower_node

    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (1, 8, 7, 10)).astype(np.float32)
    w = rng.uniform(-1, 1, (8, 8, 3, 3)).astype(np.float32)
    graph, xb = blocked_graph(x, w, None, {"pads": [1, 1, 1, 1], "strides": [1, 1], "dilations": [1, 1],
                                           "group": 1}, 4, 4)
    (expected,) = ReferenceModule(graph).run({"x": xb})
    knobs = Knobs(config)
    kernel = lower_node(graph.nodes[0], Target.host(), "conv", knobs)
    assert {"tile_ow", "order", "unroll_ic", "tile_oc", "outer", "ic_block"} <= set(knobs.space)
    (actual,) = compile_kernel(kernel)(xb, graph.nodes[0].inputs[1].data)
    assert_same(actual, expected, **TOL)


def test_a_1x1_window_has_no_reduction_order_knob():
    """Over a 1x1 window both reduction orders are one loop nest: the space does not offer the choice."""
    from ember.codegen.target import Target
    from ember.runtime.build import lower_node

    rng = np.random.default_rng(6)
    spaces = {}
    for k in (1, 3):
        x = rng.uniform(-1, 1, (1, 8, 7, 10)).astype(np.float32)
        w = rng.uniform(-1, 1, (8, 8, k, k)).astype(np.float32)
        graph, _ = blocked_graph(x, w, None, {"pads": [k // 2] * 4, "strides": [1, 1], "dilations": [1, 1],
                                              "group": 1}, 4, 4)
        knobs = Knobs()
        lower_node(graph.nodes[0], Target.host(), "conv", knobs)
        spaces[k] = set(knobs.space)
    assert spaces[3] - spaces[1] == {"order"} and {"ic_block", "unroll_ic"} <= spaces[1]


def test_a_depthwise_conv_has_no_input_channel_knobs():
    """A depthwise convolution sums over its window only: no input channels to block or unroll."""
    from ember.codegen.target import Target
    from ember.runtime.build import lower_node

    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, (1, 8, 7, 10)).astype(np.float32)
    w = rng.uniform(-1, 1, (8, 1, 3, 3)).astype(np.float32)
    graph, _ = blocked_graph(x, w, None, {"pads": [1] * 4, "strides": [1, 1], "dilations": [1, 1], "group": 8}, 4, 4)
    knobs = Knobs()
    lower_node(graph.nodes[0], Target.host(), "conv", knobs)
    assert set(knobs.space) == {"tile_oc", "tile_ow", "outer"}


@pytest.mark.parametrize("blocks_per_group, options, tile", [(4, (1, 2, 4), 2), (4, (1, 2, 4), 4), (2, (1, 2), 2),
                                                             (3, (1, 3), 1), (3, (1, 3), 3)])
def test_grouped_conv_tiles_channel_blocks_of_one_group(blocks_per_group, options, tile):
    """A register tile's channel blocks are of one group, so they share each broadcast input value:
    the input's index does not depend on the unrolled loop over the tile's blocks."""
    from ember.codegen.target import Target
    from ember.ir.loops import For, Load, Store
    from ember.ir.loops.tensor import walk
    from ember.runtime.build import lower_node

    rng = np.random.default_rng(2)
    group, block = 2, 4
    x = rng.uniform(-1, 1, (1, 8 * group, 6, 6)).astype(np.float32)
    w = rng.uniform(-1, 1, (blocks_per_group * block * group, 8, 3, 3)).astype(np.float32)
    graph, xb = blocked_graph(x, w, None, {"pads": [1, 1, 1, 1], "strides": [1, 1], "dilations": [1, 1],
                                           "group": group}, block, block)
    knobs = Knobs({"tile_oc": tile})
    kernel = lower_node(graph.nodes[0], Target.host(), "conv", knobs)
    assert knobs.space["tile_oc"] == options
    loops = [f for f in statements(kernel.body, For) if f.kind == "unrolled" and "i1.i" in f.var.name]
    assert loops and all(f.extent == tile for f in loops)  # the loops over the tile's channel blocks
    tile_loops = list({id(f.var): f.var for f in loops}.values())
    stores = [s for s in statements(kernel.body, Store) if s.buffer.scope == "local" and "acc" in s.buffer.name]
    input_loads = [e for s in stores for e in walk(s.value) if isinstance(e, Load) and e.buffer.name == "padded"]
    assert input_loads and not any(e is v for v in tile_loops for load in input_loads for e in walk(load.index))
    check_compiled_graph(graph, xb)


@pytest.mark.parametrize("registers", [16, 32])
@pytest.mark.parametrize("width", [1, 3, 7, 13, 14, 27, 28, 55, 56, 111, 112])
@pytest.mark.parametrize("oc_options", [[1, 2, 4], [1, 5], [1, 3]])
def test_shared_input_tile_loads_least_per_useful_multiply_add(width, registers, oc_options):
    """With one broadcast input for every channel block, the default is the tile with the fewest
    loads per useful multiply-add (a ragged last tile's work past the edge counted as wasted)
    among those of at least 8 sums, widths being divisors or powers of two; of tiles costing as
    little, a dividing one, then the most sums, then the fewest channel blocks."""
    from fractions import Fraction

    from ember.ir.loops.knobs import split_options

    tile_oc, tile_ow = default_register_tile(oc_options, width, 1, registers, shared_input=True)
    assert tile_oc * (tile_ow + 1) + 1 <= registers and tile_oc in oc_options

    def cost(oc, ow):
        return Fraction(oc + ow, oc * ow) * Fraction(-(-width // ow) * ow, width)

    enough = [(oc, ow) for oc in oc_options for ow in split_options(width, 32)
              if oc * (ow + 1) + 1 <= registers and oc * ow >= 8]
    if enough:
        assert tile_ow in split_options(width, 32) and tile_oc * tile_ow >= 8
        least = min(cost(oc, ow) for oc, ow in enough)
        assert cost(tile_oc, tile_ow) == least
        ties = [(oc, ow) for oc, ow in enough if cost(oc, ow) == least]
        if any(width % ow == 0 for _, ow in ties):
            assert width % tile_ow == 0
    else:
        assert (tile_oc, tile_ow) == default_register_tile(oc_options, width, 1, registers)


@pytest.mark.parametrize("width, oc_options, tile", [(56, [1, 2, 4], (2, 4)), (28, [1, 2, 4], (2, 4)),
                                                      (7, [1, 2, 4], (2, 4)), (13, [1, 5], (5, 2)),
                                                      (55, [1, 2, 4], (2, 5))])
def test_shared_input_tiles_with_avx2(width, oc_options, tile):
    """The tiles that were measured (AVX2: 16 registers, one vector per channel block): 2 x 4 on
    ResNet's widths, ragged 2 x 4 on 7 (1 x 7 broadcast once per multiply-add), 5 x 2 for a conv
    of 125 blocks on 13 (SqueezeNet's last)."""
    assert default_register_tile(oc_options, width, 1, 16, shared_input=True) == tile


@pytest.mark.parametrize("registers, lanes", [(16, 4), (16, 8), (32, 16)])
@pytest.mark.parametrize("width", [1, 3, 7, 13, 14, 17, 56, 112])
def test_default_register_tile_fits_the_registers(width, registers, lanes):
    """The default tile holds its sums, its weight vectors and a broadcast value in the registers,
    as many sums as the widest such tile, and divides the width unless that loses half of them."""
    tile_oc, tile_ow = default_register_tile([1, 2, 4], width, 1, registers)
    assert tile_oc * (tile_ow + 1) + 1 <= registers and tile_ow <= width
    largest = max(oc * ow for oc in (1, 2, 4) for ow in range(1, min(width, 32) + 1) if oc * (ow + 1) + 1 <= registers)
    assert tile_oc * tile_ow <= largest
    assert width % tile_ow == 0 or 2 * max(oc * ow for oc in (1, 2, 4) for ow in range(1, width + 1)
                                           if width % ow == 0 and oc * (ow + 1) + 1 <= registers) <= tile_oc * tile_ow


def test_conv_epilogue_is_stored_from_the_tile():
    """Conv + bias + residual add + Relu of one image compile to one kernel storing the epilogue of the
    register tile (nothing stores the unfinished sums to memory), with the reference's values."""
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, (1, 16, 6, 6)).astype(np.float32)
    graph = Graph("g")
    xv = graph.add_input("x", TensorType.of(x))
    w = graph.add_constant(rng.uniform(-1, 1, (16, 16, 3, 3)).astype(np.float32), "w")
    b = graph.add_constant(rng.uniform(-1, 1, (16,)).astype(np.float32), "b")
    (conv,) = graph.add_node("Conv", [xv, w, b], {"pads": [1, 1, 1, 1]}).outputs
    (added,) = graph.add_node("Add", [conv, xv]).outputs
    graph.set_outputs(graph.add_node("Relu", [added]).outputs)
    (expected,) = ReferenceModule(graph).run({"x": x})
    module = ember.compile(graph)
    (actual,) = module.run({"x": x})
    assert_same(actual, expected, **TOL)
    text = module.kernels_text()
    assert "conv_acc.acc[" in text and "conv_acc[" not in text  # sums only in the tile, stored as Relu


@pytest.mark.parametrize("shape, block", [((2, 8, 3, 5), 4), ((1, 6, 7), 3), ((1, 16, 2, 2, 2), 8)])
def test_layout_conversions_compiled(shape, block):
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    blocked = check_compiled_graph(one_node("ToBlocked", x, [], {"block": block}), x)
    np.testing.assert_array_equal(blocked, to_blocked(x, block))
    plain = check_compiled_graph(one_node("FromBlocked", blocked, [], {}), blocked)
    np.testing.assert_array_equal(plain, x)


def test_pack_conv_weight_compiled_and_inverse():
    w = np.random.default_rng(2).uniform(-1, 1, (8, 6, 3, 2)).astype(np.float32)
    packed = check_compiled_graph(one_node("PackConvWeight", w, [], {"in_block": 3, "out_block": 4}), w)
    assert packed.shape == (2, 2, 3, 2, 3, 4)
    assert packed[1, 0, 2, 1, 2, 3] == w[1 * 4 + 3, 0 * 3 + 2, 2, 1]
    np.testing.assert_array_equal(unpack_conv_weight(packed), w)


@pytest.mark.parametrize("shapes, attrs, reason", [
    ([(1, 2, 5, 5, 4), (2, 3, 3, 3, 4, 4)], {"group": 1}, "does not match"),
    ([(1, 2, 5, 5, 4), (2, 1, 3, 3, 1, 4)], {"group": 4}, "does not divide"),  # a group of half a block
    ([(1, 4, 5, 5, 4), (4, 1, 3, 3, 4, 4)], {"group": 2}, "in 2 groups"),  # groups of 8 channels, W of 4
    ([(1, 2, 5, 5, 4), (2, 1, 3, 3, 1, 2)], {"group": 8}, "a depthwise W must be"),
    ([(1, 2, 5, 5, 4), (2, 2, 3, 3, 4, 4), (4, 2)], {"group": 1}, "B has shape"),
])
def test_conv_nchwc_rejects_mismatched_operands(shapes, attrs, reason):
    from ember.ir.errors import ShapeError

    types = [TensorType("float32", s) for s in shapes]
    full = {"pads": [0, 0, 0, 0], "strides": [1, 1], "dilations": [1, 1], **attrs}
    with pytest.raises(ShapeError, match=reason):
        get_op("ConvNCHWc").infer_types(types, get_op("ConvNCHWc").normalize_attrs(full))


@pytest.mark.parametrize("target", COMPILE_TARGETS)
def test_fused_residual_epilogue_compiled(target):
    """ConvNCHWc + bias + residual Add + Relu compile to one kernel, the epilogue applied to its tiles."""
    rng = np.random.default_rng(9)
    x = to_blocked(rng.uniform(-1, 1, (1, 8, 9, 11)).astype(np.float32), 4)
    graph = Graph("g")
    xb, residual = graph.add_input("x", TensorType.of(x)), graph.add_input("r", TensorType.of(x))
    w = graph.add_constant(pack_conv_weight(rng.uniform(-1, 1, (8, 8, 3, 3)).astype(np.float32), 4, 4), "w")
    b = graph.add_constant(rng.uniform(-1, 1, (2, 4)).astype(np.float32), "b")
    conv = graph.add_node("ConvNCHWc", [xb, w, b], {"pads": [1, 1, 1, 1], "strides": [1, 1], "dilations": [1, 1]})
    added = graph.add_node("Add", [conv.outputs[0], residual])
    graph.set_outputs(graph.add_node("Relu", added.outputs).outputs)
    feeds = {"x": x, "r": rng.uniform(-1, 1, x.shape).astype(np.float32)}
    (expected,) = ReferenceModule(graph).run(feeds)
    module = ember.compile(graph, target=target, opt_level=3)
    assert [n.op for n in module.graph.nodes] == ["Fused"]
    (actual,) = module.run(feeds)
    assert_same(actual, expected, **TOL)
