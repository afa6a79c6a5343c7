"""Operator fusion: chains of cheap ops join the op before them into one ``Fused`` kernel.

::

    %c = Conv(%x, %w, %b)                  %y = Fused(%x, %w, %b, %s) {body="... Conv, Add, Relu ..."}
    %a = Add(%c, %s)             ==>
    %y = Relu(%a)

Groups follow TVM's fusion classes. A convolution or matrix product
(out-fusable) takes the elementwise and broadcast ops after it as its
epilogue; a reduction takes its elementwise epilogue too; a chain of
elementwise, broadcast and injective ops joins into one kernel and may end
in a reduction (softmax- and layer-norm-like chains). A group grows along
values with exactly one reader, so it never creates a cycle; its constants
become inputs of the Fused node, so identical groups share one kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ember.ir import Graph, Node, Value
from ember.ir.ops import Fusion
from ember.ir.text import print_graph

from .pass_manager import Pass, register_pass
from .rewriter import Rewriter

POINTWISE = {Fusion.ELEMENTWISE, Fusion.BROADCAST}
CHAIN = POINTWISE | {Fusion.INJECTIVE}


def followers_allowed(anchor: Fusion, seen_reduction: bool) -> set[Fusion]:
    """The fusion classes a group started by ``anchor`` may still take."""
    if anchor in (Fusion.OUT_FUSABLE, Fusion.REDUCTION) or seen_reduction:
        return POINTWISE
    return CHAIN | {Fusion.REDUCTION}


def grow_group(node: Node, uses: dict, outputs: set[int], taken: set[int], max_nodes: int) -> list[Node]:
    """The group starting at ``node``: it follows single-reader values while the classes allow."""
    group = [node]
    anchor = node.opdef.fusion
    seen_reduction = anchor == Fusion.REDUCTION
    current = node
    while len(group) < max_nodes:
        out = current.outputs[0]
        readers = uses.get(id(out), [])
        if id(out) in outputs or len(readers) != 1:
            break
        nxt = readers[0][0]
        if id(nxt) in taken or len(nxt.outputs) != 1 or nxt.op == "Fused":
            break
        if sum(v is out for v in nxt.inputs) != 1:
            break
        cls = nxt.opdef.fusion
        if cls not in followers_allowed(anchor, seen_reduction):
            break
        seen_reduction |= cls == Fusion.REDUCTION
        group.append(nxt)
        current = nxt
    return group


def body_of(group: list[Node]) -> tuple[Graph, list[Value]]:
    """The group as a graph of its own, and the outer values feeding its inputs (in order)."""
    inside = {id(out) for n in group for out in n.outputs}
    external: list[Value] = []
    for n in group:
        for v in n.inputs:
            if id(v) not in inside and all(v is not e for e in external):
                external.append(v)
    # canonical names, so that identical groups print the same body and share a kernel
    body = Graph("fused")
    env = {id(v): body.add_input(f"in{i}", v.type) for i, v in enumerate(external)}
    for k, n in enumerate(group):
        names = [f"t{k}" if len(n.outputs) == 1 else f"t{k}_{j}" for j in range(len(n.outputs))]
        node = body.add_node(n.op, [env[id(v)] for v in n.inputs], n.attrs, output_names=names)
        env.update({id(o): new for o, new in zip(n.outputs, node.outputs)})
    body.set_outputs([env[id(group[-1].outputs[0])]])
    return body, external


@register_pass
@dataclass(frozen=True)
class FuseOps(Pass):
    """Replace each fusable group of two or more nodes by one Fused node (see the module docstring).

    Assumes single-output nodes in groups; guarantees the graph computes the
    same values, each group compiling to one kernel.
    """

    name: ClassVar[str] = "fuse_ops"
    max_nodes: int = 16

    def run(self, graph: Graph) -> Graph:
        uses = graph.use_map()
        outputs = {id(v) for v in graph.outputs}
        taken: set[int] = set()
        groups = []
        for node in graph.nodes:
            if id(node) in taken or len(node.outputs) != 1 or node.op == "Fused":
                continue
            if node.opdef.fusion not in CHAIN | {Fusion.OUT_FUSABLE, Fusion.REDUCTION}:
                continue
            group = grow_group(node, uses, outputs, taken, self.max_nodes)
            if len(group) > 1:
                taken.update(id(n) for n in group)
                groups.append(group)
        with Rewriter(graph) as rw:
            for group in groups:
                body, external = body_of(group)
                fused = rw.apply("Fused", external, {"body": print_graph(body)}, hint=group[-1].outputs[0].name)
                last = group[-1].outputs[0]
                if rw.replace(last, fused):
                    rw.erase(*reversed(group))
        return graph
