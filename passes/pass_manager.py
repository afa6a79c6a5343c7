"""Passes, their registry, the pipeline per opt level, and the pass context that runs them.

A pass is a small frozen dataclass: its fields are its options, its class
attribute ``name`` names it, its docstring (two to four lines) says what it
rewrites into what, what it assumes and what it guarantees, and
``run(graph) -> graph`` applies it (mutating and returning ``graph``, or
returning a new graph). A pass never changes what the graph computes: its
inputs and outputs keep their names, order and types.

>>> from ember.ir import parse
>>> from ember.passes import FoldConstants, PassContext, run_passes
>>> g = parse('''graph g(%x: f32[2]) {
...   %c: f32[2] = const [1.0, 4.0]
...   %s: f32[2] = Sqrt(%c)
...   %y: f32[2] = Mul(%x, %s)
...   return %y
... }''')
>>> print(run_passes(g, [FoldConstants()]), end="")
graph g(%x: f32[2]) {
  %s: f32[2] = const [1.0, 2.0]
  %y: f32[2] = Mul(%x, %s)
  return %y
}
>>> ctx = PassContext(opt_level=2, disabled={"cse"})
>>> optimized = ctx.run(g)                       # the pipeline of opt level 2, without cse
>>> [r["name"] for r in ctx.stats]
['fold_constants', 'simplify', 'fold_batch_norm', 'dead_code']
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Collection, Sequence

from ember.ir import Graph
from ember.ir.debug import debug_level

from .instruments import DumpIR, Instrument, PrintPasses, Verify
from .rewriter import ACTIVE_RECORD


@dataclass(frozen=True)
class Pass:
    """Base class of graph passes: subclass it as a frozen dataclass and set ``name``."""

    name: ClassVar[str] = ""

    @classmethod
    def for_target(cls, target: Any) -> Pass:
        """The instance a pipeline runs when compiling for ``target`` (an ``ember.codegen.Target`` or None):
        default options; passes whose rewrites depend on the target override this."""
        return cls()

    def run(self, graph: Graph) -> Graph:
        raise NotImplementedError

    def __call__(self, graph: Graph) -> Graph:
        return self.run(graph)


# ---------------------------------------------------------------- the registry

_PASSES: dict[str, type[Pass]] = {}


def register_pass(cls: type[Pass]) -> type[Pass]:
    """Class decorator: make ``cls`` available by its ``name`` (to :func:`get_pass` and pipelines)."""
    if not cls.name:
        raise ValueError(f"pass class {cls.__qualname__} has no name")
    old = _PASSES.get(cls.name)
    if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"pass name {cls.name!r} is taken by {old.__module__}.{old.__qualname__}")
    _PASSES[cls.name] = cls
    return cls


def get_pass(name: str, **options) -> Pass:
    """A pass instance by registered name, with ``options`` for its fields."""
    try:
        cls = _PASSES[name]
    except KeyError:
        raise KeyError(f"no pass named {name!r}; registered: {', '.join(sorted(_PASSES))}") from None
    return cls(**options)


def registered_passes() -> list[str]:
    """Names of every registered pass, sorted."""
    return sorted(_PASSES)


# ---------------------------------------------------------------- pipelines

# (pass name, lowest opt level that runs it), in pipeline order. Later stages
# (fusion, layout, memory planning) append their rows here.
PIPELINE: list[tuple[str, int]] = [
    ("fold_constants", 1),   # evaluate constant subgraphs (weight transposes, reshapes)
    ("simplify", 1),         # algebraic identities, reshape/transpose chains
    ("fold_batch_norm", 2),  # BatchNormalization into the Conv/Gemm before it
    ("cse", 2),              # merge identical constants and nodes
    ("dead_code", 1),        # drop what the passes above left unused
    ("layout", 3),           # 2-D convolutions in the blocked layout NCHW[x]c of the target's vector width
    ("winograd", 3),         # 3x3 stride-1 convolutions as Winograd transforms around a batched matmul
    ("pack_weights", 3),     # constant matmul weights packed in the kernel's panels, once
    ("fuse_ops", 3),         # group epilogues with their conv/matmul/reduction into one kernel
]


def pipeline(opt_level: int = 3, target: Any = None) -> list[Pass]:
    """The default passes of ``opt_level``: 0 none; 1 fold constants, simplify, DCE; 2 adds BN folding, CSE; 3 all.

    ``target`` (the ``ember.codegen.Target`` compiled for) sets the options of target-dependent
    passes (:meth:`Pass.for_target`); without it they leave the graph alone.
    """
    if not 0 <= opt_level <= 3:
        raise ValueError(f"opt_level must be 0, 1, 2 or 3, got {opt_level}")
    return [_PASSES[name].for_target(target) for name, level in PIPELINE if level <= opt_level]


# ---------------------------------------------------------------- the context


@dataclass
class PassContext:
    """Runs a pass pipeline with instruments; keeps one stats record per pass run.

    * ``passes``: the passes to run; ``None`` takes :func:`pipeline` of ``opt_level``.
    * ``disabled``: pass names to skip (plus the comma-separated ``EMBER_DISABLE_PASSES``).
    * ``verify``: verify after every pass; ``None`` means on when ``EMBER_DEBUG>=1``.
    * ``dump_ir``: directory for numbered IR files; ``None`` takes ``EMBER_DUMP_IR``.
    * ``instruments``: more :class:`~ember.passes.instruments.Instrument` objects.
    * ``target``: the ``ember.codegen.Target`` compiled for, given to the default pipeline's
      target-dependent passes (the blocked layout's vector width); ``None`` skips their rewrites.

    After :meth:`run`, ``stats`` holds ``{"name", "seconds", "nodes_before",
    "nodes_after", "rewrites"}`` per pass run, in order.
    """

    opt_level: int = 3
    passes: Sequence[Pass] | None = None
    disabled: Collection[str] = ()
    verify: bool | None = None
    dump_ir: str | os.PathLike | None = None
    instruments: Sequence[Instrument] = ()
    target: Any = None
    stats: list[dict] = field(default_factory=list, init=False)

    def run(self, graph: Graph) -> Graph:
        """The optimized copy of ``graph`` (which is left unchanged)."""
        passes = list(self.passes) if self.passes is not None else pipeline(self.opt_level, self.target)
        disabled = self._disabled(passes)
        instruments = self._instruments()
        graph = graph.copy()
        self.stats = []
        for inst in instruments:
            inst.start(graph)
        for pass_ in passes:
            if pass_.name in disabled:
                continue
            for inst in instruments:
                inst.before_pass(pass_, graph)
            record = {"name": pass_.name, "seconds": 0.0, "nodes_before": len(graph.nodes), "nodes_after": 0,
                      "rewrites": 0}
            token = ACTIVE_RECORD.set(record)
            start = time.perf_counter()
            try:
                result = pass_.run(graph)
            except Exception as err:
                if hasattr(err, "add_note"):  # Python >= 3.11
                    err.add_note(f"(in graph pass {pass_.name})")
                raise
            finally:
                ACTIVE_RECORD.reset(token)
            record["seconds"] = time.perf_counter() - start
            if not isinstance(result, Graph):
                raise TypeError(f"pass {pass_.name} returned {type(result).__name__}, expected a Graph")
            graph = result
            record["nodes_after"] = len(graph.nodes)
            self.stats.append(record)
            for inst in instruments:
                inst.after_pass(pass_, graph, record)
        for inst in instruments:
            inst.end(graph, self.stats)
        return graph

    def _disabled(self, passes: list[Pass]) -> set[str]:
        env = os.environ.get("EMBER_DISABLE_PASSES", "")
        disabled = set(self.disabled) | {name.strip() for name in env.split(",") if name.strip()}
        unknown = disabled - set(_PASSES) - {p.name for p in passes}
        if unknown:
            raise ValueError(f"cannot disable unknown pass(es) {', '.join(sorted(unknown))}; "
                             f"registered: {', '.join(sorted(_PASSES))}")
        return disabled

    def _instruments(self) -> list[Instrument]:
        level = debug_level()
        verify = self.verify if self.verify is not None else level >= 1
        dump = self.dump_ir if self.dump_ir is not None else os.environ.get("EMBER_DUMP_IR") or None
        out: list[Instrument] = []
        if verify:
            out.append(Verify())
        if dump:
            out.append(DumpIR(dump))
        if level >= 1:
            out.append(PrintPasses(timings=level >= 2))
        return out + list(self.instruments)


def run_passes(graph: Graph, passes: Sequence[Pass] | None = None, *, opt_level: int = 3,
               **options) -> Graph:
    """Run ``passes`` (default: the pipeline of ``opt_level``) on a copy of ``graph`` and return it.

    ``options`` are the other :class:`PassContext` fields (``disabled``,
    ``verify``, ``dump_ir``, ``instruments``); use a :class:`PassContext`
    directly to read the per-pass stats afterwards.
    """
    return PassContext(opt_level=opt_level, passes=passes, **options).run(graph)
