"""This CPU's peak fp32 FLOP/s, per core and for all cores, from a generated FMA microkernel.

The kernel is built with llvmlite and JIT-compiled by ember's ``JitModule``
for ``Target.host()``: a loop over ``ACCUMULATORS`` independent vector
accumulators, each updated ``acc = acc * x + y`` per iteration, so enough
operations are in flight to cover the FMA latency times its throughput.
With FMA that is one ``llvm.fma.v<L>f32`` (2 flops per lane); on an
SSE2-only target it is separate ``fmul`` and ``fadd`` chains (1 flop per lane
each), which is that CPU's peak without FMA.

``x`` and ``y`` are read from memory at run time (``x = 1``, ``y = 0``), so
LLVM cannot fold the chains and the values never turn denormal.

N threads are N ``threading.Thread`` calling the ctypes function: ctypes
releases the GIL, so they run natively in parallel.

    python benchmarks/peak.py [--threads N] [--repeat R] [--json OUT]

>>> measure_peak(1)["median_gflops"]            # doctest: +SKIP
96.1
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import sys
import threading
import time
from functools import cache

from llvmlite import ir

from ember.bench import cpu_name
from ember.codegen.jit import JitModule
from ember.codegen.target import Target

# Independent accumulators: FMA latency (4-5 cycles) x 2 FMA ports needs 8-10;
# 12 leaves margin and still fits 16 vector registers with x and y.
ACCUMULATORS = 12
# Vector updates written out per loop iteration, so loop overhead is negligible.
UNROLL = 4
KERNEL = "ember_peak_fp32"


def available_cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def build_module(target: Target) -> tuple[ir.Module, int]:
    """The microkernel ``void ember_peak_fp32(i64 iters, float* xy, float* out)``.

    Returns the module and the flops one loop iteration performs.
    """
    lanes = target.vector_lanes(4)
    f32 = ir.FloatType()
    vec = ir.VectorType(f32, lanes)
    i64 = ir.IntType(64)
    module = ir.Module(name="peak")
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [i64, f32.as_pointer(), f32.as_pointer()]), KERNEL)
    iters, xy, out = fn.args
    entry, loop, done = fn.append_basic_block("entry"), fn.append_basic_block("loop"), fn.append_basic_block("done")

    b = ir.IRBuilder(entry)
    zero_vec = ir.Constant(vec, [0.0] * lanes)

    def splat(value):
        v = b.insert_element(ir.Constant(vec, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
        return b.shuffle_vector(v, ir.Constant(vec, ir.Undefined), ir.Constant(ir.VectorType(ir.IntType(32), lanes),
                                                                                   [0] * lanes))

    x = splat(b.load(b.gep(xy, [ir.Constant(i64, 0)])))
    y = splat(b.load(b.gep(xy, [ir.Constant(i64, 1)])))
    b.branch(loop)

    b = ir.IRBuilder(loop)
    counter = b.phi(i64, "i")
    counter.add_incoming(ir.Constant(i64, 0), entry)
    phis = [b.phi(vec, f"acc{k}") for k in range(ACCUMULATORS)]
    for p in phis:
        p.add_incoming(zero_vec, entry)
    accs = list(phis)
    if target.has_fma:
        fma = ir.Function(module, ir.FunctionType(vec, [vec, vec, vec]), f"llvm.fma.v{lanes}f32")
        for _ in range(UNROLL):
            accs = [b.call(fma, [a, x, y]) for a in accs]
        flops_per_iter = UNROLL * ACCUMULATORS * lanes * 2
    else:
        # Half the chains multiply, half add: both ports busy, one flop per lane each.
        half = ACCUMULATORS // 2
        for _ in range(UNROLL):
            accs = [b.fmul(a, x) for a in accs[:half]] + [b.fadd(a, y) for a in accs[half:]]
        flops_per_iter = UNROLL * ACCUMULATORS * lanes
    nxt = b.add(counter, ir.Constant(i64, 1))
    counter.add_incoming(nxt, loop)
    for p, a in zip(phis, accs):
        p.add_incoming(a, loop)
    b.cbranch(b.icmp_signed("<", nxt, iters), loop, done)

    b = ir.IRBuilder(done)
    total = accs[0]
    for a in accs[1:]:
        total = b.fadd(total, a)
    b.store(total, b.bitcast(out, vec.as_pointer()), align=4)
    b.ret_void()
    return module, flops_per_iter


@cache
def _kernel(target_name: str = "host") -> tuple[JitModule, ctypes._CFuncPtr, int, Target]:
    target = Target.named(target_name)
    module, flops_per_iter = build_module(target)
    jit = JitModule(module, target)
    fn = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p)(jit.address(KERNEL))
    return jit, fn, flops_per_iter, target


def _run(threads: int, iters: int, target_name: str = "host") -> float:
    """Wall seconds for ``threads`` threads each running ``iters`` iterations at once."""
    _, fn, _, target = _kernel(target_name)
    xy = (ctypes.c_float * 2)(1.0, 0.0)
    outs = [(ctypes.c_float * target.vector_lanes(4))() for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def work(k: int) -> None:
        barrier.wait()
        fn(iters, ctypes.addressof(xy), ctypes.addressof(outs[k]))

    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    return time.perf_counter() - start


def measure_peak(threads: int = 1, repeat: int = 7, seconds: float = 0.2, target: str = "host") -> dict:
    """Peak fp32 GFLOP/s with ``threads`` threads (all of them together).

    Each of ``repeat`` measurements runs about ``seconds``. ``target`` is
    ``host`` or a named x86-64 level (``x86-64`` checks the SSE2-only,
    mul+add kernel on a newer CPU). Returns
    ``{"threads", "median_gflops", "min_gflops", "max_gflops", "per_thread_gflops",
    "runs", "lanes", "fma", "accumulators", "target"}``.
    """
    name = target
    _, _, flops_per_iter, target = _kernel(name)
    iters = 1 << 14
    while True:  # calibrate single-threaded to about `seconds`
        dt = _run(1, iters, name)
        if dt >= seconds / 4 or iters > 1 << 34:
            break
        iters *= 4
    iters = max(1, int(iters * seconds / dt))
    _run(threads, iters, name)  # warm up every thread's core clock
    gflops = [threads * iters * flops_per_iter / _run(threads, iters, name) / 1e9 for _ in range(repeat)]
    median = statistics.median(gflops)
    return {"threads": threads, "median_gflops": median, "min_gflops": min(gflops), "max_gflops": max(gflops),
            "per_thread_gflops": median / threads, "runs": repeat, "lanes": target.vector_lanes(4),
            "fma": target.has_fma, "accumulators": ACCUMULATORS, "target": str(target)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=available_cores(), help="threads for the all-cores figure")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.2, help="duration of one measurement")
    parser.add_argument("--target", default="host", help="host, or x86-64[-v2|-v3|-v4] to check that kernel")
    parser.add_argument("--quick", action="store_true", help="tiny run for smoke tests")
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.seconds = 1, 0.01
    report = {"cpu": cpu_name(), "loadavg_1min": os.getloadavg()[0], "results": []}
    for threads in sorted({1, args.threads}):
        r = measure_peak(threads, args.repeat, args.seconds, args.target)
        report["results"].append(r)
        print(f"{threads:>2} thread(s): {r['median_gflops']:8.1f} GFLOP/s median "
              f"(min {r['min_gflops']:.1f}, max {r['max_gflops']:.1f}, {r['runs']} runs), "
              f"{r['per_thread_gflops']:.1f} per thread")
    r = report["results"][0]
    print(f"cpu: {report['cpu']}; {r['target']}; {r['lanes']} fp32 lanes, "
          f"{'FMA' if r['fma'] else 'mul+add (no FMA)'}, {r['accumulators']} accumulators")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
