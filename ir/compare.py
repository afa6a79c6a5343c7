"""Structural equality of graphs, optionally ignoring value names (for pass tests)."""

from __future__ import annotations

import numpy as np

from .graph import Graph, Value


def _same_constant(a: Value, b: Value) -> bool:
    return a.type == b.type and np.array_equal(a.data, b.data, equal_nan=a.data.dtype.kind == "f")


def graphs_equal(a: Graph, b: Graph, *, names: bool = True) -> bool:
    """Whether ``a`` and ``b`` compute the same thing node for node.

    Nodes are compared in order (op, attributes, operands, output types);
    constants by dtype, shape and exact data. With ``names=False`` value,
    node and graph names may differ.
    """
    return graph_difference(a, b, names=names) is None


def graph_difference(a: Graph, b: Graph, *, names: bool = True) -> str | None:
    """``None`` if the graphs are equal, else a sentence saying where they first differ."""
    if names and a.name != b.name:
        return f"graph names differ: {a.name!r} vs {b.name!r}"
    mapping: dict[int, Value] = {}

    def match(x: Value, y: Value, where: str) -> str | None:
        if id(x) in mapping:
            return None if mapping[id(x)] is y else f"{where}: %{x.name} vs %{y.name}"
        if x.is_constant != y.is_constant:
            return f"{where}: %{x.name} vs %{y.name} (constant vs not)"
        if not x.is_constant:
            return f"{where}: %{x.name} vs %{y.name} are different values"
        if not _same_constant(x, y):
            return f"{where}: constants %{x.name} and %{y.name} differ"
        if names and x.name != y.name:
            return f"{where}: constant names {x.name!r} vs {y.name!r}"
        mapping[id(x)] = y
        return None

    if len(a.inputs) != len(b.inputs):
        return f"{len(a.inputs)} vs {len(b.inputs)} inputs"
    for x, y in zip(a.inputs, b.inputs):
        if x.type != y.type or (names and x.name != y.name):
            return f"inputs differ: {x!r} vs {y!r}"
        mapping[id(x)] = y
    if len(a.nodes) != len(b.nodes):
        return f"{len(a.nodes)} vs {len(b.nodes)} nodes"
    for i, (m, n) in enumerate(zip(a.nodes, b.nodes)):
        where = f"node {i} ({m.op})"
        if m.op != n.op or m.attrs != n.attrs:
            return f"{where}: {m.op}{m.attrs} vs {n.op}{n.attrs}"
        if names and m.name != n.name:
            return f"{where}: node names {m.name!r} vs {n.name!r}"
        if len(m.inputs) != len(n.inputs):
            return f"{where}: {len(m.inputs)} vs {len(n.inputs)} operands"
        for x, y in zip(m.inputs, n.inputs):
            if (diff := match(x, y, where)) is not None:
                return diff
        for x, y in zip(m.outputs, n.outputs):
            if x.type != y.type or (names and x.name != y.name):
                return f"{where}: outputs {x!r} vs {y!r}"
            mapping[id(x)] = y
    if len(a.outputs) != len(b.outputs):
        return f"{len(a.outputs)} vs {len(b.outputs)} graph outputs"
    for x, y in zip(a.outputs, b.outputs):
        if (diff := match(x, y, "graph outputs")) is not None:
            return diff
    return None
