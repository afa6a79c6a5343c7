"""ConvNCHWc: the 2-D convolution in the blocked layout (see :mod:`.layout`).

::

    %y: f32[N, O/o, OH, OW, o] = ConvNCHWc(%x: f32[N, C/i, H, W, i],
                                           %w: f32[O/o, C/i, kh, kw, i, o],   (PackConvWeight)
                                           %b: f32[O/o, o])                   (optional)
                                           {pads=[t, l, b, r], strides=[sh, sw], dilations=[dh, dw], group=g}

``group`` is 1; the channel count for a depthwise convolution (then
``w`` is ``[C/o, 1, kh, kw, 1, o]`` and ``i == o``); or any other ``g`` whose
groups are whole blocks of input and output channels (then ``w`` is
``[O/o, C/(g*i), kh, kw, i, o]``: output block ``oo`` reads the input blocks of
its group, ``(oo // (O/(g*o))) * C/(g*i) + io``). The reference unpacks to
NCHW, runs :mod:`.conv`'s reference and packs the result again.

The compute reads a zero-padded copy of the input (its own stage; for a strided
1x1 kernel, a copy of just the positions read, so its reductions run as at stride 1) and
accumulates ``y[n, oo, oh, ow, oi] += x[n, io, oh*sh + kh*dh, ow*sw + kw*dw, ii] *
w[oo, io, kh, kw, ii, oi]`` over ``io, kh, kw, ii``; a last stage adds the
bias (in a fused kernel, with the epilogue after it). The schedule keeps a
tile of ``ow`` positions times one, two or four channel blocks in vector registers
while the reductions run around it, and stores it through the epilogue (see
:func:`schedule_conv_blocked`).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..loops.expr import Expr
from ..loops.knobs import Knobs, split_options
from ..loops.schedule import Schedule, Stage, create_schedule
from ..loops.tensor import Tensor, TensorRead, compute, reduce_axis, reduce_sum, walk
from ..types import TensorType
from .common import require
from .compute import annotate_pointwise
from .layout import from_blocked, pad_blocked, to_blocked, unpack_conv_weight
from .registry import Fusion, Int, Ints, define, get_op
from .window import Window, resolve_window

ACCUMULATE = "conv_blocked"  # tag of the reduction stage
MAX_TILE_OW = 32  # output positions per register tile, at most
LATENCY_ACCUMULATORS = 8  # independent sums that cover the multiply-add latency (4 cycles x 2 ports)
CACHED_BYTES = 256 * 1024  # bytes swept repeatedly that stay in the L2 cache (half of a 512 KiB one)


def _window(types: list[TensorType], attrs: dict) -> Window:
    """Validate a ConvNCHWc node and resolve its window."""
    x, w = types[0], types[1]
    require(x.dtype == "float32" and all(t.dtype == "float32" for t in types), "ConvNCHWc takes float32 inputs")
    require(x.rank == 5, f"X must be blocked 2-D (N, C/i, H, W, i), got shape {x.shape}")
    require(w.rank == 6, f"W must be packed (O/o, C/i, kh, kw, i, o), got shape {w.shape}")
    channels, group = x.shape[1] * x.shape[4], attrs["group"]
    if is_depthwise(x.shape, w.shape, group):
        require(w.shape[0] * w.shape[5] == channels and w.shape[5] == x.shape[4],
                f"group {group}: a depthwise W must be (C/i, 1, kh, kw, 1, i) for {channels} channels in "
                f"blocks of {x.shape[4]}, got W {w.shape}")
    else:
        require(group >= 1 and x.shape[1] % group == 0 and w.shape[0] % group == 0,
                f"group {group} does not divide the {x.shape[1]} input and {w.shape[0]} output channel blocks "
                f"(W {w.shape}): a group must be whole blocks")
        require(w.shape[1] * group == x.shape[1] and w.shape[4] == x.shape[4],
                f"W {w.shape} does not match the {channels} input channels in blocks of {x.shape[4]}"
                + (f" in {group} groups" if group > 1 else ""))
    if len(types) > 2:
        require(types[2].shape == (w.shape[0], w.shape[5]), f"B has shape {types[2].shape}, expected "
                                                              f"{(w.shape[0], w.shape[5])}")
    spatial_attrs = {"auto_pad": "NOTSET", "pads": attrs["pads"], "strides": attrs["strides"],
                     "dilations": attrs["dilations"]}
    return resolve_window(x.shape[2:4], w.shape[2:4], spatial_attrs)


def is_depthwise(x_shape: tuple[int, ...], w_shape: tuple[int, ...], group: int) -> bool:
    """Whether a ConvNCHWc of these blocked input and packed weight shapes is depthwise (one input
    channel per group, its weights packed ``[C/o, 1, kh, kw, 1, o]``)."""
    return group > 1 and group == x_shape[1] * x_shape[4] and w_shape[1] == 1 and w_shape[4] == 1


def _infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    window = _window(types, attrs)
    x, w = types[0], types[1]
    return [x.with_shape((x.shape[0], w.shape[0], *window.out, w.shape[5]))]


def _reference(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    _window([TensorType.of(a) for a in arrays], attrs)
    x, w = arrays[0], arrays[1]
    plain = [from_blocked(x), unpack_conv_weight(w)] + ([arrays[2].reshape(-1)] if len(arrays) > 2 else [])
    conv = get_op("Conv")
    (out,) = conv.run_reference(plain, conv.normalize_attrs(attrs))
    return [to_blocked(out, w.shape[5])]


def _compute(inputs: list[Tensor], attrs: dict, outputs: list[TensorType]) -> list[Tensor]:
    x, w = inputs[0], inputs[1]
    window = _window([TensorType(t.dtype, t.shape) for t in inputs], attrs)
    (top, left), (bottom, right) = window.pads_begin, window.pads_end
    (sh, sw), (dh, dw) = window.strides, window.dilations
    height, width = x.shape[2:4]
    if top or left or bottom or right:
        padded = pad_blocked(x, (top, left), (height + top + bottom, width + left + right), 0.0, "padded")
    else:
        padded = x
    if w.shape[2:4] == (1, 1) and (sh, sw) != (1, 1):
        # a strided 1x1 conv reads every sh-th row and sw-th column: gather them first (a copy of
        # the output's size), so the reductions read neighbouring positions as a stride-1 conv does
        source = padded
        padded = compute((*x.shape[:2], *outputs[0].shape[2:4], x.shape[4]),
                         lambda n, c, h, v, j: source[n, c, h * sh, v * sw, j], "subsampled")
        sh = sw = 1
    kh, kw = reduce_axis(w.shape[2], "kh"), reduce_axis(w.shape[3], "kw")
    if is_depthwise(x.shape, w.shape, attrs["group"]):
        def element(i: Expr, oo: Expr, oh: Expr, ow: Expr, oi: Expr) -> Expr:
            h, v = oh * sh + kh.var * dh, ow * sw + kw.var * dw
            return reduce_sum(padded[i, oo, h, v, oi] * w[oo, 0, kh.var, kw.var, 0, oi], [kh, kw])
    else:
        io, ii = reduce_axis(w.shape[1], "ic.o"), reduce_axis(w.shape[4], "ic.i")
        group_blocks = w.shape[0] // attrs["group"]  # output blocks per group

        def element(i: Expr, oo: Expr, oh: Expr, ow: Expr, oi: Expr) -> Expr:
            h, v = oh * sh + kh.var * dh, ow * sw + kw.var * dw
            block = io.var if attrs["group"] == 1 else (oo // group_blocks) * w.shape[1] + io.var
            return reduce_sum(padded[i, block, h, v, ii.var] * w[oo, io.var, kh.var, kw.var, ii.var, oi],
                              [io, kh, kw, ii])

    out = outputs[0]
    acc = compute(out.shape, element, "conv_acc", tag=ACCUMULATE)
    if len(inputs) < 3:
        return [acc]
    bias = inputs[2]
    return [compute(out.shape, lambda i, oo, oh, ow, oi: acc[i, oo, oh, ow, oi] + bias[oo, oi], "conv")]


def schedule_conv_blocked(outputs: list[Tensor], target, knobs=None) -> Schedule:
    """The register-blocked schedule of the accumulation (tunable through ``knobs``).

    ::

        for n, oo, oh, ow, oi: for io, kh, kw, ii: acc[n, oo, oh, ow, oi] += x[...] * w[...]
        ==>
        parallel n.oo.o.oh (fused; or n.oh.oo.o: knob "outer"):
          for ow.o:
            for io, kh, kw, ii (or kh, kw, io, ii: knob "order"; ii unrolled: knob "unroll_ic"):
              for ow.i (unrolled, knob "tile_ow"): for oo.i (unrolled, knob "tile_oc" blocks):
                for oi (vectorized): tile[ow.i, oo.i, oi] += x[...] * w[...]

    The ``tile_oc x tile_ow`` vectors of sums accumulate in a local tile
    (registers) across the reductions, and the epilogue (bias, and in a fused
    kernel the residual add and activation) is applied to the tile as it is
    stored; each step loads one weight vector per channel block and
    broadcasts one input value per output position, used by the channel
    blocks at once (so only one broadcast is live; in a grouped convolution the
    tile's blocks are of one group). The default tile loads the
    fewest values per multiply-add among those that fit the registers
    (:func:`default_register_tile`), the default row order is the one moving
    fewer bytes (:func:`_default_outer`), and ``ii`` is unrolled.
    The rows are the parallel loop: many of them at every stage (output rows
    times channel blocks), so threads share them evenly. With knob "ic_block"
    below the channel blocks, ``io`` splits and its outer part runs outside the
    rows (parallel n.oo.o, then io.o, then oh; "outer" has no effect), the partial
    sums kept in the output. The padding (or strided 1x1 gathering) copy loops
    over its elements (parallel outer axis, vectorized channels).
    """
    knobs = knobs or Knobs()
    schedule = create_schedule(outputs)
    lanes = target.vector_lanes(4) if target is not None else 4
    registers = 32 if lanes >= 16 else 16
    for stage in schedule.stages:
        if stage.is_extern:
            continue
        if stage.op.tag != ACCUMULATE:
            if any(stage.tensor is t for t in outputs) or stage.op.tag == "":
                annotate_pointwise(stage)
            continue
        n, oo, oh, ow, oi = stage.op.axes
        vectors = -(-oi.extent // lanes)
        shared_input = len(stage.op.reduce_axes) == 4  # not depthwise: a broadcast input serves every block
        # a tile's channel blocks share their input: all in one group
        # every divisor of the blocks (of a group) that fits the registers with one position
        most_oc = max(1, (registers - 1) // (2 * vectors))
        oc_options = [d for d in range(1, most_oc + 1) if (oo.extent // _groups(stage)) % d == 0]
        default_oc, default_ow = default_register_tile(oc_options, ow.extent, vectors, registers, shared_input)
        tile_oc = knobs.choose("tile_oc", oc_options, default=default_oc)
        tile_ow = knobs.split("tile_ow", ow.extent, default=default_ow, limit=MAX_TILE_OW)
        oo_outer, oo_inner = stage.split(oo, tile_oc)
        ow_outer, ow_inner = stage.split(ow, tile_ow)
        reductions = list(stage.op.reduce_axes)
        blocks = []  # input-channel blocks outside the rows (their partial sums kept in the output)
        if len(reductions) == 4:
            io, kh, kw, ii = reductions
            # over a 1x1 window both orders are one loop nest: no knob to search
            windowed = kh.extent * kw.extent > 1
            order = knobs.choose("order", ["ic_kh_kw", "kh_kw_ic"], default="ic_kh_kw") if windowed else "ic_kh_kw"
            in_blocks = knobs.split("ic_block", io.extent, default=io.extent)
            if in_blocks < io.extent:
                io_outer, io = stage.split(io, in_blocks)
                blocks = [io_outer]
            reductions = [io, kh, kw, ii] if order == "ic_kh_kw" else [kh, kw, io, ii]
        outer = knobs.choose("outer", ["oc", "oh"], default=_default_outer(stage, default_oc))
        rows_order = [n, oo_outer, oh] if outer == "oc" else [n, oh, oo_outer]
        if blocks:  # the channel blocks sweep the rows of one block of output channels
            stage.reorder(n, oo_outer, *blocks, oh, ow_outer, *reductions, ow_inner, oo_inner, oi)
            stage.parallel(stage.fuse(n, oo_outer))
        else:
            stage.reorder(*rows_order, ow_outer, *reductions, ow_inner, oo_inner, oi)
            rows = stage.fuse(stage.fuse(*rows_order[:2]), rows_order[2])
            stage.parallel(rows)
        if len(reductions) == 4 and knobs.choose("unroll_ic", [False, True], default=True):  # not depthwise
            stage.unroll(reductions[-1])
        stage.unroll(oo_inner)
        stage.unroll(ow_inner)
        stage.vectorize(oi)
        stage.accumulate_locally()  # the tile of sums in registers
        stage.compute_epilogue()  # bias, residual, activation applied to the tile as it is stored
    return schedule


def _operands(stage: Stage) -> tuple[Tensor, Tensor]:
    """The (padded) blocked input and the packed weights a convolution stage reads."""
    reads = {len(e.tensor.shape): e.tensor for e in walk(stage.op.body) if isinstance(e, TensorRead)}
    return reads[5], reads[6]


def _groups(stage: Stage) -> int:
    """The groups of a grouped (not depthwise) convolution stage: input channel blocks over the
    blocks one output block reads; 1 for depthwise and ungrouped ones."""
    if len(stage.op.reduce_axes) < 4:
        return 1
    x, w = _operands(stage)
    return x.shape[1] // w.shape[1]


def _default_outer(stage: Stage, tile_oc: int) -> str:
    """Which loop the rows of output tiles go along first: ``"oc"`` (each block of output
    channels sweeps the whole input) or ``"oh"`` (each output row sweeps all the weights).

    The input when it stays in the L2 cache (:data:`CACHED_BYTES`), else the weights when
    they do, else the one moving the fewer bytes: the input once per block of ``tile_oc``
    channel blocks, or the weights once per output row. A depthwise convolution reads only
    its own channels' input: ``"oc"``.
    """
    n, oo, oh, _, _ = stage.op.axes
    if len(stage.op.reduce_axes) < 4:
        return "oc"
    source, weights = _operands(stage)
    x, w = (4 * math.prod(t.shape) for t in (source, weights))
    x = x * _touched(source.shape[2], oh.extent, weights.shape[2]) * \
        _touched(source.shape[3], stage.op.axes[3].extent, weights.shape[3])  # strided: not every row
    if x <= CACHED_BYTES or w <= CACHED_BYTES:
        return "oc" if x <= CACHED_BYTES else "oh"
    return "oc" if -(-oo.extent // tile_oc) * x <= n.extent * oh.extent * w else "oh"


def _touched(extent: int, out_extent: int, kernel: int) -> float:
    """The share of an input axis of ``extent`` a strided window reads: ``out_extent`` windows of
    ``kernel`` (no more than the whole axis)."""
    return min(1.0, out_extent * kernel / extent)


def default_register_tile(oc_options: list[int], width: int, vectors: int, registers: int,
                          shared_input: bool = False) -> tuple[int, int]:
    """The default ``(tile_oc, tile_ow)``: enough accumulators, as few loads per multiply-add as can be.

    A step of the reduction holds ``tile_oc x tile_ow x vectors`` sums, ``tile_oc x vectors``
    weight vectors and one broadcast input value; a spilled sum goes through memory on every
    step (a store-to-load chain that halves the speed), so the tile must fit exactly. Tiles
    of positions dividing the width come first (no guard inside the tile).

    Where one broadcast input value serves every block of output channels (``shared_input``:
    not depthwise), a step loads ``tile_oc x vectors + tile_ow`` values for ``tile_oc x
    tile_ow x vectors`` multiply-adds, and the loads bound the speed before the multiply-adds
    do (x86 cores load two values per cycle and multiply-add two vectors; on Zen 3 a broadcast
    also takes a vector pipe, about one a cycle): the tile with the fewest loads per useful
    multiply-add among those with at least :data:`LATENCY_ACCUMULATORS` sums (enough to hide
    the multiply-add latency) is taken, e.g. 2 blocks x 4 positions with AVX2 (0.75 loads
    per multiply-add, against 1.07 for 1 x 14). Tile widths are the divisors of the width
    and the powers of two: a ragged last tile computes past the edge (its accumulation reads
    the edge again, lowering clamps the index, and only its stores are guarded), which counts
    as that much more work per useful multiply-add; of tiles costing as little, one that
    divides the width, then the most sums, then the fewest channel blocks, whose weights (a
    vector per block and input channel, over the whole reduction) take less of the L1 cache.
    Tuning ResNet-50 (AVX2, 2 threads) put 2 x 4 in the best config of all nine of its
    convolutions with 56- or 28-wide outputs; with only that tie-break changed, from 4 x 2,
    ResNet-50 ran 3-6% faster. The channel blocks may be any count that divides the
    convolution's (5 of SqueezeNet's 125 blocks of 1000 channels): its last 1x1 conv on
    13 x 13 went from 1 x 13 (one broadcast per multiply-add) to 5 x 2 (ragged), 2.10 -> 1.56 ms
    at 2 threads, the model's kernels 9% faster; ResNet-50, DenseNet-121, Inception v1,
    AlexNet and ShuffleNet within noise or faster (interleaved kernel sums). Otherwise, or when no tile has that many sums, the one
    with the most sums among those that divide the width (unless a ragged one has twice as
    many); among tiles as large, the one loading the fewest values per multiply-add.
    """
    def fits(tile_oc: int, tile_ow: int) -> bool:
        return tile_oc * vectors * (tile_ow + 1) + 1 <= registers

    def loads_per_fma(tile: tuple[int, int]) -> Fraction:  # (exact, so that equal tiles tie)
        return Fraction(tile[0] * vectors + tile[1], tile[0] * tile[1] * vectors)

    def best(widths: list[int]) -> tuple[int, int] | None:
        tiles = [(oc, ow) for oc in oc_options for ow in widths if fits(oc, ow)]
        return max(tiles, key=lambda t: (t[0] * t[1], -loads_per_fma(t)), default=None)

    dividing_widths = [d for d in range(1, min(width, MAX_TILE_OW) + 1) if width % d == 0]
    if shared_input:
        def cost(tile: tuple[int, int]) -> Fraction:  # values loaded per useful multiply-add
            padded = -(-width // tile[1]) * tile[1]  # a ragged last tile computes past the edge too
            return loads_per_fma(tile) * Fraction(padded, width)

        enough = [(oc, ow) for oc in oc_options for ow in split_options(width, MAX_TILE_OW)
                  if fits(oc, ow) and oc * ow * vectors >= LATENCY_ACCUMULATORS]
        if enough:
            return min(enough, key=lambda t: (cost(t), width % t[1] != 0, -t[0] * t[1], t[0]))
    dividing = best(dividing_widths)
    widest = best(list(split_options(width, MAX_TILE_OW))) or (oc_options[0], 1)
    if dividing is not None and 2 * dividing[0] * dividing[1] > widest[0] * widest[1]:
        return dividing
    return widest


define(
    "ConvNCHWc",
    infer=_infer,
    reference=_reference,
    compute=_compute,
    schedule=schedule_conv_blocked,
    attrs={"pads": Ints(), "strides": Ints(), "dilations": Ints(), "group": Int(1)},
    inputs=(2, 3),
    fusion=Fusion.OUT_FUSABLE,
    doc="2-D convolution of a blocked X (N, C/i, H, W, i) with packed W (O/o, C/i, kh, kw, i, o) plus "
        "bias B (O/o, o); group 1 or depthwise.",
)
