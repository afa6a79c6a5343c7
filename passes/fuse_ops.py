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
the readers of its values, diamonds included (``x * sigmoid(x)``, an exact
GELU after a matrix product), and keeps its largest part with one value read
outside; no path may leave the group and come back (a cycle). Its constants
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


def grow_group(node: Node, uses: dict, outputs: set[int], taken: set[int], max_nodes: int,
               position: dict[int, int]) -> list[Node]:
    """The group starting at ``node``: it takes the readers of its values while the fusion
    classes allow, and is cut back to its largest prefix with a single exit (one value read
    outside the group, produced by its last node). A value read twice joins a diamond
    (``x * sigmoid(x)``, an exact GELU) when every path from it meets again inside the group.
    ``position`` orders the graph's nodes (topologically)."""
    group, members = [node], {id(node)}
    anchor = node.opdef.fusion
    seen_reduction = anchor == Fusion.REDUCTION
    best = list(group)
    while len(group) < max_nodes:
        exits = _exits(group, members, uses, outputs)
        if any(id(v) in outputs for v in exits):
            break  # a graph output leaves the group: the group ends at it, or not at all
        allowed = followers_allowed(anchor, seen_reduction)
        readers = sorted({id(r): r for v in exits for r, _ in uses[id(v)] if id(r) not in members}.values(),
                         key=lambda r: position[id(r)])
        nxt = next((r for r in readers if _may_join(r, group, members, taken, allowed, len(exits), uses,
                                                   position)), None)
        if nxt is None:
            break
        seen_reduction |= nxt.opdef.fusion == Fusion.REDUCTION
        group.append(nxt)
        members.add(id(nxt))
        if _exits(group, members, uses, outputs) == [nxt.outputs[0]]:
            best = list(group)
    return best


def _exits(group: list[Node], members: set[int], uses: dict, outputs: set[int]) -> list[Value]:
    """The group's values read outside it or returned by the graph."""
    return [v for n in group for v in n.outputs
            if id(v) in outputs or any(id(r) not in members for r, _ in uses.get(id(v), []))]


def _may_join(reader: Node, group: list[Node], members: set[int], taken: set[int], allowed: set[Fusion],
              exits: int, uses: dict, position: dict[int, int]) -> bool:
    """Whether ``reader`` may join ``group``: a single-output op of an allowed class, in no other
    group; a reduction only of the group's one exit (it must see the whole group's result);
    reading each of the group's values once; and no path leaving the group may come back into
    it (the Fused node would read its own result)."""
    if id(reader) in taken or len(reader.outputs) != 1 or reader.op == "Fused":
        return False
    if reader.opdef.fusion not in allowed or (reader.opdef.fusion == Fusion.REDUCTION and exits > 1):
        return False
    inner = [v for v in reader.inputs if v.producer is not None and id(v.producer) in members]
    if len({id(v) for v in inner}) != len(inner):
        return False
    return _convex([*group, reader], uses, position)


def _convex(group: list[Node], uses: dict, position: dict[int, int]) -> bool:
    """Whether no path from ``group`` through nodes outside it leads back into it. Such a path
    ends at a member, so only nodes before the last member (in ``position`` order) are walked."""
    members = {id(n) for n in group}
    last = max(position[id(n)] for n in group)
    stack = [n for n in group]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        for v in node.outputs:
            for r, _ in uses.get(id(v), []):
                if id(r) in members:
                    if id(node) not in members:
                        return False
                elif position[id(r)] < last and id(r) not in seen:
                    seen.add(id(r))
                    stack.append(r)
    return True


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
        position = {id(n): i for i, n in enumerate(graph.nodes)}
        taken: set[int] = set()
        groups = []
        for node in graph.nodes:
            if id(node) in taken or len(node.outputs) != 1 or node.op == "Fused":
                continue
            if node.opdef.fusion not in CHAIN | {Fusion.OUT_FUSABLE, Fusion.REDUCTION}:
                continue
            group = grow_group(node, uses, outputs, taken, self.max_nodes, position)
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
