"""Evicting a kernel's weights from every cache level before a timed call.

Timed alone, call after call, a kernel finds its weights in the caches; inside a
model the other kernels' data has evicted them by the time it runs again, and a
config that wins with hot weights can lose with cold ones (ResNet-50's tuned
1x1 convs on 7 x 7 images, 2048 x 512 weights, ran up to 0.2 ms slower than
the defaults in the model while measuring faster alone). With
``MeasureOptions(flush_cache=True)`` (``ember tune --flush-cache``) each timed
call comes right after the kernel's inputs but the first (its weights; the
first is the activation a model's previous kernel has just written) are
flushed, as TVM's ``enable_cpu_cache_flush`` does.

On x86-64 the flush is a JIT-compiled loop of ``clflush`` over each array's
cache lines (baseline x86-64, so any such CPU has it); elsewhere a scratch
buffer larger than a last-level cache is written, which evicts everything.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Sequence

import numpy as np

from ember.ir.loops.lower import CACHE_LINE_BYTES

# written through on hosts without clflush: larger than any last-level cache ember targets
SCRATCH_BYTES = 256 << 20


def flush(arrays: Sequence[np.ndarray]) -> None:
    """Evict the memory of ``arrays`` from every cache level of this CPU."""
    clflush = _clflush()
    if clflush is None:
        _scratch()[:] += 1
        return
    for array in arrays:
        start = array.ctypes.data & ~(CACHE_LINE_BYTES - 1)
        clflush(start, array.ctypes.data + array.nbytes - start)


@functools.cache
def _scratch() -> np.ndarray:
    return np.zeros(SCRATCH_BYTES, dtype=np.uint8)


@functools.cache
def _clflush() -> Callable[[int, int], None] | None:
    """``f(address, nbytes)``: ``clflush`` of every line from ``address`` (line-aligned) on, then
    ``mfence``; None when this host is not x86-64."""
    import llvmlite.ir as ir

    from ember.codegen.jit import JitModule
    from ember.codegen.target import Target

    target = Target.host()
    if not target.triple.startswith("x86_64"):
        return None
    i64, ptr = ir.IntType(64), ir.PointerType()
    module = ir.Module("cache_flush")
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr, i64]), "ember_clflush")
    clflush = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr]), "llvm.x86.sse2.clflush")
    mfence = ir.Function(module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.mfence")
    entry, loop, done = (function.append_basic_block(name) for name in ("entry", "loop", "done"))
    address, nbytes = function.args
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed(">", nbytes, i64(0)), loop, done)
    b.position_at_end(loop)
    offset = b.phi(i64)
    offset.add_incoming(i64(0), entry)
    b.call(clflush, [b.gep(address, [offset], source_etype=ir.IntType(8))])
    following = b.add(offset, i64(CACHE_LINE_BYTES))
    offset.add_incoming(following, loop)
    b.cbranch(b.icmp_signed("<", following, nbytes), loop, done)
    b.position_at_end(done)
    b.call(mfence, [])
    b.ret_void()
    jit = JitModule(module, target)
    call = jit.function("ember_clflush", ctypes.c_void_p, ctypes.c_int64)
    return lambda addr, size, _keep=jit: call(addr, size)


__all__ = ["flush"]
