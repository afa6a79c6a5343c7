"""MaxPool, AveragePool, LpPool and the global pools compiled to native code, against ember's reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ops.harness import COMPILE_TARGETS, check_compiled
from tests.ops.test_pool import WINDOWED, pool_case, random_values

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TARGETS = st.sampled_from(COMPILE_TARGETS)


def _tolerance(dtype: str) -> dict:
    # float16 results round once from float32 (float64 for AveragePool) sums; a 1-ulp difference is 1e-3.
    return {"rtol": 2e-3, "atol": 2e-3} if dtype == "float16" else {"rtol": 1e-5, "atol": 1e-5}


@pytest.mark.parametrize("op", WINDOWED)
@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**31), target=TARGETS)
def test_windowed_pool(op, data, seed, target):
    shape, dtype, attrs = data.draw(pool_case(op))
    check_compiled(op, [random_values(seed, shape, dtype)], attrs, targets=[target], **_tolerance(dtype))


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"])
@settings(SETTINGS, max_examples=8)
@given(seed=st.integers(0, 2**31), rank=st.integers(3, 5), data=st.data(), target=TARGETS)
def test_global_pool(op, seed, rank, data, target):
    shape = tuple(data.draw(st.integers(0 if axis == 0 else 1, 4)) for axis in range(rank))
    dtype = data.draw(st.sampled_from(["float32", "float16", "float64"]))
    attrs = {"p": data.draw(st.integers(1, 3))} if op == "GlobalLpPool" else {}
    # sums run in another order than numpy's pairwise ones
    tolerance = _tolerance(dtype) if dtype == "float16" else {"rtol": 1e-5, "atol": 1e-5}
    check_compiled(op, [random_values(seed, shape, dtype)], attrs, targets=[target], **tolerance)


@pytest.mark.parametrize("op", WINDOWED)
def test_empty_batch(op):
    check_compiled(op, [random_values(0, (0, 2, 5, 5), "float32")], {"kernel_shape": [2, 2], "pads": [1, 0, 0, 1]})


def test_ceil_mode_and_count_include_pad():
    """The divisor counts the explicit pads but not the positions a ceil_mode window reaches past them."""
    x = np.arange(1, 7, dtype=np.float32).reshape(1, 1, 6)
    attrs = {"kernel_shape": [3], "strides": [2], "pads": [1, 1], "ceil_mode": 1, "count_include_pad": 1}
    out = check_compiled("AveragePool", [x], attrs, targets=COMPILE_TARGETS)
    np.testing.assert_allclose(out[0].ravel(), [1, 3, 5, 3])


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_max_pool_integers(dtype):
    """Padding is the dtype's lowest value: it never wins, even against the lowest input."""
    x = random_values(3, (2, 3, 7, 6), dtype)
    x[0, 0] = np.iinfo(dtype).min
    check_compiled("MaxPool", [x], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]},
                   targets=COMPILE_TARGETS)


def test_max_pool_nan_propagates():
    x = random_values(4, (1, 2, 6, 6), "float32")
    x[0, 0, 2, 3] = np.nan
    out = check_compiled("MaxPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2]}, targets=COMPILE_TARGETS)
    assert np.isnan(out[0][0, 0, 1, 1]) and np.isnan(out[0]).sum() == 1


@pytest.mark.parametrize("op", WINDOWED)
@pytest.mark.parametrize("shape, attrs", [
    ((1, 4, 23, 23), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),  # ResNet's max pool
    ((1, 2, 80, 80), {"kernel_shape": [2, 2]}),  # more wide positions than one block
    ((1, 2, 9, 8), {"kernel_shape": [1, 1], "strides": [3, 2]}),  # strided 1x1: one phase of two stored
    ((2, 3, 5, 6, 7), {"kernel_shape": [2, 3, 2], "strides": [2, 1, 3], "dilations": [1, 2, 1],
                       "pads": [1, 0, 1, 0, 1, 1], "ceil_mode": 1}),
])
def test_fixed_geometries(op, shape, attrs):
    check_compiled(op, [random_values(5, shape, "float32")], attrs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["AveragePool", "LpPool", "MaxPool"])
def test_float64(op):
    x = random_values(6, (1, 3, 8, 7), "float64")
    check_compiled(op, [x], {"kernel_shape": [3, 2], "pads": [1, 1, 1, 0], "strides": [2, 1]}, rtol=1e-12, atol=1e-12)
