"""The confirm phase inside the model: every task's candidates timed in compiled variants of the model."""

from __future__ import annotations

import json

import pytest

import ember
from ember.api import optimized_graph
from ember.autotune import model_confirm
from ember.autotune.confirm import ConfirmOptions
from ember.autotune.measure import MeasureOptions, MeasureResult
from ember.autotune.model_confirm import ModelTask, confirm_in_model
from ember.autotune.records import Record, RecordsError, best_configs, config_key, load_records
from ember.autotune.task import extract_tasks, workload_key, workload_of
from ember.codegen.target import as_target
from ember.runtime import compiled

from .workloads import MIXED, write_model

FAST = MeasureOptions(repeats=2, min_repeat_s=0.0005, min_total_s=0.0, timeout_s=20.0)
QUICK = ConfirmOptions(top=2, model_rounds=3)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("m"), MIXED)


class Variants:
    """Records, per compiled variant, the config each node of the model was given."""

    def __init__(self, monkeypatch):
        self.configs: list[dict[str, dict | None]] = []
        real = compiled.CompiledModule

        def spy(graph, target, **kwargs):
            self.configs.append({node.name: kwargs["configs"](node) for node in graph.nodes})
            return real(graph, target, **kwargs)

        monkeypatch.setattr(compiled, "CompiledModule", spy)


def _results(task, *configs) -> list[MeasureResult]:
    """Search results of ``task``: its default, then ``configs`` (fastest first)."""
    return [MeasureResult(task.defaults(), [3.0])] + [MeasureResult(c, [1.0 + i]) for i, c in enumerate(configs)]


def test_each_variant_gives_each_task_one_candidate(model, monkeypatch):
    tasks = {t.workload["op"] + str(t.workload["shapes"][0]): t for t in extract_tasks(model)}
    relu, matmul = tasks["Relu[8, 64]"], tasks["MatMul[4, 32]"]
    fused_relu = tasks["Relu[4, 32]"]
    relu_fast = [{**relu.defaults(), "vector_chunk": 8}, {**relu.defaults(), "parallel": False}]
    matmul_fast = {**matmul.defaults(), "unroll_k": 1}
    held = {**fused_relu.defaults(), "vector_chunk": 4}
    variants = Variants(monkeypatch)
    graph, _ = optimized_graph(model, target=as_target("host"))
    phases = confirm_in_model(graph, as_target("host"), [
        ModelTask(relu, _results(relu, *relu_fast)),
        ModelTask(matmul, _results(matmul, matmul_fast)),
        ModelTask(fused_relu, _results(fused_relu), applied=held, confirm=False),
    ], QUICK)

    assert len(variants.configs) == 3, "the default and the two fastest of the task with most candidates"
    by_node = {node.name: workload_key(workload_of(node)) for node in graph.nodes}
    for v, configs in enumerate(variants.configs):
        for node, config in configs.items():
            key = by_node[node]
            if key == relu.key:
                assert config == [relu.defaults(), *relu_fast][v]
            elif key == matmul.key:
                assert config == [matmul.defaults(), matmul_fast, matmul.defaults()][v], "past its candidates: default"
            elif key == fused_relu.key:
                assert config == held, "a task not being confirmed keeps its applied config in every variant"
    assert set(phases) == {relu.key, matmul.key}
    for task, count in ((relu, 3), (matmul, 2)):
        phase = phases[task.key]
        assert phase.where == "model" and phase.trials == count, "it followed the search results given"
        assert config_key(phase.results[0].config) == config_key(task.defaults()), "the default comes first"
        assert len(phase.results) == count and all(r.ok and len(r.costs) == QUICK.model_rounds for r in phase.results)
        assert phase.chosen in phase.results


def test_a_task_is_timed_by_its_kernels_per_call(model, monkeypatch):
    # the Relu workload has two kernels: its figures are per kernel, the sum over them halved
    (relu,) = [t for t in extract_tasks(model) if t.workload["op"] == "Relu" and t.weight == 2]
    seconds = {}

    def kernel_seconds(self, reset=True):
        return [(node, seconds.setdefault(node.name, 0.001 * (len(seconds) + 1))) for node, _, _ in self._builder.calls]

    monkeypatch.setattr(compiled.CompiledModule, "kernel_seconds", kernel_seconds)
    graph, _ = optimized_graph(model, target=as_target("host"))
    phase = confirm_in_model(graph, as_target("host"),
                             [ModelTask(relu, _results(relu, {**relu.defaults(), "vector_chunk": 8}))], QUICK)[relu.key]
    relu_nodes = [n for n in graph.nodes if workload_key(workload_of(n)) == relu.key]
    expected = sum(seconds[n.name] for n in relu_nodes) / model_confirm.CALLS / 2
    assert [r.costs for r in phase.results] == [[pytest.approx(expected)] * QUICK.model_rounds] * 2


def test_tuning_confirms_in_the_model_once_and_records_it(model, tmp_path):
    records = tmp_path / "r.jsonl"
    summary = ember.tune(model, records=records, trials_per_task=4, tuner="grid", progress=False, options=FAST,
                         confirm=QUICK)
    assert all(t.confirmed is not None and t.confirmed.where == "model" for t in summary.tasks)
    assert "inside the model, per kernel" in summary.table()
    raw = [json.loads(line) for line in records.read_text().splitlines()]
    phase_lines = [line for line in raw if "confirm" in line]
    assert phase_lines and all(line["confirm"]["in"] == "model" for line in phase_lines)
    assert all(len(line["cost_s"]) == QUICK.model_rounds for line in phase_lines)
    chosen = {t.task.key: t.chosen.config for t in summary.tasks}
    assert best_configs(load_records(records), "host") == chosen

    before = records.read_text()
    again = ember.tune(model, records=records, trials_per_task=4, tuner="grid", progress=False, options=FAST,
                       confirm=QUICK)
    assert records.read_text() == before, "a resumed run with nothing new neither measures nor confirms"
    assert {t.task.key: t.chosen.config for t in again.tasks} == chosen
    x = ember.compile(model).random_feeds()
    for got, want in zip(ember.compile(model, records=records).run(x), ember.reference(model).run(x)):
        assert got == pytest.approx(want, rel=1e-5, abs=1e-5)


def test_where_the_phase_measures_is_checked():
    with pytest.raises(ember.EmberError, match="confirm where must be one of model, kernel"):
        ember.autotune.confirm.confirm_options(ConfirmOptions(where="cluster"))


def test_the_in_field_of_a_record(model, tmp_path):
    (task, *_) = extract_tasks(model)
    line = json.loads(Record(task.workload, task.target, {}, [1.0]).to_json())
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(dict(line, confirm={"trials": 3, "chosen": True, "in": "model"})) + "\n"
                    + json.dumps(dict(line, confirm={"trials": 3, "chosen": True})) + "\n")
    assert [r.confirm.where for r in load_records(path)] == ["model", "kernel"]
    path.write_text(json.dumps(dict(line, confirm={"trials": 3, "chosen": True, "in": "gpu"})) + "\n")
    with pytest.raises(RecordsError, match=":1: a record's confirm is"):
        load_records(path)
