"""Spatial window geometry shared by the convolution and pooling ops.

A sliding window over the spatial axes (all axes after N and C) is described
by its kernel size, strides, dilations and begin/end pads; :func:`resolve_window`
turns ONNX attributes (``auto_pad``, ``pads``, ``strides``, ``dilations``,
``ceil_mode``) into a :class:`Window` with explicit pads and output sizes, and
:func:`pad_input` / :func:`taps` give the numpy references one strided view of
the padded input per kernel position, so every windowed op is a short loop
over kernel positions of vectorized numpy.

Rules (ONNX, as onnxruntime implements them):

* output size: ``floor((L + pb + pe - K) / s) + 1`` with ``K = (k - 1) * d + 1``
  the dilated kernel extent; with ``ceil_mode`` the division rounds up, but a
  last window that would start in the end padding is dropped.
* ``SAME_UPPER`` / ``SAME_LOWER``: output ``ceil(L / s)``, total padding
  ``max(0, (out - 1) * s + K - L)``, the odd element at the end (UPPER) or the
  beginning (LOWER). ``VALID``: no padding.

Native code (the ops' compute definitions) uses the same :class:`Window`
through a :class:`Staging`: a padded copy of the input, split by stride
phase, that every kernel position reads contiguously and without conditions
(see the class docstring); :func:`schedule_windowed` is the loop order all
windowed ops share.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..loops.expr import INDEX, Expr, Load, const
from ..loops.knobs import Knobs
from ..loops.schedule import Schedule, create_schedule
from ..loops.stmt import Stmt, Store, for_range, seq
from ..loops.tensor import Tensor, compute, extern
from .common import require

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


@dataclass(frozen=True)
class Window:
    """A resolved sliding window over ``rank`` spatial axes.

    >>> w = resolve_window((5,), (3,), {"auto_pad": "NOTSET", "pads": (1, 1), "strides": (2,), "dilations": None})
    >>> w.out, w.pads_begin, w.pads_end
    ((3,), (1,), (1,))
    """

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    out: tuple[int, ...]

    @property
    def rank(self) -> int:
        return len(self.kernel)

    @property
    def extent(self) -> tuple[int, ...]:
        """The dilated kernel extent ``(k - 1) * d + 1`` per axis."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilations))

    @property
    def pads(self) -> tuple[int, ...]:
        """Pads in ONNX order: all begins, then all ends."""
        return self.pads_begin + self.pads_end


def spatial_ints(value: tuple[int, ...] | None, rank: int, default: int, name: str) -> tuple[int, ...]:
    """An Ints attribute with one entry per spatial axis (``default`` everywhere when absent)."""
    if value is None or len(value) == 0:
        return (default,) * rank
    require(len(value) == rank, f"{name} {value} must have {rank} entries, one per spatial axis")
    return tuple(value)


def strides_and_dilations(attrs: dict, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ``strides`` and ``dilations`` attributes, defaults filled and checked positive."""
    strides = spatial_ints(attrs["strides"], rank, 1, "strides")
    dilations = spatial_ints(attrs["dilations"], rank, 1, "dilations")
    require(all(s >= 1 for s in strides), f"strides {strides} must be positive")
    require(all(d >= 1 for d in dilations), f"dilations {dilations} must be positive")
    return strides, dilations


def check_auto_pad(auto_pad: str) -> None:
    """Require ``auto_pad`` to be one of the ONNX values."""
    require(auto_pad in AUTO_PADS, f"auto_pad {auto_pad!r} is not one of {', '.join(AUTO_PADS)}")


def explicit_pads(pads: tuple[int, ...] | None, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Split an ONNX ``pads`` attribute (begins then ends) into (begins, ends); zeros when absent."""
    pads = spatial_ints(pads, 2 * rank, 0, "pads")
    require(all(p >= 0 for p in pads), f"pads {pads} must be non-negative")
    return pads[:rank], pads[rank:]


def split_same_padding(total: int, auto_pad: str) -> tuple[int, int]:
    """Split ``total`` padding for SAME_UPPER (odd element at the end) or SAME_LOWER (at the beginning)."""
    small = total // 2
    return (small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small)


def output_size(size: int, extent: int, stride: int, pad_begin: int, pad_end: int, ceil_mode: bool, axis: int) -> int:
    """Number of window positions along one axis (see the module docstring)."""
    span = size + pad_begin + pad_end - extent
    require(span >= 0, f"kernel extent {extent} is larger than the padded input size "
                       f"{size + pad_begin + pad_end} on spatial axis {axis}")
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    # onnxruntime (like PyTorch) drops a last window that starts in the end padding.
    if (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def resolve_window(spatial: Sequence[int], kernel: Sequence[int], attrs: dict, *, ceil_mode: bool = False) -> Window:
    """Resolve the window of an op over input spatial sizes ``spatial``.

    ``attrs`` holds ``auto_pad``, ``pads``, ``strides`` and ``dilations`` (the
    last three may be None for ONNX's defaults). Raises ShapeError when an
    attribute has the wrong length or the kernel does not fit the padded input.
    """
    rank = len(spatial)
    kernel = tuple(kernel)
    require(len(kernel) == rank, f"kernel_shape {kernel} must have {rank} entries, one per spatial axis")
    require(all(k >= 1 for k in kernel), f"kernel_shape {kernel} must be positive")
    strides, dilations = strides_and_dilations(attrs, rank)
    auto_pad = attrs["auto_pad"]
    check_auto_pad(auto_pad)
    begins, ends = explicit_pads(attrs["pads"], rank)
    extent = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilations))
    if auto_pad != "NOTSET":
        require(not any(begins + ends), f"pads {attrs['pads']} cannot be combined with auto_pad {auto_pad}")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        totals = [max(0, (-(-size // s) - 1) * s + ext - size) for size, s, ext in zip(spatial, strides, extent)]
        begins, ends = zip(*(split_same_padding(t, auto_pad) for t in totals))
    out = tuple(output_size(size, ext, s, b, e, ceil_mode, axis)
                for axis, (size, ext, s, b, e) in enumerate(zip(spatial, extent, strides, begins, ends)))
    return Window(kernel, strides, dilations, tuple(begins), tuple(ends), out)


def pad_input(x: np.ndarray, window: Window, value: float = 0) -> np.ndarray:
    """Pad the trailing ``window.rank`` axes of ``x`` so every window position is in bounds.

    The begin pads are the window's; the end is padded just far enough for the
    last window (which with ``ceil_mode`` may reach past the declared end pad).
    """
    spatial = x.shape[x.ndim - window.rank:]
    ends = [max(0, (o - 1) * s + ext - size - b)
            for o, s, ext, size, b in zip(window.out, window.strides, window.extent, spatial, window.pads_begin)]
    widths = [(0, 0)] * (x.ndim - window.rank) + list(zip(window.pads_begin, ends))
    if not any(b or e for b, e in widths):
        return x
    return np.pad(x, widths, mode="constant", constant_values=value)


def tap_slices(window: Window, offset: Sequence[int]) -> tuple[slice, ...]:
    """Slices of the padded spatial axes read by kernel position ``offset`` at every output position."""
    return tuple(slice(o * d, o * d + (n - 1) * s + 1, s)
                 for o, d, n, s in zip(offset, window.dilations, window.out, window.strides))


def taps(padded: np.ndarray, window: Window) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """Yield ``(offset, view)`` per kernel position: the strided view of ``padded``
    (trailing axes of shape ``window.out``) that this kernel position reads."""
    for offset in itertools.product(*(range(k) for k in window.kernel)):
        yield offset, padded[(Ellipsis, *tap_slices(window, offset))]


# --- Native code: the staged input and the wide output ------------------------------------------

# Wide positions per block of the schedule: a block of the wide output and the staged input it
# reads stay in L1 while all input channels and kernel positions accumulate into it.
MAX_BLOCK = 4096
# Wide positions come in whole chunks of this many (whole float32 vectors), except for tiny outputs.
CHUNK = 8
# Tag of the wide compute stage, which :func:`schedule_windowed` looks for.
WIDE = "window_wide"


@dataclass(frozen=True)
class Staging:
    """How native code reads a window's input: a staged copy, read at stride 1 without conditions.

    Along each spatial axis, the padded input position ``v = i * s + ph`` (``s``
    the stride) is stored at phase ``ph``, row ``i``. The staged copy has shape
    ``(N, C, phases, size)``: per channel and phase, the rows of all axes
    flattened row-major (:attr:`row_strides`), then padding. Output position
    ``o`` and kernel position ``t`` read ``v = o * s + t * d``, which is phase
    ``(t * d) % s``, row ``o + (t * d) // s``; flattened, that is the *wide*
    position ``q = sum(o * row_stride)`` (:meth:`position`) plus an offset that
    depends on ``t`` only (:meth:`tap`). So a compute over ``q`` in
    ``[0, wide)`` reads the copy at stride 1; the ``q`` that are no output
    position (a row past the output size) are computed and never read back.
    Only the phases some kernel position reads are stored (:attr:`phases`:
    one for a strided 1x1 window).

    ``upsample`` inserts ``u - 1`` zeros between input elements (ConvTranspose,
    as a convolution over its upsampled input); it is 1 for every other op.

    >>> w = resolve_window((6,), (3,), {"auto_pad": "NOTSET", "pads": (1, 1), "strides": (2,), "dilations": None})
    >>> st = plan_staging((6,), w)
    >>> st.phases, st.rows, st.wide, st.size    # padded positions 0, 2, 4, 6 and 1, 3, 5, 7
    ((2,), (4,), 3, 4)
    """

    spatial: tuple[int, ...]
    window: Window
    upsample: tuple[int, ...]
    phases: tuple[int, ...]
    rows: tuple[int, ...]
    wide: int

    @property
    def num_phases(self) -> int:
        return math.prod(self.phases)

    @property
    def row_strides(self) -> tuple[int, ...]:
        return tuple(math.prod(self.rows[axis + 1:]) for axis in range(len(self.rows)))

    @property
    def max_offset(self) -> int:
        """The offset of the last kernel position (the largest one)."""
        w = self.window
        return sum((k - 1) * d // s * rs for k, d, s, rs in zip(w.kernel, w.dilations, w.strides, self.row_strides))

    @property
    def size(self) -> int:
        """Staged elements per channel and phase: all rows, and room for every wide position's reads."""
        return max(math.prod(self.rows), self.wide + self.max_offset)

    @property
    def in_place(self) -> bool:
        """Whether the staged copy would hold the input element for element (a stride-1 window without
        padding whose reads stay inside the plane, such as a 1x1 convolution over whole chunks of
        positions), over at most two spatial axes (whose row-major index simplifies back to ``q``)."""
        w = self.window
        return (len(self.spatial) <= 2 and all(s == 1 for s in w.strides) and all(u == 1 for u in self.upsample)
                and all(p == 0 for p in w.pads_begin) and self.rows == self.spatial
                and self.size == math.prod(self.spatial))

    def position(self, out: Sequence[Expr]) -> Expr:
        """The wide position of output position ``out`` (one index per spatial axis)."""
        q: Expr = const(0, INDEX)
        for o, stride in zip(out, self.row_strides):
            q = q + o * stride
        return q

    def tap(self, taps: Sequence[Expr]) -> tuple[Expr, Expr]:
        """(phase, offset) read by kernel position ``taps``: the staged element is ``[n, c, phase, q + offset]``."""
        w = self.window
        phase: Expr = const(0, INDEX)
        offset: Expr = const(0, INDEX)
        for t, d, s, phases, stride in zip(taps, w.dilations, w.strides, self.phases, self.row_strides):
            phase = phase * phases + (t * d) % s
            offset = offset + (t * d) // s * stride
        return phase, offset


def wide_size(valid: int) -> int:
    """``valid`` wide positions rounded up to whole chunks (:data:`CHUNK`), unless there are fewer.

    Past :data:`MAX_BLOCK` positions, also to whole blocks (multiples of two
    chunks) of at most MAX_BLOCK, so that the schedules split without bounds
    checks.
    """
    if valid <= CHUNK:
        return valid
    if valid <= MAX_BLOCK:
        return -(-valid // CHUNK) * CHUNK
    blocks = -(-valid // MAX_BLOCK)
    block = -(-valid // blocks)
    return blocks * (-(-block // (2 * CHUNK)) * 2 * CHUNK)


def _largest_divisor(n: int, at_most: int) -> int:
    return next(d for d in range(max(1, min(n, at_most)), 0, -1) if n % d == 0)


def wide_block(wide: int, unit: int) -> int:
    """The largest multiple of ``unit`` that divides ``wide`` (itself a multiple) and is at most MAX_BLOCK."""
    return unit * _largest_divisor(wide // unit, MAX_BLOCK // unit)


def plan_staging(spatial: Sequence[int], window: Window, upsample: Sequence[int] | None = None) -> Staging:
    """The staging of ``window`` over inputs of spatial sizes ``spatial`` (upsampled by ``upsample``)."""
    w = window
    phases = tuple(max((t * d) % s for t in range(k)) + 1 for k, d, s in zip(w.kernel, w.dilations, w.strides))
    rows = tuple(o + (k - 1) * d // s for o, k, d, s in zip(w.out, w.kernel, w.dilations, w.strides))
    row_strides = tuple(math.prod(rows[axis + 1:]) for axis in range(len(rows)))
    valid = sum((o - 1) * rs for o, rs in zip(w.out, row_strides)) + 1
    return Staging(tuple(spatial), window, tuple(upsample or (1,) * w.rank), phases, rows, wide_size(valid))


@dataclass(frozen=True)
class _Run:
    """Input elements ``x0 + dx * j`` stored at rows ``i0 + di * j`` of one phase, for ``j < count``."""

    count: int
    x0: int = 0
    dx: int = 0
    i0: int = 0
    di: int = 0


def _axis_runs(size: int, pad: int, upsample: int, stride: int, phases: int, rows: int) -> list[_Run]:
    """Per stored phase, the input elements along one axis that the staged copy holds (the rest is padding)."""
    runs = []
    for phase in range(phases):
        pairs = [(x, (x * upsample + pad) // stride) for x in range(size)
                 if x * upsample + pad >= 0 and (x * upsample + pad) % stride == phase
                 and (x * upsample + pad) // stride < rows]
        if len(pairs) < 2:
            runs.append(_Run(1, pairs[0][0], 0, pairs[0][1], 0) if pairs else _Run(0))
            continue
        (x0, i0), (x1, i1) = pairs[:2]
        run = _Run(len(pairs), x0, x1 - x0, i0, i1 - i0)
        assert all(p == (x0 + run.dx * j, i0 + run.di * j) for j, p in enumerate(pairs)), "not an arithmetic run"
        runs.append(run)
    return runs


def stage_input(x: Tensor, staging: Staging, pad_value: float, dtype: str | None = None,
                element: Callable[[Expr], Expr] | None = None, name: str = "staged") -> Tensor:
    """The staged copy of ``x`` (N, C, spatial...): ``element(x)`` in ``dtype``, ``pad_value`` elsewhere.

    A hand-written nest: fill with ``pad_value`` (unless the input covers the
    copy), then per phase one nest copying the input rows that phase holds,
    with no condition inside. The loops over channels and all but the last
    axis are one loop (LLVM fully unrolls short loops, and a nest of them
    costs far more compile time than it gains), spread over the threads. When the copy would equal
    the input (:attr:`Staging.in_place`), there is no copy: a stage tagged
    ``inline`` reads the input itself.
    """
    n, c = x.shape[:2]
    dtype = dtype or x.dtype
    element = element or (lambda v: v)
    if staging.in_place:
        width = staging.spatial[-1]

        def read(n_: Expr, c_: Expr, phase: Expr, f: Expr) -> Expr:
            at = (f,) if len(staging.spatial) == 1 else (f // width, f % width)
            return element(x[(n_, c_, *at)])

        return compute((n, c, 1, staging.size), read, name, tag="inline")
    w = staging.window
    runs = [_axis_runs(*axis) for axis in zip(staging.spatial, w.pads_begin, staging.upsample, w.strides,
                                                staging.phases, staging.rows)]
    phases = list(itertools.product(*runs))
    shape = (n, c, staging.num_phases, staging.size)
    in_strides = tuple(math.prod(staging.spatial[axis + 1:]) for axis in range(w.rank))
    plane = math.prod(staging.spatial)
    covered = staging.size == math.prod(staging.rows) and all(
        run.count == rows for axis_runs, rows in zip(runs, staging.rows) for run in axis_runs)

    def body(inputs, outputs) -> Stmt:
        src, dst = inputs[0], outputs[0]
        fill = None if covered else for_range(math.prod(shape), lambda i: Store(dst, i, const(pad_value, dtype)),
                                              "fill", "parallel")

        def copy(phase: int, axis_runs: tuple[_Run, ...]) -> Stmt | None:
            if any(run.count == 0 for run in axis_runs):
                return None  # the phase holds no input element
            *outer, last = axis_runs

            def row(r: Expr) -> Stmt:
                at_src: Expr = const(0, INDEX)
                at_dst: Expr = const(0, INDEX)
                for axis in range(len(outer) - 1, -1, -1):
                    run, j, r = outer[axis], r % outer[axis].count, r // outer[axis].count
                    at_src = at_src + (run.x0 + run.dx * j) * in_strides[axis]
                    at_dst = at_dst + (run.i0 + run.di * j) * staging.row_strides[axis]
                at_src = at_src + r * plane + last.x0
                at_dst = at_dst + (r * staging.num_phases + phase) * staging.size + last.i0
                return for_range(last.count, lambda j: Store(
                    dst, at_dst + last.di * j, element(Load(src, at_src + last.dx * j, x.dtype))), "j")

            return for_range(n * c * math.prod(run.count for run in outer), row, "row", "parallel")

        return seq(fill, *(copy(p, axis_runs) for p, axis_runs in enumerate(phases)))

    return extern([(shape, dtype)], [x], body, name)[0]


def schedule_windowed(outputs: list[Tensor], target, knobs=None, register_block: bool = False) -> Schedule:
    """The loop order of a windowed op's wide stage (tagged :data:`WIDE`, axes ``(n, c, q)`` + reductions).

    ::

        for n: for c: for q: for taps...: wide[n,c,q] (+)= staged[...]      (the naive nest)
        ==>
        for n: for q.b: for c (parallel): for taps (fused): for q.i (vectorized): wide[n,c,q] (+)= staged[...]

    The reductions (input channels, kernel positions) run outside a stride-1
    loop over a block of wide positions (``q.b``, one when all fit in L1),
    which accumulates in place. With ``register_block`` (convolutions, where
    all output channels read the same input), a tile of output channels by
    wide positions is innermost instead::

        for n: for q.b: for c.o (parallel): for q.o: for rc: for taps...:
          for c.i (unrolled): for q.i (vectorized): wide[n,c,q] += staged[...] * w[...]

    with the tile's sums in local accumulators (registers, stored once: no
    pass zeroing the output first), each input vector loaded once for all its
    output channels. Knobs: ``tile_c`` channels (divisors up to
    :data:`MAX_TILE_CHANNELS`) and ``tile_q`` positions (whole chunks dividing the
    block, up to :data:`MAX_TILE_VECTORS` vectors); by default the most positions,
    and channels while the tile holds at most :data:`DEFAULT_TILE_SUMS` vectors of sums. Wide stages of
    fewer than a chunk of positions keep the reductions innermost (a scalar
    accumulator). Stages tagged ``inline`` are inlined.
    """
    schedule = create_schedule(outputs)
    lanes = target.vector_lanes(4) if target is not None else 4
    for stage in schedule.stages:
        if stage.is_extern or any(stage.tensor is t for t in outputs):
            continue
        if stage.op.tag == "inline":
            stage.compute_inline()
        elif stage.op.tag == WIDE:
            if stage.op.axes[2].extent % CHUNK:
                stage.parallel(stage.op.axes[1])
            elif register_block:
                _register_blocked(stage, lanes, knobs or Knobs())
            else:
                _vectorized(stage)
    return schedule


def _split_blocks(stage, q, unit: int):
    """Split ``q`` into blocks of at most MAX_BLOCK positions (None and ``q`` when one block holds all)."""
    block = wide_block(q.extent, unit)
    return stage.split(q, block) if block < q.extent else (None, q)


def _vectorized(stage) -> None:
    n, c, q = stage.op.axes
    reductions = stage.op.reduce_axes
    q_block, q_inner = _split_blocks(stage, q, CHUNK)
    stage.reorder(*[axis for axis in (n, q_block, c, *reductions, q_inner) if axis is not None])
    # One loop over all reductions: LLVM would otherwise fully unroll the short kernel loops
    # around the vectorized one, which costs compile time and gains nothing.
    reduction = reductions[0]
    for axis in reductions[1:]:
        reduction = stage.fuse(reduction, axis)
    stage.parallel(c)
    stage.vectorize(q_inner)


# A register tile of the wide stage: at most this many output channels, this many vectors of
# positions, and by default this many vectors of sums.
MAX_TILE_CHANNELS = 8
MAX_TILE_VECTORS = 4
DEFAULT_TILE_SUMS = 8


def _register_blocked(stage, lanes: int, knobs: Knobs) -> None:
    n, c, q = stage.op.axes
    chunk = 2 * CHUNK if lanes >= CHUNK and q.extent % (2 * CHUNK) == 0 else CHUNK
    q_block, q_rest = _split_blocks(stage, q, chunk)
    most = CHUNK * max(1, MAX_TILE_VECTORS * lanes // CHUNK)
    q_options = [CHUNK * d for d in range(1, most // CHUNK + 1) if (q_rest.extent // CHUNK) % d == 0]
    c_options = [d for d in range(1, min(c.extent, MAX_TILE_CHANNELS) + 1) if c.extent % d == 0]
    positions = knobs.choose("tile_q", q_options, default=q_options[-1])
    vectors = -(-q_options[-1] // lanes)
    channels = knobs.choose("tile_c", c_options,
                            default=max(d for d in c_options if d * vectors <= max(DEFAULT_TILE_SUMS, vectors)))
    q_outer, q_inner = stage.split(q_rest, positions)
    c_outer, c_inner = stage.split(c, channels) if channels > 1 else (c, None)
    order = (n, q_block, c_outer, q_outer, *stage.op.reduce_axes, c_inner, q_inner)
    stage.reorder(*[axis for axis in order if axis is not None])
    if c_inner is not None:
        stage.unroll(c_inner)
    stage.parallel(c_outer)
    stage.vectorize(q_inner)
    stage.accumulate_locally()  # the tile's sums in registers, stored once: no pass zeroing the output
