"""The rewriter: replacements keep the graph's interface, and every change is counted."""

import numpy as np
import pytest

from ember.ir import parse, verify
from ember.passes import Rewriter
from ember.passes.rewriter import ACTIVE_RECORD
from tests.helpers import assert_roundtrip

TEXT = """
graph g(%x: f32[2], %z: f32[2]) {
  %a: f32[2] = Relu(%x)
  %b: f32[2] = Exp(%a)
  %y: f32[2] = Identity(%b)
  return %y, %a
}
"""


def test_a_graph_output_keeps_its_name_when_a_new_value_takes_over():
    g = parse(TEXT)
    identity = g.nodes[2]
    with Rewriter(g) as rw:
        assert rw.replace_node(identity, [identity.inputs[0]])
    assert_roundtrip(g)
    assert str(g).splitlines()[2] == "  %y: f32[2] = Exp(%a)"
    assert [v.name for v in g.outputs] == ["y", "a"] and rw.rewrites == 1


def test_replacements_that_would_rename_the_interface_are_refused():
    g = parse(TEXT)
    a, y = g.nodes[0].output, g.outputs[0]
    rw = Rewriter(g)
    assert not rw.replace(y, g.inputs[0])  # an input cannot take an output's name
    assert not rw.replace(y, a)  # nor can another output
    assert not rw.replace_node(g.nodes[0], [g.inputs[1]])
    assert rw.rewrites == 0 and str(rw.finish()) == str(parse(TEXT))
    with pytest.raises(ValueError, match="types differ"):
        rw.replace(a, rw.constant(np.zeros(3, np.float32)))


def test_new_nodes_are_put_in_order_and_take_the_replaced_names():
    g = parse(TEXT)
    exp = g.nodes[1]
    with Rewriter(g) as rw:
        two = rw.constant(np.full(2, 2.0, np.float32), hint="two")
        doubled = rw.apply("Mul", [exp.inputs[0], two])
        assert rw.replace_node(exp, [rw.apply("Exp", [doubled])])
    verify(g)
    assert [n.op for n in g.nodes] == ["Relu", "Mul", "Exp", "Identity"]
    assert g.nodes[2].output.name == "b" and g.nodes[2].name == "b"


def test_counts_go_to_the_active_pass_record():
    g = parse(TEXT)
    record = {"rewrites": 0}
    token = ACTIVE_RECORD.set(record)
    try:
        with Rewriter(g) as rw:
            rw.replace_node(g.nodes[2], [g.nodes[1].output])
        rw.finish()  # finishing twice counts once
        with Rewriter(g):
            pass  # a rewriter without changes adds nothing
        with Rewriter(g) as rw:
            rw.erase(g.nodes[0], g.nodes[1])  # one per node
    finally:
        ACTIVE_RECORD.reset(token)
    assert record["rewrites"] == 3


def test_only_user_and_inherit_name():
    g = parse("""
    graph g(%x: f32[2]) {
      %w: f32[2] = const [1.0, 2.0]
      %a: f32[2] = Mul(%x, %w)
      %b: f32[2] = Add(%a, %a)
      return %b
    }""")
    mul, add = g.nodes
    rw = Rewriter(g)
    assert rw.only_user(mul.output) is None  # read twice by the Add
    assert rw.only_user(mul.inputs[1]) is mul and rw.only_user(add.output) is None  # an output
    new_w = rw.constant(np.array([3.0, 4.0], np.float32), hint="w")
    assert new_w.name != "w"
    rw.inherit_name(new_w, mul.inputs[1])  # %w is still used: names stay
    assert new_w.name != "w"
    assert rw.replace(mul.inputs[1], new_w)
    rw.finish()
    assert [c.name for c in g.constants()] == ["w"]  # the fresh constant took the replaced name
    assert_roundtrip(g)
