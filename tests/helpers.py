"""Helpers shared by the test suite."""

from __future__ import annotations

from ember.ir import Graph, graph_difference, parse, print_graph, verify
from ember.ir.loops.stmt import walk_stmts


def assert_roundtrip(graph: Graph) -> Graph:
    """Verify ``graph``, print it, parse it back, and assert the two are equal; return the parsed one."""
    verify(graph)
    text = print_graph(graph)
    parsed = verify(parse(text))
    diff = graph_difference(graph, parsed)
    assert diff is None, f"round trip changed the graph: {diff}"
    assert print_graph(parsed) == text
    return parsed


def statements(stmt, kind) -> list:
    """The loop-IR statements of class ``kind`` under ``stmt`` (itself included), in program order."""
    return [s for s in walk_stmts(stmt) if isinstance(s, kind)]
