"""Graph building, queries, rewriting, networkx view, verification."""

import networkx as nx
import numpy as np
import pytest

from ember.ir import (AttrError, Graph, ShapeError, TensorType, UnsupportedOpError, VerifyError, parse,
                      verify)
from tests.helpers import assert_roundtrip

F32 = lambda *shape: TensorType("float32", shape)  # noqa: E731


def diamond() -> Graph:
    return parse("""
    graph diamond(%x: f32[2,3]) {
      %a: f32[2,3] = Relu(%x)
      %b: f32[2,3] = Sigmoid(%a)
      %c: f32[2,3] = Tanh(%a)
      %d: f32[2,3] = Add(%b, %c)
      return %d
    }""")


def test_add_node_infers_types_and_fills_default_attributes():
    g = Graph()
    x = g.add_input("x", F32(2, 3))
    node = g.add_node("LeakyRelu", [x])
    assert node.output.type == F32(2, 3)
    assert node.attrs == {"alpha": pytest.approx(0.01)}


def test_add_node_errors_name_node_and_op():
    g = Graph()
    x = g.add_input("x", F32(2, 3))
    y = g.add_input("y", F32(4))
    with pytest.raises(ShapeError, match=r"node 'bad' \(Add\)"):
        g.add_node("Add", [x, y], name="bad")
    with pytest.raises(AttrError, match=r"node 'r' \(Relu\): unknown attribute\(s\) alpha"):
        g.add_node("Relu", [x], {"alpha": 1.0}, name="r")
    with pytest.raises(UnsupportedOpError, match="op NoSuchOp"):
        g.add_node("NoSuchOp", [x])


def test_use_def_queries():
    g = diamond()
    a = g.nodes[0].output
    assert [(n.op, i) for n, i in g.users(a)] == [("Sigmoid", 0), ("Tanh", 0)]
    assert a.producer is g.nodes[0]
    uses = g.use_map()
    assert len(uses[id(a)]) == 2


def test_replace_and_remove_keep_the_graph_valid():
    g = diamond()
    relu, sigmoid, tanh, add = g.nodes
    g.replace_all_uses(tanh.output, sigmoid.output)
    g.remove_nodes([tanh])
    verify(g)
    assert [n.op for n in g.nodes] == ["Relu", "Sigmoid", "Add"]
    assert add.inputs == [sigmoid.output, sigmoid.output]
    assert_roundtrip(g)


def test_toposort_restores_order_and_detects_cycles():
    g = diamond()
    g.nodes.reverse()
    with pytest.raises(VerifyError, match="not defined before"):
        verify(g)
    g.toposort()
    verify(g)
    relu = g.nodes[0]
    relu.inputs = [g.nodes[-1].output]  # x -> ... -> d -> relu: a cycle
    with pytest.raises(VerifyError, match="cycle"):
        g.toposort()


def test_networkx_view():
    view = diamond().to_networkx()
    assert view.number_of_nodes() == 4 and view.number_of_edges() == 4
    order = [n.op for n in nx.topological_sort(view)]
    assert order[0] == "Relu" and order[-1] == "Add"


def test_copy_is_equal_and_independent():
    g = diamond()
    c = g.copy()
    assert c == g
    c.nodes[1].attrs = {}
    c.nodes[1].op = "Tanh"
    assert c != g


@pytest.mark.parametrize("breakage, message", [
    (lambda g: setattr(g.nodes[1].outputs[0], "type", F32(3, 2)), r"node 'b' \(Sigmoid\).*typed f32\[3,2\]"),
    (lambda g: g.nodes[3].attrs.update(bogus=1), r"node 'd' \(Add\).*unknown attribute"),
    (lambda g: setattr(g.nodes[2].outputs[0], "name", "b"), r"node 'c' \(Tanh\).*defined twice"),
    (lambda g: g.set_outputs([]), "no outputs"),
    (lambda g: g.nodes.pop(0), r"node 'b' \(Sigmoid\).*not defined before"),
])
def test_verifier_names_the_broken_node(breakage, message):
    g = diamond()
    breakage(g)
    with pytest.raises(VerifyError, match=message):
        verify(g)


def test_verifier_checks_constant_data_against_type():
    g = Graph()
    x = g.add_input("x", F32(2))
    c = g.add_constant(np.ones(2, np.float32), "c")
    g.set_outputs([g.apply("Add", [x, c])])
    c.data = np.ones(3, np.float32)
    with pytest.raises(VerifyError, match="constant %c holds f32\\[3\\]"):
        verify(g)
