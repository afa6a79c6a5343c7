"""MaxPool, AveragePool, LpPool and the global pools against onnxruntime: 1-D/2-D/3-D,
strides, asymmetric pads, dilations, auto_pad modes, ceil_mode, count_include_pad."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember.ir.errors import ShapeError
from tests.ops.harness import check_node, ember_import_node, run_ember, run_ort

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
WINDOWED = ["MaxPool", "AveragePool", "LpPool"]
DTYPES = {"MaxPool": ["float32", "float32", "float16", "float64", "int8", "uint8"],
          "AveragePool": ["float32", "float32", "float16"],
          "LpPool": ["float32"]}


def random_values(seed: int, shape, dtype: str) -> np.ndarray:
    """Seeded data: uniform in [-3, 3] for floats, the full range for 8-bit integers."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.uniform(-3, 3, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def _same_is_nonnegative(size: int, kernel: int, stride: int) -> bool:
    """Whether SAME padding needs no negative pad (onnxruntime mishandles that case, see below)."""
    return (-(-size // stride) - 1) * stride + kernel - size >= 0


@st.composite
def pool_case(draw, op: str):
    """Input shape, dtype and attributes of a valid windowed pool node."""
    rank = draw(st.integers(1, 3))
    kernel = [draw(st.integers(1, 4)) for _ in range(rank)]
    strides = [draw(st.integers(1, 3)) for _ in range(rank)]
    auto_pad = draw(st.sampled_from(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    same = auto_pad.startswith("SAME")
    # onnxruntime computes SAME pads from the undilated kernel (see test_same_with_dilations).
    dilations = [1 if same else draw(st.integers(1, 3)) for _ in range(rank)]
    pads = [draw(st.integers(0, k - 1)) for k in kernel + kernel] if auto_pad == "NOTSET" else [0] * (2 * rank)
    spatial = []
    for axis in range(rank):
        extent = (kernel[axis] - 1) * dilations[axis] + 1
        smallest = max(1, extent - pads[axis] - pads[axis + rank])
        sizes = st.integers(smallest, smallest + 6)
        if same:
            sizes = sizes.filter(lambda n, k=kernel[axis], s=strides[axis]: _same_is_nonnegative(n, k, s))
        spatial.append(draw(sizes))
    attrs = {"kernel_shape": kernel}
    if any(s != 1 for s in strides) or draw(st.booleans()):
        attrs["strides"] = strides
    if auto_pad != "NOTSET":
        attrs["auto_pad"] = auto_pad
    if not same and (any(d != 1 for d in dilations) or draw(st.booleans())):
        attrs["dilations"] = dilations
    if auto_pad == "NOTSET" and (any(pads) or draw(st.booleans())):
        attrs["pads"] = pads
    if draw(st.booleans()):
        attrs["ceil_mode"] = 1
    if op == "AveragePool" and draw(st.booleans()):
        attrs["count_include_pad"] = 1
    if op == "LpPool":
        attrs["p"] = draw(st.integers(1, 3))
    if op == "MaxPool" and draw(st.booleans()):
        attrs["storage_order"] = draw(st.integers(0, 1))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *spatial)
    return shape, draw(st.sampled_from(DTYPES[op])), attrs


def _tolerance(dtype: str) -> dict:
    return {"rtol": 2e-3, "atol": 2e-3} if dtype == "float16" else {"rtol": 1e-5, "atol": 1e-5}


@pytest.mark.parametrize("op", WINDOWED)
@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**31))
def test_windowed_pool(op, data, seed):
    shape, dtype, attrs = data.draw(pool_case(op))
    check_node(op, [random_values(seed, shape, dtype)], attrs, **_tolerance(dtype))


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"])
@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), rank=st.integers(3, 5), data=st.data())
def test_global_pool(op, seed, rank, data):
    shape = tuple(data.draw(st.integers(0 if axis == 0 else 1, 4)) for axis in range(rank))
    dtype = data.draw(st.sampled_from(["float32", "float16"]))
    attrs = {"p": data.draw(st.integers(1, 3))} if op == "GlobalLpPool" else {}
    check_node(op, [random_values(seed, shape, dtype)], attrs, **_tolerance(dtype))


@pytest.mark.parametrize("op", WINDOWED)
def test_empty_batch(op):
    check_node(op, [random_values(0, (0, 2, 5, 5), "float32")], {"kernel_shape": [2, 2], "pads": [1, 0, 0, 1]})


def test_ceil_mode_drops_window_starting_in_padding():
    """ceil((5 + 1 - 2) / 3) + 1 = 3 windows, but the third would start at 6, past the input: 2 remain."""
    x = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 5)
    attrs = {"kernel_shape": [2], "strides": [3], "pads": [0, 1], "ceil_mode": 1}
    for op in WINDOWED:
        out = check_node(op, [x], attrs)
        assert out[0].shape == (1, 1, 2)


def test_count_include_pad_with_ceil_mode():
    """The divisor counts the explicit pads but not positions a ceil_mode window reaches past them."""
    x = np.arange(1, 7, dtype=np.float32).reshape(1, 1, 6)
    attrs = {"kernel_shape": [3], "strides": [2], "pads": [1, 1], "ceil_mode": 1, "count_include_pad": 1}
    out = check_node("AveragePool", [x], attrs)
    np.testing.assert_allclose(out[0].ravel(), [1, 3, 5, 3])  # last window: (6 + pad) / 2


def _same_pads(spatial, kernel, strides, dilations, upper: bool) -> list[int]:
    """Explicit pads of auto_pad SAME_UPPER/SAME_LOWER as the ONNX spec defines them."""
    begins, ends = [], []
    for n, k, s, d in zip(spatial, kernel, strides, dilations):
        total = max(0, (-(-n // s) - 1) * s + (k - 1) * d + 1 - n)
        small = total // 2
        begins.append(small if upper else total - small)
        ends.append(total - small if upper else small)
    return begins + ends


@pytest.mark.parametrize("op", WINDOWED)
@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_same_with_dilations(op, auto_pad):
    """onnxruntime derives SAME pads from the undilated kernel, giving output sizes other than
    ceil(L / s); ember follows the spec, which equals explicit pads computed from the dilated kernel."""
    x = random_values(4, (1, 2, 9, 7), "float32")
    kernel, strides, dilations = [3, 3], [2, 1], [2, 2]
    pads = _same_pads(x.shape[2:], kernel, strides, dilations, auto_pad == "SAME_UPPER")
    common = {"kernel_shape": kernel, "strides": strides, "dilations": dilations}
    expected = run_ort(op, [x], {**common, "pads": pads})
    actual = run_ember(op, [x], {**common, "auto_pad": auto_pad})
    assert actual[0].shape == (1, 2, 5, 7)
    np.testing.assert_allclose(actual[0], expected[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", WINDOWED)
def test_same_with_kernel_smaller_than_stride(op):
    """SAME with kernel < stride needs a negative pad; onnxruntime shifts the windows (AveragePool,
    LpPool) or fails (MaxPool). ember clamps the padding at zero, as TensorFlow's SAME does."""
    x = random_values(5, (1, 2, 8), "float32")
    expected = run_ort(op, [x], {"kernel_shape": [1], "strides": [5]})
    actual = run_ember(op, [x], {"kernel_shape": [1], "strides": [5], "auto_pad": "SAME_UPPER"})
    np.testing.assert_allclose(actual[0], expected[0], rtol=1e-6)


# ---------------------------------------------------------------- errors


def _pool_error(op, shape, attrs, match: str):
    with pytest.raises(ShapeError, match=match):
        ember_import_node(op, [random_values(0, shape, "float32")], attrs)


@pytest.mark.parametrize("op", WINDOWED)
def test_errors(op):
    _pool_error(op, (1, 1, 3, 5), {"kernel_shape": [4, 2]}, "kernel extent 4 is larger than the padded input size 3")
    _pool_error(op, (1, 1, 3, 5), {"kernel_shape": [2, 2], "dilations": [3, 1]}, "kernel extent 4 is larger")
    _pool_error(op, (1, 1, 5, 5), {"kernel_shape": [2, 2], "pads": [2, 0, 0, 0]}, "must be smaller than kernel_shape")
    _pool_error(op, (1, 1, 5, 5), {"kernel_shape": [2, 2], "auto_pad": "same_upper"}, "is not one of")
    _pool_error(op, (1, 1, 5, 5), {"kernel_shape": [2]}, "must have 2 entries")
    _pool_error(op, (1, 1, 5, 5), {"kernel_shape": [2, 2], "strides": [0, 1]}, "must be positive")
    _pool_error(op, (1, 1, 5, 5), {"kernel_shape": [2, 2], "ceil_mode": 2}, "ceil_mode must be 0 or 1")
    _pool_error(op, (2, 5), {"kernel_shape": [2]}, "rank >= 3")


def test_global_pool_errors():
    for op in ("GlobalAveragePool", "GlobalMaxPool"):
        _pool_error(op, (2, 5), {}, "rank >= 3")
