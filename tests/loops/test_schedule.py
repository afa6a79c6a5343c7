"""Schedule primitives keep results unchanged; lowering gives the documented loop nests."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ember.codegen.run import compile_kernel
from ember.ir.loops import (ScheduleError, call, compute, create_schedule, lower, maximum, placeholder, reduce_axis,
                            reduce_max, reduce_sum, select)
from ember.ir.loops.stmt import For, Store


def matmul(m, k, n):
    a = placeholder((m, k), "float32", "A")
    b = placeholder((k, n), "float32", "B")
    r = reduce_axis(k, "k")
    c = compute((m, n), lambda i, j: reduce_sum(a[i, r] * b[r, j], r), "C")
    return a, b, c


def run(schedule, inputs, arrays, target="host"):
    return compile_kernel(lower(schedule, inputs, "k"), target)(*arrays)


@settings(max_examples=12, deadline=None, derandomize=True, database=None)
@given(m=st.integers(1, 9), k=st.integers(1, 9), n=st.integers(1, 9),
       fi=st.integers(1, 10), fj=st.integers(1, 10), fk=st.integers(1, 10),
       order=st.permutations(range(6)), fuse_outer=st.booleans())
def test_any_split_reorder_fuse_gives_the_same_matmul(m, k, n, fi, fj, fk, order, fuse_outer):
    a, b, c = matmul(m, k, n)
    s = create_schedule(c)
    st_ = s[c]
    i, j, r = st_.leaf
    io, ii = st_.split(i, fi)
    jo, ji = st_.split(j, fj)
    ro, ri = st_.split(r, fk)
    axes = [io, ii, jo, ji, ro, ri]
    st_.reorder(*[axes[p] for p in order])
    if fuse_outer and st_.leaf[0].kind == st_.leaf[1].kind:
        st_.fuse(st_.leaf[0], st_.leaf[1])
    st_.unroll(st_.leaf[-1])
    rng = np.random.default_rng(0)
    A = rng.standard_normal((m, k)).astype(np.float32)
    B = rng.standard_normal((k, n)).astype(np.float32)
    (C,) = run(s, [a, b], [A, B])
    np.testing.assert_allclose(C, A @ B, rtol=1e-5, atol=1e-5)


def test_split_guard_only_when_not_dividing():
    x = placeholder((10,), "float32", "x")
    y = compute((10,), lambda i: x[i] + 1.0, "y")
    s = create_schedule(y)
    s[y].split(s[y].leaf[0], 5)
    assert " if " not in str(lower(s, [x]))
    s = create_schedule(y)
    s[y].split(s[y].leaf[0], 4)
    text = str(lower(s, [x]))
    assert "if ((((y_i0.o * 4) + y_i0.i) < 10))" in text


def test_reduction_innermost_uses_a_scalar_accumulator():
    a, b, c = matmul(4, 5, 6)
    text = str(lower(create_schedule(c), [a, b]))
    assert "allocate C.acc" in text
    s = create_schedule(c)
    i, j, r = s[c].leaf
    s[c].reorder(i, r, j)
    text = str(lower(s, [a, b]))
    assert "allocate" not in text and "C_i0.init" in text


def test_inline_substitutes_the_producer():
    x = placeholder((8,), "float32", "x")
    t = compute((8,), lambda i: x[i] * 2.0, "t")
    y = compute((8,), lambda i: t[i] + 1.0, "y")
    s = create_schedule(y)
    s[t].compute_inline()
    kernel = lower(s, [x])
    assert not kernel.workspaces
    assert "((x[y_i0] * 2.0f) + 1.0f)" in str(kernel)
    (out,) = compile_kernel(kernel)(np.arange(8, dtype=np.float32))
    np.testing.assert_array_equal(out, np.arange(8) * 2 + 1)


def test_materialized_stage_becomes_a_workspace():
    x = placeholder((3, 4), "float32", "x")
    k = reduce_axis(4, "k")
    mx = compute((3,), lambda i: reduce_max(x[i, k], k), "mx")
    y = compute((3, 4), lambda i, j: call("exp", x[i, j] - mx[i]), "y")
    kernel = lower(create_schedule(y), [x])
    assert [b.name for b in kernel.workspaces] == ["mx"]
    X = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    (Y,) = compile_kernel(kernel)(X)
    np.testing.assert_allclose(Y, np.exp(X - X.max(1, keepdims=True)), rtol=1e-6)


def test_fuse_extents_and_errors():
    x = placeholder((4, 3), "float32", "x")
    y = compute((4, 3), lambda i, j: x[i, j], "y")
    s = create_schedule(y)
    i, j = s[y].leaf
    f = s[y].fuse(i, j)
    assert f.extent == 12
    with pytest.raises(ScheduleError):
        s[y].split(i, 2)  # no longer a loop
    a, b, c = matmul(2, 2, 2)
    s = create_schedule(c)
    i, j, r = s[c].leaf
    with pytest.raises(ScheduleError, match="reduction"):
        s[c].vectorize(r)
    with pytest.raises(ScheduleError, match="adjacent"):
        s[c].fuse(i, r)


def test_annotations_reach_the_loops():
    x = placeholder((16,), "float32", "x")
    y = compute((16,), lambda i: maximum(x[i], 0.0), "y")
    s = create_schedule(y)
    o, inner = s[y].split(s[y].leaf[0], 8)
    s[y].parallel(o)
    s[y].vectorize(inner)
    body = lower(s, [x]).body
    assert isinstance(body, For) and body.kind == "parallel"
    assert isinstance(body.body, For) and body.body.kind == "vectorized"
    assert isinstance(body.body.body, Store)


def test_padded_reads_never_touch_memory_out_of_bounds():
    from ember.ir.ops.compute import padded_read

    x = placeholder((5,), "float32", "x")
    y = compute((9,), lambda i: padded_read(x, [i - 2], 0.0), "y")
    (out,) = compile_kernel(lower(create_schedule(y), [x]))(np.arange(1, 6, dtype=np.float32))
    np.testing.assert_array_equal(out, [0, 0, 1, 2, 3, 4, 5, 0, 0])


def test_select_with_integer_conditions():
    x = placeholder((6,), "int32", "x")
    y = compute((6,), lambda i: select(x[i] > 2, x[i] * 10, x[i] - 1), "y")
    (out,) = compile_kernel(lower(create_schedule(y), [x]))(np.arange(6, dtype=np.int32))
    np.testing.assert_array_equal(out, [-1, 0, 1, 30, 40, 50])


def test_reduction_over_no_axes_is_the_element():
    x = placeholder((3,), "float32", "x")
    y = compute((3,), lambda i: reduce_sum(x[i] * 2.0, ()), "y")
    (out,) = compile_kernel(lower(create_schedule(y), [x]))(np.array([1, 2, 3], np.float32))
    np.testing.assert_array_equal(out, [2, 4, 6])


def test_compute_at_packs_a_tile_of_the_producer():
    a, b, c = matmul(12, 8, 20)
    s = create_schedule(c)
    i, j, r = s[c].leaf
    jo, ji = s[c].split(j, 8)
    s[c].reorder(jo, i, r, ji)
    packed = s.cache_read(b, [c])
    s[packed].compute_at(s[c], jo)
    kernel = lower(s, [a, b])
    text = str(kernel)
    assert not kernel.workspaces
    assert "allocate B.cache.tile: f32[8,8]" in text  # k x 8 columns, repacked once per column block
    rng = np.random.default_rng(3)
    A = rng.standard_normal((12, 8)).astype(np.float32)
    B = rng.standard_normal((8, 20)).astype(np.float32)
    (C,) = compile_kernel(kernel)(A, B)
    np.testing.assert_allclose(C, A @ B, rtol=1e-5, atol=1e-5)


@settings(max_examples=10, deadline=None, derandomize=True, database=None)
@given(n=st.integers(2, 30), factor=st.integers(1, 8), shift=st.integers(0, 2))
def test_compute_at_with_stencil_reads_and_ragged_splits(n, factor, shift):
    x = placeholder((n + 2,), "float32", "x")
    t = compute((n + 2,), lambda i: x[i] * 2.0, "t")
    y = compute((n,), lambda i: t[i] + t[i + shift], "y")
    s = create_schedule(y)
    o, _ = s[y].split(s[y].leaf[0], factor)
    s[t].compute_at(s[y], o)
    kernel = lower(s, [x])
    X = np.arange(n + 2, dtype=np.float32)
    (Y,) = compile_kernel(kernel)(X)
    np.testing.assert_array_equal(Y, 2 * X[:n] + 2 * X[shift:shift + n])


def test_compute_at_of_a_reduction_and_errors():
    x = placeholder((6, 5), "float32", "x")
    k = reduce_axis(5, "k")
    total = compute((6,), lambda i: reduce_sum(x[i, k], k), "total")
    y = compute((6, 5), lambda i, j: x[i, j] / total[i], "y")
    s = create_schedule(y)
    s[total].compute_at(s[y], s[y].leaf[0])
    X = np.random.default_rng(0).uniform(1, 2, (6, 5)).astype(np.float32)
    (Y,) = compile_kernel(lower(s, [x]))(X)
    np.testing.assert_allclose(Y, X / X.sum(1, keepdims=True), rtol=1e-6)
    s = create_schedule(y)
    s[total].split(s[total].leaf[0], 2)
    with pytest.raises(ScheduleError, match="split"):
        s[total].compute_at(s[y], s[y].leaf[0])


def test_packed_tile_with_vectorized_loops():
    """A cache_read tile attached inside a parallel loop, read and written by vectorized loops."""
    a, b, c = matmul(24, 40, 48)
    s = create_schedule(c)
    st_ = s[c]
    i, j, r = st_.leaf
    io, ii = st_.split(i, 6)
    jo, ji = st_.split(j, 16)
    packed = s.cache_read(b, [c])
    st_.reorder(jo, io, r, ii, ji)
    s[packed].compute_at(st_, jo)
    st_.unroll(ii)
    st_.vectorize(ji)
    st_.parallel(jo)
    s[packed].vectorize(s[packed].leaf[-1])
    rng = np.random.default_rng(5)
    A = rng.standard_normal((24, 40)).astype(np.float32)
    B = rng.standard_normal((40, 48)).astype(np.float32)
    for target in ("host", "x86-64"):
        (C,) = run(s, [a, b], [A, B], target)
        np.testing.assert_allclose(C, A @ B, rtol=1e-5, atol=1e-5)


def test_a_ragged_register_tile_accumulates_without_a_guard():
    """A non-dividing split of a tile's data loop: the accumulation reads the edge again for the
    positions past it (clamped indices, every load in bounds) instead of testing each one; only
    the final stores are guarded, and the product is unchanged."""
    from ember.ir.loops import If

    from tests.helpers import statements

    m, k, n = 7, 5, 4
    a, b, c = matmul(m, k, n)
    s = create_schedule(c)
    st_ = s[c]
    i, j, r = st_.leaf
    io, ii = st_.split(i, 3)
    st_.reorder(io, j, r, ii)
    st_.unroll(ii)
    st_.accumulate_locally()
    kernel = lower(s, [a, b], "k")
    (reduction,) = [f for f in statements(kernel.body, For) if f.var.name == "k"]
    assert not statements(reduction.body, If)
    assert statements(kernel.body, If)  # the stores of the last tile
    rng = np.random.default_rng(3)
    A = rng.standard_normal((m, k)).astype(np.float32)
    B = rng.standard_normal((k, n)).astype(np.float32)
    (C,) = compile_kernel(kernel, "host")(A, B)
    np.testing.assert_allclose(C, A @ B, rtol=1e-5, atol=1e-5)
