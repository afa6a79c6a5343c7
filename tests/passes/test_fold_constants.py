"""fold_constants: constant subgraphs become constants."""

import numpy as np

from ember.ir import parse
from ember.passes import FoldConstants
from tests.passes.check import check_rewrite, run


def test_folds_a_chain_of_constant_nodes():
    check_rewrite(FoldConstants(), """
    graph g(%x: f32[2]) {
      %c: f32[2] = const [1.0, 4.0]
      %s: f32[2] = Sqrt(%c)
      %t: f32[2] = Add(%s, %s)
      %y: f32[2] = Mul(%x, %t)
      return %y
    }""", """
    graph g(%x: f32[2]) {
      %t: f32[2] = const [2.0, 4.0]
      %y: f32[2] = Mul(%x, %t)
      return %y
    }""")


def test_folds_weight_transposes_and_reshapes():
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    result = check_rewrite(FoldConstants(), """
    graph g(%x: f32[4,3]) {
      %w: f32[2,3] = const [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
      %t: f32[3,2] = Transpose(%w)
      %r: f32[3,2,1] = Reshape(%t) {shape=[3, 2, 1]}
      %f: f32[3,2] = Squeeze(%r) {axes=[2]}
      %y: f32[4,2] = MatMul(%x, %f)
      return %y
    }""", """
    graph g(%x: f32[4,3]) {
      %f: f32[3,2] = const [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
      %y: f32[4,2] = MatMul(%x, %f)
      return %y
    }""")
    folded = result.nodes[0].inputs[1].data
    assert folded.flags.c_contiguous and np.array_equal(folded, w.T)


def test_multi_output_nodes_fold_every_output():
    check_rewrite(FoldConstants(), """
    graph g(%x: f32[2]) {
      %c: f32[4] = const [1.0, 2.0, 3.0, 4.0]
      %a: f32[2], %b: f32[2] = Split(%c) {num_outputs=2}
      %s: f32[2] = Sub(%a, %b)
      %y: f32[2] = Add(%x, %s)
      return %y
    }""", """
    graph g(%x: f32[2]) {
      %s: f32[2] = const splat(-2.0)
      %y: f32[2] = Add(%x, %s)
      return %y
    }""")


def test_a_folded_graph_output_keeps_its_name():
    result = check_rewrite(FoldConstants(), """
    graph g(%x: f32[2]) {
      %c: f32[2] = const [1.0, 4.0]
      %s: f32[2] = Sqrt(%c)
      %y: f32[2] = Relu(%x)
      return %y, %s
    }""", """
    graph g(%x: f32[2]) {
      %s: f32[2] = const [1.0, 2.0]
      %y: f32[2] = Relu(%x)
      return %y, %s
    }""")
    assert [v.name for v in result.outputs] == ["y", "s"]


def test_large_growing_outputs_are_not_materialized():
    before = """
    graph g(%x: f32[64,64]) {
      %c: f32[1] = const [2.0]
      %e: f32[64,64] = Expand(%c) {shape=[64, 64]}
      %w: f32[64,64] = const splat(1.0)
      %t: f32[64,64] = Transpose(%w)
      %y: f32[64,64] = Mul(%x, %e)
      %z: f32[64,64] = Add(%y, %t)
      return %z
    }"""
    result, stats = run(FoldConstants(max_elements=1000), parse(before))
    # The Expand grows 1 element into 4096 and stays; the same-size Transpose folds anyway.
    assert [n.op for n in result.nodes] == ["Expand", "Mul", "Add"]
    assert stats[0]["rewrites"] == 1
    check_rewrite(FoldConstants(), before, """
    graph g(%x: f32[64,64]) {
      %e: f32[64,64] = const splat(2.0)
      %t: f32[64,64] = const splat(1.0)
      %y: f32[64,64] = Mul(%x, %e)
      %z: f32[64,64] = Add(%y, %t)
      return %z
    }""")


def test_a_node_whose_reference_fails_is_left_to_fail_at_run_time():
    before = parse("""
    graph g(%x: f32[3]) {
      %d: f32[3] = const [1.0, 2.0, 3.0]
      %i: i64[1] = const [7]
      %bad: f32[1] = Gather(%d, %i)
      %y: f32[3] = Add(%x, %bad)
      return %y
    }""")
    result, stats = run(FoldConstants(), before)
    assert [n.op for n in result.nodes] == ["Gather", "Add"] and stats[0]["rewrites"] == 0


def test_nothing_to_fold_changes_nothing():
    check_rewrite(FoldConstants(), """
    graph g(%x: f32[2]) {
      %c: f32[2] = const [1.0, 4.0]
      %y: f32[2] = Mul(%x, %c)
      return %y
    }""")
