"""Checking one op against onnxruntime: build a one-node ONNX model, run both, compare.

onnxruntime is the oracle (not ``onnx.reference``, which gets some old-opset
semantics wrong). Inputs are arrays (graph inputs), :class:`Const` (initializers,
for the inputs ember takes as attributes) or ``None`` (an omitted optional input).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

import ember
from ember.runtime import ReferenceModule


@dataclass
class Const:
    """An input that is a constant (initializer) of the one-node model."""

    array: np.ndarray


def make_node_model(op_type: str, inputs: Sequence[Any], attrs: dict | None = None, *, opset: int = 21,
                    num_outputs: int = 1) -> onnx.ModelProto:
    """A model with one ``op_type`` node whose inputs are ``inputs`` (see the module docstring)."""
    names, graph_inputs, initializers = [], [], []
    for i, item in enumerate(inputs):
        if item is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        if isinstance(item, Const):
            initializers.append(numpy_helper.from_array(np.asarray(item.array), name))
        else:
            array = np.asarray(item)
            elem = helper.np_dtype_to_tensor_dtype(array.dtype)
            graph_inputs.append(helper.make_tensor_value_info(name, elem, array.shape))
    outputs = [f"out{i}" for i in range(num_outputs)]
    node = helper.make_node(op_type, names, outputs, **(attrs or {}))
    graph = helper.make_graph([node], f"test_{op_type}", graph_inputs,
                              [helper.make_empty_tensor_value_info(o) for o in outputs], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 19 else 10
    return model


def _feeds(inputs: Sequence[Any]) -> dict[str, np.ndarray]:
    return {f"in{i}": np.asarray(x) for i, x in enumerate(inputs) if x is not None and not isinstance(x, Const)}


def run_ort(op_type: str, inputs: Sequence[Any], attrs: dict | None = None, *, opset: int = 21,
            num_outputs: int = 1) -> list[np.ndarray]:
    """The node's outputs computed by onnxruntime (CPU, one thread)."""
    import onnxruntime as ort

    model = make_node_model(op_type, inputs, attrs, opset=opset, num_outputs=num_outputs)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, _feeds(inputs))


def ember_import_node(op_type: str, inputs: Sequence[Any], attrs: dict | None = None, *, opset: int = 21,
                      num_outputs: int = 1) -> ember.ir.Graph:
    """The one-node model imported into ember (verified), without running it."""
    return ember.load_graph(make_node_model(op_type, inputs, attrs, opset=opset, num_outputs=num_outputs))


def run_ember(op_type: str, inputs: Sequence[Any], attrs: dict | None = None, *, opset: int = 21,
              num_outputs: int = 1) -> list[np.ndarray]:
    """The node's outputs computed by ember's reference executor."""
    graph = ember_import_node(op_type, inputs, attrs, opset=opset, num_outputs=num_outputs)
    return ReferenceModule(graph).run(_feeds(inputs))


def assert_same(actual: np.ndarray, expected: np.ndarray, *, rtol: float = 1e-5, atol: float = 1e-6,
                what: str = "output") -> None:
    """Same dtype and shape, and allclose (exact for integers and bools, NaNs equal)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != expected {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    if actual.dtype.kind in "fc":
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


def check_node(op_type: str, inputs: Sequence[Any], attrs: dict | None = None, *, opset: int = 21,
               num_outputs: int = 1, rtol: float = 1e-5, atol: float = 1e-6) -> list[np.ndarray]:
    """Assert ember's reference matches onnxruntime on one node; return ember's outputs."""
    expected = run_ort(op_type, inputs, attrs, opset=opset, num_outputs=num_outputs)
    actual = run_ember(op_type, inputs, attrs, opset=opset, num_outputs=num_outputs)
    assert len(actual) == len(expected), f"{len(actual)} outputs, onnxruntime gives {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert_same(a, e, rtol=rtol, atol=atol, what=f"{op_type} output {i}")
    return actual


# Targets every compiled op is checked on: this CPU, and plain x86-64 (SSE2 only).
COMPILE_TARGETS = ("host", "x86-64")


def check_compiled(op_type: str, inputs: Sequence[Any], attrs: dict | None = None, *, opset: int = 21,
                   num_outputs: int = 1, rtol: float = 1e-5, atol: float = 1e-6,
                   targets: Sequence[str] = ("host",)) -> list[np.ndarray]:
    """Assert the compiled node matches ember's reference on each target; return the compiled outputs.

    Integer and boolean outputs must be equal; float outputs allclose. The
    reference itself is checked against onnxruntime by :func:`check_node`.
    """
    graph = ember_import_node(op_type, inputs, attrs, opset=opset, num_outputs=num_outputs)
    feeds = _feeds(inputs)
    expected = ReferenceModule(graph).run(feeds)
    actual: list[np.ndarray] = []
    for target in targets:
        module = ember.compile(graph, target=target)
        actual = module.run(feeds)
        assert len(actual) == len(expected)
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, rtol=rtol, atol=atol, what=f"compiled {op_type} output {i} ({target})")
    return actual
