"""Shape ops: reshape, flatten, transpose, squeeze/unsqueeze, expand, depth<->space.

Every op here only moves elements around (``Fusion.INJECTIVE``) and accepts any
dtype. Shapes, axes and permutations are attributes (ONNX passes some of them
as constant inputs since opset 13; the frontend turns those into attributes).

Their computes map each output index to the input index it copies: reshapes
through :func:`reshape_indices` (row-major position kept), transposes through
:func:`permute_indices`. The data-movement and Resize families share these
helpers and :func:`injective_schedule`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..loops.expr import INDEX, Expr, const
from ..loops.locality import reuse_strided_lines
from ..loops.lower import flat_index
from ..loops.schedule import Schedule, create_schedule
from ..loops.tensor import Tensor, compute
from ..types import TensorType
from .common import broadcast_shapes, normalize_axes, require
from .compute import broadcast_read
from .registry import REQUIRED, Fusion, Int, Ints, Str, define

# --- index arithmetic shared by the movement ops ----------------------------

def unflatten(flat: Expr, shape: Sequence[int]) -> tuple[Expr, ...]:
    """Row-major indices in ``shape`` of the position ``flat`` (``0 <= flat < prod(shape)``)."""
    out = []
    for d, dim in enumerate(shape):
        stride = math.prod(shape[d + 1:])
        if dim == 1:
            out.append(const(0, INDEX))
            continue
        index = flat // stride if stride != 1 else flat
        out.append(index % dim if d > 0 else index)
    return tuple(out)


def _reshape_groups(shape: Sequence[int], new_shape: Sequence[int]) -> list[tuple[slice, slice]]:
    """Runs of dims of ``shape`` and ``new_shape`` with equal products, in order.

    (2, 3, 4) -> (6, 4) gives [(0:2, 0:1), (2:3, 1:2)]: only the first run needs
    division. Both shapes must hold the same, non-zero number of elements.
    """
    groups = []
    i = j = 0
    while i < len(shape) or j < len(new_shape):
        i0, j0, p, q = i, j, 1, 1
        while True:
            if i < len(shape) and (p <= q or j == len(new_shape)):
                p, i = p * shape[i], i + 1
            else:
                q, j = q * new_shape[j], j + 1
            if p == q:
                break
        groups.append((slice(i0, i), slice(j0, j)))
    return groups


def reshape_indices(indices: Sequence[Expr], shape: Sequence[int], new_shape: Sequence[int]) -> tuple[Expr, ...]:
    """Indices in ``new_shape`` of the element at ``indices`` in ``shape`` (same row-major position).

    Only runs of dims that merge or split need division: ``(i, j)`` in (6, 4)
    is ``(i // 3, i % 3, j)`` in (2, 3, 4).
    """
    if math.prod(shape) == 0:  # nothing is ever read
        return tuple(const(0, INDEX) for _ in new_shape)
    out: list[Expr] = []
    for old, new in _reshape_groups(shape, new_shape):
        flat = flat_index(list(indices[old]), shape[old])
        out += unflatten(flat, new_shape[new])
    return tuple(out)


def permute_indices(indices: Sequence[Expr], perm: Sequence[int]) -> tuple[Expr, ...]:
    """Input indices of a transpose by ``perm``: output axis ``k`` is input axis ``perm[k]``."""
    out: list[Expr] = [const(0, INDEX)] * len(perm)
    for k, p in enumerate(perm):
        out[p] = indices[k]
    return tuple(out)


def shifted(indices: Sequence[Expr], axis: int, offset: int) -> tuple[Expr, ...]:
    """``indices`` with ``offset`` added at ``axis``."""
    return tuple(i + offset if a == axis else i for a, i in enumerate(indices))


def replaced(indices: Sequence[Expr], axis: int, index: Expr) -> tuple[Expr, ...]:
    """``indices`` with ``index`` at ``axis``."""
    return tuple(index if a == axis else i for a, i in enumerate(indices))


def injective_schedule(outputs: list[Tensor], target, knobs=None) -> Schedule:
    """Stages tagged ``inline`` inlined; every other stage loops over one fused outer loop
    (parallel) around its innermost axis (stride 1 in the output, vectorized), the outer loops
    first ordered for strided reads (:func:`~ember.ir.loops.locality.reuse_strided_lines`)::

        for n: for c: for h: for w: ...     ==>     for parallel n.c.h: for vectorized w: ...

    Fusing costs a few divisions per row and keeps LLVM from fully unrolling
    nests of short loops, which on small tensors made compile times explode.
    """
    schedule = create_schedule(outputs)
    for stage in schedule.stages:
        if stage.is_extern:
            continue
        if stage.op.tag == "inline" and all(stage.tensor is not t for t in outputs):
            stage.compute_inline()
            continue
        reuse_strided_lines(schedule, stage)
        while len(stage.leaf) > 2:
            stage.fuse(stage.leaf[0], stage.leaf[1])
        if len(stage.leaf) == 2:
            stage.parallel(stage.leaf[0])
            stage.vectorize(stage.leaf[1])
    return schedule


# --- Reshape -----------------------------------------------------------------

def reshape_target(in_shape: tuple[int, ...], shape: tuple[int, ...], allowzero: int) -> tuple[int, ...]:
    """Resolve an ONNX Reshape ``shape`` against ``in_shape``.

    A 0 copies the input dim at that position (unless ``allowzero``, where it
    means a real 0), and one -1 takes whatever is left of the element count.
    """
    require(shape.count(-1) <= 1, f"shape {shape} has more than one -1")
    require(all(d >= -1 for d in shape), f"shape {shape} has a negative dim other than -1")
    if allowzero:
        require(not (0 in shape and -1 in shape), f"shape {shape} has both 0 and -1 with allowzero=1")
    out = []
    for i, d in enumerate(shape):
        if d == 0 and not allowzero:
            require(i < len(in_shape), f"shape {shape} copies dim {i} (0) but the input has rank {len(in_shape)}")
            d = in_shape[i]
        out.append(d)
    total = math.prod(in_shape)
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        require(known != 0 and total % known == 0,
                f"cannot infer the -1 of shape {shape} for input shape {tuple(in_shape)}")
        out[out.index(-1)] = total // known
    require(math.prod(out) == total,
            f"cannot reshape {tuple(in_shape)} ({total} elements) to {tuple(out)} ({math.prod(out)} elements)")
    return tuple(out)


def _reshape_infer(types, attrs):
    (x,) = types
    return [x.with_shape(reshape_target(x.shape, attrs["shape"], attrs["allowzero"]))]


def _reshape_ref(arrays, attrs):
    (x,) = arrays
    return [x.reshape(reshape_target(x.shape, attrs["shape"], attrs["allowzero"]))]


def _reshape_compute(inputs, attrs, outputs):
    """Every reshape-like op: out[i] is the input element at the same row-major position."""
    (x,), (out,) = inputs, outputs
    return [compute(out.shape, lambda *i: x[reshape_indices(i, out.shape, x.shape)], "reshape")]


define("Reshape", infer=_reshape_infer, reference=_reshape_ref,
       attrs={"shape": Ints(REQUIRED), "allowzero": Int(0)}, fusion=Fusion.INJECTIVE,
       compute=_reshape_compute, schedule=injective_schedule,
       doc="Reshape to `shape` (0 copies the input dim unless allowzero, -1 is inferred).")


# --- Flatten -----------------------------------------------------------------

def _flatten_shape(shape: tuple[int, ...], axis: int) -> tuple[int, int]:
    rank = len(shape)
    require(-rank <= axis <= rank, f"axis {axis} out of range [-{rank}, {rank}]")
    axis = axis + rank if axis < 0 else axis
    return (math.prod(shape[:axis]), math.prod(shape[axis:]))


def _flatten_infer(types, attrs):
    (x,) = types
    return [x.with_shape(_flatten_shape(x.shape, attrs["axis"]))]


def _flatten_ref(arrays, attrs):
    (x,) = arrays
    return [x.reshape(_flatten_shape(x.shape, attrs["axis"]))]


define("Flatten", infer=_flatten_infer, reference=_flatten_ref, attrs={"axis": Int(1)},
       fusion=Fusion.INJECTIVE, compute=_reshape_compute, schedule=injective_schedule,
       doc="Flatten to 2-D: dims before `axis` form rows, the rest columns.")


# --- Transpose ---------------------------------------------------------------

def _perm(rank: int, perm: tuple[int, ...] | None) -> tuple[int, ...]:
    if perm is None:
        return tuple(reversed(range(rank)))
    require(len(perm) == rank, f"perm {perm} has {len(perm)} entries for rank {rank}")
    require(sorted(perm) == list(range(rank)), f"perm {perm} is not a permutation of 0..{rank - 1}")
    return tuple(perm)


def _transpose_infer(types, attrs):
    (x,) = types
    perm = _perm(x.rank, attrs["perm"])
    return [x.with_shape(tuple(x.shape[p] for p in perm))]


def _transpose_ref(arrays, attrs):
    (x,) = arrays
    return [np.transpose(x, _perm(x.ndim, attrs["perm"]))]


def _transpose_compute(inputs, attrs, outputs):
    (x,), (out,) = inputs, outputs
    perm = _perm(x.ndim, attrs["perm"])
    return [compute(out.shape, lambda *i: x[permute_indices(i, perm)], "transpose")]


define("Transpose", infer=_transpose_infer, reference=_transpose_ref, attrs={"perm": Ints(None)},
       fusion=Fusion.INJECTIVE, compute=_transpose_compute, schedule=injective_schedule,
       doc="Permute dims by `perm` (default: reverse them).")


# --- Squeeze / Unsqueeze -----------------------------------------------------

def _squeeze_shape(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    if axes is None:
        return tuple(d for d in shape if d != 1)
    axes = normalize_axes(axes, len(shape))
    for a in axes:
        require(shape[a] == 1, f"cannot squeeze axis {a} of size {shape[a]}")
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _unsqueeze_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    rank = len(shape) + len(axes)
    axes = set(normalize_axes(axes, rank))
    rest = iter(shape)
    return tuple(1 if i in axes else next(rest) for i in range(rank))


def _reshaper(shape_fn):
    """Inference and reference for an op that only reshapes, given ``shape_fn(shape, axes)``."""
    def infer(types, attrs):
        (x,) = types
        return [x.with_shape(shape_fn(x.shape, attrs["axes"]))]

    def reference(arrays, attrs):
        (x,) = arrays
        return [x.reshape(shape_fn(x.shape, attrs["axes"]))]

    return infer, reference


_sq_infer, _sq_ref = _reshaper(_squeeze_shape)
define("Squeeze", infer=_sq_infer, reference=_sq_ref, attrs={"axes": Ints(None)},
       fusion=Fusion.INJECTIVE, compute=_reshape_compute, schedule=injective_schedule,
       doc="Drop the size-1 dims `axes` (default: every size-1 dim).")

_unsq_infer, _unsq_ref = _reshaper(_unsqueeze_shape)
define("Unsqueeze", infer=_unsq_infer, reference=_unsq_ref, attrs={"axes": Ints(REQUIRED)},
       fusion=Fusion.INJECTIVE, compute=_reshape_compute, schedule=injective_schedule,
       doc="Insert size-1 dims at `axes` (positions in the output).")


# --- Expand ------------------------------------------------------------------

def _expand_shape(shape: tuple[int, ...], target: tuple[int, ...]) -> tuple[int, ...]:
    require(all(d >= 0 for d in target), f"shape {target} has negative dims")
    return broadcast_shapes(shape, target)


def _expand_infer(types, attrs):
    (x,) = types
    return [x.with_shape(_expand_shape(x.shape, attrs["shape"]))]


def _expand_ref(arrays, attrs):
    (x,) = arrays
    # broadcast_to returns a read-only view; downstream code may write into outputs.
    return [np.broadcast_to(x, _expand_shape(x.shape, attrs["shape"])).copy()]


def _expand_compute(inputs, attrs, outputs):
    (x,), (out,) = inputs, outputs
    return [compute(out.shape, lambda *i: broadcast_read(x, i, out.shape), "expand")]


define("Expand", infer=_expand_infer, reference=_expand_ref, attrs={"shape": Ints(REQUIRED)},
       fusion=Fusion.INJECTIVE, compute=_expand_compute, schedule=injective_schedule,
       doc="Broadcast to `shape` (bidirectionally: 1-dims of `shape` keep the input's).")


# --- DepthToSpace / SpaceToDepth --------------------------------------------
# Both are a reshape to 6-D, a transpose and a reshape back; the tables below
# hold the 6-D split and the permutation of each variant.

def _check_nchw(x: TensorType, blocksize: int) -> tuple[int, int, int, int]:
    require(x.rank == 4, f"expects a 4-D NCHW input, got rank {x.rank}")
    require(blocksize >= 1, f"blocksize {blocksize} must be positive")
    return x.shape


def _depth_to_space_plan(x: TensorType, attrs) -> tuple[tuple, tuple, tuple]:
    """(6-D shape, permutation, output shape) of DepthToSpace."""
    b, mode = attrs["blocksize"], attrs["mode"]
    n, c, h, w = _check_nchw(x, b)
    require(mode in ("DCR", "CRD"), f"mode {mode!r} must be DCR or CRD")
    require(c % (b * b) == 0, f"channels {c} not divisible by blocksize^2 = {b * b}")
    oc = c // (b * b)
    if mode == "DCR":
        split, perm = (n, b, b, oc, h, w), (0, 3, 4, 1, 5, 2)
    else:
        split, perm = (n, oc, b, b, h, w), (0, 1, 4, 2, 5, 3)
    return split, perm, (n, oc, h * b, w * b)


def _space_to_depth_plan(x: TensorType, attrs) -> tuple[tuple, tuple, tuple]:
    """(6-D shape, permutation, output shape) of SpaceToDepth."""
    b = attrs["blocksize"]
    n, c, h, w = _check_nchw(x, b)
    require(h % b == 0 and w % b == 0, f"spatial dims {h}x{w} not divisible by blocksize {b}")
    return (n, c, h // b, b, w // b, b), (0, 3, 5, 1, 2, 4), (n, c * b * b, h // b, w // b)


def _block_shuffle(plan_fn):
    """Inference, reference and compute of a reshape-transpose-reshape op planned by ``plan_fn``."""
    def infer(types, attrs):
        (x,) = types
        return [x.with_shape(plan_fn(x, attrs)[2])]

    def reference(arrays, attrs):
        (x,) = arrays
        split, perm, out = plan_fn(TensorType.of(x), attrs)
        return [np.ascontiguousarray(x.reshape(split).transpose(perm)).reshape(out)]

    def compute_fn(inputs, attrs, outputs):
        (x,) = inputs
        split, perm, out = plan_fn(TensorType(x.dtype, x.shape), attrs)
        transposed = tuple(split[p] for p in perm)

        def element(*i):
            moved = permute_indices(reshape_indices(i, out, transposed), perm)
            return x[reshape_indices(moved, split, x.shape)]

        return [compute(out, element, "shuffle")]

    return infer, reference, compute_fn


_d2s_infer, _d2s_ref, _d2s_compute = _block_shuffle(_depth_to_space_plan)
define("DepthToSpace", infer=_d2s_infer, reference=_d2s_ref,
       attrs={"blocksize": Int(REQUIRED), "mode": Str("DCR")}, fusion=Fusion.INJECTIVE,
       compute=_d2s_compute, schedule=injective_schedule,
       doc="Move channel blocks into blocksize x blocksize spatial tiles (mode DCR or CRD).")

_s2d_infer, _s2d_ref, _s2d_compute = _block_shuffle(_space_to_depth_plan)
define("SpaceToDepth", infer=_s2d_infer, reference=_s2d_ref, attrs={"blocksize": Int(REQUIRED)},
       fusion=Fusion.INJECTIVE, compute=_s2d_compute, schedule=injective_schedule,
       doc="Move blocksize x blocksize spatial tiles into channels.")
