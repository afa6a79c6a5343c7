"""Loops marked ``vectorized`` compile to explicit vector code with the scalar loop's exact results."""

import re

import numpy as np
import pytest
from ember.codegen.llvm import emit_kernel
from ember.codegen.run import compile_kernel
from ember.codegen.target import as_target
from ember.ir.loops import (
    call,
    cast,
    compute,
    create_schedule,
    lower,
    maximum,
    minimum,
    placeholder,
    reduce_axis,
    reduce_sum,
)
from ember.ir.ops.compute import padded_read
from llvmlite import ir

TARGETS = ["host", "x86-64"]
# below one SSE register, one AVX2 register, ragged, tails of narrower chunks, a multiple of every width
EXTENTS = [3, 8, 19, 30, 64]
MIN_FLOAT32_LANES = 4  # a loop this long fills an SSE register, which every x86-64 target has


def both(build, vectorize):
    """The kernel built by ``build() -> (output, inputs)``, with and without ``vectorize(stage)``."""
    kernels = []
    for annotate in (False, True):
        y, inputs = build()
        s = create_schedule(y)
        if annotate:
            vectorize(s[y])
        kernels.append(lower(s, inputs, "f"))
    assert "vectorized" in str(kernels[1])
    return kernels


def inner(stage):
    stage.vectorize(stage.leaf[-1])


def explicit(kernel, target):
    """Whether codegen emitted the kernel's vectorized loop as explicit vector code (not the scalar loop)."""
    module = ir.Module(name="m")
    emit_kernel(module, kernel, target=as_target(target))
    return re.search(r"<\d+ x ", str(module)) is not None  # a vector type (a loop of chunks or straight-line)


def check_same(build, vectorize, inputs, target, vectorized=True):
    scalar, vector = both(build, vectorize)
    assert explicit(vector, target) == vectorized
    expected = compile_kernel(scalar, target)(*inputs)
    got = compile_kernel(vector, target)(*inputs)
    for e, g in zip(expected, got):
        assert e.dtype == g.dtype
        np.testing.assert_array_equal(g, e)
        assert e.tobytes() == g.tobytes()  # bit-identical, NaN payloads and signed zeros included


def data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -1000), min(info.max, 1000), shape, endpoint=True).astype(dtype)
    x = rng.normal(0, 3, shape).astype(dtype)
    x.flat[::7] = 0.0
    return x


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("n", EXTENTS)
def test_float32_elementwise(target, n):
    def build():
        a, b = placeholder((n,), "float32", "a"), placeholder((n,), "float32", "b")
        return compute((n,), lambda i: maximum(a[i] * b[i] + a[i], minimum(b[i], 0.5)) / (b[i] * b[i] + 1.0),
                       "y"), [a, b]

    a, b = data(n, "float32", 1), data(n, "float32", 2)
    a[0] = np.nan
    check_same(build, inner, [a, b], target, vectorized=n >= MIN_FLOAT32_LANES)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", ["int32", "uint8", "float64"])
def test_other_dtypes(target, dtype):
    n = 37

    def build():
        a, b = placeholder((n,), dtype, "a"), placeholder((n,), dtype, "b")
        return compute((n,), lambda i: maximum(a[i] * b[i] - a[i], b[i]) + a[i] / b[i] + a[i] // b[i]
                       + a[i] % b[i], "y"), [a, b]

    a, b = data(n, dtype, 3), data(n, dtype, 4)
    check_same(build, inner, [a, b], target)


@pytest.mark.parametrize("target", TARGETS)
def test_bool_and_casts(target):
    n = 29

    def build():
        a, b = placeholder((n,), "float32", "a"), placeholder((n,), "bool", "b")
        return compute((n,), lambda i: (a[i] > 0.0).eq(b[i]), "y"), [a, b]

    check_same(build, inner, [data(n, "float32"), data(n, "bool")], target)

    def build_cast():
        a, b = placeholder((n,), "int32", "a"), placeholder((n,), "bool", "b")
        return compute((n,), lambda i: cast("float64", a[i]) * cast("float64", b[i]) + cast("float64", a[i] > 3),
                       "y"), [a, b]

    check_same(build_cast, inner, [data(n, "int32"), data(n, "bool")], target)


@pytest.mark.parametrize("target", TARGETS)
def test_math_calls_vector_intrinsics_and_libm(target):
    n = 21

    def build():
        a = placeholder((n,), "float32", "a")
        return compute((n,), lambda i: call("erf", a[i]) + call("sqrt", call("fabs", a[i])) + call("floor", a[i]),
                       "y"), [a]

    check_same(build, inner, [data(n, "float32")], target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("m", [5, 8, 20])
def test_broadcast_reads_are_invariant(target, m):
    def build():
        a, b = placeholder((3, m), "float32", "a"), placeholder((3,), "float32", "b")
        return compute((3, m), lambda i, j: a[i, j] * b[i] + b[i], "y"), [a, b]

    check_same(build, inner, [data((3, m), "float32"), data(3, "float32", 5)], target,
               vectorized=m >= MIN_FLOAT32_LANES)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("m", [6, 17])
def test_strided_reads_gather(target, m):
    def build():  # a transpose: the vectorized j reads a with stride m, and i * 2 % m reads anywhere
        a = placeholder((m, m), "float32", "a")
        return compute((m, m), lambda i, j: a[j, i] - a[(j * 2 + 1) % m, i], "y"), [a]

    check_same(build, inner, [data((m, m), "float32")], target, vectorized=m >= MIN_FLOAT32_LANES)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("m", [6, 17])
def test_strided_stores_scatter(target, m):
    def build():  # loops j, i with i vectorized: y and b move by 2m per lane, a by 1
        a, b = placeholder((m, 2 * m), "float32", "a"), placeholder((2 * m, m), "float32", "b")
        return compute((m, 2 * m), lambda i, j: a[i, j] * 2.0 + b[j, i], "y"), [a, b]

    def vectorize(stage):
        i, j = stage.leaf
        stage.reorder(j, i)
        stage.vectorize(i)

    check_same(build, vectorize, [data((m, 2 * m), "float32"), data((2 * m, m), "float32", 3)], target,
               vectorized=m >= MIN_FLOAT32_LANES)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("n", [7, 24])
def test_reduction_with_vectorized_data_loop(target, n):
    def build():
        a, b = placeholder((4, 5), "float32", "a"), placeholder((5, n), "float32", "b")
        k = reduce_axis(5, "k")
        return compute((4, n), lambda i, j: reduce_sum(a[i, k] * b[k, j], k), "c"), [a, b]

    def vectorize(stage):
        i, j, k = stage.leaf
        stage.reorder(i, k, j)
        stage.vectorize(j)

    check_same(build, vectorize, [data((4, 5), "float32"), data((5, n), "float32", 6)], target,
               vectorized=n >= MIN_FLOAT32_LANES)


@pytest.mark.parametrize("target", TARGETS)
def test_guarded_padding_reads_fall_back_and_stay_in_bounds(target):
    n = 20

    def build():
        x = placeholder((n,), "float32", "x")
        return compute((n + 6,), lambda i: padded_read(x, (i - 3,), 0.0) * 2.0, "y"), [x]

    x = data(n, "float32")
    check_same(build, inner, [x], target, vectorized=False)
    _, vector = both(build, inner)
    (y,) = compile_kernel(vector, target)(x)
    np.testing.assert_array_equal(y, np.pad(x, 3) * 2)


def vector_assembly(target):
    n = 64

    def build():
        a, b = placeholder((n,), "float32", "a"), placeholder((n,), "float32", "b")
        return compute((n,), lambda i: maximum(a[i] + b[i], a[i] * b[i]), "y"), [a, b]

    _, vector = both(build, inner)
    return compile_kernel(vector, target).assembly()


def host_vector_register():
    """The name of the host's widest vector registers (``ymm`` or ``zmm``); skips without AVX."""
    from ember.codegen.target import Target

    bits = Target.host().vector_bits
    if bits < 256:
        pytest.skip("the host has no AVX")
    return {256: "ymm", 512: "zmm"}[bits]


def test_host_assembly_has_vector_arithmetic_in_its_widest_registers():
    register = host_vector_register()
    asm = vector_assembly("host")
    for op in ("vaddps", "vmulps", "vmaxps"):
        assert re.search(rf"\b{op}\s+.*%{register}", asm), op


def float_vector_widths(target, extent):
    """The lane counts of the float vectors in the code emitted for a vectorized loop of ``extent``."""
    def build():
        a, b = placeholder((extent,), "float32", "a"), placeholder((extent,), "float32", "b")
        return compute((extent,), lambda i: a[i] * b[i] + a[i], "y"), [a, b]

    _, vector = both(build, inner)
    module = ir.Module(name="m")
    emit_kernel(module, vector, target=as_target(target))
    return {int(n) for n in re.findall(r"<(\d+) x float>", str(module))}


@pytest.mark.parametrize("target,extent,register", [
    ("x86-64-v4", 64, "zmm"), ("x86-64-v4", 8, "ymm"), ("x86-64-v4", 4, "xmm"), ("x86-64-v3", 5, "xmm")])
def test_short_loops_take_the_widest_register_they_fill(target, extent, register):
    assert float_vector_widths(target, extent) == {{"zmm": 16, "ymm": 8, "xmm": 4}[register]}


@pytest.mark.parametrize("target,extent,widths", [
    ("x86-64-v4", 30, {16, 8, 4}),     # 16 + 8 + 4 lanes, the last 2 scalar
    ("x86-64-v4", 200, {16, 8}),       # a loop of 12 chunks of 16, then one of 8
    ("x86-64-v3", 30, {8, 4}),         # 24 + 4 + 2
    ("x86-64-v3", 19, {8}),            # 16 + 3: no SSE register fits the 3
])
def test_tails_take_narrower_chunks_while_one_fits(target, extent, widths):
    assert float_vector_widths(target, extent) == widths


@pytest.mark.parametrize("extent,loops", [(3, 1), (19, 1), (16, 0)])
def test_iterations_too_few_for_a_vector_are_unrolled_scalar_code(extent, loops):
    # 3: the whole loop; 19 on SSE: the 3 after four chunks of 4; 16: four chunks, no scalar rest
    def build():
        a = placeholder((extent,), "float32", "a")
        return compute((extent,), lambda i: a[i] * 2.0, "y"), [a]

    _, vector = both(build, inner)
    module = ir.Module(name="m")
    emit_kernel(module, vector, target=as_target("x86-64"))
    text = str(module)
    assert text.count('"llvm.loop.unroll.full"') == loops and "llvm.loop.unroll.disable" not in text


@pytest.mark.parametrize("target", ["x86-64", "x86-64-v3", "x86-64-v4"])
@pytest.mark.parametrize("dtype_bytes", [1, 2, 4, 8])
@pytest.mark.parametrize("extent", [1, 2, 3, 5, 8, 16, 31, 100])
def test_lanes_fitting_is_the_widest_filled_register_of_at_least_128_bits(target, dtype_bytes, extent):
    t = as_target(target)
    lanes = t.lanes_fitting(dtype_bytes, extent)
    widths = [bits for bits in (128, 256, 512) if bits <= t.vector_bits and bits // (8 * dtype_bytes) <= extent]
    if not widths:
        assert lanes is None
    else:
        assert lanes == max(widths) // (8 * dtype_bytes)


def test_sse_assembly_has_packed_xmm_arithmetic_and_no_ymm():
    asm = vector_assembly("x86-64")
    for op in ("addps", "mulps", "maxps"):
        assert re.search(rf"\b{op}\s+.*%xmm", asm), op
    assert "ymm" not in asm


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", ["int8", "int64"])
def test_vectorized_inside_parallel_with_reversed_and_scattered_reads(target, dtype):
    n = 70

    def build():
        x = placeholder((n,), dtype, "x")
        return compute((n,), lambda i: maximum(x[i], x[n - 1 - i]) * x[(i * 5) % n] - cast(dtype, i), "y"), [x]

    def vectorize(stage):
        outer, inner_ = stage.split(stage.leaf[0], 35)
        stage.parallel(outer)
        stage.vectorize(inner_)

    check_same(build, vectorize, [data(n, dtype)], target)


def fma_assembly(target):
    n = 64

    def build():
        a, b, c = (placeholder((n,), "float32", name) for name in "abc")
        return compute((n,), lambda i: a[i] * b[i] + c[i], "y"), [a, b, c]

    _, vector = both(build, inner)
    return compile_kernel(vector, target).assembly()


def test_host_assembly_fuses_multiply_add_into_vector_fma():
    from ember.codegen.target import Target

    register = host_vector_register()
    if not Target.host().has_fma:
        pytest.skip("the host has no FMA")
    assert re.search(rf"\bvfmadd\w*ps\s+.*%{register}", fma_assembly("host"))


def test_sse_assembly_multiplies_and_adds_without_fma():
    asm = fma_assembly("x86-64")
    assert re.search(r"\bmulps\s+.*%xmm", asm) and re.search(r"\baddps\s+.*%xmm", asm)
    assert "vfmadd" not in asm and "ymm" not in asm
