"""Scalar expressions of the loop-level IR.

Expressions are immutable trees. Index arithmetic is ``int64``; every node
carries its dtype (an ember dtype name). Python operators build nodes, with
Python numbers promoted to constants of the other operand's dtype::

    i = Var("i")
    e = (i * 4 + 2) // 4          # Binary(floordiv, Binary(add, ...), Const(4))

Integer ``//`` and ``%`` are floor division and modulo (Python semantics, what
index arithmetic needs); ``div`` on integers truncates toward zero (C and ONNX
semantics).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..types import FLOAT_DTYPES

_ids = itertools.count()

INDEX = "int64"

# name -> (number of arguments); float math functions, evaluated in the operand's dtype
MATH_FUNCTIONS = {
    "exp": 1, "log": 1, "sqrt": 1, "tanh": 1, "erf": 1, "sin": 1, "cos": 1, "tan": 1, "asin": 1, "acos": 1,
    "atan": 1, "sinh": 1, "cosh": 1, "asinh": 1, "acosh": 1, "atanh": 1, "floor": 1, "ceil": 1,
    "round": 1, "fabs": 1, "pow": 2, "fmod": 2, "log1p": 1, "expm1": 1,
}


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


class Expr:
    """Base class of expressions; subclasses are frozen dataclasses with a ``dtype``."""

    dtype: str

    # arithmetic ------------------------------------------------------------
    def __add__(self, other): return binary("add", self, other)
    def __radd__(self, other): return binary("add", other, self)
    def __sub__(self, other): return binary("sub", self, other)
    def __rsub__(self, other): return binary("sub", other, self)
    def __mul__(self, other): return binary("mul", self, other)
    def __rmul__(self, other): return binary("mul", other, self)
    def __truediv__(self, other): return binary("div", self, other)
    def __rtruediv__(self, other): return binary("div", other, self)
    def __floordiv__(self, other): return binary("floordiv", self, other)
    def __rfloordiv__(self, other): return binary("floordiv", other, self)
    def __mod__(self, other): return binary("floormod", self, other)
    def __rmod__(self, other): return binary("floormod", other, self)
    def __neg__(self): return binary("sub", const(0, self.dtype), self)

    # comparisons build expressions; identity stays Python's (eq=False dataclasses)
    def __lt__(self, other): return compare("lt", self, other)
    def __le__(self, other): return compare("le", self, other)
    def __gt__(self, other): return compare("gt", self, other)
    def __ge__(self, other): return compare("ge", self, other)

    def eq(self, other) -> "Expr":
        return compare("eq", self, other)

    def ne(self, other) -> "Expr":
        return compare("ne", self, other)

    def astype(self, dtype: str) -> "Expr":
        return cast(dtype, self)

    def __bool__(self):
        raise TypeError("an ember expression has no truth value; use select()/logical_and() to combine conditions")

    __hash__ = object.__hash__


@dataclass(frozen=True, eq=False)
class Const(Expr):
    value: Any
    dtype: str

    def __repr__(self) -> str:
        return f"Const({self.value!r}, {self.dtype})"


@dataclass(frozen=True, eq=False)
class Var(Expr):
    """A scalar variable: a loop index, a let-bound value or a kernel parameter."""

    name: str
    dtype: str = INDEX
    uid: int = field(default_factory=lambda: next(_ids))

    def __repr__(self) -> str:
        return f"Var({self.name})"


BINARY_OPS = ("add", "sub", "mul", "div", "floordiv", "floormod", "min", "max", "pow", "and", "or", "xor")
COMPARE_OPS = ("lt", "le", "gt", "ge", "eq", "ne")


@dataclass(frozen=True, eq=False)
class Binary(Expr):
    op: str
    a: Expr
    b: Expr
    dtype: str


@dataclass(frozen=True, eq=False)
class Compare(Expr):
    op: str
    a: Expr
    b: Expr
    dtype: str = "bool"


@dataclass(frozen=True, eq=False)
class Not(Expr):
    a: Expr
    dtype: str = "bool"


@dataclass(frozen=True, eq=False)
class Select(Expr):
    """``a if cond else b``.

    Both sides may be evaluated (a branch-free select), unless ``guard`` is
    set: then the untaken side is never evaluated, so it may read memory that
    is out of bounds when the condition is false (padding, concatenation).
    """

    cond: Expr
    a: Expr
    b: Expr
    dtype: str
    guard: bool = False


@dataclass(frozen=True, eq=False)
class Cast(Expr):
    a: Expr
    dtype: str


@dataclass(frozen=True, eq=False)
class Call(Expr):
    """A math function of :data:`MATH_FUNCTIONS` (float operands)."""

    name: str
    args: tuple[Expr, ...]
    dtype: str


@dataclass(frozen=True, eq=False)
class Load(Expr):
    """``buffer[index]`` on a flat buffer (after lowering)."""

    buffer: Any  # loops.stmt.Buffer
    index: Expr
    dtype: str


@dataclass(frozen=True, eq=False)
class Ramp(Expr):
    """The vector ``base + stride * [0, 1, ..., lanes-1]`` (produced by vectorization)."""

    base: Expr
    stride: int
    lanes: int
    dtype: str = INDEX


# ----------------------------------------------------------------- builders
def const(value: Any, dtype: str) -> Const:
    if dtype == "bool":
        value = bool(value)
    elif is_float(dtype):
        value = float(value)
    else:
        value = int(value)
    return Const(value, dtype)


def as_expr(value: Any, dtype: str | None = None) -> Expr:
    """``value`` as an expression; Python numbers become constants of ``dtype`` (or index/float32)."""
    if isinstance(value, Expr):
        return value
    if isinstance(value, bool):
        return const(value, dtype or "bool")
    if isinstance(value, int):
        return const(value, dtype or INDEX)
    if isinstance(value, float):
        return const(value, dtype or "float32")
    try:  # numpy scalars
        import numpy as np

        if isinstance(value, np.generic):
            return const(value.item(), dtype or np.dtype(type(value)).name)
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"cannot make an expression of {value!r}")


def _pair(a: Any, b: Any) -> tuple[Expr, Expr]:
    if isinstance(a, Expr) and not isinstance(b, Expr):
        return a, as_expr(b, a.dtype)
    if isinstance(b, Expr) and not isinstance(a, Expr):
        return as_expr(a, b.dtype), b
    return as_expr(a), as_expr(b)


def binary(op: str, a: Any, b: Any) -> Expr:
    a, b = _pair(a, b)
    if op != "pow" and a.dtype != b.dtype:
        raise TypeError(f"{op} of {a.dtype} and {b.dtype}: cast one operand first")
    return Binary(op, a, b, a.dtype)


def compare(op: str, a: Any, b: Any) -> Expr:
    a, b = _pair(a, b)
    if a.dtype != b.dtype:
        raise TypeError(f"{op} of {a.dtype} and {b.dtype}: cast one operand first")
    return Compare(op, a, b)


def minimum(a: Any, b: Any) -> Expr:
    return binary("min", a, b)


def maximum(a: Any, b: Any) -> Expr:
    return binary("max", a, b)


def logical_and(*conds: Expr) -> Expr:
    out = conds[0]
    for c in conds[1:]:
        out = Binary("and", out, c, "bool")
    return out


def logical_or(*conds: Expr) -> Expr:
    out = conds[0]
    for c in conds[1:]:
        out = Binary("or", out, c, "bool")
    return out


def logical_not(a: Expr) -> Expr:
    return Not(a)


def select(cond: Any, a: Any, b: Any) -> Expr:
    """``a if cond else b``, evaluating both sides: neither may read out of bounds."""
    a, b = _pair(a, b)
    if a.dtype != b.dtype:
        raise TypeError(f"select between {a.dtype} and {b.dtype}")
    return Select(as_expr(cond), a, b, a.dtype)


def guarded_select(cond: Any, a: Any, b: Any) -> Expr:
    """``a if cond else b`` evaluating only the taken side (use when a side's reads are in
    bounds only under its condition); costs a branch where a side loads."""
    a, b = _pair(a, b)
    if a.dtype != b.dtype:
        raise TypeError(f"select between {a.dtype} and {b.dtype}")
    return Select(as_expr(cond), a, b, a.dtype, guard=True)


def cast(dtype: str, a: Any) -> Expr:
    a = as_expr(a)
    return a if a.dtype == dtype else Cast(a, dtype)


def call(name: str, *args: Any) -> Expr:
    if name not in MATH_FUNCTIONS:
        raise ValueError(f"unknown math function {name}")
    exprs = [as_expr(a) for a in args]
    exprs = [exprs[0]] + [as_expr(a, exprs[0].dtype) for a in args[1:]]
    if not is_float(exprs[0].dtype):
        raise TypeError(f"{name} needs a float operand, got {exprs[0].dtype}")
    return Call(name, tuple(exprs), exprs[0].dtype)


def children(e: Expr) -> Sequence[Expr]:
    """The direct sub-expressions of ``e``."""
    if isinstance(e, (Binary, Compare)):
        return (e.a, e.b)
    if isinstance(e, (Not, Cast)):
        return (e.a,)
    if isinstance(e, Select):
        return (e.cond, e.a, e.b)
    if isinstance(e, Call):
        return e.args
    if isinstance(e, Load):
        return (e.index,)
    if isinstance(e, Ramp):
        return (e.base,)
    return ()
