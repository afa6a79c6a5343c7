"""The matrix-product schedule template: knobs, packed operands, register tile, fused epilogue, assembly."""

from __future__ import annotations

import re

import numpy as np
import pytest
from ember.codegen.parallel import set_threads
from ember.codegen.run import compile_kernel
from ember.codegen.target import Target
from ember.ir.loops import Allocate, For, lower, placeholder
from ember.ir.loops.knobs import Knobs
from ember.ir.loops.stmt import Seq
from ember.ir.ops.gemm_schedule import _count_options, gemm_operands
from ember.ir.ops.matmul import contraction, contraction_schedule, parse_einsum

from tests.helpers import statements
from tests.ops.harness import COMPILE_TARGETS


def product_kernel(equation, shapes, target, config=None, dtype="float32"):
    """The contraction ``equation`` of placeholders of ``shapes``, scheduled with ``Knobs(config)``."""
    operands = [placeholder(shape, dtype, name) for shape, name in zip(shapes, "ab")]
    out = contraction(parse_einsum(equation, shapes), operands, dtype)
    knobs = Knobs(config)
    schedule = contraction_schedule([out], Target.named(target), knobs)
    return lower(schedule, operands, "product"), knobs


def check(equation, shapes, target, config=None):
    kernel, knobs = product_kernel(equation, shapes, target, config)
    rng = np.random.default_rng(len(shapes[0]))
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    fn = compile_kernel(kernel, target)
    set_threads(fn.jit, 2)
    (got,) = fn(*arrays)
    np.testing.assert_allclose(got, np.einsum(equation, *arrays), rtol=1e-4, atol=1e-4)
    return kernel, knobs


def allocations(stmt):
    """Every local buffer a statement allocates."""
    return [a.buffer for a in statements(stmt, Allocate)]


@pytest.mark.parametrize("target,tile", [("x86-64", (6, 8)), ("x86-64-v3", (6, 16)), ("x86-64-v4", (14, 32))])
def test_default_register_tile_follows_the_vector_width(target, tile):
    kernel, knobs = product_kernel("ik,kj->ij", [(84, 32), (32, 64)], target)
    assert (knobs.defaults["tile_m"], knobs.defaults["tile_n"]) == tile
    assert {"tile_m", "tile_n", "tile_k", "blocks_m", "blocks_n", "pack_a", "pack_b", "parallel"} <= set(knobs.space)
    (acc,) = [b for b in allocations(kernel.body) if b.name.endswith(".acc")]
    assert acc.shape == tile


@pytest.mark.parametrize("target,rows,cols,tile", [
    ("x86-64-v3", 128, 768, (4, 24)),   # 6 rows do not divide 128: three vectors of columns keep 12 accumulators
    ("x86-64-v3", 128, 128, (4, 16)),   # nor do 24 columns divide 128
    ("x86-64", 128, 768, (4, 12)),
    ("x86-64-v4", 128, 768, (8, 48)),
    ("x86-64-v3", 37, 29, (6, 16)),     # nothing divides: the widest tile, ragged
])
def test_default_register_tile_divides_the_product_when_one_can(target, rows, cols, tile):
    _, knobs = product_kernel("ik,kj->ij", [(rows, 16), (16, cols)], target)
    assert (knobs.defaults["tile_m"], knobs.defaults["tile_n"]) == tile
    if target == "x86-64":  # runs on any x86-64 host
        check("ik,kj->ij", [(rows, 16), (16, cols)], target)


def ragged(options):
    """A block count from ``options`` that leaves the last block short where the space has 3, else the largest."""
    return 3 if 3 in options else options[-1]


@pytest.mark.parametrize("target", COMPILE_TARGETS)
@pytest.mark.parametrize("equation,shapes", [
    ("ik,kj->ij", [(37, 53), (53, 29)]),            # ragged in every direction
    ("ki,jk->ij", [(40, 13), (21, 40)]),            # both operands transposed
    ("bik,bjk->bij", [(3, 17, 9), (3, 23, 9)]),     # batched Q.K^T
    ("bik,kj->bij", [(2, 7, 300), (300, 19)]),      # a broadcast operand, k split in blocks
])
def test_products_match_numpy_for_default_and_other_configs(target, equation, shapes):
    _, knobs = check(equation, shapes, target)
    others = [{"pack_a": False}, {"pack_a": True, "pack_b": False}, {"parallel": "panels", "tile_m": 1},
              {"tile_k": knobs.space["tile_k"][1]},
              {"tile_n": knobs.space["tile_n"][-1], "blocks_m": 1, "blocks_n": 1},
              {"blocks_m": ragged(knobs.space["blocks_m"]), "blocks_n": ragged(knobs.space["blocks_n"])},
              {"blocks_m": knobs.space["blocks_m"][-1], "blocks_n": knobs.space["blocks_n"][-1]}]
    for config in others:
        check(equation, shapes, target, config)


def test_block_counts_cut_the_panels_in_equal_blocks():
    # 32 panels of 24 columns in 3 blocks of 11, 32 panels of 4 rows in 5 blocks of 7 (each loop guarded)
    kernel, knobs = product_kernel("ik,kj->ij", [(128, 64), (64, 768)], "x86-64-v3",
                                   {"tile_m": 4, "tile_n": 24, "blocks_n": 3, "blocks_m": 5})
    extents = {loop.var.name: loop.extent for loop in statements(kernel.body, For)}
    assert (extents["product_i1.o.o"], extents["product_i1.o.i"]) == (3, 11)
    assert (extents["product_i0.o.o"], extents["product_i0.o.i"]) == (5, 7)
    # the defaults: two blocks of B (one per thread), and blocks of A of the cache budget
    assert (knobs.defaults["blocks_n"], knobs.defaults["blocks_m"]) == (2, 2)


def test_block_count_options_are_dense_then_geometric_and_hold_the_default():
    assert _count_options(12, 5) == (list(range(1, 13)), 5)
    options, default = _count_options(100, 98)
    assert options == [*range(1, 17), 24, 32, 48, 64, 96, 98, 100] and default == 98
    assert _count_options(4, 9) == ([1, 2, 3, 4], 4)  # more blocks than panels: one panel each


def test_only_matrix_products_take_the_template():
    a, b = placeholder((4, 5), "float32", "a"), placeholder((5, 6), "float32", "b")
    product = contraction(parse_einsum("ik,kj->ij", [a.shape, b.shape]), [a, b], "float32")
    dot = contraction(parse_einsum("ik,ik->i", [a.shape, a.shape]), [a, a], "float32")
    row = placeholder((1, 5), "float32", "row")
    vector_product = contraction(parse_einsum("ik,kj->ij", [row.shape, b.shape]), [row, b], "float32")
    from ember.ir.loops.schedule import Stage

    operands = gemm_operands(Stage(product))
    assert operands is not None and (operands.a, operands.a_dim, operands.b, operands.b_dim) == (a, 0, b, 1)
    assert gemm_operands(Stage(dot)) is None
    assert gemm_operands(Stage(vector_product)) is None  # one row: B is not worth packing


@pytest.mark.parametrize("knobs", [{}, {"tile_k": 8, "tile_m": 3}, {"tile_k": 8, "pack_a": False, "pack_b": False}])
def test_gemm_epilogue_is_applied_to_the_register_tile(knobs):
    # alpha * A'B' + beta * C is stored straight from the accumulators: one loop nest, no second pass;
    # with k in blocks (5 of 8 here), the first block stores its sums to the output (nothing
    # initializes it), the middle ones add theirs, the last applies the epilogue
    from ember.ir.ops.registry import get_op
    from ember.ir.types import TensorType

    op = get_op("Gemm")
    attrs = {"alpha": 0.5, "beta": 2.0, "transA": 1, "transB": 0}
    inputs = [placeholder((40, 7), "float32", "a"), placeholder((40, 11), "float32", "b"),
              placeholder((11,), "float32", "c")]
    (out,) = op.compute(inputs, attrs, [TensorType("float32", (7, 11))])
    kernel = lower(op.schedule([out], Target.named("host"), Knobs(knobs)), inputs, "gemm")
    nests = kernel.body.stmts if isinstance(kernel.body, Seq) else [kernel.body]
    assert len(nests) == 1 and isinstance(nests[0], For)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(t.shape).astype(np.float32) for t in inputs]
    (got,) = compile_kernel(kernel)(*arrays)
    np.testing.assert_allclose(got, 0.5 * arrays[0].T @ arrays[1] + 2.0 * arrays[2], rtol=1e-5, atol=1e-5)


def micro_kernel_assembly(target):
    kernel, _ = product_kernel("ik,kj->ij", [(48, 64), (64, 64)], target)
    return compile_kernel(kernel, target).assembly()


def test_host_micro_kernel_is_vector_fma_on_registers():
    host = Target.host()
    if not host.has_fma or "avx" not in host.features:
        pytest.skip("the host has no FMA")
    asm = micro_kernel_assembly("host")
    register = "zmm" if host.vector_bits == 512 else "ymm"
    # one FMA per accumulator register, register to register, in the k loop
    fmas = re.findall(rf"\bvfmadd231ps\s+%{register}\d+, %{register}\d+, %{register}\d+", asm)
    assert len(fmas) >= 12


def test_sse_micro_kernel_multiplies_and_adds_packed_xmm():
    asm = micro_kernel_assembly("x86-64")
    assert len(re.findall(r"\bmulps\s+.*%xmm", asm)) >= 12 and len(re.findall(r"\baddps\s+.*%xmm", asm)) >= 12
    assert "ymm" not in asm and "vfmadd" not in asm


@pytest.mark.parametrize("target", COMPILE_TARGETS)
def test_pack_local_accumulator_and_epilogue_primitives_on_a_ragged_nest(target):
    # y[i, j] = relu(sum_k x[i, k] * w[j, k] + 1) with w packed in panels of 4 rows (zero padded: 10 = 4+4+2),
    # the sum accumulated in a 3 x 4 register tile, relu applied at its stores
    from ember.ir.loops import (
        compute,
        create_schedule,
        maximum,
        reduce_axis,
        reduce_sum,
    )

    x, w = placeholder((7, 9), "float32", "x"), placeholder((10, 9), "float32", "w")
    k = reduce_axis(9, "k")
    product = compute((7, 10), lambda i, j: reduce_sum(x[i, k] * w[j, k], k), "product")
    y = compute((7, 10), lambda i, j: maximum(product[i, j] + 1.0, 0.0), "y")
    s = create_schedule(y)
    stage = s[product]
    packed = s.pack(w, [product], axis=0, factor=4)
    assert packed.shape == (3, 9, 4)
    i, j, kk = stage.leaf
    io, ii = stage.split(i, 3)
    jo, ji = stage.split(j, 4)
    stage.reorder(jo, io, kk, ii, ji)
    stage.unroll(ii)
    stage.vectorize(ji)
    stage.accumulate_locally()
    stage.compute_epilogue()
    s[packed].compute_at(stage, jo)
    kernel = lower(s, [x, w], "f")
    assert [b.shape for b in allocations(kernel.body) if b.name.endswith(".acc")] == [(3, 4)]
    assert "y_i0" not in str(kernel)  # y has no loop nest of its own
    rng = np.random.default_rng(1)
    xs, ws = rng.standard_normal((7, 9)).astype(np.float32), rng.standard_normal((10, 9)).astype(np.float32)
    (got,) = compile_kernel(kernel, target)(xs, ws)
    np.testing.assert_allclose(got, np.maximum(xs @ ws.T + 1, 0), rtol=1e-5, atol=1e-5)
