"""Unrolling: the outer loops of a nest of unrolled loops are left to LLVM's unroller, and every
other loop is kept a loop; the code computes the same either way."""

import re

import llvmlite.ir as ir
import numpy as np
import pytest

from ember.codegen.llvm import emit_kernel
from ember.codegen.run import compile_kernel
from ember.codegen.target import Target
from ember.ir.loops import compute, create_schedule, lower, placeholder

TARGETS = ["host", "x86-64"]


def scaled(shape, unroll=(), vectorize=None):
    """``y = x * 3 + 1`` over ``shape`` with the loops at ``unroll`` unrolled."""
    x = placeholder(shape, "float32", "x")
    y = compute(shape, lambda *i: x[i] * 3.0 + 1.0, "y")
    s = create_schedule(y)
    stage = s[y]
    for axis in unroll:
        stage.unroll(stage.leaf[axis])
    if vectorize is not None:
        stage.vectorize(stage.leaf[vectorize])
    return lower(s, [x], "f")


def loop_hints(kernel) -> list[str]:
    """The unrolling hint of each loop the kernel's LLVM IR keeps (before optimization)."""
    module = ir.Module("m")
    emit_kernel(module, kernel, linkage="external", target=Target.named("x86-64"))
    text = str(module)
    nodes = dict(re.findall(r"^(!\d+) = (.*)$", text, re.M))
    hints = []
    for loop_id in re.findall(r"!llvm\.loop (!\d+)", text):
        _, hint = re.fullmatch(r"!{ (!\d+), (!\d+) }", nodes[loop_id]).groups()
        hints.append(re.match(r'!{ !"([a-z.]+)"', nodes[hint]).group(1))
    return hints


def jumps(asm: str) -> int:
    return len(re.findall(r"^\s+j[a-z]+\s", asm, re.M))


def test_outer_unrolled_loop_is_left_to_llvm_and_others_never_unrolled():
    hints = loop_hints(scaled((3, 5, 16), unroll=(0, 1), vectorize=2))
    assert hints == ["llvm.loop.unroll.full"]  # the outer unrolled loop; the inner one is unrolled in Python
    hints = loop_hints(scaled((4, 16, 3), unroll=()))
    assert hints == ["llvm.loop.unroll.disable"] * 3


@pytest.mark.parametrize("target", TARGETS)
def test_nest_of_unrolled_loops_becomes_straight_code(target):
    kernel = scaled((3, 5, 16), unroll=(0, 1), vectorize=2)
    fn = compile_kernel(kernel, target)
    assert jumps(fn.assembly()) == 0  # no loop left
    x = np.random.default_rng(0).standard_normal((3, 5, 16)).astype(np.float32)
    np.testing.assert_allclose(fn(x)[0], x * 3 + 1, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("target", TARGETS)
def test_loops_not_marked_unrolled_stay_loops(target):
    # LLVM's unroller would unroll a 4-trip loop fully on its own; ember's metadata keeps it a loop
    kernel = scaled((4, 64), vectorize=1)
    fn = compile_kernel(kernel, target)
    assert jumps(fn.assembly()) >= 1
    x = np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)
    np.testing.assert_allclose(fn(x)[0], x * 3 + 1, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("target", TARGETS)
def test_unroll_by_unrolls_a_serial_loop_partially(target):
    # 4 steps per iteration: four copies of the body in the loop, the loop kept, and the 13 % 4
    # remaining steps done after it; the values are those of the plain loop
    x = placeholder((13, 8), "float32", "x")
    y = compute((13, 8), lambda i, j: x[i, j] * 3.0 + 1.0, "y")
    s = create_schedule(y)
    s[y].vectorize(s[y].leaf[1])
    s[y].unroll_by(s[y].leaf[0], 4)
    kernel = lower(s, [x], "f")
    assert "unroll_by=4" in str(kernel)
    assert loop_hints(kernel) == ["llvm.loop.unroll.count"]
    fn = compile_kernel(kernel, target)
    assert jumps(fn.assembly()) >= 1
    xs = np.random.default_rng(2).standard_normal((13, 8)).astype(np.float32)
    np.testing.assert_allclose(fn(xs)[0], xs * 3 + 1, rtol=1e-5, atol=1e-6)


def test_only_serial_loops_unroll_by_a_factor():
    from ember.ir.loops import ScheduleError

    x = placeholder((8, 8), "float32", "x")
    y = compute((8, 8), lambda i, j: x[i, j] + 1.0, "y")
    s = create_schedule(y)
    s[y].vectorize(s[y].leaf[1])
    with pytest.raises(ScheduleError, match="only a serial loop"):
        s[y].unroll_by(s[y].leaf[1], 2)
