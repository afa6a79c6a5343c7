"""BatchNorm folding: fold per-channel affine maps into the Conv or Gemm before them.

Inference BatchNormalization is a per-channel affine map ``y = x * a + b`` with
``a = scale / sqrt(var + epsilon)`` and ``b = B - mean * a``; so are Mul, Add
and Sub by a constant that varies only along the channel axis (the scale and
shift Caffe2-era models spell out after a BatchNorm). A chain of such maps
composes into one, which folds into a convolution with constant weights::

    %c: f32[1,8,4,4] = Conv(%x, %w)
    %y: f32[1,8,4,4] = BatchNormalization(%c, %scale, %B, %mean, %var)
        ==>  %y: f32[1,8,4,4] = Conv(%x, %w', %bias')    w' = w * a per output channel, bias' = b

A chain with nothing to fold into becomes one Mul and one Add by per-channel
constants when that removes a BatchNormalization or shortens the chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ember.ir import Graph, Node, Value
from ember.ir.ops.norm import compute_dtype

from .pass_manager import Pass, register_pass
from .rewriter import Rewriter

FLOATS = ("float16", "float32", "float64")
Affine = tuple[np.ndarray, np.ndarray]  # per-channel (scale, shift): x * scale + shift


def batch_norm_affine(node: Node, dtype: np.dtype) -> Affine:
    """``(a, b)`` with ``BatchNormalization(x) = x * a + b`` per channel, computed in ``dtype``.

    Computed as the op's reference computes them when ``dtype`` is its compute
    dtype, so for float32 and float64 the Mul + Add form is bit-identical to it.
    """
    scale, bias, mean, var = (v.data.astype(dtype) for v in node.inputs[1:])
    a = scale / np.sqrt(var + node.attrs["epsilon"])
    return a, bias - mean * a


def channel_vector(c: Value, x: Value) -> np.ndarray | None:
    """The per-channel float64 vector a constant ``c`` holds, if it varies at most along axis 1 of ``x``."""
    rank = x.type.rank
    if not c.is_constant or c.type.rank > rank:
        return None
    shape = (1,) * (rank - c.type.rank) + c.type.shape
    if any(d != 1 for axis, d in enumerate(shape) if axis != 1):
        return None
    return np.broadcast_to(c.data.astype(np.float64).reshape(shape[1]), (x.type.shape[1],))


def affine_step(node: Node, x: Value, binary: bool) -> Affine | None:
    """The per-channel map ``node`` applies to ``x`` as (scale, shift) in float64, or ``None``.

    BatchNormalization with constant statistics always counts; Mul, Add and
    Sub by a per-channel constant count when ``binary``. The output must have x's type.
    """
    if len(node.outputs) != 1 or node.output.type != x.type or x.type.dtype not in FLOATS or x.type.rank < 2:
        return None
    if node.op == "BatchNormalization":
        if node.inputs[0] is x and all(v.is_constant for v in node.inputs[1:]):
            return batch_norm_affine(node, np.dtype(np.float64))
        return None
    if not binary or node.op not in ("Mul", "Add", "Sub") or node.inputs[0] is node.inputs[1]:
        return None
    i = 0 if node.inputs[0] is x else 1
    vector = channel_vector(node.inputs[1 - i], x)
    if vector is None:
        return None
    ones, zeros = np.ones_like(vector), np.zeros_like(vector)
    if node.op == "Mul":
        return vector, zeros
    if node.op == "Add":
        return ones, vector
    return (ones, -vector) if i == 0 else (-ones, vector)  # x - c, c - x


class Folder:
    """Builds the Conv/Gemm that computes ``producer(...) * scale + shift`` per output channel."""

    def __init__(self, rw: Rewriter):
        self.rw = rw
        self.renames: list[tuple[Value, Value]] = []  # (new constant, the one it replaces)

    def foldable(self, producer: Node | None) -> bool:
        """A Conv, Gemm or 2-D MatMul with constant weights (and bias) whose output feeds one node only."""
        if producer is None or producer.op not in ("Conv", "Gemm", "MatMul"):
            return False
        if producer.output.type.dtype not in FLOATS or self.rw.only_user(producer.output) is None:
            return False
        if producer.op == "MatMul":
            a, w = producer.inputs
            return w.is_constant and a.type.rank == 2 and w.type.rank == 2
        return all(v.is_constant for v in producer.inputs[1:])

    def fold(self, producer: Node, scale: np.ndarray, shift: np.ndarray, hint: str) -> Value:
        """The output of a new node computing ``producer``'s output * scale + shift."""
        op, attrs, (x, w) = producer.op, dict(producer.attrs), producer.inputs[:2]
        dtype = producer.output.type.np_dtype
        if op == "Conv":
            old_bias = producer.inputs[2] if len(producer.inputs) == 3 else None
            bias = old_bias.data.astype(np.float64) if old_bias is not None else 0.0
            weights = w.data * scale.reshape((-1,) + (1,) * (w.type.rank - 1))
            inputs = [x, self._constant(weights, dtype, w), self._constant(bias * scale + shift, dtype, old_bias,
                                                                           f"{hint}_bias")]
            return self.rw.apply("Conv", inputs, attrs, hint=hint)
        # Gemm and MatMul: the output's channels are the columns of B' (B's rows when transB).
        weights = w.data * (scale[:, None] if op == "Gemm" and attrs["transB"] else scale[None, :])
        inputs = [x, self._constant(weights, dtype, w)]
        if op == "MatMul":
            if not shift.any():
                return self.rw.apply("MatMul", inputs, hint=hint)
            op, attrs = "Gemm", {}
        # beta = 0 ignores C entirely (inf or NaN in C included), as the reference does.
        old_c = producer.inputs[2] if len(producer.inputs) == 3 and attrs["beta"] != 0 else None
        if old_c is not None or shift.any():
            c = attrs["beta"] * old_c.data.astype(np.float64) if old_c is not None else 0.0
            inputs.append(self._constant(c * scale + shift, dtype, old_c, f"{hint}_bias"))
        attrs["beta"] = 1.0  # beta is folded into C (or C was dropped)
        return self.rw.apply(op, inputs, attrs, hint=hint)

    def rename(self) -> None:
        """Give each new weight the name of the constant it replaced, once that is unused."""
        for new, old in self.renames:
            self.rw.inherit_name(new, old)
        self.renames.clear()

    def _constant(self, array: np.ndarray, dtype: np.dtype, like: Value | None, hint: str = "") -> Value:
        value = self.rw.constant(np.ascontiguousarray(array, dtype=dtype), hint=like.name if like else hint)
        if like is not None:
            self.renames.append((value, like))
        return value


@register_pass
@dataclass(frozen=True)
class FoldBatchNorm(Pass):
    """Compose chains of per-channel affine maps (inference BatchNormalization; Mul/Add/Sub by per-channel
    constants when ``affine``) and fold each into the Conv, Gemm or 2-D MatMul before it, if that has
    constant weights and no other user; else (``standalone``) emit one Mul and one Add instead.
    Folding computes in float64: results match the unfolded graph to float rounding.
    """

    name: ClassVar[str] = "fold_batch_norm"
    affine: bool = True
    standalone: bool = True

    def run(self, graph: Graph) -> Graph:
        with Rewriter(graph) as rw:
            folder = Folder(rw)
            # In topological order, so the first node of a chain is seen first.
            for node in list(graph.nodes):
                if not rw.is_erased(node):
                    self._rewrite_chain(node, rw, folder)
        return graph

    def _rewrite_chain(self, head: Node, rw: Rewriter, folder: Folder) -> None:
        operands = [v for v in head.inputs[:2] if not v.is_constant]
        if len(operands) != 1 or (step := affine_step(head, operands[0], self.affine)) is None:
            return
        x, chain, (scale, shift) = operands[0], [head], step
        while (user := rw.only_user(chain[-1].output)) is not None:
            if (step := affine_step(user, chain[-1].output, self.affine)) is None:
                break
            chain.append(user)
            scale, shift = scale * step[0], shift * step[0] + step[1]
        last = chain[-1]
        if folder.foldable(x.producer):
            folded = folder.fold(x.producer, scale, shift, hint=last.output.name)
            rw.replace_node(last, [folded], dead=[*chain[:-1], x.producer])
            folder.rename()
            return
        has_bn = any(n.op == "BatchNormalization" for n in chain)
        if has_bn and not self.standalone:
            return
        if len(chain) == 1 and has_bn:
            # A lone BatchNormalization: the constants its reference computes, for an exact result.
            scale, shift = batch_norm_affine(head, compute_dtype(x.type.np_dtype))
        new_nodes = int(bool((scale != 1).any())) + int(bool(shift.any()))
        if has_bn or new_nodes < len(chain):
            rw.replace_node(last, [self._mul_add(x, scale, shift, last.output.name, rw)], dead=chain[:-1])

    @staticmethod
    def _mul_add(x: Value, scale: np.ndarray, shift: np.ndarray, hint: str, rw: Rewriter) -> Value:
        """``x * scale + shift`` with per-channel constants broadcasting along axis 1 (a 1 or 0 map left out)."""
        shape = (-1,) + (1,) * (x.type.rank - 2)
        dtype = x.type.np_dtype
        if (scale != 1).any():
            x = rw.apply("Mul", [x, rw.constant(scale.astype(dtype).reshape(shape), hint=f"{hint}_scale")],
                         hint=f"{hint}_scaled")
        if shift.any():
            x = rw.apply("Add", [x, rw.constant(shift.astype(dtype).reshape(shape), hint=f"{hint}_shift")], hint=hint)
        return x
