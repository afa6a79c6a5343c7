"""How much work a loop nest does, estimated statically: is a parallel loop worth its dispatch?

Handing a loop to the thread pool costs a few microseconds (waking workers,
waiting for the slowest); a loop doing less than that in total runs faster
on the calling thread alone. :func:`nest_work` counts the expression nodes a
statement evaluates, loops multiplying their bodies (a vectorized loop by its
number of chunks); :func:`worth_parallel` compares a loop's count with
:data:`MIN_PARALLEL_WORK`.
"""

from __future__ import annotations

from ember.ir.loops.stmt import Allocate, Check, For, If, Let, Prefetch, Seq, Stmt, Store
from ember.ir.loops.tensor import walk

# expression nodes (about one instruction each) a parallel loop must evaluate to be run in parallel:
# some tens of microseconds of work, several times the cost of a dispatch
MIN_PARALLEL_WORK = 1 << 16
VECTOR_LANES_ESTIMATE = 4  # a vectorized loop counted as this many elements per step (SSE's float32)


def nest_work(s: Stmt) -> int:
    """Expression nodes ``s`` evaluates (both branches of an ``If`` counted)."""
    if isinstance(s, Seq):
        return sum(nest_work(x) for x in s.stmts)
    if isinstance(s, For):
        steps = -(-s.extent // VECTOR_LANES_ESTIMATE) if s.kind == "vectorized" else s.extent
        return steps * nest_work(s.body)
    if isinstance(s, Store):
        return _size(s.index) + _size(s.value) + 1
    if isinstance(s, If):
        return _size(s.cond) + nest_work(s.then) + (nest_work(s.otherwise) if s.otherwise is not None else 0)
    if isinstance(s, Let):
        return _size(s.value) + nest_work(s.body)
    if isinstance(s, Check):
        return _size(s.cond)
    if isinstance(s, Prefetch):
        return _size(s.index) + 1
    if isinstance(s, Allocate):
        return nest_work(s.body)
    return 1


def worth_parallel(s: For) -> bool:
    """Whether the parallel loop ``s`` does enough work to share among threads."""
    return nest_work(s) >= MIN_PARALLEL_WORK


def _size(e) -> int:
    return sum(1 for _ in walk(e))
