"""Which part of a producer a loop nest reads: affine region inference for ``compute_at``.

For a producer attached inside a consumer's loop, each index the consumer
reads it at is split into ``rest + sum(c_i * v_i)`` over the loop variables
inside the attachment point (``linear_form``). The region of each dimension
is then ``[rest + min_offset, rest + max_offset]``: its start depends only on
the outer loops, its extent is a constant, so the producer's tile has a
static size. A non-affine index falls back to the whole dimension.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from .expr import INDEX, Binary, Const, Expr, Var, const
from .simplify import simplify
from .visit import free_vars


def linear_form(e: Expr, inner: Mapping[Var, int]) -> tuple[dict[Var, int], Expr] | None:
    """``e`` as (coefficients of the ``inner`` variables, the rest), or None if not affine in them."""
    if not (free_vars(e) & set(inner)):
        return {}, e
    if isinstance(e, Var):
        return {e: 1}, const(0, INDEX)
    if isinstance(e, Binary) and e.op in ("add", "sub"):
        a, b = linear_form(e.a, inner), linear_form(e.b, inner)
        if a is None or b is None:
            return None
        sign = 1 if e.op == "add" else -1
        coefs = dict(a[0])
        for v, c in b[0].items():
            coefs[v] = coefs.get(v, 0) + sign * c
        return coefs, Binary(e.op, a[1], b[1], INDEX)
    if isinstance(e, Binary) and e.op == "mul":
        for scaled, factor in ((e.a, e.b), (e.b, e.a)):
            if isinstance(factor, Const):
                form = linear_form(scaled, inner)
                if form is None:
                    return None
                k = int(factor.value)
                return {v: c * k for v, c in form[0].items()}, Binary("mul", form[1], factor, INDEX)
    return None


def infer_region(reads: Sequence[Expr], inner: Mapping[Var, int], dim: int,
                 ranges: Mapping[Var, tuple[int, int]]) -> tuple[Expr, int]:
    """The start (an expression of outer variables) and the static extent of the region read.

    ``reads`` are the index expressions of one dimension; ``inner`` maps the
    loop variables inside the attachment point to their extents.
    """
    spans = []
    for index in reads:
        form = linear_form(index, inner)
        if form is None:
            return const(0, INDEX), dim
        coefs, rest = form
        low = sum(min(0, c * (inner[v] - 1)) for v, c in coefs.items())
        high = sum(max(0, c * (inner[v] - 1)) for v, c in coefs.items())
        spans.append((simplify(rest, ranges), low, high))
    base = spans[0][0]
    lows, highs = [], []
    for rest, low, high in spans:
        shift = simplify(Binary("sub", rest, base, INDEX), ranges)
        if not isinstance(shift, Const):
            return const(0, INDEX), dim  # reads at unrelated places: take the whole dimension
        lows.append(int(shift.value) + low)
        highs.append(int(shift.value) + high)
    extent = max(highs) - min(lows) + 1
    if extent >= dim:
        return const(0, INDEX), dim
    return simplify(base + min(lows), ranges), extent


__all__ = ["linear_form", "infer_region"]
