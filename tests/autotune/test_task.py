"""Task extraction: distinct workloads with weights, Fused groups keyed by their anchor, knob spaces, flops."""

from __future__ import annotations

import json

import numpy as np

import ember
from ember.autotune.task import extract_tasks, target_key, workload_of
from ember.codegen.run import compile_kernel
from ember.ir import Graph, TensorType

from .workloads import MIXED, ONE_RELU, write_model


def test_tasks_are_distinct_workloads_with_weights(tmp_path):
    tasks = extract_tasks(write_model(tmp_path, MIXED))
    by_shapes = {(t.workload["op"], json.dumps(t.workload["shapes"])): t for t in tasks}
    assert len(by_shapes) == len(tasks), "workloads are deduplicated"
    relu = by_shapes["Relu", "[[8, 64]]"]
    assert relu.weight == 2
    assert tasks[0] is relu, "most frequent first"
    # the Add+Relu group is a Fused node whose workload is its anchor's (the Relu)
    fused = by_shapes["Relu", "[[4, 32]]"]
    assert fused.node.op == "Fused" and fused.weight == 1
    assert all(t.space_size() > 1 for t in tasks)
    assert all(t.target == target_key("host") for t in tasks)
    for t in tasks:
        assert json.loads(json.dumps(t.workload)) == t.workload, "workloads are plain JSON"


def test_fused_workload_is_its_anchor_convolution():
    graph = Graph("g")
    x = graph.add_input("x", TensorType("float32", (1, 3, 8, 8)))
    w = graph.add_constant(np.ones((4, 3, 3, 3), np.float32))
    conv = graph.apply("Conv", [x, w], {"pads": [1, 1, 1, 1]})
    graph.set_outputs([graph.apply("Relu", [conv])])
    optimized, _ = ember.api.optimized_graph(graph)
    (fused,) = [n for n in optimized.nodes if n.op == "Fused"]
    workload = workload_of(fused)
    assert workload["op"] == "Conv"
    assert workload["shapes"] == [[1, 3, 8, 8], [4, 3, 3, 3]]
    assert workload["attrs"]["pads"] == [1, 1, 1, 1]


def test_lowering_a_config_changes_the_loops_not_the_answer(tmp_path):
    (task,) = extract_tasks(write_model(tmp_path, ONE_RELU))
    assert task.space() == {"vector_chunk": (1, 2, 4, 8, 16, 32, 64), "parallel": (True, False)}
    assert task.defaults() == {"vector_chunk": 64, "parallel": True}
    x = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)
    config = {"vector_chunk": 8, "parallel": False}
    kernel = task.lower(config)
    text = str(kernel)
    assert ".o" in text and "parallel" not in text, text
    assert "parallel" in str(task.lower(task.defaults()))
    (y,) = compile_kernel(kernel)(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))


def test_flops_count_the_loop_nest(tmp_path):
    tasks = {t.workload["op"] + str(t.workload["shapes"]): t for t in extract_tasks(write_model(tmp_path, MIXED))}
    assert tasks["MatMul[[4, 32], [32, 64]]"].flops() == 2 * 4 * 32 * 64  # one multiply-add per (i, j, k)
    assert tasks["Relu[[8, 64]]"].flops() == 8 * 64  # one max per element
    assert tasks["Relu[[4, 32]]"].flops() == 2 * 4 * 32  # the fused kernel: an add and a max per element


def test_every_config_sees_the_same_space(tmp_path):
    """A knob's options depend on shapes and target only, never on other knobs' values."""
    import random

    from ember.ir.loops.knobs import Knobs
    from ember.runtime.build import lower_node

    rng = random.Random(0)
    for task in extract_tasks(write_model(tmp_path, MIXED)):
        space = task.space()
        for _ in range(8):
            knobs = Knobs({name: rng.choice(options) for name, options in space.items()})
            lower_node(task.node, task.compile_target or ember.codegen.target.as_target("host"), "k", knobs)
            assert knobs.space == space, task.workload


def test_flops_of_guarded_code_count_the_iterations_that_take_it():
    from ember.autotune.task import kernel_flops
    from ember.ir.loops.expr import Load, Var, const
    from ember.ir.loops.stmt import Buffer, For, If, Kernel, Store

    a, out = Buffer("a", "float32", (18,)), Buffer("out", "float32", (18,))
    i, j = Var("i"), Var("j")
    flat = i * 3 + j
    twice = Store(out, flat, Load(a, flat, "float32") * const(2.0, "float32"))  # 1 flop
    square_plus = Store(out, flat, Load(a, flat, "float32") * Load(a, flat, "float32") + const(1.0, "float32"))  # 2

    def kernel(body):
        return Kernel("k", [a, out], For(i, 6, For(j, 3, body)), 1, 1)

    # a ragged tile: 6 tiles of 3 cover 16 rows, two of the 18 iterations are guarded off
    assert kernel_flops(kernel(If(flat < 16, twice))) == 16
    assert kernel_flops(kernel(If(flat < 16, twice, square_plus))) == 16 * 1 + 2 * 2
    # nested guards: the inner one counts among the iterations the outer one lets through
    assert kernel_flops(kernel(If(flat < 16, If(j < 1, square_plus, twice)))) == 6 * 2 + 10 * 1
    # a guard on data has no count: both branches count as always taken
    data_guard = Load(a, flat, "float32") > const(0.0, "float32")
    assert kernel_flops(kernel(If(data_guard, twice, square_plus))) == 18 * 3


def test_flops_of_a_matrix_product_are_the_same_for_every_tiling():
    """Ragged tiles (a guard on rows past the end) no longer count the padding as work."""
    from ember.autotune.space import ConfigSpace
    from ember.autotune.task import kernel_flops

    graph = Graph("g")
    x = graph.add_input("x", TensorType("float32", (20, 48)))
    w = graph.add_constant(np.ones((48, 64), np.float32), "w")
    graph.set_outputs([graph.apply("MatMul", [x, w])])
    (task,) = [t for t in extract_tasks(graph) if "MatMul" in t.workload["op"]]
    single_k = [c for c in ConfigSpace(task.space()) if c.get("tile_k", 48) == 48]
    assert single_k, task.space()
    counts = {kernel_flops(task.lower(c)) for c in single_k[:200]}
    assert counts == {2 * 20 * 48 * 64}, counts
