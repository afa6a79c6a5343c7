"""Algebraic simplification: a table of rewrite rules applied until none matches.

A rule is a row ``(op, rule)``: ``rule(node, rw)`` returns the value that
replaces the node's output, or ``None`` when it does not match. Rules that
forward an operand keep the value's type exactly; a removable node that
produces a graph output whose name the forwarded value cannot take (a graph
input, another output) is kept.

::

    %t: f32[3,2] = Transpose(%x)
    %u: f32[2,3] = Transpose(%t)        ==>     %y: f32[2,3] = Mul(%x, %x)     (and dead_code removes %t)
    %y: f32[2,3] = Mul(%u, %x)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from ember.ir import Graph, Node, Value

from .pass_manager import Pass, register_pass
from .rewriter import Rewriter

Rule = Callable[[Node, Rewriter], "Value | None"]

# Ops that only change the shape of their input (same elements, same order).
RESHAPES = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})


def forward(condition: Callable[[Node], bool]) -> Rule:
    """A rule replacing the node by its first operand when ``condition(node)`` holds."""
    def rule(node: Node, rw: Rewriter) -> Value | None:
        return node.inputs[0] if condition(node) else None
    return rule


def always(node: Node) -> bool:
    return True


def keeps_type(node: Node) -> bool:
    """The node's output has its first input's dtype and shape."""
    return node.output.type == node.inputs[0].type


def neutral(keep: int, element: float) -> Rule:
    """``x op c = x`` for operand ``keep``, when the other operand is a constant of ``element``
    everywhere that does not broadcast x to another shape."""
    def rule(node: Node, rw: Rewriter) -> Value | None:
        x, c = node.inputs[keep], node.inputs[1 - keep]
        if c.is_constant and node.output.type == x.type and bool(np.all(c.data == element)):
            return x
        return None
    return rule


def perm_of(node: Node) -> tuple[int, ...]:
    """A Transpose's permutation, the default (reverse the dims) made explicit."""
    perm = node.attrs["perm"]
    return tuple(perm) if perm is not None else tuple(reversed(range(node.inputs[0].type.rank)))


def identity_perm(node: Node) -> bool:
    return perm_of(node) == tuple(range(len(perm_of(node))))


def compose_transposes(node: Node, rw: Rewriter) -> Value | None:
    """Transpose(Transpose(x, p), q) = Transpose(x, [p[i] for i in q]), or x when that is the identity."""
    inner = node.inputs[0].producer
    if inner is None or inner.op != "Transpose":
        return None
    p, q = perm_of(inner), perm_of(node)
    perm = tuple(p[i] for i in q)
    x = inner.inputs[0]
    if perm == tuple(range(len(perm))):
        return x
    return rw.apply("Transpose", [x], {"perm": perm}, hint=node.output.name)


def reshape_to(x: Value, node: Node, rw: Rewriter) -> Value:
    """``x`` reshaped to the type of ``node``'s output: x itself if it has that shape already."""
    shape = node.output.type.shape
    if x.type.shape == shape:
        return x
    # allowzero=1 only where needed: it makes a 0 in the shape a real 0, not "copy that dim".
    attrs = {"shape": shape, "allowzero": int(0 in shape)}
    return rw.apply("Reshape", [x], attrs, hint=node.output.name)


def merge_reshapes(node: Node, rw: Rewriter) -> Value | None:
    """R2(R1(x)) = Reshape(x, shape of R2's output) for R1, R2 any of Reshape/Flatten/Squeeze/Unsqueeze."""
    inner = node.inputs[0].producer
    if inner is None or inner.op not in RESHAPES:
        return None
    return reshape_to(inner.inputs[0], node, rw)


def single_input(node: Node) -> bool:
    return len(node.inputs) == 1


def zero_pads(node: Node) -> bool:
    return not any(node.attrs["pads"])


def full_slice(node: Node) -> bool:
    """A Slice keeping every element in order: same shape, and step 1 on every axis longer than 1."""
    if not keeps_type(node):
        return False
    steps = node.attrs["steps"] or (1,) * len(node.attrs["starts"])
    axes = node.attrs["axes"] if node.attrs["axes"] is not None else range(len(steps))
    shape = node.inputs[0].type.shape
    return all(step == 1 or shape[axis] <= 1 for axis, step in zip(axes, steps))


# One rule per line, the identity it implements in the comment. Rules for an op are tried in order.
RULES: tuple[tuple[str, Rule], ...] = (
    ("Identity", forward(always)),            # Identity(x) = x
    ("Dropout", forward(always)),             # Dropout(x) = x  (inference)
    ("Mul", neutral(keep=0, element=1)),      # x * 1 = x
    ("Mul", neutral(keep=1, element=1)),      # 1 * x = x
    ("Add", neutral(keep=0, element=0)),      # x + 0 = x  (but -0.0 + 0 is +0.0)
    ("Add", neutral(keep=1, element=0)),      # 0 + x = x  (likewise)
    ("Sub", neutral(keep=0, element=0)),      # x - 0 = x
    ("Div", neutral(keep=0, element=1)),      # x / 1 = x
    ("Transpose", forward(identity_perm)),    # Transpose(x, [0, 1, ..]) = x
    ("Transpose", compose_transposes),        # Transpose(Transpose(x, p), q) = Transpose(x, p[q])
    ("Reshape", forward(keeps_type)),         # Reshape(x, shape(x)) = x
    ("Flatten", forward(keeps_type)),         # Flatten(x) = x  when x is already that matrix
    ("Squeeze", forward(keeps_type)),         # Squeeze(x, []) = x
    ("Unsqueeze", forward(keeps_type)),       # Unsqueeze(x, []) = x
    ("Reshape", merge_reshapes),              # Reshape(R(x)) = Reshape(x)  (R: Reshape/Flatten/Squeeze/Unsqueeze)
    ("Flatten", merge_reshapes),              # Flatten(R(x)) = Reshape(x)
    ("Squeeze", merge_reshapes),              # Squeeze(R(x)) = Reshape(x)
    ("Unsqueeze", merge_reshapes),            # Unsqueeze(R(x)) = Reshape(x)
    ("Cast", forward(keeps_type)),            # Cast(x, dtype(x)) = x
    ("Expand", forward(keeps_type)),          # Expand(x, shape(x)) = x
    ("Concat", forward(single_input)),        # Concat(x) = x
    ("Pad", forward(zero_pads)),              # Pad(x, 0) = x
    ("Slice", forward(full_slice)),           # x[0:n:1] = x
)

_BY_OP: dict[str, list[Rule]] = {}
for _op, _rule in RULES:
    _BY_OP.setdefault(_op, []).append(_rule)


@register_pass
@dataclass(frozen=True)
class Simplify(Pass):
    """Apply the identities of :data:`RULES` (x*1 = x, Transpose and Reshape chains, no-op Cast/Expand/Pad/
    Slice/Concat, Identity, Dropout) until none matches, at most ``max_rounds`` sweeps.
    Exact, except that x + 0 = x keeps a -0.0 the Add would make +0.0. Nodes a rewrite leaves
    unused stay for ``dead_code``; graph outputs keep their names.
    """

    name: ClassVar[str] = "simplify"
    max_rounds: int = 8

    def run(self, graph: Graph) -> Graph:
        for _ in range(self.max_rounds):
            with Rewriter(graph) as rw:
                for node in list(graph.nodes):
                    if not rw.is_erased(node):
                        self._simplify(node, rw)
            if not rw.rewrites:
                break
        return graph

    @staticmethod
    def _simplify(node: Node, rw: Rewriter) -> None:
        for rule in _BY_OP.get(node.op, ()):
            value = rule(node, rw)
            if value is not None and rw.replace_node(node, [value]):
                return
