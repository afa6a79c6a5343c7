"""pack_weights: MatMuls with a constant B read it packed at compile time, and compute the same."""

import numpy as np
import pytest
from ember.codegen.target import Target
from ember.ir import Graph, TensorType
from ember.ir.ops.fused import body_graph
from ember.ir.ops.matmul_packed import pack_gemm_weight, unpack_gemm_weight
from ember.passes import PackWeights, pipeline
from ember.runtime.reference import ReferenceModule

import ember
from tests.ops.harness import COMPILE_TARGETS, assert_same
from tests.passes.check import assert_same_values, run

TOL = {"rtol": 1e-5, "atol": 1e-5}


def matmul_graph(a_shape, b_shape, constant_b=True, seed=0) -> Graph:
    rng = np.random.default_rng(seed)
    graph = Graph("g")
    a = graph.add_input("a", TensorType("float32", a_shape))
    b = graph.add_constant(rng.uniform(-1, 1, b_shape).astype(np.float32), "w") if constant_b else \
        graph.add_input("b", TensorType("float32", b_shape))
    (y,) = graph.add_node("MatMul", [a, b]).outputs
    (y,) = graph.add_node("Relu", [y]).outputs
    graph.set_outputs([y])
    return graph


@pytest.mark.parametrize("shape", [(8, 5), (3, 4, 7), (2, 3, 6, 9)])
def test_packing_round_trips(shape):
    b = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    for panel in (1, 4, 8):
        packed = pack_gemm_weight(b, panel)
        assert packed.shape == (*shape[:-2], -(-shape[-1] // panel), shape[-2], panel)
        np.testing.assert_array_equal(unpack_gemm_weight(packed, shape[-1]), b)


@pytest.mark.parametrize("a_shape, b_shape", [((12, 16), (16, 37)), ((2, 12, 16), (16, 40)),
                                               ((3, 12, 16), (3, 16, 24))])
def test_constant_weights_are_packed_once_at_compile_time(a_shape, b_shape):
    before = matmul_graph(a_shape, b_shape)
    after, _ = run(PackWeights(target=Target.named("x86-64-v3")), matmul_graph(a_shape, b_shape))
    assert [n.op for n in after.nodes] == ["MatMulPacked", "Relu"]
    packed = after.nodes[0].inputs[1]
    assert packed.is_constant and packed.type.shape[-1] in (8, 16, 24, 32)
    assert after.nodes[0].attrs["columns"] == b_shape[-1]
    assert_same_values(before, after, **TOL)


@pytest.mark.parametrize("a_shape, b_shape, constant", [
    ((12, 16), (16, 8), False),        # B is computed
    ((2, 16), (16, 8), True),          # too few rows for a packed product
    ((2, 12, 16), (3, 1, 16, 8), True),  # B broadcasts batch dims A does not have
    ((16,), (16, 8), True),            # a vector
])
def test_other_matmuls_are_left_alone(a_shape, b_shape, constant):
    after, _ = run(PackWeights(target=Target.named("x86-64")), matmul_graph(a_shape, b_shape, constant))
    assert [n.op for n in after.nodes] == ["MatMul", "Relu"]


def test_no_target_no_change():
    after, _ = run(PackWeights(), matmul_graph((12, 16), (16, 8)))
    assert [n.op for n in after.nodes] == ["MatMul", "Relu"]
    assert [p for p in pipeline(3, Target.named("x86-64")) if p.name == "pack_weights"][0].target is not None


@pytest.mark.parametrize("target", COMPILE_TARGETS)
@pytest.mark.parametrize("a_shape, b_shape", [((37, 53), (53, 29)), ((2, 30, 300), (300, 19))])
def test_compiled_packed_products_match_numpy(target, a_shape, b_shape):
    graph = matmul_graph(a_shape, b_shape)
    mod = ember.compile(graph, target=target)
    fused = [n for n in mod.graph.nodes if n.op == "Fused"]
    assert [n.op for n in body_graph(fused[0].attrs).nodes] == ["MatMulPacked", "Relu"]
    a = np.random.default_rng(1).uniform(-1, 1, a_shape).astype(np.float32)
    (expected,) = ReferenceModule(graph).run({"a": a})
    (actual,) = mod.run({"a": a})
    assert_same(actual, expected, what=f"MatMulPacked ({target})", rtol=1e-4, atol=1e-4)
