"""layout: convolutions in NCHW[x]c, the blocked layout flowing between them, conversions at the edges.

Weights are splats, so their packed forms are splats of the packed shapes.
"""

import pytest
from ember.codegen.target import Target
from ember.ir import parse
from ember.ir.ops.fused import body_graph
from ember.passes import BlockedLayout, FuseOps, PassContext, pipeline

from tests.passes.check import check_rewrite, run

TOL = {"rtol": 1e-6, "atol": 1e-6}
CONV = "pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1]"
POINT = "pads=[0, 0, 0, 0], strides=[1, 1], dilations=[1, 1]"


def test_conv_chain_converts_only_at_the_edges():
    check_rewrite(BlockedLayout(block=4), """
    graph g(%x: f32[1,3,6,6]) {
      %w: f32[8,3,3,3] = const splat(0.1)
      %b: f32[8] = const [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
      %c: f32[1,8,6,6] = Conv(%x, %w, %b) {pads=[1, 1, 1, 1]}
      %r: f32[1,8,6,6] = Relu(%c)
      %w2: f32[4,8,1,1] = const splat(0.5)
      %y: f32[1,4,6,6] = Conv(%r, %w2)
      return %y
    }""", f"""
    graph g(%x: f32[1,3,6,6]) {{
      %w: f32[2,1,3,3,3,4] = const splat(0.1)
      %b: f32[2,4] = const [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
      %w2: f32[1,2,1,1,4,4] = const splat(0.5)
      %xb: f32[1,1,6,6,3] = ToBlocked(%x) {{block=3}}
      %c: f32[1,2,6,6,4] = ConvNCHWc(%xb, %w, %b) {{{CONV}}}
      %r: f32[1,2,6,6,4] = Relu(%c)
      %yb: f32[1,1,6,6,4] = ConvNCHWc(%r, %w2) {{{POINT}}}
      %y: f32[1,4,6,6] = FromBlocked(%yb)
      return %y
    }}""", **TOL)


def test_residual_add_and_per_channel_constants_stay_blocked():
    """A plain operand of the full shape is converted; a [C,1,1] constant is blocked at compile time;
    a value that is both a graph output and a conv input is converted for the output alone; a weight
    two convs share is packed once."""
    check_rewrite(BlockedLayout(block=4), """
    graph g(%x: f32[1,4,5,5], %s: f32[1,4,5,5]) {
      %w: f32[4,4,3,3] = const splat(0.1)
      %c: f32[1,4,5,5] = Conv(%x, %w) {pads=[1, 1, 1, 1]}
      %k: f32[4,1,1] = const [1.0, 2.0, 3.0, 4.0]
      %m: f32[1,4,5,5] = Mul(%c, %k)
      %a: f32[1,4,5,5] = Add(%m, %s)
      %z: f32[1,4,5,5] = Conv(%a, %w) {pads=[1, 1, 1, 1]}
      return %z, %a
    }""", f"""
    graph g(%x: f32[1,4,5,5], %s: f32[1,4,5,5]) {{
      %w: f32[1,1,3,3,4,4] = const splat(0.1)
      %k: f32[1,1,1,1,4] = const [1.0, 2.0, 3.0, 4.0]
      %xb: f32[1,1,5,5,4] = ToBlocked(%x) {{block=4}}
      %c: f32[1,1,5,5,4] = ConvNCHWc(%xb, %w) {{{CONV}}}
      %m: f32[1,1,5,5,4] = Mul(%c, %k)
      %sb: f32[1,1,5,5,4] = ToBlocked(%s) {{block=4}}
      %ab: f32[1,1,5,5,4] = Add(%m, %sb)
      %zb: f32[1,1,5,5,4] = ConvNCHWc(%ab, %w) {{{CONV}}}
      %a: f32[1,4,5,5] = FromBlocked(%ab)
      %z: f32[1,4,5,5] = FromBlocked(%zb)
      return %z, %a
    }}""", **TOL)


def test_depthwise_keeps_its_input_block_and_concat_stays_blocked():
    check_rewrite(BlockedLayout(block=4), """
    graph g(%x: f32[1,8,4,4]) {
      %w: f32[8,8,1,1] = const splat(0.25)
      %c: f32[1,8,4,4] = Conv(%x, %w)
      %d: f32[8,1,3,3] = const splat(0.5)
      %e: f32[1,8,4,4] = Conv(%c, %d) {group=8, pads=[1, 1, 1, 1]}
      %y: f32[1,16,4,4] = Concat(%c, %e) {axis=1}
      return %y
    }""", f"""
    graph g(%x: f32[1,8,4,4]) {{
      %w: f32[2,2,1,1,4,4] = const splat(0.25)
      %d: f32[2,1,3,3,1,4] = const splat(0.5)
      %xb: f32[1,2,4,4,4] = ToBlocked(%x) {{block=4}}
      %c: f32[1,2,4,4,4] = ConvNCHWc(%xb, %w) {{{POINT}}}
      %e: f32[1,2,4,4,4] = ConvNCHWc(%c, %d) {{{CONV}, group=8}}
      %yb: f32[1,4,4,4,4] = Concat(%c, %e) {{axis=1}}
      %y: f32[1,16,4,4] = FromBlocked(%yb)
      return %y
    }}""", **TOL)


def test_grouped_conv_of_whole_blocks_is_blocked():
    # 2 groups of 8 input and 4 output channels: blocks of 4 never straddle two groups
    check_rewrite(BlockedLayout(block=4), """
    graph g(%x: f32[1,16,5,5]) {
      %w: f32[8,8,3,3] = const splat(0.1)
      %y: f32[1,8,5,5] = Conv(%x, %w) {group=2, pads=[1, 1, 1, 1]}
      return %y
    }""", f"""
    graph g(%x: f32[1,16,5,5]) {{
      %w: f32[2,2,3,3,4,4] = const splat(0.1)
      %xb: f32[1,4,5,5,4] = ToBlocked(%x) {{block=4}}
      %yb: f32[1,2,5,5,4] = ConvNCHWc(%xb, %w) {{{CONV}, group=2}}
      %y: f32[1,8,5,5] = FromBlocked(%yb)
      return %y
    }}""", **TOL)


@pytest.mark.parametrize("weights, conv", [
    ("%w: f32[2,2,3,3] = const splat(0.1)", "%y: f32[1,2,5,5] = Conv(%x, %w) {group=2, pads=[1, 1, 1, 1]}"),  # 1 output channel a group
    ("%w: f32[5,4,3,3] = const splat(0.1)", "%y: f32[1,5,5,5] = Conv(%x, %w) {pads=[1, 1, 1, 1]}"),  # 5 channels
])
def test_convs_it_cannot_block_stay(weights, conv):
    check_rewrite(BlockedLayout(block=4), f"""
    graph g(%x: f32[1,4,5,5]) {{
      {weights}
      {conv}
      return %y
    }}""")


def test_float64_and_no_block_leave_the_graph_alone():
    text = """
    graph g(%x: f64[1,4,5,5]) {
      %w: f64[4,4,3,3] = const splat(0.1)
      %y: f64[1,4,5,5] = Conv(%x, %w) {pads=[1, 1, 1, 1]}
      return %y
    }"""
    check_rewrite(BlockedLayout(block=4), text)
    check_rewrite(BlockedLayout(block=0), text.replace("f64", "f32"))


def test_to_blocked_of_from_blocked_cancels():
    check_rewrite(BlockedLayout(block=4), """
    graph g(%xb: f32[1,1,5,5,4]) {
      %x: f32[1,4,5,5] = FromBlocked(%xb)
      %w: f32[4,4,1,1] = const splat(0.1)
      %y: f32[1,4,5,5] = Conv(%x, %w)
      return %y
    }""", f"""
    graph g(%xb: f32[1,1,5,5,4]) {{
      %w: f32[1,1,1,1,4,4] = const splat(0.1)
      %yb: f32[1,1,5,5,4] = ConvNCHWc(%xb, %w) {{{POINT}}}
      %y: f32[1,4,5,5] = FromBlocked(%yb)
      return %y
    }}""", **TOL)


def test_conv_bias_add_relu_stay_one_fused_kernel():
    graph = parse("""
    graph g(%x: f32[1,8,6,6]) {
      %w: f32[8,8,3,3] = const splat(0.1)
      %b: f32[8] = const splat(1.0)
      %c: f32[1,8,6,6] = Conv(%x, %w) {pads=[1, 1, 1, 1]}
      %d: f32[1,8,6,6] = Conv(%c, %w, %b) {pads=[1, 1, 1, 1]}
      %a: f32[1,8,6,6] = Add(%d, %c)
      %y: f32[1,8,6,6] = Relu(%a)
      return %y
    }""")
    result, _ = run([BlockedLayout(block=4), FuseOps()], graph)
    assert [n.op for n in result.nodes] == ["ToBlocked", "ConvNCHWc", "Fused", "FromBlocked"]
    assert [n.op for n in body_graph(result.nodes[2].attrs).nodes] == ["ConvNCHWc", "Add", "Relu"]


def test_the_pipeline_takes_the_block_from_the_target():
    assert [p for p in pipeline(3) if p.name == "layout"] == [BlockedLayout(block=0)]
    assert [p for p in pipeline(3, Target.named("x86-64")) if p.name == "layout"] == [BlockedLayout(block=4)]
    assert [p for p in pipeline(3, Target.named("x86-64-v3")) if p.name == "layout"] == [BlockedLayout(block=8)]
    assert all(p.name != "layout" for p in pipeline(2, Target.named("x86-64")))
    graph = parse("""
    graph g(%x: f32[1,4,5,5]) {
      %w: f32[4,4,3,3] = const splat(0.1)
      %y: f32[1,4,3,3] = Conv(%x, %w)
      return %y
    }""")
    ops = [n.op for n in PassContext(opt_level=3, target=Target.named("x86-64")).run(graph).nodes]
    assert ops == ["ToBlocked", "ConvNCHWc", "FromBlocked"]
