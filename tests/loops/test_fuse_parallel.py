"""Consecutive parallel nests fuse into one parallel loop only when each iteration keeps to its own
slice of every buffer written (ir/loops/fuse_parallel.py); fused or not, results are unchanged."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import ember
from ember.codegen.parallel import set_threads
from ember.codegen.run import compile_kernel
from ember.ir.loops import For, compute, create_schedule, lower, placeholder, reduce_axis, reduce_sum

from tests.helpers import statements

ROWS, COLS = 6, 40


def _parallel_loops(kernel) -> int:
    return sum(1 for s in statements(kernel.body, For) if s.kind == "parallel")


def _two_stages(second_index, rows_second=ROWS):
    """y = x + 1 and z[i, j] = y[second_index(i, j)] * 2, each over its rows in parallel."""
    x = placeholder((ROWS, COLS), "float32", "x")
    y = compute((ROWS, COLS), lambda i, j: x[i, j] + 1.0, "y")
    z = compute((rows_second, COLS), lambda i, j: y[second_index(i, j)] * 2.0, "z")
    s = create_schedule(z)
    for t in (y, z):
        s[t].parallel(s[t].leaf[0])
    return lower(s, [x], "two"), x


def _run(kernel, x, threads=2):
    f = compile_kernel(kernel)
    set_threads(f.jit, threads)
    return f(x)


pytestmark = pytest.mark.usefixtures("parallel_however_small")  # (tests/conftest.py)


def test_row_by_row_stages_fuse_and_compute_the_same():
    kernel, _ = _two_stages(lambda i, j: (i, j))
    assert _parallel_loops(kernel) == 1
    x = np.random.default_rng(0).standard_normal((ROWS, COLS)).astype(np.float32)
    (z,) = _run(kernel, x)
    np.testing.assert_array_equal(z, (x + 1) * 2)


@pytest.mark.parametrize("index", [
    lambda i, j: (ROWS - 1 - i, j),        # another iteration's row
    lambda i, j: ((i + 1) % ROWS, j),      # the next row (wrapping)
    lambda i, j: (0, j),                   # one row for all
], ids=["reversed", "next", "broadcast"])
def test_stages_reading_other_rows_stay_apart(index):
    kernel, _ = _two_stages(index)
    assert _parallel_loops(kernel) == 2
    x = np.random.default_rng(1).standard_normal((ROWS, COLS)).astype(np.float32)
    (z,) = _run(kernel, x)
    rows = np.array([index(i, 0)[0] for i in range(ROWS)])
    np.testing.assert_array_equal(z, (x[rows] + 1) * 2)


def test_loops_of_other_extents_stay_apart():
    kernel, _ = _two_stages(lambda i, j: (i, j), rows_second=ROWS - 1)
    assert _parallel_loops(kernel) == 2


def test_a_reduction_then_its_normalization_fuse():
    x = placeholder((ROWS, COLS), "float32", "x")
    r = reduce_axis(COLS, "r")
    total = compute((ROWS,), lambda i: reduce_sum(x[i, r], r), "total")
    y = compute((ROWS, COLS), lambda i, j: x[i, j] / total[i], "y")
    s = create_schedule(y)
    for t in (total, y):
        s[t].parallel(s[t].leaf[0])
    kernel = lower(s, [x], "normalize")
    assert _parallel_loops(kernel) == 1
    a = np.random.default_rng(2).random((ROWS, COLS)).astype(np.float32)
    (out,) = _run(kernel, a)
    np.testing.assert_allclose(out, a / a.sum(axis=1, keepdims=True), rtol=1e-6)


def test_softmax_is_one_parallel_loop_and_matches_the_reference():
    graph = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], "softmax",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 12, 16, 33])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 12, 16, 33])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    module = ember.compile(model, num_threads=2)
    (kernel,) = [k for _, k in module._builder.kernels.values()]
    assert _parallel_loops(kernel) == 1
    x = np.random.default_rng(3).standard_normal((2, 12, 16, 33)).astype(np.float32) * 10
    np.testing.assert_allclose(module.run({"x": x})[0], ember.reference(model).run({"x": x})[0], rtol=1e-5, atol=1e-7)


def test_layer_norm_passes_and_their_per_row_steps_are_one_parallel_loop():
    graph = helper.make_graph([helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)], "norm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 10, 48]),
                               helper.make_tensor_value_info("g", TensorProto.FLOAT, [48]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, [48])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 10, 48])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    module = ember.compile(model, num_threads=2)
    (kernel,) = [k for _, k in module._builder.kernels.values()]
    assert _parallel_loops(kernel) == 1
    rng = np.random.default_rng(4)
    feeds = {"x": rng.standard_normal((3, 10, 48)).astype(np.float32) * 3 + 1,
             "g": rng.standard_normal(48).astype(np.float32), "b": rng.standard_normal(48).astype(np.float32)}
    np.testing.assert_allclose(module.run(feeds)[0], ember.reference(model).run(feeds)[0], rtol=1e-5, atol=1e-5)
