"""The rewriter: the one way graph passes change a graph, counting every rewrite.

A pass opens a :class:`Rewriter` on the graph it runs on, builds new values
through it (:meth:`~Rewriter.constant`, :meth:`~Rewriter.apply`) and replaces
old ones (:meth:`~Rewriter.replace`, :meth:`~Rewriter.replace_node`,
:meth:`~Rewriter.erase`). Each successful replacement or erasure counts as one
rewrite; when the rewriter finishes it adds its count to the pass being run,
so the pass context can report rewrites per pass.

The rewriter keeps the graph's interface: a graph output keeps its name
whatever value comes to compute it (the new value takes the name, the old one
gets the new one's; the old is dead by then). Where that is impossible, because
the new value is a graph input or already another graph output, the
replacement is refused and returns ``False``; the caller skips its rewrite.

>>> from ember.ir import parse
>>> g = parse('''graph g(%x: f32[2]) {
...   %a: f32[2] = Identity(%x)
...   %y: f32[2] = Relu(%a)
...   return %y
... }''')
>>> with Rewriter(g) as rw:
...     identity = g.nodes[0]
...     rw.replace_node(identity, [identity.inputs[0]])
True
>>> [n.op for n in g.nodes], rw.rewrites
(['Relu'], 1)
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Mapping, Sequence

import numpy as np

from ember.ir import Graph, Node, Value

# The stats record of the pass being run by a PassContext (None outside one);
# finished rewriters add their counts to its "rewrites" entry.
ACTIVE_RECORD: ContextVar[dict | None] = ContextVar("ember_active_pass_record", default=None)


class Rewriter:
    """Builds and replaces values in ``graph``, counting rewrites (see the module docstring).

    Use it as a context manager, or call :meth:`finish` when done: finishing
    restores topological order (new nodes are appended at the end) and reports
    the count.
    """

    def __init__(self, graph: Graph):
        self.graph = graph
        self.rewrites = 0
        # Keyed by id, holding the objects so that ids are never reused while we look.
        self._erased: dict[int, Node] = {}
        self._fresh: dict[int, Value] = {}  # values this rewriter created, not yet named after another
        self._added_nodes = False
        self._finished = False

    # ------------------------------------------------------------------ building
    def constant(self, array: np.ndarray, hint: str = "const") -> Value:
        """A new constant holding ``array`` (never mutated afterwards), named after ``hint``."""
        value = self.graph.add_constant(np.asarray(array), self.graph.fresh_name(hint))
        self._fresh[id(value)] = value
        return value

    def add_node(self, op: str, inputs: Sequence[Value], attrs: Mapping[str, Any] | None = None, *,
                 hint: str | None = None) -> Node:
        """A new node applying ``op`` (appended; :meth:`finish` puts it in order)."""
        node = self.graph.add_node(op, inputs, attrs)
        if hint is not None:  # add_node names outputs after the op
            self._rename(node.outputs[0], self.graph.fresh_name(hint))
        self._fresh.update((id(v), v) for v in node.outputs)
        self._added_nodes = True
        return node

    def apply(self, op: str, inputs: Sequence[Value], attrs: Mapping[str, Any] | None = None, *,
              hint: str | None = None) -> Value:
        """The output of a new single-output node applying ``op``."""
        return self.add_node(op, inputs, attrs, hint=hint).output

    # ------------------------------------------------------------------ queries
    def users(self, value: Value) -> list[tuple[Node, int]]:
        """The (node, input index) pairs reading ``value``."""
        return self.graph.users(value)

    def is_output(self, value: Value) -> bool:
        return any(v is value for v in self.graph.outputs)

    def only_user(self, value: Value) -> Node | None:
        """The single node reading ``value`` (once), if that is its only use and it is no graph output."""
        users = self.users(value)
        if len(users) != 1 or self.is_output(value):
            return None
        return users[0][0]

    def is_erased(self, node: Node) -> bool:
        return id(node) in self._erased

    def can_replace(self, old: Value, new: Value) -> bool:
        """Whether :meth:`replace` would accept replacing ``old`` by ``new``."""
        if old is new or old.type != new.type:
            return False
        if not self.is_output(old):
            return True
        # new takes old's output name: it must not have an interface name of its own.
        return not self.is_output(new) and not any(v is new for v in self.graph.inputs)

    # ------------------------------------------------------------------ rewriting
    def replace(self, old: Value, new: Value) -> bool:
        """Make every reader of ``old`` (nodes and graph outputs) read ``new``; one rewrite.

        Returns ``False`` and changes nothing when ``old`` is a graph output
        that ``new`` cannot stand in for (see the module docstring). Types must match.
        """
        if not self._check(old, new):
            return False
        self._replace(old, new)
        self.rewrites += 1
        return True

    def replace_node(self, node: Node, values: Sequence[Value], dead: Sequence[Node] = ()) -> bool:
        """Replace every output of ``node`` by ``values`` and erase it (and the now unused ``dead`` nodes).

        All or nothing: returns ``False`` and changes nothing if one output
        cannot be replaced. Counts one rewrite.
        """
        if len(values) != len(node.outputs):
            raise ValueError(f"{node.op} node {node.name!r} has {len(node.outputs)} outputs, "
                             f"{len(values)} replacements given")
        if not all(self._check(old, new) or old is new for old, new in zip(node.outputs, values)):
            return False
        for old, new in zip(node.outputs, values):
            if old is not new:
                self._replace(old, new)
        self._erase([node, *dead])
        self.rewrites += 1
        return True

    def erase(self, *nodes: Node) -> None:
        """Remove ``nodes``, whose outputs nothing may read any more; one rewrite per node."""
        self._erase(nodes)
        self.rewrites += len(nodes)

    def inherit_name(self, new: Value, old: Value) -> None:
        """Give ``new`` the name of ``old`` if ``old`` is unused now (not a rewrite: only names change).

        Keeps rewritten IR reading like its input: a folded weight keeps the
        weight's name. Interface values (graph inputs and outputs) keep theirs.
        """
        interface = {id(v) for v in self.graph.inputs} | {id(v) for v in self.graph.outputs}
        if old is not new and not ({id(old), id(new)} & interface) and not self.users(old):
            self._swap_names(old, new)

    def finish(self) -> Graph:
        """Restore topological order, report the rewrite count; returns the graph."""
        if not self._finished:
            self._finished = True
            if self._added_nodes:
                self.graph.toposort()
            record = ACTIVE_RECORD.get()
            if record is not None:
                record["rewrites"] = record.get("rewrites", 0) + self.rewrites
        return self.graph

    def __enter__(self) -> "Rewriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()

    # ------------------------------------------------------------------ internals
    def _check(self, old: Value, new: Value) -> bool:
        if old.type != new.type:
            raise ValueError(f"cannot replace %{old.name}: {old.type} by %{new.name}: {new.type} (types differ)")
        return self.can_replace(old, new)

    def _replace(self, old: Value, new: Value) -> None:
        # A graph output keeps its name; a value this rewriter just created takes
        # the name of the first value it stands in for, so rewritten IR reads like its input.
        if self.is_output(old) or (id(new) in self._fresh and not any(v is old for v in self.graph.inputs)):
            self._fresh.pop(id(new), None)
            self._swap_names(old, new)
        self.graph.replace_all_uses(old, new)

    def _swap_names(self, old: Value, new: Value) -> None:
        old_name, new_name = old.name, new.name
        self._rename(old, new_name + "\0")  # temporary, so the two never share a name
        self._rename(new, old_name)
        self._rename(old, new_name)

    def _rename(self, value: Value, name: str) -> None:
        producer = value.producer
        if producer is not None and producer.name == value.name:
            producer.name = name  # a node named after its output follows it
        self.graph.rename(value, name)

    def _erase(self, nodes: Sequence[Node]) -> None:
        if nodes:
            self._erased.update((id(n), n) for n in nodes)
            self.graph.remove_nodes(nodes)
