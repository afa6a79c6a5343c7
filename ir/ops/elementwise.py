"""Unary pointwise ops (fusion class ELEMENTWISE): activations, math functions, predicates, casts.

Every op here maps one tensor to one tensor of the same shape, element by
element. They are defined from one table (:data:`UNARY_OPS`): each row names
the op, its numpy function, the dtypes it accepts, its attributes and its
result dtype; a single loop registers them all with shared inference and
reference wrappers.

Numerics: float16 inputs are computed in float32 and rounded back once (numpy's
float16 loops would round after every step of a composite formula, where
onnxruntime computes in float32); erf (and so exact Gelu) is computed in
float64 with W. J. Cody's rational approximations, since numpy has no erf.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..errors import UnsupportedOpError
from ..types import DTYPES, FLOAT_DTYPES, NUMERIC_DTYPES, TensorType
from .common import as_dtype, expect_dtype, require
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


# --------------------------------------------------------------------------- op functions


def _sigmoid(x, a):
    return 1.0 / (1.0 + np.exp(-x))


def _relu(x, a):
    return np.maximum(x, 0)


def _leaky_relu(x, a):
    return np.where(x >= 0, x, x * a["alpha"])


def _elu(x, a):
    return np.where(x >= 0, x, a["alpha"] * np.expm1(x))


def _selu(x, a):
    return a["gamma"] * np.where(x > 0, x, a["alpha"] * np.expm1(x))


def _celu(x, a):
    alpha = a["alpha"]
    return np.maximum(x, 0) + np.minimum(0, alpha * np.expm1(x / alpha))


def _hard_sigmoid(x, a):
    return np.clip(a["alpha"] * x + a["beta"], 0, 1)


def _hard_swish(x, a):
    return x * np.clip(x / 6 + 0.5, 0, 1)


def _softplus(x, a):
    # log(1 + exp(x)) without overflow for large x
    return np.logaddexp(0, x)


def _softsign(x, a):
    return x / (1 + np.abs(x))


def _mish(x, a):
    return x * np.tanh(np.logaddexp(0, x))


def _thresholded_relu(x, a):
    return np.where(x > a["alpha"], x, 0)


def _shrink(x, a):
    # integers are computed in float64 and truncated back, as onnxruntime casts (x +- bias)
    lambd, bias = a["lambd"], a["bias"]
    if x.dtype.kind in "iu":
        x = x.astype(np.float64)
    return np.where(x < -lambd, x + bias, np.where(x > lambd, x - bias, 0))


def _gelu(x, a):
    if a["approximate"] == "tanh":
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)
        return 0.5 * x * (1 + np.tanh(inner))
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def _is_inf(x, a):
    positive = np.isposinf(x) if a["detect_positive"] else np.zeros(x.shape, bool)
    negative = np.isneginf(x) if a["detect_negative"] else np.zeros(x.shape, bool)
    return positive | negative


def _identity(x, a):
    return x


def _clip_bound(bound: float | None, dtype: np.dtype):
    """A Clip bound in ``dtype`` (None if absent); integer bounds saturate to the dtype's range."""
    if bound is None or math.isnan(bound):
        return None
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if math.isinf(bound):
            return None
        return np.asarray(max(info.min, min(info.max, int(bound))), dtype)
    return np.asarray(bound, dtype)


def _clip(x, a):
    # Max first, then Min: when min > max every value becomes max, as ONNX specifies.
    low, high = _clip_bound(a["min"], x.dtype), _clip_bound(a["max"], x.dtype)
    if low is not None:
        x = np.maximum(x, low)
    if high is not None:
        x = np.minimum(x, high)
    return x


def _cast(x, a):
    return x.astype(a["to"])


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

    ``fn(x, attrs)`` computes the op on an array (float16 arrives as float32 when
    ``upcast``); ``result(dtype, attrs)`` names the output dtype; ``check(attrs)``
    validates attribute values.
    """

    name: str
    fn: Callable[[np.ndarray, dict], np.ndarray]
    doc: str
    dtypes: frozenset = FLOATS
    attrs: Mapping[str, Attr] = field(default_factory=dict)
    result: Callable[[str, dict], str] = _same
    check: Callable[[dict], None] | None = None
    upcast: bool = True


def _alpha(default: float) -> dict:
    return {"alpha": Float(default)}


def _np(ufunc) -> Callable[[np.ndarray, dict], np.ndarray]:
    """A numpy function as an op function (which takes an ``attrs`` argument it ignores)."""
    return lambda x, a: ufunc(x)


UNARY_OPS: tuple[Unary, ...] = (
    Unary("Abs", _np(np.abs), "|x|", NUMERIC),
    Unary("Neg", _np(np.negative), "-x", SIGNED),
    Unary("Sign", _np(np.sign), "-1, 0 or 1 by the sign of x", NUMERIC),
    Unary("Relu", _relu, "max(x, 0)", SIGNED),
    Unary("Exp", _np(np.exp), "e^x"),
    Unary("Log", _np(np.log), "natural logarithm"),
    Unary("Sqrt", _np(np.sqrt), "square root"),
    Unary("Reciprocal", _np(np.reciprocal), "1 / x"),
    Unary("Floor", _np(np.floor), "round toward -inf"),
    Unary("Ceil", _np(np.ceil), "round toward +inf"),
    Unary("Round", _np(np.round), "round half to even"),
    Unary("Sin", _np(np.sin), "sine"),
    Unary("Cos", _np(np.cos), "cosine"),
    Unary("Tan", _np(np.tan), "tangent"),
    Unary("Asin", _np(np.arcsin), "arcsine"),
    Unary("Acos", _np(np.arccos), "arccosine"),
    Unary("Atan", _np(np.arctan), "arctangent"),
    Unary("Sinh", _np(np.sinh), "hyperbolic sine"),
    Unary("Cosh", _np(np.cosh), "hyperbolic cosine"),
    Unary("Tanh", _np(np.tanh), "hyperbolic tangent"),
    Unary("Asinh", _np(np.arcsinh), "inverse hyperbolic sine"),
    Unary("Acosh", _np(np.arccosh), "inverse hyperbolic cosine"),
    Unary("Atanh", _np(np.arctanh), "inverse hyperbolic tangent"),
    Unary("Erf", lambda x, a: erf(x), "error function"),
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
    Unary("Not", _np(np.logical_not), "logical not", BOOL),
    Unary("IsNaN", _np(np.isnan), "x is NaN", result=_bool),
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
    """Reference for ``op``: float16 goes through float32, the result is cast to the output dtype."""

    def reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
        x = np.asarray(arrays[0])
        out_dtype = op.result(x.dtype.name, attrs)
        if op.upcast and x.dtype == np.float16:
            x = x.astype(np.float32)
        # Domain errors (log of negatives, overflow to inf) give NaN/inf as in onnxruntime.
        with np.errstate(all="ignore"):
            y = op.fn(x, attrs)
            return [as_dtype(y, out_dtype)]

    return reference


def _register_all() -> None:
    for op in UNARY_OPS:
        define(op.name, infer=_make_infer(op), reference=_make_reference(op), attrs=op.attrs,
               inputs=1, fusion=Fusion.ELEMENTWISE, doc=op.doc)


_register_all()
