"""Data-movement ops compiled to native code (Concat, Split, Slice, Gather, GatherElements, Tile,
Pad) against ember's reference, on every dtype and on both targets; bad indices raise InputError."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ember
from tests.ops.harness import COMPILE_TARGETS, Const, check_compiled, ember_import_node
from tests.ops.test_data import (
    ints,
    maybe_negative,
    pad_cases,
    random_array,
    slice_bounds,
)

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True, database=None)
ALL_DTYPES = ("float32", "float16", "float64", "int8", "uint8", "int32", "int64", "bool")

dtypes = st.sampled_from(ALL_DTYPES)
targets = st.sampled_from(COMPILE_TARGETS)
seeds = st.integers(0, 2**31 - 1)
shapes = st.lists(st.integers(0, 4), min_size=1, max_size=4).map(tuple)


def compiled(op, inputs, attrs=None, target="host", num_outputs=1):
    return check_compiled(op, inputs, attrs, targets=(target,), num_outputs=num_outputs)


@SETTINGS
@given(shapes, dtypes, seeds, targets, st.data())
def test_concat(shape, dtype, seed, target, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    pieces = []
    for i in range(data.draw(st.integers(1, 6))):
        piece = list(shape)
        piece[axis] = data.draw(st.integers(0, 3))
        pieces.append(random_array(tuple(piece), dtype, seed + i))
    compiled("Concat", pieces, {"axis": maybe_negative(data, axis, len(shape))}, target)


@SETTINGS
@given(shapes, dtypes, seeds, targets, st.data())
def test_split(shape, dtype, seed, target, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    attrs = {"axis": maybe_negative(data, axis, len(shape))}
    x = random_array(shape, dtype, seed)
    if data.draw(st.booleans()):
        sizes, left = [], shape[axis]
        while left or not sizes:
            sizes.append(data.draw(st.integers(0, left)))
            left -= sizes[-1]
        compiled("Split", [x, ints(sizes)], attrs, target, num_outputs=len(sizes))
    else:
        dim = shape[axis]
        n = data.draw(st.sampled_from([n for n in range(1, 5) if dim - -(-dim // n) * (n - 1) >= 0]))
        compiled("Split", [x], {**attrs, "num_outputs": n}, target, num_outputs=n)


@SETTINGS
@given(shapes, dtypes, seeds, targets, st.data())
def test_slice(shape, dtype, seed, target, data):
    rank = len(shape)
    axes = data.draw(st.lists(st.integers(0, rank - 1), unique=True, min_size=1, max_size=rank))
    n = len(axes)
    starts = data.draw(st.lists(slice_bounds, min_size=n, max_size=n))
    ends = data.draw(st.lists(slice_bounds, min_size=n, max_size=n))
    steps = data.draw(st.lists(st.sampled_from([1, 2, 3, -1, -2, -3]), min_size=n, max_size=n))
    inputs = [random_array(shape, dtype, seed), ints(starts), ints(ends),
              ints([maybe_negative(data, a, rank) for a in axes]), ints(steps)]
    compiled("Slice", inputs, target=target)


def _indices(shape, dim: int, dtype: str, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-dim, dim, shape).astype(dtype)


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       st.lists(st.integers(0, 3), min_size=0, max_size=2).map(tuple),
       st.sampled_from(["int32", "int64"]), dtypes, seeds, targets, st.data())
def test_gather(shape, index_shape, index_dtype, dtype, seed, target, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    indices = _indices(index_shape, shape[axis], index_dtype, seed)
    compiled("Gather", [random_array(shape, dtype, seed), indices],
             {"axis": maybe_negative(data, axis, len(shape))}, target)


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       st.sampled_from(["int32", "int64"]), dtypes, seeds, targets, st.data())
def test_gather_elements(shape, index_dtype, dtype, seed, target, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    index_shape = tuple(data.draw(st.integers(0, 4)) if i == axis else data.draw(st.integers(1, d))
                        for i, d in enumerate(shape))
    indices = _indices(index_shape, shape[axis], index_dtype, seed)
    compiled("GatherElements", [random_array(shape, dtype, seed), indices],
             {"axis": maybe_negative(data, axis, len(shape))}, target)


@SETTINGS
@given(shapes, dtypes, seeds, targets, st.data())
def test_tile(shape, dtype, seed, target, data):
    repeats = data.draw(st.lists(st.integers(0, 3), min_size=len(shape), max_size=len(shape)))
    compiled("Tile", [random_array(shape, dtype, seed), ints(repeats)], target=target)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(pad_cases(), dtypes, seeds, targets, st.data())
def test_pad(case, dtype, seed, target, data):
    shape, axes, pads, mode = case
    value = None
    if mode == "constant" and data.draw(st.booleans()):
        v = data.draw(st.sampled_from([0, 1, 7, -2.5, 0.1]))
        value = Const(np.array(abs(v) if dtype in ("uint8", "bool") else v).astype(dtype))
    axes = None if axes is None else ints([maybe_negative(data, a, len(shape)) for a in axes])
    inputs = [random_array(shape, dtype, seed), ints(pads), value, axes]
    while inputs[-1] is None:
        inputs.pop()
    compiled("Pad", inputs, {"mode": mode}, target)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_crops_then_pads_on_every_target(mode):
    x = np.arange(6, dtype=np.float16)
    for pads in ([-2, 3], [3, -2], [-1, -1], [2, 2]):
        check_compiled("Pad", [x, ints(pads)], {"mode": mode}, targets=COMPILE_TARGETS)
    if mode in ("edge", "wrap"):  # repeat past one period
        check_compiled("Pad", [x, ints([8, 13])], {"mode": mode}, targets=COMPILE_TARGETS)


@pytest.mark.parametrize("op, inputs, attrs", [
    ("Concat", [np.ones((2, 0, 3), bool), np.zeros((2, 2, 3), bool)], {"axis": 1}),
    ("Concat", [np.arange(n, dtype=np.int8) for n in (1, 2, 3, 4, 5, 6, 7)], {"axis": 0}),
    ("Slice", [np.arange(30, dtype=np.float16).reshape(5, 6), ints([4, 0]), ints([-100, 100]), ints([0, 1]),
               ints([-2, 3])], {}),
    ("Gather", [np.arange(12, dtype=np.uint8).reshape(3, 4), np.array(-1, np.int64)], {"axis": 1}),  # scalar index
    ("GatherElements", [np.arange(12.0).reshape(3, 4), np.array([[2, -3, 0, 1]], np.int32)], {"axis": 0}),
    ("Tile", [np.arange(6, dtype=np.int32).reshape(2, 3), ints([2, 3])], {}),
])
def test_examples_on_every_target(op, inputs, attrs):
    check_compiled(op, inputs, attrs, targets=COMPILE_TARGETS)


def test_split_on_every_target():
    x = np.arange(20, dtype=np.float16).reshape(4, 5)
    check_compiled("Split", [x, ints([2, 0, 3])], {"axis": -1}, targets=COMPILE_TARGETS, num_outputs=3)


# --- bad data -----------------------------------------------------------------

@pytest.mark.parametrize("op, index", [("Gather", 3), ("Gather", -4), ("GatherElements", 5),
                                       ("GatherElements", -7)])
@pytest.mark.parametrize("index_dtype", ["int32", "int64"])
def test_index_out_of_range_is_input_error(op, index, index_dtype):
    """The compiled kernel checks every index before it reads: the error names the node."""
    data = np.arange(6, dtype=np.float32).reshape(2, 3) if op == "GatherElements" else np.arange(3.0)
    good = np.array([[0, -1]] if op == "GatherElements" else [0, -1], dtype=index_dtype)
    graph = ember_import_node(op, [data, good], {"axis": -1})
    module = ember.compile(graph)
    assert module.run({"in0": data, "in1": good})[0].shape == good.shape
    bad = good.copy()
    bad.reshape(-1)[-1] = index
    with pytest.raises(ember.InputError, match="out of range") as info:
        module.run({"in0": data, "in1": bad})
    assert graph.nodes[0].name in str(info.value)
    # the module is still usable after a failed check
    assert module.run({"in0": data, "in1": good})[0].shape == good.shape


def test_gather_from_an_empty_axis_rejects_any_index():
    data = np.zeros((2, 0), np.float32)
    module = ember.compile(ember_import_node("Gather", [data, np.zeros(1, np.int64)], {"axis": 1}))
    with pytest.raises(ember.InputError, match="out of range"):
        module.run({"in0": data, "in1": np.zeros(1, np.int64)})
