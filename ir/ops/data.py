"""Data-movement ops: concat, split, slice, gather, gather-elements, tile, pad.

Every op here copies elements of its inputs into new places
(``Fusion.INJECTIVE``) and accepts any dtype. Axes, split sizes, slice bounds,
repeats and pads are attributes; indices of Gather/GatherElements are real
tensor inputs, checked for range when the reference runs (and, compiled, by a
:class:`Check` stage that also wraps the negative ones).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..loops.expr import (
    INDEX,
    Expr,
    Load,
    Var,
    cast,
    logical_and,
    maximum,
    minimum,
    guarded_select,
    select,
)
from ..loops.stmt import Check, Let, Store, for_range, seq
from ..loops.tensor import Tensor, compute, extern
from ..types import TensorType
from .common import normalize_axes, normalize_axis, require, same_dtype
from .compute import padded_read
from .registry import REQUIRED, Float, Fusion, Int, Ints, Str, define
from .shape import injective_schedule, replaced, shifted

INDEX_DTYPES = ("int32", "int64")


# --- Concat ------------------------------------------------------------------

def _concat_infer(types, attrs):
    dtype = same_dtype(types)
    rank = types[0].rank
    require(rank >= 1, "cannot concatenate scalars")
    require(all(t.rank == rank for t in types),
            f"inputs have different ranks {', '.join(str(t.rank) for t in types)}")
    axis = normalize_axis(attrs["axis"], rank)
    for t in types[1:]:
        same = all(a == b for i, (a, b) in enumerate(zip(t.shape, types[0].shape)) if i != axis)
        require(same, f"shapes {types[0].shape} and {t.shape} differ outside axis {axis}")
    shape = list(types[0].shape)
    shape[axis] = sum(t.shape[axis] for t in types)
    return [TensorType(dtype, tuple(shape))]


def _concat_ref(arrays, attrs):
    return [np.concatenate(arrays, axis=attrs["axis"])]


def _concat_compute(inputs, attrs, outputs):
    """A balanced select tree over the inputs on the axis position (log2(n) compares per element)."""
    (out,) = outputs
    axis = normalize_axis(attrs["axis"], out.rank)
    pieces, offset = [], 0
    for t in inputs:
        if t.shape[axis]:
            pieces.append((t, offset))
            offset += t.shape[axis]
    pieces = pieces or [(inputs[0], 0)]  # an empty output never reads

    def element(*i):
        def pick(lo: int, hi: int) -> Expr:
            if hi - lo == 1:
                t, start = pieces[lo]
                return t[shifted(i, axis, -start)]
            mid = (lo + hi) // 2
            return guarded_select(i[axis] < pieces[mid][1], pick(lo, mid), pick(mid, hi))

        return pick(0, len(pieces))

    return [compute(out.shape, element, "concat")]


define("Concat", infer=_concat_infer, reference=_concat_ref, attrs={"axis": Int(REQUIRED)},
       inputs=(1, None), fusion=Fusion.INJECTIVE, compute=_concat_compute, schedule=injective_schedule,
       doc="Concatenate the inputs along `axis`.")


# --- Split -------------------------------------------------------------------

def split_sizes(dim: int, split: tuple[int, ...] | None, num_outputs: int | None) -> tuple[int, ...]:
    """Sizes of the pieces Split cuts a ``dim``-long axis into.

    With ``num_outputs`` the pieces are ``ceil(dim / num_outputs)`` long except
    a shorter last one (ONNX opset 18).
    """
    require((split is None) != (num_outputs is None), "give exactly one of split and num_outputs")
    if split is not None:
        require(len(split) >= 1 and all(s >= 0 for s in split), f"split {split} must be non-negative sizes")
        require(sum(split) == dim, f"split {split} sums to {sum(split)}, not to the axis size {dim}")
        return tuple(split)
    require(num_outputs >= 1, f"num_outputs {num_outputs} must be positive")
    chunk = -(-dim // num_outputs)
    last = dim - chunk * (num_outputs - 1)
    require(last >= 0, f"cannot split an axis of size {dim} into {num_outputs} outputs")
    return (chunk,) * (num_outputs - 1) + (last,)


def _split_plan(shape: tuple[int, ...], attrs) -> tuple[int, tuple[int, ...]]:
    axis = normalize_axis(attrs["axis"], len(shape))
    return axis, split_sizes(shape[axis], attrs["split"], attrs["num_outputs"])


def _split_infer(types, attrs):
    (x,) = types
    axis, sizes = _split_plan(x.shape, attrs)
    return [x.with_shape(x.shape[:axis] + (s,) + x.shape[axis + 1:]) for s in sizes]


def _split_ref(arrays, attrs):
    (x,) = arrays
    axis, sizes = _split_plan(x.shape, attrs)
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


def _split_compute(inputs, attrs, outputs):
    (x,) = inputs
    axis, sizes = _split_plan(x.shape, attrs)
    starts = np.cumsum((0,) + sizes[:-1])
    return [compute(out.shape, lambda *i, start=int(start): x[shifted(i, axis, start)], f"split{k}")
            for k, (out, start) in enumerate(zip(outputs, starts))]


define("Split", infer=_split_infer, reference=_split_ref,
       attrs={"axis": Int(0), "split": Ints(None), "num_outputs": Int(None)}, fusion=Fusion.INJECTIVE,
       compute=_split_compute, schedule=injective_schedule,
       doc="Cut along `axis` into pieces of sizes `split`, or into `num_outputs` (near-)equal pieces.")


# --- Slice -------------------------------------------------------------------

def _clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(v, hi))


# An end of INT32_MAX or INT64_MAX means "through the last element in the
# direction of the step" (numpy's None), as onnxruntime reads it. The ONNX text
# would clamp it to dim-1, which with a negative step makes x[0:INT_MAX:-1]
# empty where onnxruntime returns x[0].
_END_SENTINELS = (2**31 - 1, 2**63 - 1)


def slice_bounds(dim: int, start: int, end: int, step: int) -> slice:
    """ONNX Slice bounds on a ``dim``-long axis as a Python slice.

    Negative start/end count from the end; then, for a positive step, both
    clamp to [0, dim]; for a negative step, start clamps to [0, dim-1] and end
    to [-1, dim-1], where -1 means "before element 0" (Python's ``None``).
    """
    start = start + dim if start < 0 else start
    if end in _END_SENTINELS:
        end = dim if step > 0 else -1
    elif end < 0:
        end += dim
    if step > 0:
        return slice(_clamp(start, 0, dim), _clamp(end, 0, dim), step)
    start, end = _clamp(start, 0, dim - 1), _clamp(end, -1, dim - 1)
    return slice(start, None if end < 0 else end, step)


def _slices(shape: tuple[int, ...], attrs) -> tuple[slice, ...]:
    """One Python slice per axis of ``shape`` for the normalized Slice ``attrs``."""
    starts, ends = attrs["starts"], attrs["ends"]
    n = len(starts)
    require(len(ends) == n, f"starts {starts} and ends {ends} differ in length")
    axes = attrs["axes"] if attrs["axes"] is not None else tuple(range(n))
    steps = attrs["steps"] if attrs["steps"] is not None else (1,) * n
    require(len(axes) == n and len(steps) == n, "starts, ends, axes and steps differ in length")
    require(all(s != 0 for s in steps), f"steps {steps} contain 0")
    axes = normalize_axes(axes, len(shape))
    out = [slice(None)] * len(shape)
    for axis, start, end, step in zip(axes, starts, ends, steps):
        out[axis] = slice_bounds(shape[axis], start, end, step)
    return tuple(out)


def _slice_infer(types, attrs):
    (x,) = types
    sl = _slices(x.shape, attrs)
    return [x.with_shape(tuple(len(range(*s.indices(d))) for s, d in zip(sl, x.shape)))]


def _slice_ref(arrays, attrs):
    (x,) = arrays
    return [x[_slices(x.shape, attrs)].copy()]


def _slice_compute(inputs, attrs, outputs):
    (x,), (out,) = inputs, outputs
    taken = [range(*s.indices(d)) for s, d in zip(_slices(x.shape, attrs), x.shape)]
    return [compute(out.shape, lambda *i: x[tuple(r.start + k * r.step for k, r in zip(i, taken))], "slice")]


define("Slice", infer=_slice_infer, reference=_slice_ref,
       attrs={"starts": Ints(REQUIRED), "ends": Ints(REQUIRED), "axes": Ints(None), "steps": Ints(None)},
       fusion=Fusion.INJECTIVE, compute=_slice_compute, schedule=injective_schedule,
       doc="Take starts:ends:steps along `axes` (ONNX clamping rules).")


# --- Gather / GatherElements -------------------------------------------------

def checked_indices(indices: np.ndarray, dim: int) -> np.ndarray:
    """``indices`` with negatives wrapped; :class:`InputError` if any lies outside [-dim, dim)."""
    indices = indices.astype(np.int64, copy=False)
    if indices.size and (indices.min() < -dim or indices.max() >= dim):
        bad = indices[(indices < -dim) | (indices >= dim)].reshape(-1)[0]
        raise InputError(f"index {bad} out of range for an axis of size {dim}")
    return np.where(indices < 0, indices + dim, indices)


def checked_index_stage(indices: Tensor, dim: int) -> Tensor:
    """A stage that checks every index lies in [-dim, dim) and writes it, wrapped into [0, dim), as int64.

    A failed check stops the kernel (``Module.run`` raises :class:`InputError`),
    so the stages reading the result never index out of bounds.
    """
    message = f"index out of range for an axis of size {dim}"

    def body(ins, outs):
        (raw,), (wrapped,) = ins, outs

        def step(i):
            v = Var("index")
            return Let(v, cast(INDEX, Load(raw, i, raw.dtype)),
                       seq(Check(logical_and(v >= -dim, v < dim), message),
                           Store(wrapped, i, select(v < 0, v + dim, v))))

        return for_range(math.prod(indices.shape), step, "i")

    (wrapped,) = extern([(indices.shape, INDEX)], [indices], body, "indices")
    return wrapped


def _gather_infer(types, attrs):
    data, indices = types
    require(data.rank >= 1, "cannot gather from a scalar")
    require(indices.dtype in INDEX_DTYPES, f"indices have dtype {indices.dtype}, expected int32 or int64")
    axis = normalize_axis(attrs["axis"], data.rank)
    return [data.with_shape(data.shape[:axis] + indices.shape + data.shape[axis + 1:])]


def _gather_ref(arrays, attrs):
    data, indices = arrays
    axis = normalize_axis(attrs["axis"], data.ndim)
    return [np.take(data, checked_indices(indices, data.shape[axis]), axis=axis)]


def _gather_compute(inputs, attrs, outputs):
    (data, indices), (out,) = inputs, outputs
    axis = normalize_axis(attrs["axis"], data.ndim)
    wrapped = checked_index_stage(indices, data.shape[axis])
    r = indices.ndim

    def element(*i):
        return data[i[:axis] + (wrapped[i[axis:axis + r]],) + i[axis + r:]]

    return [compute(out.shape, element, "gather")]


define("Gather", infer=_gather_infer, reference=_gather_ref, attrs={"axis": Int(0)}, inputs=2,
       fusion=Fusion.INJECTIVE, compute=_gather_compute, schedule=injective_schedule,
       doc="Index `data` along `axis` with an int tensor (negative indices wrap).")


def _gather_elements_infer(types, attrs):
    data, indices = types
    require(indices.dtype in INDEX_DTYPES, f"indices have dtype {indices.dtype}, expected int32 or int64")
    require(data.rank >= 1 and indices.rank == data.rank,
            f"indices have rank {indices.rank}, expected the data rank {data.rank} (>= 1)")
    axis = normalize_axis(attrs["axis"], data.rank)
    ok = all(i <= d for a, (i, d) in enumerate(zip(indices.shape, data.shape)) if a != axis)
    require(ok, f"indices shape {indices.shape} exceeds data shape {data.shape} outside axis {axis}")
    return [data.with_shape(indices.shape)]


def _gather_elements_ref(arrays, attrs):
    data, indices = arrays
    axis = normalize_axis(attrs["axis"], data.ndim)
    # Outside `axis`, output position i reads data position i: crop data to the indices' extent.
    crop = tuple(slice(None) if a == axis else slice(0, n) for a, n in enumerate(indices.shape))
    idx = checked_indices(indices, data.shape[axis])
    return [np.take_along_axis(data[crop], idx, axis=axis)]


def _gather_elements_compute(inputs, attrs, outputs):
    (data, indices), (out,) = inputs, outputs
    axis = normalize_axis(attrs["axis"], data.ndim)
    wrapped = checked_index_stage(indices, data.shape[axis])
    return [compute(out.shape, lambda *i: data[replaced(i, axis, wrapped[i])], "gather_elements")]


define("GatherElements", infer=_gather_elements_infer, reference=_gather_elements_ref,
       attrs={"axis": Int(0)}, inputs=2, fusion=Fusion.INJECTIVE,
       compute=_gather_elements_compute, schedule=injective_schedule,
       doc="out[i..] = data[i.. with indices[i..] at `axis`] (torch.gather).")


# --- Tile --------------------------------------------------------------------

def _tile_infer(types, attrs):
    (x,) = types
    repeats = attrs["repeats"]
    require(len(repeats) == x.rank, f"repeats {repeats} has {len(repeats)} entries for rank {x.rank}")
    require(all(r >= 0 for r in repeats), f"repeats {repeats} must be non-negative")
    return [x.with_shape(tuple(d * r for d, r in zip(x.shape, repeats)))]


def _tile_ref(arrays, attrs):
    (x,) = arrays
    return [np.tile(x, attrs["repeats"]).reshape(tuple(d * r for d, r in zip(x.shape, attrs["repeats"])))]


def _tile_compute(inputs, attrs, outputs):
    (x,), (out,) = inputs, outputs

    def element(*i):
        return x[tuple(k if d == n else k % d for k, d, n in zip(i, x.shape, out.shape))]

    return [compute(out.shape, element, "tile")]


define("Tile", infer=_tile_infer, reference=_tile_ref, attrs={"repeats": Ints(REQUIRED)},
       fusion=Fusion.INJECTIVE, compute=_tile_compute, schedule=injective_schedule,
       doc="Repeat the input `repeats[i]` times along each axis i.")


# --- Pad ---------------------------------------------------------------------

PAD_MODES = ("constant", "reflect", "edge", "wrap")


def pad_widths(shape: tuple[int, ...], attrs) -> list[tuple[int, int]]:
    """(before, after) per axis from the ONNX ``pads`` (all begins, then all ends) and ``axes``."""
    rank = len(shape)
    axes = normalize_axes(attrs["axes"], rank) if attrs["axes"] is not None else tuple(range(rank))
    pads = attrs["pads"]
    require(len(pads) == 2 * len(axes), f"pads {pads} need 2 x {len(axes)} entries")
    widths = [(0, 0)] * rank
    for i, axis in enumerate(axes):
        widths[axis] = (pads[i], pads[i + len(axes)])
    return widths


def _pad_infer(types, attrs):
    (x,) = types
    mode = attrs["mode"]
    require(mode in PAD_MODES, f"mode {mode!r} must be one of {', '.join(PAD_MODES)}")
    widths = pad_widths(x.shape, attrs)
    out = tuple(d + b + a for d, (b, a) in zip(x.shape, widths))
    require(all(d >= 0 for d in out), f"pads {attrs['pads']} crop more than the shape {x.shape}")
    for axis, (d, (b, a)) in enumerate(zip(x.shape, widths)):
        if mode != "constant" and (b > 0 or a > 0):
            # The padding is read from the input after cropping by the negative pads.
            kept = d + min(b, 0) + min(a, 0)
            require(kept > 0, f"mode {mode} cannot pad axis {axis} that has no elements")
            # reflect mirrors without repeating the edge; edge and wrap repeat as far as needed.
            if mode == "reflect":
                require(max(b, a) < kept, f"reflect pads {b, a} must be smaller than the axis size {kept}")
    return [x.with_shape(out)]


def _pad_ref(arrays, attrs):
    (x,) = arrays
    widths = pad_widths(x.shape, attrs)
    # Negative pads crop first; the positive ones then pad what remains.
    crop = tuple(slice(-min(b, 0), d + min(a, 0)) for d, (b, a) in zip(x.shape, widths))
    grow = [(max(b, 0), max(a, 0)) for b, a in widths]
    x = x[crop]
    if attrs["mode"] == "constant":
        value = np.asarray(attrs["constant_value"]).astype(x.dtype)
        return [np.pad(x, grow, mode="constant", constant_values=value)]
    return [np.pad(x, grow, mode=attrs["mode"])]


# Where a position p of a padded axis reads from, given the kept (cropped) length n,
# for p in [-before, n + after); constant mode reads nothing outside [0, n).
_PAD_SOURCES = {
    "edge": lambda p, n: minimum(maximum(p, 0), n - 1),
    "reflect": lambda p, n: select(p < 0, -p, select(p < n, p, 2 * (n - 1) - p)),  # pads < n
    "wrap": lambda p, n: p % n,
}


def _pad_compute(inputs, attrs, outputs):
    (x,), (out,) = inputs, outputs
    widths, mode = pad_widths(x.shape, attrs), attrs["mode"]
    if mode == "constant":
        value = np.asarray(attrs["constant_value"]).astype(x.dtype).item()  # as the reference casts it
        return [compute(out.shape, lambda *i: padded_read(x, [k - b for k, (b, _) in zip(i, widths)], value),
                        "pad")]

    def source(k: Expr, dim: int, before: int, after: int) -> Expr:
        """The input index output index ``k`` reads: negative pads crop, then the mode pads."""
        if before <= 0 and after <= 0:
            return k - before
        crop = -min(before, 0)
        kept = dim - crop + min(after, 0)
        return _PAD_SOURCES[mode](k - max(before, 0), kept) + crop

    def element(*i):
        return x[tuple(source(k, d, b, a) for k, d, (b, a) in zip(i, x.shape, widths))]

    return [compute(out.shape, element, "pad")]


define("Pad", infer=_pad_infer, reference=_pad_ref,
       attrs={"pads": Ints(REQUIRED), "constant_value": Float(0.0), "axes": Ints(None), "mode": Str("constant")},
       fusion=Fusion.INJECTIVE, compute=_pad_compute, schedule=injective_schedule,
       doc="Pad (or crop, for negative pads) each axis; mode constant, reflect, edge or wrap.")
