"""Tensor types: a static shape and an element dtype.

ember compiles for static shapes: every value in a graph has a fully known
shape. Dtypes are named as numpy names them; the IR text uses short names
(``f32[1,3,224,224]``, ``i64[]`` for a scalar).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ModelError

# dtype name -> short name used in the IR text
DTYPES: dict[str, str] = {
    "float32": "f32",
    "float16": "f16",
    "float64": "f64",
    "int8": "i8",
    "uint8": "u8",
    "int32": "i32",
    "int64": "i64",
    "bool": "bool",
}
SHORT_DTYPES: dict[str, str] = {short: name for name, short in DTYPES.items()}
FLOAT_DTYPES = frozenset({"float32", "float16", "float64"})
INT_DTYPES = frozenset({"int8", "uint8", "int32", "int64"})
NUMERIC_DTYPES = FLOAT_DTYPES | INT_DTYPES


def dtype_name(dtype) -> str:
    """Canonical ember dtype name of a numpy dtype (or name); raises on unsupported ones."""
    name = np.dtype(dtype).name
    if name not in DTYPES:
        raise ModelError(f"unsupported dtype {name}; ember supports {', '.join(DTYPES)}")
    return name


@dataclass(frozen=True)
class TensorType:
    """A static tensor type: ``dtype`` (a key of :data:`DTYPES`) and ``shape``.

    >>> TensorType("float32", (1, 3))
    TensorType(f32[1,3])
    """

    dtype: str
    shape: tuple[int, ...]

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ModelError(f"unsupported dtype {self.dtype!r}")
        shape = tuple(int(d) for d in self.shape)
        if any(d < 0 for d in shape):
            raise ModelError(f"negative dimension in shape {shape}")
        object.__setattr__(self, "shape", shape)

    @classmethod
    def of(cls, array: np.ndarray) -> "TensorType":
        """The type of a numpy array."""
        return cls(dtype_name(array.dtype), tuple(array.shape))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def nbytes(self) -> int:
        return self.size * self.np_dtype.itemsize

    def with_shape(self, shape) -> "TensorType":
        return TensorType(self.dtype, tuple(shape))

    def with_dtype(self, dtype: str) -> "TensorType":
        return TensorType(dtype, self.shape)

    def __str__(self) -> str:
        return f"{DTYPES[self.dtype]}[{','.join(map(str, self.shape))}]"

    def __repr__(self) -> str:
        return f"TensorType({self})"
