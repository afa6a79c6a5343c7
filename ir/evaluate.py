"""Evaluating a graph with the ops' numpy references (the core of the reference executor)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import EmberError
from .graph import Graph
from .types import TensorType


def last_uses(graph: Graph) -> list[list[int]]:
    """For each node, the ids of non-constant values whose last reader it is (graph outputs never are)."""
    last: dict[int, int] = {}
    for i, node in enumerate(graph.nodes):
        for v in node.inputs:
            if not v.is_constant:
                last[id(v)] = i
        for v in node.outputs:
            last.setdefault(id(v), i)  # unused outputs die where they are made
    for v in graph.outputs:
        last[id(v)] = len(graph.nodes)
    dying: list[list[int]] = [[] for _ in graph.nodes]
    for value_id, i in last.items():
        if i < len(graph.nodes):
            dying[i].append(value_id)
    return dying


def evaluate(graph: Graph, arrays: Sequence[np.ndarray], dying: list[list[int]] | None = None) -> list[np.ndarray]:
    """The graph's outputs for input ``arrays`` (already validated), node by node.

    Each node's outputs are checked against its inferred types; intermediates
    are freed after their last use (``dying``, from :func:`last_uses`).
    """
    dying = last_uses(graph) if dying is None else dying
    env: dict[int, np.ndarray] = {id(v): a for v, a in zip(graph.inputs, arrays)}
    for i, node in enumerate(graph.nodes):
        args = [v.data if v.is_constant else env[id(v)] for v in node.inputs]
        try:
            results = node.opdef.run_reference(args, node.attrs)
        except EmberError as err:
            raise err.at(node=node.name, op=node.op) from None
        for out, result in zip(node.outputs, results):
            result = np.asarray(result)
            if TensorType.of(result) != out.type:
                raise RuntimeError(f"internal error: node {node.name!r} ({node.op}) reference returned "
                                   f"{TensorType.of(result)}, inferred {out.type}")
            env[id(out)] = result
        for value_id in dying[i]:
            env.pop(value_id, None)
    return [v.data.copy() if v.is_constant else env[id(v)] for v in graph.outputs]
