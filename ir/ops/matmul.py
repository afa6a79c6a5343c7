"""Matrix products: MatMul, Gemm and Einsum (all OUT_FUSABLE).

* ``MatMul``: numpy ``matmul`` semantics: 1-D operands get a dimension
  prepended (left) or appended (right) that the result drops again, and the
  batch dimensions broadcast.
* ``Gemm``: ``alpha * A' @ B' + beta * C`` with ``A'``/``B'`` optionally
  transposed (``transA``/``transB``) and ``C`` optional, unidirectionally
  broadcastable to ``(M, N)``.
* ``Einsum``: numpy's Einstein summation (``equation`` as in ONNX: explicit
  ``->`` output or the implicit alphabetical one, ``...`` for broadcast dims).

float16 products accumulate in float32 and round once at the end.
"""

from __future__ import annotations

import string

import numpy as np

from ..types import FLOAT_DTYPES, TensorType
from .common import broadcast_shapes, expect_dtype, expect_float, require, same_dtype
from .registry import Float, Fusion, Int, Str, define

# ONNX's MatMul/Einsum types restricted to ember's dtypes (and to what onnxruntime runs).
_MATMUL_DTYPES = FLOAT_DTYPES | {"int32", "int64"}


def _accumulate_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype products are summed in: float16 widens to float32."""
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _widen(arrays: list[np.ndarray]) -> list[np.ndarray]:
    return [a.astype(_accumulate_dtype(a.dtype), copy=False) for a in arrays]


# ---------------------------------------------------------------- MatMul


def matmul_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of ``np.matmul`` of shapes ``a`` and ``b``; raises ShapeError.

    >>> matmul_shape((2, 1, 3, 4), (5, 4, 6))
    (2, 5, 3, 6)
    >>> matmul_shape((4,), (4, 6))
    (6,)
    """
    require(len(a) >= 1 and len(b) >= 1, f"operands must have rank >= 1, got shapes {a} and {b}")
    a2 = (1,) + a if len(a) == 1 else a  # a vector on the left is a row
    b2 = b + (1,) if len(b) == 1 else b  # a vector on the right is a column
    require(a2[-1] == b2[-2], f"inner dimensions differ: {a} @ {b} contracts {a2[-1]} with {b2[-2]}")
    batch = broadcast_shapes(a2[:-2], b2[:-2])
    rows = () if len(a) == 1 else (a2[-2],)
    cols = () if len(b) == 1 else (b2[-1],)
    return batch + rows + cols


def _matmul_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    """MatMul: both operands of one dtype; the shape of :func:`matmul_shape`."""
    a, b = types
    dtype = same_dtype(types)
    expect_dtype(a, _MATMUL_DTYPES)
    return [TensorType(dtype, matmul_shape(a.shape, b.shape))]


def _matmul_reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    a, b = arrays
    return [np.asarray(np.matmul(*_widen(arrays))).astype(a.dtype, copy=False)]


define("MatMul", infer=_matmul_infer, reference=_matmul_reference, inputs=2, fusion=Fusion.OUT_FUSABLE,
       doc="Matrix product with numpy matmul semantics (1-D operands, broadcast batch dimensions).")


# ---------------------------------------------------------------- Gemm

_GEMM_ATTRS = {"alpha": Float(1.0), "beta": Float(1.0), "transA": Int(0), "transB": Int(0)}


def _gemm_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    """Gemm: (M, K) x (K, N) -> (M, N) after the optional transposes; C broadcasts to (M, N)."""
    a, b = types[:2]
    dtype = same_dtype(types)
    # ONNX also lists integer Gemm, but onnxruntime has no kernel for it and
    # the meaning of float alpha/beta on integers is unspecified.
    expect_float(a)
    for flag in ("transA", "transB"):
        require(attrs[flag] in (0, 1), f"{flag} must be 0 or 1, got {attrs[flag]}")
    require(a.rank == 2 and b.rank == 2, f"A and B must be matrices, got shapes {a.shape} and {b.shape}")
    m, k = a.shape[::-1] if attrs["transA"] else a.shape
    k2, n = b.shape[::-1] if attrs["transB"] else b.shape
    require(k == k2, f"inner dimensions differ: A' is {m}x{k}, B' is {k2}x{n}")
    if len(types) == 3:
        c = types[2]
        # Unidirectional: C stretches to (M, N), never the other way round.
        fits = c.rank <= 2 and all(d in (1, want) for d, want in zip(c.shape[::-1], (n, m)))
        require(fits, f"C of shape {c.shape} does not broadcast to ({m}, {n})")
    return [TensorType(dtype, (m, n))]


def _gemm_reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    a, b = _widen(arrays[:2])
    if attrs["transA"]:
        a = a.T
    if attrs["transB"]:
        b = b.T
    y = a @ b
    if attrs["alpha"] != 1.0:
        y = attrs["alpha"] * y
    if len(arrays) == 3 and attrs["beta"] != 0:  # beta = 0 ignores C entirely, as onnxruntime does
        (c,) = _widen(arrays[2:])
        y = y + attrs["beta"] * c
    return [y.astype(arrays[0].dtype, copy=False)]


define("Gemm", infer=_gemm_infer, reference=_gemm_reference, attrs=_GEMM_ATTRS, inputs=(2, 3),
       fusion=Fusion.OUT_FUSABLE, doc="alpha * A' @ B' + beta * C, A'/B' optionally transposed.")


# ---------------------------------------------------------------- Einsum

_ELLIPSIS = "..."
_LABELS = frozenset(string.ascii_letters)


def _parse_term(term: str, rank: int) -> list[str]:
    """The labels of one operand's subscripts, ``...`` expanded to ``rank`` dims.

    Broadcast dims from the ellipsis get the pseudo-labels ``"..0"``, ``"..1"``,
    ... counted from the right, so equal ones align across operands like numpy
    broadcasting.
    """
    require(term.count(_ELLIPSIS) <= 1, f"subscripts {term!r} have more than one ellipsis")
    head, ellipsis, tail = term.partition(_ELLIPSIS)
    require(set(head + tail) <= _LABELS, f"subscripts {term!r} must be letters and at most one '...'")
    n_broadcast = rank - len(head) - len(tail)
    if not ellipsis:
        require(n_broadcast == 0, f"subscripts {term!r} name {len(term)} dims of a rank-{rank} operand")
        return list(term)
    require(n_broadcast >= 0, f"subscripts {term!r} name more dims than the rank-{rank} operand has")
    return list(head) + [f"..{i}" for i in reversed(range(n_broadcast))] + list(tail)


def _implicit_output(terms: list[str]) -> str:
    """Numpy's implicit output: the ellipsis, then the labels used once, sorted."""
    labels = "".join(terms).replace(_ELLIPSIS, "")
    once = sorted(label for label in set(labels) if labels.count(label) == 1)
    return (_ELLIPSIS if any(_ELLIPSIS in t for t in terms) else "") + "".join(once)


def einsum_shape(equation: str, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The output shape of ``np.einsum(equation, *arrays of shapes)``; raises ShapeError.

    >>> einsum_shape("bij,bjk->bik", [(5, 2, 3), (1, 3, 4)])
    (5, 2, 4)
    """
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    require(len(terms) == len(shapes), f"equation {equation!r} has {len(terms)} operands, got {len(shapes)} inputs")
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes):
        for label, dim in zip(_parse_term(term, len(shape)), shape):
            # Like numpy, a dim of 1 broadcasts against any other size of its label.
            known = sizes.get(label, 1)
            require(dim in (1, known) or known == 1, f"label {label!r} has sizes {known} and {dim}")
            sizes[label] = dim if known == 1 else known
    if not arrow:
        rhs = _implicit_output(terms)
    n_broadcast = sum(1 for label in sizes if label.startswith(".."))
    require(_ELLIPSIS in rhs or n_broadcast == 0, f"output subscripts {rhs!r} need '...' for the broadcast dims")
    out = _parse_term(rhs, len(rhs.replace(_ELLIPSIS, "")) + n_broadcast)
    require(len(set(out)) == len(out), f"output subscripts {rhs!r} repeat a label")
    require(set(out) <= set(sizes), f"output subscripts {rhs!r} use labels that no input has")
    return tuple(sizes[label] for label in out)


def _einsum_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    """Einsum: every operand of one dtype; the shape of :func:`einsum_shape`."""
    dtype = same_dtype(types)
    expect_dtype(types[0], _MATMUL_DTYPES)
    return [TensorType(dtype, einsum_shape(attrs["equation"], [t.shape for t in types]))]


def _einsum_reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    equation = attrs["equation"].replace(" ", "")
    # optimize=True contracts pairwise through BLAS (tensordot) instead of one
    # giant nested loop, which is what makes transformer-sized einsums fast.
    y = np.einsum(equation, *_widen(arrays), optimize=True)
    return [np.asarray(y).astype(arrays[0].dtype, copy=False)]


define("Einsum", infer=_einsum_infer, reference=_einsum_reference, attrs={"equation": Str()}, inputs=(1, None),
       fusion=Fusion.OUT_FUSABLE, doc="Einstein summation over the inputs as ``equation`` says (numpy einsum).")
