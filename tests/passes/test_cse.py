"""cse: identical constants and identical nodes are computed once."""

from ember.ir import parse
from ember.passes import CSE, DeadCode
from tests.passes.check import check_rewrite, run


def test_merges_equal_constants_then_the_nodes_that_became_equal():
    check_rewrite(CSE(), """
    graph g(%x: f32[4]) {
      %w1: f32[4] = const splat(2.0)
      %w2: f32[4] = const splat(2.0)
      %a: f32[4] = Mul(%x, %w1)
      %b: f32[4] = Mul(%x, %w2)
      %c: f32[4] = Add(%a, %b)
      return %c
    }""", """
    graph g(%x: f32[4]) {
      %w: f32[4] = const splat(2.0)
      %a: f32[4] = Mul(%x, %w)
      %c: f32[4] = Add(%a, %a)
      return %c
    }""")


def test_constants_differing_in_dtype_shape_or_bits_stay_apart():
    check_rewrite(CSE(), """
    graph g(%x: f32[2], %i: i32[2]) {
      %a: f32[2] = const [0.0, 1.0]
      %b: f32[2] = const [-0.0, 1.0]
      %c: f32[1,2] = const [0.0, 1.0]
      %d: i32[2] = const [0, 1]
      %p: f32[2] = Add(%x, %a)
      %q: f32[2] = Add(%x, %b)
      %r: f32[1,2] = Add(%x, %c)
      %s: i32[2] = Add(%i, %d)
      return %p, %q, %r, %s
    }""")


def test_attributes_and_operand_order_matter():
    check_rewrite(CSE(), """
    graph g(%x: f32[2], %z: f32[2]) {
      %a: f32[2] = LeakyRelu(%x) {alpha=0.1}
      %b: f32[2] = LeakyRelu(%x) {alpha=0.2}
      %c: f32[2] = Sub(%x, %z)
      %d: f32[2] = Sub(%z, %x)
      %e: f32[2] = Sum(%a, %b, %c, %d)
      return %e
    }""")


def test_merges_whole_chains_and_multi_output_nodes():
    check_rewrite([CSE(), DeadCode()], """
    graph g(%x: f32[4]) {
      %a1: f32[2], %b1: f32[2] = Split(%x) {num_outputs=2}
      %a2: f32[2], %b2: f32[2] = Split(%x) {num_outputs=2}
      %r1: f32[2] = Relu(%b1)
      %r2: f32[2] = Relu(%b2)
      %y: f32[2] = Mul(%r1, %r2)
      %z: f32[2] = Add(%a1, %a2)
      return %y, %z
    }""", """
    graph g(%x: f32[4]) {
      %a: f32[2], %b: f32[2] = Split(%x) {num_outputs=2}
      %r: f32[2] = Relu(%b)
      %y: f32[2] = Mul(%r, %r)
      %z: f32[2] = Add(%a, %a)
      return %y, %z
    }""")


def test_two_graph_outputs_keep_their_names():
    # Merging %p into %q would leave one value for two output names: CSE keeps both.
    check_rewrite(CSE(), """
    graph g(%x: f32[2]) {
      %p: f32[2] = Relu(%x)
      %q: f32[2] = Relu(%x)
      return %p, %q
    }""")
    # One output and one internal value: the kept node takes the output's name.
    result, stats = run(CSE(), parse("""
    graph g(%x: f32[2]) {
      %p: f32[2] = Relu(%x)
      %q: f32[2] = Relu(%x)
      %r: f32[2] = Exp(%p)
      return %q, %r
    }"""))
    assert str(result).splitlines()[1:3] == ["  %q: f32[2] = Relu(%x)", "  %r: f32[2] = Exp(%q)"]
    assert stats[0]["rewrites"] == 1
