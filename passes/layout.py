"""Blocked layout: 2-D convolutions run in NCHW[x]c, and the ops between them stay blocked.

::

    %c = Conv(%x, %w, %b) {pads=[1,1,1,1]}      %xb = ToBlocked(%x) {block=8}
    %r = Relu(%c)                        ==>    %cb = ConvNCHWc(%xb, %wp, %bp) {pads=[1,1,1,1], ...}
    %y = Conv(%r, %w2)                          %rb = Relu(%cb)
                                                %yb = ConvNCHWc(%rb, %wp2) {...}
                                                %y  = FromBlocked(%yb)

Each float32 2-D Conv whose output channels a block of the target's vector
width divides becomes a ConvNCHWc: group 1, depthwise, or grouped with
groups of whole blocks (a block divides each group's input and output channels); its constant
weights and bias are packed here, once (``%wp``, ``%bp`` are constants).
The blocked layout then flows through elementwise ops, broadcast binary ops
(a constant operand is blocked here; a plain operand of the full shape gets a
ToBlocked), channel Concats of tensors blocked alike, and 2-D max and average
pools (PoolNCHWc; global pools as one window over the plane).
A value goes back to NCHW (FromBlocked) only where a reader needs it, and a
ToBlocked of a FromBlocked is never made: the blocked value is reused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from ember.ir import Graph, Node, Value
from ember.ir.ops import Fusion
from ember.ir.ops.layout import pack_conv_weight, to_blocked
from ember.ir.ops.window import resolve_window

from .pass_manager import Pass, register_pass
from .rewriter import Rewriter

# binary ops computing elementwise under numpy broadcasting (a blocked operand stays blocked)
BROADCAST_OPS = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Pow", "PRelu"}
# pools with a blocked form (PoolNCHWc), by the plain pool it applies
POOLS = {"MaxPool": "MaxPool", "AveragePool": "AveragePool", "GlobalMaxPool": "MaxPool",
         "GlobalAveragePool": "AveragePool"}


def output_block(channels: int, lanes: int) -> int | None:
    """Channels per block of a conv output: the vector width, or half of it, when it divides ``channels``."""
    for block in (lanes, lanes // 2):
        if block >= 2 and channels % block == 0:
            return block
    return None


def input_block(channels: int, lanes: int) -> int:
    """Channels per block of a plain conv input: the largest divisor of ``channels`` up to the vector width."""
    return max(d for d in range(1, min(channels, lanes) + 1) if channels % d == 0)


def blocked_constant(array: np.ndarray, block: int) -> np.ndarray:
    """A constant broadcast against a 4-D NCHW tensor, as the constant broadcasting the same way in NCHW[x]c."""
    padded = array.reshape((1,) * (4 - array.ndim) + array.shape)
    if padded.shape[1] == 1:
        return padded.reshape(*padded.shape, 1)
    return to_blocked(padded, block)


class _Blocking:
    """The state of one run: the blocked twin of each rewritten plain value, and the conversions made."""

    def __init__(self, rw: Rewriter, lanes: int):
        self.rw = rw
        self.lanes = lanes
        self.twins: dict[int, Value] = {}   # id(plain value) -> the same tensor, blocked
        self.made: dict[tuple[int, int], Value] = {}  # (id(plain value), block) -> ToBlocked of it
        self.constants: dict[tuple, Value] = {}  # (id(constant), conversion) -> the converted constant

    def block_of(self, value: Value) -> int | None:
        twin = self.twins.get(id(value))
        return twin.type.shape[-1] if twin is not None else None

    def blocked(self, value: Value, block: int) -> Value:
        """``value`` in blocks of ``block``: its twin, a packed constant or a new ToBlocked."""
        twin = self.twins.get(id(value))
        if twin is not None and twin.type.shape[-1] == block:
            return twin
        producer = value.producer
        if producer is not None and producer.op == "FromBlocked" and producer.inputs[0].type.shape[-1] == block:
            return producer.inputs[0]  # ToBlocked(FromBlocked(x)) = x
        if value.is_constant:
            return self.converted(value, ("blocked", block), lambda a: to_blocked(a, block))
        key = (id(value), block)
        if key not in self.made:
            self.made[key] = self.rw.apply("ToBlocked", [value], {"block": block}, hint=value.name)
        return self.made[key]

    def converted(self, constant: Value, how: tuple, convert: Callable[[np.ndarray], np.ndarray]) -> Value:
        """``convert`` of a constant, made once per constant and conversion (constants CSE merged stay shared)."""
        key = (id(constant), *how)
        if key not in self.constants:
            self.constants[key] = self.rw.constant(convert(constant.data), hint=constant.name)
        return self.constants[key]

    # ------------------------------------------------------------------ rules
    def rewrite(self, node: Node) -> Value | None:
        """The blocked twin of ``node``'s output, built from blocked operands; None to keep it plain."""
        if len(node.outputs) != 1 or node.outputs[0].type.rank != 4:
            return None
        if node.op == "Conv":
            return self.conv(node)
        if not any(id(v) in self.twins for v in node.inputs):
            return None
        if node.opdef.fusion == Fusion.ELEMENTWISE and len(node.inputs) == 1:
            return self.rw.apply(node.op, [self.twins[id(node.inputs[0])]], node.attrs, hint=node.outputs[0].name)
        if node.op in BROADCAST_OPS:
            return self.broadcast(node)
        if node.op == "Concat" and node.attrs["axis"] in (1, -3):
            return self.concat(node)
        if node.op in POOLS:
            return self.pool(node)
        return None

    def conv(self, node: Node) -> Value | None:
        x, w = node.inputs[0], node.inputs[1]
        out = node.outputs[0].type
        group, channels = node.attrs["group"], x.type.shape[1]
        if x.type.rank != 4 or x.type.dtype != "float32" or (group == channels > 1 and out.shape[1] != channels):
            return None
        depthwise = group == channels > 1
        per_group = out.shape[1] if depthwise else out.shape[1] // group  # output channels a block must divide
        block = self.block_of(x) if depthwise and self.block_of(x) else output_block(per_group, self.lanes)
        if block is None or out.shape[1] % block:
            return None
        in_block = block if depthwise else self.block_of(x) or input_block(channels // group, self.lanes)
        if not depthwise and (channels // group) % in_block:
            return None  # a block of the input would straddle two groups
        resolved = resolve_window(x.type.shape[2:], w.type.shape[2:], node.attrs)
        attrs = {"pads": resolved.pads, "strides": resolved.strides, "dilations": resolved.dilations,
                 "group": group}
        weights = self.packed(w, 1 if depthwise else in_block, block)
        inputs = [self.blocked(x, in_block), weights]
        if len(node.inputs) > 2:
            inputs.append(self.reshaped(node.inputs[2], (out.shape[1] // block, block)))
        return self.rw.apply("ConvNCHWc", inputs, attrs, hint=node.outputs[0].name)

    def packed(self, w: Value, in_block: int, out_block: int) -> Value:
        """Conv weights packed for ConvNCHWc: at compile time when constant."""
        if w.is_constant:
            return self.converted(w, ("packed", in_block, out_block), lambda a: pack_conv_weight(a, in_block, out_block))
        return self.rw.apply("PackConvWeight", [w], {"in_block": in_block, "out_block": out_block}, hint=w.name)

    def reshaped(self, value: Value, shape: tuple[int, ...]) -> Value:
        if value.is_constant:
            return self.converted(value, ("reshaped", shape), lambda a: a.reshape(shape))
        return self.rw.apply("Reshape", [value], {"shape": list(shape)}, hint=value.name)

    def broadcast(self, node: Node) -> Value | None:
        out = node.outputs[0].type
        block = next(self.block_of(v) for v in node.inputs if id(v) in self.twins)
        operands = []
        for v in node.inputs:
            if v.type.shape == out.shape:
                operands.append(self.blocked(v, block))  # its twin, or converted: one conversion either way
            elif v.is_constant and v.type.rank <= 4:
                operands.append(self.converted(v, ("broadcast", block), lambda a: blocked_constant(a, block)))
            else:
                return None
        return self.rw.apply(node.op, operands, node.attrs, hint=node.outputs[0].name)

    def pool(self, node: Node) -> Value | None:
        x = node.inputs[0]
        if node.op.startswith("Global"):  # the window covering the whole plane
            attrs = {"pool": POOLS[node.op], "kernel_shape": list(x.type.shape[2:])}
        else:
            attrs = {"pool": node.op, **{k: v for k, v in node.attrs.items() if k != "storage_order"}}
        return self.rw.apply("PoolNCHWc", [self.twins[id(x)]], attrs, hint=node.outputs[0].name)

    def concat(self, node: Node) -> Value | None:
        blocks = {self.block_of(v) for v in node.inputs}
        if len(blocks) != 1 or None in blocks:
            return None
        return self.rw.apply("Concat", [self.twins[id(v)] for v in node.inputs], {**node.attrs, "axis": 1},
                             hint=node.outputs[0].name)


@register_pass
@dataclass(frozen=True)
class BlockedLayout(Pass):
    """Run 2-D float32 convolutions in the blocked layout NCHW[block]c (see the module docstring).

    ``block`` is the target's float32 vector width (0 leaves the graph alone). Assumes a verified
    graph; guarantees the same values, with conversions only where plain and blocked readers meet.
    """

    name: ClassVar[str] = "layout"
    block: int = 0

    @classmethod
    def for_target(cls, target: Any) -> BlockedLayout:
        return cls(block=target.vector_lanes(4) if target is not None else 0)

    def run(self, graph: Graph) -> Graph:
        if self.block < 2:
            return graph
        with Rewriter(graph) as rw:
            state = _Blocking(rw, self.block)
            rewritten = []
            for node in list(graph.nodes):
                twin = state.rewrite(node)
                if twin is not None:
                    state.twins[id(node.outputs[0])] = twin
                    rewritten.append(node)
            done = {id(n) for n in rewritten}
            for node in rewritten:
                out = node.outputs[0]
                if rw.is_output(out) or any(id(user) not in done for user, _ in rw.users(out)):
                    rw.replace(out, rw.apply("FromBlocked", [state.twins[id(out)]], hint=out.name))
            rw.erase(*reversed(rewritten))
            cancelled = [n for n in graph.nodes if n.op == "FromBlocked" and not rw.users(n.outputs[0])
                         and not rw.is_output(n.outputs[0])]
            rw.erase(*cancelled)
        return graph
