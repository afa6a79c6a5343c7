"""dead_code: nodes no output depends on disappear."""

from ember.ir import parse
from ember.passes import DeadCode
from tests.passes.check import check_rewrite, run


def test_removes_unused_chains_and_their_constants():
    check_rewrite(DeadCode(), """
    graph g(%x: f32[2]) {
      %c: f32[2] = const [1.0, 4.0]
      %a: f32[2] = Mul(%x, %c)
      %b: f32[2] = Relu(%a)
      %y: f32[2] = Exp(%x)
      return %y
    }""", """
    graph g(%x: f32[2]) {
      %y: f32[2] = Exp(%x)
      return %y
    }""")


def test_keeps_a_multi_output_node_while_one_output_is_used_and_unused_inputs():
    check_rewrite(DeadCode(), """
    graph g(%x: f32[4], %unused: f32[3]) {
      %a: f32[2], %b: f32[2] = Split(%x) {num_outputs=2}
      %y: f32[2] = Relu(%b)
      return %y
    }""")


def test_counts_one_rewrite_per_removed_node():
    graph = parse("""
    graph g(%x: f32[2]) {
      %a: f32[2] = Relu(%x)
      %b: f32[2] = Relu(%a)
      %y: f32[2] = Exp(%x)
      return %y, %x
    }""")
    result, stats = run(DeadCode(), graph)
    assert [n.op for n in result.nodes] == ["Exp"]
    assert stats[0]["rewrites"] == 2 and (stats[0]["nodes_before"], stats[0]["nodes_after"]) == (3, 1)
