"""Unary elementwise ops against onnxruntime: hypothesis-drawn shapes, values and attributes.

Each op has a :class:`Case`: the value range of its domain, the dtypes to try
and how to draw its attributes. Shapes include scalars and 0-size dims.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import TensorProto, helper

from ember.ir.errors import AttrError, ShapeError, UnsupportedOpError
from ember.ir.ops import get_op
from ember.ir.ops.elementwise import erf
from ember.ir.types import TensorType

from tests.ops.harness import Const, check_node, ember_import_node, run_ember, run_ort

FAST = settings(max_examples=15, deadline=None, derandomize=True, database=None)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)
SEEDS = st.integers(0, 2**32 - 1)
FLOATS = ("float32", "float16", "float64")
INTS = ("int8", "uint8", "int32", "int64")
ALL_DTYPES = FLOATS + INTS + ("bool",)


def tolerance(dtype: str) -> dict:
    """check_node tolerances: float16 results may differ in the last bit or two."""
    return {"rtol": 2e-3, "atol": 2e-3} if dtype == "float16" else {}


def random_array(rng: np.random.Generator, dtype: str, shape, low: float, high: float) -> np.ndarray:
    """Uniform values in [low, high] (integers: clipped to the dtype's range; bools: fair coins)."""
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(max(low, info.min), min(high, info.max), size=shape, endpoint=True).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def with_specials(rng, dtype, shape, low, high) -> np.ndarray:
    """Mostly uniform values, with some zeros, exact halves, NaN and infinities sprinkled in."""
    x = random_array(rng, dtype, shape, low, high)
    if x.dtype.kind != "f":
        return x
    pick = rng.random(shape)
    x = np.where(pick < 0.15, np.round(x * 2) / 2, x)  # halves: ties for Round
    x = np.where((pick >= 0.15) & (pick < 0.2), 0, x)
    return x.astype(dtype)


def with_nonfinite(rng, dtype, shape, low, high) -> np.ndarray:
    x = random_array(rng, dtype, shape, low, high)
    pick = rng.random(shape)
    x = np.where(pick < 0.2, np.inf, np.where(pick < 0.4, -np.inf, np.where(pick < 0.6, np.nan, x)))
    return x.astype(dtype)


def float32_attr(low: float, high: float) -> st.SearchStrategy:
    """A float attribute value (ONNX stores float32)."""
    return st.floats(low, high, width=32)


def optional_attrs(**strategies: st.SearchStrategy) -> Callable[[st.DataObject], dict]:
    """Draw each attribute or leave it out (so the ONNX default applies)."""

    def draw(data: st.DataObject) -> dict:
        attrs = {}
        for name, strategy in strategies.items():
            value = data.draw(st.none() | strategy, label=name)
            if value is not None:
                attrs[name] = value
        return attrs

    return draw


@dataclass(frozen=True)
class Case:
    """How to test one unary op against onnxruntime."""

    op: str
    low: float = -6.0
    high: float = 6.0
    dtypes: tuple[str, ...] = FLOATS
    attrs: Callable[[st.DataObject], dict] | None = None
    values: Callable = random_array
    opset: int = 21

    def __str__(self) -> str:
        return self.op


# onnxruntime has no float64 kernel for these; their float64 path is checked against float32 below.
NO_ORT_FLOAT64 = ("float32", "float16")

CASES = [
    Case("Abs", dtypes=FLOATS + INTS),
    Case("Neg", dtypes=FLOATS + ("int8", "int32", "int64")),
    Case("Sign", dtypes=FLOATS + INTS, values=with_specials),
    Case("Relu", dtypes=FLOATS + ("int8", "int32")),
    Case("Exp", -10, 10),
    Case("Log", 0.01, 10),
    Case("Sqrt", 0, 10),
    Case("Reciprocal", 0.1, 10),
    Case("Floor", values=with_specials),
    Case("Ceil", values=with_specials),
    Case("Round", values=with_specials),
    Case("Sin", -10, 10),
    Case("Cos", -10, 10),
    Case("Tan", -1.5, 1.5, dtypes=NO_ORT_FLOAT64),
    Case("Asin", -1, 1, dtypes=NO_ORT_FLOAT64),
    Case("Acos", -1, 1, dtypes=NO_ORT_FLOAT64),
    Case("Atan", -10, 10, dtypes=NO_ORT_FLOAT64),
    Case("Sinh", -5, 5, dtypes=NO_ORT_FLOAT64),
    Case("Cosh", -5, 5, dtypes=NO_ORT_FLOAT64),
    Case("Tanh", -5, 5),
    Case("Asinh", -10, 10, dtypes=NO_ORT_FLOAT64),
    Case("Acosh", 1, 10, dtypes=NO_ORT_FLOAT64),
    Case("Atanh", -0.99, 0.99, dtypes=NO_ORT_FLOAT64),
    Case("Erf", -5, 5, dtypes=NO_ORT_FLOAT64),
    Case("Sigmoid", -10, 10),
    Case("LeakyRelu", dtypes=NO_ORT_FLOAT64, attrs=optional_attrs(alpha=float32_attr(-2, 2))),
    Case("Elu", dtypes=NO_ORT_FLOAT64, attrs=optional_attrs(alpha=float32_attr(0, 3))),
    Case("Selu", dtypes=NO_ORT_FLOAT64,
         attrs=optional_attrs(alpha=float32_attr(0, 3), gamma=float32_attr(0, 3))),
    Case("Celu", dtypes=("float32",), attrs=optional_attrs(alpha=float32_attr(0.125, 3))),
    Case("ThresholdedRelu", dtypes=NO_ORT_FLOAT64, attrs=optional_attrs(alpha=float32_attr(-2, 2))),
    Case("HardSigmoid", dtypes=NO_ORT_FLOAT64,
         attrs=optional_attrs(alpha=float32_attr(-1, 1), beta=float32_attr(-1, 1))),
    Case("HardSwish", dtypes=NO_ORT_FLOAT64),
    Case("Softplus", -20, 20, dtypes=NO_ORT_FLOAT64),
    Case("Softsign", -20, 20, dtypes=NO_ORT_FLOAT64),
    Case("Mish", -10, 10, dtypes=NO_ORT_FLOAT64),
    Case("Gelu", dtypes=NO_ORT_FLOAT64, attrs=optional_attrs(approximate=st.sampled_from(["none", "tanh"])),
         opset=20),
    Case("Shrink", -50, 50, dtypes=FLOATS + ("int8", "int32", "int64"),
         attrs=optional_attrs(bias=float32_attr(-3, 3), lambd=float32_attr(0, 5))),
    Case("Not", dtypes=("bool",)),
    Case("IsNaN", values=with_nonfinite),
    Case("IsInf", values=with_nonfinite,
         attrs=optional_attrs(detect_negative=st.integers(0, 1), detect_positive=st.integers(0, 1))),
    Case("Identity", dtypes=ALL_DTYPES),
]


@pytest.mark.parametrize("case", CASES, ids=str)
@FAST
@given(data=st.data(), shape=SHAPES, seed=SEEDS)
def test_unary_matches_onnxruntime(case: Case, data, shape, seed):
    dtype = data.draw(st.sampled_from(case.dtypes), label="dtype")
    x = case.values(np.random.default_rng(seed), dtype, shape, case.low, case.high)
    attrs = case.attrs(data) if case.attrs else {}
    check_node(case.op, [x], attrs, opset=case.opset, **tolerance(dtype))


@pytest.mark.parametrize("case", [c for c in CASES if c.dtypes == NO_ORT_FLOAT64], ids=str)
@settings(FAST, max_examples=4)
@given(data=st.data(), shape=SHAPES, seed=SEEDS)
def test_float64_against_onnxruntime_float32(case: Case, data, shape, seed):
    """Where onnxruntime lacks a float64 kernel, ember's float64 must agree with its float32."""
    x = case.values(np.random.default_rng(seed), "float32", shape, case.low, case.high)
    attrs = case.attrs(data) if case.attrs else {}
    (expected,) = run_ort(case.op, [x], attrs, opset=case.opset)
    (actual,) = run_ember(case.op, [x.astype(np.float64)], attrs, opset=case.opset)
    assert actual.dtype == np.float64
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_shrink_unsigned():
    """uint8 Shrink with bias <= lambd, so that x - bias never goes negative."""
    x = np.arange(0, 40, dtype=np.uint8).reshape(4, 10)
    check_node("Shrink", [x], {"lambd": 5.5, "bias": 2.5})


def test_relu_int64():
    """onnxruntime has no int64 Relu kernel; the reference is max(x, 0)."""
    x = np.array([[-3, 0, 5], [2**40, -(2**40), 1]], dtype=np.int64)
    (y,) = run_ember("Relu", [x])
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    assert y.dtype == np.int64


# --------------------------------------------------------------------------- Clip


@FAST
@given(shape=SHAPES, seed=SEEDS, dtype=st.sampled_from(FLOATS + INTS),
       low=st.none() | st.integers(-20, 20), high=st.none() | st.integers(-20, 20))
def test_clip(shape, seed, dtype, low, high):
    if dtype == "uint8":  # ONNX bounds have the input's dtype
        low, high = (None if b is None else abs(b) for b in (low, high))
    rng = np.random.default_rng(seed)
    x = random_array(rng, dtype, shape, -30, 30)
    # float bounds off the integer grid, so they are rounded to the dtype exactly as onnxruntime's are
    offset = 0.3 if np.dtype(dtype).kind == "f" else 0
    bounds = [None if b is None else Const(np.array(b + offset, dtype=dtype)) for b in (low, high)]
    while bounds and bounds[-1] is None:
        bounds.pop()
    check_node("Clip", [x, *bounds])


def test_clip_min_above_max_gives_max():
    x = np.linspace(-5, 5, 11, dtype=np.float32)
    (y,) = check_node("Clip", [x, Const(np.float32(3)), Const(np.float32(1))])
    np.testing.assert_array_equal(y, np.ones_like(x))


def test_clip_opset6_attributes():
    x = np.linspace(-5, 5, 11, dtype=np.float32)
    check_node("Clip", [x], {"min": -1.5, "max": 2.5}, opset=6)


def test_clip_integer_bounds_saturate():
    """A float bound outside an integer dtype's range clips nothing on that side."""
    clip = get_op("Clip")
    x = np.array([0, 7, 255], dtype=np.uint8)
    attrs = clip.normalize_attrs({"min": -5.0, "max": 1000.0})
    np.testing.assert_array_equal(clip.run_reference([x], attrs)[0], x)
    attrs = clip.normalize_attrs({"min": 3.0, "max": math.inf})
    np.testing.assert_array_equal(clip.run_reference([x], attrs)[0], [3, 7, 255])


# --------------------------------------------------------------------------- Cast

ONNX_TYPE = {name: helper.np_dtype_to_tensor_dtype(np.dtype(name)) for name in ALL_DTYPES}


@settings(FAST, max_examples=40)
@given(shape=SHAPES, seed=SEEDS, source=st.sampled_from(ALL_DTYPES), target=st.sampled_from(ALL_DTYPES))
def test_cast(shape, seed, source, target):
    rng = np.random.default_rng(seed)
    if np.dtype(source).kind == "f":
        # in range of every integer target (float -> int is undefined out of range), with fractions and zeros
        low = 0 if target == "uint8" else -120
        x = with_specials(rng, source, shape, low, 120)
    else:
        # integer -> integer wraps around, which ONNX defines
        x = random_array(rng, source, shape, -1000, 1000)
    check_node("Cast", [x], {"to": ONNX_TYPE[target]})


def test_cast_rejects_unsupported_target():
    cast = get_op("Cast")
    with pytest.raises(UnsupportedOpError, match="bfloat16"):
        cast.infer_types([TensorType("float32", (2,))], cast.normalize_attrs({"to": "bfloat16"}))
    with pytest.raises(UnsupportedOpError):
        ember_import_node("Cast", [np.zeros(2, np.float32)], {"to": TensorProto.STRING})


# --------------------------------------------------------------------------- Dropout


@FAST
@given(shape=SHAPES, seed=SEEDS, dtype=st.sampled_from(FLOATS), variant=st.sampled_from(["plain", "ratio", "eval"]),
       mask=st.booleans())
def test_dropout_is_identity_in_inference(shape, seed, dtype, variant, mask):
    x = random_array(np.random.default_rng(seed), dtype, shape, -5, 5)
    extra = {"plain": [], "ratio": [Const(np.array(0.3, dtype))],
             "eval": [Const(np.array(0.3, dtype)), Const(np.array(False))]}[variant]
    check_node("Dropout", [x, *extra], {"seed": 7} if variant == "ratio" else {}, num_outputs=2 if mask else 1)


def test_dropout_registry_op():
    """ember's own Dropout: one input, the ``seed`` attribute accepted, identity."""
    dropout = get_op("Dropout")
    attrs = dropout.normalize_attrs({"seed": 3})
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert dropout.infer_types([TensorType.of(x)], attrs) == [TensorType.of(x)]
    np.testing.assert_array_equal(dropout.run_reference([x], attrs)[0], x)


# --------------------------------------------------------------------------- erf accuracy


def test_erf_matches_math_erf():
    x = np.concatenate([np.linspace(-7, 7, 20001), [-0.0, 0.0, 0.5, -0.5, 4.0, -4.0, 30.0, 1e-300, -1e-20]])
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(erf(x), expected, rtol=4e-15, atol=0)
    assert math.copysign(1, erf(np.array(-0.0))) == -1.0


def test_erf_nonfinite():
    np.testing.assert_array_equal(erf(np.array([np.inf, -np.inf, np.nan])), [1.0, -1.0, np.nan])


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("op, dtype", [
    ("Exp", "int32"), ("Sigmoid", "int64"), ("Gelu", "int8"), ("Neg", "uint8"), ("Relu", "uint8"),
    ("Abs", "bool"), ("Not", "float32"), ("IsNaN", "int32"), ("Clip", "bool"), ("Shrink", "bool"),
])
def test_rejects_dtype(op, dtype):
    with pytest.raises(ShapeError, match="dtype"):
        ember_import_node(op, [np.zeros((2, 3), dtype)], opset=20)


def test_dropout_registry_op_rejects_integers():
    """(The ONNX frontend turns Dropout into an alias; ember's own op checks its dtype.)"""
    dropout = get_op("Dropout")
    with pytest.raises(ShapeError, match="dtype"):
        dropout.infer_types([TensorType("int64", (2,))], dropout.normalize_attrs({}))


def test_rejects_bad_attribute_values():
    with pytest.raises(ShapeError, match="approximate"):
        ember_import_node("Gelu", [np.zeros(3, np.float32)], {"approximate": "erf"}, opset=20)
    with pytest.raises(ShapeError, match="alpha"):
        ember_import_node("Celu", [np.zeros(3, np.float32)], {"alpha": 0.0})


def test_rejects_unknown_attribute_and_arity():
    relu = get_op("Relu")
    with pytest.raises(AttrError):
        relu.normalize_attrs({"alpha": 1.0})
    with pytest.raises(ShapeError, match="inputs"):
        relu.infer_types([TensorType("float32", (2,))] * 2, {})
