"""Fusing a kernel's consecutive parallel loop nests into one parallel loop.

A kernel of several stages lowers to one nest per stage, each with its own
parallel loop: Softmax is six (a max in two steps, the exponentials, their sum
in two steps, the division), LayerNormalization a few. Each parallel loop is a
dispatch to the thread pool and a join, and each sweeps the whole tensor, so a
row's data has left the cache by the time the next stage reads it. When two
consecutive nests run their parallel loop over the same extent and iteration
``i`` of both touches only its own slice of every buffer either of them
writes, the nests become one (one of the two may be a serial or vectorized
loop instead, a per-row step between parallel passes such as a norm's mean)::

    for (b, 0, 1) {                        for parallel (h, 0, 12) {
      for parallel (h, 0, 12) { A(b, h) }    A(0, h)
    }                                ==>     B(0, h)
    for (b2, 0, 1) {                       }
      for parallel (h2, 0, 12) { B(b2, h2) }
    }

Legality is checked on the flat indices: for every buffer written by either
nest (kernel parameters and workspaces; a local buffer allocated inside a
nest is private to its iteration), the range of indices each iteration of the
parallel loop can touch in either nest (interval bounds over the other loops'
ranges) must be disjoint from every other iteration's. Then no iteration reads
what another one writes, in either order, and running ``A(i); B(i)`` for each
``i`` computes what ``A`` for all ``i`` then ``B`` for all ``i`` does. An index
whose bounds are unknown (a data-dependent gather, a ``Let``) refuses the fusion.
"""

from __future__ import annotations

from typing import Iterator

from .expr import Expr, Load, Var, const
from .simplify import bounds
from .stmt import Allocate, Check, For, If, Let, Prefetch, Seq, Stmt, Store, seq, walk_stmts
from .tensor import walk
from .visit import substitute_stmt

# the longest parallel loop whose iterations' slices are checked one by one
MAX_CHECKED_ITERATIONS = 4096


def fuse_parallel_nests(body: Stmt) -> Stmt:
    """``body`` (a kernel's sequence of nests) with consecutive fusible parallel nests fused."""
    nests = body.stmts if isinstance(body, Seq) else [body]
    fused: list[Stmt] = []
    for nest in nests:
        merged = _fuse(fused[-1], nest) if fused else None
        if merged is None:
            fused.append(nest)
        else:
            fused[-1] = merged
    return seq(*fused)


def _outer_loop(nest: Stmt) -> For | None:
    """The nest's outermost loop of more than one iteration with the loops of extent 1 around it
    substituted away, if the nest is such loops around one loop."""
    units: dict[Var, Expr] = {}
    while isinstance(nest, For) and nest.extent == 1 and nest.kind != "parallel":
        units[nest.var] = const(0, nest.var.dtype)
        nest = nest.body
    if not isinstance(nest, For) or nest.kind not in ("parallel", "serial", "vectorized"):
        return None
    return For(nest.var, nest.extent, substitute_stmt(nest.body, units), nest.kind, nest.unroll_by) if units else nest


def _fuse(first: Stmt, second: Stmt) -> For | None:
    """One parallel loop doing ``first`` then ``second`` per iteration, if that is the same. One of
    them may be a serial or vectorized loop (a per-row step such as a norm's mean between two
    parallel passes): it becomes the scalar body of an iteration."""
    a, b = _outer_loop(first), _outer_loop(second)
    if (a is None or b is None or a.extent != b.extent or a.extent > MAX_CHECKED_ITERATIONS
            or "parallel" not in (a.kind, b.kind)):
        return None
    b_body = substitute_stmt(b.body, {b.var: a.var})
    if not _iterations_disjoint(a.var, a.extent, [a.body, b_body]):
        return None
    return For(a.var, a.extent, seq(a.body, b_body), "parallel")


def _iterations_disjoint(var: Var, extent: int, bodies: list[Stmt]) -> bool:
    """Whether, for every shared buffer written in ``bodies``, the indices iteration ``var = i`` can
    touch are disjoint from those of every other iteration."""
    accesses: dict[int, list[tuple[Expr, dict]]] = {}  # buffer -> (index, ranges of the loops around it)
    written: set[int] = set()
    private: set[int] = set()
    for body in bodies:
        for buffer, index, ranges, is_store in _accesses(body, {}):
            accesses.setdefault(id(buffer), []).append((index, ranges))
            if is_store:
                written.add(id(buffer))
        private |= {id(s.buffer) for s in walk_stmts(body) if isinstance(s, Allocate)}
    for key in written - private:
        spans = []
        for i in range(extent):
            low, high = None, None
            for index, ranges in accesses[key]:
                span = bounds(index, {**ranges, var: (i, i)})
                if span is None:
                    return False
                low = span[0] if low is None else min(low, span[0])
                high = span[1] if high is None else max(high, span[1])
            spans.append((low, high))
        spans.sort()
        if any(spans[n + 1][0] <= spans[n][1] for n in range(len(spans) - 1)):
            return False
    return True


def _accesses(s: Stmt, ranges: dict) -> Iterator[tuple]:
    """(buffer, index, loop ranges, is a store) of every load, store and prefetch in ``s``."""
    def loads(e: Expr) -> Iterator[tuple]:
        for x in walk(e):
            if isinstance(x, Load):
                yield x.buffer, x.index, ranges, False

    if isinstance(s, For):
        yield from _accesses(s.body, {**ranges, s.var: (0, s.extent - 1)})
    elif isinstance(s, Store):
        yield s.buffer, s.index, ranges, True
        yield from loads(s.index)
        yield from loads(s.value)
    elif isinstance(s, Prefetch):
        yield from loads(s.index)  # (a prefetch reads nothing and writes nothing)
    elif isinstance(s, (If, Check)):
        yield from loads(s.cond)
        for child in (getattr(s, "then", None), getattr(s, "otherwise", None)):
            if child is not None:
                yield from _accesses(child, ranges)
    elif isinstance(s, Let):
        yield from loads(s.value)
        yield from _accesses(s.body, ranges)  # its variable has no range: indices using it are unknown
    elif isinstance(s, Allocate):
        yield from _accesses(s.body, ranges)
    elif isinstance(s, Seq):
        for child in s.stmts:
            yield from _accesses(child, ranges)
