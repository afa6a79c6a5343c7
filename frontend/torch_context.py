"""What a converter of :mod:`ember.frontend.torch_ops` sees of an FX node, and the small functions they share.

:class:`NodeContext` gives a node's arguments by their ATen schema names
(defaults filled in, FX nodes replaced by ember values), its output's static
shape and dtype, and emitters that add ember nodes (folding constant inputs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from ember.ir import Value
from ember.ir.errors import UnsupportedOpError

if TYPE_CHECKING:
    from .torch import _Importer

TORCH_DTYPES = {torch.float32: "float32", torch.float16: "float16", torch.float64: "float64", torch.int8: "int8",
                torch.uint8: "uint8", torch.int32: "int32", torch.int64: "int64", torch.bool: "bool"}


def ember_dtype(dtype: torch.dtype, what: str = "a tensor") -> str:
    """The ember dtype name of a torch dtype; :class:`UnsupportedOpError` for the ones ember lacks."""
    if dtype not in TORCH_DTYPES:
        raise UnsupportedOpError(f"{what} has dtype {dtype}, which ember does not support")
    return TORCH_DTYPES[dtype]


class NodeContext:
    """What a converter sees of one FX node: its arguments by schema name, its output metadata, emitters."""

    def __init__(self, importer: _Importer, node: torch.fx.Node):
        self.importer = importer
        self.node = node
        schema = node.target._schema
        self.args: dict[str, Any] = {}
        for i, arg in enumerate(schema.arguments):
            if i < len(node.args):
                raw = node.args[i]
            elif arg.name in node.kwargs:
                raw = node.kwargs[arg.name]
            else:
                raw = arg.default_value if arg.has_default_value() else None
            self.args[arg.name] = self._resolve(raw)
        self.positional = list(self.args.values())

    def _resolve(self, raw: Any) -> Any:
        if isinstance(raw, torch.fx.Node):
            return self.importer.env[raw]
        if isinstance(raw, (list, tuple)):
            return [self._resolve(r) for r in raw]
        return raw

    def __getitem__(self, name: str) -> Any:
        return self.args[name]

    def tensor(self, name: str) -> Value:
        value = self.args[name]
        if not isinstance(value, Value):
            raise UnsupportedOpError(f"argument {name!r} must be a tensor, got {type(value).__name__}")
        return value

    @property
    def out_meta(self) -> torch.Tensor:
        meta = self.node.meta["val"]
        return meta[0] if isinstance(meta, (tuple, list)) else meta

    @property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.out_meta.shape)

    @property
    def out_dtype(self) -> str:
        return ember_dtype(self.out_meta.dtype, f"the output of {self.node.name}")

    def used_outputs(self) -> set[int]:
        """Indices of the outputs (of a multi-output op) that the graph reads."""
        return {user.args[1] for user in self.node.users}

    def emit(self, op: str, inputs: list[Value], attrs: dict | None = None) -> list[Value]:
        return self.importer.emit(op, inputs, attrs or {}, self.node.name)

    def apply(self, op: str, inputs: list[Value], attrs: dict | None = None) -> Value:
        return self.emit(op, inputs, attrs)[0]

    def constant(self, array: Any, dtype: str | None = None) -> Value:
        array = np.asarray(array, dtype=dtype)
        return self.importer.graph.add_constant(array, self.importer.graph.fresh_name(f"{self.node.name}.const"))

    def as_tensor(self, value: Any, dtype: str) -> Value:
        """``value`` (a tensor or a Python scalar) as a tensor of ``dtype``."""
        if isinstance(value, Value):
            return value if value.type.dtype == dtype else self.apply("Cast", [value], {"to": dtype})
        return self.constant(value, dtype)


Converter = Callable[[NodeContext], Any]


def normalize_axis(axis: int, rank: int) -> int:
    """``axis`` counted from the front (torch allows negative axes)."""
    return axis + rank if axis < 0 else axis


def rank_of(value: Value) -> int:
    """The number of dimensions of ``value``."""
    return len(value.type.shape)


def per_spatial_axis(values: Any, n: int) -> list[int]:
    """A per-spatial-axis list from an int or a 1-element list (torch's ``_pair`` style arguments)."""
    values = [values] if isinstance(values, int) else list(values)
    return values * n if len(values) == 1 else values
