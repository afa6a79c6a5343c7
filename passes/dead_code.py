"""Dead-code elimination: remove nodes no graph output depends on.

::

    %a: f32[2] = Relu(%x)                       %b: f32[2] = Exp(%x)
    %b: f32[2] = Exp(%x)               ==>      return %b
    return %b
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ember.ir import Graph

from .pass_manager import Pass, register_pass
from .rewriter import Rewriter


@register_pass
@dataclass(frozen=True)
class DeadCode(Pass):
    """Remove every node none of whose outputs a graph output (transitively) depends on.

    Constants that only dead nodes read disappear with them; graph inputs stay,
    used or not. A multi-output node stays whole while one of its outputs is used.
    """

    name: ClassVar[str] = "dead_code"

    def run(self, graph: Graph) -> Graph:
        live = {id(v) for v in graph.outputs}
        dead = []
        for node in reversed(graph.nodes):
            if any(id(out) in live for out in node.outputs):
                live.update(id(v) for v in node.inputs)
            else:
                dead.append(node)
        with Rewriter(graph) as rw:
            rw.erase(*dead)
        return graph
