"""Broadcasting pointwise ops (fusion class BROADCAST): arithmetic, comparisons, logic, Where.

Every op here combines its inputs element by element after numpy-style
(multidirectional) broadcasting; PRelu broadcasts its slope to X only
(unidirectional). The ops are rows of one table (:data:`BROADCAST_OPS`); a
row names the op, its formula, its arity, its dtype rule and its attributes,
and one loop registers them all. A formula is written once against the scalar
vocabulary of :mod:`.elementwise` and serves as both the numpy reference and
the loop-IR compute.

Integer semantics follow ONNX (i.e. C), not numpy: Div truncates toward zero,
Pow computes in double precision (integers truncate), Mod with ``fmod=1`` takes the
sign of the dividend. float16 inputs are computed in float32 and rounded once.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..loops import Expr, Tensor, cast
from ..types import DTYPES, FLOAT_DTYPES, INT_DTYPES, NUMERIC_DTYPES, TensorType
from .common import broadcast_shapes, expect_dtype, require, same_dtype
from .compute import pointwise
from .elementwise import LOOPS, NUMPY, dtype_of, pointwise_schedule
from .registry import Attr, Fusion, Int, Str, define

FLOATS = FLOAT_DTYPES
NUMERIC = NUMERIC_DTYPES
ANY = frozenset(DTYPES)
BOOL = frozenset({"bool"})
PRELU_TYPES = FLOAT_DTYPES | {"int32", "int64"}
POW_BASE_TYPES = FLOAT_DTYPES | {"int32", "int64"}

DtypeRule = Callable[[list[TensorType], dict], str]
# formula(m, values, attrs): the op in the vocabulary m (NUMPY on arrays, LOOPS on expressions)
Formula = Callable[[Any, list, dict], Any]

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


# --------------------------------------------------------------------------- formulas


def _fold(combine: Callable[[Any, Any, Any], Any]) -> Formula:
    """``combine(m, a, b)`` folded left over the inputs, so it serves 1..N of them."""
    return lambda m, xs, attrs: functools.reduce(lambda a, b: combine(m, a, b), xs)


def _pair(fn: Callable[[Any, Any, Any], Any]) -> Formula:
    """``fn(m, a, b)`` of the two inputs."""
    return lambda m, xs, attrs: fn(m, *xs)


def _pow(m, xs, attrs):
    # onnxruntime evaluates std::pow in double and casts back (integers truncate): 2 ** -1 is 0.
    x, y = xs
    return m.call("pow", m.cast(x, "float64"), m.cast(y, "float64"))


def _mod(m, xs, attrs):
    # fmod=0: sign of the divisor (numpy's mod, also for the float special cases);
    # fmod=1: sign of the dividend, as C's fmod and %.
    return m.fmod(*xs) if attrs["fmod"] else m.mod(*xs)


def _prelu(m, xs, attrs):
    x, slope = xs
    return m.where(x < 0, x * slope, x)


def _bitshift(m, xs, attrs):
    """ONNX shifts: shifts outside [0, bits) leave only the sign fill (0, or -1 for RIGHT of negatives)."""
    x, y = xs
    bits = np.dtype(x.dtype).itemsize * 8
    in_range = m.logical_and(y >= 0, y < bits)
    amount = m.where(in_range, y, 0)
    if attrs["direction"] == "LEFT":
        return m.where(in_range, m.left_shift(x, amount), 0)
    fill = m.right_shift(x, bits - 1) if dtype_of(x) != "uint8" else 0  # all sign bits
    return m.where(in_range, m.right_shift(x, amount), fill)


def _mean(m, xs, attrs):
    return functools.reduce(operator.add, xs) / len(xs)


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Broadcast:
    """One row of the broadcasting op table.

    ``formula(m, values, attrs)`` computes the op in the vocabulary ``m`` (float16
    arrives as float32; the result is converted to the output dtype); ``dtype``
    validates the input dtypes (and attributes) and names the output dtype;
    ``inputs`` is a count or a (min, max) range.
    """

    name: str
    formula: Formula
    doc: str
    dtype: DtypeRule
    inputs: int | tuple[int, int | None] = 2
    attrs: Mapping[str, Attr] = field(default_factory=dict)


VARIADIC = (1, None)

BROADCAST_OPS: tuple[Broadcast, ...] = (
    Broadcast("Add", _fold(lambda m, a, b: a + b), "a + b", same(NUMERIC)),
    Broadcast("Sub", _pair(lambda m, a, b: a - b), "a - b", same(NUMERIC)),
    Broadcast("Mul", _fold(lambda m, a, b: a * b), "a * b", same(NUMERIC)),
    Broadcast("Div", _pair(lambda m, a, b: m.divide(a, b)), "a / b (integers truncate toward zero)", same(NUMERIC)),
    Broadcast("Pow", _pow, "x ** y (the exponent may have another numeric dtype)", _pow_dtype),
    Broadcast("Mod", _mod, "remainder with the sign of b (fmod=0) or of a (fmod=1)", _mod_dtype,
              attrs={"fmod": Int(0)}),
    Broadcast("PRelu", _prelu, "x if x >= 0 else slope * x (slope broadcasts to x)", _prelu_dtype),
    Broadcast("Max", _fold(lambda m, a, b: m.maximum(a, b)), "elementwise maximum of 1..N inputs", same(NUMERIC),
              VARIADIC),
    Broadcast("Min", _fold(lambda m, a, b: m.minimum(a, b)), "elementwise minimum of 1..N inputs", same(NUMERIC),
              VARIADIC),
    Broadcast("Sum", _fold(lambda m, a, b: a + b), "sum of 1..N inputs", same(FLOATS), VARIADIC),
    Broadcast("Mean", _mean, "mean of 1..N inputs", same(FLOATS), VARIADIC),
    Broadcast("Equal", _pair(lambda m, a, b: m.equal(a, b)), "a == b", same(ANY, "bool")),
    Broadcast("Less", _pair(lambda m, a, b: a < b), "a < b", same(NUMERIC, "bool")),
    Broadcast("Greater", _pair(lambda m, a, b: a > b), "a > b", same(NUMERIC, "bool")),
    Broadcast("LessOrEqual", _pair(lambda m, a, b: a <= b), "a <= b", same(NUMERIC, "bool")),
    Broadcast("GreaterOrEqual", _pair(lambda m, a, b: a >= b), "a >= b", same(NUMERIC, "bool")),
    Broadcast("And", _pair(lambda m, a, b: m.logical_and(a, b)), "a and b", same(BOOL)),
    Broadcast("Or", _pair(lambda m, a, b: m.logical_or(a, b)), "a or b", same(BOOL)),
    Broadcast("Xor", _pair(lambda m, a, b: m.logical_xor(a, b)), "a xor b", same(BOOL)),
    Broadcast("BitShift", _bitshift, "x << y or x >> y (arithmetic for signed x)", _bitshift_dtype,
              attrs={"direction": Str()}),
    Broadcast("Where", lambda m, xs, attrs: m.where(*xs), "x where condition else y", _where_dtype, 3),
)


# --------------------------------------------------------------------------- registration


def _make_infer(op: Broadcast):
    """Inference for ``op``: the dtype rule, then multidirectional broadcasting of all input shapes."""

    def infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
        dtype = op.dtype(types, attrs)
        return [TensorType(dtype, broadcast_shapes(*(t.shape for t in types)))]

    return infer


def _make_reference(op: Broadcast):
    """Reference for ``op``: float16 goes through float32, the result is converted to the output dtype."""

    def reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
        arrays = [np.asarray(a) for a in arrays]
        out = _make_infer(op)([TensorType.of(a) for a in arrays], attrs)[0]
        arrays = [a.astype(np.float32) if a.dtype == np.float16 else a for a in arrays]
        # Division by zero and overflow give inf/NaN (or 0 for integers) without warnings.
        with np.errstate(all="ignore"):
            y = op.formula(NUMPY, arrays, attrs)
            return [np.array(y, dtype=out.dtype)]  # a fresh array: Max of one input is a copy, never an alias

    return reference


def _make_compute(op: Broadcast):
    """Compute for ``op``: the formula on one element of each (broadcast) input, float16 in float32 registers."""

    def compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
        out = outputs[0]

        def element(*xs: Expr) -> Expr:
            xs = [cast("float32", x) if x.dtype == "float16" else x for x in xs]
            return LOOPS.cast(op.formula(LOOPS, xs, attrs), out.dtype)

        return [pointwise(inputs, out, element, op.name)]

    return compute


def _register_all() -> None:
    for op in BROADCAST_OPS:
        define(op.name, infer=_make_infer(op), reference=_make_reference(op), attrs=op.attrs,
               inputs=op.inputs, fusion=Fusion.BROADCAST, doc=op.doc, compute=_make_compute(op),
               schedule=pointwise_schedule)


_register_all()
