"""Shape ops compiled to native code (Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Expand,
DepthToSpace, SpaceToDepth) against ember's reference, on every dtype and on both targets."""

from __future__ import annotations

import numpy as np
import pytest
from ember.ir.loops import Var, print_expr
from ember.ir.ops.shape import reshape_indices
from hypothesis import given, settings
from hypothesis import strategies as st

import ember
from tests.ops.harness import COMPILE_TARGETS, check_compiled, ember_import_node
from tests.ops.test_shape import expand_cases, ints, random_array, reshape_cases

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True, database=None)
ALL_DTYPES = ("float32", "float16", "float64", "int8", "uint8", "int32", "int64", "bool")

dtypes = st.sampled_from(ALL_DTYPES)
targets = st.sampled_from(COMPILE_TARGETS)
seeds = st.integers(0, 2**31 - 1)
shapes = st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple)


def compiled(op, inputs, attrs=None, target="host"):
    return check_compiled(op, inputs, attrs, targets=(target,))


@SETTINGS
@given(reshape_cases(), dtypes, seeds, targets)
def test_reshape(case, dtype, seed, target):
    in_shape, shape, allowzero = case
    compiled("Reshape", [random_array(in_shape, dtype, seed), ints(shape)], {"allowzero": allowzero}, target)


@SETTINGS
@given(st.lists(st.integers(0, 4), min_size=1, max_size=4).map(tuple), dtypes, seeds, targets, st.data())
def test_flatten(shape, dtype, seed, target, data):
    axis = data.draw(st.integers(-len(shape), len(shape)))
    compiled("Flatten", [random_array(shape, dtype, seed)], {"axis": axis}, target)


@SETTINGS
@given(shapes, dtypes, seeds, targets, st.data())
def test_transpose(shape, dtype, seed, target, data):
    perm = data.draw(st.none() | st.permutations(range(len(shape))))
    compiled("Transpose", [random_array(shape, dtype, seed)], {"perm": list(perm)} if perm else {}, target)


@SETTINGS
@given(st.lists(st.integers(0, 3), min_size=0, max_size=5).map(tuple), dtypes, seeds, targets, st.data())
def test_squeeze(shape, dtype, seed, target, data):
    ones = [i for i, d in enumerate(shape) if d == 1]
    axes = data.draw(st.none() | st.lists(st.sampled_from(ones), unique=True, min_size=1) if ones else st.none())
    x = random_array(shape, dtype, seed)
    if axes is None:
        compiled("Squeeze", [x], target=target)
    else:
        compiled("Squeeze", [x, ints([a - len(shape) if data.draw(st.booleans()) else a for a in axes])],
                 target=target)


@SETTINGS
@given(shapes, dtypes, seeds, targets, st.data())
def test_unsqueeze(shape, dtype, seed, target, data):
    out_rank = len(shape) + data.draw(st.integers(1, 3))
    axes = data.draw(st.lists(st.integers(-out_rank, out_rank - 1), min_size=out_rank - len(shape),
                              max_size=out_rank - len(shape), unique_by=lambda a: a % out_rank))
    compiled("Unsqueeze", [random_array(shape, dtype, seed), ints(axes)], target=target)


@SETTINGS
@given(expand_cases(), dtypes, seeds, targets)
def test_expand(case, dtype, seed, target):
    in_shape, shape = case
    compiled("Expand", [random_array(in_shape, dtype, seed), ints(shape)], target=target)


@SETTINGS
@given(st.integers(1, 2), st.integers(1, 3), st.integers(0, 3), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from(["DCR", "CRD"]), dtypes, seeds, targets)
def test_depth_to_space(n, b, oc, h, w, mode, dtype, seed, target):
    x = random_array((n, oc * b * b, h, w), dtype, seed)
    compiled("DepthToSpace", [x], {"blocksize": b, "mode": mode}, target)


@SETTINGS
@given(st.integers(1, 2), st.integers(1, 3), st.integers(0, 3), st.integers(1, 3), st.integers(1, 3), dtypes,
       seeds, targets)
def test_space_to_depth(n, b, c, h, w, dtype, seed, target):
    compiled("SpaceToDepth", [random_array((n, c, h * b, w * b), dtype, seed)], {"blocksize": b}, target)


@pytest.mark.parametrize("op, inputs, attrs", [
    ("Reshape", [np.arange(24, dtype=np.float16).reshape(2, 3, 4), ints([4, 3, 2])], {}),
    ("Flatten", [np.arange(120, dtype=np.int8).reshape(1, 2, 3, 4, 5)], {"axis": 2}),
    ("Transpose", [np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5)], {"perm": [0, 2, 3, 1]}),
    ("Squeeze", [np.ones((1,), bool)], {}),  # to a scalar
    ("Unsqueeze", [np.array(3.5, np.float64), ints([0, -1])], {}),  # from a scalar
    ("Expand", [np.array([[1], [2]], np.uint8), ints([3, 1, 4])], {}),
    ("DepthToSpace", [np.arange(72, dtype=np.int32).reshape(1, 8, 3, 3)], {"blocksize": 2}),
    ("SpaceToDepth", [np.arange(72, dtype=np.int64).reshape(2, 1, 6, 6)], {"blocksize": 3}),
])
def test_examples_on_every_target(op, inputs, attrs):
    check_compiled(op, inputs, attrs, targets=COMPILE_TARGETS)


def test_special_floats_are_copied():
    """Movement ops pass inf, -0.0, subnormals and NaN through unchanged (float16 too)."""
    for dtype in ("float16", "float32", "float64"):
        x = np.array([np.inf, -np.inf, -0.0, np.nan, 1e-7, 65504.0], dtype).reshape(2, 3)
        out = check_compiled("Transpose", [x], targets=COMPILE_TARGETS)[0]
        np.testing.assert_array_equal(np.signbit(out), np.signbit(x.T))


def test_injective_schedule_fuses_outer_loops():
    """One parallel loop over n.c.h around a vectorized loop over w (no nest of short loops)."""
    x = np.zeros((2, 3, 4, 5), np.float32)
    text = ember.compile(ember_import_node("Transpose", [x], {"perm": [0, 1, 3, 2]})).kernels_text()
    assert text.count("for parallel") == 1 and text.count("for vectorized") == 1
    assert text.count("for ") == 2


def test_reshape_indices_divide_only_merged_groups():
    i, j, k = Var("i"), Var("j"), Var("k")
    assert [print_expr(e) for e in reshape_indices((i, j), (6, 4), (2, 3, 4))] == ["(i // 3)", "(i % 3)", "j"]
    assert [print_expr(e) for e in reshape_indices((i, j, k), (2, 1, 3), (2, 3))] == ["i", "k"]
    assert [print_expr(e) for e in reshape_indices((i,), (1,), ())] == []
