"""Loop-nest statements (the lowered form): For, Store, Prefetch, If, Let, Allocate, Seq.

Buffers are flat arrays of one dtype; loads and stores index them with one
int64 expression. A :class:`Kernel` is a function over buffers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from .expr import Expr, Var

LOOP_KINDS = ("serial", "parallel", "vectorized", "unrolled")


@dataclass(eq=False)
class Buffer:
    """A flat buffer: ``shape`` is for printing and bounds; ``scope`` is "global" (a kernel
    parameter) or "local" (allocated inside the kernel by :class:`Allocate`)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    scope: str = "global"

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __repr__(self) -> str:
        return f"Buffer({self.name}, {self.dtype}{list(self.shape)})"


class Stmt:
    """Base class of statements."""


@dataclass(eq=False)
class For(Stmt):
    """``for var in [0, extent)``; ``kind`` is one of :data:`LOOP_KINDS`. A serial loop with
    ``unroll_by`` above 1 is unrolled that many iterations at a time by LLVM (it stays a loop)."""

    var: Var
    extent: int
    body: Stmt
    kind: str = "serial"
    unroll_by: int = 0


@dataclass(eq=False)
class Store(Stmt):
    buffer: Buffer
    index: Expr
    value: Expr


@dataclass(eq=False)
class Prefetch(Stmt):
    """A hint to bring the cache line holding ``buffer[index]`` into the cache ahead of its use
    (for writing, as the line is about to be updated). It never faults, whatever the index,
    and changes no value: a kernel computes the same with or without it."""

    buffer: Buffer
    index: Expr


@dataclass(eq=False)
class If(Stmt):
    cond: Expr
    then: Stmt
    otherwise: Stmt | None = None


@dataclass(eq=False)
class Let(Stmt):
    var: Var
    value: Expr
    body: Stmt


@dataclass(eq=False)
class Allocate(Stmt):
    """A local buffer live during ``body``."""

    buffer: Buffer
    body: Stmt


@dataclass(eq=False)
class Check(Stmt):
    """Stop the kernel with an error unless ``cond`` holds (data-dependent input validation).

    The message names what went wrong (e.g. "index out of range"); the runtime
    raises it as an :class:`ember.InputError` naming the node.
    """

    cond: Expr
    message: str


@dataclass(eq=False)
class Seq(Stmt):
    stmts: list[Stmt] = field(default_factory=list)


def for_range(extent: int, body, name: str = "i", kind: str = "serial") -> For:
    """``for v in [0, extent): body(v)`` with a fresh loop variable (for hand-written nests)."""
    var = Var(name)
    return For(var, int(extent), body(var), kind)


def seq(*stmts: Stmt | None) -> Stmt:
    """A sequence, flattened, without empty parts; a single statement stays itself."""
    flat: list[Stmt] = []
    for s in stmts:
        if s is None:
            continue
        if isinstance(s, Seq):
            flat.extend(s.stmts)
        else:
            flat.append(s)
    return flat[0] if len(flat) == 1 else Seq(flat)


@dataclass(eq=False)
class Kernel:
    """A lowered function: ``params`` are its buffers (inputs, outputs, then workspaces)."""

    name: str
    params: list[Buffer]
    body: Stmt
    num_inputs: int
    num_outputs: int

    @property
    def inputs(self) -> Sequence[Buffer]:
        return self.params[: self.num_inputs]

    @property
    def outputs(self) -> Sequence[Buffer]:
        return self.params[self.num_inputs: self.num_inputs + self.num_outputs]

    @property
    def workspaces(self) -> Sequence[Buffer]:
        return self.params[self.num_inputs + self.num_outputs:]

    def checks(self) -> list[str]:
        """Messages of the kernel's :class:`Check` statements; check ``i`` fails with status ``i + 1``."""
        return [c.message for c in checks_in(self.body)]

    def __str__(self) -> str:
        from .printer import print_kernel

        return print_kernel(self)


def child_stmts(s: Stmt) -> list[Stmt]:
    """The statements directly under ``s``: a sequence's parts, a loop's, a branch's or a binding's body."""
    if isinstance(s, Seq):
        return list(s.stmts)
    return [c for c in (getattr(s, "body", None), getattr(s, "then", None), getattr(s, "otherwise", None))
            if isinstance(c, Stmt)]


def walk_stmts(s: Stmt) -> Iterator[Stmt]:
    """``s`` and every statement under it, in program order."""
    yield s
    for child in child_stmts(s):
        yield from walk_stmts(child)


def checks_in(s: Stmt) -> list[Check]:
    """The :class:`Check` statements under ``s`` in program order (their status codes follow it)."""
    return [x for x in walk_stmts(s) if isinstance(x, Check)]
