"""Fixed-length features of a candidate schedule, for the cost model.

Two kinds, both plain float vectors of a length that depends only on the kind
(loop features) or on the task's space (knob features):

* :func:`loop_features` describe the lowered loop nest (autoTVM's itervar
  features, in spirit). The *main statement* is the store executed most often
  (weighted by its arithmetic); for each loop around it, outermost to innermost
  and right-aligned to :data:`LOOP_DEPTH` levels (the innermost loop is always
  the last slot, missing outer levels are zeros; loops of one iteration keep
  their slots, so that a template's loops stay in the same slots from config to
  config), they give: the extent, the
  loop kind (one-hot serial/parallel/vectorized/unrolled) and unroll factor, how the main
  statement's memory accesses move with the loop variable (smallest and largest
  stride, how many accesses are unit-stride, invariant, or strided), the bytes
  those accesses touch inside the loop, the iterations inside it and their
  reuse (accesses per touched element). Global features follow: arithmetic
  counts by kind, bytes moved, parallel and vector extents, loop nests,
  local buffers.
* :func:`knob_features` describe the config itself: per knob, the log of a
  numeric option and its position, or a one-hot of a categorical one.

:class:`Featurizer` computes either for configs of one task and caches them
per config (lowering is the expensive part).

    >>> from ember.ir.loops import placeholder, compute, create_schedule, lower
    >>> x = placeholder((64,), "float32", "x")
    >>> y = compute((64,), lambda i: x[i] * 2.0, "y")
    >>> s = create_schedule(y)
    >>> s[y].vectorize(y.op.axes[0])
    >>> loop_features(lower(s, [x], "double")).shape == (LOOP_FEATURE_LENGTH,)
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ember.ir.loops.expr import (
    Binary,
    Call,
    Cast,
    Compare,
    Const,
    Expr,
    Load,
    Not,
    Ramp,
    Select,
    Var,
    children,
    is_float,
)
from ember.ir.loops.stmt import (
    LOOP_KINDS,
    Allocate,
    Check,
    For,
    If,
    Kernel,
    Let,
    Prefetch,
    Seq,
    Stmt,
    Store,
)

from .lowering import LoweredConfigs
from .space import ConfigSpace

LOOP_DEPTH = 12
"""Loop levels described per kernel (the innermost ones; outer levels beyond are summarised globally).
Deeper than the nests of ember's templates (a blocked 3x3 convolution with a split reduction has 11):
the outermost loops, the parallel ones, carry knobs too (the order of fused rows)."""

LEVEL_FEATURES = (
    "log_extent", *(f"kind_{k}" for k in LOOP_KINDS), "log_unroll_by",
    "log_min_stride", "log_max_stride", "unit_stride_accesses", "invariant_accesses", "strided_accesses",
    "log_touched_bytes", "log_inner_iterations", "log_reuse",
)
GLOBAL_FEATURES = (
    "log_iterations", "log_float_add", "log_float_mul", "log_float_div", "log_math_calls", "log_compare_select",
    "log_int_ops", "log_loads", "log_bytes_moved", "log_total_float_ops", "log_parallel_extent",
    "log_vector_extent", "log_unroll_extent", "vectorized_fraction", "guards", "loop_nests", "loops",
    "local_buffers", "log_local_bytes",
)
LOOP_FEATURE_LENGTH = LOOP_DEPTH * len(LEVEL_FEATURES) + len(GLOBAL_FEATURES)


def _log2(x: float) -> float:
    return math.log2(1.0 + max(float(x), 0.0))


def _itemsize(dtype: str) -> int:
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return 4


# ------------------------------------------------------------------ index strides
Coefficients = dict[Var, float]


def coefficients(index: Expr, env: Mapping[Var, Coefficients]) -> Coefficients:
    """How far ``index`` moves per unit step of each variable (exact for affine indices; for
    ``//`` and ``%`` by a constant the affine part divided or kept: the usual tiling patterns).
    ``env`` gives the coefficients of let-bound variables."""
    if isinstance(index, Var):
        return dict(env.get(index, {index: 1.0}))
    if isinstance(index, Const):
        return {}
    if isinstance(index, Ramp):
        return coefficients(index.base, env)
    if isinstance(index, Cast):
        return coefficients(index.a, env)
    if isinstance(index, Binary):
        a, b = coefficients(index.a, env), coefficients(index.b, env)
        if index.op in ("add", "sub"):
            sign = -1.0 if index.op == "sub" else 1.0
            return {v: a.get(v, 0.0) + sign * b.get(v, 0.0) for v in a.keys() | b.keys()}
        if index.op == "mul":
            if isinstance(index.b, Const):
                return {v: c * index.b.value for v, c in a.items()}
            if isinstance(index.a, Const):
                return {v: c * index.a.value for v, c in b.items()}
        if index.op == "floordiv" and isinstance(index.b, Const) and index.b.value:
            return {v: c / index.b.value for v, c in a.items()}
        if index.op == "floormod":
            return a
    # min/max/select/products of variables: every variable moves it, by the larger step seen
    merged: Coefficients = {}
    for child in children(index):
        for v, c in coefficients(child, env).items():
            merged[v] = max(merged.get(v, 0.0), abs(c))
    return merged


# ------------------------------------------------------------------ statements
@dataclass
class _Access:
    buffer: Any
    coefficients: Coefficients


@dataclass
class _Statement:
    """One store with the loops around it, its memory accesses and its arithmetic."""

    loops: list[For]
    accesses: list[_Access]
    counts: dict[str, int]
    guards: int

    @property
    def iterations(self) -> int:
        return math.prod(loop.extent for loop in self.loops)

    @property
    def float_ops(self) -> int:
        c = self.counts
        return c["float_add"] + c["float_mul"] + c["float_div"] + c["math_calls"]


@dataclass
class _Walk:
    statements: list[_Statement] = field(default_factory=list)
    loops: int = 0
    local_buffers: int = 0
    local_bytes: int = 0


def _count_ops(e: Expr, counts: dict[str, int], loads: list[Load]) -> None:
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, Binary):
            if is_float(x.dtype):
                kind = {"add": "float_add", "sub": "float_add", "mul": "float_mul", "div": "float_div",
                        "min": "compare_select", "max": "compare_select"}.get(x.op, "math_calls")
            else:
                kind = "int_ops"
            counts[kind] += 1
        elif isinstance(x, (Compare, Select, Not)):
            counts["compare_select"] += 1
        elif isinstance(x, Call):
            counts["math_calls"] += 1
        elif isinstance(x, Load):
            loads.append(x)
        stack.extend(children(x))


def _collect(s: Stmt, loops: list[For], env: dict[Var, Coefficients], guards: int, out: _Walk) -> None:
    if isinstance(s, For):
        out.loops += 1
        _collect(s.body, loops + [s], env, guards, out)
    elif isinstance(s, Seq):
        for child in s.stmts:
            _collect(child, loops, env, guards, out)
    elif isinstance(s, Let):
        _collect(s.body, loops, {**env, s.var: coefficients(s.value, env)}, guards, out)
    elif isinstance(s, If):
        _collect(s.then, loops, env, guards + 1, out)
        if s.otherwise is not None:
            _collect(s.otherwise, loops, env, guards + 1, out)
    elif isinstance(s, Allocate):
        out.local_buffers += 1
        out.local_bytes += s.buffer.size * _itemsize(s.buffer.dtype)
        _collect(s.body, loops, env, guards, out)
    elif isinstance(s, Store):
        counts = dict.fromkeys(("float_add", "float_mul", "float_div", "math_calls", "compare_select", "int_ops"), 0)
        loads: list[Load] = []
        _count_ops(s.value, counts, loads)
        _count_ops(s.index, counts, loads)
        accesses = [_Access(s.buffer, coefficients(s.index, env))]
        accesses += [_Access(load.buffer, coefficients(load.index, env)) for load in loads]
        out.statements.append(_Statement(loops, accesses, counts, guards))
    elif not isinstance(s, (Check, Prefetch)):
        raise TypeError(f"loop features: unexpected statement {type(s).__name__}")


# ------------------------------------------------------------------ features
def _level_features(statement: _Statement, level: int) -> list[float]:
    loop = statement.loops[level]
    inner = statement.loops[level:]
    strides = [abs(a.coefficients.get(loop.var, 0.0)) for a in statement.accesses]
    moving = [s for s in strides if s > 0]
    touched: dict[int, tuple[int, int]] = {}  # buffer -> (elements, bytes) touched inside the loop
    for access in statement.accesses:
        elements = math.prod(lp.extent for lp in inner if access.coefficients.get(lp.var, 0.0))
        elements = min(elements, access.buffer.size)
        if elements > touched.get(id(access.buffer), (0, 0))[0]:
            touched[id(access.buffer)] = (elements, elements * _itemsize(access.buffer.dtype))
    inner_iterations = math.prod(lp.extent for lp in inner)
    touched_elements = sum(e for e, _ in touched.values()) or 1
    touched_bytes = sum(b for _, b in touched.values())
    return [
        _log2(loop.extent), *(float(loop.kind == k) for k in LOOP_KINDS), _log2(loop.unroll_by),
        _log2(min(moving, default=0)), _log2(max(moving, default=0)),
        float(sum(s == 1 for s in strides)), float(sum(s == 0 for s in strides)),
        float(sum(s not in (0, 1) for s in strides)),
        _log2(touched_bytes), _log2(inner_iterations),
        _log2(inner_iterations * len(statement.accesses) / touched_elements),
    ]


def _extent_of(statement: _Statement, kind: str) -> int:
    return math.prod(lp.extent for lp in statement.loops if lp.kind == kind)


def loop_features(kernel: Kernel) -> np.ndarray:
    """The :data:`LOOP_FEATURE_LENGTH` loop-nest features of ``kernel`` (see the module docstring)."""
    walk = _Walk()
    _collect(kernel.body, [], {}, 0, walk)
    vector = np.zeros(LOOP_FEATURE_LENGTH)
    if not walk.statements:
        return vector
    main = max(walk.statements, key=lambda st: st.iterations * (1 + st.float_ops))
    levels = main.loops[-LOOP_DEPTH:]
    start = LOOP_DEPTH - len(levels)
    width = len(LEVEL_FEATURES)
    first = len(main.loops) - len(levels)
    for slot, level in enumerate(range(first, len(main.loops)), start):
        vector[slot * width:(slot + 1) * width] = _level_features(main, level)

    iterations = main.iterations
    total_float_ops = sum(st.iterations * st.float_ops for st in walk.statements)
    bytes_moved = sum(st.iterations * sum(_itemsize(a.buffer.dtype) for a in st.accesses) for st in walk.statements)
    all_iterations = sum(st.iterations for st in walk.statements)
    vectorized = sum(st.iterations for st in walk.statements if any(lp.kind == "vectorized" for lp in st.loops))
    nests = {id(st.loops[0]) for st in walk.statements if st.loops}
    c = main.counts
    vector[LOOP_DEPTH * width:] = [
        _log2(iterations), _log2(iterations * c["float_add"]), _log2(iterations * c["float_mul"]),
        _log2(iterations * c["float_div"]), _log2(iterations * c["math_calls"]),
        _log2(iterations * c["compare_select"]), _log2(iterations * c["int_ops"]),
        _log2(iterations * (len(main.accesses) - 1)), _log2(bytes_moved), _log2(total_float_ops),
        _log2(_extent_of(main, "parallel")), _log2(_extent_of(main, "vectorized")),
        _log2(_extent_of(main, "unrolled")), vectorized / max(all_iterations, 1), float(main.guards),
        float(len(nests)), float(walk.loops), float(walk.local_buffers), _log2(walk.local_bytes),
    ]
    return vector


def knob_features(space: ConfigSpace, config: Mapping[str, Any]) -> np.ndarray:
    """Features of ``config`` itself: per knob whose options are all numbers, log2 of the value and
    the option's relative position; per other knob, a one-hot of the option."""
    digits = space.digits(config)
    out: list[float] = []
    for opts, digit in zip(space.options, digits):
        if all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in opts):
            out += [math.copysign(_log2(abs(opts[digit])), opts[digit]), digit / max(len(opts) - 1, 1)]
        else:
            out += [float(i == digit) for i in range(len(opts))]
    return np.asarray(out, dtype=float)


class Featurizer:
    """Features of a task's configs by number, computed once each.

    ``kind`` is "loop" (lower with ``task.lower(config)``, then :func:`loop_features`) or "knob"
    (:func:`knob_features`). A config whose lowering fails gets no loop features: :meth:`__call__`
    reports it invalid, and the tuner avoids it. Lowering goes through ``lowered`` (a
    :class:`LoweredConfigs`, shared with the tuner's kernel keys), so each config is lowered once.
    """

    KINDS = ("loop", "knob")

    def __init__(self, task, space: ConfigSpace, kind: str = "loop", lowered: LoweredConfigs | None = None):
        if kind not in self.KINDS:
            raise ValueError(f"unknown feature kind {kind!r}; expected one of {self.KINDS}")
        self.task, self.space, self.kind = task, space, kind
        self.lowered = lowered if lowered is not None else LoweredConfigs(task, space)
        self.lowered.loop_features |= kind == "loop"
        self._cache: dict[int, np.ndarray | None] = {}

    @property
    def length(self) -> int:
        if self.kind == "loop":
            return LOOP_FEATURE_LENGTH
        return len(knob_features(self.space, self.space.config(0)))

    def one(self, index: int) -> np.ndarray | None:
        """Features of config number ``index`` (None when it cannot be lowered)."""
        if self.kind == "loop":  # lowered once, shared with the kernel keys
            return self.lowered.features(index)
        if index not in self._cache:
            self._cache[index] = knob_features(self.space, self.space.config(index))
        return self._cache[index]

    def __call__(self, indices: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """Features of configs ``indices`` as rows (zeros for invalid ones) and a validity mask."""
        rows, valid = [], []
        for i in indices:
            f = self.one(i)
            valid.append(f is not None)
            rows.append(f if f is not None else np.zeros(self.length))
        return (np.vstack(rows) if rows else np.zeros((0, self.length))), np.asarray(valid, dtype=bool)
