"""Data-movement ops (Concat, Split, Slice, Gather, GatherElements, Tile, Pad) against
onnxruntime on hypothesis-drawn shapes, dtypes and attributes."""

from __future__ import annotations

import numpy as np
import pytest
from ember.ir.errors import InputError, ShapeError
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ops.harness import Const, check_node, ember_import_node, run_ember
from tests.ops.test_shape import ints, random_array

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True, database=None)
DTYPES = ("float32", "int64", "bool", "float16", "int32", "uint8")
INT64_MAX, INT64_MIN, INT32_MAX = 2**63 - 1, -(2**63), 2**31 - 1


def maybe_negative(data, axis: int, rank: int) -> int:
    """``axis`` or its negative spelling, as hypothesis chooses."""
    return axis - rank if data.draw(st.booleans()) else axis


shapes = st.lists(st.integers(0, 4), min_size=1, max_size=4).map(tuple)
dtypes = st.sampled_from(DTYPES)
seeds = st.integers(0, 2**31 - 1)


@SETTINGS
@given(shapes, dtypes, seeds, st.data())
def test_concat(shape, dtype, seed, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    count = data.draw(st.integers(1, 4))
    inputs = []
    for i in range(count):
        piece = list(shape)
        piece[axis] = data.draw(st.integers(0, 3))
        inputs.append(random_array(tuple(piece), dtype, seed + i))
    check_node("Concat", inputs, {"axis": maybe_negative(data, axis, len(shape))})


@SETTINGS
@given(shapes, dtypes, seeds, st.data())
def test_split_sizes(shape, dtype, seed, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    sizes, left = [], shape[axis]
    while left or not sizes:
        sizes.append(data.draw(st.integers(0, left)))
        left -= sizes[-1]
        if len(sizes) == 4:
            sizes[-1] += left
            left = 0
    x = random_array(shape, dtype, seed)
    attrs = {"axis": maybe_negative(data, axis, len(shape))}
    check_node("Split", [x, ints(sizes)], attrs, num_outputs=len(sizes))


@SETTINGS
@given(shapes, dtypes, seeds, st.data())
def test_split_num_outputs(shape, dtype, seed, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    dim = shape[axis]
    # Pieces are ceil(dim / n) long; onnxruntime rejects an n whose last piece would be negative.
    valid = [n for n in range(1, 5) if dim - -(-dim // n) * (n - 1) >= 0]
    n = data.draw(st.sampled_from(valid))
    attrs = {"axis": maybe_negative(data, axis, len(shape)), "num_outputs": n}
    check_node("Split", [random_array(shape, dtype, seed)], attrs, num_outputs=n)


def test_split_legacy_equal():
    """Opset 13 with neither split nor num_outputs: as many equal pieces as outputs."""
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    outs = check_node("Split", [x], {"axis": 1}, opset=13, num_outputs=3)
    assert [o.shape for o in outs] == [(2, 2)] * 3


slice_bounds = st.one_of(st.integers(-6, 6), st.sampled_from([INT64_MAX, INT64_MIN, INT32_MAX, 100, -100]))


@SETTINGS
@given(shapes, dtypes, seeds, st.data())
def test_slice(shape, dtype, seed, data):
    rank = len(shape)
    axes = data.draw(st.lists(st.integers(0, rank - 1), unique=True, min_size=1, max_size=rank))
    n = len(axes)
    starts = data.draw(st.lists(slice_bounds, min_size=n, max_size=n))
    ends = data.draw(st.lists(slice_bounds, min_size=n, max_size=n))
    steps = data.draw(st.none() | st.lists(st.sampled_from([1, 2, 3, -1, -2, -3]), min_size=n, max_size=n))
    given_axes = data.draw(st.booleans()) or steps is not None or axes != list(range(n))
    inputs = [random_array(shape, dtype, seed), ints(starts), ints(ends)]
    inputs.append(ints([maybe_negative(data, a, rank) for a in axes]) if given_axes else None)
    inputs.append(None if steps is None else ints(steps))
    while inputs[-1] is None:
        inputs.pop()
    check_node("Slice", inputs)


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       st.lists(st.integers(0, 3), min_size=0, max_size=2).map(tuple),
       st.sampled_from(["int32", "int64"]), dtypes, seeds, st.data())
def test_gather(shape, index_shape, index_dtype, dtype, seed, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    dim = shape[axis]
    indices = np.random.default_rng(seed).integers(-dim, dim, index_shape).astype(index_dtype)
    check_node("Gather", [random_array(shape, dtype, seed), indices], {"axis": maybe_negative(data, axis, len(shape))})


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       st.sampled_from(["int32", "int64"]), dtypes, seeds, st.data())
def test_gather_elements(shape, index_dtype, dtype, seed, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    # Along axis the indices may be any length; elsewhere at most the data's.
    index_shape = tuple(data.draw(st.integers(0, 4)) if i == axis else data.draw(st.integers(1, d))
                        for i, d in enumerate(shape))
    dim = shape[axis]
    indices = np.random.default_rng(seed).integers(-dim, dim, index_shape).astype(index_dtype)
    attrs = {"axis": maybe_negative(data, axis, len(shape))}
    check_node("GatherElements", [random_array(shape, dtype, seed), indices], attrs)


@SETTINGS
@given(shapes, dtypes, seeds, st.data())
def test_tile(shape, dtype, seed, data):
    repeats = data.draw(st.lists(st.integers(0, 3), min_size=len(shape), max_size=len(shape)))
    check_node("Tile", [random_array(shape, dtype, seed), ints(repeats)])


PAD_DTYPES = ("float32", "int64", "int32", "uint8", "float64")


@st.composite
def pad_cases(draw):
    """(shape, axes or None, pads, mode) that onnxruntime accepts."""
    mode = draw(st.sampled_from(["constant", "reflect", "edge", "wrap"]))
    shape = draw(st.lists(st.integers(1 if mode != "constant" else 0, 4), min_size=1, max_size=4).map(tuple))
    rank = len(shape)
    axes = draw(st.none() | st.lists(st.integers(0, rank - 1), unique=True, min_size=1, max_size=rank))
    padded = list(range(rank)) if axes is None else axes
    begins, ends = [], []
    for axis in padded:
        d = shape[axis]
        # Crop first (negative pads), keeping at least one element; then pad what is left.
        b_crop = draw(st.integers(0, d - 1)) if d and draw(st.booleans()) else 0
        e_crop = draw(st.integers(0, d - 1 - b_crop)) if d - b_crop > 1 and draw(st.booleans()) else 0
        kept = d - b_crop - e_crop
        limit = kept - 1 if mode == "reflect" else 3
        b = -b_crop if b_crop else draw(st.integers(0, max(limit, 0)))
        e = -e_crop if e_crop else draw(st.integers(0, max(limit, 0)))
        begins.append(b)
        ends.append(e)
    return shape, axes, begins + ends, mode


@SETTINGS
@given(pad_cases(), st.sampled_from(PAD_DTYPES), seeds, st.data())
def test_pad(case, dtype, seed, data):
    shape, axes, pads, mode = case
    x = random_array(shape, dtype, seed)
    value = None
    if mode == "constant" and data.draw(st.booleans()):
        v = data.draw(st.sampled_from([0, 1, 7, -2.5]))
        value = Const(np.array(abs(v) if dtype == "uint8" else v).astype(dtype))
    inputs = [x, ints(pads), value, None if axes is None else ints([maybe_negative(data, a, len(shape)) for a in axes])]
    while inputs[-1] is None:
        inputs.pop()
    check_node("Pad", inputs, {"mode": mode})


def test_pad_negative_crops_before_padding():
    x = np.arange(6, dtype=np.float32)
    for pads in ([-2, 3], [3, -2], [-1, -1]):
        for mode in ("constant", "reflect", "edge", "wrap"):
            check_node("Pad", [x, ints(pads)], {"mode": mode})
    check_node("Pad", [x, ints([8, 7])], {"mode": "wrap"})  # wrap repeats past one period


# --- bad inputs ---------------------------------------------------------------

X = np.zeros((2, 3, 4), np.float32)


@pytest.mark.parametrize("op, inputs, attrs, match", [
    ("Concat", [X, np.zeros((2, 3), np.float32)], {"axis": 0}, "different ranks"),
    ("Concat", [X, np.zeros((2, 4, 4), np.float32)], {"axis": 0}, "differ outside axis"),
    ("Concat", [X, np.zeros((2, 3, 4), np.int64)], {"axis": 0}, "different dtypes"),
    ("Concat", [X], {"axis": 3}, "out of range"),
    ("Split", [X, ints([1, 1])], {"axis": 1}, "sums to 2"),
    ("Split", [X, ints([2, 2])], {"axis": 1, "num_outputs": 2}, "exactly one"),
    ("Split", [np.zeros(5, np.float32)], {"num_outputs": 4}, "cannot split"),
    ("Slice", [X, ints([0]), ints([1]), ints([0]), ints([0])], {}, "contain 0"),
    ("Slice", [X, ints([0, 0]), ints([1])], {}, "differ in length"),
    ("Slice", [X, ints([0, 0]), ints([1, 1]), ints([1, 1])], {}, "repeat"),
    ("Gather", [X, np.zeros(2, np.float32)], {}, "expected int32 or int64"),
    ("Gather", [X, np.zeros(2, np.int64)], {"axis": 3}, "out of range"),
    ("GatherElements", [X, np.zeros((2, 3), np.int64)], {}, "rank"),
    ("GatherElements", [X, np.zeros((2, 4, 4), np.int64)], {"axis": 0}, "exceeds"),
    ("Tile", [X, ints([1, 2])], {}, "entries for rank"),
    ("Tile", [X, ints([1, -1, 1])], {}, "non-negative"),
    ("Pad", [X, ints([1, 1])], {}, "need 2 x 3"),
    ("Pad", [X, ints([0, -3, 0, 0, -1, 0])], {}, "crop more"),
    ("Pad", [X, ints([0, 3, 0, 0, 0, 0])], {"mode": "reflect"}, "smaller than"),
    ("Pad", [X, ints([0, 1, 0, 0, 0, 0])], {"mode": "mirror"}, "must be one of"),
])
def test_data_errors(op, inputs, attrs, match):
    num_outputs = attrs.get("num_outputs", 2) if op == "Split" else 1
    with pytest.raises(ShapeError, match=match):
        ember_import_node(op, inputs, attrs, num_outputs=num_outputs)


@pytest.mark.parametrize("op, index", [("Gather", 3), ("Gather", -4), ("GatherElements", 5)])
def test_index_out_of_range_is_input_error(op, index):
    """Indices are run-time data: out-of-range ones raise InputError instead of wrapping."""
    data = np.arange(6, dtype=np.float32).reshape(2, 3) if op == "GatherElements" else np.arange(3.0)
    indices = np.array([[0, index]] if op == "GatherElements" else [0, index], dtype=np.int64)
    with pytest.raises(InputError, match="out of range"):
        run_ember(op, [data, indices], {"axis": -1})
