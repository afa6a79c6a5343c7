"""The error hierarchy of ember.

Every error a user can cause derives from :class:`EmberError` and names, where
one applies, the node and op it concerns and the reason, e.g.::

    ember.ir.errors.ShapeError: node 'conv1' (Conv): input 1 has 3 channels, expected 4
"""

from __future__ import annotations


class EmberError(Exception):
    """Base class of every error ember raises on bad input."""

    def __init__(self, reason: str, *, node: str | None = None, op: str | None = None):
        self.reason = reason
        self.node = node
        self.op = op
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.node is not None:
            where.append(f"node {self.node!r}")
        if self.op is not None:
            where.append(f"({self.op})" if where else f"op {self.op}")
        return f"{' '.join(where)}: {self.reason}" if where else self.reason

    def at(self, *, node: str | None = None, op: str | None = None) -> "EmberError":
        """Return a copy of this error that names ``node`` and ``op`` (keeps existing ones)."""
        return type(self)(self.reason, node=self.node or node, op=self.op or op)


class ModelError(EmberError):
    """The model is malformed: not ONNX, truncated, dangling names, bad attributes."""


class UnsupportedOpError(EmberError):
    """The model uses ops (or attribute values) that ember does not support."""


class ShapeError(ModelError):
    """Type or shape inference failed: inputs of a node have inconsistent types."""


class AttrError(ModelError):
    """An attribute is missing, unknown, or of the wrong kind."""


class VerifyError(EmberError):
    """The IR breaks an invariant (SSA, types, dangling values)."""


class ParseError(EmberError):
    """The IR text could not be parsed; the reason gives line and column."""


class InputError(EmberError):
    """A feed has the wrong name, shape or dtype, or a symbolic dim is unbound."""


class CompileError(EmberError):
    """The compiler could not lower or build a graph."""
