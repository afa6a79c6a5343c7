"""Evaluating integer and boolean index expressions over many values of their variables at once.

``evaluate(e, values)`` computes ``e`` with numpy, each variable given an array
of its values (broadcast together), for the expressions that index and guard
loop nests: constants, variables, ``+ - * // % min max``, comparisons and
``and/or/not``. Anything else (a load, a float, a call) has no value here and
gives ``None``, so a caller can fall back to what it did without one.

    >>> from ember.ir.loops.expr import Var
    >>> import numpy as np
    >>> i = Var("i")
    >>> evaluate(i * 3 + 1 < 7, {i: np.arange(4)}).tolist()
    [True, True, False, False]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .expr import Binary, Cast, Compare, Const, Expr, Not, Var

_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "floordiv": np.floor_divide,
    "floormod": np.mod, "min": np.minimum, "max": np.maximum, "and": np.logical_and, "or": np.logical_or,
}
_COMPARE = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
            "eq": np.equal, "ne": np.not_equal}


def evaluate(e: Expr, values: Mapping[Var, np.ndarray]) -> np.ndarray | None:
    """The values of index or boolean expression ``e`` given arrays of its variables' values
    (``None`` when ``e`` holds something else, or a variable not in ``values``)."""
    by_uid = {v.uid: np.asarray(a) for v, a in values.items()}
    try:
        return _evaluate(e, by_uid)
    except _NoValue:
        return None


class _NoValue(Exception):
    """The expression is not an index expression over the given variables."""


def _evaluate(e: Expr, values: dict[int, np.ndarray]) -> np.ndarray:
    if isinstance(e, Const) and isinstance(e.value, (bool, int, np.integer, np.bool_)):
        return np.asarray(e.value)
    if isinstance(e, Var):
        if e.uid not in values:
            raise _NoValue
        return values[e.uid]
    if isinstance(e, Binary) and e.op in _BINARY and not e.dtype.startswith("float"):
        a, b = _evaluate(e.a, values), _evaluate(e.b, values)
        if e.op in ("floordiv", "floormod") and np.any(b == 0):
            raise _NoValue
        return _BINARY[e.op](a, b)
    if isinstance(e, Compare):
        return _COMPARE[e.op](_evaluate(e.a, values), _evaluate(e.b, values))
    if isinstance(e, Not):
        return np.logical_not(_evaluate(e.a, values))
    if isinstance(e, Cast) and not e.dtype.startswith("float"):
        return _evaluate(e.a, values)
    raise _NoValue


__all__ = ["evaluate"]
