"""Shape ops (Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Expand, DepthToSpace,
SpaceToDepth) against onnxruntime on hypothesis-drawn shapes, dtypes and attributes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ember.ir.errors import ShapeError
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ops.harness import Const, check_node, ember_import_node

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None)
DTYPES = ("float32", "int64", "bool", "float16", "int32", "uint8")


def random_array(shape, dtype, seed: int) -> np.ndarray:
    """Random values of ``dtype`` (small ints, so every dtype can hold them)."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(0, 100, shape).astype(dtype)


def ints(values) -> Const:
    return Const(np.array(values, dtype=np.int64))


shapes = st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple)
nonempty_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)
dtypes = st.sampled_from(DTYPES)
# onnxruntime implements DepthToSpace/SpaceToDepth for these only
block_dtypes = st.sampled_from(("float32", "float16", "float64", "int8", "uint8"))
seeds = st.integers(0, 2**31 - 1)


def _groups(atoms: list[int], cuts: list[bool]) -> tuple[int, ...]:
    """Products of consecutive runs of ``atoms``; a True in ``cuts`` starts a new run."""
    out, cur = [], 1
    for i, a in enumerate(atoms):
        if i and cuts[i - 1]:
            out.append(cur)
            cur = 1
        cur *= a
    return tuple(out + [cur]) if atoms else ()


@st.composite
def reshape_cases(draw):
    """An input shape, an ONNX target shape (with 0s and a -1) and allowzero."""
    atoms = draw(st.lists(st.sampled_from([1, 2, 3, 4, 0]), min_size=0, max_size=5))
    in_shape = _groups(atoms, draw(st.lists(st.booleans(), min_size=len(atoms), max_size=len(atoms))))
    perm = draw(st.permutations(atoms))
    out_shape = list(_groups(perm, draw(st.lists(st.booleans(), min_size=len(atoms), max_size=len(atoms)))))
    # Without allowzero a 0 in the target means "copy the input dim", so a real
    # 0 in the target needs allowzero=1 unless the input has a 0 at that position.
    copies = all(i < len(in_shape) and in_shape[i] == 0 for i, d in enumerate(out_shape) if d == 0)
    allowzero = draw(st.sampled_from([0, 1])) if copies else 1
    if not allowzero:
        # A 0 copies the input dim at the same position.
        for i in range(min(len(in_shape), len(out_shape))):
            if out_shape[i] == in_shape[i] and draw(st.booleans()):
                out_shape[i] = 0
    total = math.prod(in_shape)
    if out_shape and total and draw(st.booleans()):
        out_shape[draw(st.integers(0, len(out_shape) - 1))] = -1
    return in_shape, out_shape, allowzero


@SETTINGS
@given(reshape_cases(), dtypes, seeds)
def test_reshape(case, dtype, seed):
    in_shape, target, allowzero = case
    out = check_node("Reshape", [random_array(in_shape, dtype, seed), ints(target)], {"allowzero": allowzero})
    assert out[0].size == math.prod(in_shape)


@SETTINGS
@given(st.lists(st.integers(0, 4), min_size=1, max_size=4).map(tuple), dtypes, seeds, st.data())
def test_flatten(shape, dtype, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape)))
    check_node("Flatten", [random_array(shape, dtype, seed)], {"axis": axis})


@SETTINGS
@given(shapes, dtypes, seeds, st.data())
def test_transpose(shape, dtype, seed, data):
    perm = data.draw(st.none() | st.permutations(range(len(shape))))
    # onnx.helper cannot build an empty ints attribute, so rank 0 uses the default.
    attrs = {"perm": list(perm)} if perm else {}
    check_node("Transpose", [random_array(shape, dtype, seed)], attrs)


@SETTINGS
@given(st.lists(st.integers(0, 3), min_size=0, max_size=5).map(tuple), dtypes, seeds, st.data())
def test_squeeze(shape, dtype, seed, data):
    ones = [i for i, d in enumerate(shape) if d == 1]
    axes = data.draw(st.none() | st.lists(st.sampled_from(ones), unique=True, min_size=1) if ones else st.none())
    x = random_array(shape, dtype, seed)
    if axes is None:
        check_node("Squeeze", [x])
        return
    axes = [a - len(shape) if data.draw(st.booleans()) else a for a in axes]
    check_node("Squeeze", [x, ints(axes)])


@SETTINGS
@given(shapes, dtypes, seeds, st.data())
def test_unsqueeze(shape, dtype, seed, data):
    out_rank = len(shape) + data.draw(st.integers(1, 3))
    axes = data.draw(st.lists(st.integers(0, out_rank - 1), unique=True, min_size=out_rank - len(shape),
                              max_size=out_rank - len(shape)))
    axes = [a - out_rank if data.draw(st.booleans()) else a for a in axes]
    check_node("Unsqueeze", [random_array(shape, dtype, seed), ints(axes)])


@st.composite
def expand_cases(draw):
    """An input shape and a target shape that broadcast together (either may be longer)."""
    rank = draw(st.integers(0, 4))
    in_shape, target = [], []
    for _ in range(rank):
        d = draw(st.sampled_from([1, 1, 2, 3, 0]))
        in_shape.append(d)
        target.append(draw(st.sampled_from([1, 2, 3, 0])) if d == 1 else draw(st.sampled_from([1, d])))
    # Drop leading dims of one side: shorter shapes broadcast from the right.
    cut = draw(st.integers(0, rank))
    if draw(st.booleans()):
        in_shape = in_shape[cut:]
    else:
        target = target[cut:]
    return tuple(in_shape), target


@SETTINGS
@given(expand_cases(), dtypes, seeds)
def test_expand(case, dtype, seed):
    in_shape, target = case
    check_node("Expand", [random_array(in_shape, dtype, seed), ints(target)])


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 3), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from(["DCR", "CRD"]), block_dtypes, seeds)
def test_depth_to_space(n, b, oc, h, w, mode, dtype, seed):
    x = random_array((n, oc * b * b, h, w), dtype, seed)
    check_node("DepthToSpace", [x], {"blocksize": b, "mode": mode})


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 3), st.integers(1, 3), st.integers(1, 3), block_dtypes, seeds)
def test_space_to_depth(n, b, c, h, w, dtype, seed):
    x = random_array((n, c, h * b, w * b), dtype, seed)
    check_node("SpaceToDepth", [x], {"blocksize": b})


def test_reshape_examples():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert check_node("Reshape", [x, ints([0, -1])])[0].shape == (2, 12)
    assert check_node("Reshape", [x, ints([-1, 0, 2])])[0].shape == (4, 3, 2)
    empty = np.zeros((0, 3), np.float32)
    assert check_node("Reshape", [empty, ints([3, 0])], {"allowzero": 1})[0].shape == (3, 0)


# --- bad inputs ---------------------------------------------------------------

X = np.zeros((2, 3, 4), np.float32)


@pytest.mark.parametrize("op, inputs, attrs, match", [
    ("Reshape", [X, ints([5, 5])], {}, "cannot reshape"),
    ("Reshape", [X, ints([-1, -1])], {}, "more than one -1"),
    ("Reshape", [X, ints([5, -1])], {}, "cannot infer"),
    ("Reshape", [X, ints([0, -1, 0])], {"allowzero": 1}, "both 0 and -1"),
    ("Reshape", [X, ints([-2, 12])], {}, "negative"),
    ("Flatten", [X], {"axis": 4}, "out of range"),
    ("Transpose", [X], {"perm": [0, 0, 1]}, "not a permutation"),
    ("Transpose", [X], {"perm": [1, 0]}, "entries for rank"),
    ("Squeeze", [X, ints([1])], {}, "cannot squeeze"),
    ("Squeeze", [X, ints([3])], {}, "out of range"),
    ("Unsqueeze", [X, ints([0, 0])], {}, "repeat"),
    ("Unsqueeze", [X, ints([5])], {}, "out of range"),
    ("Expand", [X, ints([2, 5, 4])], {}, "do not broadcast"),
    ("DepthToSpace", [X], {"blocksize": 2}, "4-D"),
    ("DepthToSpace", [np.zeros((1, 6, 2, 2), np.float32)], {"blocksize": 2}, "divisible"),
    ("DepthToSpace", [np.zeros((1, 4, 2, 2), np.float32)], {"blocksize": 2, "mode": "XYZ"}, "DCR or CRD"),
    ("SpaceToDepth", [np.zeros((1, 1, 3, 4), np.float32)], {"blocksize": 2}, "divisible"),
])
def test_shape_errors(op, inputs, attrs, match):
    with pytest.raises(ShapeError, match=match):
        ember_import_node(op, inputs, attrs)
