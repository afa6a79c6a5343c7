"""Common-subexpression elimination: compute each distinct value once.

::

    %w1: f32[4] = const splat(2.0)             %w1: f32[4] = const splat(2.0)
    %w2: f32[4] = const splat(2.0)             %a: f32[4] = Mul(%x, %w1)
    %a: f32[4] = Mul(%x, %w1)          ==>     %c: f32[4] = Add(%a, %a)
    %b: f32[4] = Mul(%x, %w2)
    %c: f32[4] = Add(%a, %b)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ember.ir import Graph, Value

from .pass_manager import Pass, register_pass
from .rewriter import Rewriter


def digest(value: Value) -> bytes:
    """A hash of a constant's bytes (collisions are ruled out by comparing the bytes)."""
    return hashlib.sha1(np.ascontiguousarray(value.data).reshape(-1).view(np.uint8)).digest()


def merge_constants(graph: Graph, rw: Rewriter) -> None:
    """Make every reader of a constant read the first constant of equal type and bytes."""
    by_type: dict[Any, list[Value]] = {}
    for c in graph.constants():
        by_type.setdefault(c.type, []).append(c)
    for same_type in by_type.values():
        if len(same_type) < 2:
            continue  # hashing weights is the slow part: only where a twin could exist
        first_of: dict[bytes, Value] = {}
        for c in same_type:
            first = first_of.setdefault(digest(c), c)
            if first is not c and first.data.tobytes() == c.data.tobytes():
                rw.replace(c, first)


@register_pass
@dataclass(frozen=True)
class CSE(Pass):
    """Merge identical constants (same dtype, shape and bytes), then nodes with the same op, attributes and inputs.

    Assumes ops are deterministic (every registry op is). The first of equal nodes stays; a merge
    that would give two graph outputs one value (one name) is skipped.
    """

    name: ClassVar[str] = "cse"

    def run(self, graph: Graph) -> Graph:
        with Rewriter(graph) as rw:
            merge_constants(graph, rw)
            # In topological order: by the time a node is looked at, its inputs are the merged ones.
            nodes: dict[tuple, Any] = {}
            for node in list(graph.nodes):
                key = (node.op, tuple(sorted(node.attrs.items())), tuple(node.inputs))  # values hash by identity
                first = nodes.setdefault(key, node)
                if first is not node:
                    rw.replace_node(node, first.outputs)
        return graph
