"""The onnx wheel's backend cases (pytorch-converted, pytorch-operator, simple), compiled natively."""

import numpy as np
import pytest

import ember
from tests.e2e.test_onnx_backend_cases import CASES, OUT_OF_SCOPE, _ops, graph_inputs, shape_operands
from tests.models import load_case


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_backend_case_compiled(case):
    model, data_sets = load_case(case)
    out_of_scope = _ops(model) & OUT_OF_SCOPE
    if out_of_scope:
        pytest.skip(f"uses ops outside ember's scope: {', '.join(sorted(out_of_scope))}")
    for inputs, expected in data_sets:
        feeds = dict(zip(graph_inputs(model), inputs))
        bound = shape_operands(model)
        module = ember.compile(model, input_values={k: v for k, v in feeds.items() if k in bound})
        outputs = module.run({k: v for k, v in feeds.items() if k not in bound})
        assert len(outputs) == len(expected)
        for actual, want in zip(outputs, expected):
            assert actual.dtype == want.dtype and actual.shape == want.shape
            np.testing.assert_allclose(actual, want, rtol=1e-3, atol=1e-5)
