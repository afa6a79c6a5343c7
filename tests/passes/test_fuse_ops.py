"""Operator fusion: which groups form, that Fused nodes compute the same, one kernel per group."""

import json

import numpy as np
import pytest

import ember
from ember.examples import resolve_model
from ember.ir import parse
from ember.passes import FoldBatchNorm, FuseOps
from tests.models import light_model, randomize_weights, strip_final_softmax
from tests.passes.check import check_rewrite, run


def body(text: str) -> str:
    """A body attribute as the IR text writes it (a JSON string of the group's graph)."""
    return json.dumps(str(parse(text)))


CONV_EPILOGUE = """
graph g(%x: f32[1,3,8,8], %r: f32[1,4,8,8]) {
  %w: f32[4,3,3,3] = const splat(0.1)
  %b: f32[4] = const [0.1, 0.2, 0.3, 0.4]
  %c: f32[1,4,8,8] = Conv(%x, %w, %b) {pads=[1, 1, 1, 1]}
  %a: f32[1,4,8,8] = Add(%c, %r)
  %y: f32[1,4,8,8] = Relu(%a)
  return %y
}"""

CONV_EPILOGUE_FUSED = """
graph g(%x: f32[1,3,8,8], %r: f32[1,4,8,8]) {
  %w: f32[4,3,3,3] = const splat(0.1)
  %b: f32[4] = const [0.1, 0.2, 0.3, 0.4]
  %y: f32[1,4,8,8] = Fused(%x, %w, %b, %r) {body=BODY}
  return %y
}""".replace("BODY", body("""graph fused(%in0: f32[1,3,8,8], %in1: f32[4,3,3,3], %in2: f32[4], %in3: f32[1,4,8,8]) {
  %t0: f32[1,4,8,8] = Conv(%in0, %in1, %in2) {pads=[1, 1, 1, 1]}
  %t1: f32[1,4,8,8] = Add(%t0, %in3)
  %t2: f32[1,4,8,8] = Relu(%t1)
  return %t2
}"""))


def test_conv_takes_its_epilogue():
    check_rewrite(FuseOps(), CONV_EPILOGUE, CONV_EPILOGUE_FUSED, rtol=1e-6, atol=1e-6)


def test_a_value_read_twice_joins_when_its_paths_meet_again():
    before = """
    graph g(%x: f32[4]) {
      %a: f32[4] = Exp(%x)
      %b: f32[4] = Relu(%a)
      %c: f32[4] = Sigmoid(%a)
      %y: f32[4] = Add(%b, %c)
      return %y
    }"""
    after = """
    graph g(%x: f32[4]) {
      %y: f32[4] = Fused(%x) {body=BODY}
      return %y
    }""".replace("BODY", body("""graph fused(%in0: f32[4]) {
      %t0: f32[4] = Exp(%in0)
      %t1: f32[4] = Relu(%t0)
      %t2: f32[4] = Sigmoid(%t0)
      %t3: f32[4] = Add(%t1, %t2)
      return %t3
    }"""))
    check_rewrite(FuseOps(), before, after)


def test_a_value_whose_readers_part_ways_ends_the_group():
    before = """
    graph g(%x: f32[4]) {
      %a: f32[4] = Exp(%x)
      %b: f32[4] = Relu(%a)
      %c: f32[4] = Sigmoid(%a)
      return %b, %c
    }"""
    check_rewrite(FuseOps(), before, None)


def test_a_path_out_of_the_group_and_back_would_be_a_cycle():
    # %a -> MaxPool -> %y: the Add may not join Exp's group (the Fused node would read its own
    # result through the pool), so Exp stays alone and the Add takes only the Relu
    before = """
    graph g(%x: f32[1,1,4,4]) {
      %a: f32[1,1,4,4] = Exp(%x)
      %b: f32[1,1,4,4] = Relu(%a)
      %p: f32[1,1,4,4] = MaxPool(%a) {kernel_shape=[1, 1]}
      %y: f32[1,1,4,4] = Add(%b, %p)
      return %y
    }"""
    after = """
    graph g(%x: f32[1,1,4,4]) {
      %a: f32[1,1,4,4] = Exp(%x)
      %p: f32[1,1,4,4] = MaxPool(%a) {kernel_shape=[1, 1]}
      %y: f32[1,1,4,4] = Fused(%a, %p) {body=BODY}
      return %y
    }""".replace("BODY", body("""graph fused(%in0: f32[1,1,4,4], %in1: f32[1,1,4,4]) {
      %t0: f32[1,1,4,4] = Relu(%in0)
      %t1: f32[1,1,4,4] = Add(%t0, %in1)
      return %t1
    }"""))
    check_rewrite(FuseOps(), before, after)


GELU_AFTER_MATMUL = """
graph g(%x: f32[8,16]) {
  %w: f32[16,24] = const splat(0.05)
  %b: f32[24] = const splat(0.1)
  %m: f32[8,24] = MatMul(%x, %w)
  %h: f32[8,24] = Add(%m, %b)
  %s: f32[] = const splat(1.4142135)
  %d: f32[8,24] = Div(%h, %s)
  %e: f32[8,24] = Erf(%d)
  %one: f32[] = const splat(1.0)
  %p: f32[8,24] = Add(%e, %one)
  %q: f32[8,24] = Mul(%h, %p)
  %half: f32[] = const splat(0.5)
  %y: f32[8,24] = Mul(%q, %half)
  return %y
}"""


def test_an_exact_gelu_joins_its_matrix_product_and_compiles_to_one_kernel():
    graph = parse(GELU_AFTER_MATMUL)
    fused, _ = run([FuseOps()], graph)
    (node,) = fused.nodes
    assert [n.op for n in parse(node.attrs["body"]).nodes] == ["MatMul", "Add", "Div", "Erf", "Add", "Mul", "Mul"]
    ref = ember.reference(graph)
    feeds = ref.random_feeds(seed=1)
    (want,) = ref.run(feeds)
    for target in ("host", "x86-64"):
        mod = ember.compile(graph, target=target)
        assert mod.stats()["kernels"] == 1
        (got,) = mod.run(feeds)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_elementwise_chain_may_end_in_a_reduction_then_take_its_epilogue():
    before = """
    graph g(%x: f32[2,6]) {
      %e: f32[2,6] = Exp(%x)
      %s: f32[2] = ReduceSum(%e) {axes=[1], keepdims=0}
      %y: f32[2] = Log(%s)
      return %y
    }"""
    after = """
    graph g(%x: f32[2,6]) {
      %y: f32[2] = Fused(%x) {body=BODY}
      return %y
    }""".replace("BODY", body("""graph fused(%in0: f32[2,6]) {
      %t0: f32[2,6] = Exp(%in0)
      %t1: f32[2] = ReduceSum(%t0) {axes=[1], keepdims=0}
      %t2: f32[2] = Log(%t1)
      return %t2
    }"""))
    check_rewrite(FuseOps(), before, after, rtol=1e-6)


def test_graph_outputs_and_opaque_ops_are_boundaries():
    before = """
    graph g(%x: f32[1,1,4,4]) {
      %a: f32[1,1,4,4] = Relu(%x)
      %p: f32[1,1,2,2] = MaxPool(%a) {kernel_shape=[2, 2], strides=[2, 2]}
      %q: f32[1,1,2,2] = Sigmoid(%p)
      return %a, %q
    }"""
    check_rewrite(FuseOps(), before, None)


@pytest.mark.parametrize("name", ["resnet50", "inception_v2", "shufflenet"])
def test_fused_models_compute_the_same(name):
    model = strip_final_softmax(randomize_weights(light_model(name)))
    graph = ember.load_graph(model)
    fused, stats = run([FoldBatchNorm(), FuseOps()], graph)
    assert stats[-1]["rewrites"] > 0
    ref = ember.reference(graph)
    feeds = ref.random_feeds(seed=4)
    (want,) = ref.run(feeds)
    (got,) = ember.reference(fused).run(feeds)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_resnet50_conv_bn_relu_add_is_one_kernel_each():
    mod = ember.compile(resolve_model("light:resnet50"), opt_level=3)
    bodies = [parse(n.attrs["body"]) for n in mod.graph.nodes if n.op == "Fused"]
    residual = (["Conv", "Sum", "Relu"], ["ConvNCHWc", "Sum", "Relu"])  # plain or blocked layout
    residual_blocks = [b for b in bodies if [n.op for n in b.nodes] in residual]
    assert len(residual_blocks) == 16  # the last conv of each bottleneck, its shortcut add and relu
    assert all(n.op != "BatchNormalization" for n in mod.graph.nodes)
    unfused = ember.compile(resolve_model("light:resnet50"), opt_level=2)
    winograd = sum(n.op == "WinogradInput" for n in mod.graph.nodes)  # a conv as three kernels
    assert mod.stats()["kernels"] - 2 * winograd < unfused.stats()["kernels"] / 2
