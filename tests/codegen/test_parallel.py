"""Parallel loops run on the native thread pool and compute exactly what serial loops compute."""

import gc
import multiprocessing
import os
import threading

import numpy as np
import pytest
from ember.codegen.parallel import available_cores, pool, set_threads
from ember.codegen.run import compile_kernel
from ember.ir import CompileError, InputError, parse
from ember.ir.loops import (
    Allocate,
    Buffer,
    Check,
    For,
    Kernel,
    Let,
    Load,
    Var,
    cast,
    compute,
    create_schedule,
    lower,
    placeholder,
    seq,
)
from ember.ir.loops.stmt import Store

import ember


pytestmark = pytest.mark.usefixtures("parallel_however_small")  # (tests/conftest.py)


def tasks() -> int:
    return len(os.listdir("/proc/self/task"))


def parallel_kernel(fn, shape, parallel_axes, name="f"):
    """``y = fn(x, *indices)`` over ``shape``, the loops over ``parallel_axes`` marked parallel."""
    x = placeholder(shape, "float32", "x")
    y = compute(shape, lambda *i: fn(x, *i), "y")
    s = create_schedule(y)
    stage = s[y]
    axes = list(stage.leaf)
    for a in parallel_axes:
        stage.parallel(axes[a])
    return lower(s, [x], name)


def run_with(kernel, threads, *inputs):
    f = compile_kernel(kernel)
    set_threads(f.jit, threads)
    return f(*inputs)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 7, 64, 1001, 100_003])
@pytest.mark.parametrize("threads", [2, 3])
def test_parallel_loop_matches_serial_for_every_extent(n, threads):
    kernel = parallel_kernel(lambda x, i: x[i] * 3.0 + cast("float32", i), (n,), [0])
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    (serial,) = run_with(kernel, 1, x)
    (par,) = run_with(kernel, threads, x)
    np.testing.assert_array_equal(par, serial)
    np.testing.assert_allclose(par, x * np.float32(3) + np.arange(n, dtype=np.float32), rtol=1e-6, atol=1e-6)


def test_nested_parallel_loops_and_parallel_inside_serial():
    x = np.random.default_rng(0).standard_normal((7, 9, 33)).astype(np.float32)
    expected = x * 2 + 1
    for axes in ([0, 1], [0, 2], [1], [2], [0, 1, 2]):  # [1], [2]: parallel loops inside serial ones
        kernel = parallel_kernel(lambda t, i, j, k: t[i, j, k] * 2.0 + 1.0, x.shape, axes)
        (y,) = run_with(kernel, 2, x)
        np.testing.assert_array_equal(y, expected)


def test_closure_carries_buffers_outer_loop_variables_and_let_values():
    # for i in 0..5: let s = i * 10: for parallel j in 0..n: y[i, j] = a[j] + b[i] + c[j] * s
    n = 37
    a, b, c = Buffer("a", "float32", (n,)), Buffer("b", "float32", (5,)), Buffer("c", "float32", (n,))
    y = Buffer("y", "float32", (5, n))
    i, j, s = Var("i"), Var("j"), Var("s")
    inner = For(j, n, Store(y, i * n + j, Load(a, j, "float32") + Load(b, i, "float32")
                            + Load(c, j, "float32") * cast("float32", s)), "parallel")
    kernel = Kernel("closure", [a, b, c, y], For(i, 5, Let(s, i * 10, inner)), 3, 1)
    rng = np.random.default_rng(1)
    av, bv, cv = (rng.standard_normal(k).astype(np.float32) for k in (n, 5, n))
    f = compile_kernel(kernel)
    assert "ember_parallel_for" in str(f.jit.llvm_module)
    set_threads(f.jit, 2)
    (out,) = f(av, bv, cv)
    expected = av[None, :] + bv[:, None] + cv[None, :] * (np.arange(5, dtype=np.float32) * 10)[:, None]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    set_threads(f.jit, 1)
    np.testing.assert_array_equal(f(av, bv, cv)[0], out)


def test_failed_check_inside_a_parallel_loop_stops_the_kernel():
    n = 1000
    x, y = Buffer("x", "int64", (n,)), Buffer("y", "int64", (n,))
    j = Var("j")
    body = seq(Check(Load(x, j, "int64") < 100, "value too large"), Store(y, j, Load(x, j, "int64") + 1))
    f = compile_kernel(Kernel("checked", [x, y], For(j, n, body, "parallel"), 1, 1))
    set_threads(f.jit, 2)
    ok = np.arange(n) % 100
    np.testing.assert_array_equal(f(ok)[0], ok + 1)
    bad = ok.copy()
    bad[n - 3] = 500
    with pytest.raises(InputError, match="value too large"):
        f(bad)


def test_loop_writing_a_local_buffer_allocated_outside_runs_serially():
    # threads would share `tmp`, so the loop is not outlined
    n = 64
    x, y = Buffer("x", "float32", (n,)), Buffer("y", "float32", (n,))
    tmp = Buffer("tmp", "float32", (1,), scope="local")
    j = Var("j")
    body = seq(Store(tmp, j * 0, Load(x, j, "float32") * 2.0), Store(y, j, Load(tmp, j * 0, "float32")))
    f = compile_kernel(Kernel("shared", [x, y], Allocate(tmp, For(j, n, body, "parallel")), 1, 1))
    assert "ember_parallel_for" not in str(f.jit.llvm_module)
    set_threads(f.jit, 2)
    xv = np.arange(n, dtype=np.float32)
    np.testing.assert_array_equal(f(xv)[0], xv * 2)


def test_the_pool_runs_chunks_on_worker_threads():
    kernel = parallel_kernel(lambda x, i, k: x[i, k] * 2.0, (64, 4096), [0])
    f = compile_kernel(kernel)
    assert set_threads(f.jit, 2) == 2
    assert tasks() >= 2
    x = np.ones((64, 4096), np.float32)
    before = pool().chunks_done()
    for _ in range(200):  # a worker claims a chunk unless the OS never runs it while the caller works
        f(x)
        if pool().chunks_done() > before:
            break
    assert pool().chunks_done() > before


def test_repeated_runs_and_dropped_modules_do_not_leak_threads():
    kernel = parallel_kernel(lambda x, i: x[i] + 1.0, (4096,), [0])
    f = compile_kernel(kernel)
    set_threads(f.jit, 2)
    x = np.zeros(4096, np.float32)
    f(x)
    count = tasks()
    for _ in range(200):
        f(x)
    assert tasks() == count
    for k in range(10):
        g = compile_kernel(parallel_kernel(lambda x, i, k=k: x[i] * float(k), (4096,), [0], name=f"g{k}"))
        set_threads(g.jit, 2)
        np.testing.assert_array_equal(g(x)[0], x * k)
        del g
        gc.collect()
    assert tasks() == count


GRAPH = """
graph main(%x: f32[8,64,32]) {
  %y: f32[8,64,32] = Relu(%x)
  %z: f32[8,64,32] = Mul(%y, %x)
  return %z
}
"""


def test_compile_num_threads():
    graph = parse(GRAPH)
    x = np.random.default_rng(2).standard_normal((8, 64, 32)).astype(np.float32)
    assert ember.compile(graph).stats()["threads"] == available_cores()
    one, two = ember.compile(graph, num_threads=1), ember.compile(graph, num_threads=2)
    assert (one.stats()["threads"], two.stats()["threads"]) == (1, 2)
    np.testing.assert_array_equal(one(x)[0], two(x)[0])
    with pytest.raises(CompileError, match="num_threads"):
        ember.compile(graph, num_threads=0)


def test_modules_run_from_two_python_threads_at_once():
    graph = parse(GRAPH)
    mods = [ember.compile(graph, num_threads=2) for _ in range(2)]
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal((8, 64, 32)).astype(np.float32) for _ in range(2)]
    expected = [np.maximum(x, 0) * x for x in inputs]
    errors = []

    def work(k):
        for _ in range(100):
            (out,) = mods[k](inputs[k])
            if not np.array_equal(out, expected[k]):
                errors.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def _run_in_child(queue):
    kernel = parallel_kernel(lambda x, i: x[i] + 2.0, (10_000,), [0])
    f = compile_kernel(kernel)
    set_threads(f.jit, 2)
    queue.put(float(f(np.ones(10_000, np.float32))[0].sum()))


def test_a_forked_child_starts_its_own_workers():
    set_threads(compile_kernel(parallel_kernel(lambda x, i: x[i], (8,), [0])).jit, 2)  # the parent has workers
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_run_in_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == 30_000.0


def test_squeezenet_is_identical_with_one_and_two_threads():
    from ember.examples import resolve_model

    mod = ember.compile(resolve_model("light:squeezenet"), num_threads=1)
    feeds = mod.random_feeds()
    serial = mod.run(feeds)
    set_threads(mod._jit, 2)  # the same code on the pool (compiling twice would double the test's time)
    for a, b in zip(serial, mod.run(feeds)):
        np.testing.assert_array_equal(a, b)


def test_loop_with_little_work_runs_serially_and_one_with_enough_in_parallel(monkeypatch):
    from ember.codegen import work

    monkeypatch.setattr(work, "MIN_PARALLEL_WORK", 1 << 16)
    small = compile_kernel(parallel_kernel(lambda x, i: x[i] * 3.0, (64,), [0]))
    assert "ember_parallel_for" not in str(small.jit.llvm_module)
    large = compile_kernel(parallel_kernel(lambda x, i, j: x[i, j] * 3.0, (64, 4096), [0]))
    assert "ember_parallel_for" in str(large.jit.llvm_module)
    x = np.ones((64, 4096), np.float32)
    set_threads(large.jit, 2)
    np.testing.assert_array_equal(large(x)[0], x * 3)


BIND_PROBE = """
import json, os, time
from ember.codegen.parallel import pool, worker_cpus
pool().grow(3)  # two workers
main, full = os.getpid(), sorted(os.sched_getaffinity(0))
expected = sorted({worker_cpus().get(w) for w in (1, 2)} - {None})
for _ in range(200):  # a worker binds itself as it starts
    restricted = sorted(c for t in os.listdir("/proc/self/task") if int(t) != main
                        for cpus in [sorted(os.sched_getaffinity(int(t)))] if cpus != full for c in cpus)
    if sorted(set(restricted)) == expected:
        break
    time.sleep(0.01)
print(json.dumps({"full": full, "expected": expected, "restricted": restricted}))
"""


@pytest.mark.parametrize("bind", ["1", "0"])
def test_workers_bind_to_one_cpu_each_unless_told_not_to(bind):
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", BIND_PROBE], env={**os.environ, "EMBER_BIND_THREADS": bind},
                         capture_output=True, text=True, timeout=120, check=True).stdout
    probe = json.loads(out)
    if bind == "0" or len(probe["full"]) < 2:
        assert probe["expected"] == [] and probe["restricted"] == []
    else:  # worker i on the i-th allowed CPU (modulo their number), each on that CPU alone
        cpus = probe["full"]
        assert probe["expected"] == sorted({cpus[1 % len(cpus)], cpus[2 % len(cpus)]})
        assert sorted(set(probe["restricted"])) == probe["expected"]
