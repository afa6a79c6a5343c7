"""Converters of the neural-network ATen ops: matrix products, convolution, pooling, normalization, softmax.

Registered in :data:`ember.frontend.torch_ops.CONVERTERS`.
"""

from __future__ import annotations

import numpy as np
import torch

from ember.ir import Value
from ember.ir.errors import UnsupportedOpError

from .torch_context import Converter, NodeContext, normalize_axis, per_spatial_axis, rank_of

# ---------------------------------------------------------------- linear algebra
def convert_addmm(ctx: NodeContext) -> Value:
    """``beta * input + alpha * (mat1 @ mat2)``: Gemm."""
    return ctx.apply("Gemm", [ctx.tensor("mat1"), ctx.tensor("mat2"), ctx.tensor("self")],
                     {"alpha": ctx["alpha"], "beta": ctx["beta"]})


def convert_matmul(ctx: NodeContext) -> Value:
    """mm and bmm: MatMul. A bmm operand broadcast from a matrix (``view(expand(w))``, how a linear layer
    on a 3-D input decomposes) is read as the matrix itself, so the weight is not copied per batch."""
    operands = []
    for i, fx_arg in enumerate(ctx.node.args[:2]):
        source = _batch_broadcast_source(fx_arg) if i == 1 else None
        operands.append(ctx.importer.env[source] if source is not None else ctx.positional[i])
    return ctx.apply("MatMul", operands)


def _batch_broadcast_source(fx_node: torch.fx.Node) -> torch.fx.Node | None:
    """The rank-2 node ``w`` when ``fx_node`` is ``view(expand(w, [B, K, N]), [B, K, N])``, else None."""
    if str(fx_node.target) != "aten.view.default":
        return None
    expanded = fx_node.args[0]
    if not isinstance(expanded, torch.fx.Node) or str(expanded.target) != "aten.expand.default":
        return None
    source = expanded.args[0]
    shape = tuple(source.meta["val"].shape) if isinstance(source, torch.fx.Node) else ()
    if len(shape) == 2 and tuple(expanded.meta["val"].shape)[1:] == shape \
            and tuple(fx_node.meta["val"].shape) == tuple(expanded.meta["val"].shape):
        return source
    return None


def convert_embedding(ctx: NodeContext) -> Value:
    return ctx.apply("Gather", [ctx.tensor("weight"), ctx.tensor("indices")], {"axis": 0})


def convert_index_select(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    return ctx.apply("Gather", [x, ctx.tensor("index")], {"axis": normalize_axis(ctx["dim"], rank_of(x))})


# ---------------------------------------------------------------- convolution and pooling
def convert_convolution(ctx: NodeContext) -> Value:
    x, w, b = ctx.tensor("input"), ctx.tensor("weight"), ctx["bias"]
    n = rank_of(x) - 2
    attrs = {"strides": per_spatial_axis(ctx["stride"], n), "dilations": per_spatial_axis(ctx["dilation"], n),
             "pads": per_spatial_axis(ctx["padding"], n) * 2, "group": ctx["groups"]}
    inputs = [x, w] + ([b] if b is not None else [])
    if ctx["transposed"]:
        return ctx.apply("ConvTranspose", inputs, {**attrs, "output_padding": per_spatial_axis(ctx["output_padding"], n)})
    if any(ctx["output_padding"] or [0]):
        raise UnsupportedOpError("output_padding on a forward convolution")
    return ctx.apply("Conv", inputs, attrs)


def _pool_attrs(ctx: NodeContext, n: int) -> dict:
    kernel = per_spatial_axis(ctx["kernel_size"], n)
    stride = per_spatial_axis(ctx["stride"], n) if ctx["stride"] else kernel
    return {"kernel_shape": kernel, "strides": stride, "pads": per_spatial_axis(ctx["padding"], n) * 2,
            "ceil_mode": int(bool(ctx["ceil_mode"]))}


def convert_max_pool(ctx: NodeContext) -> list[Value | None]:
    """max_pool{1,2,3}d_with_indices: MaxPool; the indices output is not supported."""
    x = ctx.tensor("self")
    n = rank_of(x) - 2
    attrs = {**_pool_attrs(ctx, n), "dilations": per_spatial_axis(ctx["dilation"], n)}
    return [ctx.apply("MaxPool", [x], attrs), None]


def convert_avg_pool(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    if ctx["divisor_override"] is not None:
        raise UnsupportedOpError("avg_pool with divisor_override is not supported")
    attrs = {**_pool_attrs(ctx, rank_of(x) - 2), "count_include_pad": int(bool(ctx["count_include_pad"]))}
    return ctx.apply("AveragePool", [x], attrs)


def convert_adaptive_avg_pool(ctx: NodeContext) -> Value:
    """Output size 1: GlobalAveragePool; sizes dividing the input: AveragePool with kernel = stride."""
    x = ctx.tensor("self")
    spatial = x.type.shape[2:]
    sizes = per_spatial_axis(ctx["output_size"], len(spatial))
    if all(s == 1 for s in sizes):
        return ctx.apply("GlobalAveragePool", [x])
    if any(d % s for d, s in zip(spatial, sizes)):
        raise UnsupportedOpError(f"adaptive average pooling of {tuple(spatial)} to {tuple(sizes)}: "
                                 "only output sizes that divide the input are supported")
    kernel = [d // s for d, s in zip(spatial, sizes)]
    return ctx.apply("AveragePool", [x], {"kernel_shape": kernel, "strides": kernel})


# ---------------------------------------------------------------- normalization and softmax
def _filled_if_none(ctx: NodeContext, value: Value | None, shape: tuple[int, ...], fill: float) -> Value:
    return value if value is not None else ctx.constant(np.full(shape, fill), ctx.out_dtype)


def convert_batch_norm(ctx: NodeContext) -> list[Value | None]:
    """_native_batch_norm_legit_no_training / native_batch_norm in inference: BatchNormalization."""
    if ctx.args.get("training"):
        raise UnsupportedOpError("batch norm in training mode is not supported (call module.eval())")
    x = ctx.tensor("input")
    channels = (x.type.shape[1],)
    scale = _filled_if_none(ctx, ctx["weight"], channels, 1.0)
    bias = _filled_if_none(ctx, ctx["bias"], channels, 0.0)
    y = ctx.apply("BatchNormalization", [x, scale, bias, ctx.tensor("running_mean"), ctx.tensor("running_var")],
                  {"epsilon": ctx["eps"]})
    return [y, None, None]


def convert_layer_norm(ctx: NodeContext) -> list[Value | None]:
    x, shape = ctx.tensor("input"), tuple(ctx["normalized_shape"])
    scale = _filled_if_none(ctx, ctx["weight"], shape, 1.0)
    bias = _filled_if_none(ctx, ctx["bias"], shape, 0.0)
    y = ctx.apply("LayerNormalization", [x, scale, bias], {"axis": -len(shape), "epsilon": ctx["eps"]})
    return [y, None, None]


def convert_group_norm(ctx: NodeContext) -> list[Value | None]:
    x = ctx.tensor("input")
    channels = (x.type.shape[1],)
    scale = _filled_if_none(ctx, ctx["weight"], channels, 1.0)
    bias = _filled_if_none(ctx, ctx["bias"], channels, 0.0)
    y = ctx.apply("GroupNormalization", [x, scale, bias], {"num_groups": ctx["group"], "epsilon": ctx["eps"]})
    return [y, None, None]


def softmax(op: str) -> Converter:
    return lambda ctx: ctx.apply(op, [ctx.as_tensor(ctx["self"], ctx.out_dtype)], {"axis": ctx["dim"]})
