"""Unary pointwise ops (fusion class ELEMENTWISE): activations, math functions, predicates, casts.

Every op here maps one tensor to one tensor of the same shape, element by
element. They are defined from one table (:data:`UNARY_OPS`): each row names
the op, its formula, the dtypes it accepts, its attributes and its result
dtype; a single loop registers them all with shared inference, reference,
compute and schedule.

A formula is written once, against a small scalar vocabulary ``m`` (where,
maximum, call("exp"), cast, ...): given :data:`NUMPY` it computes the numpy
reference on arrays, given :data:`LOOPS` it builds the loop-IR expression of
one element, from which native code is generated. Both vocabularies implement
each primitive with the same semantics (C/ONNX integer division, numpy's
float remainder, NaN-propagating maximum), so reference and compiled code
agree by construction; the broadcasting ops (:mod:`.binary`) use them too.

Numerics: float16 inputs are computed in float32 and rounded back once (numpy's
float16 loops would round after every step of a composite formula, where
onnxruntime computes in float32); exact Gelu is computed in float64 (the
reference's erf is W. J. Cody's rational approximation in float64, since numpy
has no erf; compiled float64 erf calls libm's). In compiled code, float32
expm1 and log1p go through float64 exp and log (faster than libm's float32
versions, exact to float32 rounding); float32 exp, erf and tanh are inline
polynomial code that vectorizes (``ember.codegen.vecmath``, within a few
ulps); float64 values bound for float16 are rounded to it once (float16
lives in float32 registers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UnsupportedOpError
from ..loops import (Expr, Tensor, call, cast, const, create_schedule, logical_and, logical_not, logical_or,
                     maximum, minimum, select)
from ..loops.expr import binary, is_float
from ..loops.locality import reuse_strided_lines
from ..types import DTYPES, FLOAT_DTYPES, NUMERIC_DTYPES, TensorType
from .common import expect_dtype, require
from .compute import annotate_pointwise, pointwise
from .registry import Attr, Float, Fusion, Int, Str, define

FLOATS = FLOAT_DTYPES
SIGNED = FLOAT_DTYPES | {"int8", "int32", "int64"}
NUMERIC = NUMERIC_DTYPES
ANY = frozenset(DTYPES)
BOOL = frozenset({"bool"})

# --------------------------------------------------------------------------- erf

# W. J. Cody, "Rational Chebyshev approximations for the error function" (1969),
# as in netlib's specfun CALERF: relative error near double precision on each range.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERFC_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
           2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
           2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERFC_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
           1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
           3.43936767414372164e03, 1.23033935480374942e03)
_ERFC_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
           1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERFC_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
           6.05183413124413191e-2, 2.33520497626869185e-3)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)


def _rational(z: np.ndarray, num: tuple, den: tuple) -> np.ndarray:
    """Cody's nested form: ``(num[-1] z^n + num[0] z^(n-1) + ... + num[n-1]) / (z^n + den[0] z^(n-1) + ...)``."""
    n = len(den)
    top = num[n] * z
    bottom = z
    for i in range(n - 1):
        top = (top + num[i]) * z
        bottom = (bottom + den[i]) * z
    return (top + num[n - 1]) / (bottom + den[n - 1])


def _erfc_mid(ax: np.ndarray) -> np.ndarray:
    """erfc on 0.5 < ax <= 4."""
    return np.exp(-ax * ax) * _rational(ax, _ERFC_C, _ERFC_D)


def _erfc_tail(ax: np.ndarray) -> np.ndarray:
    """erfc on ax > 4 (asymptotic form in 1/ax^2)."""
    z = 1.0 / (ax * ax)
    correction = z * _rational(z, _ERFC_P, _ERFC_Q)
    return np.exp(-ax * ax) * (_INV_SQRT_PI - correction) / ax


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, vectorized, accurate to a few float64 ulp (NaN stays NaN).

    >>> float(erf(np.array(0.5)))  # doctest: +ELLIPSIS
    0.5204998778...
    """
    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x)
    out = np.empty_like(x)
    small = ax <= 0.5
    mid = (ax > 0.5) & (ax <= 4.0)
    tail = ~(small | mid)  # includes inf and NaN
    out[small] = x[small] * _rational(x[small] ** 2, _ERF_A, _ERF_B)
    out[mid] = np.copysign(1.0 - _erfc_mid(ax[mid]), x[mid])
    out[tail] = np.copysign(1.0 - _erfc_tail(ax[tail]), x[tail])
    return out



# --------------------------------------------------------------------------- scalar vocabularies


def dtype_of(x: Any) -> str:
    """The ember dtype name of an array or an expression."""
    return np.dtype(x.dtype).name


def is_integer(x: Any) -> bool:
    return np.dtype(x.dtype).kind in "iu"


def _c_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b; integers truncate toward zero and x / 0 is 0 (numpy's // floors)."""
    if a.dtype.kind not in "iu":
        return np.true_divide(a, b)
    quotient = np.floor_divide(a, b)
    # floor and trunc differ by one where the division is inexact and the signs differ
    inexact_negative = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
    return quotient + inexact_negative.astype(quotient.dtype)


_NUMPY_FUNCTIONS: dict[str, Callable] = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh, "erf": erf, "sin": np.sin, "cos": np.cos,
    "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh, "floor": np.floor, "ceil": np.ceil,
    "round": np.round, "fabs": np.abs, "pow": np.power, "fmod": np.fmod, "log1p": np.log1p, "expm1": np.expm1,
}


class NumpyMath:
    """The scalar vocabulary on numpy arrays (what the references compute with).

    ``call(name, ...)`` takes the math functions of the loop IR
    (:data:`ember.ir.loops.expr.MATH_FUNCTIONS`); ``divide`` and ``fmod`` have
    C semantics on integers (truncation; ``x / 0`` and ``x % 0`` are 0), ``mod``
    numpy's (the sign of the divisor).
    """

    where = staticmethod(np.where)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    abs = staticmethod(np.abs)
    negative = staticmethod(np.negative)
    sign = staticmethod(np.sign)
    isnan = staticmethod(np.isnan)
    equal = staticmethod(np.equal)
    logical_and = staticmethod(np.logical_and)
    logical_or = staticmethod(np.logical_or)
    logical_xor = staticmethod(np.logical_xor)
    logical_not = staticmethod(np.logical_not)
    divide = staticmethod(_c_divide)
    fmod = staticmethod(np.fmod)
    mod = staticmethod(np.mod)
    left_shift = staticmethod(np.left_shift)
    right_shift = staticmethod(np.right_shift)

    @staticmethod
    def call(name: str, *args: np.ndarray) -> np.ndarray:
        return _NUMPY_FUNCTIONS[name](*args)

    @staticmethod
    def cast(x: np.ndarray, dtype: str) -> np.ndarray:
        return np.asarray(x).astype(dtype)

    @staticmethod
    def constant(value: Any, dtype: str) -> np.ndarray:
        return np.asarray(value, dtype)


def _power_of_two(amount: Expr, below: int) -> Expr:
    """``2 ** amount`` (wrapping) for ``0 <= amount < below``: the product of ``2 ** k`` over the bits ``k`` of amount."""
    one = const(1, amount.dtype)
    power, k = one, 1
    while k < below:
        power = power * select(binary("and", amount, const(k, amount.dtype)).ne(0), const(2 ** k, amount.dtype), one)
        k *= 2
    return power


def _shift(x: Expr, amount: Expr | int, left: bool) -> Expr:
    """``x << amount`` or ``x >> amount`` (arithmetic for signed x), for ``0 <= amount < bits``.

    The IR has no shifts. Left: ``x * 2 ** amount``, where the power may wrap to
    the sign bit (as the product does). Right: floor division by ``2 ** amount``,
    in two halves so that each divisor fits the dtype.
    """
    amount = amount if isinstance(amount, Expr) else const(amount, x.dtype)
    bits = np.dtype(x.dtype).itemsize * 8
    if left:
        return x * _power_of_two(amount, bits)
    half = amount // 2
    return x // _power_of_two(half, bits // 2) // _power_of_two(amount - half, bits // 2 + 1)


# float32 math through float64 intrinsics. libm's expm1f and log1pf are
# slow (3-10x expf here) and, as calls that may set errno, are not merged when
# a formula repeats them (Mish repeats softplus); llvm.exp and llvm.log are
# pure intrinsics. In float64 these formulas are exact to float32
# rounding; each takes a tiny-argument branch where float64 would lose
# relative precision.


def _wide(x: Expr) -> Expr:
    return cast("float64", x)


def _expm1_float32(x: Expr) -> Expr:
    """``e^x - 1``; below 2^-20, ``x (1 + x/2)`` (which keeps -0.0)."""
    w = _wide(x)
    return cast("float32", select(call("fabs", x) < 2.0 ** -20, w * (1.0 + 0.5 * w), call("exp", w) - 1.0))


def _log1p_float32(x: Expr) -> Expr:
    """``log(1 + x)``, exact in float64 from 2^-24 on; below, log1p(x) rounds to x."""
    return select(call("fabs", x) < 2.0 ** -24, x, cast("float32", call("log", _wide(x) + 1.0)))


_FLOAT32_FUNCTIONS = {"expm1": _expm1_float32, "log1p": _log1p_float32}


def _round_to_half(v: Expr) -> Expr:
    """A float64 ``v`` rounded to the nearest float16 value (ties to even), kept in float64.

    float16 lives in float32 registers, so float64 -> float16 would round twice
    (to float32, then to float16 on store) and can land on the wrong side of a
    tie; rounded here first, both later conversions are exact. Normal range:
    Veltkamp's split ``c - (c - v)`` with ``c = v * (2^42 + 1)`` keeps the top 11
    significand bits, rounding to nearest even. Below 2^-14 (float16 subnormals):
    adding and subtracting 1.5 * 2^28 rounds to a multiple of 2^-24; ``v * 0``
    keeps the sign of values that round to zero. Values beyond 2^17 (inf in
    float16 anyway) are clamped so that the split stays finite; NaN stays NaN.
    """
    v = minimum(maximum(v, -2.0 ** 17), 2.0 ** 17)
    c = v * (2.0 ** 42 + 1)
    normal = c - (c - v)
    magic = 1.5 * 2.0 ** 28
    tiny = (v + magic) - magic
    subnormal = select(tiny.eq(0), v * 0.0, tiny)
    return select(call("fabs", v) < 2.0 ** -14, subnormal, normal)


class LoopMath:
    """The same vocabulary on loop-IR expressions (one element of a compute)."""

    where = staticmethod(select)
    maximum = staticmethod(maximum)  # NaN-propagating, as numpy's
    minimum = staticmethod(minimum)
    logical_not = staticmethod(logical_not)

    @staticmethod
    def logical_and(a: Expr, b: Expr) -> Expr:
        return logical_and(a, b)

    @staticmethod
    def logical_or(a: Expr, b: Expr) -> Expr:
        return logical_or(a, b)

    @staticmethod
    def logical_xor(a: Expr, b: Expr) -> Expr:
        return a.ne(b)

    @staticmethod
    def equal(a: Expr, b: Any) -> Expr:
        return a.eq(b)

    @staticmethod
    def isnan(x: Expr) -> Expr:
        return x.ne(x)  # unordered: only NaN differs from itself

    @staticmethod
    def abs(x: Expr) -> Expr:
        if is_float(x.dtype):
            return call("fabs", x)
        return x if x.dtype == "uint8" else select(x < 0, -x, x)

    @staticmethod
    def negative(x: Expr) -> Expr:
        return const(-0.0, x.dtype) - x if is_float(x.dtype) else -x  # -0.0 - x is IEEE negation

    @staticmethod
    def sign(x: Expr) -> Expr:
        one, zero = const(1, x.dtype), const(0, x.dtype)
        if x.dtype == "uint8":
            return select(x > 0, one, zero)
        # x + 0 keeps NaN and makes -0.0 into 0.0, as numpy's sign does
        return select(x > 0, one, select(x < 0, const(-1, x.dtype), x + zero))

    @staticmethod
    def divide(a: Expr, b: Expr) -> Expr:
        return a / b  # integer "div" truncates and gives 0 for x / 0

    @staticmethod
    def fmod(a: Expr, b: Expr) -> Expr:
        if is_float(a.dtype):
            return call("fmod", a, b)
        return select(b.eq(0), 0, a - (a / b) * b)

    @staticmethod
    def mod(a: Expr, b: Expr) -> Expr:
        if not is_float(a.dtype):
            return a % b  # floor modulo; x % 0 is 0 as in numpy
        # numpy's float remainder: fmod, moved into the divisor's sign; a zero takes the divisor's sign
        r = call("fmod", a, b)
        moved = select((b < 0).ne(r < 0), r + b, r)
        signed_zero = select(b < 0, const(-0.0, a.dtype), const(0.0, a.dtype))
        return select(b.eq(0), r, select(r.ne(0), moved, signed_zero))

    @staticmethod
    def left_shift(x: Expr, amount: Expr | int) -> Expr:
        return _shift(x, amount, left=True)

    @staticmethod
    def right_shift(x: Expr, amount: Expr | int) -> Expr:
        return _shift(x, amount, left=False)

    @staticmethod
    def call(name: str, *args: Expr) -> Expr:
        if name in _FLOAT32_FUNCTIONS and args[0].dtype == "float32":
            return _FLOAT32_FUNCTIONS[name](*args)
        return call(name, *args)

    @staticmethod
    def cast(x: Expr, dtype: str) -> Expr:
        if x.dtype == "float64" and dtype == "float16":
            x = _round_to_half(x)  # one rounding, as numpy's
        return cast(dtype, x)

    @staticmethod
    def constant(value: Any, dtype: str) -> Expr:
        return const(value, dtype)


NUMPY = NumpyMath()
LOOPS = LoopMath()


def pointwise_schedule(outputs: list[Tensor], target, knobs=None) -> Any:
    """The loop nest of a pointwise op: everything inlined into the output, its loops ordered for
    strided reads (:func:`~ember.ir.loops.locality.reuse_strided_lines`: a layout conversion),
    annotated by :func:`~ember.ir.ops.compute.annotate_pointwise` (whose knobs it passes on)."""
    schedule = create_schedule(outputs)
    for stage in schedule.stages:
        if all(stage.tensor is not t for t in outputs) and not stage.is_extern:
            stage.compute_inline()
    reuse_strided_lines(schedule, schedule[outputs[0]])
    annotate_pointwise(schedule[outputs[0]], knobs)
    return schedule


# --------------------------------------------------------------------------- formulas
#
# formula(m, x, attrs): the op on x in the vocabulary m (NUMPY or LOOPS). Python
# numbers take the dtype of the value they meet, as numpy's scalars do.


def _clamp01(m, x):
    return m.minimum(m.maximum(x, 0), 1)


def _sigmoid(m, x, a):
    return 1.0 / (1.0 + m.call("exp", -x))


def _leaky_relu(m, x, a):
    return m.where(x >= 0, x, x * a["alpha"])


def _elu(m, x, a):
    return m.where(x >= 0, x, a["alpha"] * m.call("expm1", x))


def _selu(m, x, a):
    return a["gamma"] * m.where(x > 0, x, a["alpha"] * m.call("expm1", x))


def _celu(m, x, a):
    alpha = a["alpha"]
    return m.maximum(x, 0) + m.minimum(0, alpha * m.call("expm1", x / alpha))


def _hard_sigmoid(m, x, a):
    return _clamp01(m, a["alpha"] * x + a["beta"])


def _hard_swish(m, x, a):
    return x * _clamp01(m, x / 6 + 0.5)


def _softplus(m, x, a):
    # log(1 + e^x) = max(x, 0) + log1p(e^-|x|): never overflows (numpy's logaddexp(0, x))
    return m.maximum(x, 0) + m.call("log1p", m.call("exp", -m.abs(x)))


def _softsign(m, x, a):
    return x / (1.0 + m.abs(x))


def _mish(m, x, a):
    return x * m.call("tanh", _softplus(m, x, a))


def _thresholded_relu(m, x, a):
    return m.where(x > a["alpha"], x, 0)


def _shrink(m, x, a):
    # integers are computed in float64 and truncated back, as onnxruntime casts (x +- bias)
    lambd, bias = a["lambd"], a["bias"]
    if is_integer(x):
        x = m.cast(x, "float64")
    return m.where(x < -lambd, x + bias, m.where(x > lambd, x - bias, 0))


def _gelu(m, x, a):
    if a["approximate"] == "tanh":
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * (x * x * x))
        return 0.5 * x * (1.0 + m.call("tanh", inner))
    # float64 from erf on: 1 + erf(z) loses all precision for z << 0 in float32
    z = m.cast(x / math.sqrt(2), "float64")
    return m.cast(0.5 * x, "float64") * (1.0 + m.call("erf", z))


def _is_inf(m, x, a):
    found = m.constant(False, "bool")
    if a["detect_positive"]:
        found = m.logical_or(found, m.equal(x, math.inf))
    if a["detect_negative"]:
        found = m.logical_or(found, m.equal(x, -math.inf))
    return found


def _identity(m, x, a):
    return x


def _clip_bound(bound: float | None, dtype: str) -> Any:
    """A Clip bound as a value of ``dtype`` (None if absent); integer bounds saturate to the dtype's range."""
    if bound is None or math.isnan(bound):
        return None
    if np.dtype(dtype).kind in "iu":
        if math.isinf(bound):
            return None
        info = np.iinfo(dtype)
        return max(info.min, min(info.max, int(bound)))
    return np.asarray(bound, dtype).item()  # rounded to the dtype, as onnxruntime's bound tensors are


def _clip(m, x, a):
    # Max first, then Min: when min > max every value becomes max, as ONNX specifies.
    low, high = _clip_bound(a["min"], dtype_of(x)), _clip_bound(a["max"], dtype_of(x))
    if low is not None:
        x = m.maximum(x, m.constant(low, dtype_of(x)))
    if high is not None:
        x = m.minimum(x, m.constant(high, dtype_of(x)))
    return x


def _cast(m, x, a):
    return m.cast(x, a["to"])


def _function(name: str) -> Callable:
    """The math function ``name`` as a formula."""
    return lambda m, x, a: m.call(name, x)


def _method(name: str) -> Callable:
    """The vocabulary's primitive ``name`` as a formula."""
    return lambda m, x, a: getattr(m, name)(x)


# --------------------------------------------------------------------------- attribute checks


def _check_gelu(attrs: dict) -> None:
    require(attrs["approximate"] in ("none", "tanh"),
            f"approximate must be 'none' or 'tanh', got {attrs['approximate']!r}")


def _check_cast(attrs: dict) -> None:
    if attrs["to"] not in DTYPES:
        raise UnsupportedOpError(f"cast to {attrs['to']!r} is not supported; ember supports {', '.join(DTYPES)}")


def _check_celu(attrs: dict) -> None:
    require(attrs["alpha"] != 0, "alpha must be nonzero")


# --------------------------------------------------------------------------- the table


def _same(dtype: str, attrs: dict) -> str:
    return dtype


def _bool(dtype: str, attrs: dict) -> str:
    return "bool"


def _cast_result(dtype: str, attrs: dict) -> str:
    return attrs["to"]


@dataclass(frozen=True)
class Unary:
    """One row of the unary op table.

    ``formula(m, x, attrs)`` computes the op in the vocabulary ``m`` (float16
    arrives as float32 when ``upcast``; the result is converted to the output
    dtype); ``result(dtype, attrs)`` names the output dtype; ``check(attrs)``
    validates attribute values.
    """

    name: str
    formula: Callable[[Any, Any, dict], Any]
    doc: str
    dtypes: frozenset = FLOATS
    attrs: Mapping[str, Attr] = field(default_factory=dict)
    result: Callable[[str, dict], str] = _same
    check: Callable[[dict], None] | None = None
    upcast: bool = True


def _alpha(default: float) -> dict:
    return {"alpha": Float(default)}


UNARY_OPS: tuple[Unary, ...] = (
    Unary("Abs", _method("abs"), "|x|", NUMERIC),
    Unary("Neg", _method("negative"), "-x", SIGNED),
    Unary("Sign", _method("sign"), "-1, 0 or 1 by the sign of x", NUMERIC),
    Unary("Relu", lambda m, x, a: m.maximum(x, 0), "max(x, 0)", SIGNED),
    Unary("Exp", _function("exp"), "e^x"),
    Unary("Log", _function("log"), "natural logarithm"),
    Unary("Sqrt", _function("sqrt"), "square root"),
    Unary("Reciprocal", lambda m, x, a: 1.0 / x, "1 / x"),
    Unary("Floor", _function("floor"), "round toward -inf"),
    Unary("Ceil", _function("ceil"), "round toward +inf"),
    Unary("Round", _function("round"), "round half to even"),
    Unary("Sin", _function("sin"), "sine"),
    Unary("Cos", _function("cos"), "cosine"),
    Unary("Tan", _function("tan"), "tangent"),
    Unary("Asin", _function("asin"), "arcsine"),
    Unary("Acos", _function("acos"), "arccosine"),
    Unary("Atan", _function("atan"), "arctangent"),
    Unary("Sinh", _function("sinh"), "hyperbolic sine"),
    Unary("Cosh", _function("cosh"), "hyperbolic cosine"),
    Unary("Tanh", _function("tanh"), "hyperbolic tangent"),
    Unary("Asinh", _function("asinh"), "inverse hyperbolic sine"),
    Unary("Acosh", _function("acosh"), "inverse hyperbolic cosine"),
    Unary("Atanh", _function("atanh"), "inverse hyperbolic tangent"),
    Unary("Erf", _function("erf"), "error function"),
    Unary("Sigmoid", _sigmoid, "1 / (1 + e^-x)"),
    Unary("LeakyRelu", _leaky_relu, "x if x >= 0 else alpha * x", attrs=_alpha(0.01)),
    Unary("Elu", _elu, "x if x >= 0 else alpha * (e^x - 1)", attrs=_alpha(1.0)),
    Unary("Selu", _selu, "gamma * (x if x > 0 else alpha * (e^x - 1))",
          attrs={"alpha": Float(1.67326319217681884765625), "gamma": Float(1.05070102214813232421875)}),
    Unary("Celu", _celu, "max(0, x) + min(0, alpha * (e^(x/alpha) - 1))", attrs=_alpha(1.0), check=_check_celu),
    Unary("ThresholdedRelu", _thresholded_relu, "x if x > alpha else 0", attrs=_alpha(1.0)),
    Unary("HardSigmoid", _hard_sigmoid, "clip(alpha * x + beta, 0, 1)",
          attrs={"alpha": Float(0.2), "beta": Float(0.5)}),
    Unary("HardSwish", _hard_swish, "x * clip(x / 6 + 1/2, 0, 1)"),
    Unary("Softplus", _softplus, "log(1 + e^x)"),
    Unary("Softsign", _softsign, "x / (1 + |x|)"),
    Unary("Mish", _mish, "x * tanh(softplus(x))"),
    Unary("Gelu", _gelu, "x * Phi(x) (approximate='none') or its tanh approximation",
          attrs={"approximate": Str("none")}, check=_check_gelu),
    Unary("Shrink", _shrink, "x + bias if x < -lambd, x - bias if x > lambd, else 0", NUMERIC,
          attrs={"bias": Float(0.0), "lambd": Float(0.5)}),
    Unary("Not", _method("logical_not"), "logical not", BOOL),
    Unary("IsNaN", _method("isnan"), "x is NaN", result=_bool),
    Unary("IsInf", _is_inf, "x is +inf (detect_positive) or -inf (detect_negative)",
          attrs={"detect_negative": Int(1), "detect_positive": Int(1)}, result=_bool),
    Unary("Identity", _identity, "x", ANY, upcast=False),
    Unary("Dropout", _identity, "inference-mode dropout: x (ratio and training_mode are not inputs)",
          attrs={"seed": Int(None)}, upcast=False),
    Unary("Clip", _clip, "min(max(x, min), max); absent bounds do not clip", NUMERIC,
          attrs={"min": Float(None), "max": Float(None)}, upcast=False),
    Unary("Cast", _cast, "x converted to dtype `to` (saturate and round_mode only concern float8)", ANY,
          attrs={"to": Str(), "saturate": Int(1), "round_mode": Str("up")}, result=_cast_result,
          check=_check_cast, upcast=False),
)


# --------------------------------------------------------------------------- registration


def _make_infer(op: Unary):
    """Inference for ``op``: check the input dtype and attributes; the output keeps the shape."""

    def infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
        expect_dtype(types[0], op.dtypes)
        if op.check is not None:
            op.check(attrs)
        return [types[0].with_dtype(op.result(types[0].dtype, attrs))]

    return infer


def _make_reference(op: Unary):
    """Reference for ``op``: float16 goes through float32, the result is converted to the output dtype."""

    def reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
        x = np.asarray(arrays[0])
        out_dtype = op.result(x.dtype.name, attrs)
        if op.upcast and x.dtype == np.float16:
            x = x.astype(np.float32)
        # Domain errors (log of negatives, overflow to inf) give NaN/inf as in onnxruntime.
        with np.errstate(all="ignore"):
            y = op.formula(NUMPY, x, attrs)
            # a fresh array (never the input itself), of the input's shape even for constant results
            return [np.array(np.broadcast_to(y, x.shape), dtype=out_dtype)]

    return reference


def _make_compute(op: Unary):
    """Compute for ``op``: the formula on one element, float16 in float32 registers."""

    def compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
        out = outputs[0]

        def element(x: Expr) -> Expr:
            if op.upcast and x.dtype == "float16":
                x = cast("float32", x)
            return LOOPS.cast(op.formula(LOOPS, x, attrs), out.dtype)

        return [pointwise(inputs, out, element, op.name)]

    return compute


def _register_all() -> None:
    for op in UNARY_OPS:
        define(op.name, infer=_make_infer(op), reference=_make_reference(op), attrs=op.attrs,
               inputs=1, fusion=Fusion.ELEMENTWISE, doc=op.doc, compute=_make_compute(op),
               schedule=pointwise_schedule)


_register_all()
