"""Loops marked ``vectorized`` -> explicit LLVM vector code (used by :mod:`ember.codegen.llvm`).

``for vectorized i in 0..n: S`` becomes a loop over chunks of ``lanes`` iterations (a full
register, or a narrower one of at least 128 bits when ``n`` is shorter) evaluating
``S`` on vectors (``i`` is ``<base, base+1, ...>``), then the ``n % lanes`` remaining iterations
in narrower chunks while one of at least 128 bits fits (16 + 8 + 4 float32 lanes for ``n = 28``
on AVX-512) and the last few as scalar code, unrolled (as is a whole loop shorter than the
narrowest vector); up to :data:`MAX_STRAIGHT_CHUNKS` chunks are emitted one after another
instead (constant bases: a small local tile they index becomes registers). Only bodies of ``Store``/``Let``/``Seq`` whose per-element operations are
those of the scalar loop qualify (results are bit-identical); anything else stays scalar.
Loads and stores of stride 1 in ``i`` are vector accesses, stride 0 a scalar access and splat,
any other index per-lane scalar accesses (at constant offsets from lane 0's address when the
stride is known, as in a layout transposition).
"""

from __future__ import annotations

from collections.abc import Callable

from ember.ir.loops.expr import (
    Binary,
    Call,
    Cast,
    Compare,
    Const,
    Expr,
    Load,
    Not,
    Select,
    Var,
    children,
    is_float,
)
from ember.ir.loops.simplify import same
from ember.ir.loops.stmt import Buffer, For, Let, Seq, Stmt, Store
from ember.ir.loops.tensor import walk
from llvmlite import ir

from .llvm import (
    I32,
    I64,
    MEMORY_TYPES,
    VALUE_TYPES,
    KernelEmitter,
    _align,
    _bits,
    _clean,
    _const,
    _may_trap,
    decided,
    loop_metadata,
)
from .vecmath import has_inline_form

# integer operations done lane by lane (their scalar code has no vector form here)
PER_LANE_INT = {"div", "floordiv", "floormod", "pow"}
# loops of at most this many whole chunks are emitted without a loop (the chunk bases constants)
MAX_STRAIGHT_CHUNKS = 4


def vectorize_loop(emitter: KernelEmitter, s: For) -> bool:
    """Emit ``s`` (``kind == "vectorized"``) as vector code, or as unrolled scalar code when it is
    shorter than the narrowest vector; False (nothing emitted) when its body does not qualify."""
    if id(s) not in emitter.vector_plans:
        emitter.vector_plans[id(s)] = (_element_bytes(s), _Strides(s.var))
    element_bytes, strides = emitter.vector_plans[id(s)]
    if element_bytes is None:
        return False
    loop = _VectorLoop(emitter, s, element_bytes, strides)
    if loop.lanes is None:  # shorter than the narrowest vector: its few iterations, unrolled
        emitter.loop(s, ir.Constant(I64, 0), ir.Constant(I64, s.extent), unroll=True)
        return True
    loop.emit()
    return True


def _element_bytes(s: For) -> int | None:
    """The widest element (bytes) ``s`` loads or stores, or None when ``s`` must stay a scalar loop."""
    stores: list[Store] = []
    exprs: list[Expr] = []
    if not _collect(s.body, stores, exprs):
        return None
    nodes = [x for e in exprs for x in walk(e)]
    if any(x.dtype == "float16" for x in nodes) or any(b.dtype == "float16" for b in _buffers(stores, nodes)):
        return None
    if any(isinstance(x, Select) and x.guard and (_may_trap(x.a) or _may_trap(x.b)) for x in nodes):
        return None  # the untaken side may read out of bounds: keep the branch of the scalar loop
    if not all(isinstance(x, (Const, Var, Binary, Compare, Not, Select, Cast, Call, Load)) for x in nodes):
        return None
    strides = _Strides(s.var)
    for st in _lets(s.body):
        strides.lets[st.var.uid] = strides(st.value)
    if not _independent(stores, nodes, strides):
        return None
    return max(_bits(MEMORY_TYPES[b.dtype]) // 8 for b in _buffers(stores, nodes))


def _collect(s: Stmt, stores: list[Store], exprs: list[Expr]) -> bool:
    if isinstance(s, Seq):
        return all(_collect(x, stores, exprs) for x in s.stmts)
    if isinstance(s, Store):
        stores.append(s)
        exprs += [s.index, s.value]
        return True
    if isinstance(s, Let):
        exprs.append(s.value)
        return _collect(s.body, stores, exprs)
    return False  # If, For, Allocate, Check: scalar loop


def _lets(s: Stmt) -> list[Let]:
    if isinstance(s, Seq):
        return [x for st in s.stmts for x in _lets(st)]
    if isinstance(s, Let):
        return [s] + _lets(s.body)
    return []


def _buffers(stores: list[Store], nodes: list[Expr]) -> list[Buffer]:
    return [st.buffer for st in stores] + [x.buffer for x in nodes if isinstance(x, Load)]


def _independent(stores: list[Store], nodes: list[Expr], strides: _Strides) -> bool:
    """Whether running each statement for a whole chunk in turn gives what the scalar loop gives.

    Holds when every buffer written is accessed at one index of stride 1 (lane k touches only
    element k of the chunk), or is written by a single store and never read (lanes store in order).
    """
    loads = [x for x in nodes if isinstance(x, Load)]
    for buf in {id(st.buffer): st.buffer for st in stores}.values():
        indices = [st.index for st in stores if st.buffer is buf] + [x.index for x in loads if x.buffer is buf]
        if len(indices) == 1:
            continue
        if not all(strides(i) == 1 and same(i, indices[0]) for i in indices):
            return False
    return True


class _Strides:
    """``d e / d var`` for integer expressions affine in the loop variable; 0 = invariant; None = unknown."""

    def __init__(self, var: Var):
        self.var = var
        self.lets: dict[int, int | None] = {}
        self.memo: dict[int, int | None] = {}

    def __call__(self, e: Expr) -> int | None:
        if id(e) not in self.memo:
            self.memo[id(e)] = self._stride(e)
        return self.memo[id(e)]

    def _stride(self, e: Expr) -> int | None:
        if isinstance(e, Const):
            return 0
        if isinstance(e, Var):
            return 1 if e.uid == self.var.uid else self.lets.get(e.uid, 0)
        parts = [self(c) for c in children(e)]
        if any(p is None for p in parts):
            return None
        if isinstance(e, Binary) and not is_float(e.dtype) and e.dtype != "bool":
            a, b = parts
            if e.op == "add":
                return a + b
            if e.op == "sub":
                return a - b
            if e.op == "mul":
                if isinstance(e.b, Const):
                    return a * int(e.b.value)
                if isinstance(e.a, Const):
                    return b * int(e.a.value)
        return 0 if all(p == 0 for p in parts) else None


class _VectorLoop:
    def __init__(self, emitter: KernelEmitter, s: For, element_bytes: int, strides: _Strides):
        self.em = emitter
        self.s = s
        self.element_bytes = element_bytes
        self.lanes = self.fitting(s.extent)  # the current chunk's; narrower in the tail
        self.strides = strides
        self.vectors: dict[int, ir.Value] = {}  # let-bound variables that vary across lanes

    @property
    def b(self) -> ir.IRBuilder:
        return self.em.builder

    def fitting(self, iterations: int) -> int | None:
        return self.em.target.lanes_fitting(self.element_bytes, iterations)

    def emit(self) -> None:
        s, b = self.s, self.b
        chunks = s.extent // self.lanes * self.lanes
        if chunks <= MAX_STRAIGHT_CHUNKS * self.lanes:
            self.emit_straight(0, chunks)
            self.emit_tail(chunks)
            return
        pre = b.block
        name = _clean(s.var.name)
        header = b.append_basic_block(f"{name}.vloop")
        exit_ = b.append_basic_block(f"{name}.vexit")
        b.branch(header)
        b.position_at_end(header)
        base = b.phi(I64, name=f"{name}.base")
        base.add_incoming(ir.Constant(I64, 0), pre)
        self.em.vars[s.var.uid] = base  # scalar code in the chunk sees lane 0
        self.base = base
        self.stmt(s.body)
        nxt = b.add(base, ir.Constant(I64, self.lanes), flags=["nuw", "nsw"])
        base.add_incoming(nxt, b.block)
        back = b.cbranch(b.icmp_signed("<", nxt, ir.Constant(I64, chunks)), header, exit_)
        back.set_metadata("llvm.loop", loop_metadata(self.em.module, 0))
        b.position_at_end(exit_)
        self.emit_tail(chunks)

    def emit_straight(self, start: int, stop: int) -> None:
        """Chunks from ``start`` to ``stop`` one after the other, each base a constant: a tile of local
        accumulators indexed by them becomes registers (LLVM promotes constant-index accesses of a
        small alloca)."""
        for base in range(start, stop, self.lanes):
            self.base = ir.Constant(I64, base)
            self.em.vars[self.s.var.uid] = self.base
            self.vectors.clear()
            self.stmt(self.s.body)

    def emit_tail(self, start: int) -> None:
        """The iterations from ``start`` on: narrower chunks while one fits, then the scalar loop."""
        extent = self.s.extent
        while (lanes := self.fitting(extent - start)) is not None:
            self.lanes = lanes
            self.emit_straight(start, start + lanes)
            start += lanes
        if start < extent:  # fewer iterations than the narrowest vector: unrolled
            self.em.loop(self.s, ir.Constant(I64, start), ir.Constant(I64, extent), unroll=True)

    # ------------------------------------------------------------ statements
    def stmt(self, s: Stmt) -> None:
        if isinstance(s, Seq):
            for x in s.stmts:
                self.stmt(x)
        elif isinstance(s, Let):
            stride = self.strides(s.value)
            self.strides.lets[s.var.uid] = stride
            if stride == 0:
                self.em.vars[s.var.uid] = self.em.expr(s.value)
            else:
                v = self.expr(s.value)
                self.vectors[s.var.uid] = v
                self.em.vars[s.var.uid] = self.b.extract_element(v, ir.Constant(I32, 0))
            self.stmt(s.body)
        else:
            assert isinstance(s, Store)
            self.store(s)

    def store(self, s: Store) -> None:
        b, buf = self.b, s.buffer
        value = self.expr(s.value)
        mem = MEMORY_TYPES[buf.dtype]
        if self.strides(s.index) == 1:
            if buf.dtype == "bool":
                value = b.zext(value, ir.VectorType(mem, self.lanes))
            b.store(value, self.em.address(buf, self.em.expr(s.index)), align=_align(mem))
            return
        indices = self.lane_indices(s.index)
        for k in range(self.lanes):  # in lane order, as the scalar loop stores
            self.em.store(buf, indices[k], b.extract_element(value, ir.Constant(I32, k)))

    # ----------------------------------------------------------- expressions
    def splat(self, v: ir.Value) -> ir.Value:
        t = ir.VectorType(v.type, self.lanes)
        one = self.b.insert_element(ir.Constant(t, ir.Undefined), v, ir.Constant(I32, 0))
        return self.b.shuffle_vector(one, ir.Constant(t, ir.Undefined),
                                     ir.Constant(ir.VectorType(I32, self.lanes), None))

    def per_lane(self, fn: Callable[..., ir.Value], *vectors: ir.Value) -> ir.Value:
        """``fn`` applied lane by lane (scalar code) to ``vectors``, the results gathered into a vector."""
        lanes = [ir.Constant(I32, k) for k in range(self.lanes)]
        return self.vector_of([fn(*[self.b.extract_element(v, lane) for v in vectors]) for lane in lanes])

    def vector_of(self, values: list[ir.Value]) -> ir.Value:
        """The vector whose lane ``k`` is ``values[k]``."""
        out = ir.Constant(ir.VectorType(values[0].type, self.lanes), ir.Undefined)
        for k, value in enumerate(values):
            out = self.b.insert_element(out, value, ir.Constant(I32, k))
        return out

    def expr(self, e: Expr) -> ir.Value:
        """``e`` for the chunk's lanes, as a vector."""
        em, b = self.em, self.b
        if self.strides(e) == 0:
            return self.splat(em.expr(e))
        if isinstance(e, Var):
            if e.uid == self.s.var.uid:
                steps = ir.Constant(ir.VectorType(I64, self.lanes), [ir.Constant(I64, k) for k in range(self.lanes)])
                return b.add(self.splat(self.base), steps)
            return self.vectors[e.uid]
        if isinstance(e, Load):
            return self.load(e)
        if isinstance(e, Binary):
            a, c = self.expr(e.a), self.expr(e.b)
            if not is_float(e.dtype) and e.op in PER_LANE_INT:
                return self.per_lane(lambda x, y: em.binary(e.op, e.a.dtype, x, y, e.b.dtype), a, c)
            return em.binary(e.op, e.a.dtype, a, c, e.b.dtype)
        if isinstance(e, Compare):
            return em.compare(e.op, e.a.dtype, self.expr(e.a), self.expr(e.b))
        if isinstance(e, Not):
            a = self.expr(e.a)
            return b.xor(a, _const(a.type, 1))
        if isinstance(e, Select):  # guarded selects that load never get here
            taken = decided(em.expr(e.cond)) if self.strides(e.cond) == 0 else None
            if taken is not None:  # emit only the side it takes
                return self.expr(e.a if taken else e.b)
            return b.select(self.expr(e.cond), self.expr(e.a), self.expr(e.b))
        if isinstance(e, Cast):
            return em.cast(self.expr(e.a), e.a.dtype, e.dtype)
        if isinstance(e, Call):
            args = [self.expr(a) for a in e.args]
            if e.name in _intrinsics() or has_inline_form(e.name, args[0].type):
                return em.call_values(e.name, args)
            return self.per_lane(lambda *xs: em.call_values(e.name, list(xs)), *args)  # libm: no vector form
        raise TypeError(f"cannot vectorize {e!r}")

    def load(self, e: Load) -> ir.Value:
        em, b, buf = self.em, self.b, e.buffer
        if self.strides(e.index) == 1:
            mem = MEMORY_TYPES[buf.dtype]
            t = ir.VectorType(mem, self.lanes)
            v = b.load(em.address(buf, em.expr(e.index)), typ=t, align=_align(mem))
            if buf.dtype == "bool":
                return b.icmp_unsigned("!=", v, _const(t, 0))
            assert VALUE_TYPES[buf.dtype] == mem
            return v
        return self.vector_of([em.load(buf, index) for index in self.lane_indices(e.index)])  # a gather

    def lane_indices(self, index: Expr) -> list[ir.Value]:
        """The scalar index of each lane: lane 0's plus ``k * stride`` where the index moves by a known
        stride (constant offsets from one address; a strided access, as in a layout transposition),
        else taken out of the vector of indices."""
        stride = self.strides(index)
        if stride is not None:
            first = self.em.expr(index)  # scalar code sees lane 0
            return [first] + [self.b.add(first, ir.Constant(first.type, k * stride)) for k in range(1, self.lanes)]
        if any(isinstance(x, Var) and x.uid in self.vectors for x in walk(index)):
            vector = self.expr(index)  # it reads let-bound values that differ across lanes
            return [self.b.extract_element(vector, ir.Constant(I32, k)) for k in range(self.lanes)]
        return [self.scalar_at_lane(index, k) for k in range(self.lanes)]

    def scalar_at_lane(self, e: Expr, k: int) -> ir.Value:
        """``e`` as scalar code at lane ``k`` (the loop variable at the chunk's base plus ``k``): the
        index arithmetic of a lane (``//`` and ``%`` of a shuffle or a blocked layout) then folds with
        a constant base."""
        var = self.s.var.uid
        lane0 = self.em.vars[var]
        self.em.vars[var] = self.b.add(self.base, ir.Constant(self.base.type, k)) if k else lane0
        try:
            return self.em.expr(e)
        finally:
            self.em.vars[var] = lane0


def _intrinsics() -> dict[str, str]:
    from .llvm import INTRINSICS

    return INTRINSICS
