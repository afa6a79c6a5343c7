"""Reductions along a contiguous last axis, accumulated in lane-partial results (ir/ops/reduce.py,
``PARTIAL_LANES``): Reduce*, ArgMax, the softmax family and LayerNormalization on shapes that take
that path, against ember's reference on this CPU and on plain x86-64; the schedule's knobs."""

from __future__ import annotations

import numpy as np
import pytest
from ember.codegen.run import compile_kernel
from ember.codegen.target import Target
from ember.ir.loops.knobs import Knobs
from ember.ir.loops.printer import print_kernel
from ember.ir.ops.reduce import PARTIAL_LANES
from ember.runtime import ReferenceModule
from ember.runtime.build import lower_node

from tests.ops.harness import (
    COMPILE_TARGETS,
    Const,
    assert_same,
    check_compiled,
    ember_import_node,
)
from tests.ops.test_reduce import random_values, tied_values
from tests.ops.test_reduce_compiled import with_specials

LONG = 3 * PARTIAL_LANES  # a last axis of whole groups of lanes


@pytest.mark.parametrize("op, dtype", [("ReduceSum", "float32"), ("ReduceMean", "float64"), ("ReduceMax", "float32"),
                                       ("ReduceMin", "int8"), ("ReduceSumSquare", "int32"),
                                       ("ReduceLogSumExp", "float32"), ("ReduceL2", "float32")])
@pytest.mark.parametrize("axes, keepdims", [((2,), 1), ((2,), 0), ((1, 2), 0), ((0, 2), 1)])
def test_reduce_last_axis_in_lanes(op, dtype, axes, keepdims):
    x = random_values(3, (2, 3, LONG), dtype, -4, 4)
    check_compiled(op, [x, Const(np.array(axes, np.int64))], {"keepdims": keepdims}, targets=COMPILE_TARGETS,
                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceSum"])
def test_reduce_in_lanes_propagates_nan_and_infinities(op):
    x = with_specials(4, random_values(4, (6, LONG), "float32"), share=0.02)
    check_compiled(op, [x, Const(np.array([1], np.int64))], targets=COMPILE_TARGETS)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("last", [0, 1])
def test_arg_extreme_in_lanes_picks_first_or_last_tie(op, last):
    x = tied_values(5, (4, 2 * PARTIAL_LANES), "float32")
    check_compiled(op, [x], {"axis": -1, "select_last_index": last}, targets=COMPILE_TARGETS)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [-1, 1])
def test_softmax_in_lanes(op, axis):
    x = random_values(6, (2, LONG, LONG), "float32", -30, 30)
    x[0, 0, :] = -np.inf
    x[0, 0, 5] = 1.0  # one finite entry in a row of -inf
    x[1, 2, 7] = np.inf
    x[1, 3, 9] = np.nan
    check_compiled(op, [x], {"axis": axis}, targets=COMPILE_TARGETS)


def test_layer_norm_in_lanes():
    x = random_values(7, (3, 4, LONG), "float32", -5, 5) + 100.0  # a large mean: centered squares matter
    scale, bias = random_values(8, (LONG,), "float32"), random_values(9, (LONG,), "float32")
    check_compiled("LayerNormalization", [x, scale, bias], {"axis": -1}, targets=COMPILE_TARGETS,
                   rtol=1e-4, atol=1e-4)
    check_compiled("LayerNormalization", [x, random_values(8, (4, LONG), "float32")], {"axis": -2},
                   targets=COMPILE_TARGETS, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op", ["InstanceNormalization", "MeanVarianceNormalization"])
def test_statistics_norms_in_lanes(op):
    x = random_values(11, (2, 3, 4, 2 * PARTIAL_LANES), "float32", -5, 5)
    inputs = [x] if op == "MeanVarianceNormalization" else [x, random_values(12, (3,), "float32"),
                                                             random_values(13, (3,), "float32")]
    check_compiled(op, inputs, targets=COMPILE_TARGETS, rtol=1e-4, atol=1e-4)


def _softmax_node():
    x = random_values(10, (4, 8, LONG), "float32", -10, 10)
    graph = ember_import_node("Softmax", [x], {"axis": -1})
    return graph, x


def test_softmax_accumulates_vectorized_lanes():
    """The partial stages accumulate in a local tile, their lane loop vectorized; the output is vectorized."""
    graph, _ = _softmax_node()
    text = print_kernel(lower_node(graph.nodes[0], Target.host(), "softmax"))
    assert "allocate peak_partial.acc: f32[16]" in text and "allocate total_partial.acc: f32[16]" in text
    assert "for vectorized (peak_partial_i3, 0, 16)" in text
    assert "for vectorized (softmax_i2, 0, 48)" in text


@pytest.mark.parametrize("config", [{}, {"parallel": False, "partials_in_registers": False, "vector_chunk": 16},
                                    {"parallel": True, "partials_in_registers": False, "vector_chunk": 1}])
def test_reduction_schedule_knobs(config):
    graph, x = _softmax_node()
    (expected,) = ReferenceModule(graph).run({graph.inputs[0].name: x})
    knobs = Knobs(config)
    kernel = lower_node(graph.nodes[0], Target.host(), "softmax", knobs)
    assert {"parallel", "partials_in_registers", "vector_chunk"} <= set(knobs.space)
    (actual,) = compile_kernel(kernel)(x)
    assert_same(actual, expected, rtol=1e-5, atol=1e-6)
