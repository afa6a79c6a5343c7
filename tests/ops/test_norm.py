"""BatchNormalization, InstanceNormalization, LayerNormalization, GroupNormalization,
MeanVarianceNormalization and LRN against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember.ir.errors import ShapeError, UnsupportedOpError
from tests.ops.harness import Const, check_node, ember_import_node, run_ember

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
EPSILONS = st.sampled_from([1e-5, 1e-3, 0.1])


def random_values(seed: int, shape, dtype: str = "float32", low: float = -3.0, high: float = 3.0) -> np.ndarray:
    """Seeded uniform data in [low, high]."""
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


def _tolerance(dtype: str) -> dict:
    return {"rtol": 1e-2, "atol": 1e-2} if dtype == "float16" else {"rtol": 1e-4, "atol": 1e-4}


@st.composite
def image_shapes(draw, min_rank: int, max_rank: int = 5, min_batch: int = 1):
    """(N, C, spatial...) with N in [min_batch, 2], C in [1, 4] and spatial sides in [1, 4]."""
    rank = draw(st.integers(min_rank, max_rank))
    return (draw(st.integers(min_batch, 2)), draw(st.integers(1, 4)),
            *(draw(st.integers(1, 4)) for _ in range(rank - 2)))


@SETTINGS
@given(shape=image_shapes(2, min_batch=0), seed=st.integers(0, 2**31), epsilon=EPSILONS,
       dtypes=st.sampled_from([("float32", "float32"), ("float64", "float64"), ("float16", "float16"),
                               ("float16", "float32")]),
       explicit_mode=st.booleans())
def test_batch_norm(shape, seed, epsilon, dtypes, explicit_mode):
    x_dtype, param_dtype = dtypes
    channels = (shape[1],)
    inputs = [random_values(seed, shape, x_dtype),
              Const(random_values(seed + 1, channels, param_dtype)),
              Const(random_values(seed + 2, channels, param_dtype)),
              Const(random_values(seed + 3, channels, param_dtype)),
              Const(random_values(seed + 4, channels, param_dtype, 0.1, 2.0))]
    attrs = {"epsilon": epsilon, "momentum": 0.8}
    if explicit_mode:
        attrs["training_mode"] = 0
    check_node("BatchNormalization", inputs, attrs, **_tolerance(x_dtype))


@SETTINGS
@given(shape=image_shapes(3), seed=st.integers(0, 2**31), epsilon=EPSILONS,
       dtype=st.sampled_from(["float32", "float16"]))
def test_instance_norm(shape, seed, epsilon, dtype):
    inputs = [random_values(seed, shape, dtype), random_values(seed + 1, shape[1:2], dtype),
              random_values(seed + 2, shape[1:2], dtype)]
    check_node("InstanceNormalization", inputs, {"epsilon": epsilon}, **_tolerance(dtype))


@st.composite
def layer_norm_case(draw):
    """X's shape, the axis (negative half of the time), and Scale/B shapes broadcasting to X.shape[axis:]."""
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    axis = draw(st.integers(0, rank - 1))
    normalized = shape[axis:]
    keep = draw(st.integers(1, len(normalized)))  # Scale may drop leading dims and have 1s
    scale_shape = tuple(d if draw(st.integers(0, 3)) else 1 for d in normalized[-keep:])
    bias_shape = draw(st.sampled_from([None, normalized, scale_shape]))
    return shape, axis - rank if draw(st.booleans()) else axis, scale_shape, bias_shape


@SETTINGS
@given(case=layer_norm_case(), seed=st.integers(0, 2**31), epsilon=EPSILONS,
       dtype=st.sampled_from(["float32", "float32", "float64", "float16"]), stash_type=st.sampled_from([None, 1]))
def test_layer_norm(case, seed, epsilon, dtype, stash_type):
    shape, axis, scale_shape, bias_shape = case
    inputs = [random_values(seed, shape, dtype), random_values(seed + 1, scale_shape, dtype)]
    if bias_shape is not None:
        inputs.append(random_values(seed + 2, bias_shape, dtype))
    attrs = {"axis": axis, "epsilon": epsilon}
    if stash_type is not None:
        attrs["stash_type"] = stash_type
    check_node("LayerNormalization", inputs, attrs, **_tolerance(dtype))


def test_layer_norm_double_stash_type():
    inputs = [random_values(0, (2, 3, 5)), random_values(1, (5,)), random_values(2, (5,))]
    check_node("LayerNormalization", inputs, {"stash_type": 11}, **_tolerance("float32"))


@SETTINGS
@given(shape=image_shapes(2), groups=st.integers(1, 3), seed=st.integers(0, 2**31), epsilon=EPSILONS,
       dtype=st.sampled_from(["float32", "float32", "float64", "float16"]))
def test_group_norm(shape, groups, seed, epsilon, dtype):
    shape = (shape[0], groups * shape[1], *shape[2:])
    channels = shape[1:2]
    inputs = [random_values(seed, shape, dtype), random_values(seed + 1, channels, dtype),
              random_values(seed + 2, channels, dtype)]
    check_node("GroupNormalization", inputs, {"num_groups": groups, "epsilon": epsilon}, opset=21,
               **_tolerance(dtype))


@SETTINGS
@given(shape=image_shapes(4, 4), seed=st.integers(0, 2**31), size=st.sampled_from([1, 3, 5]),
       alpha=st.sampled_from([1e-4, 0.01, 0.5]), beta=st.sampled_from([0.75, 0.5, 1.3]),
       bias=st.sampled_from([1.0, 2.0, 0.5]), dtype=st.sampled_from(["float32", "float16"]))
def test_lrn(shape, seed, size, alpha, beta, bias, dtype):
    """onnxruntime implements LRN for 4-D inputs and odd sizes only."""
    attrs = {"size": size, "alpha": alpha, "beta": beta, "bias": bias}
    check_node("LRN", [random_values(seed, shape, dtype)], attrs, **_tolerance(dtype))


@pytest.mark.parametrize("size", [2, 4])
def test_lrn_even_size_and_5d(size):
    """The spec's window for even sizes: floor((size - 1) / 2) channels before, ceil(...) after."""
    x = random_values(1, (2, 6, 3, 2, 2))
    alpha, beta, bias = 0.3, 0.75, 1.5
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    squares = np.square(x.astype(np.float64))
    sums = np.stack([squares[:, max(0, c - before):c + after + 1].sum(axis=1) for c in range(x.shape[1])], axis=1)
    expected = x / (bias + alpha / size * sums) ** beta
    actual = run_ember("LRN", [x], {"size": size, "alpha": alpha, "beta": beta, "bias": bias})
    np.testing.assert_allclose(actual[0], expected, rtol=1e-5)


@pytest.mark.parametrize("axes", [None, [1], [2, 3], [0, 1, 2, 3], [-1], [0, 2]])
def test_mean_variance_normalization(axes):
    attrs = {} if axes is None else {"axes": axes}
    check_node("MeanVarianceNormalization", [random_values(3, (2, 3, 4, 5))], attrs, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- errors


def _bn_inputs(channels: int = 3, x_shape=(1, 3, 4)):
    params = [Const(random_values(i, (channels,), low=0.1)) for i in range(4)]
    return [random_values(9, x_shape)] + params


def test_batch_norm_errors():
    with pytest.raises(UnsupportedOpError, match="training_mode=1 is not supported"):
        ember_import_node("BatchNormalization", _bn_inputs(), {"training_mode": 1})
    with pytest.raises(ShapeError, match=r"scale has shape \(4,\), expected \(3,\)"):
        ember_import_node("BatchNormalization", _bn_inputs(4), {})
    with pytest.raises(ShapeError, match="rank >= 2"):
        ember_import_node("BatchNormalization", _bn_inputs(3, (3,)), {})


def test_normalization_errors():
    x, c3 = random_values(0, (2, 6, 4)), random_values(1, (6,))
    with pytest.raises(ShapeError, match="num_groups 4 must be positive and divide the 6 channels"):
        ember_import_node("GroupNormalization", [x, c3, c3], {"num_groups": 4})
    with pytest.raises(ShapeError, match=r"scale has shape \(2,\), expected \(6,\)"):
        ember_import_node("GroupNormalization", [x, random_values(1, (2,)), random_values(1, (2,))], {"num_groups": 2})
    with pytest.raises(UnsupportedOpError, match="stash_type 10"):
        ember_import_node("GroupNormalization", [x, c3, c3], {"num_groups": 2, "stash_type": 10})
    with pytest.raises(ShapeError, match="axis 3 out of range"):
        ember_import_node("LayerNormalization", [x, random_values(1, (4,))], {"axis": 3})
    with pytest.raises(ShapeError, match="does not broadcast to the normalized shape"):
        ember_import_node("LayerNormalization", [x, random_values(1, (6,))], {"axis": -1})
    with pytest.raises(ShapeError, match="rank >= 3"):
        ember_import_node("InstanceNormalization", [random_values(0, (2, 6)), c3, c3], {})
    with pytest.raises(ShapeError, match="expected one of"):
        ember_import_node("LRN", [x.astype(np.int32)], {"size": 3})

