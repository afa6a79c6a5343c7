"""Generated code computes what the loop IR says, on every target this CPU can run."""

import numpy as np
import pytest

from ember.codegen.run import compile_kernel
from ember.codegen.target import Target
from ember.ir import CompileError, InputError
from ember.ir.loops import (Check, Load, call, cast, compute, create_schedule, extern, for_range, lower, maximum,
                            minimum, placeholder, seq)
from ember.ir.loops.stmt import Store

TARGETS = ["host", "x86-64"]


def unary_kernel(dtype, out_dtype, fn, n=8):
    x = placeholder((n,), dtype, "x")
    y = compute((n,), lambda i: fn(x[i]), "y")
    assert y.dtype == out_dtype
    return lower(create_schedule(y), [x], "f")


def binary_kernel(dtype, fn, n=8):
    a = placeholder((n,), dtype, "a")
    b = placeholder((n,), dtype, "b")
    y = compute((n,), lambda i: fn(a[i], b[i]), "y")
    return lower(create_schedule(y), [a, b], "f")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", ["int8", "int32", "int64"])
def test_integer_division_truncates_and_never_traps(target, dtype):
    a = np.array([7, -7, 7, -7, 5, np.iinfo(dtype).min, 3, 0], dtype)
    b = np.array([2, 2, -2, -2, 0, -1, 0, 0], dtype)
    (q,) = compile_kernel(binary_kernel(dtype, lambda x, y: x / y), target)(a, b)
    expected = np.array([3, -3, -3, 3, 0, np.iinfo(dtype).min, 0, 0], dtype)
    np.testing.assert_array_equal(q, expected)


@pytest.mark.parametrize("target", TARGETS)
def test_floor_division_and_modulo(target):
    a = np.array([7, -7, 7, -7, 0, 1, -1, 9], np.int64)
    b = np.array([2, 2, -2, -2, 3, 3, 3, 3], np.int64)
    (q,) = compile_kernel(binary_kernel("int64", lambda x, y: x // y), target)(a, b)
    (r,) = compile_kernel(binary_kernel("int64", lambda x, y: x % y), target)(a, b)
    np.testing.assert_array_equal(q, a // b)
    np.testing.assert_array_equal(r, a % b)


@pytest.mark.parametrize("target", TARGETS)
def test_float_min_max_propagate_nan_like_numpy(target):
    a = np.array([1, np.nan, 3, -np.inf, 0, -0.0, 5, np.nan], np.float32)
    b = np.array([2, 1, np.nan, 0, -0.0, 0, 5, np.nan], np.float32)
    (mx,) = compile_kernel(binary_kernel("float32", maximum), target)(a, b)
    (mn,) = compile_kernel(binary_kernel("float32", minimum), target)(a, b)
    np.testing.assert_array_equal(mx, np.maximum(a, b))
    np.testing.assert_array_equal(mn, np.minimum(a, b))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("src, dst", [("float32", "int32"), ("int32", "float32"), ("uint8", "int32"),
                                      ("int32", "uint8"), ("int64", "int8"), ("float32", "bool"),
                                      ("bool", "float32"), ("float64", "float16"), ("float16", "float64"),
                                      ("int8", "int64"), ("uint8", "float32")])
def test_casts_match_numpy(target, src, dst):
    rng = np.random.default_rng(0)
    values = rng.uniform(-100, 100, 8)
    if src == "uint8":
        values = np.abs(values)
    if src == "float32" and dst == "bool":
        values[:3] = [0.0, np.nan, -0.0]
    x = values.astype(src)
    (y,) = compile_kernel(unary_kernel(src, dst, lambda v: cast(dst, v)), target)(x)
    np.testing.assert_array_equal(y, x.astype(dst))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("fn", ["exp", "log", "sqrt", "tanh", "erf", "sin", "floor", "round", "atanh", "expm1"])
def test_math_functions(target, fn):
    import math

    x = np.linspace(0.05, 0.95, 8).astype(np.float32)
    (y,) = compile_kernel(unary_kernel("float32", "float32", lambda v: call(fn, v)), target)(x)
    reference = {"round": np.round, "erf": np.vectorize(math.erf)}.get(fn) or getattr(np, {"atanh": "arctanh"}.get(fn, fn))
    np.testing.assert_allclose(y, reference(x.astype(np.float64)).astype(np.float32), rtol=2e-6, atol=1e-7)


def test_float16_and_bool_buffers():
    x = np.array([0.5, 1.5, -2.25, 65504, 0, -0.0, 3.1, 7], np.float16)
    (y,) = compile_kernel(unary_kernel("float16", "float16", lambda v: v * 2.0))(x)
    np.testing.assert_array_equal(y, (x.astype(np.float32) * 2).astype(np.float16))
    (b,) = compile_kernel(unary_kernel("float16", "bool", lambda v: v > 1.0))(x)
    np.testing.assert_array_equal(b, x > 1)


def test_failed_check_reports_its_message():
    x = placeholder((4,), "int64", "x")

    def body(ins, outs):
        return for_range(4, lambda i: seq(Check(Load(ins[0], i, "int64") < 10, "index out of range"),
                                          Store(outs[0], i, Load(ins[0], i, "int64"))))

    (y,) = extern([((4,), "int64")], [x], body, "y")
    fn = compile_kernel(lower(create_schedule(y), [x], "checked"))
    np.testing.assert_array_equal(fn(np.arange(4))[0], np.arange(4))
    with pytest.raises(InputError, match="index out of range"):
        fn(np.array([1, 2, 30, 4]))


def test_vector_width_of_targets():
    assert Target.named("x86-64").vector_bits == 128
    assert Target.named("x86-64-v3").vector_bits == 256
    assert Target.named("x86-64-v4").vector_bits == 512
    assert Target.host().vector_bits in (128, 256, 512)
    with pytest.raises(CompileError, match="unknown target"):
        Target.named("pdp11")


def test_targets_the_host_cannot_run_are_refused():
    lacking = Target.named("x86-64-v4").runs_on_host()
    kernel = unary_kernel("float32", "float32", lambda v: v + 1.0)
    if lacking:
        with pytest.raises(CompileError, match="lacks"):
            compile_kernel(kernel, "x86-64-v4")
    else:
        (y,) = compile_kernel(kernel, "x86-64-v4")(np.zeros(8, np.float32))
        np.testing.assert_array_equal(y, np.ones(8))


def test_sse2_target_emits_no_avx():
    kernel = unary_kernel("float32", "float32", lambda v: v * 3.0 + 1.0, n=1024)
    asm = compile_kernel(kernel, "x86-64").assembly()
    assert "ymm" not in asm and "vmul" not in asm
    assert "mulps" in asm  # LLVM vectorized it with SSE
