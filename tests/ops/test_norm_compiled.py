"""The normalization ops compiled to native code, against ember's reference.

Statistics are sums in the stash dtype, like the reference's, but sequential
where numpy's are pairwise: floats compare with rtol/atol 1e-4.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ops.harness import COMPILE_TARGETS, Const, check_compiled
from tests.ops.test_norm import EPSILONS, image_shapes, layer_norm_case, random_values

SETTINGS = settings(max_examples=10, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TARGETS = st.sampled_from(COMPILE_TARGETS)
FLOATS = st.sampled_from(["float32", "float32", "float64", "float16"])


def _tolerance(dtype: str) -> dict:
    return {"rtol": 1e-2, "atol": 1e-2} if dtype == "float16" else {"rtol": 1e-4, "atol": 1e-4}


@SETTINGS
@given(shape=image_shapes(2, min_batch=0), seed=st.integers(0, 2**31), epsilon=EPSILONS,
       dtypes=st.sampled_from([("float32", "float32"), ("float64", "float64"), ("float16", "float16"),
                               ("float16", "float32")]), const_params=st.booleans(), target=TARGETS)
def test_batch_norm(shape, seed, epsilon, dtypes, const_params, target):
    x_dtype, param_dtype = dtypes
    wrap = Const if const_params else (lambda a: a)
    channels = (shape[1],)
    inputs = [random_values(seed, shape, x_dtype),
              wrap(random_values(seed + 1, channels, param_dtype)),
              wrap(random_values(seed + 2, channels, param_dtype)),
              wrap(random_values(seed + 3, channels, param_dtype)),
              wrap(random_values(seed + 4, channels, param_dtype, 0.1, 2.0))]
    check_compiled("BatchNormalization", inputs, {"epsilon": epsilon}, targets=[target], **_tolerance(x_dtype))


@SETTINGS
@given(shape=image_shapes(3, min_batch=0), seed=st.integers(0, 2**31), epsilon=EPSILONS, dtype=FLOATS,
       target=TARGETS)
def test_instance_norm(shape, seed, epsilon, dtype, target):
    inputs = [random_values(seed, shape, dtype), random_values(seed + 1, shape[1:2], dtype),
              Const(random_values(seed + 2, shape[1:2], dtype))]
    check_compiled("InstanceNormalization", inputs, {"epsilon": epsilon}, targets=[target], **_tolerance(dtype))


@SETTINGS
@given(case=layer_norm_case(), seed=st.integers(0, 2**31), epsilon=EPSILONS, dtype=FLOATS,
       stash_type=st.sampled_from([None, 1, 11]), target=TARGETS)
def test_layer_norm(case, seed, epsilon, dtype, stash_type, target):
    shape, axis, scale_shape, bias_shape = case
    inputs = [random_values(seed, shape, dtype), random_values(seed + 1, scale_shape, dtype)]
    if bias_shape is not None:
        inputs.append(Const(random_values(seed + 2, bias_shape, dtype)))
    attrs = {"axis": axis, "epsilon": epsilon}
    if stash_type is not None:
        attrs["stash_type"] = stash_type
    check_compiled("LayerNormalization", inputs, attrs, targets=[target], **_tolerance(dtype))


@SETTINGS
@given(shape=image_shapes(2, min_batch=0), groups=st.integers(1, 3), seed=st.integers(0, 2**31),
       epsilon=EPSILONS, dtype=FLOATS, stash_type=st.sampled_from([1, 11]), target=TARGETS)
def test_group_norm(shape, groups, seed, epsilon, dtype, stash_type, target):
    shape = (shape[0], groups * shape[1], *shape[2:])
    channels = shape[1:2]
    inputs = [random_values(seed, shape, dtype), Const(random_values(seed + 1, channels, dtype)),
              random_values(seed + 2, channels, dtype)]
    attrs = {"num_groups": groups, "epsilon": epsilon, "stash_type": stash_type}
    check_compiled("GroupNormalization", inputs, attrs, targets=[target], **_tolerance(dtype))


@SETTINGS
@given(shape=image_shapes(3, 5), seed=st.integers(0, 2**31), size=st.integers(1, 5),
       alpha=st.sampled_from([1e-4, 0.01, 0.5]), beta=st.sampled_from([0.75, 0.5, 1.3]),
       bias=st.sampled_from([1.0, 2.0, 0.5]), dtype=FLOATS, target=TARGETS)
def test_lrn(shape, seed, size, alpha, beta, bias, dtype, target):
    attrs = {"size": size, "alpha": alpha, "beta": beta, "bias": bias}
    check_compiled("LRN", [random_values(seed, shape, dtype)], attrs, targets=[target], **_tolerance(dtype))


@pytest.mark.parametrize("axes", [None, [1], [2, 3], [0, 1, 2, 3], [-1], [0, -2]])
def test_mean_variance_normalization(axes):
    attrs = {} if axes is None else {"axes": axes}
    check_compiled("MeanVarianceNormalization", [random_values(3, (2, 3, 4, 5))], attrs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_mean_variance_normalization_dtypes(dtype):
    check_compiled("MeanVarianceNormalization", [random_values(4, (2, 3, 4, 2), dtype)], {},
                   targets=COMPILE_TARGETS, **_tolerance(dtype))


def test_empty_reduction():
    """Statistics over an empty axis are NaN (0 / 0), as numpy's mean gives; other outputs stay finite."""
    x = random_values(5, (2, 0, 3))
    check_compiled("MeanVarianceNormalization", [x], {"axes": [0, 1]})
    check_compiled("LayerNormalization", [random_values(6, (0, 3)), random_values(7, (3,))], {})


def test_large_batch_norm_both_targets():
    """A ResNet-sized BatchNorm with constant parameters (as models have them)."""
    x = random_values(8, (1, 64, 28, 28))
    params = [Const(random_values(9 + i, (64,), low=0.1 if i == 3 else -3.0)) for i in range(4)]
    check_compiled("BatchNormalization", [x, *params], {}, targets=COMPILE_TARGETS, rtol=1e-5, atol=1e-5)
