"""Converters from core ATen ops (after ``torch.export`` decompositions) to ember registry ops.

:data:`CONVERTERS` maps an ATen overload name (``str(node.target)``, e.g.
``aten.convolution.default``) to a converter: a function of a
:class:`NodeContext` returning the node's ember value (or, for ops with several
outputs, a list with ``None`` for outputs ember does not produce). Simple
one-to-one ops are tables (:data:`UNARY`, :data:`BINARY`, :data:`COMPARE`);
everything else is one small function per op family. A converter raises
:class:`UnsupportedOpError` for argument values ember cannot express; the
importer collects those with the module path of the node.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ember.ir import Value
from ember.ir.errors import UnsupportedOpError

from .torch_context import Converter, NodeContext, ember_dtype, normalize_axis, rank_of
from .torch_ops_nn import (
    convert_adaptive_avg_pool, convert_addmm, convert_avg_pool, convert_batch_norm, convert_convolution,
    convert_embedding, convert_group_norm, convert_index_select, convert_layer_norm, convert_matmul, convert_max_pool,
    softmax,
)

# ---------------------------------------------------------------- elementwise
UNARY = {
    "aten.relu.default": "Relu", "aten.sigmoid.default": "Sigmoid", "aten.tanh.default": "Tanh",
    "aten.exp.default": "Exp", "aten.log.default": "Log", "aten.sqrt.default": "Sqrt",
    "aten.reciprocal.default": "Reciprocal", "aten.neg.default": "Neg", "aten.abs.default": "Abs",
    "aten.erf.default": "Erf", "aten.sin.default": "Sin", "aten.cos.default": "Cos", "aten.floor.default": "Floor",
    "aten.ceil.default": "Ceil", "aten.round.default": "Round", "aten.sign.default": "Sign",
    "aten.logical_not.default": "Not", "aten.hardswish.default": "HardSwish",
}
BINARY = {
    "aten.add.Tensor": "Add", "aten.add.Scalar": "Add", "aten.sub.Tensor": "Sub", "aten.sub.Scalar": "Sub",
    "aten.mul.Tensor": "Mul", "aten.mul.Scalar": "Mul", "aten.div.Tensor": "Div", "aten.div.Scalar": "Div",
    "aten.pow.Tensor_Tensor": "Pow", "aten.pow.Tensor_Scalar": "Pow", "aten.pow.Scalar": "Pow",
    "aten.maximum.default": "Max", "aten.minimum.default": "Min", "aten.remainder.Tensor": "Mod",
    "aten.remainder.Scalar": "Mod", "aten.logical_and.default": "And", "aten.logical_or.default": "Or",
    "aten.logical_xor.default": "Xor",
}
BITWISE = {  # on bool tensors only
    "aten.bitwise_and.Tensor": "And", "aten.bitwise_or.Tensor": "Or", "aten.bitwise_xor.Tensor": "Xor",
    "aten.bitwise_not.default": "Not",
}
COMPARE = {
    "aten.eq.Tensor": "Equal", "aten.eq.Scalar": "Equal", "aten.lt.Tensor": "Less", "aten.lt.Scalar": "Less",
    "aten.le.Tensor": "LessOrEqual", "aten.le.Scalar": "LessOrEqual", "aten.gt.Tensor": "Greater",
    "aten.gt.Scalar": "Greater", "aten.ge.Tensor": "GreaterOrEqual", "aten.ge.Scalar": "GreaterOrEqual",
}


def unary(op: str) -> Converter:
    return lambda ctx: ctx.apply(op, [ctx.as_tensor(ctx.positional[0], ctx.out_dtype)])


def binary(op: str) -> Converter:
    """``op`` on both operands cast to the output dtype (torch's type promotion); honours ``alpha``."""
    def convert(ctx: NodeContext) -> Value:
        dtype = ctx.out_dtype
        a, b = ctx.positional[0], ctx.positional[1]
        alpha = ctx.args.get("alpha", 1)
        if alpha not in (None, 1):
            b = b * alpha if not isinstance(b, Value) else ctx.apply("Mul", [ctx.as_tensor(b, dtype),
                                                                            ctx.as_tensor(alpha, dtype)])
        if op == "Mod" and dtype.startswith("float"):
            raise UnsupportedOpError("float remainder is not supported")
        return ctx.apply(op, [ctx.as_tensor(a, dtype), ctx.as_tensor(b, dtype)])
    return convert


def bitwise(op: str) -> Converter:
    def convert(ctx: NodeContext) -> Value:
        if ctx.out_dtype != "bool":
            raise UnsupportedOpError(f"bitwise ops on {ctx.out_dtype} tensors are not supported (bool only)")
        return ctx.apply(op, [ctx.as_tensor(v, "bool") for v in ctx.positional if isinstance(v, Value)])
    return convert


def convert_div_mode(ctx: NodeContext) -> Value:
    """div with rounding_mode "floor" or "trunc" (integers are divided in float64, exact below 2**53)."""
    mode, dtype = ctx["rounding_mode"], ctx.out_dtype
    if mode is None:
        return binary("Div")(ctx)
    work = dtype if dtype.startswith("float") else "float64"
    quotient = ctx.apply("Div", [ctx.as_tensor(ctx["self"], work), ctx.as_tensor(ctx["other"], work)])
    rounded = ctx.apply("Floor", [quotient])
    if mode == "trunc":
        negative = ctx.apply("Less", [quotient, ctx.constant(0, work)])
        rounded = ctx.apply("Where", [negative, ctx.apply("Ceil", [quotient]), rounded])
    return ctx.as_tensor(rounded, dtype)


def _promoted(*operands: Any) -> str:
    """The dtype torch computes a comparison of ``operands`` (tensors and Python scalars) in."""
    tensors = [torch.empty((0,) * len(v.type.shape), dtype=getattr(torch, v.type.dtype)) if isinstance(v, Value)
               else v for v in operands]  # of the operands' ranks: 0-d tensors promote like scalars
    return ember_dtype(torch.result_type(*tensors[:2]))


def compare(op: str, negate: bool = False) -> Converter:
    def convert(ctx: NodeContext) -> Value:
        a, b = ctx.positional[0], ctx.positional[1]
        dtype = _promoted(a, b)
        result = ctx.apply(op, [ctx.as_tensor(a, dtype), ctx.as_tensor(b, dtype)])
        return ctx.apply("Not", [result]) if negate else result
    return convert


def convert_rsub(ctx: NodeContext) -> Value:
    """``other - alpha * self``."""
    dtype = ctx.out_dtype
    scaled = ctx.as_tensor(ctx["self"], dtype)
    if ctx["alpha"] != 1:
        scaled = ctx.apply("Mul", [scaled, ctx.as_tensor(ctx["alpha"], dtype)])
    return ctx.apply("Sub", [ctx.as_tensor(ctx["other"], dtype), scaled])


def convert_rsqrt(ctx: NodeContext) -> Value:
    return ctx.apply("Reciprocal", [ctx.apply("Sqrt", [ctx.as_tensor(ctx["self"], ctx.out_dtype)])])


def convert_silu(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    return ctx.apply("Mul", [x, ctx.apply("Sigmoid", [x])])


def convert_gelu(ctx: NodeContext) -> Value:
    return ctx.apply("Gelu", [ctx.tensor("self")], {"approximate": ctx["approximate"]})


def convert_hardsigmoid(ctx: NodeContext) -> Value:
    return ctx.apply("HardSigmoid", [ctx.tensor("self")], {"alpha": 1 / 6, "beta": 0.5})


def convert_leaky_relu(ctx: NodeContext) -> Value:
    return ctx.apply("LeakyRelu", [ctx.tensor("self")], {"alpha": ctx["negative_slope"]})


def convert_elu(ctx: NodeContext) -> Value:
    if ctx["scale"] != 1 or ctx["input_scale"] != 1:
        raise UnsupportedOpError("elu with scale or input_scale other than 1 is not supported")
    return ctx.apply("Elu", [ctx.tensor("self")], {"alpha": ctx["alpha"]})


def convert_clamp(ctx: NodeContext) -> Value:
    """clamp / clamp_min / clamp_max / hardtanh with scalar bounds: Clip; with tensor bounds: Max and Min."""
    x = ctx.tensor("self")
    low = ctx.args.get("min", ctx.args.get("min_val"))
    high = ctx.args.get("max", ctx.args.get("max_val"))
    if isinstance(low, Value) or isinstance(high, Value):
        dtype = ctx.out_dtype
        if low is not None:
            x = ctx.apply("Max", [ctx.as_tensor(x, dtype), ctx.as_tensor(low, dtype)])
        if high is not None:
            x = ctx.apply("Min", [ctx.as_tensor(x, dtype), ctx.as_tensor(high, dtype)])
        return x
    return ctx.apply("Clip", [x], {"min": low, "max": high})


def convert_where(ctx: NodeContext) -> Value:
    dtype = ctx.out_dtype
    return ctx.apply("Where", [ctx.as_tensor(ctx["condition"], "bool"), ctx.as_tensor(ctx["self"], dtype),
                               ctx.as_tensor(ctx["other"], dtype)])


def convert_cast(ctx: NodeContext) -> Value:
    """``_to_copy`` / ``to``: a Cast when the dtype changes (devices and layouts are ignored)."""
    return ctx.as_tensor(ctx.tensor("self"), ctx.out_dtype)


def convert_alias(ctx: NodeContext) -> Value:
    """clone, alias, detach, contiguous, dropout in eval mode: the input itself."""
    return ctx.positional[0]


def convert_dropout(ctx: NodeContext) -> Value:
    if ctx["train"]:
        raise UnsupportedOpError("dropout in training mode is not supported (call module.eval())")
    return ctx.tensor("input")


# ---------------------------------------------------------------- creation (constant results)
def convert_full(ctx: NodeContext) -> Value:
    """full, full_like, zeros_like, ones_like, scalar_tensor: a constant of the output's shape."""
    fill = ctx.args.get("fill_value", ctx.args.get("s"))
    if fill is None:
        fill = 1 if "ones" in str(ctx.node.target) else 0
    return ctx.constant(np.full(ctx.out_shape, fill), ctx.out_dtype)


def convert_arange(ctx: NodeContext) -> Value:
    start, end, step = ctx.args.get("start", 0), ctx["end"], ctx.args.get("step", 1)
    return ctx.constant(np.arange(start, end, step), ctx.out_dtype)


# ---------------------------------------------------------------- reductions
def _reduce_axes(ctx: NodeContext, x: Value) -> list[int]:
    dims = ctx.args.get("dim")
    if dims is None or dims == []:
        return list(range(rank_of(x)))
    return [normalize_axis(d, rank_of(x)) for d in ([dims] if isinstance(dims, int) else dims)]


def reduce(op: str) -> Converter:
    """mean / sum / amax / amin / prod over ``dim`` (all axes when absent or empty), ``keepdim``."""
    def convert(ctx: NodeContext) -> Value:
        x = ctx.tensor("self")
        attrs = {"axes": _reduce_axes(ctx, x), "keepdims": int(bool(ctx.args.get("keepdim", False)))}
        return ctx.apply(op, [ctx.as_tensor(x, ctx.out_dtype)], attrs)
    return convert


def convert_any(ctx: NodeContext) -> Value:
    """any: the maximum of the input as 0/1."""
    x = ctx.tensor("self")
    attrs = {"axes": _reduce_axes(ctx, x), "keepdims": int(bool(ctx.args.get("keepdim", False)))}
    as_int = ctx.as_tensor(ctx.apply("Not", [ctx.apply("Equal", [x, ctx.constant(0, x.type.dtype)])]), "int32")
    return ctx.as_tensor(ctx.apply("ReduceMax", [as_int], attrs), "bool")


def arg_reduce(value_op: str, index_op: str) -> Converter:
    """max.dim / min.dim (values and indices) and argmax / argmin."""
    def convert(ctx: NodeContext) -> Any:
        x = ctx.tensor("self")
        keep = int(bool(ctx["keepdim"]))
        if ctx["dim"] is None:
            raise UnsupportedOpError("argmax/argmin over all axes is not supported")
        axis = normalize_axis(ctx["dim"], rank_of(x))
        index = ctx.apply(index_op, [x], {"axis": axis, "keepdims": keep})
        if str(ctx.node.target).startswith(("aten.argmax", "aten.argmin")):
            return index
        values = ctx.apply(value_op, [x], {"axes": [axis], "keepdims": keep}) if 0 in ctx.used_outputs() else None
        return [values, index]
    return convert


# ---------------------------------------------------------------- shapes and views
def convert_reshape(ctx: NodeContext) -> Value:
    """view / _unsafe_view / reshape / flatten: Reshape to the output's static shape."""
    x = ctx.positional[0]
    return x if x.type.shape == ctx.out_shape else ctx.apply("Reshape", [x], {"shape": list(ctx.out_shape)})


def convert_permute(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    return ctx.apply("Transpose", [x], {"perm": [normalize_axis(d, rank_of(x)) for d in ctx["dims"]]})


def convert_transpose(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    perm = list(range(rank_of(x)))
    if len(perm) >= 2:
        a, b = (normalize_axis(ctx["dim0"], len(perm)), normalize_axis(ctx["dim1"], len(perm))) if "dim0" in ctx.args else (0, 1)
        perm[a], perm[b] = perm[b], perm[a]
    return ctx.apply("Transpose", [x], {"perm": perm})


def convert_expand(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    return x if x.type.shape == ctx.out_shape else ctx.apply("Expand", [x], {"shape": list(ctx.out_shape)})


def convert_cat(ctx: NodeContext) -> Value:
    dtype = ctx.out_dtype
    tensors = [ctx.as_tensor(t, dtype) for t in ctx["tensors"] if 0 not in t.type.shape]
    axis = normalize_axis(ctx["dim"], len(ctx.out_shape))
    return tensors[0] if len(tensors) == 1 else ctx.apply("Concat", tensors, {"axis": axis})


def convert_split(ctx: NodeContext) -> list[Value]:
    """split_with_sizes / split.Tensor: Split with explicit sizes."""
    x = ctx.tensor("self")
    axis = normalize_axis(ctx["dim"], rank_of(x))
    sizes = ctx.args.get("split_sizes")
    if sizes is None:
        size, extent = ctx["split_size"], x.type.shape[axis]
        sizes = [min(size, extent - start) for start in range(0, extent, size)]
    return ctx.emit("Split", [x], {"axis": axis, "split": list(sizes)}) if len(sizes) > 1 else [x]


def convert_slice(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    axis = normalize_axis(ctx["dim"], rank_of(x))
    extent = x.type.shape[axis]
    start, end, step = slice(ctx["start"], ctx["end"], ctx["step"]).indices(extent)
    if (start, end, step) == (0, extent, 1):
        return x
    return ctx.apply("Slice", [x], {"starts": [start], "ends": [end], "axes": [axis], "steps": [step]})


def convert_select(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    axis = normalize_axis(ctx["dim"], rank_of(x))
    index = ctx["index"] + x.type.shape[axis] if ctx["index"] < 0 else ctx["index"]
    return ctx.apply("Gather", [x, ctx.constant(index, "int64")], {"axis": axis})


def convert_squeeze(ctx: NodeContext) -> Value:
    """squeeze (all, one dim, or dims): Squeeze of the listed axes that have extent 1."""
    x = ctx.tensor("self")
    dims = ctx.args.get("dim")
    dims = range(rank_of(x)) if dims is None else ([dims] if isinstance(dims, int) else dims)
    axes = sorted({normalize_axis(d, rank_of(x)) for d in dims if x.type.shape[normalize_axis(d, rank_of(x))] == 1})
    return ctx.apply("Squeeze", [x], {"axes": axes}) if axes else x


def convert_unsqueeze(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    return ctx.apply("Unsqueeze", [x], {"axes": [normalize_axis(ctx["dim"], rank_of(x) + 1)]})


def convert_pad(ctx: NodeContext) -> Value:
    """constant_pad_nd: torch lists (begin, end) pairs from the last axis backwards."""
    x, pad = ctx.tensor("self"), list(ctx["pad"])
    if any(p < 0 for p in pad):
        raise UnsupportedOpError("negative padding is not supported")
    rank = rank_of(x)
    begins, ends = [0] * rank, [0] * rank
    for i in range(len(pad) // 2):
        begins[rank - 1 - i], ends[rank - 1 - i] = pad[2 * i], pad[2 * i + 1]
    return ctx.apply("Pad", [x], {"pads": begins + ends, "constant_value": float(ctx["value"])})


CONVERTERS: dict[str, Converter] = {
    **{name: unary(op) for name, op in UNARY.items()},
    **{name: binary(op) for name, op in BINARY.items()},
    **{name: compare(op) for name, op in COMPARE.items()},
    **{name: bitwise(op) for name, op in BITWISE.items()},
    "aten.div.Tensor_mode": convert_div_mode,
    "aten.div.Scalar_mode": convert_div_mode,
    "aten.ne.Tensor": compare("Equal", negate=True),
    "aten.ne.Scalar": compare("Equal", negate=True),
    "aten.rsub.Scalar": convert_rsub,
    "aten.rsub.Tensor": convert_rsub,
    "aten.rsqrt.default": convert_rsqrt,
    "aten.silu.default": convert_silu,
    "aten.gelu.default": convert_gelu,
    "aten.hardsigmoid.default": convert_hardsigmoid,
    "aten.leaky_relu.default": convert_leaky_relu,
    "aten.elu.default": convert_elu,
    "aten.clamp.default": convert_clamp,
    "aten.clamp.Tensor": convert_clamp,
    "aten.clamp_min.default": convert_clamp,
    "aten.clamp_max.default": convert_clamp,
    "aten.hardtanh.default": convert_clamp,
    "aten.where.self": convert_where,
    "aten.where.ScalarSelf": convert_where,
    "aten.where.ScalarOther": convert_where,
    "aten.where.Scalar": convert_where,
    "aten._to_copy.default": convert_cast,
    "aten.clone.default": convert_alias,
    "aten.alias.default": convert_alias,
    "aten.detach.default": convert_alias,
    "aten.lift_fresh_copy.default": convert_alias,
    "aten.contiguous.default": convert_alias,
    "aten.dropout.default": convert_dropout,
    "aten.full.default": convert_full,
    "aten.full_like.default": convert_full,
    "aten.zeros_like.default": convert_full,
    "aten.ones_like.default": convert_full,
    "aten.scalar_tensor.default": convert_full,
    "aten.arange.default": convert_arange,
    "aten.arange.start": convert_arange,
    "aten.arange.start_step": convert_arange,
    "aten.addmm.default": convert_addmm,
    "aten.mm.default": convert_matmul,
    "aten.bmm.default": convert_matmul,
    "aten.embedding.default": convert_embedding,
    "aten.index_select.default": convert_index_select,
    "aten.convolution.default": convert_convolution,
    "aten.max_pool1d_with_indices.default": convert_max_pool,
    "aten.max_pool2d_with_indices.default": convert_max_pool,
    "aten.max_pool3d_with_indices.default": convert_max_pool,
    "aten.avg_pool1d.default": convert_avg_pool,
    "aten.avg_pool2d.default": convert_avg_pool,
    "aten.avg_pool3d.default": convert_avg_pool,
    "aten._adaptive_avg_pool1d.default": convert_adaptive_avg_pool,
    "aten._adaptive_avg_pool2d.default": convert_adaptive_avg_pool,
    "aten._adaptive_avg_pool3d.default": convert_adaptive_avg_pool,
    "aten._native_batch_norm_legit_no_training.default": convert_batch_norm,
    "aten.native_batch_norm.default": convert_batch_norm,
    "aten.native_layer_norm.default": convert_layer_norm,
    "aten.native_group_norm.default": convert_group_norm,
    "aten._softmax.default": softmax("Softmax"),
    "aten._log_softmax.default": softmax("LogSoftmax"),
    "aten.mean.dim": reduce("ReduceMean"),
    "aten.mean.default": reduce("ReduceMean"),
    "aten.sum.dim_IntList": reduce("ReduceSum"),
    "aten.sum.default": reduce("ReduceSum"),
    "aten.amax.default": reduce("ReduceMax"),
    "aten.amin.default": reduce("ReduceMin"),
    "aten.prod.dim_int": reduce("ReduceProd"),
    "aten.any.dim": convert_any,
    "aten.any.dims": convert_any,
    "aten.any.default": convert_any,
    "aten.max.dim": arg_reduce("ReduceMax", "ArgMax"),
    "aten.min.dim": arg_reduce("ReduceMin", "ArgMin"),
    "aten.argmax.default": arg_reduce("ReduceMax", "ArgMax"),
    "aten.argmin.default": arg_reduce("ReduceMin", "ArgMin"),
    "aten.view.default": convert_reshape,
    "aten._unsafe_view.default": convert_reshape,
    "aten.reshape.default": convert_reshape,
    "aten.flatten.using_ints": convert_reshape,
    "aten.permute.default": convert_permute,
    "aten.transpose.int": convert_transpose,
    "aten.t.default": convert_transpose,
    "aten.expand.default": convert_expand,
    "aten.cat.default": convert_cat,
    "aten.split_with_sizes.default": convert_split,
    "aten.split.Tensor": convert_split,
    "aten.slice.Tensor": convert_slice,
    "aten.select.int": convert_select,
    "aten.squeeze.default": convert_squeeze,
    "aten.squeeze.dim": convert_squeeze,
    "aten.squeeze.dims": convert_squeeze,
    "aten.unsqueeze.default": convert_unsqueeze,
    "aten.constant_pad_nd.default": convert_pad,
}

# ops with no result the graph reads (run-time checks torch.export inserts)
IGNORED = {"aten._assert_tensor_metadata.default", "aten._assert_scalar.default",
           "aten.sym_constrain_range_for_size.default"}

# ops never evaluated at import even on constant inputs: their results are much larger than their inputs
NO_FOLD = {"Expand"}
