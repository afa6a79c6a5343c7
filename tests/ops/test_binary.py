"""Broadcasting ops against onnxruntime: hypothesis-drawn broadcastable shapes, dtypes and values.

Shapes come from ``mutually_broadcastable_shapes`` (different ranks, 1-size
and 0-size dims, scalars); values are drawn in each op's valid domain.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ember.ir.errors import ShapeError
from ember.ir.ops import get_op
from ember.ir.types import TensorType

from tests.ops.harness import check_node, ember_import_node, run_ember
from tests.ops.test_elementwise import ALL_DTYPES, FLOATS, INTS, SEEDS, random_array, tolerance

FAST = settings(max_examples=15, deadline=None, derandomize=True, database=None)
NUMERIC = FLOATS + INTS


def broadcastable(n: int = 2) -> st.SearchStrategy:
    """``n`` mutually broadcastable shapes."""
    return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=4, min_side=0, max_side=4).map(
        lambda s: s.input_shapes)


def small_values(rng, dtype: str, shape) -> np.ndarray:
    """Values on a coarse grid (-8..8 in halves), so comparisons see ties."""
    if dtype == "bool":
        return random_array(rng, dtype, shape, 0, 1)
    low = 0 if dtype == "uint8" else -8
    if np.dtype(dtype).kind == "f":
        return (rng.integers(2 * low, 17, size=shape) / 2).astype(dtype)
    return random_array(rng, dtype, shape, low, 8)


def nonzero(x: np.ndarray) -> np.ndarray:
    """``x`` with zeros replaced by ones (divisors)."""
    return np.where(x == 0, np.ones_like(x), x)


# --------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@FAST
@given(shapes=broadcastable(), seed=SEEDS, dtype=st.sampled_from(NUMERIC))
def test_arithmetic(op, shapes, seed, dtype):
    rng = np.random.default_rng(seed)
    # signed integers reach -100..100, so Div sees every sign combination and truncation
    low = 0 if dtype == "uint8" else -100
    a = random_array(rng, dtype, shapes[0], low, 100)
    b = random_array(rng, dtype, shapes[1], low, 100)
    if op == "Div":
        b = nonzero(b)
    if op == "Mul" and dtype in INTS:  # keep products in range
        a, b = a // 10 if dtype != "uint8" else a % 16, b // 10 if dtype != "uint8" else b % 16
    check_node(op, [a, b], **tolerance(dtype))


def test_integer_div_truncates_toward_zero():
    a = np.array([7, -7, 7, -7, 6, -6], dtype=np.int32)
    b = np.array([2, 2, -2, -2, 4, 4], dtype=np.int32)
    (q,) = check_node("Div", [a, b])
    np.testing.assert_array_equal(q, [3, -3, -3, 3, 1, -1])


@FAST
@given(shapes=broadcastable(), seed=SEEDS, dtype=st.sampled_from(NUMERIC), fmod=st.integers(0, 1))
def test_mod(shapes, seed, dtype, fmod):
    rng = np.random.default_rng(seed)
    low = 0 if dtype == "uint8" else -50
    a = random_array(rng, dtype, shapes[0], low, 50)
    b = nonzero(random_array(rng, dtype, shapes[1], low, 50))
    # fmod=0 on floats is new in opset 28 (A - floor(A / B) * B)
    opset = 28 if (fmod == 0 and dtype in FLOATS) else 21
    check_node("Mod", [a, b], {"fmod": fmod}, opset=opset, **tolerance(dtype))


def test_float_mod_special_values():
    """Opset 28's special cases for floating fmod=0 (sign of the divisor, infinities)."""
    a = np.array([0.0, -0.0, 5.0, -5.0, 1.0, -1.0, np.inf, 2.0, np.nan], dtype=np.float32)
    b = np.array([-3.0, 3.0, -3.0, 3.0, np.inf, np.inf, 2.0, 0.0, 1.0], dtype=np.float32)
    (y,) = check_node("Mod", [a, b], {"fmod": 0}, opset=28)
    np.testing.assert_array_equal(np.signbit(y[:2]), [True, False])


# onnxruntime's Pow kernels: base int32/int64/float32/float64 (float16 too), exponent not int8/uint8
POW_EXPONENTS = ("float32", "float64", "float16", "int32", "int64")


@FAST
@given(shapes=broadcastable(), seed=SEEDS, base=st.sampled_from(("float32", "float64", "float16", "int32", "int64")),
       exponent=st.sampled_from(POW_EXPONENTS))
def test_pow(shapes, seed, base, exponent):
    rng = np.random.default_rng(seed)
    if base in FLOATS:
        # positive bases for fractional exponents
        x = random_array(rng, base, shapes[0], 0.1, 4)
        y = random_array(rng, exponent, shapes[1], -3, 3)
    else:
        # nonzero integer bases, so negative exponents give 1/x^n truncated (0, 1 or -1)
        x = nonzero(random_array(rng, base, shapes[0], -5, 5))
        y = random_array(rng, exponent, shapes[1], -3, 4)
    check_node("Pow", [x, y], **tolerance(base))


def test_pow_negative_base_integer_exponent():
    x = np.array([-2.0, -3.0, -0.5, 0.0], dtype=np.float32)
    y = np.array([3, 2, -1, 2], dtype=np.int64)
    check_node("Pow", [x, y])


@FAST
@given(seed=SEEDS, shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4), data=st.data(),
       dtype=st.sampled_from(("float32", "float16")))
def test_prelu(seed, shape, data, dtype):
    # slope: a suffix of X's shape with some dims set to 1 (unidirectional broadcasting)
    rank = data.draw(st.integers(0, len(shape)), label="slope rank")
    suffix = shape[len(shape) - rank:]
    slope_shape = tuple(d if data.draw(st.booleans(), label="keep dim") else 1 for d in suffix)
    rng = np.random.default_rng(seed)
    x = random_array(rng, dtype, shape, -5, 5)
    slope = random_array(rng, dtype, slope_shape, -2, 2)
    check_node("PRelu", [x, slope], **tolerance(dtype))


def test_prelu_integers():
    """onnxruntime has no integer PRelu kernel; the reference is x < 0 ? slope * x : x."""
    x = np.array([[-3, 0, 5], [4, -2, -1]], dtype=np.int64)
    slope = np.array([2, 3, -1], dtype=np.int64)
    (y,) = run_ember("PRelu", [x, slope])
    np.testing.assert_array_equal(y, [[-6, 0, 5], [4, -6, 1]])


# --------------------------------------------------------------------------- variadic


@pytest.mark.parametrize("op, dtypes", [
    ("Max", NUMERIC), ("Min", NUMERIC), ("Sum", ("float32", "float64", "float16")), ("Mean", ("float32", "float16")),
])
@FAST
@given(data=st.data(), seed=SEEDS)
def test_variadic(op, dtypes, data, seed):
    n = data.draw(st.integers(1, 4), label="inputs")
    shapes = data.draw(broadcastable(n), label="shapes")
    dtype = data.draw(st.sampled_from(dtypes), label="dtype")
    rng = np.random.default_rng(seed)
    check_node(op, [small_values(rng, dtype, s) for s in shapes], **tolerance(dtype))


def test_variadic_single_input_is_a_copy():
    x = np.arange(4, dtype=np.float32)
    maximum = get_op("Max")
    (y,) = maximum.run_reference([x], {})
    assert y is not x and not np.shares_memory(x, y)


# --------------------------------------------------------------------------- comparisons and logic


@pytest.mark.parametrize("op", ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"])
@FAST
@given(shapes=broadcastable(), seed=SEEDS, data=st.data())
def test_comparison(op, shapes, seed, data):
    dtype = data.draw(st.sampled_from(ALL_DTYPES if op == "Equal" else NUMERIC), label="dtype")
    rng = np.random.default_rng(seed)
    check_node(op, [small_values(rng, dtype, s) for s in shapes])


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
@FAST
@given(shapes=broadcastable(), seed=SEEDS)
def test_logic(op, shapes, seed):
    rng = np.random.default_rng(seed)
    check_node(op, [random_array(rng, "bool", s, 0, 1) for s in shapes])


@FAST
@given(shapes=broadcastable(), seed=SEEDS, data=st.data())
def test_bitshift(shapes, seed, data):
    direction = data.draw(st.sampled_from(["LEFT", "RIGHT"]), label="direction")
    # opset 28 adds signed types and defines shifts outside [0, bits)
    dtype = data.draw(st.sampled_from(INTS), label="dtype")
    opset = data.draw(st.sampled_from([21, 28]) if dtype == "uint8" else st.just(28), label="opset")
    rng = np.random.default_rng(seed)
    x = random_array(rng, dtype, shapes[0], -1000, 1000)
    bits = np.dtype(dtype).itemsize * 8
    y = random_array(rng, dtype, shapes[1], -3 if opset == 28 else 0, bits + 3 if opset == 28 else bits - 1)
    check_node("BitShift", [x, y], {"direction": direction}, opset=opset)


@FAST
@given(data=st.data(), seed=SEEDS)
def test_where(data, seed):
    shapes = data.draw(broadcastable(3), label="shapes")
    dtype = data.draw(st.sampled_from(NUMERIC), label="dtype")
    rng = np.random.default_rng(seed)
    cond = random_array(rng, "bool", shapes[0], 0, 1)
    check_node("Where", [cond, small_values(rng, dtype, shapes[1]), small_values(rng, dtype, shapes[2])])


def test_where_bool_values():
    """onnxruntime has no bool Where kernel; the reference is numpy's where."""
    cond = np.array([[True], [False]])
    x, y = np.array([True, False, True]), np.array([False, False, True])
    (out,) = run_ember("Where", [cond, x, y])
    np.testing.assert_array_equal(out, np.where(cond, x, y))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("op, dtypes", [
    ("Add", ("float32", "int32")), ("Div", ("int64", "int32")), ("Max", ("float32", "float16")),
    ("Equal", ("bool", "uint8")), ("And", ("bool", "int8")), ("PRelu", ("float32", "float64")),
    ("Where", ("bool", "float32", "int64")), ("Mean", ("float32", "float32", "float64")),
])
def test_rejects_mixed_dtypes(op, dtypes):
    with pytest.raises(ShapeError, match="dtype"):
        ember_import_node(op, [np.zeros(3, d) for d in dtypes])


@pytest.mark.parametrize("op, dtypes", [
    ("Sum", ("int32", "int32")), ("Mean", ("int64",)), ("And", ("float32", "float32")),
    ("Less", ("bool", "bool")), ("Pow", ("int8", "int8")), ("Pow", ("float32", "bool")),
    ("Where", ("int32", "float32", "float32")), ("BitShift", ("float32", "float32")),
    ("PRelu", ("uint8", "uint8")),
])
def test_rejects_dtype(op, dtypes):
    attrs = {"direction": "LEFT"} if op == "BitShift" else {}
    with pytest.raises(ShapeError, match="dtype"):
        ember_import_node(op, [np.zeros(3, d) for d in dtypes], attrs, opset=28)


@pytest.mark.parametrize("op, shapes", [
    ("Add", [(3,), (4,)]), ("Mul", [(2, 3), (3, 2)]), ("Max", [(2, 1), (1, 3), (4, 1, 2)]),
    ("Where", [(2,), (3,), (1,)]), ("Equal", [(0,), (2,)]),
    ("PRelu", [(3, 1), (3, 4)]), ("PRelu", [(3,), (2, 3)]),
])
def test_rejects_non_broadcastable_shapes(op, shapes):
    dtypes = ["bool"] + ["float32"] * 2 if op == "Where" else ["float32"] * len(shapes)
    with pytest.raises(ShapeError, match="broadcast"):
        ember_import_node(op, [np.zeros(s, d) for s, d in zip(shapes, dtypes)])


def test_rejects_bad_attributes_and_arity():
    with pytest.raises(ShapeError, match="fmod"):
        ember_import_node("Mod", [np.zeros(2, np.int32)] * 2, {"fmod": 2})
    with pytest.raises(ShapeError, match="direction"):
        ember_import_node("BitShift", [np.zeros(2, np.uint8)] * 2, {"direction": "UP"})
    with pytest.raises(ShapeError, match="inputs"):
        get_op("Sum").infer_types([], {})
    with pytest.raises(ShapeError, match="inputs"):
        get_op("Add").infer_types([TensorType("float32", (2,))] * 3, {})
