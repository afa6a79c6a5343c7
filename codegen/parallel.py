"""The native thread pool that runs parallel loops, written as LLVM IR.

Generated kernels outline each parallel loop into ``i32 body(ptr closure,
i64 begin, i64 end)`` and call ``i32 ember_parallel_for(body, closure, n,
threads)``. The dispatch splits ``[0, n)`` among ``min(threads, workers + 1,
n)`` threads, the calling thread one of them, and waits for the
workers; it returns the status (failed check) of the lowest failing chunk, or 0.
Each thread claims contiguous chunks (a few per thread) from a shared counter,
so a thread the OS preempts delays one chunk rather than the whole loop.

The pool is process-global and persistent: worker threads are created once
(``pthread_create`` from the generated code, signals blocked) and each waits
on a word of its own: it spins a few milliseconds with ``pause``, then sleeps in
``futex``; the dispatcher bumps the word of every worker it hands a chunk to
and wakes it only if it sleeps. No Python and no lock is on the hot path:
one dispatch holds the pool at a time (``busy``); a dispatch that finds the
pool busy (another module running on another Python thread, or a parallel
loop reached from inside a chunk) runs its whole range on its own thread.
At process exit the workers are stopped and joined; a forked child forgets
its parent's workers and starts its own when asked.

Each worker binds itself to one CPU of the process's affinity set (worker ``i``
to the ``i``-th, modulo their number; the calling thread stays free), as TVM's
and OpenMP runtimes with binding do. On a VM a call after an idle pause often
ran at one core's speed, as if the woken worker shared the calling thread's
CPU, and binding the workers by hand removed that: SqueezeNet's median
call after a 0.2 s pause at 2 threads was 15.2 ms free and 8.8 ms bound (9.0 and
8.1 ms minima), BERT's 18.6 and 17.4 ms. ``EMBER_BIND_THREADS=0`` leaves the
workers free (e.g. for several processes sharing the cores).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import platform
import threading

import llvmlite.binding as llvm
import llvmlite.ir as ir

from .llvm import DISPATCH, I32, I64, PTR, THREADS_GLOBAL

I8 = ir.IntType(8)
MAX_THREADS = 256  # workers + the calling thread
CHUNKS_PER_THREAD = 4
# A waiting thread spins this many time-stamp-counter ticks (about 6 ms at 2.8 GHz) before it
# sleeps: on a VM, a sleeping thread's core may be given to another guest, and waking it then
# costs milliseconds. Shorter (0.5 ms) spins let the threads of a BERT layer fall asleep inside
# a run between kernels, and its median time at 2 threads doubled after an idle pause.
SPIN_TICKS = 1 << 24
SPIN_LIMIT = 1 << 20  # pause iterations at most (where the counter does not advance)
FUTEX_WAIT, FUTEX_WAKE = 128, 129  # the _PRIVATE variants
SYS_FUTEX = {"x86_64": 202, "AMD64": 202, "aarch64": 98, "arm64": 98}
SYS_SCHED_SETAFFINITY = {"x86_64": 203, "AMD64": 203, "aarch64": 122, "arm64": 122}
CPU_MASK_WORDS = 16  # a cpu_set_t: 1024 bits
# one cache line per worker: the word it waits on, whether it sleeps
SLOT = ir.LiteralStructType([I32, I32, ir.ArrayType(I32, 14)])
BODY = ir.FunctionType(I32, [PTR, I64, I64])


def available_cores() -> int:
    """The number of cores this process may run on (the default ``num_threads``)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class PoolEmitter:
    """Adds the pool's globals and functions to ``module``."""

    def __init__(self, module: ir.Module):
        self.module = module
        self.busy = self.global_("pool.busy", I32)
        self.stop = self.global_("pool.stop", I32)
        self.workers = self.global_("pool.workers", I32)
        self.generation = self.global_("pool.generation", I64)  # of the last job (dispatch holds busy)
        self.job_next = self.global_("pool.job_next", I64)  # generation << 32 | next chunk to claim
        self.done = self.global_("pool.done", I32)  # chunks of the open job finished
        self.caller_sleeps = self.global_("pool.caller_sleeps", I32)
        self.result = self.global_("pool.result", I64)  # min over failing chunks of chunk << 32 | status
        self.chunks_done = self.global_("pool.chunks_done", I64)  # by workers, for stats and tests
        self.job_fn = self.global_("pool.job_fn", PTR)
        self.job_closure = self.global_("pool.job_closure", PTR)
        self.job_n = self.global_("pool.job_n", I64)
        self.job_chunks = self.global_("pool.job_chunks", I64)
        self.slots = self.global_("pool.slots", ir.ArrayType(SLOT, MAX_THREADS))
        self.handles = self.global_("pool.handles", ir.ArrayType(I64, MAX_THREADS))
        self.cpus = self.global_("pool.cpus", ir.ArrayType(I32, MAX_THREADS))  # worker -> its CPU + 1, or 0: free
        self.syscall = self.declare("syscall", I64, [I64], var_arg=True)
        self.pthread_create = self.declare("pthread_create", I32, [PTR, PTR, PTR, PTR])
        self.pthread_join = self.declare("pthread_join", I32, [I64, PTR])
        self.pthread_sigmask = self.declare("pthread_sigmask", I32, [I32, PTR, PTR])
        self.sigfillset = self.declare("sigfillset", I32, [PTR])
        self.sched_yield = self.declare("sched_yield", I32, [])
        self.sys_futex = SYS_FUTEX.get(platform.machine())
        self.sys_setaffinity = SYS_SCHED_SETAFFINITY.get(platform.machine())

    def emit(self) -> None:
        self.emit_pause()
        self.emit_wait()
        self.emit_notify()
        self.emit_run_chunk()
        self.emit_help()
        self.emit_worker()
        self.emit_dispatch()
        self.emit_grow()
        self.emit_set_cpu()
        self.emit_stop()
        self.emit_forget()
        self.emit_chunks_done()

    # ----------------------------------------------------------------- helpers
    def global_(self, name: str, t: ir.Type) -> ir.GlobalVariable:
        g = ir.GlobalVariable(self.module, t, name)
        g.linkage = "internal"
        g.initializer = ir.Constant(t, None)
        return g

    def declare(self, name: str, ret: ir.Type, args: list[ir.Type], var_arg: bool = False) -> ir.Function:
        return self.module.globals.get(name) or ir.Function(self.module, ir.FunctionType(ret, args, var_arg), name)

    def function(self, name: str, ret: ir.Type, args: list[ir.Type], external: bool = False):
        fn = ir.Function(self.module, ir.FunctionType(ret, args), name)
        fn.linkage = "external" if external else "internal"
        fn.attributes.add("nounwind")
        return fn, ir.IRBuilder(fn.append_basic_block("entry"))

    @staticmethod
    def load(b: ir.IRBuilder, ptr, t: ir.Type = I32) -> ir.Value:
        return b.load_atomic(ptr, "seq_cst", align=4 if t == I32 else 8, typ=t)

    @staticmethod
    def store(b: ir.IRBuilder, value, ptr) -> None:
        b.store_atomic(value, ptr, "seq_cst", align=8 if value.type == I64 else 4)

    def slot(self, b: ir.IRBuilder, index: ir.Value, field: int) -> ir.Value:
        return b.gep(self.slots, [ir.Constant(I32, 0), index, ir.Constant(I32, field)], inbounds=True)

    def futex(self, b: ir.IRBuilder, word: ir.Value, op: int, value: ir.Value) -> None:
        args = [b.ptrtoint(word, I64), ir.Constant(I64, op), b.zext(value, I64) if value.type == I32 else value,
                ir.Constant(I64, 0), ir.Constant(I64, 0), ir.Constant(I64, 0)]
        if self.sys_futex is None:  # no futex number known: sleeping is yielding
            b.call(self.sched_yield, [])
        else:
            b.call(self.syscall, [ir.Constant(I64, self.sys_futex), *args])

    @staticmethod
    def while_(b: ir.IRBuilder, name: str):
        """Blocks ``(head, body, exit)`` of a loop; the caller fills them."""
        head = b.append_basic_block(f"{name}.head")
        body = b.append_basic_block(f"{name}.body")
        exit_ = b.append_basic_block(f"{name}.exit")
        b.branch(head)
        b.position_at_end(head)
        return head, body, exit_

    def acquire(self, b: ir.IRBuilder) -> None:
        """Take ``busy``, yielding while a dispatch holds it (grow and stop, off the hot path)."""
        head, body, exit_ = self.while_(b, "acquire")
        pair = b.cmpxchg(self.busy, ir.Constant(I32, 0), ir.Constant(I32, 1), "seq_cst", "seq_cst")
        b.cbranch(b.extract_value(pair, 1), exit_, body)
        b.position_at_end(body)
        b.call(self.sched_yield, [])
        b.branch(head)
        b.position_at_end(exit_)

    # --------------------------------------------------------------- functions
    def emit_pause(self) -> None:
        self.pause, b = self.function("pool.pause", ir.VoidType(), [])
        if platform.machine() in ("x86_64", "AMD64"):
            b.call(self.declare("llvm.x86.sse2.pause", ir.VoidType(), []), [])
        elif platform.machine() in ("aarch64", "arm64"):
            b.call(self.declare("llvm.aarch64.hint", ir.VoidType(), [I32]), [ir.Constant(I32, 1)])  # yield
        b.ret_void()

    def emit_wait(self) -> None:
        """``i32 wait(ptr word, ptr sleeps, i32 seen)``: the word's value once it differs from ``seen``."""
        self.wait, b = self.function("pool.wait", I32, [PTR, PTR, I32])
        word, sleeps, seen = self.wait.args
        clock = self.declare("llvm.readcyclecounter", I64, [])
        start = b.call(clock, [])
        entry = b.block
        head, body, exit_ = self.while_(b, "spin")
        k = b.phi(I32)
        k.add_incoming(ir.Constant(I32, 0), entry)
        now = self.load(b, word)
        changed = b.icmp_unsigned("!=", now, seen)
        done = b.append_basic_block("done")
        sleep = b.append_basic_block("sleep")
        b.cbranch(changed, done, body)
        b.position_at_end(body)
        b.call(self.pause, [])
        k.add_incoming(b.add(k, ir.Constant(I32, 1)), body)
        spun = b.or_(b.icmp_unsigned(">=", b.sub(b.call(clock, []), start), ir.Constant(I64, SPIN_TICKS)),
                     b.icmp_unsigned(">=", k, ir.Constant(I32, SPIN_LIMIT)))
        b.cbranch(spun, sleep, head)
        # sleep: announce it, re-check (seq_cst pairs with the notifier's store, then load of sleeps)
        b.position_at_end(sleep)
        b.atomic_rmw("add", sleeps, ir.Constant(I32, 1), "seq_cst")
        self.futex(b, word, FUTEX_WAIT, seen)  # returns at once if the word already changed
        b.atomic_rmw("sub", sleeps, ir.Constant(I32, 1), "seq_cst")
        b.branch(exit_)
        b.position_at_end(exit_)
        again = self.load(b, word)
        b.cbranch(b.icmp_unsigned("!=", again, seen), done, sleep)
        b.position_at_end(done)
        result = b.phi(I32)
        result.add_incoming(now, head)
        result.add_incoming(again, exit_)
        b.ret(result)

    def emit_notify(self) -> None:
        """``void notify(ptr word, ptr sleeps)``: wake the waiters of ``word`` if any sleeps."""
        self.notify, b = self.function("pool.notify", ir.VoidType(), [PTR, PTR])
        word, sleeps = self.notify.args
        with b.if_then(b.icmp_unsigned("!=", self.load(b, sleeps), ir.Constant(I32, 0)), likely=False):
            self.futex(b, word, FUTEX_WAKE, ir.Constant(I32, 0x7FFFFFFF))
        b.ret_void()

    def emit_run_chunk(self) -> None:
        """``void run_chunk(i64 index)``: run chunk ``index`` of the job, record a failure."""
        self.run_chunk, b = self.function("pool.run_chunk", ir.VoidType(), [I64])
        (index,) = self.run_chunk.args
        n, chunks = b.load(self.job_n, typ=I64), b.load(self.job_chunks, typ=I64)
        begin = b.sdiv(b.mul(n, index), chunks)
        end = b.sdiv(b.mul(n, b.add(index, ir.Constant(I64, 1))), chunks)
        fn, closure = b.load(self.job_fn, typ=PTR), b.load(self.job_closure, typ=PTR)
        status = b.call(_Callee(fn, BODY), [closure, begin, end])
        with b.if_then(b.icmp_unsigned("!=", status, ir.Constant(I32, 0)), likely=False):
            key = b.or_(b.shl(index, ir.Constant(I64, 32)), b.zext(status, I64))
            b.atomic_rmw("umin", self.result, key, "seq_cst")
        b.ret_void()

    def emit_help(self) -> None:
        """``i64 help()``: claim and run chunks of the open job until none is left; returns how many.

        ``job_next`` is ``generation << 32 | next chunk``; claiming is a compare-exchange on it, so a
        thread that read the job's fields claims a chunk only if that job is still the open one.
        """
        self.help, b = self.function("pool.help", I64, [])
        entry = b.block
        loop = b.append_basic_block("claim")
        run = b.append_basic_block("run")
        exit_ = b.append_basic_block("exit")
        b.branch(loop)
        b.position_at_end(loop)
        count = b.phi(I64)
        count.add_incoming(ir.Constant(I64, 0), entry)
        word = self.load(b, self.job_next, I64)
        index = b.and_(word, ir.Constant(I64, 0xFFFFFFFF))
        chunks = b.load(self.job_chunks, typ=I64)
        claim = b.append_basic_block("try")
        b.cbranch(b.icmp_unsigned("<", index, chunks), claim, exit_)
        b.position_at_end(claim)
        pair = b.cmpxchg(self.job_next, word, b.add(word, ir.Constant(I64, 1)), "seq_cst", "seq_cst")
        b.cbranch(b.extract_value(pair, 1), run, loop)
        count.add_incoming(count, claim)
        b.position_at_end(run)
        b.call(self.run_chunk, [index])
        done = b.add(b.atomic_rmw("add", self.done, ir.Constant(I32, 1), "seq_cst"), ir.Constant(I32, 1))
        with b.if_then(b.icmp_unsigned("==", b.zext(done, I64), chunks)):
            b.call(self.notify, [self.done, self.caller_sleeps])
        count.add_incoming(b.add(count, ir.Constant(I64, 1)), b.block)
        b.branch(loop)
        b.position_at_end(exit_)
        b.ret(count)

    def emit_worker(self) -> None:
        """``ptr worker(ptr index)``: wait until woken, help with the open job; until ``stop``."""
        self.worker, b = self.function("pool.worker", PTR, [PTR])
        index = b.ptrtoint(self.worker.args[0], I64)
        self.bind(b, index)
        word, sleeps = self.slot(b, index, 0), self.slot(b, index, 1)
        entry = b.block
        loop = b.append_basic_block("loop")
        b.branch(loop)
        b.position_at_end(loop)
        seen = b.phi(I32)
        seen.add_incoming(ir.Constant(I32, 0), entry)
        now = b.call(self.wait, [word, sleeps, seen])
        with b.if_then(b.icmp_unsigned("!=", self.load(b, self.stop), ir.Constant(I32, 0)), likely=False):
            b.ret(ir.Constant(PTR, None))
        b.atomic_rmw("add", self.chunks_done, b.call(self.help, []), "monotonic")
        seen.add_incoming(now, b.block)
        b.branch(loop)

    def bind(self, b: ir.IRBuilder, index: ir.Value) -> None:
        """Bind the calling worker to the CPU ``pool.cpus[index]`` names (nothing when it names none,
        or the architecture's system call number is unknown; a refused call leaves it free)."""
        if self.sys_setaffinity is None:
            return
        cpu = b.load(b.gep(self.cpus, [ir.Constant(I64, 0), index], inbounds=True), typ=I32)
        with b.if_then(b.icmp_signed(">", cpu, ir.Constant(I32, 0))):
            mask = b.alloca(ir.ArrayType(I64, CPU_MASK_WORDS))
            b.store(ir.Constant(ir.ArrayType(I64, CPU_MASK_WORDS), None), mask)
            bit = b.sext(b.sub(cpu, ir.Constant(I32, 1)), I64)
            word = b.gep(mask, [ir.Constant(I64, 0), b.lshr(bit, ir.Constant(I64, 6))], inbounds=True)
            b.store(b.shl(ir.Constant(I64, 1), b.and_(bit, ir.Constant(I64, 63))), word)
            b.call(self.syscall, [ir.Constant(I64, self.sys_setaffinity), ir.Constant(I64, 0),
                                  ir.Constant(I64, 8 * CPU_MASK_WORDS), b.ptrtoint(mask, I64)])

    def emit_set_cpu(self) -> None:
        """``void ember_pool_set_cpu(i32 worker, i32 cpu)``: the CPU worker ``worker`` binds itself to
        when it starts (-1: none)."""
        fn, b = self.function("ember_pool_set_cpu", ir.VoidType(), [I32, I32], external=True)
        worker, cpu = fn.args
        b.store(b.add(cpu, ir.Constant(I32, 1)), b.gep(self.cpus, [ir.Constant(I64, 0), b.sext(worker, I64)], inbounds=True))
        b.ret_void()

    def emit_dispatch(self) -> None:
        fn, b = self.function(DISPATCH, I32, [PTR, PTR, I64, I32], external=True)
        body, closure, n, threads = fn.args
        serial, try_pool, pooled, release, go = (fn.append_basic_block(name) for name in (
            "serial", "try_pool", "pooled", "release", "go"))
        one = ir.Constant(I64, 1)
        want = _min(b, b.sext(threads, I64), n)
        b.cbranch(b.icmp_signed(">", want, one), try_pool, serial)
        b.position_at_end(try_pool)
        pair = b.cmpxchg(self.busy, ir.Constant(I32, 0), ir.Constant(I32, 1), "seq_cst", "seq_cst")
        b.cbranch(b.extract_value(pair, 1), pooled, serial)
        b.position_at_end(pooled)  # the worker count is stable while we hold the pool
        used = _min(b, want, b.add(b.sext(self.load(b, self.workers), I64), one))
        b.cbranch(b.icmp_signed(">", used, one), go, release)
        b.position_at_end(release)
        self.store(b, ir.Constant(I32, 0), self.busy)
        b.branch(serial)

        b.position_at_end(serial)
        b.ret(b.call(_Callee(body, BODY), [closure, ir.Constant(I64, 0), n]))

        # a few chunks per thread, claimed dynamically: a thread the OS preempts delays one chunk, not the job
        b.position_at_end(go)
        chunks = _min(b, n, b.mul(used, ir.Constant(I64, CHUNKS_PER_THREAD)))
        for g, v in ((self.job_fn, body), (self.job_closure, closure), (self.job_n, n), (self.job_chunks, chunks),
                     (self.result, ir.Constant(I64, -1)), (self.done, ir.Constant(I32, 0))):
            b.store(v, g)
        generation = b.add(b.load(self.generation, typ=I64), one)
        b.store(generation, self.generation)
        self.store(b, b.shl(generation, ir.Constant(I64, 32)), self.job_next)  # opens the job
        with _counted(b, one, used, "wake") as i:
            b.atomic_rmw("add", self.slot(b, i, 0), ir.Constant(I32, 1), "seq_cst")
            b.call(self.notify, [self.slot(b, i, 0), self.slot(b, i, 1)])
        b.call(self.help, [])
        head, wait_body, exit_ = self.while_(b, "join")
        done = self.load(b, self.done)
        b.cbranch(b.icmp_unsigned("==", b.zext(done, I64), chunks), exit_, wait_body)
        b.position_at_end(wait_body)
        b.call(self.wait, [self.done, self.caller_sleeps, done])
        b.branch(head)
        b.position_at_end(exit_)
        # close the job; an exchange (not a store) orders it after every claim, so no late
        # thread can claim a chunk of the next job with this one's fields
        closed = b.or_(b.shl(generation, ir.Constant(I64, 32)), ir.Constant(I64, 0xFFFFFFFF))
        b.atomic_rmw("xchg", self.job_next, closed, "seq_cst")
        result = self.load(b, self.result, I64)
        self.store(b, ir.Constant(I32, 0), self.busy)
        failed = b.icmp_unsigned("!=", result, ir.Constant(I64, -1))
        b.ret(b.select(failed, b.trunc(result, I32), ir.Constant(I32, 0)))

    def emit_grow(self) -> None:
        """``i32 ember_pool_grow(i32 n)``: start workers until there are ``n``; returns how many run."""
        fn, b = self.function("ember_pool_grow", I32, [I32], external=True)
        want = b.sext(_min(b, fn.args[0], ir.Constant(I32, MAX_THREADS - 1)), I64)
        mask, old = b.alloca(ir.ArrayType(I8, 128)), b.alloca(ir.ArrayType(I8, 128))  # sigset_t
        self.acquire(b)
        # workers inherit the creating thread's signal mask: block all, so that Python's main thread gets them
        b.call(self.sigfillset, [mask])
        b.call(self.pthread_sigmask, [ir.Constant(I32, 2), mask, old])  # SIG_SETMASK
        head, body, exit_ = self.while_(b, "start")
        have = b.sext(b.load(self.workers, typ=I32), I64)
        b.cbranch(b.icmp_signed("<", have, want), body, exit_)
        b.position_at_end(body)
        index = b.add(have, ir.Constant(I64, 1))
        b.store(ir.Constant(I32, 0), self.slot(b, index, 0))
        b.store(ir.Constant(I32, 0), self.slot(b, index, 1))
        handle = b.gep(self.handles, [ir.Constant(I64, 0), index], inbounds=True)
        rc = b.call(self.pthread_create, [handle, ir.Constant(PTR, None), self.worker, b.inttoptr(index, PTR)])
        started = b.append_basic_block("started")
        b.cbranch(b.icmp_unsigned("==", rc, ir.Constant(I32, 0)), started, exit_)
        b.position_at_end(started)
        self.store(b, b.trunc(index, I32), self.workers)
        b.branch(head)
        b.position_at_end(exit_)
        b.call(self.pthread_sigmask, [ir.Constant(I32, 2), old, ir.Constant(PTR, None)])
        count = b.load(self.workers, typ=I32)
        self.store(b, ir.Constant(I32, 0), self.busy)
        b.ret(count)

    def emit_stop(self) -> None:
        """``void ember_pool_stop()``: wake every worker with ``stop`` set and join it."""
        _, b = self.function("ember_pool_stop", ir.VoidType(), [], external=True)
        self.acquire(b)
        workers = b.sext(b.load(self.workers, typ=I32), I64)
        self.store(b, ir.Constant(I32, 1), self.stop)
        end = b.add(workers, ir.Constant(I64, 1))
        with _counted(b, ir.Constant(I64, 1), end, "wake") as i:
            b.atomic_rmw("add", self.slot(b, i, 0), ir.Constant(I32, 1), "seq_cst")
            self.futex(b, self.slot(b, i, 0), FUTEX_WAKE, ir.Constant(I32, 1))
        with _counted(b, ir.Constant(I64, 1), end, "join") as i:
            handle = b.load(b.gep(self.handles, [ir.Constant(I64, 0), i], inbounds=True), typ=I64)
            b.call(self.pthread_join, [handle, ir.Constant(PTR, None)])
        self.store(b, ir.Constant(I32, 0), self.workers)
        self.store(b, ir.Constant(I32, 0), self.stop)
        self.store(b, ir.Constant(I32, 0), self.busy)
        b.ret_void()

    def emit_forget(self) -> None:
        """``void ember_pool_forget()``: in a forked child, whose parent's workers do not exist."""
        _, b = self.function("ember_pool_forget", ir.VoidType(), [], external=True)
        for g in (self.workers, self.stop, self.busy):
            self.store(b, ir.Constant(I32, 0), g)
        b.ret_void()

    def emit_chunks_done(self) -> None:
        _, b = self.function("ember_pool_chunks_done", I64, [], external=True)
        b.ret(self.load(b, self.chunks_done, I64))


class _Callee:
    """A function pointer to call: llvmlite reads the callee's type from ``function_type``."""

    def __init__(self, value: ir.Value, ftype: ir.FunctionType):
        self.value, self.function_type, self.type = value, ftype, value.type

    def get_reference(self) -> str:
        return self.value.get_reference()


def _min(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("<", x, y), x, y)


class _counted:
    """``with _counted(b, start, stop, name) as i:`` emits ``for i in [start, stop)``."""

    def __init__(self, b: ir.IRBuilder, start: ir.Value, stop: ir.Value, name: str):
        self.b, self.start, self.stop, self.name = b, start, stop, name

    def __enter__(self) -> ir.Value:
        b = self.b
        pre = b.block
        self.head = b.append_basic_block(f"{self.name}.head")
        body = b.append_basic_block(f"{self.name}.body")
        self.exit = b.append_basic_block(f"{self.name}.exit")
        b.branch(self.head)
        b.position_at_end(self.head)
        self.i = b.phi(I64)
        self.i.add_incoming(self.start, pre)
        b.cbranch(b.icmp_signed("<", self.i, self.stop), body, self.exit)
        b.position_at_end(body)
        return self.i

    def __exit__(self, *exc) -> None:
        b = self.b
        self.i.add_incoming(b.add(self.i, ir.Constant(I64, 1)), b.block)
        b.branch(self.head)
        b.position_at_end(self.exit)


# ------------------------------------------------------------------ Python side
class Pool:
    """The process's pool: its JIT-compiled code and the entry points Python calls (off the hot path)."""

    def __init__(self):
        from .jit import JitModule
        from .target import Target

        module = ir.Module(name="ember_pool")
        PoolEmitter(module).emit()
        self.jit = JitModule(module, Target.host())
        # kernels of every module resolve the dispatch to this compiled function
        llvm.add_symbol(DISPATCH, self.jit.address(DISPATCH))
        self._grow = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32)(self.jit.address("ember_pool_grow"))
        self.stop = ctypes.CFUNCTYPE(None)(self.jit.address("ember_pool_stop"))
        self.forget = ctypes.CFUNCTYPE(None)(self.jit.address("ember_pool_forget"))
        self._chunks_done = ctypes.CFUNCTYPE(ctypes.c_int64)(self.jit.address("ember_pool_chunks_done"))
        set_cpu = ctypes.CFUNCTYPE(None, ctypes.c_int32, ctypes.c_int32)(self.jit.address("ember_pool_set_cpu"))
        for worker, cpu in worker_cpus().items():
            set_cpu(worker, cpu)

    def grow(self, threads: int) -> int:
        """Make sure ``threads - 1`` workers run (the caller is the last thread); returns the threads available."""
        return int(self._grow(max(0, min(threads, MAX_THREADS) - 1))) + 1

    def chunks_done(self) -> int:
        """Chunks the workers have run since the process started (tests check the pool is used)."""
        return int(self._chunks_done())


def worker_cpus() -> dict[int, int]:
    """The CPU each worker binds itself to: worker ``i`` (from 1) to the ``i``-th CPU of the
    process's affinity set, modulo their number; none with ``EMBER_BIND_THREADS=0`` or one CPU."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return {}
    cpus = [c for c in cpus if c < 64 * CPU_MASK_WORDS]  # what the worker's mask can name
    if len(cpus) < 2 or os.environ.get("EMBER_BIND_THREADS", "1") == "0":
        return {}
    return {worker: cpus[worker % len(cpus)] for worker in range(1, MAX_THREADS)}


_pool: Pool | None = None
_pool_lock = threading.Lock()


def pool() -> Pool:
    """The process's pool, compiled on first use (no worker threads until :meth:`Pool.grow`)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = Pool()
            atexit.register(_pool.stop)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_pool.forget)
        return _pool


def set_threads(jit, threads: int) -> int:
    """Let the parallel loops of JIT-compiled ``jit`` use up to ``threads`` threads (1: serial).

    Starts the pool's workers as needed; returns the threads the loops get (fewer when
    the pool could not start more). A module without parallel loops starts nothing.
    """
    threads = max(1, min(threads, MAX_THREADS))
    address = jit.engine.get_global_value_address(THREADS_GLOBAL)
    if not address:
        return threads
    if threads > 1:
        threads = min(threads, pool().grow(threads))
    ctypes.c_int32.from_address(address).value = threads
    return threads


__all__ = ["MAX_THREADS", "Pool", "PoolEmitter", "available_cores", "pool", "set_threads", "worker_cpus"]
