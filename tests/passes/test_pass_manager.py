"""The pass manager: registry, pipelines per opt level, disabling, instruments, stats."""

import dataclasses
import doctest
import importlib
import inspect
from dataclasses import dataclass
from typing import ClassVar

import pytest

import ember.passes
from ember.ir import Graph, VerifyError, graphs_equal, parse, print_graph
from ember.passes import (DeadCode, FoldConstants, Instrument, Pass, PassContext, Rewriter, get_pass, pipeline,
                          registered_passes, run_passes)

BUILT_IN = ["cse", "dead_code", "fold_batch_norm", "fold_constants", "simplify"]

TEXT = """
graph g(%x: f32[1,2,3,3]) {
  %w: f32[2,2,1,1] = const [1.0, 0.0, 0.0, 1.0]
  %scale: f32[2] = const [1.0, 2.0]
  %B: f32[2] = const [0.0, 1.0]
  %mean: f32[2] = const [0.0, 0.0]
  %var: f32[2] = const [1.0, 1.0]
  %two: f32[] = const [2.0]
  %four: f32[] = Mul(%two, %two)
  %c: f32[1,2,3,3] = Conv(%x, %w)
  %n: f32[1,2,3,3] = BatchNormalization(%c, %scale, %B, %mean, %var)
  %i: f32[1,2,3,3] = Identity(%n)
  %dead: f32[1,2,3,3] = Exp(%i)
  %a: f32[1,2,3,3] = Relu(%i)
  %b: f32[1,2,3,3] = Relu(%i)
  %s: f32[1,2,3,3] = Add(%a, %b)
  %y: f32[1,2,3,3] = Mul(%s, %four)
  return %y
}
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for var in ("EMBER_DEBUG", "EMBER_DUMP_IR", "EMBER_DISABLE_PASSES"):
        monkeypatch.delenv(var, raising=False)


# ---------------------------------------------------------------- registry and pipelines

def test_registry_holds_the_built_in_passes():
    assert set(BUILT_IN) <= set(registered_passes())
    assert get_pass("fold_constants", max_elements=10) == FoldConstants(max_elements=10)
    with pytest.raises(KeyError, match="no pass named 'nope'"):
        get_pass("nope")


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_pass_is_a_documented_frozen_dataclass_in_its_own_module(name):
    cls = type(get_pass(name))
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    doc = inspect.getdoc(cls)
    assert doc and not doc.startswith(cls.__name__ + "("), "the docstring is dataclass's generated one"
    assert 2 <= len(doc.splitlines()) <= 4, doc
    assert cls.__module__ == f"ember.passes.{name}"
    assert inspect.getdoc(importlib.import_module(cls.__module__))


def test_pipeline_per_opt_level():
    names = lambda level: [p.name for p in pipeline(level)]  # noqa: E731
    assert names(0) == []
    assert names(1) == ["fold_constants", "simplify", "dead_code"]
    assert names(2) == ["fold_constants", "simplify", "fold_batch_norm", "cse", "dead_code"]
    assert names(3)[:len(names(2))] == names(2)
    with pytest.raises(ValueError, match="opt_level"):
        pipeline(4)


def test_opt_level_0_returns_an_unchanged_copy_and_input_is_never_mutated():
    graph = parse(TEXT)
    before = print_graph(graph)
    same = run_passes(graph, opt_level=0)
    assert same is not graph and graphs_equal(same, graph)
    optimized = run_passes(graph, opt_level=3)
    assert print_graph(graph) == before
    assert [n.op for n in run_passes(graph, opt_level=2).nodes] == ["Conv", "Relu", "Add", "Mul"]
    assert [n.op for n in optimized.nodes] == ["Fused", "Fused"]  # level 3 fuses the chains


def test_user_pass_lists_and_disabled_passes():
    ctx = PassContext(passes=[FoldConstants(), DeadCode()])
    result = ctx.run(parse(TEXT))
    assert [r["name"] for r in ctx.stats] == ["fold_constants", "dead_code"]
    assert "Exp" not in {n.op for n in result.nodes}
    ctx = PassContext(opt_level=2, disabled={"cse", "fold_batch_norm"})
    ctx.run(parse(TEXT))
    assert [r["name"] for r in ctx.stats] == ["fold_constants", "simplify", "dead_code"]
    with pytest.raises(ValueError, match="unknown pass.*fold_constant\\b"):
        PassContext(disabled={"fold_constant"}).run(parse(TEXT))


def test_disable_from_the_environment(monkeypatch):
    monkeypatch.setenv("EMBER_DISABLE_PASSES", "cse, dead_code")
    ctx = PassContext(opt_level=2)
    ctx.run(parse(TEXT))
    assert [r["name"] for r in ctx.stats] == ["fold_constants", "simplify", "fold_batch_norm"]


# ---------------------------------------------------------------- stats

def test_stats_record_time_nodes_and_rewrites_per_pass():
    ctx = PassContext(opt_level=2)
    result = ctx.run(parse(TEXT))
    assert [set(r) for r in ctx.stats] == [{"name", "seconds", "nodes_before", "nodes_after", "rewrites"}] * 5
    assert all(isinstance(r["seconds"], float) and r["seconds"] >= 0 for r in ctx.stats)
    assert ctx.stats[0]["nodes_before"] == 9 and ctx.stats[-1]["nodes_after"] == len(result.nodes) == 4
    for prev, nxt in zip(ctx.stats, ctx.stats[1:]):
        assert prev["nodes_after"] == nxt["nodes_before"]
    rewrites = {r["name"]: r["rewrites"] for r in ctx.stats}
    # Mul(2, 2) folds; the Identity goes; the BatchNorm folds into the Conv; the Relus merge; the Exp dies.
    assert rewrites == {"fold_constants": 1, "simplify": 1, "fold_batch_norm": 1, "cse": 1, "dead_code": 1}


# ---------------------------------------------------------------- instruments

@dataclass(frozen=True)
class BreakGraph(Pass):
    """Removes the first node without rewiring its users: leaves a dangling value.

    For testing the verifier instrument.
    """

    name: ClassVar[str] = "break_graph"

    def run(self, graph: Graph) -> Graph:
        graph.remove_nodes(graph.nodes[:1])
        return graph


@dataclass(frozen=True)
class RenameOutput(Pass):
    """Renames the first graph output: a pass may not do that.

    For testing the verifier instrument.
    """

    name: ClassVar[str] = "rename_output"

    def run(self, graph: Graph) -> Graph:
        graph.outputs[0].name = "renamed"
        return graph


@dataclass(frozen=True)
class ReturnNothing(Pass):
    """Forgets to return the graph.

    For testing the pass manager.
    """

    name: ClassVar[str] = "return_nothing"

    def run(self, graph: Graph) -> Graph:
        return None  # type: ignore[return-value]


def test_verify_names_the_pass_that_broke_the_graph(monkeypatch):
    with pytest.raises(VerifyError, match="after pass break_graph: .*not defined"):
        run_passes(parse(TEXT), [FoldConstants(), BreakGraph()], verify=True)
    with pytest.raises(VerifyError, match="pass rename_output changed the graph's interface"):
        run_passes(parse(TEXT), [RenameOutput()], verify=True)
    run_passes(parse(TEXT), [RenameOutput()])  # not verified by default
    monkeypatch.setenv("EMBER_DEBUG", "1")
    with pytest.raises(VerifyError, match="after pass break_graph"):
        run_passes(parse(TEXT), [BreakGraph()])


def test_a_pass_must_return_a_graph():
    with pytest.raises(TypeError, match="pass return_nothing returned NoneType"):
        run_passes(parse(TEXT), [ReturnNothing()])


def test_dump_ir_writes_numbered_parseable_files(tmp_path, monkeypatch):
    (tmp_path / "07_stale.ir").write_text("from an earlier run")
    (tmp_path / "notes.txt").write_text("not ours")
    monkeypatch.setenv("EMBER_DUMP_IR", str(tmp_path))
    graph = parse(TEXT)
    result = run_passes(graph, opt_level=2)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["00_input.ir", "01_fold_constants.ir", "02_simplify.ir", "03_fold_batch_norm.ir", "04_cse.ir",
                     "05_dead_code.ir", "notes.txt"]
    dumped = [parse((tmp_path / name).read_text()) for name in files[:-1]]
    assert graphs_equal(dumped[0], graph) and graphs_equal(dumped[-1], result)
    assert [len(g.nodes) for g in dumped] == [9, 8, 7, 6, 5, 4]


def test_debug_levels_print_passes_then_timings(monkeypatch, capsys):
    monkeypatch.setenv("EMBER_DEBUG", "1")
    run_passes(parse(TEXT), opt_level=1)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and lines[0].startswith("[ember] pass fold_constants")
    assert "nodes" in lines[0] and "rewrites" in lines[0] and " ms" not in lines[0]
    monkeypatch.setenv("EMBER_DEBUG", "2")
    run_passes(parse(TEXT), opt_level=1)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4 and lines[0].endswith(" ms") and lines[-1].startswith("[ember] 3 passes in")


def test_custom_instruments_see_every_pass():
    events = []

    class Record(Instrument):
        def start(self, graph):
            events.append(("start", len(graph.nodes)))

        def before_pass(self, pass_, graph):
            events.append(("before", pass_.name))

        def after_pass(self, pass_, graph, record):
            events.append(("after", pass_.name, record["nodes_after"]))

        def end(self, graph, records):
            events.append(("end", len(records)))

    run_passes(parse(TEXT), [FoldConstants(), DeadCode()], instruments=[Record()])
    assert events == [("start", 9), ("before", "fold_constants"), ("after", "fold_constants", 8),
                      ("before", "dead_code"), ("after", "dead_code", 7), ("end", 2)]


def test_errors_inside_a_pass_name_it():
    @dataclass(frozen=True)
    class Explode(Pass):
        """Raises.

        For testing.
        """

        name: ClassVar[str] = "explode"

        def run(self, graph):
            with Rewriter(graph) as rw:
                rw.replace(graph.inputs[0], graph.nodes[0].output)

    with pytest.raises(ValueError, match="types differ") as info:
        run_passes(parse(TEXT), [Explode()])
    assert "(in graph pass explode)" in getattr(info.value, "__notes__", ["(in graph pass explode)"])


@pytest.mark.parametrize("module", ["pass_manager", "rewriter", "instruments", "fold_constants", "dead_code",
                                    "cse", "simplify", "fold_batch_norm"])
def test_docstring_examples(module):
    mod = importlib.import_module(f"ember.passes.{module}")
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_package_docstring_names_the_api():
    assert "run_passes" in ember.passes.__doc__ and "PassContext" in ember.passes.__doc__
