"""fold_batch_norm: per-channel affine chains fold into Conv/Gemm/MatMul or become Mul + Add.

The statistics are chosen so that the folded constants are exact: with
``epsilon=0``, scale [4, 3], B [1, -1], mean [0.5, 1] and var [4, 1] the
BatchNorm is ``x * [2, 3] + [0, -4]``.
"""

import numpy as np
import pytest

from ember.ir import parse
from ember.passes import DeadCode, FoldBatchNorm, Simplify
from tests.passes.check import check_rewrite, run

STATS = """
  %scale: f32[2] = const [4.0, 3.0]
  %B: f32[2] = const [1.0, -1.0]
  %mean: f32[2] = const [0.5, 1.0]
  %var: f32[2] = const [4.0, 1.0]"""
BN = "BatchNormalization({x}, %scale, %B, %mean, %var) {{epsilon=0.0}}"
TOL = {"rtol": 1e-5, "atol": 1e-6}


def bn(x: str) -> str:
    return BN.format(x=x)


def test_conv_without_bias_gets_one():
    check_rewrite(FoldBatchNorm(), f"""
    graph g(%x: f32[1,1,3,3]) {{
      %w: f32[2,1,1,1] = const [1.0, 0.5]{STATS}
      %c: f32[1,2,3,3] = Conv(%x, %w)
      %y: f32[1,2,3,3] = {bn("%c")}
      return %y
    }}""", """
    graph g(%x: f32[1,1,3,3]) {
      %w: f32[2,1,1,1] = const [2.0, 1.5]
      %b: f32[2] = const [0.0, -4.0]
      %y: f32[1,2,3,3] = Conv(%x, %w, %b)
      return %y
    }""", **TOL)


def test_conv_bias_is_scaled_and_shifted_and_names_survive():
    result = check_rewrite(FoldBatchNorm(), f"""
    graph g(%x: f32[1,1,3,3]) {{
      %w: f32[2,1,2,2] = const [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]
      %bias: f32[2] = const [1.0, 1.0]{STATS}
      %c: f32[1,2,2,2] = Conv(%x, %w, %bias) {{group=1}}
      %y: f32[1,2,2,2] = {bn("%c")}
      return %y
    }}""", """
    graph g(%x: f32[1,1,3,3]) {
      %w: f32[2,1,2,2] = const [2.0, 2.0, 2.0, 2.0, 1.5, 1.5, 1.5, 1.5]
      %bias: f32[2] = const [2.0, -1.0]
      %y: f32[1,2,2,2] = Conv(%x, %w, %bias)
      return %y
    }""", **TOL)
    assert "%y: f32[1,2,2,2] = Conv(%x, %w, %bias)" in str(result)


def test_a_chain_of_batch_norm_mul_and_add_folds_at_once():
    check_rewrite(FoldBatchNorm(), f"""
    graph g(%x: f32[1,1,3,3]) {{
      %w: f32[2,1,1,1] = const [1.0, 0.5]{STATS}
      %m: f32[2,1,1] = const [0.5, 2.0]
      %a: f32[2,1,1] = const [1.0, 1.0]
      %c: f32[1,2,3,3] = Conv(%x, %w)
      %n: f32[1,2,3,3] = {bn("%c")}
      %s: f32[1,2,3,3] = Mul(%n, %m)
      %y: f32[1,2,3,3] = Add(%a, %s)
      %r: f32[1,2,3,3] = Relu(%y)
      return %r
    }}""", """
    graph g(%x: f32[1,1,3,3]) {
      %w: f32[2,1,1,1] = const [1.0, 3.0]
      %b: f32[2] = const [1.0, -7.0]
      %y: f32[1,2,3,3] = Conv(%x, %w, %b)
      %r: f32[1,2,3,3] = Relu(%y)
      return %r
    }""", **TOL)


def test_batch_norm_after_a_shared_conv_becomes_mul_add_exactly():
    check_rewrite(FoldBatchNorm(), f"""
    graph g(%x: f32[1,1,3,3]) {{
      %w: f32[2,1,1,1] = const [1.0, 0.5]{STATS}
      %c: f32[1,2,3,3] = Conv(%x, %w)
      %y: f32[1,2,3,3] = {bn("%c")}
      return %y, %c
    }}""", """
    graph g(%x: f32[1,1,3,3]) {
      %w: f32[2,1,1,1] = const [1.0, 0.5]
      %a: f32[2,1,1] = const [2.0, 3.0]
      %b: f32[2,1,1] = const [0.0, -4.0]
      %c: f32[1,2,3,3] = Conv(%x, %w)
      %s: f32[1,2,3,3] = Mul(%c, %a)
      %y: f32[1,2,3,3] = Add(%s, %b)
      return %y, %c
    }""")


def test_standalone_batch_norm_with_real_statistics_is_bit_identical():
    rng = np.random.default_rng(0)
    stats = [rng.uniform(0.5, 1.5, 5).astype(np.float32) for _ in range(4)]
    text = ("graph g(%x: f32[3,5,4]) {\n"
            + "".join(f"  %s{i}: f32[5] = const {np.array2string(s, separator=', ', precision=9)}\n"
                      for i, s in enumerate(stats))
            + "  %y: f32[3,5,4] = BatchNormalization(%x, %s0, %s1, %s2, %s3)\n  return %y\n}\n")
    result, _ = run(FoldBatchNorm(), parse(text))
    assert [n.op for n in result.nodes] == ["Mul", "Add"]
    check_rewrite(FoldBatchNorm(), text, str(result))  # exact: rtol = atol = 0


def test_standalone_off_keeps_batch_norm():
    check_rewrite(FoldBatchNorm(standalone=False), f"""
    graph g(%x: f32[1,2,3,3]) {{{STATS}
      %y: f32[1,2,3,3] = {bn("%x")}
      return %y
    }}""")


def test_gemm_with_transposed_weights_and_bias():
    check_rewrite(FoldBatchNorm(), f"""
    graph g(%x: f32[4,3]) {{
      %w: f32[2,3] = const [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
      %c0: f32[1] = const [1.0]{STATS}
      %c: f32[4,2] = Gemm(%x, %w, %c0) {{transB=1, alpha=0.5, beta=2.0}}
      %y: f32[4,2] = {bn("%c")}
      return %y
    }}""", """
    graph g(%x: f32[4,3]) {
      %w: f32[2,3] = const [2.0, 2.0, 2.0, 1.5, 1.5, 1.5]
      %c0: f32[2] = const [4.0, 2.0]
      %y: f32[4,2] = Gemm(%x, %w, %c0) {transB=1, alpha=0.5}
      return %y
    }""", **TOL)


def test_gemm_with_beta_zero_ignores_c():
    check_rewrite(FoldBatchNorm(), """
    graph g(%x: f32[4,3]) {
      %w: f32[3,2] = const [1.0, 0.5, 1.0, 0.5, 1.0, 0.5]
      %c0: f32[2] = const [inf, nan]
      %m: f32[2] = const [2.0, 3.0]
      %c: f32[4,2] = Gemm(%x, %w, %c0) {beta=0.0}
      %y: f32[4,2] = Mul(%c, %m)
      return %y
    }""", """
    graph g(%x: f32[4,3]) {
      %w: f32[3,2] = const [2.0, 1.5, 2.0, 1.5, 2.0, 1.5]
      %y: f32[4,2] = Gemm(%x, %w)
      return %y
    }""", **TOL)


def test_matmul_becomes_gemm_for_a_shift_and_stays_for_a_scale():
    check_rewrite(FoldBatchNorm(), f"""
    graph g(%x: f32[4,3]) {{
      %w: f32[3,2] = const [1.0, 0.5, 1.0, 0.5, 1.0, 0.5]{STATS}
      %c: f32[4,2] = MatMul(%x, %w)
      %y: f32[4,2] = {bn("%c")}
      return %y
    }}""", """
    graph g(%x: f32[4,3]) {
      %w: f32[3,2] = const [2.0, 1.5, 2.0, 1.5, 2.0, 1.5]
      %b: f32[2] = const [0.0, -4.0]
      %y: f32[4,2] = Gemm(%x, %w, %b)
      return %y
    }""", **TOL)
    check_rewrite(FoldBatchNorm(), """
    graph g(%x: f32[4,3]) {
      %w: f32[3,2] = const [1.0, 0.5, 1.0, 0.5, 1.0, 0.5]
      %m: f32[1,2] = const [2.0, 3.0]
      %c: f32[4,2] = MatMul(%x, %w)
      %y: f32[4,2] = Mul(%m, %c)
      return %y
    }""", """
    graph g(%x: f32[4,3]) {
      %w: f32[3,2] = const [2.0, 1.5, 2.0, 1.5, 2.0, 1.5]
      %y: f32[4,2] = MatMul(%x, %w)
      return %y
    }""", **TOL)


@pytest.mark.parametrize("body", [
    # The constant varies along a spatial axis: not per channel.
    """%m: f32[1,3] = const [1.0, 2.0, 3.0]
      %c: f32[1,2,3,3] = Conv(%x, %w)
      %y: f32[1,2,3,3] = Mul(%c, %m)""",
    # The weights are not constant.
    """%c: f32[1,2,3,3] = Conv(%x, %v)
      %m: f32[2,1,1] = const [2.0, 3.0]
      %y: f32[1,2,3,3] = Mul(%c, %m)""",
    # A chain of two maps that cannot fold anywhere is already as short as it gets.
    """%m: f32[2,1,1] = const [2.0, 3.0]
      %s: f32[1,2,3,3] = Mul(%v2, %m)
      %y: f32[1,2,3,3] = Add(%s, %m)""",
    # Broadcasting would grow x.
    """%m: f32[3,2,1,1] = const splat(2.0)
      %c: f32[1,2,3,3] = Conv(%x, %w)
      %y: f32[3,2,3,3] = Mul(%c, %m)""",
])
def test_leaves_alone(body):
    check_rewrite(FoldBatchNorm(), f"""
    graph g(%x: f32[1,1,3,3], %v: f32[2,1,1,1], %v2: f32[1,2,3,3]) {{
      %w: f32[2,1,1,1] = const [1.0, 0.5]
      {body}
      return %y
    }}""")


def test_mul_chain_without_producer_composes():
    check_rewrite([FoldBatchNorm(), DeadCode()], """
    graph g(%x: f32[1,2,3]) {
      %m: f32[2,1] = const [2.0, 3.0]
      %k: f32[2,1] = const [0.5, 0.5]
      %s: f32[1,2,3] = Mul(%x, %m)
      %t: f32[1,2,3] = Sub(%k, %s)
      %y: f32[1,2,3] = Mul(%t, %m)
      return %y
    }""", """
    graph g(%x: f32[1,2,3]) {
      %a: f32[2,1] = const [-4.0, -9.0]
      %b: f32[2,1] = const [1.0, 1.5]
      %s: f32[1,2,3] = Mul(%x, %a)
      %y: f32[1,2,3] = Add(%s, %b)
      return %y
    }""", **TOL)


def test_counts_and_simplify_leave_folded_graph_alone():
    graph = parse(f"""
    graph g(%x: f32[1,1,3,3]) {{
      %w: f32[2,1,1,1] = const [1.0, 0.5]{STATS}
      %c: f32[1,2,3,3] = Conv(%x, %w)
      %y: f32[1,2,3,3] = {bn("%c")}
      return %y
    }}""")
    result, stats = run([FoldBatchNorm(), Simplify()], graph)
    assert [n.op for n in result.nodes] == ["Conv"]
    assert [(s["name"], s["rewrites"], s["nodes_before"], s["nodes_after"]) for s in stats] == [
        ("fold_batch_norm", 1, 2, 1), ("simplify", 0, 1, 1)]
