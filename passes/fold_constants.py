"""Constant folding: evaluate nodes whose inputs are all constants at compile time.

::

    %c: f32[2] = const [1.0, 4.0]              %s: f32[2] = const [1.0, 2.0]
    %s: f32[2] = Sqrt(%c)              ==>      %y: f32[2] = Mul(%x, %s)
    %y: f32[2] = Mul(%x, %s)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ember.ir import Graph, Node, TensorType
from ember.ir.errors import EmberError

from .pass_manager import Pass, register_pass
from .rewriter import Rewriter


def contiguous(array: np.ndarray) -> np.ndarray:
    """``array`` as a C-contiguous ndarray (references may return strided views, e.g. Transpose)."""
    array = np.asarray(array)
    return array if array.flags.c_contiguous else array.copy(order="C")


def evaluate(node: Node) -> list[np.ndarray] | None:
    """The outputs of ``node`` on its constant inputs with the op's reference; ``None`` if it raises.

    A node that fails here (an index out of range, say) is left to fail at run
    time exactly as it would have.
    """
    try:
        results = node.opdef.run_reference([v.data for v in node.inputs], node.attrs)
    except EmberError:
        return None
    results = [contiguous(r) for r in results]
    for out, r in zip(node.outputs, results):
        if TensorType.of(r) != out.type:
            raise RuntimeError(f"internal error: {node.op} node {node.name!r} reference returned "
                               f"{TensorType.of(r)}, inferred {out.type}")
    return results


@register_pass
@dataclass(frozen=True)
class FoldConstants(Pass):
    """Replace each node whose inputs are all constants by constants holding its outputs.

    Evaluates the op's numpy reference, so results equal the reference executor's exactly. Skips outputs
    above ``max_elements`` that outgrow their inputs (a giant Expand); weight transposes/reshapes always fold.
    """

    name: ClassVar[str] = "fold_constants"
    max_elements: int = 1 << 24

    def run(self, graph: Graph) -> Graph:
        with Rewriter(graph) as rw:
            # In topological order, so a folded node's users see constant inputs next.
            for node in list(graph.nodes):
                if not node.inputs or not all(v.is_constant for v in node.inputs) or self._too_big(node):
                    continue
                results = evaluate(node)
                if results is not None:
                    constants = [rw.constant(r, hint=out.name) for r, out in zip(results, node.outputs)]
                    rw.replace_node(node, constants)
        return graph

    def _too_big(self, node: Node) -> bool:
        out = sum(v.type.size for v in node.outputs)
        return out > self.max_elements and out > sum(v.type.size for v in node.inputs)
