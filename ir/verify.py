"""The IR verifier: SSA, no dangling values, types consistent with the op registry."""

from __future__ import annotations

from .errors import EmberError, VerifyError
from .graph import Graph
from .ops import get_op
from .types import TensorType


def verify(graph: Graph) -> Graph:
    """Check every invariant of ``graph``; raise :class:`VerifyError` naming the node.

    Checked: value names are unique; each value is defined once (graph input,
    constant, or one node's output) before it is used; constants hold data of
    their type; every op is registered, its attributes are normalized, and its
    output types equal what inference gives; graph outputs are defined.
    Returns ``graph`` so calls can be chained.
    """
    names: set[str] = set()
    defined: set[int] = set()

    def define(value, node=None) -> None:
        where = {"node": node.name, "op": node.op} if node else {}
        if value.name in names:
            raise VerifyError(f"value %{value.name} is defined twice", **where)
        if id(value) in defined:
            raise VerifyError(f"value %{value.name} is defined twice", **where)
        names.add(value.name)
        defined.add(id(value))

    for v in graph.inputs:
        if v.is_constant or v.producer is not None:
            raise VerifyError(f"graph input %{v.name} must not be a constant or a node output")
        define(v)
    for c in graph.constants():
        if c.producer is not None:
            raise VerifyError(f"constant %{c.name} also has a producer")
        if TensorType.of(c.data) != c.type:
            raise VerifyError(f"constant %{c.name} holds {TensorType.of(c.data)} data, typed {c.type}")
        define(c)
    for node in graph.nodes:
        for i, v in enumerate(node.inputs):
            if id(v) not in defined:
                raise VerifyError(f"input {i} %{v.name} is not defined before this node (dangling or out of order)",
                                  node=node.name, op=node.op)
        try:
            opdef = get_op(node.op)
            attrs = opdef.normalize_attrs(node.attrs)
            if attrs != node.attrs:
                raise VerifyError(f"attributes are not normalized: {node.attrs} vs {attrs}")
            inferred = opdef.infer_types([v.type for v in node.inputs], attrs)
        except EmberError as err:
            raise VerifyError(err.reason, node=node.name, op=node.op) from None
        if len(inferred) != len(node.outputs):
            raise VerifyError(f"has {len(node.outputs)} outputs, the op defines {len(inferred)}",
                              node=node.name, op=node.op)
        for out, t in zip(node.outputs, inferred):
            if out.type != t:
                raise VerifyError(f"output %{out.name} is typed {out.type}, inference gives {t}",
                                  node=node.name, op=node.op)
            if out.producer is not node:
                raise VerifyError(f"output %{out.name} does not point back to its node", node=node.name, op=node.op)
            define(out, node)
    if not graph.outputs:
        raise VerifyError("graph has no outputs")
    seen: set[int] = set()
    for v in graph.outputs:
        if id(v) not in defined:
            raise VerifyError(f"graph output %{v.name} is not defined")
        if id(v) in seen:
            raise VerifyError(f"graph output %{v.name} is listed twice (outputs need distinct names)")
        seen.add(id(v))
    return graph
