"""The naive executor: runs a graph node by node with the ops' numpy references.

Every compiled result in ember is checked against this executor, so it does
nothing clever: it checks each node's outputs against the inferred types and
frees intermediates after their last use.
"""

from __future__ import annotations

import numpy as np

from ember.ir import Graph
from ember.ir.evaluate import evaluate, last_uses

from .module import ModuleBase


class ReferenceModule(ModuleBase):
    """A :class:`ModuleBase` that interprets the graph with numpy references."""

    def __init__(self, graph: Graph):
        super().__init__(graph)
        self._dying = last_uses(graph)

    def _execute(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return evaluate(self.graph, arrays, self._dying)
