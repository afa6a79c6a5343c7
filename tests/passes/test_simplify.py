"""simplify: every rule of the table, before and after, and the cases it must leave alone."""

import pytest

from ember.ir import parse
from ember.passes import DeadCode, Simplify
from ember.passes.simplify import RULES
from tests.passes.check import check_rewrite, run


def graph(*body: str, inputs: str = "%x: f32[2,3]", returns: str = "%y") -> str:
    lines = "\n".join(f"  {line}" for line in body)
    return f"graph g({inputs}) {{\n{lines}\n  return {returns}\n}}\n"


# (rule, before, after): each graph ends in a Relu so the simplified node is no graph output.
RELU_OF_X = graph("%y: f32[2,3] = Relu(%x)")
CASES = [
    ("identity", graph("%a: f32[2,3] = Identity(%x)", "%y: f32[2,3] = Relu(%a)"), RELU_OF_X),
    ("dropout", graph("%a: f32[2,3] = Dropout(%x) {seed=3}", "%y: f32[2,3] = Relu(%a)"), RELU_OF_X),
    ("x*1", graph("%c: f32[3] = const splat(1.0)", "%a: f32[2,3] = Mul(%x, %c)", "%y: f32[2,3] = Relu(%a)"),
     RELU_OF_X),
    ("1*x", graph("%c: f32[] = const [1.0]", "%a: f32[2,3] = Mul(%c, %x)", "%y: f32[2,3] = Relu(%a)"), RELU_OF_X),
    ("x+0", graph("%c: f32[1,1] = const [0.0]", "%a: f32[2,3] = Add(%x, %c)", "%y: f32[2,3] = Relu(%a)"),
     RELU_OF_X),
    ("0+x", graph("%c: f32[2,3] = const splat(0.0)", "%a: f32[2,3] = Add(%c, %x)", "%y: f32[2,3] = Relu(%a)"),
     RELU_OF_X),
    ("x-0", graph("%c: f32[] = const [0.0]", "%a: f32[2,3] = Sub(%x, %c)", "%y: f32[2,3] = Relu(%a)"), RELU_OF_X),
    ("x/1", graph("%c: f32[] = const [1.0]", "%a: f32[2,3] = Div(%x, %c)", "%y: f32[2,3] = Relu(%a)"), RELU_OF_X),
    ("transpose-identity", graph("%a: f32[2,3] = Transpose(%x) {perm=[0, 1]}", "%y: f32[2,3] = Relu(%a)"),
     RELU_OF_X),
    ("transpose-transpose-identity",
     graph("%a: f32[3,2] = Transpose(%x)", "%b: f32[2,3] = Transpose(%a) {perm=[1, 0]}", "%y: f32[2,3] = Relu(%b)"),
     RELU_OF_X),
    ("transpose-transpose",
     graph("%a: f32[3,4,2] = Transpose(%x) {perm=[1, 2, 0]}", "%b: f32[4,3,2] = Transpose(%a) {perm=[1, 0, 2]}",
           "%y: f32[4,3,2] = Relu(%b)", inputs="%x: f32[2,3,4]"),
     graph("%b: f32[4,3,2] = Transpose(%x) {perm=[2, 1, 0]}", "%y: f32[4,3,2] = Relu(%b)", inputs="%x: f32[2,3,4]")),
    ("reshape-same", graph("%a: f32[2,3] = Reshape(%x) {shape=[0, -1]}", "%y: f32[2,3] = Relu(%a)"), RELU_OF_X),
    ("reshape-reshape",
     graph("%a: f32[6] = Reshape(%x) {shape=[-1]}", "%b: f32[3,2] = Reshape(%a) {shape=[3, 2]}",
           "%y: f32[3,2] = Relu(%b)"),
     graph("%b: f32[3,2] = Reshape(%x) {shape=[3, 2]}", "%y: f32[3,2] = Relu(%b)")),
    ("reshape-reshape-identity",
     graph("%a: f32[6] = Reshape(%x) {shape=[-1]}", "%b: f32[2,3] = Reshape(%a) {shape=[2, 3]}",
           "%y: f32[2,3] = Relu(%b)"), RELU_OF_X),
    ("unsqueeze-flatten-squeeze",
     graph("%a: f32[1,2,3] = Unsqueeze(%x) {axes=[0]}", "%b: f32[1,6] = Flatten(%a)",
           "%c: f32[6] = Squeeze(%b) {axes=[0]}", "%y: f32[6] = Relu(%c)"),
     graph("%c: f32[6] = Reshape(%x) {shape=[6]}", "%y: f32[6] = Relu(%c)")),
    ("flatten-same", graph("%a: f32[2,3] = Flatten(%x)", "%y: f32[2,3] = Relu(%a)"), RELU_OF_X),
    ("squeeze-nothing", graph("%a: f32[2,3] = Squeeze(%x)", "%y: f32[2,3] = Relu(%a)"), RELU_OF_X),
    ("cast-same", graph('%a: f32[2,3] = Cast(%x) {to="float32"}', "%y: f32[2,3] = Relu(%a)"), RELU_OF_X),
    ("expand-same", graph("%a: f32[2,3] = Expand(%x) {shape=[1, 3]}", "%y: f32[2,3] = Relu(%a)"), RELU_OF_X),
    ("concat-one", graph("%a: f32[2,3] = Concat(%x) {axis=1}", "%y: f32[2,3] = Relu(%a)"), RELU_OF_X),
    ("pad-zero", graph('%a: f32[2,3] = Pad(%x) {pads=[0, 0, 0, 0], mode="reflect"}', "%y: f32[2,3] = Relu(%a)"),
     RELU_OF_X),
    ("slice-everything",
     graph("%a: f32[2,3] = Slice(%x) {starts=[0, -5], ends=[9223372036854775807, 3], axes=[0, 1]}",
           "%y: f32[2,3] = Relu(%a)"), RELU_OF_X),
    ("slice-of-length-1-axis",
     graph("%a: f32[1,3] = Slice(%x) {starts=[1], ends=[0], axes=[0], steps=[-1]}",
           "%b: f32[1,3] = Slice(%a) {starts=[0], ends=[-9], axes=[0], steps=[-1]}", "%y: f32[1,3] = Relu(%b)"),
     graph("%a: f32[1,3] = Slice(%x) {starts=[1], ends=[0], axes=[0], steps=[-1]}", "%y: f32[1,3] = Relu(%a)")),
]

# Nodes that look simplifiable but are not.
UNCHANGED = [
    ("x*1-broadcasts", graph("%c: f32[2,2,3] = const splat(1.0)", "%y: f32[2,2,3] = Mul(%x, %c)")),
    ("x*c-not-ones", graph("%c: f32[3] = const [1.0, 1.0, 2.0]", "%y: f32[2,3] = Mul(%x, %c)")),
    ("0-x", graph("%c: f32[] = const [0.0]", "%y: f32[2,3] = Sub(%c, %x)")),
    ("1/x", graph("%c: f32[] = const [1.0]", "%y: f32[2,3] = Div(%c, %x)")),
    ("x*0", graph("%c: f32[] = const [0.0]", "%y: f32[2,3] = Mul(%x, %c)")),
    ("transpose", graph("%y: f32[3,2] = Transpose(%x)")),
    ("cast-other", graph('%y: f16[2,3] = Cast(%x) {to="float16"}')),
    ("expand-grows", graph("%y: f32[2,2,3] = Expand(%x) {shape=[2, 1, 1]}")),
    ("pad-nonzero", graph("%y: f32[2,3] = Pad(%x) {pads=[0, 1, 0, -1]}")),
    ("slice-reverses", graph("%y: f32[2,3] = Slice(%x) {starts=[-1], ends=[-9], axes=[1], steps=[-1]}")),
    ("concat-two", graph("%y: f32[2,6] = Concat(%x, %x) {axis=1}")),
    ("reshape", graph("%y: f32[3,2] = Reshape(%x) {shape=[3, 2]}")),
]


@pytest.mark.parametrize("before, after", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(before, after):
    check_rewrite([Simplify(), DeadCode()], before, after)


@pytest.mark.parametrize("before", [c[1] for c in UNCHANGED], ids=[c[0] for c in UNCHANGED])
def test_leaves_alone(before):
    check_rewrite(Simplify(), before)


def test_every_rule_line_states_its_identity():
    import inspect

    import ember.passes.simplify as simplify

    source = inspect.getsource(simplify)
    table = source[source.index("RULES: tuple"):source.index("\n)\n", source.index("RULES: tuple"))]
    rows = [line for line in table.splitlines()[1:] if line.strip()]
    assert len(rows) == len(RULES)
    assert all("  # " in row and "=" in row.split("  # ", 1)[1] for row in rows)


def test_a_removed_node_producing_a_graph_output_hands_over_its_name():
    result = check_rewrite(Simplify(), graph("%a: f32[2,3] = Relu(%x)", "%y: f32[2,3] = Identity(%a)"),
                           graph("%y: f32[2,3] = Relu(%x)"))
    assert [v.name for v in result.outputs] == ["y"]


def test_a_node_between_graph_input_and_output_is_kept():
    # %y = x * 1 with x a graph input: no value could carry both names.
    check_rewrite(Simplify(), graph("%c: f32[] = const [1.0]", "%y: f32[2,3] = Mul(%x, %c)"))
    check_rewrite(Simplify(), graph("%y: f32[2,3] = Identity(%x)"))
    # Nor two graph outputs.
    check_rewrite(Simplify(), graph("%a: f32[2,3] = Relu(%x)", "%y: f32[2,3] = Identity(%a)", returns="%a, %y"))


def test_chains_simplify_to_a_fixed_point():
    before = graph(
        "%a: f32[3,2] = Transpose(%x)", "%b: f32[2,3] = Transpose(%a)", "%c: f32[3,2] = Transpose(%b)",
        "%d: f32[2,3] = Transpose(%c)", "%e: f32[2,3] = Identity(%d)", "%f: f32[6] = Reshape(%e) {shape=[6]}",
        "%h: f32[2,3] = Reshape(%f) {shape=[2, 3]}", "%y: f32[2,3] = Relu(%h)")
    result, stats = run([Simplify(), DeadCode()], parse(before))
    assert [n.op for n in result.nodes] == ["Relu"] and result.nodes[0].inputs[0] is result.inputs[0]
    assert stats[0]["rewrites"] >= 4
