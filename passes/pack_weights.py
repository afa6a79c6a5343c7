"""Pack constant matmul weights once, at compile time, in the panels the matmul kernel reads.

::

    %w: f32[768, 3072] = const ...                 %wp: f32[192, 768, 16] = const ...   (16-column panels)
    %y = MatMul(%x: f32[128, 768], %w)     ==>     %y = MatMulPacked(%x, %wp) {columns=3072}

The matrix-product kernel copies B into panels as wide as its register tile on
every call (:mod:`ember.ir.ops.gemm_schedule`); for a constant B that copy is
the same each time, so it is made here instead and the kernel reads it in
place (:mod:`ember.ir.ops.matmul_packed`). The panel width is the default
register tile's for the product's shape and the target (the tile-width knob of
the packed kernel is fixed to it). Applies to float MatMuls of two operands of
rank >= 2 whose B is constant, 2-D or with A's batch dims, and whose product has
enough rows to be a packed product at all; others are left alone, as is
everything without a target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ember.ir import Graph, Node, Value
from ember.ir.ops.gemm_schedule import MIN_ROWS, register_tile
from ember.ir.ops.matmul_packed import pack_gemm_weight

from .pass_manager import Pass, register_pass
from .rewriter import Rewriter


def packable(node: Node) -> bool:
    """Whether ``node`` is a MatMul whose constant B this pass packs."""
    if node.op != "MatMul":
        return False
    a, b = (v.type for v in node.inputs)
    return (node.inputs[1].is_constant and a.dtype in ("float32", "float64") and a.rank >= 2 and b.rank >= 2
            and (b.rank == 2 or b.shape[:-2] == a.shape[:-2]) and a.shape[-2] >= MIN_ROWS)


@register_pass
@dataclass(frozen=True)
class PackWeights(Pass):
    """Replace MatMuls with a constant B by MatMulPacked on B packed here (see the module docstring).

    ``target`` (an ``ember.codegen.Target``) sets the panel width; None leaves the graph alone.
    """

    name: ClassVar[str] = "pack_weights"
    target: Any = None

    @classmethod
    def for_target(cls, target: Any) -> PackWeights:
        return cls(target=target)

    def run(self, graph: Graph) -> Graph:
        if self.target is None:
            return graph
        with Rewriter(graph) as rw:
            packed: dict[tuple[int, int], Value] = {}  # (id(constant), panel) -> packed constant
            for node in list(graph.nodes):
                if not packable(node):
                    continue
                a, b = node.inputs
                rows, columns = a.type.shape[-2], b.type.shape[-1]
                _, panel = register_tile(self.target, a.type.dtype, rows, columns)
                key = (id(b), panel)
                if key not in packed:
                    packed[key] = rw.constant(pack_gemm_weight(b.data, panel), hint=f"{b.name}.packed")
                y = rw.apply("MatMulPacked", [a, packed[key]], {"columns": columns}, hint=node.outputs[0].name)
                rw.replace_node(node, [y])
        return graph
