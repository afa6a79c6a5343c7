"""The schedule template of matrix products: packed operands and a register-blocked micro-kernel.

A contraction stage ``C[..., i, j] = sum_k A[.., i, .., k ..] * B[.., k, .., j ..]``
(any operand layout: transposed, batched, broadcast) is looped as in BLIS::

    for jo:                         # blocks_n blocks of panels of B (parallel, or the batch loops are)
      for ko:                       # blocks of tile_k along k (when k is split)
        B.packed tile = B[ko block, jo block]  as [panel][k][tile_n]
        for io:                     # blocks_m blocks of panels of A
          A.packed tile = A[io block, ko block] as [panel][k][tile_m]
          for jp: for ip:           # one tile_m x tile_n tile of C
            acc = 0
            for k: for ii (unrolled): for ji (vectorized): acc[ii, ji] += A.p[ip, k, ii] * B.p[jp, k, ji]
            C[tile] (+)= acc        # or, at the last ko, Y[tile] = epilogue(C + acc) (bias, relu, ...)

Before a tile's k loop its rows of C are prefetched (lowering does it for every blocked
reduction): without it, adding the sums missed the cache on each row, 10% of a 1024 GEMM's
time at 2 threads in perf samples (4% with it). Interleaved medians with and without, one run
each: 1024 GEMM +10% at 1 thread and +2.5% at 2, 2048 GEMM +3.5% and +20%, BERT's products
within +-5% (noise).

The accumulator tile is small and indexed by constants once ``ii`` is unrolled
and ``ji`` vectorized, so it lives in vector registers: each step of ``k`` is
one vector load of B per ``tile_n / lanes`` and a broadcast of A and an FMA per
accumulator. Packing copies each operand tile once into contiguous panels
(padded with zeros at ragged edges), whatever the operand's layout. The
pointwise stage reading the product (a Gemm's ``alpha``/``beta * C``, a fused
bias, activation or residual) is computed from the accumulators as they are
stored (``Stage.compute_epilogue``).

Knobs: ``tile_m`` x ``tile_n`` (the register tile), ``tile_k`` (the k block),
``blocks_m`` / ``blocks_n`` (how many blocks of equal numbers of panels A / B are cut in), ``pack_a``, ``pack_b`` (a B
contiguous along j may be read in place), ``unroll_k`` (k steps per iteration of the
micro-kernel's loop, unrolled by LLVM), and
``parallel`` (``outer``: the batch or the B blocks; ``panels``: the B panels of
a block). The defaults come from the target's vector width and register count
(6 x 16 with AVX2, 6 x 8 with SSE, 14 x 32 with AVX-512), or a tile that divides
the product when that one does not (4 x 24 for BERT's 128 x 768 with AVX2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..loops.expr import Binary, Const, Var
from ..loops.knobs import Knobs
from ..loops.lower import CACHE_LINE_BYTES
from ..loops.schedule import Schedule, Stage
from ..loops.tensor import Reduce, Tensor, TensorRead, walk
from .reduce import parallel_outer

# bytes of the packed B block (in the L3 cache; each of its panels streams through L1)
B_BLOCK_BYTES = 1024 * 1024
# bytes of the packed A block (a few micro-panels: measured best on Zen 3, where larger ones lose)
A_BLOCK_BYTES = 24 * 1024
DEFAULT_TILE_K = 256
UNROLL_K = 4  # steps of k per iteration of the micro-kernel's loop (as BLIS's kernels)
# rows of the product below which each element of B is used too few times to be worth packing
MIN_ROWS = 4
# panels of B (default register tiles across j) from which A is packed by default
PACK_A_MIN_PANELS = 4


@dataclass(frozen=True)
class GemmOperands:
    """The two operands of a matrix-product stage and the dims holding ``i`` and ``j``."""

    a: Tensor
    a_dim: int  # the dim of A indexed by the row axis i
    b: Tensor
    b_dim: int  # the dim of B indexed by the column axis j (its panel dim when B is packed)
    b_panel: int = 0  # B already packed in panels of this many columns (read at [j // p, .., j % p]), or 0


def gemm_operands(stage: Stage) -> GemmOperands | None:
    """The operands of ``stage`` when it is a matrix product (possibly batched), else None.

    That is: a sum over one reduction axis ``k`` of the product of two tensor
    reads, one indexed by the next-to-last output axis ``i`` (and not ``j``),
    the other by the last output axis ``j`` (and not ``i``), both by ``k``; and
    at least :data:`MIN_ROWS` rows.
    """
    body = stage.op.body
    if stage.is_extern or not isinstance(body, Reduce) or body.combiner != "sum":
        return None
    if len(body.axes) != 1 or len(stage.op.axes) < 2:
        return None
    if min(ax.extent for ax in (*stage.op.axes, *body.axes)) < 1:
        return None  # nothing to compute, or only initialization
    if stage.op.axes[-2].extent < MIN_ROWS:
        return None  # (nearly) a matrix-vector product: packing B would cost more than it saves
    i, j, k = stage.op.axes[-2].var, stage.op.axes[-1].var, body.axes[0].var
    reads = [e for e in walk(body.source) if isinstance(e, TensorRead)]
    if len(reads) != 2:
        return None

    def dim_of(read: TensorRead, var: Var) -> int | None:
        dims = [d for d, index in enumerate(read.indices) if index is var]
        return dims[0] if len(dims) == 1 else None

    def panel_of(read: TensorRead, var: Var) -> tuple[int, int] | None:
        """(panel dim, panel width) when ``read`` is of a tensor packed in panels along ``var``:
        indexed by ``var // p`` in one dim and ``var % p`` in the last, nowhere else."""
        *_, last = read.indices
        width = _int_operand(last, "floormod", var)
        dims = [d for d, index in enumerate(read.indices[:-1]) if _int_operand(index, "floordiv", var) == width]
        others = [index for d, index in enumerate(read.indices[:-1]) if d not in dims]
        if width is None or len(dims) != 1 or any(e is var for index in others for e in walk(index)):
            return None
        return dims[0], width

    def uses(read: TensorRead, var: Var) -> bool:
        return any(e is var for index in read.indices for e in walk(index))

    for a, b in (reads, reads[::-1]):
        a_dim, b_dim, b_panel = dim_of(a, i), dim_of(b, j), 0
        if b_dim is None and panel_of(b, j) is not None:
            b_dim, b_panel = panel_of(b, j)
        if (a_dim is not None and b_dim is not None and not uses(a, j) and not uses(b, i)
                and dim_of(a, k) is not None and dim_of(b, k) is not None):
            if a.tensor is b.tensor:
                return None  # one tensor read twice: packing it would redirect both reads
            return GemmOperands(a.tensor, a_dim, b.tensor, b_dim, b_panel)
    return None


def _int_operand(index, op: str, var: Var) -> int | None:
    """``c`` when ``index`` is ``var <op> c`` with a constant ``c``, else None."""
    if isinstance(index, Binary) and index.op == op and index.a is var and isinstance(index.b, Const):
        return int(index.b.value)
    return None


def _vector_bits(target) -> int:
    """The target's vector register width (SSE2's when no target is given)."""
    return target.vector_bits if target is not None else 128


def most_rows(target, vectors: int) -> int:
    """The most rows of a register tile ``vectors`` wide: accumulators besides B's row of
    vectors and A's broadcast value, in the target's vector registers."""
    registers = 32 if _vector_bits(target) >= 512 else 16
    return max(1, (registers - vectors - 1) // max(1, vectors))


def register_tile(target, dtype: str, rows_extent: int | None = None, cols_extent: int | None = None
                  ) -> tuple[int, int]:
    """Default (tile_m, tile_n) for a ``rows_extent`` x ``cols_extent`` product.

    The widest tile is two vectors of columns and as many rows as the registers
    allow (:func:`most_rows`). A ragged
    edge guards every tile's loop (rows: measured ~15% slower, columns: the
    vector loop goes scalar), so when that tile does not divide the product the
    tile with the most accumulators that does divide it is taken (2 to 4
    vectors of columns, fewer rows; ties: fewer vectors), if it keeps at least
    half the accumulators; with the extents unknown, the widest tile.
    """
    lanes = max(1, _vector_bits(target) // (8 * np.dtype(dtype).itemsize))
    widest = (most_rows(target, 2), 2 * lanes)
    if rows_extent is None or cols_extent is None:
        return widest
    if rows_extent % widest[0] == 0 and cols_extent % widest[1] == 0:
        return widest
    # (accumulators, -vectors, rows) of the tiles that divide the product: the largest is best
    dividing = [(rows * vectors, -vectors, rows) for vectors in (2, 3, 4)
                for rows in range(1, most_rows(target, vectors) + 1)
                if rows_extent % rows == 0 and cols_extent % (vectors * lanes) == 0]
    if dividing and 2 * max(dividing)[0] >= 2 * widest[0]:  # half the widest tile's 2 * rows accumulators
        _, minus_vectors, rows = max(dividing)
        return rows, -minus_vectors * lanes
    return min(widest[0], rows_extent), min(widest[1], cols_extent)


def schedule_gemm(schedule: Schedule, stage: Stage, operands: GemmOperands, target, knobs: Knobs) -> None:
    """Block, pack and register-tile the matrix-product ``stage`` (see the module docstring)."""
    *batch, i, j = stage.op.axes
    (k,) = stage.op.reduce_axes
    itemsize = np.dtype(stage.op.body.dtype).itemsize
    lanes = max(1, _vector_bits(target) // (8 * itemsize))
    mr_widest, _ = register_tile(target, stage.op.body.dtype)
    mr_default, nr_default = register_tile(target, stage.op.body.dtype, i.extent, j.extent)

    if operands.b_panel:  # B comes packed: its panels are the register tile's columns
        nr_options = [operands.b_panel]
        if nr_default != operands.b_panel:
            mr_default = min(i.extent, most_rows(target, -(-operands.b_panel // lanes)))
        nr_default = operands.b_panel
    else:
        nr_options = sorted({min(n * lanes, j.extent) for n in (1, 2, 3, 4)})
    mr = knobs.choose("tile_m", range(1, min(i.extent, 2 * mr_widest) + 1), mr_default)
    nr = knobs.choose("tile_n", nr_options, nr_default)
    kc = knobs.split("tile_k", k.extent, _blocks(k.extent, DEFAULT_TILE_K))  # equal blocks: no ragged last one
    # threads share the outermost loop: the batch, or else the blocks of B (an even number of them)
    batched = math.prod(ax.extent for ax in batch) > 1
    parallel = knobs.choose("parallel", ("outer", "panels"), "outer")
    # The knobs count blocks, each of as equal a number of panels as can be, so that every option
    # is a balanced split whatever the tile (its options must not depend on other knobs' values:
    # the space is the same for every config). The defaults follow the cache budgets for the
    # default tiles; more blocks than panels is one panel a block.
    d = knobs.defaults
    panels_n, panels_m = -(-j.extent // nr), -(-i.extent // mr)
    default_n, default_m = -(-j.extent // d["tile_n"]), -(-i.extent // d["tile_m"])
    n_blocks = knobs.choose("blocks_n", *_count_options(-(-j.extent // min(nr_options)), -(-default_n // _blocks(
        default_n, B_BLOCK_BYTES // (d["tile_k"] * d["tile_n"] * itemsize), even=not batched))))
    m_blocks = knobs.choose("blocks_m", *_count_options(i.extent, -(-default_m // _blocks(
        default_m, A_BLOCK_BYTES // (d["tile_k"] * d["tile_m"] * itemsize)))))
    nb, mb = -(-panels_n // min(n_blocks, panels_n)), -(-panels_m // min(m_blocks, panels_m))
    # A packed pays when many panels of B reuse it; for a few, reading A in place is faster
    pack_a = knobs.choose("pack_a", (True, False), j.extent > PACK_A_MIN_PANELS * nr_default)
    # B may be read in place where its rows are contiguous along j (a vector load each)
    b_contiguous = operands.b_dim == len(operands.b.shape) - 1
    pack_b = knobs.choose("pack_b", (True, False), True) if not operands.b_panel else False
    if not b_contiguous and not operands.b_panel:
        pack_b = True  # a strided B is always packed (the option is clamped, not refused)

    b_packed = schedule.pack(operands.b, [stage.tensor], operands.b_dim, nr) if pack_b else None
    a_packed = schedule.pack(operands.a, [stage.tensor], operands.a_dim, mr) if pack_a else None

    io, ii = stage.split(i, mr)
    jo, ji = stage.split(j, nr)
    ioo, ioi = stage.split(io, mb)
    joo, joi = stage.split(jo, nb)
    if kc < k.extent:
        ko, ki = stage.split(k, kc)
        stage.reorder(*batch, joo, ko, ioo, joi, ioi, ki, ii, ji)
        b_at = ko
    else:
        stage.reorder(*batch, joo, ioo, joi, ioi, k, ii, ji)
        b_at = joo
    stage.unroll(ii)
    stage.vectorize(ji)
    # the k loop of the micro-kernel, a few steps at a time (1024 GEMM, 1 thread: 4-13% faster at 4)
    stage.unroll_by(ki if kc < k.extent else k, knobs.choose("unroll_k", (1, 2, 4, 8), UNROLL_K))
    stage.accumulate_locally()  # the tile_m x tile_n accumulators: registers
    stage.compute_epilogue()  # bias, activation, residual, cast: applied to the tile in registers
    if parallel == "outer":
        parallel_outer(stage)
    elif joi.extent > 1:
        stage.parallel(joi)
    if b_packed is not None:
        schedule[b_packed].compute_at(stage, b_at)
        _copy_loops(schedule[b_packed], operands.b_dim == operands.b.ndim - 1, itemsize)
    if a_packed is not None:
        schedule[a_packed].compute_at(stage, ioo)
        _copy_loops(schedule[a_packed], operands.a_dim == operands.a.ndim - 1, itemsize)


def _blocks(panels: int, cap: int, even: bool = False) -> int:
    """Panels per block: at most ``cap``, the blocks as equal as can be, and (``even``) an even
    number of them when there are several panels, so that two threads share them evenly."""
    blocks = -(-panels // max(1, cap))
    if even and blocks % 2 and panels > 1:
        blocks += 1
    return max(1, -(-panels // blocks))


def _count_options(most: int, default: int) -> tuple[list[int], int]:
    """Block counts a knob may take when there are at most ``most`` panels: every count up to 16,
    then powers of two and their halfway points (24, 48, ...), ``most`` itself and ``default``
    (the count the cache budget gives for the default tile); and that default."""
    counts = set(range(1, min(most, 16) + 1))
    step = 16
    while step < most:
        counts |= {c for c in (step + step // 2, 2 * step) if c <= most}
        step *= 2
    default = min(max(default, 1), most)
    return sorted(counts | {most, default}), default


def _copy_loops(stage: Stage, along_panel: bool, itemsize: int) -> None:
    """Loop a packing stage along memory: vectorized along the panel elements when they are
    contiguous in the source too (a row of B), else with the source's contiguous dim innermost
    and scalar (a row of A read in order, written at the panel's stride: a vector across the
    panel would be a gather of one element per row), one cache line of each row of the panel
    in turn, so that the rows' misses overlap rather than each row's lines coming one by one
    (8.3% of a 1024 GEMM's samples in this loop before, 5.3% after)."""
    if along_panel:
        stage.vectorize(stage.leaf[-1])
        return
    *outer, contiguous, element = stage.leaf
    line = max(1, CACHE_LINE_BYTES // itemsize)
    if contiguous.extent > line and contiguous.extent % line == 0:
        lines, within = stage.split(contiguous, line)
        stage.reorder(*outer, lines, element, within)
    else:
        stage.reorder(*outer, element, contiguous)


__all__ = ["GemmOperands", "gemm_operands", "most_rows", "register_tile", "schedule_gemm"]
