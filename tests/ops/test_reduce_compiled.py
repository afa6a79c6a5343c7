"""Reductions, ArgMax/ArgMin, the softmax family, CumSum and TopK compiled to native code.

Each case compiles a one-node graph and compares it with ember's reference
(itself checked against onnxruntime in test_reduce.py): exactly for integers,
allclose for floats. Dtypes go beyond what onnxruntime runs (float16, integer
log reductions), since the reference defines them.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ops.harness import COMPILE_TARGETS, Const, check_compiled
from tests.ops.test_reduce import (
    REDUCE_OPS,
    _reduce_data,
    SEEDS,
    axis_in,
    cumsum_case,
    random_values,
    shapes,
    tied_values,
)

SETTINGS = settings(max_examples=10, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TARGETS = st.sampled_from(COMPILE_TARGETS)
FLOATS = ["float32", "float64", "float16"]
INTS = ["int32", "int64"]


def tolerance(dtype: str) -> dict:
    return {"rtol": 5e-3, "atol": 5e-3} if dtype == "float16" else {"rtol": 1e-4, "atol": 1e-5}


def with_specials(seed: int, x: np.ndarray, share: float = 0.15) -> np.ndarray:
    """``x`` (float) with some entries replaced by NaN, inf or -inf."""
    rng = np.random.default_rng(seed)
    x = x.copy()
    mask = rng.random(x.shape) < share
    x[mask] = rng.choice(np.array([np.nan, np.inf, -np.inf], x.dtype), size=int(mask.sum()))
    return x


# ---------------------------------------------------------------- Reduce*


def _dtypes(op: str) -> list[str]:
    if op in ("ReduceMax", "ReduceMin"):
        return FLOATS + INTS + ["int8", "uint8", "bool"]
    return FLOATS + INTS


def _data(seed: int, op: str, shape, dtype: str) -> np.ndarray:
    """The reference tests' data, plus booleans (which only the compiled tests draw)."""
    if dtype == "bool":
        return random_values(seed, shape, "int64", 0, 1).astype(bool)
    return _reduce_data(seed, op, shape, dtype)


@pytest.mark.parametrize("op", REDUCE_OPS)
@SETTINGS
@given(data=st.data())
def test_reduce(op, data):
    draw = data.draw
    shape = draw(shapes(min_rank=1))  # 0-d inputs are constants, folded at import
    dtype = draw(st.sampled_from(_dtypes(op)))
    x = _data(draw(SEEDS), op, shape, dtype)
    attrs = {"keepdims": draw(st.integers(0, 1)), "noop_with_empty_axes": draw(st.integers(0, 1))}
    inputs = [x]
    mode = draw(st.sampled_from(["absent", "empty", "some"]))
    if mode == "empty":
        inputs.append(Const(np.zeros(0, np.int64)))
    elif mode == "some":  # negative and repeated axes included
        axes = draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=len(shape) + 1))
        inputs.append(Const(np.array(axes, np.int64)))
    check_compiled(op, inputs, attrs, targets=[draw(TARGETS)], **tolerance(dtype))


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_empty_axis_gives_identity(op):
    for dtype in ["float32", "float16", "int32", "int64"]:
        x = np.zeros((2, 0, 3), dtype)
        check_compiled(op, [x, Const(np.array([1], np.int64))])
        check_compiled(op, [x], {"keepdims": 0})


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_nan_and_infinities(op):
    x = np.array([[np.nan, 1.0, 2.0], [np.inf, 1.0, -1.0], [-np.inf, -np.inf, -np.inf], [np.inf, -np.inf, 0.5],
                  [-np.inf, 3.0, 0.0], [0.0, 0.0, 0.0]], np.float32)
    for axes in ([1], [0]):
        check_compiled(op, [x, Const(np.array(axes, np.int64))], targets=COMPILE_TARGETS, rtol=1e-5)


def test_reduce_integer_results_truncate_and_saturate():
    check_compiled("ReduceMean", [np.array([[-1, -2], [-7, 0], [7, 0]], np.int32)])
    big = np.full((1, 4), 2**62, np.int64)
    out = check_compiled("ReduceL2", [big])  # sqrt(4 * 2^124) = 2^63: past the int64 range
    assert out[0].item() == np.iinfo(np.int64).max
    out = check_compiled("ReduceLogSum", [np.array([[1, -1], [2, 3]], np.int32), Const(np.array([1]))])
    assert out[0][0, 0] == np.iinfo(np.int32).min  # log(0) = -inf
    check_compiled("ReduceLogSumExp", [np.array([[4, 4, 4, 3], [-50, 2, 0, 9]], np.int64), Const(np.array([1]))])


def test_reduce_large_axes_in_every_position():
    """Reductions over leading, middle and trailing axes of a bigger tensor (the loop order changes)."""
    x = random_values(0, (3, 17, 5, 33), "float32")
    for axes in ([1], [3], [0, 2]):
        for op in ("ReduceSum", "ReduceMax", "ReduceLogSumExp"):
            check_compiled(op, [x, Const(np.array(axes, np.int64))], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- ArgMax / ArgMin


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@settings(SETTINGS, max_examples=15)
@given(data=st.data())
def test_arg_extreme(op, data):
    draw = data.draw
    shape = list(draw(shapes(min_rank=1)))
    axis = axis_in(draw, len(shape))
    shape[axis] = max(shape[axis], 1)  # an empty axis has no extreme
    dtype = draw(st.sampled_from(FLOATS + INTS + ["int8", "uint8"]))
    seed = draw(SEEDS)
    x = (tied_values(seed, shape, "int64") + (2 if dtype == "uint8" else 0)).astype(dtype)
    if dtype in FLOATS and draw(st.booleans()):
        x = with_specials(seed, x)  # NaN is the extreme: the first (last) NaN wins
    attrs = {"axis": axis, "keepdims": draw(st.integers(0, 1)), "select_last_index": draw(st.integers(0, 1))}
    check_compiled(op, [x], attrs, targets=[draw(TARGETS)])


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_extreme_nan_and_signed_zeros(op):
    """NaN is the extreme (np.argmax/np.argmin); -0.0 and 0.0 are equal, so the first one wins."""
    x = np.array([[1.0, np.nan, 3.0, np.nan], [np.inf, -np.inf, np.inf, 0.0], [-0.0, 0.0, -0.0, 0.0],
                  [0.0, -0.0, 0.0, -0.0]], np.float32)
    for axis in (0, 1):
        for last in (0, 1):
            check_compiled(op, [x], {"axis": axis, "select_last_index": last}, targets=COMPILE_TARGETS)
            check_compiled(op, [x.astype(np.float16)], {"axis": axis, "select_last_index": last})


# ---------------------------------------------------------------- Softmax family


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@settings(SETTINGS, max_examples=12)
@given(data=st.data())
def test_softmax_family(op, data):
    draw = data.draw
    shape = draw(shapes(min_rank=1))
    dtype = draw(st.sampled_from(FLOATS))
    seed = draw(SEEDS)
    if op == "Hardmax":
        x = tied_values(seed, shape, dtype)  # ties: the first maximum wins
    else:
        x = random_values(seed, shape, "float64", -20, 20).astype(dtype)
    attrs = {} if draw(st.booleans()) else {"axis": axis_in(draw, len(shape))}
    check_compiled(op, [x], attrs, targets=[draw(TARGETS)], **tolerance(dtype))


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_family_large_and_special_values(op):
    x = np.array([[1000.0, 999.0, -1000.0], [3.0, 3.0, 1.0], [-np.inf, 0.0, 1.0], [np.nan, 1.0, 2.0],
                  [np.inf, 1.0, 2.0]], np.float32)
    for axis in (0, 1):
        check_compiled(op, [x], {"axis": axis}, targets=COMPILE_TARGETS)
    check_compiled(op, [random_values(1, (2, 1000), "float32", -5, 5)], rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- CumSum


@settings(SETTINGS, max_examples=15)
@given(data=st.data())
def test_cumsum(data):
    x, axis, attrs = cumsum_case(data.draw)
    check_compiled("CumSum", [x, axis], attrs, targets=[data.draw(TARGETS)], **tolerance(x.dtype.name))


def test_cumsum_integer_wraps_like_the_reference():
    x = np.array([2**31 - 1, 1, 5], np.int32)
    check_compiled("CumSum", [x, Const(np.array(0))], targets=COMPILE_TARGETS)


# ---------------------------------------------------------------- TopK


@settings(SETTINGS, max_examples=15)
@given(data=st.data())
def test_topk(data):
    draw = data.draw
    shape = list(draw(shapes(min_rank=1, max_rank=3, max_side=7)))
    axis = axis_in(draw, len(shape))
    k = draw(st.integers(0, shape[axis]))
    dtype = draw(st.sampled_from(FLOATS + INTS + ["int8", "uint8"]))
    seed = draw(SEEDS)
    x = (tied_values(seed, shape, "int64") + (2 if dtype == "uint8" else 0)).astype(dtype)
    if dtype in FLOATS and draw(st.booleans()):
        x = with_specials(seed, x)  # NaN sorts as the largest value
    attrs = {"axis": axis, "largest": draw(st.integers(0, 1)), "sorted": draw(st.integers(0, 1))}
    check_compiled("TopK", [x, Const(np.array([k], np.int64))], attrs, num_outputs=2, targets=[draw(TARGETS)])


@pytest.mark.parametrize("largest", [0, 1])
def test_topk_nan_sorts_as_largest(largest):
    x = np.array([[np.nan, 1.0, np.inf, np.nan, -np.inf, 1.0], [0.0, -0.0, 0.0, np.nan, -0.0, 2.0]], np.float32)
    for k in (1, 3, 6):
        check_compiled("TopK", [x, Const(np.array([k], np.int64))], {"largest": largest}, num_outputs=2,
                       targets=COMPILE_TARGETS)


def test_topk_long_axis():
    x = random_values(3, (3, 500), "float32")
    x[:, ::7] = 0.5  # ties
    for k, largest in ((1, 1), (10, 0), (500, 1)):
        check_compiled("TopK", [x, Const(np.array([k], np.int64))], {"largest": largest}, num_outputs=2)
