"""The onnx wheel's pytorch-converted, pytorch-operator and simple cases, in the reference executor.

A case may only be left out when its model uses an op ember deliberately does
not support (sequences, strings, training); any other import error, and any
wrong output, fails.
"""

import numpy as np
import onnx
import pytest

import ember
from ember.frontend.onnx import INPUT_ATTRS
from tests.models import backend_cases, load_case

# Ops outside ember's scope: sequence types, strings, training-only ops.
OUT_OF_SCOPE = {
    "SequenceConstruct", "SequenceAt", "SequenceEmpty", "SequenceErase", "SequenceInsert", "SequenceLength",
    "SplitToSequence", "ConcatFromSequence", "StringNormalizer", "Gradient",
}

CASES = backend_cases()


def graph_inputs(model: onnx.ModelProto) -> list[str]:
    inits = {t.name for t in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits]


def shape_operands(model: onnx.ModelProto) -> set[str]:
    """Graph inputs that feed operands ember needs at compile time (shapes, axes, pads)."""
    return {n.input[i] for n in model.graph.node for i in INPUT_ATTRS.get(n.op_type, {}) if i < len(n.input)}


def _ops(model: onnx.ModelProto) -> set[str]:
    return {n.op_type for n in model.graph.node}


def check_case(case, build) -> None:
    """Run a backend case through ``build`` (ember.reference or ember.compile) and compare outputs.

    Inputs that feed shape operands are fixed with ``input_values``; a model
    using an out-of-scope op must be refused with UnsupportedOpError, then skipped.
    """
    model, data_sets = load_case(case)
    out_of_scope = _ops(model) & OUT_OF_SCOPE
    if out_of_scope:
        with pytest.raises(ember.UnsupportedOpError):
            build(model)
        pytest.skip(f"uses ops outside ember's scope: {', '.join(sorted(out_of_scope))}")
    assert data_sets, "case has no data"
    for inputs, expected in data_sets:
        feeds = dict(zip(graph_inputs(model), inputs))
        bound = shape_operands(model)
        module = build(model, input_values={k: v for k, v in feeds.items() if k in bound})
        outputs = module.run({k: v for k, v in feeds.items() if k not in bound})
        assert len(outputs) == len(expected)
        for actual, want in zip(outputs, expected):
            assert actual.dtype == want.dtype and actual.shape == want.shape
            np.testing.assert_allclose(actual, want, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_backend_case(case):
    check_case(case, ember.reference)


def test_suite_is_present():
    assert len(CASES) >= 100, "the onnx wheel's backend cases were not found"
