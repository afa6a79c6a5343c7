"""The op registry: one :class:`OpDef` per op, defined once, looked up by name.

An op definition carries everything ember knows about an op: its attributes
with defaults, its fusion class, its type/shape inference, its numpy reference
implementation, and (filled in by the loop-level IR) its compute definition and
tunable schedule template. Frontends map onto these ops; they never define
semantics of their own.

Conventions every op follows:

* ``infer(types, attrs) -> list[TensorType]`` gets the input types and the
  normalized attributes (every declared attribute present, defaults filled)
  and raises :class:`ShapeError` with a reason on inconsistent inputs.
* ``reference(arrays, attrs) -> list[np.ndarray]`` computes exactly what the
  op means, with outputs of exactly the inferred dtype and shape.
* ``compute(tensors, attrs, output_types) -> list[Tensor]`` defines the same
  thing in the loop-level IR (:mod:`ember.ir.loops`), from which native code
  is generated; ``schedule(outputs, target, knobs=None) -> Schedule`` says how
  to loop over it (optional: the default schedule is the naive loop nest). It
  is the op's tunable template: every choice it makes (tile sizes, loop order,
  unrolling, ...) is asked of ``knobs`` (:class:`ember.ir.loops.knobs.Knobs`),
  so the autotuner can search them and records can replay them.
* Attribute names and meanings follow the newest ONNX opset; inputs that ONNX
  takes as (constant) tensors for shapes, axes, pads, ... are attributes here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import AttrError, ShapeError, UnsupportedOpError
from ..types import TensorType


class Fusion(enum.Enum):
    """How an op may fuse with its neighbours (TVM's op patterns)."""

    ELEMENTWISE = "elementwise"  # out[i] = f(in[i]), same shapes
    BROADCAST = "broadcast"  # elementwise with numpy broadcasting
    INJECTIVE = "injective"  # each output element reads one input element (reshape, transpose, slice)
    REDUCTION = "reduction"  # reduces axes (sum, max, softmax)
    OUT_FUSABLE = "out_fusable"  # complex op whose output can take an elementwise epilogue (conv, matmul)
    OPAQUE = "opaque"  # cannot fuse


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

_KINDS = ("int", "float", "str", "ints", "floats")


@dataclass(frozen=True)
class Attr:
    """An attribute declaration: its kind and default (``REQUIRED`` or ``None`` for absent)."""

    kind: str
    default: Any = REQUIRED

    def __post_init__(self):
        assert self.kind in _KINDS, self.kind
        if self.default is not REQUIRED and self.default is not None:
            object.__setattr__(self, "default", self.coerce(self.default, "default"))

    def coerce(self, value: Any, name: str) -> Any:
        """Normalize ``value`` to this kind (int, float, str or a tuple of them)."""
        if value is None:
            if self.default is None:
                return None
            raise AttrError(f"attribute {name!r} may not be None")
        try:
            if self.kind == "int":
                if isinstance(value, (float, np.floating)) and not float(value).is_integer():
                    raise ValueError(value)
                return int(value)
            if self.kind == "float":
                return float(value)
            if self.kind == "str":
                if isinstance(value, bytes):
                    value = value.decode()
                if not isinstance(value, str):
                    raise ValueError(value)
                return value
            items = np.asarray(value).reshape(-1).tolist() if not isinstance(value, (list, tuple)) else value
            if self.kind == "ints":
                return tuple(Attr("int").coerce(v, name) for v in items)
            return tuple(float(v) for v in items)
        except (TypeError, ValueError):
            raise AttrError(f"attribute {name!r} expects {self.kind}, got {value!r}") from None


def Int(default: Any = REQUIRED) -> Attr:
    return Attr("int", default)


def Float(default: Any = REQUIRED) -> Attr:
    return Attr("float", default)


def Str(default: Any = REQUIRED) -> Attr:
    return Attr("str", default)


def Ints(default: Any = REQUIRED) -> Attr:
    return Attr("ints", default)


def Floats(default: Any = REQUIRED) -> Attr:
    return Attr("floats", default)


InferFn = Callable[[list[TensorType], dict], list[TensorType]]
ReferenceFn = Callable[[list[np.ndarray], dict], list[np.ndarray]]
# compute(input tensors, attrs, output types) -> output tensors (ember.ir.loops.Tensor)
ComputeFn = Callable[[list, dict, list[TensorType]], list]
# schedule(output tensors, target, knobs=None) -> ember.ir.loops.Schedule
ScheduleFn = Callable[..., Any]


@dataclass(frozen=True)
class OpDef:
    """Everything about one op. See the module docstring for the conventions."""

    name: str
    infer: InferFn
    reference: ReferenceFn
    attrs: Mapping[str, Attr] = field(default_factory=dict)
    num_inputs: tuple[int, int | None] = (1, 1)  # (min, max); max None = variadic
    fusion: Fusion = Fusion.OPAQUE
    doc: str = ""
    # The loop-level definition: what each output element is (ComputeFn), and
    # the tunable schedule template (ScheduleFn; None = the default schedule).
    compute: Callable | None = None
    schedule: Callable | None = None

    def normalize_attrs(self, attrs: Mapping[str, Any]) -> dict:
        """All declared attributes, defaults filled, values coerced; rejects unknown or missing ones."""
        unknown = sorted(set(attrs) - set(self.attrs))
        if unknown:
            raise AttrError(f"unknown attribute(s) {', '.join(unknown)}", op=self.name)
        out = {}
        for name, decl in self.attrs.items():
            if name in attrs:
                out[name] = decl.coerce(attrs[name], name)
            elif decl.default is REQUIRED:
                raise AttrError(f"missing required attribute {name!r}", op=self.name)
            else:
                out[name] = decl.default
        return out

    def check_arity(self, n: int) -> None:
        lo, hi = self.num_inputs
        if n < lo or (hi is not None and n > hi):
            want = f"{lo}" if lo == hi else f"{lo}..{hi if hi is not None else ''}"
            raise ShapeError(f"takes {want} inputs, got {n}", op=self.name)

    def infer_types(self, types: list[TensorType], attrs: dict) -> list[TensorType]:
        """Check arity and run shape inference (``attrs`` already normalized)."""
        self.check_arity(len(types))
        return list(self.infer(list(types), attrs))

    def run_reference(self, arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
        """Run the numpy reference (``attrs`` already normalized)."""
        return list(self.reference(list(arrays), attrs))


_REGISTRY: dict[str, OpDef] = {}


def register(opdef: OpDef) -> OpDef:
    """Add ``opdef`` to the registry; an op name can be registered once."""
    if opdef.name in _REGISTRY:
        raise ValueError(f"op {opdef.name} registered twice")
    _REGISTRY[opdef.name] = opdef
    return opdef


def define(name: str, *, infer: InferFn, reference: ReferenceFn, attrs: Mapping[str, Attr] | None = None,
           inputs: int | tuple[int, int | None] = 1, fusion: Fusion = Fusion.OPAQUE, doc: str = "",
           compute: ComputeFn | None = None, schedule: ScheduleFn | None = None) -> OpDef:
    """Define and register an op: ``inputs`` is a count or a (min, max) range."""
    arity = (inputs, inputs) if isinstance(inputs, int) else tuple(inputs)
    return register(OpDef(name=name, infer=infer, reference=reference, attrs=dict(attrs or {}),
                          num_inputs=arity, fusion=fusion, doc=doc, compute=compute, schedule=schedule))


def get_op(name: str) -> OpDef:
    """The definition of op ``name``; :class:`UnsupportedOpError` if there is none."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnsupportedOpError("no such op in ember's registry", op=name) from None


def is_registered(name: str) -> bool:
    return name in _REGISTRY


def registered_ops() -> list[str]:
    """Names of all registered ops, sorted."""
    return sorted(_REGISTRY)
