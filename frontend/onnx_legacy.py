"""ONNX converters for ops that do not map one-to-one onto a registry op.

Three kinds live here: ops that only produce constants (Constant,
ConstantOfShape, Shape, Size), aliases (Identity, Dropout in inference), and
old-opset semantics translated into the newest ones (Softmax before opset 13
flattens to 2-D, Pad/Split attributes that later became inputs, the legacy
``broadcast``/``axis`` of binary ops before opset 7, Upsample).
"""

from __future__ import annotations

import math

import numpy as np

from ember.ir.errors import UnsupportedOpError

from .onnx import ONNX_DTYPES, NodeContext, convert_generic, converter

# Attributes of old opsets that carry no meaning for inference.
IGNORED_LEGACY_ATTRS = ("consumed_inputs", "is_test")


def _constant(ctx: NodeContext, array) -> list:
    return [ctx.importer.graph.add_constant(np.asarray(array), ctx.node.output[0])]


@converter("Constant", frontend_only=True)
def convert_constant(ctx: NodeContext):
    """A Constant node becomes a constant value."""
    attrs = ctx.attrs
    if "value" in attrs:
        return _constant(ctx, attrs["value"])
    scalar_kinds = {"value_float": np.float32, "value_int": np.int64,
                    "value_floats": np.float32, "value_ints": np.int64}
    for name, dtype in scalar_kinds.items():
        if name in attrs:
            return _constant(ctx, np.asarray(attrs[name], dtype=dtype))
    raise UnsupportedOpError(f"Constant with attribute(s) {', '.join(attrs) or 'none'} is not supported")


@converter("ConstantOfShape", frontend_only=True)
def convert_constant_of_shape(ctx: NodeContext):
    shape = ctx.const(0)
    value = ctx.attrs.get("value", np.zeros(1, np.float32))
    return _constant(ctx, np.full(tuple(int(d) for d in shape.reshape(-1)), value.reshape(-1)[0], value.dtype))


@converter("Shape", frontend_only=True)
def convert_shape(ctx: NodeContext):
    shape = ctx.input(0).type.shape
    rank = len(shape)
    start = ctx.attrs.get("start", 0)
    end = ctx.attrs.get("end", rank)
    clamp = lambda i: min(max(i + rank if i < 0 else i, 0), rank)  # noqa: E731
    return _constant(ctx, np.array(shape[clamp(start):clamp(end)], dtype=np.int64))


@converter("Size", frontend_only=True)
def convert_size(ctx: NodeContext):
    return _constant(ctx, np.array(ctx.input(0).type.size, dtype=np.int64))


@converter("Identity", frontend_only=True)
def convert_identity(ctx: NodeContext):
    """Identity aliases its input (graph outputs keep their names through the importer)."""
    return [ctx.input(0)]


@converter("Dropout", frontend_only=True)
def convert_dropout(ctx: NodeContext):
    """Dropout in inference is the identity; its mask output is all true."""
    training = ctx.const(2) if ctx.opset >= 12 else None
    if training is not None and bool(training.reshape(-1)[0]):
        raise UnsupportedOpError("training_mode=true is not supported (ember compiles for inference)")
    x = ctx.input(0)
    mask = ctx.importer.graph.add_constant(np.ones(x.type.shape, bool), ctx.fresh("mask"))
    return [x, mask]


@converter("Softmax", "LogSoftmax", "Hardmax")
def convert_softmax(ctx: NodeContext):
    """Before opset 13 these coerce the input to 2-D at ``axis`` (default 1)."""
    if ctx.opset >= 13:
        return convert_generic(ctx)
    x = ctx.input(0)
    rank = x.type.rank
    axis = ctx.attrs.get("axis", 1)
    axis = axis + rank if axis < 0 else axis
    if axis == rank - 1:
        return ctx.emit(ctx.op_type, [x], {"axis": -1})
    shape = x.type.shape
    flat = [math.prod(shape[:axis]), math.prod(shape[axis:])]
    (x2,) = ctx.emit("Reshape", [x], {"shape": flat}, final=False)
    (y2,) = ctx.emit(ctx.op_type, [x2], {"axis": 1}, final=False)
    return ctx.emit("Reshape", [y2], {"shape": list(shape)})


@converter("Split")
def convert_split(ctx: NodeContext):
    """``split`` was an attribute before opset 13; the output count comes from the node."""
    attrs = dict(ctx.attrs)
    if attrs.get("split") is None and not ctx.has_input(1) and attrs.get("num_outputs") is None:
        attrs["num_outputs"] = len(ctx.node.output)
    return convert_generic(ctx, attrs=attrs)


@converter("Pad")
def convert_pad(ctx: NodeContext):
    """Before opset 11, pads and the pad value were attributes (``paddings`` in opset 1)."""
    if ctx.opset >= 11:
        return convert_generic(ctx)
    attrs = dict(ctx.attrs)
    if "paddings" in attrs:
        attrs["pads"] = attrs.pop("paddings")
    if "value" in attrs:
        attrs["constant_value"] = attrs.pop("value")
    return ctx.emit("Pad", [ctx.input(0)], attrs)


def _legacy_broadcast(ctx: NodeContext):
    """Binary ops before opset 7: ``broadcast=1`` aligns B to A at ``axis`` (default: trailing)."""
    attrs = {k: v for k, v in ctx.attrs.items() if k not in IGNORED_LEGACY_ATTRS}
    broadcast = attrs.pop("broadcast", 0)
    axis = attrs.pop("axis", None)
    a, b = ctx.input(0), ctx.input(1)
    if broadcast and axis is not None:
        axis = axis + a.type.rank if axis < 0 else axis
        trailing = a.type.rank - axis - b.type.rank
        if trailing < 0:
            raise UnsupportedOpError(f"legacy broadcast of {b.type} into {a.type} at axis {axis} is invalid")
        if trailing:
            (b,) = ctx.emit("Reshape", [b], {"shape": list(b.type.shape) + [1] * trailing}, final=False)
    return ctx.emit(ctx.op_type, [a, b], attrs)


@converter("PRelu")
def convert_prelu(ctx: NodeContext):
    """Before opset 7 a 1-D slope of size C applied per channel (axis 1)."""
    x, slope = ctx.input(0), ctx.input(1)
    if ctx.opset < 7 and slope.type.rank == 1 and x.type.rank > 2 and slope.type.shape[0] == x.type.shape[1] > 1:
        (slope,) = ctx.emit("Reshape", [slope], {"shape": [slope.type.shape[0]] + [1] * (x.type.rank - 2)},
                            final=False)
    return ctx.emit("PRelu", [x, slope])


for _op in ("Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Less", "Greater"):
    converter(_op)(lambda ctx: _legacy_broadcast(ctx) if ctx.opset < 7 else convert_generic(ctx))


@converter("Gemm")
def convert_gemm(ctx: NodeContext):
    """Gemm before opset 7 had a ``broadcast`` flag; numpy broadcasting of C is equivalent."""
    attrs = {k: v for k, v in ctx.attrs.items() if k != "broadcast"}
    return convert_generic(ctx, attrs=attrs)


@converter("BatchNormalization")
def convert_batch_norm(ctx: NodeContext):
    """Old opsets carry ``is_test``/``spatial``/``consumed_inputs``; only spatial=1 is meaningful."""
    attrs = {k: v for k, v in ctx.attrs.items() if k not in IGNORED_LEGACY_ATTRS}
    if attrs.pop("spatial", 1) != 1:
        raise UnsupportedOpError("spatial=0 (per-activation statistics) is not supported")
    if ctx.opset < 9:
        attrs.pop("momentum", None)
    return convert_generic(ctx, attrs=attrs)


@converter("Cast")
def convert_cast(ctx: NodeContext):
    """``to`` is an ONNX element-type enum (a string in opset 1-5)."""
    attrs = dict(ctx.attrs)
    to = attrs["to"]
    if isinstance(to, str):
        to = {"FLOAT": 1, "UINT8": 2, "INT8": 3, "INT32": 6, "INT64": 7, "BOOL": 9, "FLOAT16": 10,
              "DOUBLE": 11}.get(to.upper(), -1)
    if to not in ONNX_DTYPES:
        raise UnsupportedOpError(f"cast to element type {attrs['to']} is not supported")
    attrs["to"] = ONNX_DTYPES[to]
    return convert_generic(ctx, attrs=attrs)


@converter("Upsample", frontend_only=True)
def convert_upsample(ctx: NodeContext):
    """Upsample (opsets 7-9) and Resize-10: asymmetric coordinates; nearest truncates when
    upsampling and rounds up when downsampling (onnxruntime's semantics)."""
    scales = ctx.const(1) if ctx.opset >= 9 else np.asarray(ctx.attrs.get("scales"), np.float32)
    scales = [float(s) for s in scales.reshape(-1)]
    mode = ctx.attrs.get("mode", "nearest")
    resized = [s for s in scales if s != 1.0]
    if mode == "nearest" and any(s < 1 for s in resized) and any(s > 1 for s in resized):
        raise UnsupportedOpError(f"nearest resize that upsamples some axes and downsamples others ({scales})")
    return ctx.emit("Resize", [ctx.input(0)], {
        "scales": scales,
        "mode": "linear" if mode in ("linear", "bilinear") else mode,
        "coordinate_transformation_mode": "asymmetric",
        "nearest_mode": "ceil" if any(s < 1 for s in resized) else "floor",
    })


@converter("Resize")
def convert_resize(ctx: NodeContext):
    """Resize-10 took (X, scales) with Upsample's asymmetric/floor semantics."""
    if ctx.opset >= 11:
        return convert_generic(ctx)
    return convert_upsample(ctx)


@converter("GroupNormalization")
def convert_group_norm(ctx: NodeContext):
    """Opsets 18-20 gave scale and bias per group; opset 21 per channel: repeat them."""
    if ctx.opset >= 21:
        return convert_generic(ctx)
    x, scale, bias = ctx.input(0), ctx.input(1), ctx.input(2)
    groups = ctx.attrs["num_groups"]
    channels = x.type.shape[1]
    if scale.type.shape != (groups,) or channels % groups:
        return convert_generic(ctx)  # let the op's inference report the inconsistency
    repeat = channels // groups
    per_channel = []
    for v in (scale, bias):
        (v2,) = ctx.emit("Unsqueeze", [v], {"axes": [1]}, final=False)
        (v3,) = ctx.emit("Expand", [v2], {"shape": [groups, repeat]}, final=False)
        (v4,) = ctx.emit("Reshape", [v3], {"shape": [channels]}, final=False)
        per_channel.append(v4)
    return ctx.emit("GroupNormalization", [x, *per_channel], ctx.attrs)


@converter("MeanVarianceNormalization")
def convert_mvn(ctx: NodeContext):
    """Before opset 9: ``across_channels`` and ``normalize_variance`` instead of ``axes``."""
    attrs = dict(ctx.attrs)
    if ctx.opset < 9:
        if not attrs.pop("normalize_variance", 1):
            raise UnsupportedOpError("normalize_variance=0 is not supported")
        attrs = {"axes": [0, 1, 2, 3] if attrs.pop("across_channels", 0) else [0, 2, 3]}
    return convert_generic(ctx, attrs=attrs)


@converter("LpPool")
def convert_lp_pool(ctx: NodeContext):
    """LpPool-1 had a float ``p``."""
    attrs = dict(ctx.attrs)
    if "p" in attrs:
        attrs["p"] = int(attrs["p"])
    return convert_generic(ctx, attrs=attrs)


for _op in ("Relu", "Sigmoid", "Tanh", "Exp", "Log", "Neg", "Abs", "Sqrt", "Reciprocal", "Floor", "Ceil",
            "LeakyRelu", "Elu", "Selu", "HardSigmoid", "Clip", "Sum", "Max", "Min", "Mean",
            "InstanceNormalization", "Concat", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Flatten"):
    converter(_op)(lambda ctx: convert_generic(
        ctx, attrs={k: v for k, v in ctx.attrs.items() if k not in IGNORED_LEGACY_ATTRS}))
