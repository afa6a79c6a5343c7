"""The naive executor: runs a graph node by node with the ops' numpy references.

Every compiled result in ember is checked against this executor, so it does
nothing clever: it checks each node's outputs against the inferred types and
frees intermediates after their last use.
"""

from __future__ import annotations

import numpy as np

from ember.ir import Graph, TensorType
from ember.ir.errors import EmberError

from .module import ModuleBase


class ReferenceModule(ModuleBase):
    """A :class:`ModuleBase` that interprets the graph with numpy references."""

    def __init__(self, graph: Graph):
        super().__init__(graph)
        # index of the last node reading each value; graph outputs live to the end
        last_use: dict[int, int] = {}
        for i, node in enumerate(graph.nodes):
            for v in node.inputs:
                last_use[id(v)] = i
        for v in graph.outputs:
            last_use[id(v)] = len(graph.nodes)
        self._frees = [[v for v in node.outputs if last_use.get(id(v), -1) <= i] for i, node in enumerate(graph.nodes)]
        self._dead_inputs = [
            [v for v in node.inputs if not v.is_constant and last_use.get(id(v)) == i] for i, node in enumerate(graph.nodes)
        ]

    def _execute(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        env: dict[int, np.ndarray] = {id(v): a for v, a in zip(self.graph.inputs, arrays)}
        for i, node in enumerate(self.graph.nodes):
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
            for v in self._dead_inputs[i] + self._frees[i]:
                env.pop(id(v), None)
        return [v.data.copy() if v.is_constant else env[id(v)] for v in self.graph.outputs]
