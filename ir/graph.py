"""The computation graph: typed SSA values, nodes applying registry ops, graphs.

A :class:`Graph` owns its :class:`Node` list in topological order. Every
:class:`Value` is defined once: as a graph input, as a constant (it holds a
numpy array in ``data``), or as an output of exactly one node. Nodes are built
through :meth:`Graph.add_node`, which normalizes attributes and infers output
types from the op registry, so a graph built through the API is always typed
consistently; :func:`ember.ir.verify` re-checks every invariant.

>>> import numpy as np
>>> g = Graph("example")
>>> x = g.add_input("x", TensorType("float32", (2, 3)))
>>> y = g.apply("Relu", [x])
>>> g.set_outputs([y])
>>> print(g)                                       # doctest: +NORMALIZE_WHITESPACE
graph example(%x: f32[2,3]) {
  %Relu_0: f32[2,3] = Relu(%x)
  return %Relu_0
}
"""

from __future__ import annotations

import itertools
from typing import Any, Iterable, Iterator, Mapping, Sequence

import networkx as nx
import numpy as np

from .errors import EmberError, ModelError, VerifyError
from .ops import get_op
from .ops.registry import OpDef
from .types import TensorType


class Value:
    """An SSA value: a name, a static type, and its definition."""

    __slots__ = ("name", "type", "producer", "data")

    def __init__(self, name: str, type: TensorType, *, producer: "Node | None" = None,
                 data: np.ndarray | None = None):
        self.name = name
        self.type = type
        self.producer = producer
        self.data = data

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    def __repr__(self) -> str:
        return f"%{self.name}: {self.type}"


class Node:
    """One application of a registry op to input values, defining output values."""

    __slots__ = ("op", "inputs", "outputs", "attrs", "name")

    def __init__(self, op: str, inputs: list[Value], outputs: list[Value], attrs: dict, name: str):
        self.op = op
        self.inputs = inputs
        self.outputs = outputs
        self.attrs = attrs
        self.name = name

    @property
    def opdef(self) -> OpDef:
        return get_op(self.op)

    @property
    def output(self) -> Value:
        """The single output of a one-output node."""
        assert len(self.outputs) == 1, f"{self.op} has {len(self.outputs)} outputs"
        return self.outputs[0]

    def __repr__(self) -> str:
        return f"<Node {self.name!r} {self.op}>"


class Graph:
    """A typed computation graph with static shapes. See the module docstring."""

    def __init__(self, name: str = "main"):
        self.name = name
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.nodes: list[Node] = []
        self._names: set[str] = set()
        self._counter = itertools.count()

    # ---------------------------------------------------------------- building
    def fresh_name(self, hint: str = "v") -> str:
        """A value name not yet used in this graph, derived from ``hint``."""
        if hint not in self._names:
            return hint
        while True:
            name = f"{hint}_{next(self._counter)}"
            if name not in self._names:
                return name

    def _claim(self, name: str | None, hint: str) -> str:
        if name is None:
            name = self.fresh_name(hint)
        elif name in self._names:
            raise ModelError(f"value name {name!r} is defined twice")
        self._names.add(name)
        return name

    def add_input(self, name: str, type: TensorType) -> Value:
        """Declare a graph input."""
        value = Value(self._claim(name, "input"), type)
        self.inputs.append(value)
        return value

    def add_constant(self, array: np.ndarray, name: str | None = None) -> Value:
        """A constant value holding ``array`` (which must not be mutated afterwards)."""
        array = np.asarray(array)
        value = Value(self._claim(name, "const"), TensorType.of(array), data=array)
        return value

    def add_node(self, op: str, inputs: Sequence[Value], attrs: Mapping[str, Any] | None = None, *,
                 name: str | None = None, output_names: Sequence[str | None] | None = None) -> Node:
        """Append a node applying ``op``; output types come from the op's inference.

        Errors (unknown op, bad attributes, inconsistent input types) name the
        node and op.
        """
        node_name = name or (output_names[0] if output_names and output_names[0] else None)
        try:
            opdef = get_op(op)
            norm = opdef.normalize_attrs(attrs or {})
            types = opdef.infer_types([v.type for v in inputs], norm)
        except EmberError as err:
            raise err.at(node=node_name, op=op) from None
        if output_names is not None and len(output_names) != len(types):
            raise ModelError(f"has {len(types)} outputs, {len(output_names)} names given", node=node_name, op=op)
        names = list(output_names) if output_names is not None else [None] * len(types)
        outputs = [Value(self._claim(n, f"{op}_0" if i == 0 else f"{op}_0_{i}"), t)
                   for i, (n, t) in enumerate(zip(names, types))]
        node = Node(op, list(inputs), outputs, norm, node_name or outputs[0].name)
        for out in outputs:
            out.producer = node
        self.nodes.append(node)
        return node

    def apply(self, op: str, inputs: Sequence[Value], attrs: Mapping[str, Any] | None = None,
              **kwargs) -> Value:
        """Add a single-output node and return its output value."""
        return self.add_node(op, inputs, attrs, **kwargs).output

    def set_outputs(self, values: Iterable[Value]) -> None:
        self.outputs = list(values)

    # ---------------------------------------------------------------- queries
    def constants(self) -> list[Value]:
        """Constant values used by nodes or outputs, in first-use order."""
        seen: dict[int, Value] = {}
        for node in self.nodes:
            for v in node.inputs:
                if v.is_constant:
                    seen.setdefault(id(v), v)
        for v in self.outputs:
            if v.is_constant:
                seen.setdefault(id(v), v)
        return list(seen.values())

    def values(self) -> Iterator[Value]:
        """Every value: inputs, constants, then node outputs in order."""
        yield from self.inputs
        yield from self.constants()
        for node in self.nodes:
            yield from node.outputs

    def users(self, value: Value) -> list[tuple[Node, int]]:
        """The (node, input index) pairs that read ``value``."""
        return [(n, i) for n in self.nodes for i, v in enumerate(n.inputs) if v is value]

    def use_map(self) -> dict[int, list[tuple[Node, int]]]:
        """``id(value) -> [(node, input index), ...]`` for all values at once."""
        uses: dict[int, list[tuple[Node, int]]] = {}
        for node in self.nodes:
            for i, v in enumerate(node.inputs):
                uses.setdefault(id(v), []).append((node, i))
        return uses

    def node_by_name(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    # ---------------------------------------------------------------- rewriting
    def replace_all_uses(self, old: Value, new: Value) -> None:
        """Make every reader of ``old`` (nodes and graph outputs) read ``new``."""
        for node in self.nodes:
            node.inputs = [new if v is old else v for v in node.inputs]
        self.outputs = [new if v is old else v for v in self.outputs]

    def rename(self, value: Value, name: str) -> None:
        """Give ``value`` a new name (unused in this graph)."""
        if name == value.name:
            return
        if name in self._names:
            raise ModelError(f"value name {name!r} is already used")
        self._names.discard(value.name)
        self._names.add(name)
        value.name = name

    def remove_nodes(self, nodes: Iterable[Node]) -> None:
        dead = {id(n) for n in nodes}
        for node in self.nodes:
            if id(node) in dead:
                for out in node.outputs:
                    self._names.discard(out.name)
        self.nodes = [n for n in self.nodes if id(n) not in dead]

    def toposort(self) -> None:
        """Reorder ``nodes`` topologically (stable); raises on a cycle (dangling inputs are the verifier's job)."""
        producer = {id(out): n for n in self.nodes for out in n.outputs}
        order: list[Node] = []
        state: dict[int, int] = {}  # 1 = visiting, 2 = done

        def visit(node: Node) -> None:
            stack = [(node, iter(node.inputs))]
            state[id(node)] = 1
            while stack:
                current, pending = stack[-1]
                for v in pending:
                    dep = producer.get(id(v))
                    if dep is None:
                        continue
                    if state.get(id(dep)) == 1:
                        raise VerifyError("graph has a cycle", node=dep.name, op=dep.op)
                    if state.get(id(dep)) is None:
                        state[id(dep)] = 1
                        stack.append((dep, iter(dep.inputs)))
                        break
                else:
                    stack.pop()
                    state[id(current)] = 2
                    order.append(current)

        for node in self.nodes:
            if id(node) not in state:
                visit(node)
        self.nodes = order

    def to_networkx(self) -> nx.MultiDiGraph:
        """A networkx view: one graph node per op node (keyed by the Node), edges labelled by value."""
        g = nx.MultiDiGraph()
        producer = {id(out): n for n in self.nodes for out in n.outputs}
        for node in self.nodes:
            g.add_node(node, op=node.op)
        for node in self.nodes:
            for v in node.inputs:
                if id(v) in producer:
                    g.add_edge(producer[id(v)], node, value=v)
        return g

    def copy(self) -> "Graph":
        """A structural copy: new values and nodes, same names (constant arrays are shared)."""
        g = Graph(self.name)
        mapping: dict[int, Value] = {}
        for v in self.inputs:
            mapping[id(v)] = g.add_input(v.name, v.type)
        for c in self.constants():
            mapping[id(c)] = Value(g._claim(c.name, "const"), c.type, data=c.data)
        for node in self.nodes:
            outs = [Value(g._claim(o.name, "v"), o.type) for o in node.outputs]
            new = Node(node.op, [mapping[id(v)] for v in node.inputs], outs, dict(node.attrs), node.name)
            for old, out in zip(node.outputs, outs):
                out.producer = new
                mapping[id(old)] = out
            g.nodes.append(new)
        g.outputs = [mapping[id(v)] for v in self.outputs]
        return g

    # ---------------------------------------------------------------- dunder
    def __str__(self) -> str:
        from .text import print_graph

        return print_graph(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        from .compare import graphs_equal

        return graphs_equal(self, other, names=True)

    __hash__ = None  # type: ignore[assignment]  (mutable)
