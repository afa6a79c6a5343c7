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

All three compute through one einsum-style :func:`contraction` (MatMul and
Gemm are fixed equations). :func:`contraction_schedule` gives a matrix product
(batched, transposed or not) the packed, register-blocked template of
:mod:`.gemm_schedule`, and loops any other contraction ``i, k, j`` so that the
innermost loop is stride-1 and vectorizes.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, replace

import numpy as np

from ..loops.expr import INDEX, Binary, Expr, cast, const, guarded_select
from ..loops.knobs import Knobs
from ..loops.schedule import Schedule, Stage, create_schedule
from ..loops.tensor import Reduce, Tensor, TensorRead, compute, reduce_axis, reduce_sum, walk
from ..types import FLOAT_DTYPES, TensorType
from .common import broadcast_shapes, expect_dtype, expect_float, require, same_dtype
from .compute import broadcast_read
from .gemm_schedule import gemm_operands, schedule_gemm
from .reduce import parallel_outer
from .registry import Float, Fusion, Int, Str, define

# ONNX's MatMul/Einsum types restricted to ember's dtypes (and to what onnxruntime runs).
_MATMUL_DTYPES = FLOAT_DTYPES | {"int32", "int64"}


def _accumulate_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype products are summed in: float16 widens to float32."""
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _widen(arrays: list[np.ndarray]) -> list[np.ndarray]:
    return [a.astype(_accumulate_dtype(a.dtype), copy=False) for a in arrays]


# ---------------------------------------------------------------- Einsum equations

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


@dataclass(frozen=True)
class Contraction:
    """An einsum with its labels resolved: each operand's labels, the output's, every label's size.

    Broadcast dims of ``...`` carry pseudo-labels (see :func:`_parse_term`);
    an operand dim of 1 whose label is larger broadcasts.
    """

    terms: tuple[tuple[str, ...], ...]
    output: tuple[str, ...]
    sizes: dict[str, int]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.sizes[label] for label in self.output)

    @property
    def contracted(self) -> tuple[str, ...]:
        """The labels summed over (in order of first appearance)."""
        return tuple(label for label in dict.fromkeys(sum(self.terms, ())) if label not in self.output)


def parse_einsum(equation: str, shapes: list[tuple[int, ...]]) -> Contraction:
    """The labels of ``np.einsum(equation, *arrays of shapes)``; raises ShapeError.

    >>> parse_einsum("ij,jk", [(2, 3), (3, 4)]).output
    ('i', 'k')
    """
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    require(len(terms) == len(shapes), f"equation {equation!r} has {len(terms)} operands, got {len(shapes)} inputs")
    sizes: dict[str, int] = {}
    labelled = []
    for term, shape in zip(terms, shapes):
        labels = _parse_term(term, len(shape))
        labelled.append(tuple(labels))
        for label, dim in zip(labels, shape):
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
    return Contraction(tuple(labelled), tuple(out), sizes)


def einsum_shape(equation: str, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The output shape of ``np.einsum(equation, *arrays of shapes)``; raises ShapeError.

    >>> einsum_shape("bij,bjk->bik", [(5, 2, 3), (1, 3, 4)])
    (5, 2, 4)
    """
    return parse_einsum(equation, shapes).shape


# ---------------------------------------------------------------- contractions (loop level)
# All three ops compute through one einsum-style contraction: MatMul and Gemm
# are fixed equations.


def _contract(c: Contraction, operands: list[Tensor], out: TensorType, name: str = "product") -> Tensor:
    """The contraction ``c`` of ``operands`` with the output type ``out``: products summed in
    the accumulation dtype (float16 widens to float32, rounded once by a last stage)."""
    product = contraction(c, operands, _accumulate_dtype(np.dtype(out.dtype)).name, name)
    if product.dtype == out.dtype:
        return product
    return compute(out.shape, lambda *i: cast(out.dtype, product[i]), "result")


def contraction(c: Contraction, operands: list[Tensor], dtype: str, name: str = "product") -> Tensor:
    """``sum over c.contracted of prod(operands)``, each operand read at its labels' indices
    (index 0 on its broadcast dims of 1) and cast to ``dtype``.

    A matrix product (see :func:`_is_matrix_product`) is left plain: its
    schedule packs the operands, whatever their layout. Otherwise the innermost
    output label should be the last (stride-1) dim of an operand, so that the
    loops ``i, k, j`` vectorize (see :func:`contraction_schedule`). When it is
    not, a dot product along memory
    (see :func:`_dot_along_memory`) is split into lanes of partial sums, and
    any other contraction reads a copy of one operand with that label moved last.

    >>> from ember.ir.loops import placeholder
    >>> a, b = placeholder((2, 3), "float32", "a"), placeholder((3, 4), "float32", "b")
    >>> contraction(parse_einsum("ij,jk->ik", [a.shape, b.shape]), [a, b], "float32").shape
    (2, 4)
    """
    if c.output and not _innermost_along_memory(c, operands) and not _is_matrix_product(c, operands, dtype):
        if _dot_along_memory(c, operands):
            return _lane_contraction(c, operands, dtype, name)
        c, operands = _innermost_moved_last(c, operands)
    raxes = [reduce_axis(c.sizes[label], f"{name}_r{n}") for n, label in enumerate(c.contracted)]

    def element(*index: Expr) -> Expr:
        at = dict(zip(c.output, index)) | {label: ax.var for label, ax in zip(c.contracted, raxes)}
        product = _product(c, operands, dtype, at)
        return reduce_sum(product, tuple(raxes)) if raxes else product

    return compute(c.shape, element, name)


def _is_matrix_product(c: Contraction, operands: list[Tensor], dtype: str) -> bool:
    """Whether the plain contraction is a matrix product that :func:`contraction_schedule` packs
    (so any operand layout is fast, and no copy with the innermost label moved last is needed)."""
    if len(c.contracted) != 1 or len(operands) != 2:
        return False
    k = reduce_axis(c.sizes[c.contracted[0]], "k")
    plain = compute(c.shape, lambda *index: reduce_sum(
        _product(c, operands, dtype, dict(zip(c.output, index)) | {c.contracted[0]: k.var}), k), "probe")
    return gemm_operands(Stage(plain)) is not None


def _product(c: Contraction, operands: list[Tensor], dtype: str, at: dict[str, Expr]) -> Expr:
    """The product of ``operands`` (cast to ``dtype``) with each label at index ``at[label]``."""
    product: Expr | None = None
    for t, labels in zip(operands, c.terms):
        read = cast(dtype, t[tuple(const(0, INDEX) if dim == 1 else at[label] for label, dim in zip(labels, t.shape))])
        product = read if product is None else product * read
    assert product is not None
    return product


# Partial sums of a split dot product: two AVX2 vectors of float32 (four of SSE).
LANES = 16


def _has(labels: tuple[str, ...], t: Tensor, label: str) -> bool:
    """Whether an operand really has ``label`` (not as a broadcast dim of 1)."""
    return any(lab == label and d != 1 for lab, d in zip(labels, t.shape))


def _innermost_along_memory(c: Contraction, operands: list[Tensor]) -> bool:
    """Whether the innermost output label is the last dim of some operand, or of none at all."""
    inner = c.output[-1]
    holders = [labels for labels, t in zip(c.terms, operands) if _has(labels, t, inner)]
    return not holders or any(labels[-1] == inner for labels in holders)


def _dot_along_memory(c: Contraction, operands: list[Tensor]) -> bool:
    """Whether ``c`` is a dot product along memory (``ik,jk->ij``) worth splitting into lanes: one
    contracted label, the last (stride-1) dim of every operand that has it, long enough, and the
    partial sums (LANES per output element) take no more memory than those operands."""
    if len(c.contracted) != 1:
        return False
    (label,) = c.contracted
    holders = [(labels, t) for labels, t in zip(c.terms, operands) if _has(labels, t, label)]
    return (c.sizes[label] >= 2 * LANES and all(labels[-1] == label for labels, _ in holders)
            and math.prod(c.shape) * LANES <= sum(math.prod(t.shape) for _, t in holders))


def _innermost_moved_last(c: Contraction, operands: list[Tensor]) -> tuple[Contraction, list[Tensor]]:
    """``c`` reading a copy of its smallest operand holding the innermost output label, that label's
    dim moved last (``ki,jk->ij`` reads ``B'[k, j]``); unchanged if the label repeats in it."""
    inner = c.output[-1]
    candidates = [n for n, (labels, t) in enumerate(zip(c.terms, operands))
                  if _has(labels, t, inner) and labels.count(inner) == 1]
    if not candidates:
        return c, operands
    n = min(candidates, key=lambda n: math.prod(operands[n].shape))
    t, labels = operands[n], c.terms[n]
    pos = labels.index(inner)
    order = [d for d in range(t.ndim) if d != pos] + [pos]

    def element(*index: Expr) -> Expr:
        source = [const(0, INDEX)] * t.ndim
        for d, i in zip(order, index):
            source[d] = i
        return t[tuple(source)]

    copy = compute(tuple(t.shape[d] for d in order), element, f"{t.name}_moved")
    terms = c.terms[:n] + (tuple(labels[d] for d in order),) + c.terms[n + 1:]
    return replace(c, terms=terms), operands[:n] + [copy] + operands[n + 1:]


def _lane_contraction(c: Contraction, operands: list[Tensor], dtype: str, name: str) -> Tensor:
    """A dot product along memory as LANES interleaved partial sums, then their sum.

    ``partial[..., l] = sum_o a[..., o*LANES + l] * b[..., o*LANES + l]`` loops
    ``o`` outside ``l`` (a stride-1, vectorizable AXPY on the partial sums);
    the result sums the lanes and the tail of the contracted axis that does not
    fill a whole group of lanes.
    """
    (label,) = c.contracted
    size = c.sizes[label]
    whole = size // LANES * LANES
    group = reduce_axis(size // LANES, f"{name}_group")

    def partial_element(*index: Expr) -> Expr:
        at = dict(zip(c.output, index[:-1])) | {label: group.var * LANES + index[-1]}
        return reduce_sum(_product(c, operands, dtype, at), group)

    partial = compute(c.shape + (LANES,), partial_element, f"{name}_lanes")
    rest = reduce_axis(LANES + size - whole, f"{name}_rest")

    def element(*index: Expr) -> Expr:
        tail = _product(c, operands, dtype, dict(zip(c.output, index)) | {label: rest.var + (whole - LANES)})
        return reduce_sum(guarded_select(rest.var < LANES, partial[index + (rest.var,)], tail), rest)

    return compute(c.shape, element, name)


def contraction_schedule(outputs: list[Tensor], target, knobs=None) -> Schedule:
    """Schedule a matrix product with :func:`.gemm_schedule.schedule_gemm` (packed operands, a
    register tile, its epilogue fused; every size a knob). Loop any other contraction ``i, k, j``
    (reductions just outside the innermost output axis) when that axis has stride 1 in an operand,
    so the innermost loop is a vectorizable AXPY:

    ::

        for i: for j: for k: C[i,j] += A[i,k] * B[k,j]   ==>   for i: for k: for j: C[i,j] += A[i,k] * B[k,j]

    The lanes of a split dot product (:func:`_lane_contraction`) are such an
    axis. Otherwise the reduction stays innermost (a dot product). Stages tagged
    ``inline`` are inlined; the outermost data loop is marked parallel.
    """
    knobs = knobs if knobs is not None else Knobs()
    schedule = create_schedule(outputs)
    for stage in list(schedule.stages):
        if stage.is_extern:
            continue
        operands = gemm_operands(stage)
        if operands is not None:
            schedule_gemm(schedule, stage, operands, target, knobs)
            continue
        if stage.op.tag == "inline" and all(stage.tensor is not t for t in outputs):
            stage.compute_inline()
        elif isinstance(stage.op.body, Reduce) and stage.op.axes and _innermost_has_stride_one(stage):
            *outer, inner = stage.op.axes
            stage.reorder(*outer, *stage.op.reduce_axes, inner)
            stage.vectorize(inner)
        if not stage.inlined:
            parallel_outer(stage)
    return schedule


def _innermost_has_stride_one(stage: Stage) -> bool:
    """Whether the last output axis moves some tensor the stage reads with stride 1: its last
    index is that axis, or something independent of it plus that axis."""
    inner = stage.op.axes[-1].var

    def unit_stride(index: Expr) -> bool:
        if index is inner:
            return True
        return (isinstance(index, Binary) and index.op == "add" and index.b is inner
                and all(e is not inner for e in walk(index.a)))

    return any(isinstance(e, TensorRead) and e.indices and unit_stride(e.indices[-1]) for e in walk(stage.op.body))


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


def _matmul_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    """MatMul as the einsum ``...ik,...kj->...ij``; a 1-D operand has just the label ``k``."""
    a, b = inputs
    lhs = "k" if a.ndim == 1 else "...ik"
    rhs = "k" if b.ndim == 1 else "...kj"
    out = "..." + ("i" if a.ndim > 1 else "") + ("j" if b.ndim > 1 else "")
    return [_contract(parse_einsum(f"{lhs},{rhs}->{out}", [a.shape, b.shape]), inputs, outputs[0])]


define("MatMul", infer=_matmul_infer, reference=_matmul_reference, compute=_matmul_compute,
       schedule=contraction_schedule, inputs=2, fusion=Fusion.OUT_FUSABLE,
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


def _gemm_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    """The product ``ik,kj->ij`` (labels swapped for the transposes), then ``alpha * product + beta * C``
    in the accumulation dtype, as the reference rounds (alpha and beta in that dtype)."""
    a, b = inputs[:2]
    (out,) = outputs
    equation = ("ki" if attrs["transA"] else "ik") + "," + ("jk" if attrs["transB"] else "kj") + "->ij"
    work = _accumulate_dtype(np.dtype(out.dtype)).name
    product = contraction(parse_einsum(equation, [a.shape, b.shape]), [a, b], work)
    alpha, beta = attrs["alpha"], attrs["beta"]
    c = inputs[2] if len(inputs) == 3 and beta != 0 else None  # beta = 0 ignores C (even its NaNs)
    if alpha == 1.0 and c is None and work == out.dtype:
        return [product]

    def element(i: Expr, j: Expr) -> Expr:
        y = product[i, j]
        if alpha != 1.0:
            y = const(alpha, work) * y
        if c is not None:
            term = cast(work, broadcast_read(c, (i, j), out.shape))
            y = y + (term if beta == 1.0 else const(beta, work) * term)
        return cast(out.dtype, y)

    return [compute(out.shape, element, "gemm")]


define("Gemm", infer=_gemm_infer, reference=_gemm_reference, compute=_gemm_compute, schedule=contraction_schedule,
       attrs=_GEMM_ATTRS, inputs=(2, 3), fusion=Fusion.OUT_FUSABLE,
       doc="alpha * A' @ B' + beta * C, A'/B' optionally transposed.")


# ---------------------------------------------------------------- Einsum


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


def _einsum_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    c = parse_einsum(attrs["equation"], [t.shape for t in inputs])
    return [_contract(c, inputs, outputs[0])]


define("Einsum", infer=_einsum_infer, reference=_einsum_reference, compute=_einsum_compute,
       schedule=contraction_schedule, attrs={"equation": Str()}, inputs=(1, None),
       fusion=Fusion.OUT_FUSABLE, doc="Einstein summation over the inputs as ``equation`` says (numpy einsum).")
