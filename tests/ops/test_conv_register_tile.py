"""The plain (NCHW) convolution's register tile: its knobs, its default, every config's values."""

from __future__ import annotations

import numpy as np
import pytest
from ember.codegen.run import compile_kernel
from ember.codegen.target import as_target
from ember.ir import Graph, TensorType
from ember.ir.loops.knobs import Knobs
from ember.runtime.build import lower_node
from ember.runtime.reference import ReferenceModule

from tests.ops.harness import assert_same


def conv_graph(op: str, x_shape, w_shape, attrs: dict) -> tuple[Graph, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, x_shape).astype(np.float32)
    w = rng.uniform(-1, 1, w_shape).astype(np.float32)
    graph = Graph("g")
    xi = graph.add_input("x", TensorType.of(x))
    graph.set_outputs([graph.apply(op, [xi, graph.add_constant(w, "w")], attrs)])
    return graph, x, w


CASES = {
    "grouped 1x1": ("Conv", (1, 12, 6, 6), (12, 3, 1, 1), {"group": 4}),
    "3x3 padded": ("Conv", (1, 4, 7, 9), (6, 4, 3, 3), {"pads": [1, 1, 1, 1]}),
    "1-D strided": ("Conv", (2, 3, 40), (8, 3, 5), {"strides": [2]}),
    "transpose": ("ConvTranspose", (1, 4, 5, 5), (4, 6, 3, 3), {"strides": [2, 2]}),
}


def space_of(graph: Graph, target) -> dict:
    knobs = Knobs()
    lower_node(graph.nodes[0], target, "conv", knobs)
    return knobs.space


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("target", ["host", "x86-64"])
def test_every_register_tile_computes_the_reference(case, target):
    op, x_shape, w_shape, attrs = CASES[case]
    graph, x, w = conv_graph(op, x_shape, w_shape, attrs)
    (expected,) = ReferenceModule(graph).run({"x": x})
    target = as_target(target)
    space = space_of(graph, target)
    assert set(space) == {"tile_q", "tile_c"}
    for tile_q in space["tile_q"]:
        for tile_c in space["tile_c"]:
            kernel = lower_node(graph.nodes[0], target, "conv", Knobs({"tile_q": tile_q, "tile_c": tile_c}))
            (actual,) = compile_kernel(kernel, target)(x, w)
            assert_same(actual, expected, what=f"{case} tile_q={tile_q} tile_c={tile_c}", rtol=1e-4, atol=1e-4)


def test_the_tile_options_divide_the_positions_and_channels():
    # ShuffleNet's grouped 1x1 convolution at 14x14: 196 positions, 200 wide (whole chunks of 8)
    graph, _, _ = conv_graph("Conv", (1, 272, 14, 14), (272, 68, 1, 1), {"group": 4})
    space = space_of(graph, as_target("x86-64-v4"))
    assert space["tile_q"] == (8, 40)  # 200 = 8 * 25: whole chunks dividing it, up to 4 zmm vectors
    assert space["tile_c"] == (1, 2, 4, 8)
    defaults = Knobs()
    lower_node(graph.nodes[0], as_target("x86-64-v4"), "conv", defaults)
    # the most positions (three vectors), and channels while the tile keeps at most 8 vectors of sums
    assert defaults.defaults == {"tile_q": 40, "tile_c": 2}
    narrow = space_of(graph, as_target("x86-64"))  # SSE: 4 vectors of 4 lanes
    assert narrow["tile_q"] == (8,)
