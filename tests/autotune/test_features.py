"""Features of candidate schedules: fixed length, and they see tiles, annotations and strides."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ember.autotune.features import (
    GLOBAL_FEATURES,
    LEVEL_FEATURES,
    LOOP_DEPTH,
    LOOP_FEATURE_LENGTH,
    Featurizer,
    coefficients,
    knob_features,
    loop_features,
)
from ember.autotune.space import ConfigSpace
from ember.ir.loops import (
    Var,
    compute,
    create_schedule,
    lower,
    placeholder,
    reduce_axis,
    reduce_sum,
)
from ember.ir.loops.knobs import Knobs
from ember.ir.loops.schedule import ScheduleError

M, K, N = 16, 32, 64


class MatmulTask:
    """A task with a hand-written matmul template: ``C = A @ B`` looped ``i, k, j.o, j.i`` with the
    split of ``j``, the kind of ``j.i`` and a parallel ``i`` as knobs. Counts its lowerings."""

    def __init__(self):
        self.lowered = 0
        knobs = Knobs()
        self._lower(knobs)
        self._space, self._defaults = knobs.space, knobs.defaults

    def space(self) -> dict:
        return dict(self._space)

    def defaults(self) -> dict:
        return dict(self._defaults)

    def lower(self, config: dict):
        self.lowered += 1
        if config.get("tile_j") == 3:
            raise ScheduleError("tile_j 3 is refused")  # an invalid config of the space
        return self._lower(Knobs(config))

    def _lower(self, knobs: Knobs):
        a, b = placeholder((M, K), "float32", "a"), placeholder((K, N), "float32", "b")
        k = reduce_axis(K, "k")
        c = compute((M, N), lambda i, j: reduce_sum(a[i, k.var] * b[k.var, j], k), "c")
        s = create_schedule(c)
        stage = s[c]
        i, j = c.op.axes
        jo, ji = stage.split(j, knobs.choose("tile_j", (1, 3, 4, 8, 16, 64), default=8))
        stage.reorder(i, k, jo, ji)
        inner = knobs.choose("inner", ("serial", "vectorized", "unrolled"), default="vectorized")
        if inner == "vectorized":
            stage.vectorize(ji)
        elif inner == "unrolled":
            stage.unroll(ji)
        if knobs.choose("parallel", (True, False), default=True):
            stage.parallel(i)
        return lower(s, [a, b], "matmul")


def level(features: np.ndarray, slot: int, name: str) -> float:
    """Feature ``name`` of loop level ``slot`` counted from the innermost (-1)."""
    return features[(LOOP_DEPTH + slot) * len(LEVEL_FEATURES) + LEVEL_FEATURES.index(name)]


def glob(features: np.ndarray, name: str) -> float:
    return features[LOOP_DEPTH * len(LEVEL_FEATURES) + GLOBAL_FEATURES.index(name)]


@pytest.fixture(scope="module")
def task():
    return MatmulTask()


def test_loop_features_have_a_fixed_length_and_are_finite(task):
    rows = [loop_features(task.lower(c)) for c in ConfigSpace(task.space()) if c["tile_j"] != 3]
    assert all(r.shape == (LOOP_FEATURE_LENGTH,) and np.isfinite(r).all() for r in rows)
    assert len({r.tobytes() for r in rows}) == len(rows)  # every config looks different


def test_loop_features_see_the_tile_size_and_the_loop_kinds(task):
    f8 = loop_features(task.lower({"tile_j": 8, "inner": "vectorized", "parallel": True}))
    f16 = loop_features(task.lower({"tile_j": 16, "inner": "unrolled", "parallel": False}))
    # loops i, k, j.o, j.i right-aligned: j.i innermost, i four levels out
    assert level(f8, -1, "log_extent") == pytest.approx(math.log2(9))
    assert level(f16, -1, "log_extent") == pytest.approx(math.log2(17))
    assert level(f8, -2, "log_extent") == pytest.approx(math.log2(N // 8 + 1))
    assert level(f8, -1, "kind_vectorized") == 1 and level(f8, -1, "kind_unrolled") == 0
    assert level(f16, -1, "kind_unrolled") == 1 and level(f16, -1, "kind_vectorized") == 0
    assert level(f8, -4, "kind_parallel") == 1 and level(f16, -4, "kind_serial") == 1
    assert level(f8, -5, "log_extent") == 0 and level(f8, -5, "kind_serial") == 0  # padding
    assert glob(f8, "log_parallel_extent") == pytest.approx(math.log2(M + 1))
    assert glob(f8, "log_vector_extent") == pytest.approx(math.log2(9))
    assert glob(f16, "log_unroll_extent") == pytest.approx(math.log2(17))
    assert glob(f8, "log_iterations") == pytest.approx(math.log2(M * K * N + 1))


def test_loop_features_measure_strides_and_footprints(task):
    f = loop_features(task.lower({"tile_j": 8, "inner": "serial", "parallel": False}))
    # the main statement is the update c[i,j] = c[i,j] + a[i,k] * b[k,j] (of c or of a local row of it,
    # as lowering decides), inside loops i, k, j.o, j.i: store c, load c, load a, load b
    assert level(f, -1, "unit_stride_accesses") == 3 and level(f, -1, "invariant_accesses") == 1
    assert level(f, -3, "strided_accesses") == 1 and level(f, -3, "log_max_stride") == pytest.approx(math.log2(N + 1))
    assert level(f, -4, "log_min_stride") == pytest.approx(math.log2(K + 1))  # a moves a row per i
    # inside the k loop: a row of c, a row of a, all of b (4-byte floats)
    assert level(f, -3, "log_touched_bytes") == pytest.approx(math.log2(4 * (N + K + K * N) + 1))
    assert glob(f, "log_float_add") == glob(f, "log_float_mul") == pytest.approx(math.log2(M * K * N + 1))


def test_coefficients_follow_lets_and_tiling_arithmetic():
    i, j, t = Var("i"), Var("j"), Var("t")
    assert coefficients(i * 64 + j * 4 + 1, {}) == {i: 64, j: 4}
    assert coefficients(t * 2, {t: {i: 3.0}}) == {i: 6}
    assert coefficients((i * 8 + j) // 4, {}) == {i: 2, j: 0.25}


def test_featurizer_lowers_each_config_once_and_flags_invalid_ones():
    task = MatmulTask()
    space = ConfigSpace(task.space())
    featurizer = Featurizer(task, space, "loop")
    bad = space.index({"tile_j": 3, "inner": "serial", "parallel": True})
    indices = [0, 5, bad, 5, 0]
    before = task.lowered
    x, valid = featurizer(indices)
    assert task.lowered - before == 3 and x.shape == (5, LOOP_FEATURE_LENGTH)
    assert valid.tolist() == [True, True, False, True, True] and not x[2].any()
    featurizer(indices)
    assert task.lowered - before == 3


def test_knob_features_are_log_values_and_one_hots(task):
    space = ConfigSpace(task.space())
    f = knob_features(space, {"tile_j": 16, "inner": "unrolled", "parallel": False})
    # tile_j: log2(1+16), position 4 of 6; inner: one-hot of 3; parallel: one-hot of 2 (bools are categories)
    assert f.tolist() == pytest.approx([math.log2(17), 4 / 5, 0, 0, 1, 0, 1])
    assert Featurizer(task, space, "knob").length == len(f)
    with pytest.raises(ValueError, match="unknown feature kind"):
        Featurizer(task, space, "ast")


def test_loop_features_of_real_tasks():
    from ember.autotune.task import Task, target_key, workload_of
    from ember.ir import Graph
    from ember.ir.types import TensorType

    g = Graph()
    x = g.add_input("x", TensorType("float32", (1, 8, 14, 14)))
    w = g.add_constant(np.ones((8, 8, 3, 3), np.float32))
    a = g.add_input("a", TensorType("float32", (32, 48)))
    b = g.add_input("b", TensorType("float32", (48, 64)))
    conv = g.apply("Conv", [x, w], {"pads": [1, 1, 1, 1]})
    mm = g.apply("MatMul", [a, b])
    for value in (conv, mm):
        node = value.producer
        task = Task(workload_of(node), target_key("x86-64"), 1, node)
        f = loop_features(task.lower(task.defaults()))
        assert f.shape == (LOOP_FEATURE_LENGTH,) and np.isfinite(f).all()
        assert glob(f, "log_total_float_ops") > 10  # a few thousand multiply-adds at least
    # the GEMM template's knobs all show in the loop nest (block sizes beyond the panels there are
    # give the same nest)
    assert not knob_changes_unseen(task)


def test_loop_features_see_every_knob_of_the_blocked_convolution():
    from ember.autotune.task import extract_tasks
    from ember.ir import Graph
    from ember.ir.types import TensorType

    g = Graph()
    x = g.add_input("x", TensorType("float32", (1, 64, 8, 8)))
    w = g.add_constant(np.ones((256, 64, 1, 1), np.float32))
    g.set_outputs([g.apply("Conv", [x, w])])
    (task,) = [t for t in extract_tasks(g, "x86-64-v4") if t.node.op == "ConvNCHWc"]
    # its nest is nine loops deep (two of one iteration: the 1x1 window); the outermost (the
    # parallel rows, whose order is knob "outer") must still be described
    assert "outer" in task.space() and not knob_changes_unseen(task)


def knob_changes_unseen(task) -> list[dict]:
    """The one-knob changes of ``task``'s default config that give another loop nest (kernel text)
    but the same loop features."""
    space = ConfigSpace(task.space())
    default = space.index(task.defaults())
    featurizer = Featurizer(task, space, "loop")
    x, valid = featurizer([default, *space.neighbors(default)])
    assert valid[0] and valid.sum() >= len(space.knobs)
    default_text = str(task.lower(task.defaults()))
    return [space.config(i) for i, row, ok in zip(space.neighbors(default), x[1:], valid[1:])
            if ok and np.array_equal(row, x[0]) and str(task.lower(space.config(i))) != default_text]
