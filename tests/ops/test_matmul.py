"""MatMul, Gemm and Einsum against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember.ir.errors import ShapeError
from ember.ir.ops import get_op
from ember.ir.ops.matmul import einsum_shape, matmul_shape
from ember.ir.types import TensorType
from tests.ops.harness import check_node, ember_import_node

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SEEDS = st.integers(0, 2**32 - 1)
DIMS = st.one_of(st.integers(1, 6), st.just(0))  # mostly non-empty, sometimes 0
# float32 products are summed in a different order than onnxruntime's kernels.
TOLERANCE = {"float32": 1e-4, "float64": 1e-10, "float16": 5e-3}


def random_values(seed: int, shape, dtype: str) -> np.ndarray:
    """Seeded data in [-2, 2] (small integers for integer dtypes, so products stay exact)."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return np.asarray(rng.uniform(-2, 2, shape)).astype(dtype)
    return np.asarray(rng.integers(-2, 3, shape)).astype(dtype)


def check(op: str, inputs: list, attrs: dict | None = None, dtype: str = "float32"):
    tol = TOLERANCE.get(dtype, 0)
    return check_node(op, inputs, attrs, rtol=tol, atol=tol)


# ---------------------------------------------------------------- MatMul


@st.composite
def matmul_shapes(draw):
    """Two operand shapes that numpy matmul accepts: 1-D operands and broadcast batch dims included."""
    m, k, n = draw(DIMS), draw(DIMS), draw(DIMS)
    batch = draw(st.lists(st.integers(1, 3), max_size=3))

    def operand(core: tuple[int, ...]) -> tuple[int, ...]:
        # Each operand keeps a suffix of the batch dims, some of them squeezed to 1.
        own = batch[draw(st.integers(0, len(batch))):]
        return tuple(1 if draw(st.booleans()) else d for d in own) + core

    a = (k,) if draw(st.integers(0, 4)) == 0 else operand((m, k))
    b = (k,) if draw(st.integers(0, 4)) == 0 else operand((k, n))
    return a, b


@SETTINGS
@given(data=st.data())
def test_matmul(data):
    a, b = data.draw(matmul_shapes())
    dtype = data.draw(st.sampled_from(["float32", "float64", "int32", "int64"]))
    seed = data.draw(SEEDS)
    out = check("MatMul", [random_values(seed, a, dtype), random_values(seed + 1, b, dtype)], dtype=dtype)
    assert out[0].shape == matmul_shape(a, b) == np.matmul(np.zeros(a), np.zeros(b)).shape


@pytest.mark.parametrize("a,b", [((3, 4), (4, 5)), ((2, 1, 3, 8), (5, 8, 2)), ((7,), (7,)), ((7,), (2, 7, 3))])
def test_matmul_float16(a, b):
    check("MatMul", [random_values(0, a, "float16"), random_values(1, b, "float16")], dtype="float16")


@pytest.mark.parametrize("a,b,reason", [
    ((2, 3), (4, 5), "inner dimensions differ"),
    ((3,), (4,), "inner dimensions differ"),
    ((2, 2, 3), (3, 3, 4), "do not broadcast"),
])
def test_matmul_shape_errors(a, b, reason):
    with pytest.raises(ShapeError, match=reason):
        ember_import_node("MatMul", [np.zeros(a, np.float32), np.zeros(b, np.float32)])


def test_matmul_rejects_scalars_and_mixed_dtypes():
    matmul = get_op("MatMul")
    with pytest.raises(ShapeError, match="rank >= 1"):
        matmul.infer_types([TensorType("float32", ()), TensorType("float32", (3,))], {})
    with pytest.raises(ShapeError, match="different dtypes"):
        matmul.infer_types([TensorType("float32", (2, 3)), TensorType("float64", (3, 2))], {})
    with pytest.raises(ShapeError, match="dtype"):
        matmul.infer_types([TensorType("int8", (2, 3)), TensorType("int8", (3, 2))], {})


# ---------------------------------------------------------------- Gemm


def _c_shape(kind: str, m: int, n: int) -> tuple[int, ...] | None:
    return {"absent": None, "scalar": (), "one": (1,), "row": (n,), "row2d": (1, n), "col": (m, 1),
            "one2d": (1, 1), "full": (m, n)}[kind]


@SETTINGS
@given(data=st.data())
def test_gemm(data):
    draw = data.draw
    m, k, n = draw(DIMS), draw(DIMS), draw(DIMS)
    dtype = draw(st.sampled_from(["float32", "float64"]))
    attrs = {"transA": draw(st.integers(0, 1)), "transB": draw(st.integers(0, 1))}
    for name in ("alpha", "beta"):
        if draw(st.booleans()):
            attrs[name] = draw(st.sampled_from([0.0, 0.5, -1.25, 2.0]))
    seed = draw(SEEDS)
    a = random_values(seed, (k, m) if attrs["transA"] else (m, k), dtype)
    b = random_values(seed + 1, (n, k) if attrs["transB"] else (k, n), dtype)
    c_shape = _c_shape(draw(st.sampled_from(["absent", "scalar", "one", "row", "row2d", "col", "one2d", "full"])),
                       m, n)
    inputs = [a, b] if c_shape is None else [a, b, random_values(seed + 2, c_shape, dtype)]
    out = check("Gemm", inputs, attrs, dtype=dtype)
    assert out[0].shape == (m, n)


@pytest.mark.parametrize("trans_a", [0, 1])
@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_every_transpose_with_full_c(trans_a, trans_b):
    m, k, n = 3, 5, 4
    a = random_values(0, (k, m) if trans_a else (m, k), "float32")
    b = random_values(1, (n, k) if trans_b else (k, n), "float32")
    check("Gemm", [a, b, random_values(2, (m, n), "float32")],
          {"transA": trans_a, "transB": trans_b, "alpha": 0.5, "beta": 2.0})


def test_gemm_omitted_c_and_float16():
    a, b = random_values(0, (3, 5), "float16"), random_values(1, (5, 4), "float16")
    check("Gemm", [a, b, None], dtype="float16")
    check("Gemm", [a, b, random_values(2, (4,), "float16")], {"beta": 0.5}, dtype="float16")


@pytest.mark.parametrize("a,b,c,attrs,reason", [
    ((2, 3), (4, 5), None, {}, "inner dimensions differ"),
    ((3, 2), (3, 5), None, {}, "inner dimensions differ"),
    ((2, 3), (3, 5), (2,), {}, "does not broadcast"),
    ((2, 3), (3, 5), (3, 5), {}, "does not broadcast"),
    ((2, 3, 1), (3, 5), None, {}, "must be matrices"),
])
def test_gemm_shape_errors(a, b, c, attrs, reason):
    inputs = [np.zeros(a, np.float32), np.zeros(b, np.float32)] + ([] if c is None else [np.zeros(c, np.float32)])
    with pytest.raises(ShapeError, match=reason):
        ember_import_node("Gemm", inputs, attrs)


def test_gemm_rejects_integers_and_bad_flags():
    gemm = get_op("Gemm")
    ints = [TensorType("int32", (2, 3)), TensorType("int32", (3, 2))]
    with pytest.raises(ShapeError, match="dtype"):
        gemm.infer_types(ints, gemm.normalize_attrs({}))
    floats = [TensorType("float32", (2, 3)), TensorType("float32", (3, 2))]
    with pytest.raises(ShapeError, match="transA"):
        gemm.infer_types(floats, gemm.normalize_attrs({"transA": 2}))


# ---------------------------------------------------------------- Einsum

# (equation, operand subscripts used to draw shapes: one letter per dim, "." for a broadcast dim)
EQUATIONS = [
    ("ij,jk->ik", ["ij", "jk"]),
    ("ij,jk", ["ij", "jk"]),  # implicit output: ik
    ("bij,bjk->bik", ["bij", "bjk"]),
    ("bhqd,bhkd->bhqk", ["bhqd", "bhkd"]),  # attention scores
    ("bhqk,bhkd->bhqd", ["bhqk", "bhkd"]),
    ("...ij,...jk->...ik", ["..ij", "..jk"]),  # broadcast batch dims (onnxruntime wants equal ranks)
    ("ii->i", ["ii"]),  # diagonal
    ("ii", ["ii"]),  # trace
    ("ij->", ["ij"]),
    ("ij->ji", ["ij"]),
    ("i,i", ["i", "i"]),  # dot product
    ("i,j->ij", ["i", "j"]),  # outer product
    ("ij, jk, kl -> il", ["ij", "jk", "kl"]),  # spaces and three operands
    ("abc->cba", ["abc"]),
    ("bn,anm,bm->ba", ["bn", "anm", "bm"]),  # bilinear
]


def einsum_inputs(data, terms: list[str], sizes: dict[str, int], dtype: str) -> list:
    """Random operands for Einsum ``terms`` with label ``sizes``: "..." takes up to two
    right-aligned broadcast dims (drawn), some squeezed to 1."""
    seed = data.draw(SEEDS)
    batch = [data.draw(st.integers(1, 3)) for _ in range(2)]
    inputs = []
    for i, term in enumerate(terms):
        dots = batch[len(batch) - term.count("."):]
        dots = [1 if data.draw(st.booleans()) else d for d in dots]
        shape = tuple(dots) + tuple(sizes[label] for label in term.replace(".", ""))
        inputs.append(random_values(seed + i, shape, dtype))
    return inputs


@pytest.mark.parametrize("equation,terms", EQUATIONS, ids=[e for e, _ in EQUATIONS])
@settings(max_examples=8, deadline=None, derandomize=True)
@given(data=st.data())
def test_einsum(equation, terms, data):
    labels = sorted(set("".join(terms)) - {"."})
    sizes = {label: data.draw(st.integers(1, 4)) for label in labels}
    dtype = data.draw(st.sampled_from(["float32", "float64", "int64"]))
    inputs = einsum_inputs(data, terms, sizes, dtype)
    out = check("Einsum", inputs, {"equation": equation}, dtype=dtype)
    assert out[0].shape == einsum_shape(equation, [x.shape for x in inputs])


def test_einsum_size_one_labels_broadcast():
    a, b = random_values(0, (1, 2, 3), "float32"), random_values(1, (5, 3, 4), "float32")
    assert einsum_shape("bij,bjk->bik", [a.shape, b.shape]) == (5, 2, 4)
    np.testing.assert_allclose(
        get_op("Einsum").run_reference([a, b], {"equation": "bij,bjk->bik"})[0], np.einsum("bij,bjk->bik", a, b),
        rtol=1e-6)


def test_einsum_empty_dims():
    a, b = np.zeros((0, 3), np.float32), np.zeros((3, 2), np.float32)
    check("Einsum", [a, b], {"equation": "ij,jk->ik"})
    check("Einsum", [np.zeros((2, 0), np.float32), np.zeros((0, 3), np.float32)], {"equation": "ij,jk->ik"})


@pytest.mark.parametrize("equation,shapes,reason", [
    ("ij,jk->ik", [(2, 3), (4, 5)], "sizes 3 and 4"),
    ("ij,jk->ik", [(2, 3)], "2 operands"),
    ("ijk->ik", [(2, 3)], "name 3 dims"),
    ("ij->ix", [(2, 3)], "no input has"),
    ("ij->ii", [(2, 3)], "repeat a label"),
    ("...ij->ij", [(4, 2, 3)], "need '...'"),
    ("i1->i", [(2, 3)], "must be letters"),
])
def test_einsum_errors(equation, shapes, reason):
    with pytest.raises(ShapeError, match=reason):
        einsum_shape(equation, shapes)
