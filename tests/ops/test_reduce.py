"""Reductions, the softmax family, ArgMax/ArgMin, CumSum and TopK against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember.ir.errors import ShapeError
from ember.ir.ops import get_op
from ember.ir.types import TensorType
from tests.ops.harness import Const, check_node, ember_import_node, run_ort, run_ember

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

REDUCE_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
              "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]
SEEDS = st.integers(0, 2**32 - 1)
FLOATS = ["float32", "float64"]
INTS = ["int32", "int64"]


# ---------------------------------------------------------------- strategies


@st.composite
def shapes(draw, min_rank=0, max_rank=4, min_side=0, max_side=4):
    """A shape whose dims are mostly >= 1, with an occasional 0."""
    rank = draw(st.integers(min_rank, max_rank))
    side = st.one_of(st.integers(max(min_side, 1), max_side), st.just(min_side))
    return tuple(draw(side) for _ in range(rank))


def axis_in(draw, rank: int) -> int:
    """A valid axis of ``rank`` dims, negative half of the time."""
    axis = draw(st.integers(0, rank - 1))
    return axis - rank if draw(st.booleans()) else axis


def random_values(seed: int, shape, dtype: str, low: float = -3.0, high: float = 3.0) -> np.ndarray:
    """Seeded random data of ``dtype`` in [low, high] (integers for integer dtypes)."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return np.asarray(rng.uniform(low, high, shape)).astype(dtype)
    return np.asarray(rng.integers(int(low), int(high) + 1, shape)).astype(dtype)


def tied_values(seed: int, shape, dtype: str) -> np.ndarray:
    """Data with only a few distinct values (in [-2, 2]), so that ties are common."""
    return random_values(seed, shape, "int64", -2, 2).astype(dtype)


# ---------------------------------------------------------------- Reduce*


def _reduce_dtypes(op: str) -> list[str]:
    if op == "ReduceLogSumExp":
        return FLOATS  # onnxruntime's integer LogSumExp truncates per element (see test below)
    if op in ("ReduceMax", "ReduceMin"):
        return FLOATS + INTS + ["int8", "uint8"]
    return FLOATS + INTS


def _reduce_data(seed: int, op: str, shape, dtype: str) -> np.ndarray:
    if op == "ReduceLogSum":
        return random_values(seed, shape, dtype, 1, 4)  # a positive sum: log is defined
    if op == "ReduceProd":
        # Factors near 1 keep products in range (integer overflow is not specified).
        low, high = (-1, 1) if dtype in INTS else (0.5, 1.5)
        return random_values(seed, shape, dtype, low, high)
    if dtype == "uint8":
        return random_values(seed, shape, dtype, 0, 9)
    return random_values(seed, shape, dtype)


@pytest.mark.parametrize("op", REDUCE_OPS)
@SETTINGS
@given(data=st.data())
def test_reduce(op, data):
    draw = data.draw
    shape = draw(shapes())
    dtype = draw(st.sampled_from(_reduce_dtypes(op)))
    x = _reduce_data(draw(SEEDS), op, shape, dtype)
    attrs = {"keepdims": draw(st.integers(0, 1))}
    if draw(st.booleans()):
        attrs["noop_with_empty_axes"] = draw(st.integers(0, 1))
    # A 0-d input goes in as a constant (folded at import): runtime/feeds.py
    # currently turns 0-d feeds into shape (1,).
    inputs = [Const(x) if x.ndim == 0 else x]
    mode = draw(st.sampled_from(["absent", "empty", "some"] if shape else ["absent", "empty"]))
    if mode == "empty":
        inputs.append(Const(np.zeros(0, np.int64)))
    elif mode == "some":
        axes = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True))
        inputs.append(Const(np.array([a - len(shape) if draw(st.booleans()) else a for a in axes], np.int64)))
    check_node(op, inputs, attrs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op", REDUCE_OPS)
@settings(SETTINGS, max_examples=10)
@given(data=st.data())
def test_reduce_opset13_attribute_axes(op, data):
    """Before opset 18 (13 for ReduceSum) ``axes`` is an attribute; it means the same."""
    draw = data.draw
    shape = draw(shapes(min_rank=1))
    x = _reduce_data(draw(SEEDS), op, shape, "float32")
    attrs = {"keepdims": draw(st.integers(0, 1))}
    axes = draw(st.lists(st.integers(-len(shape), len(shape) - 1), max_size=len(shape),
                         unique_by=lambda a: a % len(shape)))
    if axes:
        attrs["axes"] = axes
    opset = 11 if op == "ReduceSum" else 13
    check_node(op, [x], attrs, opset=opset, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_reduce_max_min_bool(op):
    x = np.array([[True, False, False], [False, False, False]])
    for axes in ([0], [1], [0, 1]):
        check_node(op, [x, Const(np.array(axes, np.int64))], {"keepdims": 0})


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_float16(op):
    x = _reduce_data(7, op, (3, 5, 4), "float16")
    check_node(op, [x, Const(np.array([1, -1], np.int64))], rtol=5e-3, atol=5e-3)


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("dtype", ["float32", "int32", "int64"])
def test_reduce_empty_axis_gives_identity(op, dtype):
    """Reducing a 0-size axis gives the reduction's identity (0, 1, lowest, -inf or its integer min)."""
    x = np.zeros((2, 0, 3), dtype)
    check_node(op, [x, Const(np.array([1], np.int64))])
    check_node(op, [x], {"keepdims": 0})


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_noop_keeps_elementwise_part(op):
    """With noop_with_empty_axes=1 nothing is reduced, but |x|, x^2, log ... still apply (as in onnxruntime)."""
    x = np.array([[-1.0, 2.0], [3.0, 0.5]], np.float32)
    if op == "ReduceLogSum":
        x = np.abs(x)
    out = check_node(op, [x], {"noop_with_empty_axes": 1})
    assert out[0].shape == x.shape


def test_reduce_duplicate_axes_reduce_once():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = check_node("ReduceSum", [x, Const(np.array([1, -1], np.int64))])
    np.testing.assert_array_equal(out[0], [[3.0], [12.0]])


def test_reduce_integer_log_sum_exp_follows_onnx_reference():
    """onnxruntime truncates each exp term of an integer ReduceLogSumExp (giving 4 here); ember
    computes log(sum(exp(x))) in float64 and truncates once, as ONNX's reference does."""
    x = np.array([[4, 4, 4, 3]], np.int64)
    out = run_ember("ReduceLogSumExp", [x, Const(np.array([1], np.int64))])[0]
    np.testing.assert_array_equal(out, [[5]])  # trunc(log(3 e^4 + e^3)) = trunc(5.21)


def test_reduce_integer_mean_truncates_toward_zero():
    x = np.array([[-1, -2], [-7, 0], [7, 0]], np.int32)
    out = check_node("ReduceMean", [x, Const(np.array([1], np.int64))])
    np.testing.assert_array_equal(out[0].ravel(), [-1, -3, 3])


@pytest.mark.parametrize("op,inputs,attrs,opset", [
    ("ReduceSum", [np.zeros((2, 3), np.float32), Const(np.array([2], np.int64))], {}, 21),
    ("ReduceMean", [np.zeros((2, 3), np.float32), Const(np.array([-3], np.int64))], {}, 21),
    ("ReduceMax", [np.zeros((2, 3), np.float32)], {"axes": [5]}, 13),
])
def test_reduce_axis_out_of_range(op, inputs, attrs, opset):
    with pytest.raises(ShapeError, match="out of range"):
        ember_import_node(op, inputs, attrs, opset=opset)


def test_reduce_rejects_bad_dtype_and_flags():
    reduce_sum = get_op("ReduceSum")
    with pytest.raises(ShapeError, match="dtype"):
        reduce_sum.infer_types([TensorType("int8", (2, 3))], reduce_sum.normalize_attrs({}))
    with pytest.raises(ShapeError, match="dtype"):
        reduce_sum.infer_types([TensorType("bool", (2, 3))], reduce_sum.normalize_attrs({}))
    with pytest.raises(ShapeError, match="keepdims"):
        reduce_sum.infer_types([TensorType("float32", (2, 3))], reduce_sum.normalize_attrs({"keepdims": 2}))


# ---------------------------------------------------------------- ArgMax / ArgMin


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@SETTINGS
@given(data=st.data())
def test_arg_extreme(op, data):
    draw = data.draw
    shape = list(draw(shapes(min_rank=1)))
    axis = axis_in(draw, len(shape))
    shape[axis] = max(shape[axis], 1)  # an empty axis has no extreme
    dtype = draw(st.sampled_from(FLOATS + INTS + ["float16", "int8", "uint8"]))
    x = tied_values(draw(SEEDS), shape, "int64") + (2 if dtype == "uint8" else 0)
    x = x.astype(dtype)
    attrs = {"axis": axis, "keepdims": draw(st.integers(0, 1)), "select_last_index": draw(st.integers(0, 1))}
    check_node(op, [x], attrs)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_extreme_default_axis_is_zero(op):
    x = np.array([[1.0, 5.0], [5.0, 1.0], [5.0, 0.0]], np.float32)
    check_node(op, [x])


def test_arg_extreme_errors():
    with pytest.raises(ShapeError, match="empty axis"):
        ember_import_node("ArgMax", [np.zeros((0, 3), np.float32)])
    with pytest.raises(ShapeError, match="out of range"):
        ember_import_node("ArgMin", [np.zeros((2, 3), np.float32)], {"axis": 2})


# ---------------------------------------------------------------- Softmax family


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@SETTINGS
@given(data=st.data())
def test_softmax_family(op, data):
    draw = data.draw
    shape = draw(shapes(min_rank=1))
    # onnxruntime has no float64 Hardmax.
    dtype = draw(st.sampled_from(["float32"] if op == "Hardmax" else FLOATS))
    x = tied_values(draw(SEEDS), shape, dtype) if op == "Hardmax" else random_values(draw(SEEDS), shape, dtype, -20, 20)
    attrs = {} if draw(st.booleans()) else {"axis": axis_in(draw, len(shape))}
    check_node(op, [x], attrs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_family_float16_and_large_values(op):
    x = np.array([[1000.0, 999.0, -1000.0], [3.0, 3.0, 1.0]], np.float32)  # stable: no overflow
    check_node(op, [x])
    check_node(op, [x.astype(np.float16) / 100], {"axis": 0}, rtol=2e-3, atol=2e-3)


def test_softmax_errors():
    with pytest.raises(ShapeError, match="out of range"):
        ember_import_node("Softmax", [np.zeros((2, 3), np.float32)], {"axis": -3})
    with pytest.raises(ShapeError, match="dtype"):
        ember_import_node("Softmax", [np.zeros((2, 3), np.int32)])


# ---------------------------------------------------------------- CumSum


def cumsum_case(draw) -> tuple:
    """CumSum operands and attributes: any dtype, a constant axis of either index dtype,
    every exclusive/reverse combination."""
    shape = draw(shapes(min_rank=1))
    dtype = draw(st.sampled_from(FLOATS + INTS))
    x = random_values(draw(SEEDS), shape, dtype)
    axis = Const(np.array(axis_in(draw, len(shape)), draw(st.sampled_from([np.int32, np.int64]))))
    attrs = {"exclusive": draw(st.integers(0, 1)), "reverse": draw(st.integers(0, 1))}
    return x, axis, attrs


@SETTINGS
@given(data=st.data())
def test_cumsum(data):
    x, axis, attrs = cumsum_case(data.draw)
    check_node("CumSum", [x, axis], attrs, rtol=1e-5, atol=1e-5)


def test_cumsum_errors():
    with pytest.raises(ShapeError, match="out of range"):
        ember_import_node("CumSum", [np.zeros((2, 3), np.float32), Const(np.array(2))])


# ---------------------------------------------------------------- TopK


@SETTINGS
@given(data=st.data())
def test_topk_sorted(data):
    draw = data.draw
    shape = list(draw(shapes(min_rank=1, max_rank=3, max_side=6)))
    axis = axis_in(draw, len(shape))
    k = draw(st.integers(0, shape[axis]))
    dtype = draw(st.sampled_from(FLOATS + INTS + ["int8"]))
    x = tied_values(draw(SEEDS), shape, dtype)  # ties: the lower index comes first
    attrs = {"largest": draw(st.integers(0, 1))}
    if draw(st.booleans()):
        attrs["axis"] = axis
    else:
        axis = -1
        k = min(k, shape[-1])
    check_node("TopK", [x, Const(np.array([k], np.int64))], attrs, num_outputs=2)


@pytest.mark.parametrize("largest", [0, 1])
def test_topk_unsorted_selects_the_same_elements(largest):
    """With sorted=0 the order is unspecified: compare the selections ordered by index."""
    x = np.random.default_rng(0).permutation(24).astype(np.float32).reshape(4, 6)
    inputs, attrs = [x, Const(np.array([3], np.int64))], {"sorted": 0, "largest": largest, "axis": 1}
    expected = run_ort("TopK", inputs, attrs, num_outputs=2)
    actual = run_ember("TopK", inputs, attrs, num_outputs=2)
    for values, indices in (expected, actual):
        np.testing.assert_array_equal(values, np.take_along_axis(x, indices, 1))
    np.testing.assert_array_equal(np.sort(actual[1], axis=1), np.sort(expected[1], axis=1))


def test_topk_errors():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ShapeError, match="k=4"):
        ember_import_node("TopK", [x, Const(np.array([4], np.int64))], num_outputs=2)
    with pytest.raises(ShapeError, match="out of range"):
        ember_import_node("TopK", [x, Const(np.array([1], np.int64))], {"axis": 2}, num_outputs=2)
