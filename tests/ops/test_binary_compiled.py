"""Broadcasting ops compiled to native code, against ember's reference.

Shapes come from ``mutually_broadcastable_shapes`` (different ranks, 1-size
and 0-size dims, scalars); every dtype an op accepts is drawn; float inputs get
NaN, infinities and signed zeros; integer inputs reach the whole dtype range
where the result is defined (wrap-around), and divisors include zero (x / 0 and
x % 0 are 0 for integers, as in the reference).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ember.ir.ops import get_op
from ember.ir.ops.binary import BROADCAST_OPS

from tests.ops.harness import COMPILE_TARGETS, check_compiled
from tests.ops.test_binary import broadcastable, small_values
from tests.ops.test_elementwise import ALL_DTYPES, FLOATS, INTS, SEEDS, random_array, with_nonfinite

COMPILED = settings(max_examples=10, deadline=None, derandomize=True, database=None)
TARGETS = st.sampled_from(COMPILE_TARGETS)
NUMERIC = FLOATS + INTS


def tolerance(dtype: str) -> dict:
    """float16 results may differ in the last bit (double rounding float64 -> float32 -> float16 in Pow)."""
    return {"rtol": 1e-3, "atol": 1e-6} if dtype == "float16" else {}


def values(rng: np.random.Generator, dtype: str, shape, kind: str) -> np.ndarray:
    """Test values of ``kind``: "grid" (ties for comparisons), "full" (whole integer range, specials for floats)."""
    if kind == "grid" or dtype == "bool":
        return small_values(rng, dtype, shape)
    if dtype in FLOATS:
        return with_nonfinite(rng, dtype, shape, -100, 100)
    info = np.iinfo(dtype)
    return random_array(rng, dtype, shape, info.min, info.max)


def test_every_broadcast_op_has_a_compute():
    assert [op.name for op in BROADCAST_OPS if get_op(op.name).compute is None] == []


# --------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@COMPILED
@given(shapes=broadcastable(), seed=SEEDS, dtype=st.sampled_from(NUMERIC), kind=st.sampled_from(["grid", "full"]),
       target=TARGETS)
def test_arithmetic(op, shapes, seed, dtype, kind, target):
    rng = np.random.default_rng(seed)
    a, b = (values(rng, dtype, s, kind) for s in shapes)
    check_compiled(op, [a, b], targets=(target,), **tolerance(dtype))


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64"])
def test_integer_division_edges(dtype):
    """Truncation toward zero, division by zero (0) and the minimum divided by -1 (wraps to the minimum)."""
    info = np.iinfo(dtype)
    a = np.array([7, -7, 7, -7, 6, -6, 5, -5, 0, info.min, info.min, info.max], dtype)
    b = np.array([2, 2, -2, -2, 4, 4, 0, 0, 0, -1, 1, -1], dtype)
    (q,) = check_compiled("Div", [a, b], targets=COMPILE_TARGETS)
    np.testing.assert_array_equal(q[:9], [3, -3, -3, 3, 1, -1, 0, 0, 0])
    for fmod in (0, 1):
        check_compiled("Mod", [a, b], {"fmod": fmod}, targets=COMPILE_TARGETS)


def test_float_division_by_zero():
    a = np.array([1.0, -1.0, 0.0, np.nan, np.inf], np.float32)
    b = np.array([0.0, 0.0, 0.0, 0.0, -0.0], np.float32)
    (q,) = check_compiled("Div", [a, b], targets=COMPILE_TARGETS)
    np.testing.assert_array_equal(q, [np.inf, -np.inf, np.nan, np.nan, -np.inf])


# --------------------------------------------------------------------------- Mod


@COMPILED
@given(shapes=broadcastable(), seed=SEEDS, dtype=st.sampled_from(NUMERIC), fmod=st.integers(0, 1),
       kind=st.sampled_from(["grid", "full"]), target=TARGETS)
def test_mod(shapes, seed, dtype, fmod, kind, target):
    rng = np.random.default_rng(seed)
    a, b = (values(rng, dtype, s, kind) for s in shapes)
    if kind == "grid" and dtype not in FLOATS:
        a = a * 5 + 3  # larger dividends, so remainders are not just the dividend
    check_compiled("Mod", [a, b], {"fmod": fmod}, opset=28, targets=(target,), **tolerance(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
def test_float_mod_special_values(dtype):
    """numpy's remainder: the divisor's sign, signed zeros, infinities, NaN, zero divisors."""
    a = np.array([0.0, -0.0, 5.0, -5.0, 1.0, -1.0, np.inf, 2.0, np.nan, 5.5, -5.5, 3.0], dtype)
    b = np.array([-3.0, 3.0, -3.0, 3.0, np.inf, np.inf, 2.0, 0.0, 1.0, -np.inf, np.inf, -0.0], dtype)
    for fmod in (0, 1):
        (y,) = check_compiled("Mod", [a, b], {"fmod": fmod}, opset=28, targets=COMPILE_TARGETS)
        with np.errstate(all="ignore"):
            expected = (np.fmod(a, b) if fmod else np.mod(a.astype(np.float32), b.astype(np.float32))).astype(dtype)
        numbers = ~np.isnan(expected)
        np.testing.assert_array_equal(np.signbit(y[numbers]), np.signbit(expected[numbers]))


# --------------------------------------------------------------------------- Pow


@COMPILED
@given(shapes=broadcastable(), seed=SEEDS, base=st.sampled_from(("float32", "float64", "float16", "int32", "int64")),
       exponent=st.sampled_from(NUMERIC), target=TARGETS)
def test_pow(shapes, seed, base, exponent, target):
    rng = np.random.default_rng(seed)
    if base in FLOATS:
        # negative bases too: a fractional exponent gives NaN in both
        x = random_array(rng, base, shapes[0], -4, 4)
        y = random_array(rng, exponent, shapes[1], -3, 3)
    else:
        # nonzero integer bases (0 ** -1 is inf, which has no integer value)
        x = random_array(rng, base, shapes[0], -5, 5)
        x = np.where(x == 0, 1, x).astype(base)
        # integral exponents: a negative base to a fractional power is NaN, which has no integer value
        y = np.round(random_array(rng, exponent, shapes[1], -3, 6)).astype(exponent)
    check_compiled("Pow", [x, y], targets=(target,), **tolerance(base))


def test_pow_integer_results_truncate():
    x = np.array([2, -2, 2, 3, -3, 1, -1, 7], np.int64)
    y = np.array([-1, -1, 10, 3, 3, -5, -5, 0], np.int64)
    (z,) = check_compiled("Pow", [x, y], targets=COMPILE_TARGETS)
    np.testing.assert_array_equal(z, [0, 0, 1024, 27, -27, 1, -1, 1])
    yf = np.array([0.5, 0.5, 2.5, 1.5, 2.0, 0.0, 3.0, -1.0], np.float32)
    check_compiled("Pow", [x.astype(np.int32) ** 2, yf], targets=COMPILE_TARGETS)


# --------------------------------------------------------------------------- PRelu, Max/Min/Sum/Mean


@COMPILED
@given(seed=SEEDS, shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4), data=st.data(),
       dtype=st.sampled_from(("float32", "float16", "float64", "int32", "int64")), target=TARGETS)
def test_prelu(seed, shape, data, dtype, target):
    # slope: a suffix of X's shape with some dims set to 1 (unidirectional broadcasting)
    rank = data.draw(st.integers(0, len(shape)), label="slope rank")
    suffix = shape[len(shape) - rank:]
    slope_shape = tuple(d if data.draw(st.booleans(), label="keep dim") else 1 for d in suffix)
    rng = np.random.default_rng(seed)
    x = with_nonfinite(rng, dtype, shape, -5, 5) if dtype in FLOATS else random_array(rng, dtype, shape, -50, 50)
    slope = random_array(rng, dtype, slope_shape, -2, 2)
    check_compiled("PRelu", [x, slope], targets=(target,), **tolerance(dtype))


@pytest.mark.parametrize("op, dtypes", [("Max", NUMERIC), ("Min", NUMERIC), ("Sum", FLOATS), ("Mean", FLOATS)])
@COMPILED
@given(data=st.data(), seed=SEEDS, target=TARGETS)
def test_variadic(op, dtypes, data, seed, target):
    n = data.draw(st.integers(1, 4), label="inputs")
    shapes = data.draw(broadcastable(n), label="shapes")
    dtype = data.draw(st.sampled_from(dtypes), label="dtype")
    kind = data.draw(st.sampled_from(["grid", "full"]), label="kind")
    rng = np.random.default_rng(seed)
    check_compiled(op, [values(rng, dtype, s, kind) for s in shapes], targets=(target,), **tolerance(dtype))


def test_max_min_propagate_nan():
    a = np.array([np.nan, 1.0, np.nan, -np.inf, 0.0], np.float32)
    b = np.array([1.0, np.nan, np.nan, np.inf, -0.0], np.float32)
    (hi,) = check_compiled("Max", [a, b], targets=COMPILE_TARGETS)
    (lo,) = check_compiled("Min", [a, b], targets=COMPILE_TARGETS)
    np.testing.assert_array_equal(hi, [np.nan, np.nan, np.nan, np.inf, 0.0])
    np.testing.assert_array_equal(lo, [np.nan, np.nan, np.nan, -np.inf, 0.0])


# --------------------------------------------------------------------------- comparisons and logic


@pytest.mark.parametrize("op", ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"])
@COMPILED
@given(shapes=broadcastable(), seed=SEEDS, data=st.data(), target=TARGETS)
def test_comparison(op, shapes, seed, data, target):
    dtype = data.draw(st.sampled_from(ALL_DTYPES if op == "Equal" else NUMERIC), label="dtype")
    kind = data.draw(st.sampled_from(["grid", "full"]), label="kind")
    rng = np.random.default_rng(seed)
    check_compiled(op, [values(rng, dtype, s, kind) for s in shapes], targets=(target,))


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
@COMPILED
@given(shapes=broadcastable(), seed=SEEDS, target=TARGETS)
def test_logic(op, shapes, seed, target):
    rng = np.random.default_rng(seed)
    check_compiled(op, [random_array(rng, "bool", s, 0, 1) for s in shapes], targets=(target,))


def test_logic_truth_tables():
    a = np.array([False, False, True, True])
    b = np.array([False, True, False, True])
    for op, expected in [("And", [0, 0, 0, 1]), ("Or", [0, 1, 1, 1]), ("Xor", [0, 1, 1, 0])]:
        (y,) = check_compiled(op, [a, b], targets=COMPILE_TARGETS)
        np.testing.assert_array_equal(y, expected)


# --------------------------------------------------------------------------- BitShift, Where


@COMPILED
@given(shapes=broadcastable(), seed=SEEDS, data=st.data(), target=TARGETS)
def test_bitshift(shapes, seed, data, target):
    direction = data.draw(st.sampled_from(["LEFT", "RIGHT"]), label="direction")
    dtype = data.draw(st.sampled_from(INTS), label="dtype")
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    x = random_array(rng, dtype, shapes[0], info.min, info.max)
    bits = info.bits
    y = random_array(rng, dtype, shapes[1], -bits - 3, bits + 3)  # shifts outside [0, bits) too
    check_compiled("BitShift", [x, y], {"direction": direction}, opset=28, targets=(target,))


@pytest.mark.parametrize("dtype", INTS)
def test_bitshift_every_amount(dtype):
    info = np.iinfo(dtype)
    x = np.array([info.min, -1 if info.min else 1, 1, 0x5A, info.max], dtype)[:, None]
    y = np.arange(-2, info.bits + 2).clip(info.min, info.max).astype(dtype)[None, :]
    for direction in ("LEFT", "RIGHT"):
        (z,) = check_compiled("BitShift", [x, y], {"direction": direction}, opset=28, targets=COMPILE_TARGETS)
        if dtype == "uint8":  # unsigned: plain shifts, 0 beyond the width
            k = y.astype(np.int64)
            ok = k < info.bits
            shifted = (x.astype(np.int64) << np.where(ok, k, 0)) if direction == "LEFT" else (x >> np.where(ok, k, 0))
            np.testing.assert_array_equal(z, np.where(ok, shifted, 0).astype(dtype))


@COMPILED
@given(data=st.data(), seed=SEEDS, target=TARGETS)
def test_where(data, seed, target):
    shapes = data.draw(broadcastable(3), label="shapes")
    dtype = data.draw(st.sampled_from(ALL_DTYPES), label="dtype")
    rng = np.random.default_rng(seed)
    cond = random_array(rng, "bool", shapes[0], 0, 1)
    x, y = (values(rng, dtype, s, "full") for s in shapes[1:])
    check_compiled("Where", [cond, x, y], targets=(target,))
