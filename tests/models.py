"""Test models: the onnx wheel's light models with random weights, and its backend test cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ember.examples import LIGHT_MODELS, light_model_path, onnx_test_data

BACKEND_SUITES = ("pytorch-converted", "pytorch-operator", "simple")


def randomize_weights(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """Replace every weight-building ConstantOfShape by random values.

    The light models build their weights as ``ConstantOfShape(0.02)``, so their
    outputs are uniform whatever the kernels do. Weights of rank >= 2 become
    normal values scaled by 1/sqrt(fan-in); vectors (biases, BatchNorm scale,
    mean and variance) become uniform in [0.5, 1.5], positive so variances stay valid.
    """
    rng = np.random.default_rng(seed)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    keep = []
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = tuple(int(d) for d in inits[node.input[0]])
            if len(shape) >= 2:
                values = rng.standard_normal(shape, dtype=np.float32) / np.float32(math.sqrt(math.prod(shape[1:])))
            else:
                values = rng.uniform(0.5, 1.5, shape)
            graph.initializer.append(numpy_helper.from_array(values.astype(np.float32), node.output[0]))
        else:
            keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)
    return model


def strip_final_softmax(model: onnx.ModelProto) -> onnx.ModelProto:
    """Make the input of the Softmax producing the graph output the new output (the logits).

    A model whose output is not a Softmax (DenseNet-121 ends in a Conv) already outputs logits.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    out = graph.output[0].name
    (softmax,) = [n for n in graph.node if out in n.output]
    if softmax.op_type != "Softmax":
        return model
    graph.node.remove(softmax)
    graph.output[0].name = softmax.input[0]
    graph.output[0].type.tensor_type.ClearField("shape")
    return model


def light_model(name: str) -> onnx.ModelProto:
    return onnx.load(str(light_model_path(name)))


def expected_light_output(name: str) -> np.ndarray:
    path = light_model_path(name).with_name(f"light_{name}_output_0.pb")
    return numpy_helper.to_array(onnx.load_tensor(str(path)))


def backend_cases() -> list[Path]:
    """Every test case directory of the backend suites shipped in the onnx wheel."""
    root = onnx_test_data()
    return sorted(p for suite in BACKEND_SUITES for p in (root / suite).iterdir() if (p / "model.onnx").exists())


def load_case(case: Path) -> tuple[onnx.ModelProto, list[tuple[list[np.ndarray], list[np.ndarray]]]]:
    """A backend case's model and its (inputs, expected outputs) data sets."""
    model = onnx.load(str(case / "model.onnx"))
    sets = []
    for data_dir in sorted(case.glob("test_data_set_*")):
        def read(prefix):
            files = sorted(data_dir.glob(f"{prefix}_*.pb"), key=lambda p: int(p.stem.split("_")[-1]))
            return [numpy_helper.to_array(onnx.load_tensor(str(f))) for f in files]
        sets.append((read("input"), read("output")))
    return model, sets


__all__ = ["LIGHT_MODELS", "randomize_weights", "strip_final_softmax", "light_model", "expected_light_output",
           "backend_cases", "load_case"]
