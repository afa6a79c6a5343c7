"""Rebuilding expressions (map over children, substitute variables) and statements (substitute variables)."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Mapping

from .expr import Binary, Call, Cast, Compare, Expr, Load, Not, Ramp, Select, Var


def map_children(e: Expr, f: Callable[[Expr], Expr]) -> Expr:
    """``e`` with ``f`` applied to each direct child (``e`` itself if nothing changed)."""
    from .tensor import Reduce, TensorRead

    if isinstance(e, (Binary, Compare)):
        a, b = f(e.a), f(e.b)
        return e if (a is e.a and b is e.b) else replace(e, a=a, b=b)
    if isinstance(e, (Not, Cast)):
        a = f(e.a)
        return e if a is e.a else replace(e, a=a)
    if isinstance(e, Select):
        c, a, b = f(e.cond), f(e.a), f(e.b)
        return e if (c is e.cond and a is e.a and b is e.b) else replace(e, cond=c, a=a, b=b)
    if isinstance(e, Call):
        args = tuple(f(x) for x in e.args)
        return e if all(x is y for x, y in zip(args, e.args)) else replace(e, args=args)
    if isinstance(e, Load):
        i = f(e.index)
        return e if i is e.index else replace(e, index=i)
    if isinstance(e, Ramp):
        b = f(e.base)
        return e if b is e.base else replace(e, base=b)
    if isinstance(e, TensorRead):
        idx = tuple(f(x) for x in e.indices)
        return e if all(x is y for x, y in zip(idx, e.indices)) else replace(e, indices=idx)
    if isinstance(e, Reduce):
        s = f(e.source)
        return e if s is e.source else replace(e, source=s)
    return e


def post_order(e: Expr, f: Callable[[Expr], Expr]) -> Expr:
    """Rebuild ``e`` bottom-up, applying ``f`` to every node after its children."""
    memo: dict[int, Expr] = {}

    def go(x: Expr) -> Expr:
        key = id(x)
        if key not in memo:
            memo[key] = f(map_children(x, go))
        return memo[key]

    return go(e)


def substitute(e: Expr, mapping: Mapping[Var, Expr]) -> Expr:
    """``e`` with every variable in ``mapping`` replaced by its expression."""
    if not mapping:
        return e
    return post_order(e, lambda x: mapping.get(x, x) if isinstance(x, Var) else x)


def substitute_stmt(s, mapping: Mapping[Var, Expr]):
    """Statement ``s`` rebuilt with every variable in ``mapping`` replaced by its expression (each
    expression simplified after the substitution)."""
    from .simplify import simplify
    from .stmt import Allocate, Check, For, If, Let, Prefetch, Seq, Store

    def e(x: Expr) -> Expr:
        return simplify(substitute(x, mapping))

    if isinstance(s, For):
        return For(s.var, s.extent, substitute_stmt(s.body, mapping), s.kind, s.unroll_by)
    if isinstance(s, Store):
        return Store(s.buffer, e(s.index), e(s.value))
    if isinstance(s, Prefetch):
        return Prefetch(s.buffer, e(s.index))
    if isinstance(s, If):
        otherwise = None if s.otherwise is None else substitute_stmt(s.otherwise, mapping)
        return If(e(s.cond), substitute_stmt(s.then, mapping), otherwise)
    if isinstance(s, Let):
        return Let(s.var, e(s.value), substitute_stmt(s.body, mapping))
    if isinstance(s, Allocate):
        return Allocate(s.buffer, substitute_stmt(s.body, mapping))
    if isinstance(s, Check):
        return Check(e(s.cond), s.message)
    if isinstance(s, Seq):
        return Seq([substitute_stmt(c, mapping) for c in s.stmts])
    raise TypeError(f"unknown statement {type(s).__name__}")


def free_vars(e: Expr) -> set[Var]:
    """The variables ``e`` mentions."""
    from .tensor import walk

    return {x for x in walk(e) if isinstance(x, Var)}
