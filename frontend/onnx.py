"""ONNX import: ``ModelProto`` (or a path, or bytes) → :class:`ember.ir.Graph`.

Every ONNX op maps onto the ember registry op of the same name, attribute for
attribute. ONNX inputs that must be constant (shapes, axes, pads, scales, ...)
become attributes (:data:`INPUT_ATTRS`). Old-opset semantics are translated
explicitly by the converters in :mod:`ember.frontend.onnx_legacy`. Nodes whose
inputs are all constant are evaluated at import with the ops' references, so
``Shape``/``ConstantOfShape``/weight-building subgraphs become constants.

Symbolic input dimensions must be bound: ``input_shapes={"x": (1, 3, 224, 224)}``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from ember.ir import Graph, TensorType, Value
from ember.ir.errors import EmberError, InputError, ModelError, UnsupportedOpError
from ember.ir.ops import get_op, is_registered

# ONNX TensorProto element type -> ember dtype name
ONNX_DTYPES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.BOOL: "bool",
}

REDUCE_OPS = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
              "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")

# ONNX inputs that ember takes as attributes: op -> {input index: attribute name}
INPUT_ATTRS: dict[str, dict[int, str]] = {
    "Reshape": {1: "shape"},
    "Slice": {1: "starts", 2: "ends", 3: "axes", 4: "steps"},
    "Clip": {1: "min", 2: "max"},
    "Pad": {1: "pads", 2: "constant_value", 3: "axes"},
    "Split": {1: "split"},
    "Squeeze": {1: "axes"},
    "Unsqueeze": {1: "axes"},
    "Expand": {1: "shape"},
    "Tile": {1: "repeats"},
    "Resize": {1: "roi", 2: "scales", 3: "sizes"},
    "TopK": {1: "k"},
    "CumSum": {1: "axis"},
    **{op: {1: "axes"} for op in REDUCE_OPS},
}
# attribute names that hold a scalar (the constant input is a 0-d or 1-element tensor)
SCALAR_ATTRS = {"min", "max", "constant_value", "k", "axis"}

DOMAINS = ("", "ai.onnx")


def load_model(model: Any) -> onnx.ModelProto:
    """A ``ModelProto`` from a path, bytes or a ``ModelProto``; :class:`ModelError` if it is not ONNX."""
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"no such model file: {path}")
        data = path.read_bytes()
        where = str(path)
    elif isinstance(model, (bytes, bytearray)):
        data, where = bytes(model), "the given bytes"
    else:
        raise ModelError(f"cannot import a {type(model).__name__}: expected a path, bytes or onnx.ModelProto")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as err:  # protobuf raises DecodeError and others
        raise ModelError(f"{where} is not a valid ONNX model (truncated or not ONNX): {err}") from None
    if not proto.HasField("graph") or not proto.graph.output:
        raise ModelError(f"{where} is not a valid ONNX model: it has no graph or no graph outputs")
    if isinstance(model, (str, os.PathLike)) and any(
            t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
        onnx.load_external_data_for_model(proto, str(Path(model).parent))
    return proto


def import_onnx(model: Any, input_shapes: Mapping[str, Sequence[int]] | None = None,
                input_values: Mapping[str, np.ndarray] | None = None) -> Graph:
    """Import an ONNX model into an ember graph (see the module docstring).

    ``input_values`` binds graph inputs to fixed values: they become constants
    (needed when an input feeds a shape, axes or pads operand).

    Raises :class:`UnsupportedOpError` listing every unsupported op of the
    model at once, :class:`ModelError` for a malformed model, and
    :class:`InputError` for unbound symbolic dimensions.
    """
    proto = load_model(model)
    return _Importer(proto, dict(input_shapes or {}), dict(input_values or {})).run()


def onnx_opset(proto: onnx.ModelProto) -> int:
    for entry in proto.opset_import:
        if entry.domain in DOMAINS:
            return entry.version
    if proto.opset_import:
        return 1
    raise ModelError("model declares no opset")


def tensor_to_array(tensor: onnx.TensorProto, what: str) -> np.ndarray:
    """A numpy array from a TensorProto, in one of ember's dtypes."""
    if tensor.data_type not in ONNX_DTYPES:
        name = onnx.TensorProto.DataType.Name(tensor.data_type)
        raise UnsupportedOpError(f"{what} has dtype {name}, which ember does not support")
    try:
        return np.asarray(numpy_helper.to_array(tensor)).astype(ONNX_DTYPES[tensor.data_type], copy=False)
    except Exception as err:
        raise ModelError(f"{what} holds malformed tensor data: {err}") from None


def attribute_values(node: onnx.NodeProto) -> dict[str, Any]:
    """The node's attributes as plain Python values (strings decoded, tensors as arrays)."""
    out: dict[str, Any] = {}
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.TENSOR:
            out[attr.name] = tensor_to_array(attr.t, f"attribute {attr.name!r}")
        elif attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS,
                           onnx.AttributeProto.SPARSE_TENSOR, onnx.AttributeProto.TENSORS):
            raise UnsupportedOpError(f"attribute {attr.name!r} of kind "
                                     f"{onnx.AttributeProto.AttributeType.Name(attr.type)} is not supported")
        else:
            value = onnx.helper.get_attribute_value(attr)
            if isinstance(value, bytes):
                value = value.decode()
            elif isinstance(value, list):
                value = [v.decode() if isinstance(v, bytes) else v for v in value]
            out[attr.name] = value
    return out


def _toposorted(nodes: Sequence[onnx.NodeProto], available: set[str]) -> list[onnx.NodeProto]:
    """ONNX nodes in an order where every input is defined before use (stable)."""
    pending = list(nodes)
    order: list[onnx.NodeProto] = []
    defined = set(available) | {""}
    while pending:
        ready = [n for n in pending if all(i in defined for i in n.input)]
        if not ready:
            node = pending[0]
            missing = [i for i in node.input if i not in defined]
            raise ModelError(f"input {missing[0]!r} is never defined (dangling name or a cycle)",
                             node=node.name or node.output[0], op=node.op_type)
        ready_ids = {id(n) for n in ready}
        order.extend(ready)
        defined.update(o for n in ready for o in n.output)
        pending = [n for n in pending if id(n) not in ready_ids]
    return order


class NodeContext:
    """What a converter sees of one ONNX node: its inputs, attributes and opset."""

    def __init__(self, importer: "_Importer", node: onnx.NodeProto):
        self.importer = importer
        self.node = node
        self.op_type = node.op_type
        self.name = node.name or (node.output[0] if node.output else node.op_type)
        self.opset = importer.opset
        self.attrs = attribute_values(node)

    @property
    def num_inputs(self) -> int:
        return len(self.node.input)

    def has_input(self, i: int) -> bool:
        return i < len(self.node.input) and self.node.input[i] != ""

    def input(self, i: int) -> Value:
        if not self.has_input(i):
            raise ModelError(f"input {i} is missing", node=self.name, op=self.op_type)
        return self.importer.env[self.node.input[i]]

    def inputs(self) -> list[Value]:
        """All given tensor inputs; an omitted optional input before a given one is an error."""
        given = list(self.node.input)
        while given and given[-1] == "":
            given.pop()
        if "" in given:
            raise UnsupportedOpError(f"omitted optional input {given.index('')} before a given one",
                                     node=self.name, op=self.op_type)
        return [self.importer.env[n] for n in given]

    def const(self, i: int) -> np.ndarray | None:
        """Input ``i`` as a constant array (None if omitted); error if it is computed at run time."""
        if not self.has_input(i):
            return None
        value = self.input(i)
        if not value.is_constant:
            raise UnsupportedOpError(f"input {i} ({self.node.input[i]!r}) must be a constant: ember needs it "
                                     "at compile time", node=self.name, op=self.op_type)
        return value.data

    def emit(self, op: str, inputs: Sequence[Value], attrs: Mapping[str, Any] | None = None, *,
             final: bool = True) -> list[Value]:
        """Add an ember node (or, when every input is constant, its folded result).

        A ``final`` node's outputs take the ONNX node's output names; an
        intermediate one's get fresh names.
        """
        names = list(self.node.output) if final else None
        return self.importer.emit(op, inputs, attrs or {}, node_name=self.name, output_names=names)

    def fresh(self, hint: str) -> str:
        return self.importer.fresh(f"{self.name}/{hint}")


Converter = Callable[[NodeContext], Sequence[Value | None]]
CONVERTERS: dict[str, Converter] = {}
# ONNX ops handled entirely by their converter, with no same-named registry op
FRONTEND_OPS: set[str] = set()


def converter(*op_types: str, frontend_only: bool = False) -> Callable[[Converter], Converter]:
    """Register a converter for ONNX ops that do not map one-to-one onto a registry op.

    ``frontend_only`` ops are supported without a same-named registry op.
    """
    def wrap(fn: Converter) -> Converter:
        for op in op_types:
            CONVERTERS[op] = fn
            if frontend_only:
                FRONTEND_OPS.add(op)
        return fn
    return wrap


def convert_generic(ctx: NodeContext, op: str | None = None, attrs: dict | None = None) -> list[Value]:
    """The same-named ember op; constant inputs listed in INPUT_ATTRS become attributes."""
    attrs = dict(ctx.attrs if attrs is None else attrs)
    as_attrs = INPUT_ATTRS.get(ctx.op_type, {})
    tensors: list[Value] = []
    for i, name in enumerate(ctx.node.input):
        if i in as_attrs:
            data = ctx.const(i)
            # an empty tensor means "not given" for these operands
            if data is not None and not (data.size == 0 and as_attrs[i] in ("roi", "scales", "sizes", "axes")):
                attrs[as_attrs[i]] = data.reshape(-1)[0].item() if as_attrs[i] in SCALAR_ATTRS else data.tolist()
        elif name:
            if len(tensors) != i:
                raise UnsupportedOpError(f"omitted optional input before input {i}", node=ctx.name, op=ctx.op_type)
            tensors.append(ctx.input(i))
    return ctx.emit(op or ctx.op_type, tensors, attrs)


class _Importer:
    def __init__(self, proto: onnx.ModelProto, input_shapes: dict[str, Sequence[int]],
                 input_values: dict[str, np.ndarray]):
        self.proto = proto
        self.input_values = input_values
        self.opset = onnx_opset(proto)
        self.graph = Graph(proto.graph.name or "main")
        self.env: dict[str, Value] = {}
        self.input_shapes = input_shapes
        g = proto.graph
        self.onnx_names = {n for node in g.node for n in list(node.input) + list(node.output)}
        self.onnx_names |= {v.name for v in g.input} | {t.name for t in g.initializer}
        self.used_names = {i for n in g.node for i in n.input} | {o.name for o in g.output}

    def fresh(self, hint: str) -> str:
        """A value name unused in the graph and in the ONNX model."""
        name = self.graph.fresh_name(hint)
        while name in self.onnx_names:
            name = self.graph.fresh_name(name + "_")
        return name

    def run(self) -> Graph:
        g = self.proto.graph
        self._check_supported(g.node)
        self._declare_inputs(g)
        for node in _toposorted(g.node, set(self.env)):
            self._convert(node)
        self._set_outputs(g)
        return self.graph

    def _check_supported(self, nodes) -> None:
        """Raise one error listing every unsupported op of the model."""
        bad: dict[str, list[str]] = {}
        for node in nodes:
            op = node.op_type
            if node.domain not in DOMAINS:
                key = f"{node.domain}.{op}"
            elif op in FRONTEND_OPS or is_registered(op):
                continue
            else:
                key = op
            bad.setdefault(key, []).append(node.name or (node.output[0] if node.output else "?"))
        if bad:
            listing = "; ".join(f"{op} (node{'s' if len(n) > 1 else ''} {', '.join(map(repr, n[:5]))}"
                                f"{', ...' if len(n) > 5 else ''})" for op, n in sorted(bad.items()))
            raise UnsupportedOpError(f"the model uses {len(bad)} unsupported op{'s' if len(bad) > 1 else ''}: "
                                     f"{listing}")

    def _declare_inputs(self, g: onnx.GraphProto) -> None:
        initializers = {t.name: t for t in g.initializer}
        for name, tensor in initializers.items():
            self.env[name] = self.graph.add_constant(tensor_to_array(tensor, f"initializer {name!r}"), name)
        real_inputs = {v.name for v in g.input if v.name not in initializers}
        unknown = (set(self.input_shapes) | set(self.input_values)) - real_inputs
        if unknown:
            raise InputError(f"{', '.join(sorted(map(repr, unknown)))} is not a graph input "
                             f"(inputs: {', '.join(sorted(real_inputs))})")
        for info in g.input:
            if info.name in initializers:  # old opsets list initializers as inputs too
                continue
            if info.name in self.input_values:
                self.env[info.name] = self._bound_input(info)
                continue
            self.env[info.name] = self.graph.add_input(info.name, self._input_type(info))

    def _bound_input(self, info: onnx.ValueInfoProto) -> Value:
        """A graph input fixed by ``input_values``: a constant, checked against the declared type."""
        array = np.asarray(self.input_values[info.name])
        self.input_shapes.setdefault(info.name, array.shape)
        declared = self._input_type(info)
        if TensorType.of(array) != declared:
            raise InputError(f"input_values gives {TensorType.of(array)} for input {info.name!r}, "
                             f"declared {declared}")
        return self.graph.add_constant(array, info.name)

    def _input_type(self, info: onnx.ValueInfoProto) -> TensorType:
        if info.type.WhichOneof("value") != "tensor_type":
            raise UnsupportedOpError(f"graph input {info.name!r} is not a tensor "
                                     f"({info.type.WhichOneof('value')}); ember supports tensor inputs only")
        tt = info.type.tensor_type
        if tt.elem_type not in ONNX_DTYPES:
            raise UnsupportedOpError(f"graph input {info.name!r} has dtype "
                                     f"{onnx.TensorProto.DataType.Name(tt.elem_type)}, which ember does not support")
        dtype = ONNX_DTYPES[tt.elem_type]
        declared = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
        bound = self.input_shapes.get(info.name)
        if bound is not None:
            bound = tuple(int(d) for d in bound)
            if tt.HasField("shape") and (len(bound) != len(declared) or any(
                    isinstance(d, int) and d != b for d, b in zip(declared, bound))):
                raise InputError(f"input_shapes gives {bound} for input {info.name!r}, whose declared shape is "
                                 f"({', '.join(map(str, declared))})")
            return TensorType(dtype, bound)
        if not tt.HasField("shape") or any(not isinstance(d, int) for d in declared):
            shown = "(" + ", ".join(map(str, declared)) + ")" if tt.HasField("shape") else "unknown"
            raise InputError(f"graph input {info.name!r} has shape {shown} with symbolic or unknown dims; "
                             f"bind them with input_shapes={{{info.name!r}: (...)}} "
                             f"(command line: --input-shape {info.name}=d0,d1,...)")
        return TensorType(dtype, tuple(declared))

    def _convert(self, node: onnx.NodeProto) -> None:
        ctx = NodeContext(self, node)
        convert = CONVERTERS.get(node.op_type, convert_generic)
        try:
            results = list(convert(ctx))
        except EmberError as err:
            raise err.at(node=ctx.name, op=node.op_type) from None
        for i, name in enumerate(node.output):
            value = results[i] if i < len(results) else None
            if value is None:
                if name and name in self.used_names:
                    raise UnsupportedOpError(f"output {i} ({name!r}) is not supported, but the model uses it",
                                             node=ctx.name, op=node.op_type)
                continue
            if name:
                self.env[name] = value

    def emit(self, op: str, inputs: Sequence[Value], attrs: Mapping[str, Any], *, node_name: str,
             output_names: Sequence[str] | None) -> list[Value]:
        """Add a node, or fold it into constants when every input is constant."""
        opdef = get_op(op)
        norm = opdef.normalize_attrs(attrs)
        types = opdef.infer_types([v.type for v in inputs], norm)
        given = list(output_names or [])
        names = [given[i] if i < len(given) and given[i] else self.fresh(f"{node_name}/{op}" + (f"/{i}" if i else ""))
                 for i in range(len(types))]
        if not (inputs and all(v.is_constant for v in inputs)):
            return self.graph.add_node(op, inputs, norm, name=node_name, output_names=names).outputs
        arrays = opdef.run_reference([v.data for v in inputs], norm)
        folded = []
        for name, t, array in zip(names, types, arrays):
            array = np.asarray(array)
            if TensorType.of(array) != t:
                raise RuntimeError(f"internal error: {op} reference gave {TensorType.of(array)}, inference {t}")
            folded.append(self.graph.add_constant(array, name))
        return folded

    def _set_outputs(self, g: onnx.GraphProto) -> None:
        outputs = []
        for info in g.output:
            if info.name not in self.env:
                raise ModelError(f"graph output {info.name!r} is never computed")
            value = self.env[info.name]
            if value.name != info.name or any(v is value for v in outputs):
                # an output that aliases another value keeps its own name through an Identity
                value = self.graph.add_node("Identity", [value], output_names=[self.graph.fresh_name(info.name)]).output
            outputs.append(value)
        self.graph.set_outputs(outputs)


from . import onnx_legacy  # noqa: E402,F401  (registers the special converters)
