"""Winograd convolution F(m x m, 3 x 3): the input and output transforms around a batched matrix product.

A 3x3 stride-1 convolution computes each ``m x m`` tile of its output from an
``(m+2) x (m+2)`` tile of its input with ``(m+2)^2`` products per channel
pair instead of ``9 m^2`` (2.25 times fewer for m = 2)::

    Y_tile = A^T [ (G g G^T) * (B^T d_tile B) ] A      (* : elementwise, summed over input channels)

Split into graph ops, the sum over channels becomes ``(m+2)^2`` independent
matrix products, which run on the packed matrix-product template
(:mod:`.gemm_schedule`)::

    %v = WinogradInput(%x)  {pads, tile=m}          x: [N, C/c, H, W, c] (blocked)  -> v: [a*a, T, C]
    %p = MatMul(%v, %u)                             u: [a*a, C, K] = G g G^T, transformed at compile time
    %y = WinogradOutput(%p, %b) {size=[OH, OW], tile=m, block=c}  -> y: [N, K/c, OH, OW, c] (blocked)

with ``a = m + 2`` and ``T = N * OH/m * OW/m`` tiles. Each transform is a sum
of a few input values with constant coefficients (:func:`transform`, built
with the zero coefficients left out); the schedules unroll the axis choosing
the coefficients, so every unrolled copy computes just its own sum. The pass
choosing this form is :mod:`ember.passes.winograd`.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..loops.expr import Expr, const, select
from ..loops.tensor import Tensor, TensorRead, compute, reduce_axis, reduce_sum, walk
from ..types import TensorType
from .common import require
from .compute import annotate_pointwise
from .layout import from_blocked, pad_blocked, to_blocked
from .registry import Fusion, Int, Ints, define

KERNEL = 3  # the kernel size of the convolutions transformed here
INPUT_TAG = "winograd_input"  # tags of the two transforms' stages, for their schedule
OUTPUT_TAG = "winograd_output"

# F(m x m, 3 x 3): m -> (A^T, G, B^T) (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks")
MATRICES: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {
    2: (np.array([[1, 1, 1, 0],
                  [0, 1, -1, -1]], dtype=np.float64),
        np.array([[1, 0, 0],
                  [0.5, 0.5, 0.5],
                  [0.5, -0.5, 0.5],
                  [0, 0, 1]], dtype=np.float64),
        np.array([[1, 0, -1, 0],
                  [0, 1, 1, 0],
                  [0, -1, 1, 0],
                  [0, 1, 0, -1]], dtype=np.float64)),
    4: (np.array([[1, 1, 1, 1, 1, 0],
                  [0, 1, -1, 2, -2, 0],
                  [0, 1, 1, 4, 4, 0],
                  [0, 1, -1, 8, -8, 1]], dtype=np.float64),
        np.array([[1 / 4, 0, 0],
                  [-1 / 6, -1 / 6, -1 / 6],
                  [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6],
                  [1 / 24, -1 / 12, 1 / 6],
                  [0, 0, 1]], dtype=np.float64),
        np.array([[4, 0, -5, 0, 1, 0],
                  [0, -4, -4, 1, 1, 0],
                  [0, 4, -4, -1, 1, 0],
                  [0, -2, -1, 2, 1, 0],
                  [0, 2, -1, -2, 1, 0],
                  [0, 4, 0, -5, 0, 1]], dtype=np.float64)),
}


def matrices(tile: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A^T, G, B^T)`` of F(tile x tile, 3 x 3)."""
    require(tile in MATRICES, f"tile {tile} is not supported (supported: {sorted(MATRICES)})")
    return MATRICES[tile]


def transform_weight(w: np.ndarray, tile: int) -> np.ndarray:
    """Plain conv weights (K, C, 3, 3) as the matrix-product operand ``[a*a, C, K]``: ``G g G^T``."""
    _, g, _ = matrices(tile)
    u = np.einsum("ar,kcrs,bs->abck", g, w.astype(np.float64), g)
    return np.ascontiguousarray(u.reshape(-1, w.shape[1], w.shape[0]), dtype=w.dtype)


def transform(rows: np.ndarray, cols: np.ndarray, read: Callable[[int, int], Expr]) -> Expr:
    """``sum_rs rows[r] * cols[s] * read(r, s)`` with the zero terms left out and unit
    coefficients applied as additions and subtractions."""
    total = None
    for r, s in np.ndindex(len(rows), len(cols)):
        coefficient = float(rows[r] * cols[s])
        if coefficient == 0.0:
            continue
        value = read(r, s)
        if abs(coefficient) != 1.0:
            value = value * abs(coefficient)
        if total is None:
            total = value if coefficient > 0 else -value
        else:
            total = total + value if coefficient > 0 else total - value
    assert total is not None, "a transform row of zeros"
    return total


def choose(index: Expr, variants: list[Expr], first: int = 0) -> Expr:
    """``variants[index - first]`` as a balanced tree of selects (folded away where ``index`` is a
    constant; the tree keeps the expression shallow for hundreds of variants)."""
    if len(variants) == 1:
        return variants[0]
    middle = len(variants) // 2
    return select(index < first + middle, choose(index, variants[:middle], first),
                  choose(index, variants[middle:], first + middle))


def _tiles(size: tuple[int, int], tile: int) -> tuple[int, int]:
    """Tiles down and across an output of ``size`` (the last ones partly outside it when ``tile``
    does not divide it: their input reads zeros past the padding, their extra outputs are dropped)."""
    require(all(s > 0 for s in size), f"output size {list(size)} must be positive")
    return -(-size[0] // tile), -(-size[1] // tile)


# --------------------------------------------------------------------------- WinogradInput


def _input_geometry(x: TensorType, attrs: dict) -> tuple[tuple[int, int], tuple[int, int]]:
    """The output size and the tile counts of a WinogradInput node."""
    require(x.dtype == "float32", "WinogradInput takes float32")
    require(x.rank == 5, f"X must be blocked 2-D (N, C/c, H, W, c), got shape {x.shape}")
    matrices(attrs["tile"])
    pads = attrs["pads"]
    require(len(pads) == 4 and min(pads) >= 0, f"pads must be 4 non-negative values, got {pads}")
    top, left, bottom, right = pads
    size = (x.shape[2] + top + bottom - KERNEL + 1, x.shape[3] + left + right - KERNEL + 1)
    return size, _tiles(size, attrs["tile"])


def _input_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    x = types[0]
    _, (th, tw) = _input_geometry(x, attrs)
    alpha = attrs["tile"] + KERNEL - 1
    return [x.with_shape((alpha * alpha, x.shape[0] * th * tw, x.shape[1] * x.shape[4]))]


def _input_reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    x, tile = arrays[0], attrs["tile"]
    _, (th, tw) = _input_geometry(TensorType.of(x), attrs)
    _, _, bt = matrices(tile)
    top, left, bottom, right = attrs["pads"]
    alpha = tile + KERNEL - 1
    extra = ((th - 1) * tile + alpha - x.shape[2] - top - bottom, (tw - 1) * tile + alpha - x.shape[3] - left - right)
    plain = np.pad(from_blocked(x), ((0, 0), (0, 0), (top, bottom + extra[0]), (left, right + extra[1])))
    rows = np.arange(th)[:, None] * tile + np.arange(alpha)[None, :]  # [th, alpha]
    cols = np.arange(tw)[:, None] * tile + np.arange(alpha)[None, :]
    d = plain[:, :, rows[:, :, None, None], cols[None, None, :, :]]  # [N, C, th, alpha, tw, alpha]
    v = np.einsum("ar,ncirjs,bs->abnijc", bt, d.astype(np.float64), bt)
    return [np.ascontiguousarray(v.reshape(alpha * alpha, -1, plain.shape[1]), dtype=x.dtype)]


def _input_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    x, tile = inputs[0], attrs["tile"]
    _, (th, tw) = _input_geometry(TensorType(x.dtype, x.shape), attrs)
    _, _, bt = matrices(tile)
    top, left, _, _ = attrs["pads"]
    block, alpha = x.shape[4], tile + KERNEL - 1
    sizes = ((th - 1) * tile + alpha, (tw - 1) * tile + alpha)
    padded = pad_blocked(x, (top, left), sizes, 0.0, "padded") if (top, left, *sizes) != (0, 0, *x.shape[2:4]) else x

    def element(xi: Expr, t: Expr, ch: Expr) -> Expr:
        n, i, j = t // (th * tw), t // tw % th, t % tw

        def read(r: int, s: int) -> Expr:
            return padded[n, ch // block, i * tile + r, j * tile + s, ch % block]

        return choose(xi, [transform(bt[a], bt[b], read) for a in range(alpha) for b in range(alpha)])

    return [compute(outputs[0].shape, element, "winograd_v", tag=INPUT_TAG)]


def schedule_winograd(outputs: list[Tensor], target, knobs=None):
    """Both transforms: per tile (parallel) and block of channels, the coefficient axis
    unrolled around the vector of channels, so each unrolled copy is one fixed sum::

        WinogradInput:   parallel t: for c.o: for xi (unrolled): vectorized c.i: v[xi, t, c] = sum(...)
        WinogradOutput:  parallel n.kb.oh.o: for ow.o: for xi, oh.i, ow.i (unrolled): vectorized ki:
                             tile[oh.i, ow.i, ki] += coefficient * m[xi, t, k]     (then the epilogue)

    A zero-padded copy of the input, when pads are needed, is its own pointwise stage.
    """
    from ..loops.schedule import create_schedule

    schedule = create_schedule(outputs)
    for stage in schedule.stages:
        if stage.is_extern:
            continue
        if stage.op.tag == INPUT_TAG:
            xi, t, ch = stage.op.axes
            (x,) = _read_tensors(stage)
            c_outer, c_inner = stage.split(ch, x.shape[4])  # the channel blocks of X
            stage.reorder(t, c_outer, xi, c_inner)
            stage.parallel(t)
            stage.unroll(xi)
            stage.vectorize(c_inner)
        elif stage.op.tag == OUTPUT_TAG:
            n, kb, oh, ow, ki = stage.op.axes
            m = next(r for r in _read_tensors(stage) if len(r.shape) == 3)
            tile = math.isqrt(m.shape[0]) - KERNEL + 1
            oh_outer, oh_inner = stage.split(oh, tile)
            ow_outer, ow_inner = stage.split(ow, tile)
            (xi,) = stage.op.reduce_axes
            stage.reorder(n, kb, oh_outer, ow_outer, xi, oh_inner, ow_inner, ki)
            stage.parallel(stage.fuse(stage.fuse(n, kb), oh_outer))
            for axis in (xi, oh_inner, ow_inner):
                stage.unroll(axis)
            stage.vectorize(ki)
            stage.accumulate_locally()  # the tile x tile outputs' sums in registers
            stage.compute_epilogue()  # bias, residual, activation applied as the tile is stored
        elif any(stage.tensor is t for t in outputs) or stage.op.tag == "":
            annotate_pointwise(stage)
    return schedule


def _read_tensors(stage) -> list[Tensor]:
    """The tensors ``stage``'s body reads, each once."""
    reads = {id(e.tensor): e.tensor for e in walk(stage.op.body) if isinstance(e, TensorRead)}
    return list(reads.values())


define(
    "WinogradInput",
    infer=_input_infer,
    reference=_input_reference,
    compute=_input_compute,
    schedule=schedule_winograd,
    attrs={"pads": Ints(), "tile": Int(2)},
    fusion=Fusion.OPAQUE,
    doc="The Winograd input transform B^T d B of every tile of a blocked X (N, C/c, H, W, c), zero-padded "
        "by pads: V [(tile+2)^2, tiles, C].",
)


# --------------------------------------------------------------------------- WinogradOutput


def _output_geometry(types: list[TensorType], attrs: dict) -> tuple[int, int, int, int]:
    """``(N, K, tiles down, tiles across)`` of a WinogradOutput node."""
    m, tile, block = types[0], attrs["tile"], attrs["block"]
    matrices(tile)
    require(m.dtype == "float32" and all(t.dtype == "float32" for t in types), "WinogradOutput takes float32")
    alpha = tile + KERNEL - 1
    require(m.rank == 3 and m.shape[0] == alpha * alpha, f"M must be [{alpha * alpha}, tiles, K], got {m.shape}")
    size = attrs["size"]
    require(len(size) == 2, f"size must be [OH, OW], got {size}")
    th, tw = _tiles(tuple(size), tile)
    require(m.shape[1] % (th * tw) == 0, f"{m.shape[1]} tiles are not a whole number of {th}x{tw} images")
    require(block >= 1 and m.shape[2] % block == 0, f"block {block} does not divide the {m.shape[2]} channels")
    if len(types) > 1:
        require(types[1].shape == (m.shape[2] // block, block),
                f"B has shape {types[1].shape}, expected {(m.shape[2] // block, block)}")
    return m.shape[1] // (th * tw), m.shape[2], th, tw


def _output_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    n, k, _, _ = _output_geometry(types, attrs)
    block = attrs["block"]
    return [types[0].with_shape((n, k // block, *attrs["size"], block))]


def _output_reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    m, tile = arrays[0], attrs["tile"]
    n, k, th, tw = _output_geometry([TensorType.of(a) for a in arrays], attrs)
    at, _, _ = matrices(tile)
    alpha = tile + KERNEL - 1
    p = m.astype(np.float64).reshape(alpha, alpha, n, th, tw, k)
    y = np.einsum("pa,abnijk,qb->nkipjq", at, p, at).reshape(n, k, th * tile, tw * tile)
    y = y[:, :, :attrs["size"][0], :attrs["size"][1]]
    if len(arrays) > 1:
        y = y + arrays[1].reshape(1, k, 1, 1)
    return [to_blocked(y.astype(m.dtype), attrs["block"])]


def _output_compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    m, tile, block = inputs[0], attrs["tile"], attrs["block"]
    _, _, th, tw = _output_geometry([TensorType(t.dtype, t.shape) for t in inputs], attrs)
    at, _, _ = matrices(tile)
    alpha = tile + KERNEL - 1
    xi = reduce_axis(alpha * alpha, "xi")
    # the coefficient of M[xi] in the output at (parity) = (row % tile, column % tile) of its tile
    coefficients = [const(float(at[p, a] * at[q, b]), m.dtype)
                    for p in range(tile) for q in range(tile) for a in range(alpha) for b in range(alpha)]

    def element(n: Expr, kb: Expr, oh: Expr, ow: Expr, ki: Expr) -> Expr:
        t, k = (n * th + oh // tile) * tw + ow // tile, kb * block + ki
        parity = (oh % tile) * tile + ow % tile
        return reduce_sum(choose(parity * (alpha * alpha) + xi.var, coefficients) * m[xi.var, t, k], [xi])

    acc = compute(outputs[0].shape, element, "winograd_acc", tag=OUTPUT_TAG)
    if len(inputs) < 2:
        return [acc]
    bias = inputs[1]
    return [compute(outputs[0].shape, lambda n, kb, oh, ow, ki: acc[n, kb, oh, ow, ki] + bias[kb, ki], "winograd_y")]


define(
    "WinogradOutput",
    infer=_output_infer,
    reference=_output_reference,
    compute=_output_compute,
    schedule=schedule_winograd,
    attrs={"size": Ints(), "tile": Int(2), "block": Int()},
    inputs=(1, 2),
    fusion=Fusion.OUT_FUSABLE,
    doc="The Winograd output transform A^T M A of every tile, plus bias B (K/block, block): "
        "Y blocked (N, K/block, OH, OW, block).",
)
