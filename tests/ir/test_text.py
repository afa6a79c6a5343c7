"""The IR text format: printing, parsing, round trips, parse errors."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ember.ir import Graph, ParseError, ShapeError, TensorType, graphs_equal, parse, print_graph
from tests.helpers import assert_roundtrip

TEXT = """
graph example(%x: f32[1,4], %"odd name": f32[4]) {
  %w: f32[4,4] = const splat(0.5)
  %k: i64[2] = const [1, -1]
  %h: f32[1,4] = MatMul(%x, %w)
  %s: f32[1,4] = Add(%h, %"odd name")   # a comment
  %y: f32[1,4] = LeakyRelu(%s) {alpha=0.2}
  %r: f32[4,1] = Reshape(%y) {shape=[4, -1]}
  %a: f32[1,2], %b: f32[1,2] = Split(%y) {axis=1, num_outputs=2} @"split node"
  return %a, %b, %r
}
"""


def test_parse_builds_the_graph():
    g = parse(TEXT)
    assert [v.name for v in g.inputs] == ["x", "odd name"]
    assert [n.op for n in g.nodes] == ["MatMul", "Add", "LeakyRelu", "Reshape", "Split"]
    assert g.nodes[2].attrs["alpha"] == pytest.approx(0.2)
    assert g.nodes[-1].name == "split node"
    assert [v.name for v in g.outputs] == ["a", "b", "r"]
    assert g.outputs[2].type == TensorType("float32", (4, 1))


def test_roundtrip_of_hand_written_text():
    assert_roundtrip(parse(TEXT))


def test_defaults_are_not_printed_and_parse_back():
    text = print_graph(parse(TEXT))
    assert "alpha=0.2" in text and "LeakyRelu(%s) {alpha=0.2}" in text
    assert "allowzero" not in text  # Reshape's default


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int8", "uint8", "int32", "int64", "bool"])
@pytest.mark.parametrize("size", [0, 1, 3, 16, 17, 100])
def test_constants_roundtrip_exactly(dtype, size):
    rng = np.random.default_rng(size)
    data = rng.standard_normal(size) * 100
    if dtype == "bool":
        data = data > 0
    array = data.astype(dtype)
    if dtype.startswith("float") and size > 2:
        array[:3] = [np.nan, np.inf, -np.inf]
    g = Graph("c")
    x = g.add_input("x", TensorType(dtype, (size,)))
    c = g.add_constant(array, "c")
    g.set_outputs([g.apply("Concat", [x, c], {"axis": 0})])
    parsed = assert_roundtrip(g)
    np.testing.assert_array_equal(parsed.constants()[0].data, array)


@settings(max_examples=50, deadline=None)
@given(st.floats(allow_nan=False, width=32), st.floats(width=32))
def test_float_attributes_roundtrip(alpha, constant):
    g = Graph()
    x = g.add_input("x", TensorType("float32", (2,)))
    y = g.apply("LeakyRelu", [x], {"alpha": alpha})
    c = g.add_constant(np.array([constant, 1.0], np.float32))
    g.set_outputs([g.apply("Add", [y, c])])
    assert_roundtrip(g)


def test_elided_constants_need_permission():
    g = Graph()
    x = g.add_input("x", TensorType("float32", (100,)))
    g.set_outputs([g.apply("Add", [x, g.add_constant(np.arange(100, dtype=np.float32), "c")])])
    text = print_graph(g, elide_constants=True)
    assert "const elided" in text
    with pytest.raises(ParseError, match="elided"):
        parse(text)
    zeros = parse(text, allow_elided=True)
    assert not zeros.constants()[0].data.any()


def test_names_may_differ_in_structural_comparison():
    a = parse("graph a(%x: f32[2]) {\n %y: f32[2] = Relu(%x)\n return %y\n}")
    b = parse("graph b(%in: f32[2]) {\n %out: f32[2] = Relu(%in)\n return %out\n}")
    assert a != b
    assert graphs_equal(a, b, names=False)
    c = parse("graph b(%in: f32[2]) {\n %out: f32[2] = Sigmoid(%in)\n return %out\n}")
    assert not graphs_equal(a, c, names=False)


@pytest.mark.parametrize("text, message", [
    ("graph g(%x: f32[2]) {\n %y: f32[2] = Relu(%z)\n return %y\n}", r"line 2.*%z is used before"),
    ("graph g(%x: f32[2]) {\n %y: f32[3] = Relu(%x)\n return %y\n}", r"declared f32\[3\] but Relu infers f32\[2\]"),
    ("graph g(%x: q32[2]) {\n return %x\n}", r"unknown dtype 'q32'"),
    ("graph g(%x: f32[2]) {\n %x: f32[2] = Relu(%x)\n return %x\n}", r"defined twice"),
    ("graph g(%x: f32[2]) {\n %c: f32[2] = const [1.0]\n return %c\n}", r"1 elements.*needs 2"),
    ("graph g(%x: f32[2]) {\n %y: f32[2] = Relu(%x) {alpha=}\n return %y\n}", r"line 2, column"),
    ("graph g(%x: f32[2]) {\n %y: f32[2] = Relu(%x)\n", r"expected"),
    ("graph g(%x: f32[2]) { $ }", r"unexpected character"),
])
def test_parse_errors_say_where(text, message):
    with pytest.raises(ParseError, match=message):
        parse(text)


def test_type_errors_in_text_name_the_node():
    text = "graph g(%x: f32[2], %y: f32[3]) {\n %z: f32[3] = Add(%x, %y)\n return %z\n}"
    with pytest.raises(ShapeError, match=r"node 'z' \(Add\).*broadcast"):
        parse(text)
