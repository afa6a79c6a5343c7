"""Shared helpers for op definitions: shape checks, broadcasting, axis handling."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..errors import ShapeError
from ..types import FLOAT_DTYPES, TensorType


def require(condition: bool, reason: str) -> None:
    """Raise :class:`ShapeError` with ``reason`` unless ``condition`` holds."""
    if not condition:
        raise ShapeError(reason)


def expect_dtype(t: TensorType, allowed: Iterable[str], what: str = "input") -> None:
    """Require ``t.dtype`` to be one of ``allowed``."""
    allowed = set(allowed)
    require(t.dtype in allowed, f"{what} has dtype {t.dtype}, expected one of {', '.join(sorted(allowed))}")


def expect_float(t: TensorType, what: str = "input") -> None:
    expect_dtype(t, FLOAT_DTYPES, what)


def same_dtype(types: Sequence[TensorType]) -> str:
    """The common dtype of ``types``; raises if they differ."""
    dtypes = {t.dtype for t in types}
    require(len(dtypes) == 1, f"inputs have different dtypes {', '.join(t.dtype for t in types)}")
    return types[0].dtype


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """Numpy (multidirectional) broadcasting of ``shapes``."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0}
        dims.discard(1)
        require(len(dims) <= 1, f"shapes {', '.join(str(tuple(s)) for s in shapes)} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def normalize_axis(axis: int, rank: int, what: str = "axis") -> int:
    """Map a possibly negative ``axis`` into ``[0, rank)``."""
    require(-rank <= axis < rank, f"{what} {axis} out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def normalize_axes(axes: Iterable[int], rank: int, what: str = "axes") -> tuple[int, ...]:
    """Normalize and de-duplicate-check a list of axes."""
    out = tuple(normalize_axis(a, rank, what) for a in axes)
    require(len(set(out)) == len(out), f"{what} {tuple(axes)} repeat an axis")
    return out


def same_as_input(types: list[TensorType], attrs: dict) -> list[TensorType]:
    """Inference for ops whose single output has the type of input 0."""
    return [types[0]]


def as_dtype(array: np.ndarray, dtype: str | np.dtype) -> np.ndarray:
    """``array`` as an ndarray of ``dtype`` (numpy scalars become 0-d arrays)."""
    return np.asarray(array).astype(dtype, copy=False)
