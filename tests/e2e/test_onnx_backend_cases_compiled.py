"""The onnx wheel's backend cases (pytorch-converted, pytorch-operator, simple), compiled natively."""

import pytest

import ember
from tests.e2e.test_onnx_backend_cases import CASES, check_case


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_backend_case_compiled(case):
    check_case(case, ember.compile)
