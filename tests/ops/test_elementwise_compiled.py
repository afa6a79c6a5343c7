"""Unary elementwise ops compiled to native code, against ember's reference.

Every op of the unary table is compiled for every dtype it accepts (float64
too, where onnxruntime lacks it: the reference is the oracle here), on shapes
with scalars and 0-size dims, with NaN, infinities and signed zeros mixed in,
on this CPU and on plain x86-64. Integer ops see their dtype's whole range, so
wrap-around (Abs and Neg of the minimum) is compared too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ember
from ember.ir import Graph, TensorType
from ember.ir.ops import get_op
from ember.ir.ops.elementwise import UNARY_OPS
from ember.runtime import ReferenceModule

from tests.ops.harness import COMPILE_TARGETS, Const, assert_same, check_compiled
from tests.ops.test_elementwise import (ALL_DTYPES, CASES, FLOATS, INTS, ONNX_TYPE, SEEDS, SHAPES, random_array,
                                        with_nonfinite, with_specials)

COMPILED = settings(max_examples=8, deadline=None, derandomize=True, database=None)
TARGETS = st.sampled_from(COMPILE_TARGETS)
# ops whose integer results are defined on the whole dtype range (two's complement wrap-around)
FULL_RANGE = {"Abs", "Neg", "Sign", "Relu"}


def tolerance(dtype: str) -> dict:
    """float16 results may differ in the last bit: libm and numpy may differ by a float32 ulp before rounding."""
    return {"rtol": 1e-3, "atol": 1e-6} if dtype == "float16" else {}


def compile_graph_and_compare(op: str, arrays: list[np.ndarray], attrs: dict, target: str = "host", **tol):
    """Compile a one-node graph of registry op ``op`` (built directly, not through ONNX) and compare."""
    graph = Graph(f"test_{op}")
    inputs = [graph.add_input(f"in{i}", TensorType.of(a)) for i, a in enumerate(arrays)]
    graph.set_outputs([graph.apply(op, inputs, attrs)])
    feeds = {f"in{i}": a for i, a in enumerate(arrays)}
    (expected,) = ReferenceModule(graph).run(feeds)
    (actual,) = ember.compile(graph, target=target).run(feeds)
    assert_same(actual, expected, what=f"compiled {op} ({target})", **tol)
    return actual


def test_every_unary_op_has_a_compute():
    assert [op.name for op in UNARY_OPS if get_op(op.name).compute is None] == []


ROWS = {op.name: op for op in UNARY_OPS}


@pytest.mark.parametrize("case", CASES, ids=str)
@COMPILED
@given(data=st.data(), shape=SHAPES, seed=SEEDS, target=TARGETS)
def test_unary_compiled(case, data, shape, seed, target):
    dtype = data.draw(st.sampled_from(sorted(ROWS[case.op].dtypes)), label="dtype")
    rng = np.random.default_rng(seed)
    attrs = case.attrs(data) if case.attrs else {}
    if case.op == "Shrink" and dtype == "uint8":  # x - bias must stay >= 0
        attrs["bias"] = min(attrs.get("bias", 0.0), attrs.get("lambd", 0.5))
    if dtype in INTS and case.op in FULL_RANGE:
        x = random_array(rng, dtype, shape, np.iinfo(dtype).min, np.iinfo(dtype).max)
    elif dtype in FLOATS:
        values = data.draw(st.sampled_from([case.values, with_specials, with_nonfinite]), label="values")
        x = values(rng, dtype, shape, case.low, case.high)
    else:
        x = random_array(rng, dtype, shape, case.low, case.high)
    check_compiled(case.op, [x], attrs, opset=case.opset, targets=(target,), **tolerance(dtype))


def test_unary_special_values_on_both_targets():
    """Signed zeros, infinities, NaN and large values through the ops with overflow-prone formulas."""
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 0.5, -0.5, 2.5, 89.0, -89.0, 1e4, -1e4],
                 np.float32)
    for op in ("Sigmoid", "Softplus", "Mish", "Tanh", "Sign", "Round", "Abs", "Neg", "Exp", "Elu", "HardSwish"):
        check_compiled(op, [x], targets=COMPILE_TARGETS)
    check_compiled("Gelu", [x], opset=20, targets=COMPILE_TARGETS)
    check_compiled("Gelu", [x], {"approximate": "tanh"}, opset=20, targets=COMPILE_TARGETS)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in float32 ulps (NaN to NaN is 0)."""
    def ordered(v):
        bits = v.astype(np.float32).view(np.int32).astype(np.int64)
        return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)

    with np.errstate(over="ignore"):
        d = np.abs(ordered(a) - ordered(b))
    both_nan = np.isnan(a) & np.isnan(b)
    return np.where(both_nan, 0, np.where(np.isnan(a) != np.isnan(b), 2**40, d))


@pytest.mark.parametrize("op, exact, ulps", [
    ("Tanh", np.tanh, 1),
    ("Elu", lambda v: np.where(v >= 0, v, np.expm1(v)), 1),  # expm1
    ("Softplus", lambda v: np.logaddexp(0, v), 1),  # log1p
    # rounded after softplus, tanh and the product; softplus's float32 exp is within an ulp (codegen/vecmath.py)
    ("Mish", lambda v: v * np.tanh(np.logaddexp(0, v)), 3),
])
def test_float32_functions_through_float64_are_exact(op, exact, ulps):
    """expm1 and log1p of float32 are computed through float64 exp/log, tanh inline (codegen/vecmath.py):
    within an ulp of exact."""
    magnitudes = np.geomspace(1e-38, 30, 20000)
    x = np.concatenate([np.linspace(-30, 30, 20001), magnitudes, -magnitudes, [0.0, 2.0**-12, 2.0**-20, 2.0**-24,
                                                                              -0.99999994, -1.0, 88.7, 89.0]])
    x = np.concatenate([x.astype(np.float32), np.float32([np.inf, -np.inf, np.nan])])
    (y,) = check_compiled(op, [x], targets=COMPILE_TARGETS)
    with np.errstate(all="ignore"):
        expected = exact(x.astype(np.float64)).astype(np.float32)
    normal = np.abs(expected) >= np.finfo(np.float32).tiny  # (subnormal results lose bits in any formula)
    assert ulp_distance(y, expected)[normal | np.isnan(expected)].max() <= ulps


def test_softplus_does_not_overflow():
    x = np.array([-200.0, -100.0, -20.0, 0.0, 20.0, 100.0, 200.0], np.float32)
    (y,) = check_compiled("Softplus", [x])
    expected = [max(v, 0.0) + math.log1p(math.exp(-abs(v))) for v in x.astype(np.float64)]
    np.testing.assert_allclose(y, np.float32(expected), rtol=1e-6)


def test_gelu_keeps_precision_of_negative_tails():
    """1 + erf(x / sqrt 2) is 0 in float32 from x = -6 on; the compute works in float64 as the reference does."""
    x = np.array([-5.0, -6.0, -7.0], np.float32)
    (y,) = check_compiled("Gelu", [x], opset=20, rtol=1e-6, atol=0)
    expected = [0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x.astype(np.float64)]
    # (x / sqrt 2 is rounded to float32 first, which costs ~2 z^2 float32 ulps here)
    np.testing.assert_allclose(y, expected, rtol=1e-4)


def test_round_half_to_even():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 0.49999997], np.float32)
    (y,) = check_compiled("Round", [x], targets=COMPILE_TARGETS)
    np.testing.assert_array_equal(y, [-2, -2, -0, 0, 2, 2, 4, 0])


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64"])
def test_integer_abs_neg_wrap(dtype):
    info = np.iinfo(dtype)
    x = np.array([info.min, info.min + 1, -1, 0, 1, info.max], dtype)
    for op in ("Abs", "Neg", "Sign", "Relu"):
        check_compiled(op, [x], targets=COMPILE_TARGETS)


# --------------------------------------------------------------------------- Shrink, IsInf


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64", "float16", "float64"])
def test_shrink_integers_truncate(dtype):
    """Integers go through float64: x - 2.5 truncates toward zero on both sides of lambd."""
    x = np.arange(0, 20, dtype=dtype) if dtype == "uint8" else np.arange(-10, 10, dtype=dtype)
    check_compiled("Shrink", [x], {"lambd": 2.5, "bias": 2.5 if dtype == "uint8" else 1.25}, targets=COMPILE_TARGETS)


@pytest.mark.parametrize("positive, negative", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_is_inf_modes(positive, negative):
    x = np.array([np.inf, -np.inf, np.nan, 0.0, 3.4e38, -3.4e38], np.float32)
    (y,) = check_compiled("IsInf", [x], {"detect_positive": positive, "detect_negative": negative})
    np.testing.assert_array_equal(y, [positive, negative, 0, 0, 0, 0])


# --------------------------------------------------------------------------- Clip


@COMPILED
@given(shape=SHAPES, seed=SEEDS, dtype=st.sampled_from(FLOATS + INTS), target=TARGETS,
       low=st.none() | st.integers(-20, 20), high=st.none() | st.integers(-20, 20))
def test_clip_compiled(shape, seed, dtype, target, low, high):
    if dtype == "uint8":
        low, high = (None if b is None else abs(b) for b in (low, high))
    rng = np.random.default_rng(seed)
    x = with_nonfinite(rng, dtype, shape, -30, 30) if dtype in FLOATS else random_array(rng, dtype, shape, -30, 30)
    offset = 0.3 if dtype in FLOATS else 0
    bounds = [None if b is None else Const(np.array(b + offset, dtype=dtype)) for b in (low, high)]
    while bounds and bounds[-1] is None:
        bounds.pop()
    check_compiled("Clip", [x, *bounds], targets=(target,), **tolerance(dtype))


@pytest.mark.parametrize("dtype", INTS)
def test_clip_integer_bounds_saturate(dtype):
    """Float bounds beyond an integer dtype's range, infinite or NaN bounds clip nothing on that side."""
    info = np.iinfo(dtype)
    x = np.array([info.min, info.min + 3, 0, 3, 7, info.max], dtype)
    for low, high in [(-1e30, 1e30), (-5.5, math.inf), (-math.inf, 5.0), (math.nan, 2.0), (3.0, 1.0), (1e25, None)]:
        attrs = {k: v for k, v in (("min", low), ("max", high)) if v is not None}
        compile_graph_and_compare("Clip", [x], attrs)


def test_clip_min_above_max_gives_max():
    x = np.linspace(-5, 5, 11, dtype=np.float32)
    (y,) = check_compiled("Clip", [x, Const(np.float32(3)), Const(np.float32(1))], targets=COMPILE_TARGETS)
    np.testing.assert_array_equal(y, np.ones_like(x))


def test_clip_float16_bound_rounds_to_the_dtype():
    x = np.array([0.1, 0.2, 0.3, 0.33, 0.34, 0.5], np.float16)
    compile_graph_and_compare("Clip", [x], {"min": 0.2001, "max": 0.3334})


# --------------------------------------------------------------------------- Cast


def cast_input(dtype: str, target: str, rng: np.random.Generator) -> np.ndarray:
    """Values every ``target`` represents: no NaN/inf/out-of-range floats into integers (undefined in numpy too)."""
    shape = (3, 17)
    if np.dtype(dtype).kind != "f":
        return random_array(rng, dtype, shape, -1000, 1000)  # integer -> integer wraps, which ONNX defines
    low = 0 if target == "uint8" else -120
    x = with_specials(rng, dtype, shape, low, 120)
    if np.dtype(target).kind in "fb":
        x[0, :5] = [np.nan, np.inf, -np.inf, -0.0, 1e-40 if dtype == "float64" else 0.0]
    if target == "float16" and dtype != "float16":
        x[1, :4] = [65504.0, 65519.0, 65520.0, -1e6]  # largest float16, the rounding edge, overflow
    return x


@pytest.mark.parametrize("target", ALL_DTYPES)
@pytest.mark.parametrize("source", ALL_DTYPES)
def test_cast_every_pair(source, target):
    x = cast_input(source, target, np.random.default_rng(len(source) * 31 + len(target)))
    check_compiled("Cast", [x], {"to": ONNX_TYPE[target]}, targets=COMPILE_TARGETS, rtol=0, atol=0)


@COMPILED
@given(shape=SHAPES, seed=SEEDS, source=st.sampled_from(ALL_DTYPES), target=st.sampled_from(ALL_DTYPES),
       compile_target=TARGETS)
def test_cast_shapes(shape, seed, source, target, compile_target):
    x = np.resize(cast_input(source, target, np.random.default_rng(seed)), shape)
    check_compiled("Cast", [x], {"to": ONNX_TYPE[target]}, targets=(compile_target,), rtol=0, atol=0)


def test_float64_to_float16_rounds_once():
    """Ties of the float16 grid, and values just off them, round as numpy's single rounding does
    (through float32 they would round twice); also subnormals, signed zeros and overflow."""
    rng = np.random.default_rng(7)
    grid = rng.integers(0, 0x7C00, 4000).astype(np.uint16).view(np.float16)
    a, ulp = grid.astype(np.float64), np.spacing(grid).astype(np.float64)
    x = np.concatenate([a + ulp / 2, a + ulp / 2 + ulp * 2.0**-20, a + ulp / 2 - ulp * 2.0**-20, a,
                        [0.0, 1e-300, 2.0**-25, 3 * 2.0**-25, 65519.99, 65520.0, 1e300, np.inf, np.nan]])
    x = np.concatenate([x, -x])
    (y,) = check_compiled("Cast", [x], {"to": ONNX_TYPE["float16"]}, targets=COMPILE_TARGETS, rtol=0, atol=0)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(y.view(np.uint16)[~np.isnan(x)], x.astype(np.float16).view(np.uint16)[~np.isnan(x)])


def test_float_to_int_truncates():
    x = np.array([-2.9, -2.5, -0.7, -0.0, 0.7, 2.5, 2.9, 127.9], np.float32)
    for target in ("int8", "int32", "int64"):
        (y,) = check_compiled("Cast", [x], {"to": ONNX_TYPE[target]}, targets=COMPILE_TARGETS)
        np.testing.assert_array_equal(y, [-2, -2, 0, 0, 0, 2, 2, 127])


# --------------------------------------------------------------------------- Identity, Dropout


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_identity_every_dtype(dtype):
    x = random_array(np.random.default_rng(0), dtype, (2, 0, 3), -5, 5)
    check_compiled("Identity", [x])
    x = random_array(np.random.default_rng(0), dtype, (4, 3), -5, 5)
    (y,) = check_compiled("Identity", [x], targets=COMPILE_TARGETS)
    assert not np.shares_memory(x, y)


@pytest.mark.parametrize("dtype", FLOATS)
def test_dropout_registry_op(dtype):
    """ember's own Dropout (the ONNX frontend turns Dropout into an alias, so build the node directly)."""
    x = with_nonfinite(np.random.default_rng(1), dtype, (3, 5), -5, 5)
    y = compile_graph_and_compare("Dropout", [x], {"seed": 3})
    np.testing.assert_array_equal(y, x)
