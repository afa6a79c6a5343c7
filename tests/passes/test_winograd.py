"""winograd: which blocked convolutions become Winograd transforms around a MatMul, and that they compute the same."""

import numpy as np
import pytest
from ember.codegen.target import Target
from ember.ir import Graph, TensorType
from ember.ir.ops.fused import body_graph
from ember.passes import BlockedLayout, FuseOps, PassContext, Winograd, pipeline
from ember.runtime.reference import ReferenceModule

import ember
from tests.ops.harness import COMPILE_TARGETS, assert_same
from tests.passes.check import assert_same_values, run

TOL = {"rtol": 1e-4, "atol": 1e-4}


def conv_graph(channels=16, out_channels=16, size=(12, 12), kernel=3, strides=(1, 1), dilations=(1, 1),
               pads=(1, 1, 1, 1), group=1, bias=True, residual=False, seed=0) -> Graph:
    """x -> Conv (+ residual Add) -> Relu, with random constant weights."""
    rng = np.random.default_rng(seed)
    graph = Graph("g")
    x = graph.add_input("x", TensorType("float32", (1, channels, *size)))
    w = graph.add_constant(rng.uniform(-1, 1, (out_channels, channels // group, kernel, kernel)).astype(np.float32), "w")
    inputs = [x, w] + ([graph.add_constant(rng.uniform(-1, 1, out_channels).astype(np.float32), "b")] if bias else [])
    attrs = {"pads": list(pads), "strides": list(strides), "dilations": list(dilations), "group": group,
             "kernel_shape": [kernel, kernel]}
    (y,) = graph.add_node("Conv", inputs, attrs).outputs
    if residual:
        (y,) = graph.add_node("Add", [y, x]).outputs
    (y,) = graph.add_node("Relu", [y]).outputs
    graph.set_outputs([y])
    return graph


def rewritten(graph: Graph, block: int = 8, **options) -> Graph:
    result, _ = run([BlockedLayout(block=block), Winograd(**options)], graph)
    return result


@pytest.mark.parametrize("size", [(12, 12), (11, 13), (16, 8)])
def test_3x3_convs_become_transforms_around_a_matmul(size):
    before = conv_graph(size=size)
    after = rewritten(conv_graph(size=size))
    assert [n.op for n in after.nodes] == ["ToBlocked", "WinogradInput", "MatMul", "WinogradOutput", "Relu",
                                           "FromBlocked"]
    v, product, y = after.nodes[1:4]
    tiles = -(-size[0] // 2) * -(-size[1] // 2)
    assert v.outputs[0].type.shape == (16, tiles, 16)
    assert product.inputs[1].is_constant and product.inputs[1].type.shape == (16, 16, 16)
    assert tuple(y.attrs["size"]) == size and y.outputs[0].type.shape == (1, 2, *size, 8)
    assert_same_values(before, after, **TOL)


@pytest.mark.parametrize("change", [
    {"strides": (2, 2)}, {"dilations": (2, 2), "pads": (2, 2, 2, 2)}, {"kernel": 1, "pads": (0, 0, 0, 0)},
    {"kernel": 5, "pads": (2, 2, 2, 2)}, {"channels": 8}, {"out_channels": 8}, {"size": (4, 4)},
    {"group": 16},
])
def test_convs_it_does_not_pay_for_stay_direct(change):
    after = rewritten(conv_graph(**change))
    assert "ConvNCHWc" in [n.op for n in after.nodes]
    assert "MatMul" not in [n.op for n in after.nodes]


def test_thresholds_are_options():
    after = rewritten(conv_graph(channels=8, out_channels=8, size=(4, 4)), min_channels=8, min_tiles=4)
    assert "WinogradInput" in [n.op for n in after.nodes]


def test_large_planes_take_the_large_tile_when_asked():
    before = conv_graph(size=(8, 9))
    after = rewritten(conv_graph(size=(8, 9)), large_from=8)
    v, product, y = after.nodes[1:4]
    assert v.attrs["tile"] == y.attrs["tile"] == 4 and v.outputs[0].type.shape == (36, 2 * 3, 16)
    assert product.inputs[1].type.shape == (36, 16, 16)
    assert_same_values(before, after, **TOL)
    assert rewritten(conv_graph(size=(8, 9)), large_from=10).nodes[1].attrs["tile"] == 2


def test_convs_sharing_a_weight_share_its_transform():
    graph = conv_graph()
    (y,) = graph.outputs
    w, b = graph.nodes[0].inputs[1:]
    (again,) = graph.add_node("Conv", [y, w, b], {"pads": [1, 1, 1, 1], "kernel_shape": [3, 3]}).outputs
    graph.set_outputs([again])
    after = rewritten(graph)
    products = [n for n in after.nodes if n.op == "MatMul"]
    assert len(products) == 2 and products[0].inputs[1] is products[1].inputs[1]


def test_bias_residual_and_relu_fuse_into_the_output_transform():
    before = conv_graph(residual=True)
    after, _ = run([BlockedLayout(block=8), Winograd(), FuseOps()], conv_graph(residual=True))
    ops = [n.op for n in after.nodes]
    assert ops == ["ToBlocked", "WinogradInput", "MatMul", "Fused", "FromBlocked"]
    assert [n.op for n in body_graph(after.nodes[3].attrs).nodes] == ["WinogradOutput", "Add", "Relu"]
    assert_same_values(before, after, **TOL)


@pytest.mark.parametrize("size", [(12, 12), (13, 11)])
def test_compiled_pipeline_matches_the_reference(size):
    graph = conv_graph(size=size, residual=True)
    (x,) = graph.inputs
    feeds = {"x": np.random.default_rng(1).uniform(-1, 1, x.type.shape).astype(np.float32)}
    (expected,) = ReferenceModule(graph).run(feeds)
    for target in COMPILE_TARGETS:
        optimized = PassContext(opt_level=3, target=Target.named(target) if target != "host" else Target.host())
        assert "WinogradInput" in [n.op for n in optimized.run(conv_graph(size=size, residual=True)).nodes]
        (actual,) = ember.compile(graph, target=target).run(feeds)
        assert_same(actual, expected, what=f"winograd conv ({target})", **TOL)


def test_the_pipeline_runs_it_after_layout_at_opt_3():
    names = [p.name for p in pipeline(3)]
    assert names.index("layout") < names.index("winograd") < names.index("fuse_ops")
    assert "winograd" not in [p.name for p in pipeline(2)]
