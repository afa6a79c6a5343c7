"""MatMul, Gemm and Einsum compiled to native code, against ember's reference.

Besides shapes and attributes, the cases cover the ways a contraction is
lowered (see ``ember.ir.ops.matmul.contraction``): the packed, register-blocked
template for matrix products of at least four rows (any layout, ragged edges),
loops ``i, k, j`` when the innermost output dim is an operand's last dim, lanes
of partial sums for a dot product along memory (a row times a transposed B,
with and without a tail), and a copy of an operand with the innermost output
dim moved last.
"""

from __future__ import annotations

import numpy as np
import pytest
from ember.ir.ops.matmul import LANES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ops.harness import COMPILE_TARGETS, Const, check_compiled
from tests.ops.test_matmul import (
    DIMS,
    EQUATIONS,
    SEEDS,
    _c_shape,
    einsum_inputs,
    matmul_shapes,
    random_values,
)

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TARGETS = st.sampled_from(COMPILE_TARGETS)
DTYPES = ["float32", "float64", "float16", "int32", "int64"]
# K values around the lane count: below it, whole groups of lanes, and a tail
LONG_K = st.sampled_from([2 * LANES - 1, 2 * LANES, 3 * LANES + 5])


def tolerance(dtype: str) -> dict:
    return {"rtol": 5e-3, "atol": 5e-3} if dtype == "float16" else {"rtol": 1e-4, "atol": 1e-5}


# ---------------------------------------------------------------- MatMul


@SETTINGS
@given(data=st.data())
def test_matmul(data):
    a, b = data.draw(matmul_shapes())
    dtype = data.draw(st.sampled_from(DTYPES))
    seed = data.draw(SEEDS)
    check_compiled("MatMul", [random_values(seed, a, dtype), random_values(seed + 1, b, dtype)],
                   targets=[data.draw(TARGETS)], **tolerance(dtype))


@pytest.mark.parametrize("a,b", [((1, 70), (70, 9)), ((5, 64, 3), (3, 48)), ((70,), (70,)), ((2, 3, 70), (70,)),
                                 ((64,), (2, 64, 5))])
def test_matmul_longer_operands(a, b):
    for dtype in ("float32", "int64"):
        check_compiled("MatMul", [random_values(0, a, dtype), random_values(1, b, dtype)], targets=COMPILE_TARGETS,
                       **tolerance(dtype))


def test_matmul_constant_weights():
    x, w = random_values(0, (4, 40), "float32"), random_values(1, (40, 24), "float32")
    check_compiled("MatMul", [x, Const(w)], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- Gemm


@SETTINGS
@given(data=st.data())
def test_gemm(data):
    draw = data.draw
    m, n = draw(DIMS), draw(DIMS)
    k = draw(st.one_of(DIMS, LONG_K))
    dtype = draw(st.sampled_from(["float32", "float64", "float16"]))
    attrs = {"transA": draw(st.integers(0, 1)), "transB": draw(st.integers(0, 1))}
    for name in ("alpha", "beta"):
        if draw(st.booleans()):
            attrs[name] = draw(st.sampled_from([0.0, 0.5, -1.25, 2.0]))
    seed = draw(SEEDS)
    a = random_values(seed, (k, m) if attrs["transA"] else (m, k), dtype)
    b = random_values(seed + 1, (n, k) if attrs["transB"] else (k, n), dtype)
    c_shape = _c_shape(draw(st.sampled_from(["absent", "one", "row", "row2d", "col", "one2d", "full"])), m, n)
    inputs = [a, b] if c_shape is None else [a, b, random_values(seed + 2, c_shape, dtype)]
    check_compiled("Gemm", inputs, attrs, targets=[draw(TARGETS)], **tolerance(dtype))


@pytest.mark.parametrize("trans_a", [0, 1])
@pytest.mark.parametrize("trans_b", [0, 1])
# the last: the packed template with k in two blocks and the epilogue stored from the last one
@pytest.mark.parametrize("m,k,n", [(1, 2 * LANES + 3, 7), (3, 4 * LANES, 5), (20, 40, 3), (2, 5, 3), (37, 300, 29)])
def test_gemm_every_transpose(trans_a, trans_b, m, k, n):
    a = random_values(0, (k, m) if trans_a else (m, k), "float32")
    b = random_values(1, (n, k) if trans_b else (k, n), "float32")
    check_compiled("Gemm", [a, Const(b), Const(random_values(2, (n,), "float32"))],
                   {"transA": trans_a, "transB": trans_b, "alpha": 0.5, "beta": 2.0}, targets=COMPILE_TARGETS,
                   rtol=1e-4, atol=1e-5)


def test_gemm_scalar_c_and_beta_zero_ignores_nan():
    a, b = random_values(0, (3, 5), "float32"), random_values(1, (5, 4), "float32")
    check_compiled("Gemm", [a, b, Const(np.array(1.5, np.float32))], {"alpha": 2.0}, rtol=1e-5)
    out = check_compiled("Gemm", [a, b, np.full((3, 4), np.nan, np.float32)], {"beta": 0.0}, rtol=1e-5)
    assert np.isfinite(out[0]).all()


def test_gemm_fully_connected_layer():
    """The classifier of ResNet-50 as exported from PyTorch (transB=1, batch 1)."""
    x = random_values(0, (1, 2048), "float32")
    w, bias = random_values(1, (1000, 2048), "float32"), random_values(2, (1000,), "float32")
    check_compiled("Gemm", [x, Const(w), Const(bias)], {"transB": 1}, targets=COMPILE_TARGETS, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- Einsum


@pytest.mark.parametrize("equation,terms", EQUATIONS, ids=[e for e, _ in EQUATIONS])
@settings(SETTINGS, max_examples=6)
@given(data=st.data())
def test_einsum(equation, terms, data):
    labels = sorted(set("".join(terms)) - {"."})
    sizes = {label: data.draw(st.one_of(st.integers(1, 4), st.just(0))) for label in labels}
    long = data.draw(st.sampled_from(labels + [None]))  # at most one long label keeps products small
    if long:
        sizes[long] = data.draw(LONG_K)
    dtype = data.draw(st.sampled_from(DTYPES))
    inputs = einsum_inputs(data, terms, sizes, dtype)
    check_compiled("Einsum", inputs, {"equation": equation}, targets=[data.draw(TARGETS)], **tolerance(dtype))


@pytest.mark.parametrize("equation,shapes", [
    ("bhqd,bhkd->bhqk", [(1, 2, 3, 2 * LANES + 1), (1, 2, 5, 2 * LANES + 1)]),  # lanes with a tail
    ("bhqd,bhkd->bhqk", [(2, 2, 30, 8), (2, 2, 50, 8)]),  # short d: a moved copy
    ("ki,jk->ij", [(9, 4), (6, 9)]),  # moved copy of B
    ("ij,kj->ik", [(3, 1), (4, 40)]),  # a broadcast dim of 1 in the contracted label
    ("i,i->", [(100,), (100,)]),
])
def test_einsum_lowering_paths(equation, shapes):
    inputs = [random_values(n, s, "float32") for n, s in enumerate(shapes)]
    check_compiled("Einsum", inputs, {"equation": equation}, targets=COMPILE_TARGETS, rtol=1e-4, atol=1e-5)
