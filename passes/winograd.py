"""Winograd convolution: 3x3 stride-1 blocked convolutions as transforms around a batched matrix product.

::

    %y = ConvNCHWc(%x, %w, %b) {pads=[1,1,1,1], strides=[1,1], ...}      (3x3 kernel, constant %w)
    ==>
    %v = WinogradInput(%x) {pads=[1,1,1,1], tile=2}                       [16, tiles, C]
    %p = MatMul(%v, %u)                                                   %u: [16, C, K], G w G^T (a constant)
    %y = WinogradOutput(%p, %b) {size=[OH, OW], tile=2, block=c}          blocked, as the conv's

F(2x2, 3x3) needs 16 products per 2x2 output tile and channel pair instead of
36, and the products run on the packed matrix-product kernel; the transforms
add a pass over a 4x larger copy of the input and of the output. The rewrite
applies where that pays: a float32 ConvNCHWc (group 1, 3x3 kernel, stride and
dilation 1, constant weights) with at least ``min_channels`` input and output
channels (below that the products are too short for the packed kernel) and at
least ``min_tiles`` output tiles: the transformed weights are 16/9 the size of
the plain ones and each is used once per tile (``pack_weights`` packs them at
compile time), so with very few tiles the product streams weights more than it
computes. Partial tiles at odd sizes (ResNet's 7x7 stage: 16 tiles for 49
outputs) are computed and their extra outputs dropped. With ``large_from`` set,
planes at least that large use F(4x4, 3x3) instead (36 products per 16 outputs:
0.56 of F(2x2)'s per output). Timed alone, ResNet-50's 56x56 and 28x28 convs ran
1.14-1.7x faster with it than with F(2x2) at 2 threads; in the whole model
(``large_from=28``, 2 threads) the time did not change measurably (67.9 against
68.1 ms) while compiling took 4.5 s longer, so it is off by default. The weights are
transformed here, once. The ops are :mod:`ember.ir.ops.winograd`; the pass runs
after ``layout`` (which makes the ConvNCHWc) and before ``fuse_ops`` (which
joins the conv's epilogue to WinogradOutput).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ember.ir import Graph, Node, Value
from ember.ir.ops.layout import unpack_conv_weight
from ember.ir.ops.winograd import KERNEL, transform_weight

from .pass_manager import Pass, register_pass
from .rewriter import Rewriter

TILE = 2  # F(2x2, 3x3): its transforms are exact in float32 (coefficients 0, +-1, +-1/2)
LARGE_TILE = 4  # F(4x4, 3x3): 36 products per 16 outputs, not 64 (coefficients up to 8 and 1/24)


def winograd_applies(node: Node, tile: int, min_channels: int, min_tiles: int) -> bool:
    """Whether the ConvNCHWc ``node`` is a convolution the Winograd form computes (and pays for)."""
    if node.op != "ConvNCHWc" or node.attrs["group"] != 1 or node.outputs[0].type.dtype != "float32":
        return False
    x, w = node.inputs[0].type, node.inputs[1]
    out = node.outputs[0].type
    return (w.is_constant and w.type.shape[2:4] == (KERNEL, KERNEL)
            and list(node.attrs["strides"]) == [1, 1] and list(node.attrs["dilations"]) == [1, 1]
            and x.shape[1] * x.shape[4] >= min_channels and out.shape[1] * out.shape[4] >= min_channels
            and out.shape[0] * -(-out.shape[2] // tile) * -(-out.shape[3] // tile) >= min_tiles)


@register_pass
@dataclass(frozen=True)
class Winograd(Pass):
    """Rewrite 3x3 stride-1 blocked convolutions to the Winograd form (see the module docstring).

    Assumes a verified graph after ``layout``; guarantees the same values (up to float
    rounding: the transforms reassociate the sums).
    """

    name: ClassVar[str] = "winograd"
    tile: int = TILE
    large_tile: int = LARGE_TILE
    large_from: int = 0  # output rows and columns from which the large tile is used (0: never)
    min_channels: int = 16
    min_tiles: int = 16

    def tile_for(self, node: Node) -> int:
        """F(4x4) on planes large enough that its partial tiles waste little, F(2x2) on the others."""
        height, width = node.outputs[0].type.shape[2:4]
        return self.large_tile if self.large_from and min(height, width) >= self.large_from else self.tile

    def run(self, graph: Graph) -> Graph:
        with Rewriter(graph) as rw:
            weights: dict[tuple[int, int], Value] = {}  # (id(packed weight), tile) -> its transform
            for node in list(graph.nodes):
                if not winograd_applies(node, self.tile, self.min_channels, self.min_tiles):
                    continue
                tile, w = self.tile_for(node), node.inputs[1]
                if (id(w), tile) not in weights:
                    weights[id(w), tile] = rw.constant(transform_weight(unpack_conv_weight(w.data), tile),
                                                       hint=f"{w.name}.winograd")
                out = node.outputs[0]
                v = rw.apply("WinogradInput", [node.inputs[0]], {"pads": list(node.attrs["pads"]), "tile": tile},
                             hint=f"{out.name}.v")
                product = rw.apply("MatMul", [v, weights[id(w), tile]], hint=f"{out.name}.p")
                y = rw.apply("WinogradOutput", [product, *node.inputs[2:]],
                             {"size": list(out.type.shape[2:4]), "tile": tile, "block": out.type.shape[4]},
                             hint=out.name)
                rw.replace_node(node, [y])
        return graph
