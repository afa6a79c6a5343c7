"""A BERT-base encoder layer as an ONNX model, built from plain ONNX ops with random weights.

The layer is the one in every BERT exporter's output (post-LayerNorm, no
attention mask, batch 1)::

    q, k, v  = x @ Wq + bq, x @ Wk + bk, x @ Wv + bv        # [1, S, H]
    heads    = Reshape [1, S, A, H/A] -> Transpose            # [1, A, S, H/A]
    scores   = Softmax((q @ k^T) / sqrt(H/A))                 # [1, A, S, S]
    context  = Transpose/Reshape(scores @ v) @ Wo + bo        # [1, S, H]
    h        = LayerNorm(x + context)
    ffn      = Gelu(h @ W1 + b1) @ W2 + b2                    # W1: [H, F]
    y        = LayerNorm(h + ffn)

Gelu is the exact one, ``0.5 x (1 + erf(x / sqrt 2))`` from Mul/Add/Div/Erf
(as exporters emit it before opset 20), or the ``Gelu`` op (``gelu="op"``,
opset 20). Weights are normal with standard deviation 0.02 (BERT's
initializer), from a fixed seed.

>>> model = bert_layer()                       # seq 128, hidden 768, 12 heads, FFN 3072
>>> [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
[1, 128, 768]
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def bert_layer(seq: int = 128, hidden: int = 768, heads: int = 12, ffn: int = 3072, *, gelu: str = "erf",
               seed: int = 0) -> onnx.ModelProto:
    """One BERT encoder layer ``y = layer(x)``, ``x``/``y`` of shape ``[1, seq, hidden]``."""
    if hidden % heads:
        raise ValueError(f"hidden {hidden} is not a multiple of heads {heads}")
    if gelu not in ("erf", "op"):
        raise ValueError(f"gelu must be 'erf' or 'op', not {gelu!r}")
    rng = np.random.default_rng(seed)
    head = hidden // heads
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(name: str, *shape: int, std: float = 0.02) -> str:
        return const(name, (rng.standard_normal(shape) * std).astype(np.float32))

    def node(op: str, inputs: list[str], output: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def dense(x: str, name: str, n_in: int, n_out: int) -> str:
        y = node("MatMul", [x, weight(f"{name}.weight", n_in, n_out)], f"{name}.matmul")
        return node("Add", [y, weight(f"{name}.bias", n_out)], f"{name}.out")

    def layer_norm(x: str, name: str) -> str:
        gamma = const(f"{name}.gamma", (1 + rng.standard_normal(hidden) * 0.02).astype(np.float32))
        beta = const(f"{name}.beta", (rng.standard_normal(hidden) * 0.02).astype(np.float32))
        return node("LayerNormalization", [x, gamma, beta], f"{name}.out", axis=-1, epsilon=1e-12)

    split_shape = const("split_heads.shape", np.array([1, seq, heads, head], np.int64))
    merge_shape = const("merge_heads.shape", np.array([1, seq, hidden], np.int64))

    def split_heads(x: str, name: str, perm: list[int]) -> str:
        y = node("Reshape", [x, split_shape], f"{name}.split")
        return node("Transpose", [y], f"{name}.heads", perm=perm)

    q = split_heads(dense("x", "query", hidden, hidden), "query", [0, 2, 1, 3])  # [1, A, S, D]
    k = split_heads(dense("x", "key", hidden, hidden), "key", [0, 2, 3, 1])      # [1, A, D, S]
    v = split_heads(dense("x", "value", hidden, hidden), "value", [0, 2, 1, 3])  # [1, A, S, D]
    scores = node("MatMul", [q, k], "attention.scores")
    scaled = node("Div", [scores, const("attention.scale", np.float32(math.sqrt(head)))], "attention.scaled")
    probs = node("Softmax", [scaled], "attention.probs", axis=-1)
    context = node("MatMul", [probs, v], "attention.context")
    context = node("Transpose", [context], "attention.context_t", perm=[0, 2, 1, 3])
    context = node("Reshape", [context, merge_shape], "attention.merged")
    attention = dense(context, "attention.output", hidden, hidden)
    h = layer_norm(node("Add", ["x", attention], "attention.residual"), "attention.norm")

    up = dense(h, "ffn.up", hidden, ffn)
    if gelu == "op":
        act = node("Gelu", [up], "ffn.gelu")
    else:
        erf = node("Erf", [node("Div", [up, const("ffn.sqrt2", np.float32(math.sqrt(2)))], "ffn.scaled")], "ffn.erf")
        one_plus = node("Add", [erf, const("ffn.one", np.float32(1))], "ffn.one_plus")
        act = node("Mul", [node("Mul", [up, one_plus], "ffn.product"), const("ffn.half", np.float32(0.5))],
                   "ffn.gelu")
    down = dense(act, "ffn.down", ffn, hidden)
    y = layer_norm(node("Add", [h, down], "ffn.residual"), "ffn.norm")
    nodes.append(helper.make_node("Identity", [y], ["y"], name="output"))

    shape = [1, seq, hidden]
    graph = helper.make_graph(nodes, "bert_layer", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20 if gelu == "op" else 17)],
                              producer_name="ember-benchmarks")
    onnx.checker.check_model(model)
    return model


__all__ = ["bert_layer"]
