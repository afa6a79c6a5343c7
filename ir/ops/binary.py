"""Broadcasting pointwise ops (fusion class BROADCAST): arithmetic, comparisons, logic, Where.

Every op here combines its inputs element by element after numpy-style
(multidirectional) broadcasting; PRelu broadcasts its slope to X only
(unidirectional). The ops are rows of one table (:data:`BROADCAST_OPS`); a
row names the op, its numpy function, its arity, its dtype rule and its
attributes, and one loop registers them all.

Integer semantics follow ONNX (i.e. C), not numpy: Div truncates toward zero,
Pow computes in double precision and truncates, Mod with ``fmod=1`` takes the
sign of the dividend. float16 inputs are computed in float32 and rounded once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..types import DTYPES, FLOAT_DTYPES, INT_DTYPES, NUMERIC_DTYPES, TensorType
from .common import as_dtype, broadcast_shapes, expect_dtype, require, same_dtype
from .registry import Attr, Fusion, Int, Str, define

FLOATS = FLOAT_DTYPES
NUMERIC = NUMERIC_DTYPES
ANY = frozenset(DTYPES)
BOOL = frozenset({"bool"})
PRELU_TYPES = FLOAT_DTYPES | {"int32", "int64"}
POW_BASE_TYPES = FLOAT_DTYPES | {"int32", "int64"}

DtypeRule = Callable[[list[TensorType], dict], str]
OpFn = Callable[[list[np.ndarray], dict], np.ndarray]

# --------------------------------------------------------------------------- dtype rules


def same(dtypes: frozenset, result: str | None = None) -> DtypeRule:
    """All inputs share one dtype from ``dtypes``; the output has it (or ``result``, e.g. bool)."""

    def rule(types: list[TensorType], attrs: dict) -> str:
        dtype = same_dtype(types)
        expect_dtype(types[0], dtypes)
        return result or dtype

    return rule


def _pow_dtype(types: list[TensorType], attrs: dict) -> str:
    # ONNX lets the exponent have any numeric type; the output has the base's.
    expect_dtype(types[0], POW_BASE_TYPES, "base")
    expect_dtype(types[1], NUMERIC, "exponent")
    return types[0].dtype


def _where_dtype(types: list[TensorType], attrs: dict) -> str:
    expect_dtype(types[0], BOOL, "condition")
    return same_dtype(types[1:])


def _mod_dtype(types: list[TensorType], attrs: dict) -> str:
    require(attrs["fmod"] in (0, 1), f"fmod must be 0 or 1, got {attrs['fmod']}")
    return same(NUMERIC)(types, attrs)


def _prelu_dtype(types: list[TensorType], attrs: dict) -> str:
    x, slope = types
    require(broadcast_shapes(x.shape, slope.shape) == x.shape,
            f"slope shape {slope.shape} does not broadcast to X shape {x.shape}")
    return same(PRELU_TYPES)(types, attrs)


def _bitshift_dtype(types: list[TensorType], attrs: dict) -> str:
    require(attrs["direction"] in ("LEFT", "RIGHT"),
            f"direction must be 'LEFT' or 'RIGHT', got {attrs['direction']!r}")
    return same(INT_DTYPES)(types, attrs)


# --------------------------------------------------------------------------- op functions


def _div(arrays: list[np.ndarray], attrs: dict) -> np.ndarray:
    """a / b; integers truncate toward zero (numpy's // floors)."""
    a, b = arrays
    if a.dtype.kind not in "iu":
        return np.true_divide(a, b)
    quotient = np.floor_divide(a, b)
    # floor and trunc differ by one where the division is inexact and the signs differ
    inexact_negative = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
    return quotient + inexact_negative.astype(quotient.dtype)


def _pow(arrays: list[np.ndarray], attrs: dict) -> np.ndarray:
    x, y = arrays
    # onnxruntime evaluates std::pow in double and casts back (integers truncate):
    # 2 ** -1 is 0, not numpy's error.
    return np.power(x.astype(np.float64), y.astype(np.float64))


def _mod(arrays: list[np.ndarray], attrs: dict) -> np.ndarray:
    a, b = arrays
    # fmod=0: sign of the divisor (numpy's mod, also for the float special cases);
    # fmod=1: sign of the dividend, as C's fmod and %.
    return np.fmod(a, b) if attrs["fmod"] else np.mod(a, b)


def _prelu(arrays: list[np.ndarray], attrs: dict) -> np.ndarray:
    x, slope = arrays
    return np.where(x < 0, x * slope, x)


def _bitshift(arrays: list[np.ndarray], attrs: dict) -> np.ndarray:
    """ONNX shifts: shifts outside [0, bits) leave only the sign fill (0, or -1 for RIGHT of negatives)."""
    x, y = arrays
    bits = x.dtype.itemsize * 8
    in_range = (y >= 0) & (y < bits)
    amount = np.where(in_range, y, 0).astype(x.dtype)
    if attrs["direction"] == "LEFT":
        return np.where(in_range, np.left_shift(x, amount), 0)
    fill = np.where(x < 0, -1, 0) if x.dtype.kind == "i" else 0
    return np.where(in_range, np.right_shift(x, amount), fill)


def _where(arrays: list[np.ndarray], attrs: dict) -> np.ndarray:
    return np.where(*arrays)


def _ufunc(ufunc) -> OpFn:
    """A numpy ufunc as an op function: folded over the inputs, so it serves 1..N of them."""

    def fn(arrays: list[np.ndarray], attrs: dict) -> np.ndarray:
        if len(arrays) == 1:  # Max/Min/Sum of one input: a copy, never an alias of the input
            return arrays[0].copy()
        return functools.reduce(ufunc, arrays)

    return fn


def _mean(arrays: list[np.ndarray], attrs: dict) -> np.ndarray:
    return functools.reduce(np.add, arrays) / len(arrays)


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Broadcast:
    """One row of the broadcasting op table.

    ``fn(arrays, attrs)`` computes the op (float16 arrives as float32); ``dtype``
    validates the input dtypes (and attributes) and names the output dtype;
    ``inputs`` is a count or a (min, max) range.
    """

    name: str
    fn: OpFn
    doc: str
    dtype: DtypeRule
    inputs: int | tuple[int, int | None] = 2
    attrs: Mapping[str, Attr] = field(default_factory=dict)


VARIADIC = (1, None)

BROADCAST_OPS: tuple[Broadcast, ...] = (
    Broadcast("Add", _ufunc(np.add), "a + b", same(NUMERIC)),
    Broadcast("Sub", _ufunc(np.subtract), "a - b", same(NUMERIC)),
    Broadcast("Mul", _ufunc(np.multiply), "a * b", same(NUMERIC)),
    Broadcast("Div", _div, "a / b (integers truncate toward zero)", same(NUMERIC)),
    Broadcast("Pow", _pow, "x ** y (the exponent may have another numeric dtype)", _pow_dtype),
    Broadcast("Mod", _mod, "remainder with the sign of b (fmod=0) or of a (fmod=1)", _mod_dtype,
              attrs={"fmod": Int(0)}),
    Broadcast("PRelu", _prelu, "x if x >= 0 else slope * x (slope broadcasts to x)", _prelu_dtype),
    Broadcast("Max", _ufunc(np.maximum), "elementwise maximum of 1..N inputs", same(NUMERIC), VARIADIC),
    Broadcast("Min", _ufunc(np.minimum), "elementwise minimum of 1..N inputs", same(NUMERIC), VARIADIC),
    Broadcast("Sum", _ufunc(np.add), "sum of 1..N inputs", same(FLOATS), VARIADIC),
    Broadcast("Mean", _mean, "mean of 1..N inputs", same(FLOATS), VARIADIC),
    Broadcast("Equal", _ufunc(np.equal), "a == b", same(ANY, "bool")),
    Broadcast("Less", _ufunc(np.less), "a < b", same(NUMERIC, "bool")),
    Broadcast("Greater", _ufunc(np.greater), "a > b", same(NUMERIC, "bool")),
    Broadcast("LessOrEqual", _ufunc(np.less_equal), "a <= b", same(NUMERIC, "bool")),
    Broadcast("GreaterOrEqual", _ufunc(np.greater_equal), "a >= b", same(NUMERIC, "bool")),
    Broadcast("And", _ufunc(np.logical_and), "a and b", same(BOOL)),
    Broadcast("Or", _ufunc(np.logical_or), "a or b", same(BOOL)),
    Broadcast("Xor", _ufunc(np.logical_xor), "a xor b", same(BOOL)),
    Broadcast("BitShift", _bitshift, "x << y or x >> y (arithmetic for signed x)", _bitshift_dtype,
              attrs={"direction": Str()}),
    Broadcast("Where", _where, "x where condition else y", _where_dtype, 3),
)


# --------------------------------------------------------------------------- registration


def _make_infer(op: Broadcast):
    """Inference for ``op``: the dtype rule, then multidirectional broadcasting of all input shapes."""

    def infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
        dtype = op.dtype(types, attrs)
        return [TensorType(dtype, broadcast_shapes(*(t.shape for t in types)))]

    return infer


def _make_reference(op: Broadcast):
    """Reference for ``op``: float16 goes through float32, the result is cast to the output dtype."""

    def reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
        arrays = [np.asarray(a) for a in arrays]
        out = _make_infer(op)([TensorType.of(a) for a in arrays], attrs)[0]
        arrays = [a.astype(np.float32) if a.dtype == np.float16 else a for a in arrays]
        # Division by zero and overflow give inf/NaN (or 0 for integers) without warnings.
        with np.errstate(all="ignore"):
            return [as_dtype(op.fn(arrays, attrs), out.dtype)]

    return reference


def _register_all() -> None:
    for op in BROADCAST_OPS:
        define(op.name, infer=_make_infer(op), reference=_make_reference(op), attrs=op.attrs,
               inputs=op.inputs, fusion=Fusion.BROADCAST, doc=op.doc)


_register_all()
