"""Prefetching the output tile of a blocked reduction: before each block's reduction loops, one
prefetch per cache line of each row of the tile that the block will add its sums to. The
kernel computes the same with them, also where a ragged tile prefetches past the output's end."""

import re

import numpy as np
import pytest

from ember.codegen.run import compile_kernel
from ember.ir.loops import (INDEX, Const, Prefetch, compute, const, create_schedule, lower, placeholder, reduce_axis,
                            reduce_sum, simplify)
from ember.ir.loops.lower import MAX_TILE_PREFETCHES
from ember.ir.loops.visit import free_vars, substitute

from tests.helpers import statements

TARGETS = ["host", "x86-64"]


def blocked_product(m: int, n: int, k: int, tile: tuple[int, int], k_block: int):
    """``y = x @ w`` (m x k by k x n) in ``tile`` register tiles, k in blocks of ``k_block``."""
    x, w = placeholder((m, k), "float32", "x"), placeholder((k, n), "float32", "w")
    r = reduce_axis(k, "r")
    y = compute((m, n), lambda i, j: reduce_sum(x[i, r] * w[r, j], r), "y")
    s = create_schedule(y)
    stage = s[y]
    i, j, kk = stage.leaf
    io, ii = stage.split(i, tile[0])
    jo, ji = stage.split(j, tile[1])
    if k_block < k:
        ko, ki = stage.split(kk, k_block)
        stage.reorder(ko, io, jo, ki, ii, ji)  # blocks of k outside the tile: C is revisited
    else:
        stage.reorder(io, jo, kk, ii, ji)
    stage.unroll(ii)
    stage.vectorize(ji)
    stage.accumulate_locally()
    return lower(s, [x, w], "f")


@pytest.mark.parametrize("columns, lines", [(16, [0, 15]), (40, [0, 16, 32, 39])])
def test_one_prefetch_per_cache_line_of_each_tile_row_before_the_reduction(columns, lines):
    kernel = blocked_product(6, 2 * columns, 12, (3, columns), k_block=4)
    found = statements(kernel.body, Prefetch)
    assert len(found) == len(lines) and all(p.buffer.name == "y" for p in found)
    # in the unrolled loop over the tile's rows, ahead of the block's reduction loop
    assert re.search(r"for unrolled \([\w.]+, 0, 3\) \{\n(\s+prefetch y\[.*\]\n){%d}\s+\}\n\s+for \(r" % len(lines),
                     str(kernel))
    assert [at_origin(p.index) for p in found] == lines  # the elements of the tile's first row


def at_origin(index) -> int:
    """``index`` with every loop variable at 0."""
    value = simplify(substitute(index, {v: const(0, INDEX) for v in free_vars(index)}))
    assert isinstance(value, Const)
    return int(value.value)

def test_no_prefetch_without_blocks_or_for_a_tile_too_large():
    assert statements(blocked_product(6, 32, 12, (3, 16), k_block=12).body, Prefetch) == []  # C is only stored
    rows, columns = 16, 64  # 16 rows of 5 prefetches (4 lines, last element)
    assert rows * 5 > MAX_TILE_PREFETCHES
    assert statements(blocked_product(rows, columns, 8, (rows, columns), k_block=4).body, Prefetch) == []


@pytest.mark.parametrize("target", TARGETS)
def test_prefetching_kernel_computes_the_product(target):
    kernel = blocked_product(7, 40, 12, (3, 16), k_block=4)  # ragged rows and columns: prefetches past the end
    fn = compile_kernel(kernel, target)
    assert re.search(r"\bprefetch(w|t0)\b", fn.assembly())
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((7, 12), dtype=np.float32), rng.standard_normal((12, 40), dtype=np.float32)
    (y,) = fn(x, w)
    np.testing.assert_allclose(y, x @ w, rtol=1e-5, atol=1e-5)
