"""Loop IR -> LLVM IR (llvmlite.ir): one LLVM function per kernel.

Kernels take one opaque pointer per buffer (``noalias``: ember never passes
overlapping buffers) and return an ``i32`` status: 0, or ``i + 1`` when the
kernel's ``i``-th :class:`Check` failed. Parallel loops are outlined and run
on the native thread pool (:mod:`ember.codegen.parallel`). float16 values are loaded into float32 and computed in
float32; booleans are ``i1`` in registers and one byte in memory. Integer
division never traps: division by zero gives 0, as numpy does.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import llvmlite.ir as ir
from llvmlite.ir.values import MDValue

from ember.ir.loops.expr import (Binary, Call, Cast, Compare, Const, Expr, Load, Not, Select, Var, is_float)
from ember.ir.loops.stmt import (Allocate, Buffer, Check, For, If, Kernel, Let, Prefetch, Seq, Stmt, Store, checks_in,
                                 child_stmts)
from ember.ir.loops.tensor import walk

from . import vecmath
from .work import worth_parallel

I1, I8, I16, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
F16, F32, F64 = ir.HalfType(), ir.FloatType(), ir.DoubleType()
PTR = ir.PointerType()

# memory type of each dtype
MEMORY_TYPES = {"float32": F32, "float64": F64, "float16": I16, "int8": I8, "uint8": I8, "int32": I32,
                "int64": I64, "bool": I8}
# register type (float16 computes in float32, bool is i1)
VALUE_TYPES = {**MEMORY_TYPES, "float16": F32, "bool": I1}
UNSIGNED = {"uint8", "bool"}
FP_FLAGS = ("contract",)
MAX_UNROLL = 64  # longer loops marked "unrolled" stay loops
LOCAL_ALIGNMENT = 64  # bytes: local buffers (packed tiles, accumulators) start on a cache line
# the pool's dispatch, i32 (ptr body, ptr closure, i64 n, i32 threads), compiled in codegen/parallel.py
DISPATCH = "ember_parallel_for"
# i32 global of every module with parallel loops: how many threads they may use (the runtime sets it)
THREADS_GLOBAL = "ember_num_threads"
BODY_TYPE = ir.FunctionType(I32, [PTR, I64, I64])  # an outlined parallel loop: body(closure, begin, end)

# math functions with an LLVM intrinsic; the rest call libm
INTRINSICS = {"exp": "llvm.exp", "log": "llvm.log", "sqrt": "llvm.sqrt", "sin": "llvm.sin", "cos": "llvm.cos",
              "floor": "llvm.floor", "ceil": "llvm.ceil", "round": "llvm.roundeven", "fabs": "llvm.fabs",
              "pow": "llvm.pow", "tan": "llvm.tan", "asin": "llvm.asin", "acos": "llvm.acos", "atan": "llvm.atan",
              "sinh": "llvm.sinh", "cosh": "llvm.cosh", "tanh": "llvm.tanh"}
LIBM = {"erf", "asinh", "acosh", "atanh", "log1p", "expm1", "fmod"}


def llvm_suffix(t: ir.Type) -> str:
    if isinstance(t, ir.VectorType):
        return f"v{t.count}{llvm_suffix(t.element)}"
    return {F32: "f32", F64: "f64"}[t]


class KernelEmitter:
    """Emits one :class:`Kernel` into an ``ir.Module``."""

    def __init__(self, module: ir.Module, kernel: Kernel, *, linkage: str = "internal", f16c: bool = False,
                 target=None):
        self.module = module
        self.kernel = kernel
        self.f16c = f16c  # native half <-> float conversion instructions
        self.target = target  # None: vectorized loops stay scalar loops (LLVM may still vectorize them)
        fnty = ir.FunctionType(I32, [PTR] * len(kernel.params))
        self.check_codes = {id(c): i + 1 for i, c in enumerate(checks_in(kernel.body))}
        self.function = ir.Function(module, fnty, name=kernel.name)
        self.function.linkage = linkage
        self.function.attributes.add("nounwind")
        # each kernel stays a function of its own: inlining them all into the
        # entry point makes LLVM's compile time grow much faster than the graph
        self.function.attributes.add("noinline")
        for arg, buf in zip(self.function.args, kernel.params):
            arg.name = _clean(buf.name)
            arg.add_attribute("noalias")
        self.pointers: dict[int, ir.Value] = {id(b): a for b, a in zip(kernel.params, self.function.args)}
        self.vars: dict[int, ir.Value] = {}
        self.outline = True  # False inside an outlined loop body: parallel loops there run serially
        # id(vectorized For) -> its lanes and stride analysis, made once however often it is emitted
        # (an unrolled loop around it emits it once per iteration)
        self.vector_plans: dict[int, Any] = {}
        self.outlined: list[ir.Function] = []
        self._begin(self.function)

    def _begin(self, function: ir.Function) -> None:
        self.function = function
        self.alloca_builder = ir.IRBuilder(function.append_basic_block("entry"))
        self.builder = ir.IRBuilder(function.append_basic_block("body"))

    def emit(self) -> ir.Function:
        self.stmt(self.kernel.body)
        self._finish()
        return self.function

    def _finish(self) -> None:
        self.builder.ret(ir.Constant(I32, 0))
        self.alloca_builder.branch(self.function.basic_blocks[1])

    # ------------------------------------------------------------ statements
    def stmt(self, s: Stmt) -> None:
        if isinstance(s, Seq):
            for x in s.stmts:
                self.stmt(x)
        elif isinstance(s, For):
            self.for_loop(s)
        elif isinstance(s, Store):
            value = self.expr(s.value)
            self.store(s.buffer, self.expr(s.index), value)
        elif isinstance(s, If):
            self.if_stmt(s)
        elif isinstance(s, Prefetch):
            self.prefetch(s.buffer, self.expr(s.index))
        elif isinstance(s, Check):
            failed = self.builder.xor(self.expr(s.cond), ir.Constant(I1, 1))
            with self.builder.if_then(failed, likely=False):
                self.builder.ret(ir.Constant(I32, self.check_codes[id(s)]))
        elif isinstance(s, Let):
            self.vars[s.var.uid] = self.expr(s.value)
            self.stmt(s.body)
        elif isinstance(s, Allocate):
            mem = MEMORY_TYPES[s.buffer.dtype]
            local = self.alloca_builder.alloca(mem, size=s.buffer.size, name=_clean(s.buffer.name))
            local.align = LOCAL_ALIGNMENT  # whole cache lines: vector loads of a packed tile never straddle two
            local.type = PTR  # an opaque pointer, like the kernel's parameters
            self.pointers[id(s.buffer)] = local  # an opaque pointer, like the kernel's parameters
            self.stmt(s.body)
        else:
            raise TypeError(f"cannot emit {s!r}")

    def for_loop(self, s: For) -> None:
        if s.extent <= 0:
            return
        if s.kind == "unrolled" and s.extent <= MAX_UNROLL:
            if _has_unrolled(s.body):
                # an unrolled loop around unrolled loops: LLVM unrolls it (see loop_metadata), in C++,
                # rather than Python emitting its body once per iteration
                self.loop(s, ir.Constant(I64, 0), ir.Constant(I64, s.extent), unroll=True)
                return
            for i in range(s.extent):  # one copy of the body per iteration, the index a constant
                self.vars[s.var.uid] = ir.Constant(I64, i)
                self.stmt(s.body)
            return
        if (s.kind == "parallel" and self.outline and s.extent > 1 and not self._writes_shared_local(s)
                and worth_parallel(s)):
            self.parallel_loop(s)
            return
        if s.kind == "vectorized" and self.target is not None:
            from .vectorize import vectorize_loop

            if vectorize_loop(self, s):
                return
        self.loop(s, ir.Constant(I64, 0), ir.Constant(I64, s.extent))

    def loop(self, s: For, begin: ir.Value, end: ir.Value, unroll: bool = False) -> None:
        """``s`` as a loop over ``[begin, end)``; runs its body at least once (the caller checks).
        LLVM unrolls it fully when ``unroll``, else by ``s.unroll_by`` (not at all below 2)."""
        b = self.builder
        pre = b.block
        header = b.append_basic_block(f"{_clean(s.var.name)}.loop")
        exit_ = b.append_basic_block(f"{_clean(s.var.name)}.exit")
        b.branch(header)
        b.position_at_end(header)
        iv = b.phi(I64, name=_clean(s.var.name))
        iv.add_incoming(begin, pre)
        self.vars[s.var.uid] = iv
        self.stmt(s.body)
        nxt = b.add(iv, ir.Constant(I64, 1), flags=["nuw", "nsw"])
        iv.add_incoming(nxt, b.block)
        back = b.cbranch(b.icmp_signed("<", nxt, end), header, exit_)
        back.set_metadata("llvm.loop", loop_metadata(self.module, "full" if unroll else s.unroll_by))
        b.position_at_end(exit_)

    # --------------------------------------------------------- parallel loops
    def parallel_loop(self, s: For) -> None:
        """Outline ``s`` into ``body(closure, begin, end)`` and run it through the pool's dispatch.

        ``for parallel i in 0..n: S`` becomes ``status = ember_parallel_for(body, &closure, n,
        ember_num_threads)``. The values ``S`` uses from outside (buffer pointers, enclosing loop
        variables, let-bound values) travel in ``closure``, a struct on this function's stack.
        ``body`` unpacks them and calls ``body.inner(values..., begin, end)``, whose pointer
        arguments stay ``noalias`` (LLVM inlines it and keeps the aliasing facts).
        """
        buffers, variables = _uses(s.body)
        buffers = [buf for buf in buffers if id(buf) in self.pointers]
        outer = [v for v in variables if v.uid in self.vars and v.uid != s.var.uid]
        captured = [v for v in outer if not isinstance(self.vars[v.uid], ir.Constant)]
        values = [self.pointers[id(buf)] for buf in buffers] + [self.vars[v.uid] for v in captured]
        name = f"{self.function.name}.par{len(self.outlined)}"

        inner = ir.Function(self.module, ir.FunctionType(I32, [v.type for v in values] + [I64, I64]),
                            name=f"{name}.inner")
        inner.linkage = "internal"
        inner.attributes.add("nounwind")
        inner.attributes.add("noinline")  # keep it a function: its noalias arguments must survive
        for arg in inner.args[:len(buffers)]:
            arg.add_attribute("noalias")
        child = copy.copy(self)
        child.outline = False
        child._begin(inner)
        child.pointers = {id(buf): arg for buf, arg in zip(buffers, inner.args)}
        child.vars = {v.uid: self.vars[v.uid] for v in outer}  # constants stay constants
        child.vars.update({v.uid: arg for v, arg in zip(captured, inner.args[len(buffers):])})
        begin, end = inner.args[-2:]
        with child.builder.if_then(child.builder.icmp_signed("<", begin, end)):
            child.loop(s, begin, end)
        child._finish()

        closure_type = ir.LiteralStructType([v.type for v in values])
        body = ir.Function(self.module, BODY_TYPE, name=name)
        body.linkage = "internal"
        body.attributes.add("nounwind")
        self.outlined.append(body)
        tb = ir.IRBuilder(body.append_basic_block("entry"))
        closure, begin, end = body.args
        fields = [tb.load(_field(tb, closure, closure_type, i), typ=v.type) for i, v in enumerate(values)]
        tb.ret(tb.call(inner, fields + [begin, end]))

        b = self.builder
        packed = self.alloca_builder.alloca(closure_type, name=f"{name}.closure")
        packed.type = PTR  # llvmlite types an alloca as a typed pointer, and then mis-types field addresses
        for i, v in enumerate(values):
            b.store(v, _field(b, packed, closure_type, i))
        threads = b.load(self._threads_global(), typ=I32)
        status = b.call(self._dispatch(), [body, packed, ir.Constant(I64, s.extent), threads])
        if checks_in(s.body):
            with b.if_then(b.icmp_unsigned("!=", status, ir.Constant(I32, 0)), likely=False):
                b.ret(status)

    def _writes_shared_local(self, s: For) -> bool:
        """Whether ``s`` stores into a local buffer allocated outside it (threads would share it)."""
        return any(buf.scope == "local" and id(buf) in self.pointers for buf in _stored(s.body))

    def _dispatch(self) -> ir.Function:
        from .parallel import pool

        pool()  # compiles the pool once and registers its dispatch, which this module's JIT resolves
        fn = self.module.globals.get(DISPATCH)
        if fn is None:
            fn = ir.Function(self.module, ir.FunctionType(I32, [PTR, PTR, I64, I32]), name=DISPATCH)
            fn.attributes.add("nounwind")
        return fn

    def _threads_global(self) -> ir.GlobalVariable:
        g = self.module.globals.get(THREADS_GLOBAL)
        if g is None:  # external, so that LLVM cannot assume its value and the runtime can find it
            g = ir.GlobalVariable(self.module, I32, THREADS_GLOBAL)
            g.initializer = ir.Constant(I32, 1)
        return g

    def if_stmt(self, s: If) -> None:
        cond = self.expr(s.cond)
        b = self.builder
        if s.otherwise is None:
            with b.if_then(cond):
                self.stmt(s.then)
        else:
            with b.if_else(cond) as (then, otherwise):
                with then:
                    self.stmt(s.then)
                with otherwise:
                    self.stmt(s.otherwise)

    def address(self, buf: Buffer, index: ir.Value) -> ir.Value:
        return self.builder.gep(self.pointers[id(buf)], [index], inbounds=True, source_etype=MEMORY_TYPES[buf.dtype])

    def store(self, buf: Buffer, index: ir.Value, value: ir.Value) -> None:
        b = self.builder
        if buf.dtype == "bool":
            value = b.zext(value, I8)
        elif buf.dtype == "float16":
            value = self.float_to_half(value)
        mem = MEMORY_TYPES[buf.dtype]
        b.store(value, self.address(buf, index), align=_align(mem))

    def prefetch(self, buf: Buffer, index: ir.Value) -> None:
        """``llvm.prefetch`` of ``buf[index]`` for writing, into every cache level (LLVM emits
        ``prefetchw`` where the target has it, else ``prefetcht0``)."""
        prefetch = self.module.globals.get("llvm.prefetch.p0") or ir.Function(
            self.module, ir.FunctionType(ir.VoidType(), [PTR, I32, I32, I32]), "llvm.prefetch.p0")
        self.builder.call(prefetch, [self.address(buf, index), ir.Constant(I32, 1), ir.Constant(I32, 3),
                                     ir.Constant(I32, 1)])

    def load(self, buf: Buffer, index: ir.Value) -> ir.Value:
        b = self.builder
        mem = MEMORY_TYPES[buf.dtype]
        value = b.load(self.address(buf, index), typ=mem, align=_align(mem))
        if buf.dtype == "bool":
            return b.icmp_unsigned("!=", value, ir.Constant(I8, 0))
        if buf.dtype == "float16":
            return self.half_to_float(value)
        return value

    # float16 lives in memory as i16 bits. Without F16C, LLVM would convert
    # through compiler-rt calls that a JIT cannot resolve, so the conversions
    # are written out with integer operations (round to nearest even).
    def half_to_float(self, bits: ir.Value) -> ir.Value:
        b = self.builder
        if self.f16c:
            return b.fpext(b.bitcast(bits, F16), F32)
        h = b.zext(bits, I32)
        c = lambda v: ir.Constant(I32, v)  # noqa: E731
        sign = b.shl(b.and_(h, c(0x8000)), c(16))
        exponent = b.and_(b.lshr(h, c(10)), c(0x1F))
        mantissa = b.and_(h, c(0x3FF))
        normal = b.or_(b.shl(b.add(exponent, c(112)), c(23)), b.shl(mantissa, c(13)))
        special = b.or_(c(0x7F800000), b.shl(mantissa, c(13)))  # inf / nan
        subnormal = b.bitcast(b.fmul(b.uitofp(mantissa, F32), ir.Constant(F32, 2.0 ** -24)), I32)
        magnitude = b.select(b.icmp_unsigned("==", exponent, c(0)), subnormal,
                             b.select(b.icmp_unsigned("==", exponent, c(31)), special, normal))
        return b.bitcast(b.or_(magnitude, sign), F32)

    def float_to_half(self, value: ir.Value) -> ir.Value:
        b = self.builder
        if self.f16c:
            return b.bitcast(b.fptrunc(value, F16), I16)
        c = lambda v: ir.Constant(I32, v)  # noqa: E731
        bits = b.bitcast(value, I32)
        sign = b.and_(bits, c(0x80000000))
        magnitude = b.xor(bits, sign)
        # >= 65536.0: inf or nan
        overflow = b.select(b.icmp_unsigned(">", magnitude, c(0x7F800000)), c(0x7E00), c(0x7C00))
        # below 2^-14: subnormal half; adding 0.5 lets the FPU round the mantissa into place
        magic = c((127 - 1) << 23)
        shifted = b.bitcast(b.fadd(b.bitcast(magnitude, F32), b.bitcast(magic, F32)), I32)
        subnormal = b.sub(shifted, magic)
        # normal: rebias the exponent, round to nearest even on bit 13
        odd = b.and_(b.lshr(magnitude, c(13)), c(1))
        rounded = b.add(b.add(magnitude, c(((15 - 127) << 23) + 0xFFF)), odd)
        normal = b.lshr(rounded, c(13))
        half = b.select(b.icmp_unsigned(">=", magnitude, c((127 + 16) << 23)), overflow,
                        b.select(b.icmp_unsigned("<", magnitude, c(113 << 23)), subnormal, normal))
        return b.trunc(b.or_(half, b.lshr(sign, c(16))), I16)

    # ----------------------------------------------------------- expressions
    def expr(self, e: Expr) -> ir.Value:
        b = self.builder
        if isinstance(e, Const):
            return _constant(e)
        if isinstance(e, Var):
            return self.vars[e.uid]
        if isinstance(e, Load):
            return self.load(e.buffer, self.expr(e.index))
        if isinstance(e, Binary):
            a, b_ = self.expr(e.a), self.expr(e.b)
            folded = _fold_integers(e.op, a, b_) if e.a.dtype == e.b.dtype and not is_float(e.a.dtype) else None
            return folded if folded is not None else self.binary(e.op, e.a.dtype, a, b_, e.b.dtype)
        if isinstance(e, Compare):
            a, b_ = self.expr(e.a), self.expr(e.b)
            folded = _fold_integers(e.op, a, b_) if e.a.dtype not in UNSIGNED and not is_float(e.a.dtype) else None
            return folded if folded is not None else self.compare(e.op, e.a.dtype, a, b_)
        if isinstance(e, Not):
            return b.xor(self.expr(e.a), ir.Constant(I1, 1))
        if isinstance(e, Select):
            return self.select(e)
        if isinstance(e, Cast):
            return self.cast(self.expr(e.a), e.a.dtype, e.dtype)
        if isinstance(e, Call):
            return self.call(e)
        raise TypeError(f"cannot emit expression {e!r}")

    def select(self, e: Select) -> ir.Value:
        cond = self.expr(e.cond)
        taken = decided(cond)
        if taken is not None:  # emit only the side it takes
            return self.expr(e.a if taken else e.b)
        if not (e.guard and (_may_trap(e.a) or _may_trap(e.b))):
            return self.builder.select(cond, self.expr(e.a), self.expr(e.b))
        # a guarded side that loads may be out of bounds when not taken: branch instead of select
        b = self.builder
        with b.if_else(cond) as (then, otherwise):
            with then:
                va = self.expr(e.a)
                ba = b.block
            with otherwise:
                vb = self.expr(e.b)
                bb = b.block
        phi = b.phi(va.type)
        phi.add_incoming(va, ba)
        phi.add_incoming(vb, bb)
        return phi

    def binary(self, op: str, dtype: str, a: ir.Value, b_: ir.Value, b_dtype: str) -> ir.Value:
        b = self.builder
        if is_float(dtype):
            # "contract" lets LLVM fuse a*b+c into one FMA where the target has it
            if op == "add":
                return b.fadd(a, b_, flags=FP_FLAGS)
            if op == "sub":
                return b.fsub(a, b_, flags=FP_FLAGS)
            if op == "mul":
                return b.fmul(a, b_, flags=FP_FLAGS)
            if op == "div":
                return b.fdiv(a, b_)
            if op in ("min", "max"):  # NaN-propagating, like numpy
                return self.intrinsic(f"llvm.{'minimum' if op == 'min' else 'maximum'}", a.type, [a, b_])
            if op == "pow":
                if not is_float(b_dtype):
                    b_ = self.cast(b_, b_dtype, dtype)
                return self.intrinsic("llvm.pow", a.type, [a, b_])
            if op in ("floordiv", "floormod"):
                q = self.intrinsic("llvm.floor", a.type, [b.fdiv(a, b_)])
                return q if op == "floordiv" else b.fsub(a, b.fmul(q, b_))
            raise TypeError(f"float {op}")
        signed = dtype not in UNSIGNED
        if op == "add":
            return b.add(a, b_)
        if op == "sub":
            return b.sub(a, b_)
        if op == "mul":
            return b.mul(a, b_)
        if op in ("and", "or", "xor"):
            return getattr(b, op + "_")(a, b_) if op != "xor" else b.xor(a, b_)
        if op in ("min", "max"):
            cmp = (b.icmp_signed if signed else b.icmp_unsigned)("<" if op == "min" else ">", a, b_)
            return b.select(cmp, a, b_)
        if op == "div":
            return self.safe_divide(a, b_, signed, "div")
        if op in ("floordiv", "floormod"):
            return self.floor_divide(a, b_, signed, op)
        if op == "pow":
            fa = self.cast(a, dtype, "float64")
            fb = self.cast(b_, b_dtype, "float64")
            return self.cast(self.intrinsic("llvm.pow", F64, [fa, fb]), "float64", dtype)
        raise TypeError(f"integer {op}")

    def safe_divide(self, a: ir.Value, d: ir.Value, signed: bool, op: str) -> ir.Value:
        """Truncating division (or remainder) that never traps: x/0 = 0, MIN/-1 wraps."""
        b = self.builder
        zero, one = _const(a.type, 0), _const(a.type, 1)
        is_zero = b.icmp_unsigned("==", d, zero)
        if not signed:
            safe = b.select(is_zero, one, d)
            q = b.udiv(a, safe) if op == "div" else b.urem(a, safe)
            return b.select(is_zero, zero, q)
        minus_one = _const(a.type, -1)
        is_m1 = b.icmp_signed("==", d, minus_one)
        safe = b.select(b.or_(is_zero, is_m1), one, d)
        if op == "div":
            q = b.select(is_m1, b.sub(zero, a), b.sdiv(a, safe))
        else:
            q = b.select(is_m1, zero, b.srem(a, safe))
        return b.select(is_zero, zero, q)

    def floor_divide(self, a: ir.Value, d: ir.Value, signed: bool, op: str) -> ir.Value:
        b = self.builder
        q = self.safe_divide(a, d, signed, "div")
        r = self.safe_divide(a, d, signed, "rem")
        if not signed:
            return q if op == "floordiv" else r
        zero = _const(a.type, 0)
        adjust = b.and_(b.icmp_signed("!=", r, zero),
                        b.icmp_signed("!=", b.icmp_signed("<", r, zero), b.icmp_signed("<", d, zero)))
        if op == "floordiv":
            return b.select(adjust, b.sub(q, _const(a.type, 1)), q)
        return b.select(adjust, b.add(r, d), r)

    def compare(self, op: str, dtype: str, a: ir.Value, b_: ir.Value) -> ir.Value:
        sym = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}[op]
        b = self.builder
        if is_float(dtype):
            return b.fcmp_unordered(sym, a, b_) if op == "ne" else b.fcmp_ordered(sym, a, b_)
        if dtype in UNSIGNED:
            return b.icmp_unsigned(sym, a, b_)
        return b.icmp_signed(sym, a, b_)

    def cast(self, v: ir.Value, src: str, dst: str) -> ir.Value:
        b = self.builder
        st, dt = VALUE_TYPES[src], VALUE_TYPES[dst]
        if src == dst or (st == dt and (src in UNSIGNED) == (dst in UNSIGNED)):
            return v
        if dst == "bool":
            if is_float(src):
                return b.fcmp_unordered("!=", v, _const(v.type, 0.0))
            return b.icmp_unsigned("!=", v, _const(v.type, 0))
        vt = _like(v.type, dt)  # dt, or a vector of dt as wide as v
        if is_float(src) and is_float(dst):
            if st == dt:
                return v
            return b.fpext(v, vt) if _bits(st) < _bits(dt) else b.fptrunc(v, vt)
        if is_float(src):
            # clamp-free conversion; out-of-range values are unspecified, as in C and numpy
            return b.fptoui(v, vt) if dst in UNSIGNED else b.fptosi(v, vt)
        if is_float(dst):
            return b.uitofp(v, vt) if src in UNSIGNED else b.sitofp(v, vt)
        if _bits(st) == _bits(dt):
            return v
        if _bits(st) > _bits(dt):
            return b.trunc(v, vt)
        return b.zext(v, vt) if src in UNSIGNED else b.sext(v, vt)

    def call(self, e: Call) -> ir.Value:
        return self.call_values(e.name, [self.expr(a) for a in e.args])

    def call_values(self, function: str, args: list[ir.Value]) -> ir.Value:
        """``function(*args)``: inline polynomial code (:mod:`.vecmath`), an LLVM intrinsic (vectors too)
        or a scalar libm call."""
        t = args[0].type
        if vecmath.has_inline_form(function, t):
            fma = self.target is not None and self.target.has_fma
            return vecmath.FLOAT32[function](self.builder, args[0], fma)
        if function in INTRINSICS:
            return self.intrinsic(INTRINSICS[function], t, args)
        name = function + ("f" if t == F32 else "")
        fn = self.module.globals.get(name)
        if fn is None:
            fn = ir.Function(self.module, ir.FunctionType(t, [t] * len(args)), name=name)
            # pure: ember never reads errno, so LLVM may merge and hoist these calls
            fn.attributes.add("nounwind")
            fn.attributes.add("readnone")
        return self.builder.call(fn, args)

    def intrinsic(self, name: str, t: ir.Type, args: list[ir.Value]) -> ir.Value:
        full = f"{name}.{llvm_suffix(t)}"
        fn = self.module.globals.get(full)
        if fn is None:
            fn = ir.Function(self.module, ir.FunctionType(t, [t] * len(args)), name=full)
        return self.builder.call(fn, args)


def _uses(s: Stmt) -> tuple[list[Buffer], list[Var]]:
    """The buffers and variables ``s`` refers to, in first-use order."""
    buffers: dict[int, Buffer] = {}
    variables: dict[int, Var] = {}

    def expr(e: Expr) -> None:
        for x in walk(e):
            if isinstance(x, Var):
                variables.setdefault(x.uid, x)
            elif isinstance(x, Load):
                buffers.setdefault(id(x.buffer), x.buffer)

    def stmt(s: Stmt) -> None:
        if isinstance(s, Store):
            buffers.setdefault(id(s.buffer), s.buffer)
            expr(s.index)
            expr(s.value)
        elif isinstance(s, Prefetch):
            buffers.setdefault(id(s.buffer), s.buffer)
            expr(s.index)
        elif isinstance(s, (If, Check)):
            expr(s.cond)
        elif isinstance(s, Let):
            expr(s.value)
        for child in child_stmts(s):
            stmt(child)

    stmt(s)
    return list(buffers.values()), list(variables.values())


def loop_metadata(module: ir.Module, unroll: str | int) -> ir.Value:
    """The ``llvm.loop`` metadata of a loop's back edge: unroll it fully (``"full"``), by a factor
    (an int above 1), or never.

    ember's schedules decide what is unrolled. The outer loops of a nest of unrolled loops are
    left to LLVM's unroller (a loop here, ``llvm.loop.unroll.full``): unrolling in C++ takes a
    fraction of the time of emitting and printing every copy from Python, and the code is the
    same. A loop scheduled ``unroll_by`` gets ``llvm.loop.unroll.count``. Every other loop says
    ``llvm.loop.unroll.disable``, so that the unroller, enabled for those, leaves the rest alone
    (it would fully unroll nests of short vector loops: seconds of compile time for no speed).
    """
    if unroll == "full":
        hint = module.add_metadata([ir.MetaDataString(module, "llvm.loop.unroll.full")])
    elif isinstance(unroll, int) and unroll > 1:
        hint = module.add_metadata([ir.MetaDataString(module, "llvm.loop.unroll.count"), ir.Constant(I32, unroll)])
    else:
        hint = module.add_metadata([ir.MetaDataString(module, "llvm.loop.unroll.disable")])
    # a loop's identity is a node whose first operand is itself (one per loop: LLVM updates it)
    loop_id = MDValue(module, [], name=str(len(module.metadata)))
    loop_id.operands = (loop_id, hint)
    return loop_id


def _has_unrolled(s: Stmt) -> bool:
    """Whether ``s`` contains a loop marked unrolled."""
    return (isinstance(s, For) and s.kind == "unrolled") or any(_has_unrolled(c) for c in child_stmts(s))


def _stored(s: Stmt) -> list[Buffer]:
    found = [s.buffer] if isinstance(s, Store) else []
    for child in child_stmts(s):
        found += _stored(child)
    return found


def _field(b: ir.IRBuilder, struct: ir.Value, struct_type: ir.LiteralStructType, i: int) -> ir.Value:
    return b.gep(struct, [ir.Constant(I32, 0), ir.Constant(I32, i)], inbounds=True, source_etype=struct_type)


def _may_trap(e: Expr) -> bool:
    """Whether evaluating ``e`` when it is not needed could fault (it loads memory)."""
    return any(isinstance(x, Load) for x in walk(e))


def _constant(e: Const) -> ir.Constant:
    t = VALUE_TYPES[e.dtype]
    if e.dtype == "bool":
        return ir.Constant(I1, int(bool(e.value)))
    if is_float(e.dtype):
        value = float(e.value)
        if t == F32 and math.isfinite(value):
            import numpy as np

            value = float(np.float32(value))  # LLVM needs float constants exactly representable
        return ir.Constant(t, value)
    return ir.Constant(t, int(e.value))


def _const(t: ir.Type, value) -> ir.Constant:
    """The constant ``value`` of type ``t``; splatted when ``t`` is a vector type."""
    if isinstance(t, ir.VectorType):
        return ir.Constant(t, [ir.Constant(t.element, value)] * t.count)
    return ir.Constant(t, value)


def _like(shape: ir.Type, t: ir.Type) -> ir.Type:
    """``t``, or a vector of ``t`` with as many lanes as ``shape`` when that is a vector type."""
    return ir.VectorType(t, shape.count) if isinstance(shape, ir.VectorType) else t


def _bits(t: ir.Type) -> int:
    return {I1: 1, I8: 8, I16: 16, I32: 32, I64: 64, F16: 16, F32: 32, F64: 64}[t]


_INTEGER_FOLDS = {
    "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
    "floordiv": lambda x, y: x // y if y else None, "floormod": lambda x, y: x % y if y else None,
    "min": min, "max": max,
    "lt": lambda x, y: x < y, "le": lambda x, y: x <= y, "gt": lambda x, y: x > y, "ge": lambda x, y: x >= y,
    "eq": lambda x, y: x == y, "ne": lambda x, y: x != y,
}


def decided(cond: ir.Value) -> bool | None:
    """The value of a condition known while emitting (a folded constant), else None."""
    if isinstance(cond, ir.Constant) and isinstance(cond.constant, int):
        return bool(cond.constant)
    return None


def _fold_integers(op: str, a: ir.Value, b: ir.Value) -> ir.Constant | None:
    """``a op b`` as a constant when both are signed integer scalar constants (an unrolled loop's
    index meeting a constant), so that a select on it emits only the side it takes; None otherwise."""
    fold = _INTEGER_FOLDS.get(op)
    if fold is None or not all(isinstance(v, ir.Constant) and isinstance(v.type, ir.IntType)
                               and isinstance(v.constant, int) for v in (a, b)):
        return None
    value = fold(a.constant, b.constant)
    if value is None:
        return None
    if isinstance(value, bool):
        return ir.Constant(I1, int(value))
    bits = a.type.width
    if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
        return None  # would wrap: leave it to LLVM
    return ir.Constant(a.type, value)


def _align(t: ir.Type) -> int:
    return max(1, _bits(t) // 8)


def _clean(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._" else "_" for c in name)


def emit_kernel(module: ir.Module, kernel: Kernel, *, linkage: str = "internal", target=None) -> ir.Function:
    """Add ``kernel`` to ``module`` as a function of the same name (tuned to ``target``'s features)."""
    f16c = target is not None and "f16c" in target.features
    return KernelEmitter(module, kernel, linkage=linkage, f16c=f16c, target=target).emit()
