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
