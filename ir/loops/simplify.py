"""Simplifying index arithmetic: constant folding, identities, and range facts.

``simplify(e, ranges)`` folds integer and boolean constants, removes
``x + 0``, ``x * 1`` and friends, merges nested constants, and uses the ranges
of loop variables (``{var: (lo, hi)}``, inclusive) to cancel divisions
(``(a*c + b) // c -> a`` when ``0 <= b < c``) and decide comparisons. Float
arithmetic is left alone (folding it in Python would change its rounding).
"""

from __future__ import annotations

from typing import Mapping

from .expr import Binary, Compare, Const, Expr, Not, Select, Var, children, const, is_float
from .visit import post_order

Range = tuple[int, int]


def bounds(e: Expr, ranges: Mapping[Var, Range]) -> Range | None:
    """Inclusive integer bounds of ``e``, or None when unknown."""
    if isinstance(e, Const) and not is_float(e.dtype):
        return int(e.value), int(e.value)
    if isinstance(e, Var):
        return ranges.get(e)
    if isinstance(e, Binary) and not is_float(e.dtype):
        a, b = bounds(e.a, ranges), bounds(e.b, ranges)
        if a is None or b is None:
            return None
        if e.op == "add":
            return a[0] + b[0], a[1] + b[1]
        if e.op == "sub":
            return a[0] - b[1], a[1] - b[0]
        if e.op == "mul":
            products = [x * y for x in a for y in b]
            return min(products), max(products)
        if e.op == "min":
            return min(a[0], b[0]), min(a[1], b[1])
        if e.op == "max":
            return max(a[0], b[0]), max(a[1], b[1])
        if e.op == "floordiv" and b[0] == b[1] and b[0] > 0:
            return a[0] // b[0], a[1] // b[0]
        if e.op == "floormod" and b[0] == b[1] and b[0] > 0:
            if a[0] >= 0 and a[1] < b[0]:
                return a
            return 0, b[0] - 1
    return None


def same(a: Expr, b: Expr) -> bool:
    """Structural equality of two expressions (variables by identity)."""
    if a is b:
        return True
    if type(a) is not type(b) or a.dtype != b.dtype:
        return False
    if isinstance(a, Const):
        return a.value == b.value
    if isinstance(a, Var):
        return False
    if isinstance(a, (Binary, Compare)) and a.op != b.op:
        return False
    from .expr import Call, Load

    if isinstance(a, Call) and a.name != b.name:
        return False
    if isinstance(a, Load) and a.buffer is not b.buffer:
        return False
    ca, cb = children(a), children(b)
    return len(ca) == len(cb) and all(same(x, y) for x, y in zip(ca, cb))


def _int_const(e: Expr) -> int | None:
    return int(e.value) if isinstance(e, Const) and not is_float(e.dtype) and e.dtype != "bool" else None


_FOLD = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "floordiv": lambda a, b: a // b, "floormod": lambda a, b: a % b, "min": min, "max": max,
}
_COMPARE = {"lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "gt": lambda a, b: a > b,
            "ge": lambda a, b: a >= b, "eq": lambda a, b: a == b, "ne": lambda a, b: a != b}


def _split_multiple(e: Expr, c: int) -> tuple[Expr | None, Expr | None]:
    """Write ``e`` as ``q * c + r`` syntactically: returns (q, r) (either may be None = 0)."""
    if isinstance(e, Binary) and e.op == "mul" and _int_const(e.b) == c:
        return e.a, None
    if isinstance(e, Binary) and e.op == "add":
        q, r = _split_multiple(e.a, c)
        if q is not None:
            return q, e.b if r is None else Binary("add", r, e.b, e.dtype)
        q, r = _split_multiple(e.b, c)
        if q is not None:
            return q, e.a if r is None else Binary("add", e.a, r, e.dtype)
    return None, e


def _term_multiplier(e: Expr) -> int | None:
    """``k`` when ``e`` is ``x * k`` or a sum with such a term (a split loop's outer part)."""
    if isinstance(e, Binary) and e.op == "mul":
        return _int_const(e.b)
    if isinstance(e, Binary) and e.op == "add":
        return _term_multiplier(e.a) or _term_multiplier(e.b)
    return None


def _simplify_binary(e: Binary, ranges: Mapping[Var, Range]) -> Expr:
    if is_float(e.dtype):
        return e
    a, b = e.a, e.b
    ca, cb = _int_const(a), _int_const(b)
    if e.dtype == "bool":
        return _simplify_logic(e)
    if ca is not None and cb is not None and e.op in _FOLD and not (e.op in ("floordiv", "floormod") and cb == 0):
        return const(_FOLD[e.op](ca, cb), e.dtype)
    op = e.op
    if op == "add":
        if ca == 0:
            return b
        if cb == 0:
            return a
        undone = _undo_div_mod(a, b, ranges)
        if undone is not None:
            return undone
        if cb is not None and isinstance(a, Binary) and a.op == "add" and _int_const(a.b) is not None:
            return _simplify_binary(Binary("add", a.a, const(_int_const(a.b) + cb, e.dtype), e.dtype), ranges)
    elif op == "sub":
        if cb == 0:
            return a
        if same(a, b):
            return const(0, e.dtype)
        if isinstance(a, Binary) and a.op == "add":  # (x + y) - x -> y, (x + y) - y -> x
            if same(a.a, b):
                return a.b
            if same(a.b, b):
                return a.a
    elif op == "mul":
        if ca == 0 or cb == 0:
            return const(0, e.dtype)
        if ca == 1:
            return b
        if cb == 1:
            return a
        if cb is not None and isinstance(a, Binary) and a.op == "mul" and _int_const(a.b) is not None:
            return Binary("mul", a.a, const(_int_const(a.b) * cb, e.dtype), e.dtype)
    elif op in ("floordiv", "floormod") and cb is not None and cb > 0:
        if cb == 1:
            return a if op == "floordiv" else const(0, e.dtype)
        ra = bounds(a, ranges)
        if ra is not None and 0 <= ra[0] and ra[1] < cb:
            return const(0, e.dtype) if op == "floordiv" else a
        q, r = _split_multiple(a, cb)
        if q is not None:
            rr = bounds(r, ranges) if r is not None else (0, 0)
            if rr is not None and 0 <= rr[0] and rr[1] < cb:
                if op == "floordiv":
                    return q
                return r if r is not None else const(0, e.dtype)
        if op == "floordiv":  # (q * k + r) // c -> q // (c / k) when k divides c and 0 <= r < k
            k = _term_multiplier(a)
            if k is not None and 1 < k < cb and cb % k == 0:
                q, r = _split_multiple(a, k)
                rr = bounds(r, ranges) if r is not None else (0, 0)
                if q is not None and rr is not None and 0 <= rr[0] and rr[1] < k:
                    return _simplify_binary(Binary("floordiv", q, const(cb // k, e.dtype), e.dtype), ranges)
    elif op in ("min", "max"):
        ra, rb = bounds(a, ranges), bounds(b, ranges)
        if ra is not None and rb is not None:
            if ra[1] <= rb[0]:
                return a if op == "min" else b
            if rb[1] <= ra[0]:
                return b if op == "min" else a
    return e


def _undo_div_mod(a: Expr, b: Expr, ranges: Mapping[Var, Range]) -> Expr | None:
    """``(x // c) * c + x % c -> x`` (a fused loop split back into its parts and recombined), and
    ``(y + x // c) * c + x % c -> y * c + x`` (the row-major index of ``[..., x // c, x % c]``)."""
    if not (isinstance(a, Binary) and a.op == "mul" and isinstance(b, Binary) and b.op == "floormod"):
        return None
    c = _int_const(a.b)
    div = a.a
    if c is None or c <= 0 or _int_const(b.b) != c:
        return None

    def is_quotient(e: Expr) -> bool:
        return isinstance(e, Binary) and e.op == "floordiv" and _int_const(e.b) == c and same(e.a, b.a)

    if is_quotient(div):
        return div.a
    if isinstance(div, Binary) and div.op == "add" and is_quotient(div.b):
        outer = _simplify_binary(Binary("mul", div.a, const(c, a.dtype), a.dtype), ranges)
        return _simplify_binary(Binary("add", outer, b.a, a.dtype), ranges)
    return None


def _simplify_logic(e: Binary) -> Expr:
    a, b = e.a, e.b
    av = a.value if isinstance(a, Const) else None
    bv = b.value if isinstance(b, Const) else None
    if e.op == "and":
        if av is False or bv is False:
            return const(False, "bool")
        if av is True:
            return b
        if bv is True:
            return a
    if e.op == "or":
        if av is True or bv is True:
            return const(True, "bool")
        if av is False:
            return b
        if bv is False:
            return a
    return e


def _simplify_compare(e: Compare, ranges: Mapping[Var, Range]) -> Expr:
    if is_float(e.a.dtype):
        return e
    ra, rb = bounds(e.a, ranges), bounds(e.b, ranges)
    if ra is None or rb is None:
        return e
    if ra[0] == ra[1] and rb[0] == rb[1]:
        return const(_COMPARE[e.op](ra[0], rb[0]), "bool")
    always = {"lt": ra[1] < rb[0], "le": ra[1] <= rb[0], "gt": ra[0] > rb[1], "ge": ra[0] >= rb[1]}
    never = {"lt": ra[0] >= rb[1], "le": ra[0] > rb[1], "gt": ra[1] <= rb[0], "ge": ra[1] < rb[0]}
    if always.get(e.op):
        return const(True, "bool")
    if never.get(e.op):
        return const(False, "bool")
    return e


def simplify(e: Expr, ranges: Mapping[Var, Range] | None = None) -> Expr:
    """``e`` simplified under the variable ``ranges`` (see the module docstring)."""
    ranges = ranges or {}

    def rule(x: Expr) -> Expr:
        if isinstance(x, Var) and x in ranges and ranges[x][0] == ranges[x][1]:
            return const(ranges[x][0], x.dtype)  # a loop of one iteration
        if isinstance(x, Binary):
            return _simplify_binary(x, ranges)
        if isinstance(x, Compare):
            return _simplify_compare(x, ranges)
        if isinstance(x, Not) and isinstance(x.a, Const):
            return const(not x.a.value, "bool")
        if isinstance(x, Select) and isinstance(x.cond, Const):
            return x.a if x.cond.value else x.b
        return x

    return post_order(e, rule)
