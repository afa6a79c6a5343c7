"""Index expressions evaluated over arrays of their variables' values."""

from __future__ import annotations

import numpy as np

from ember.ir.loops.evaluate import evaluate
from ember.ir.loops.expr import Load, Not, Var, const, logical_and
from ember.ir.loops.stmt import Buffer


def test_index_arithmetic_and_conditions_match_python_on_every_point():
    i, j = Var("i"), Var("j")
    grid_i, grid_j = np.meshgrid(np.arange(7), np.arange(5), indexing="ij")
    values = {i: grid_i, j: grid_j}
    cases = [  # (the expression, the same in Python)
        ((i * 5 + j) // 3 - j % 2, lambda a, b: (a * 5 + b) // 3 - b % 2),
        (logical_and((i * 5 + j) % 4 < 2, Not(i >= j)), lambda a, b: (a * 5 + b) % 4 < 2 and not a >= b),
    ]
    for expression, python in cases:
        got = evaluate(expression, values)
        want = np.vectorize(python)(grid_i, grid_j)
        np.testing.assert_array_equal(got, want, err_msg=repr(expression))


def test_anything_but_an_index_expression_has_no_value():
    i = Var("i")
    buffer = Buffer("a", "float32", (4,))
    assert evaluate(Load(buffer, i, "float32") > const(0.0, "float32"), {i: np.arange(4)}) is None
    assert evaluate(i + Var("n"), {i: np.arange(4)}) is None  # a variable without values
    assert evaluate(i // (i - i), {i: np.arange(4)}) is None  # a division by zero
