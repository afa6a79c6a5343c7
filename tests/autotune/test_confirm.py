"""The confirm phase: the best configs and the default measured again, interleaved, choose what records apply."""

from __future__ import annotations

import json
from concurrent.futures import Executor, Future

import pytest

import ember
from ember.autotune.confirm import ConfirmOptions, candidates, choose, measure_interleaved
from ember.autotune.measure import MeasureOptions, MeasureResult
from ember.autotune.records import Record, RecordsError, append_records, best_configs, load_records
from ember.autotune.task import extract_tasks
from ember.autotune.tune import tune_task

from .workloads import ONE_RELU, write_model

SEARCH = MeasureOptions(repeats=3)
DEFAULT = (64, True)  # the Relu template's default (vector_chunk, parallel)
LUCKY, STEADY = (1, False), (4, False)  # the grid measures both among its first 8 configs


class PlantedTimes(Executor):
    """Answers measurements with planted seconds per run, by (vector_chunk, parallel): ``search``
    for a search trial, ``confirm`` (one figure per round) for a confirm round, which it tells
    apart by the confirm phase's larger repeats. Every other config takes 5 s."""

    def __init__(self, search: dict, confirm: dict):
        self.search, self.confirm = search, confirm
        self.calls: list[tuple[str, list[tuple]]] = []  # (search | confirm, the configs of one call)
        self.rounds: dict[tuple, int] = {}

    def submit(self, fn, payload, configs, options=None, **kwargs) -> Future:
        phase = "confirm" if options.repeats > SEARCH.repeats else "search"
        self.calls.append((phase, [_knobs(c) for c in configs]))
        future: Future = Future()
        future.set_result([MeasureResult(c, [self._seconds(phase, _knobs(c))] * 3) for c in configs])
        return future

    def _seconds(self, phase: str, knobs: tuple) -> float:
        if phase == "search":
            return self.search.get(knobs, 5.0)
        n = self.rounds[knobs] = self.rounds.get(knobs, -1) + 1
        figures = self.confirm.get(knobs, [5.0])
        return figures[n % len(figures)]

    def confirm_calls(self) -> list[list[tuple]]:
        return [configs for phase, configs in self.calls if phase == "confirm"]


def _knobs(config: dict) -> tuple:
    return config["vector_chunk"], config["parallel"]


def _config(knobs: tuple) -> dict:
    return {"vector_chunk": knobs[0], "parallel": knobs[1]}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("m"), ONE_RELU)


@pytest.fixture(scope="module")
def relu_task(model):
    (task,) = extract_tasks(model)
    assert _knobs(task.defaults()) == DEFAULT
    return task


def _tune(model, records, planted, trials=8, confirm=4):
    """A tuning whose confirm phase measures the kernel alone (on ``planted``)."""
    return ember.tune(model, records=records, trials_per_task=trials, tuner="grid", executor=planted,
                      progress=False, options=SEARCH,
                      confirm=ConfirmOptions(top=confirm, where="kernel") if confirm else 0).tasks[0]


def _kernels(model, config: dict, tmp_path) -> str:
    """The kernels of ``model`` compiled with a records file holding only ``config``."""
    (task,) = extract_tasks(model)
    path = tmp_path / f"only-{config['vector_chunk']}-{config['parallel']}.jsonl"
    append_records(path, [Record(task.workload, task.target, config, [1.0])])
    return ember.compile(model, records=path).kernels_text()


def test_the_confirm_medians_choose_not_the_search_minimum(model, relu_task, tmp_path):
    # LUCKY looked fastest once; measured again it is slower than STEADY (whose one bad round does not count)
    planted = PlantedTimes(search={LUCKY: 1.0, STEADY: 2.0, DEFAULT: 3.0},
                           confirm={LUCKY: [2.5], STEADY: [1.5, 9.0, 1.4, 1.6, 1.5], DEFAULT: [3.0]})
    path = tmp_path / "r.jsonl"
    outcome = _tune(model, path, planted)
    assert len(outcome.results) == 8 and outcome.best.config == _config(LUCKY)
    rounds = planted.confirm_calls()
    assert len(rounds) == ConfirmOptions().rounds, "one call per round"
    assert all(sorted(r) == sorted(rounds[0]) and len(r) == 5 for r in rounds), "every candidate in every round"
    assert rounds[0][0] == DEFAULT and rounds[1] != rounds[0], "the order changes from round to round"
    assert {LUCKY, STEADY, DEFAULT} <= set(rounds[0])
    assert outcome.chosen.config == _config(STEADY)
    assert outcome.tuned_s == 1.5 and outcome.default_s == 3.0 and not outcome.chose_default

    confirmed = [r for r in load_records(path) if r.confirm is not None]
    assert len(confirmed) == 5 and [r.config for r in confirmed if r.confirm.chosen] == [_config(STEADY)]
    assert all(r.confirm.trials == 8 and len(r.cost_s) == 5 for r in confirmed)
    assert best_configs(load_records(path), "host") == {relu_task.key: _config(STEADY)}
    assert ember.compile(model, records=path).kernels_text() == _kernels(model, _config(STEADY), tmp_path)
    table = _tune(model, path, planted) and ember.tune(
        model, records=path, trials_per_task=8, tuner="grid", executor=planted, progress=False, options=SEARCH,
        confirm=ConfirmOptions(where="kernel")).table()
    assert "Relu 8x64" in table and "medians of the confirm phase" in table and "2.00x" in table


def test_the_default_stays_unless_beaten_by_the_margin(model, relu_task, tmp_path):
    # LUCKY and STEADY are faster in the search, but re-measured within 3% of the default
    planted = PlantedTimes(search={LUCKY: 1.0, STEADY: 2.0, DEFAULT: 3.0},
                           confirm={LUCKY: [2.95], STEADY: [2.99], DEFAULT: [3.0]})
    path = tmp_path / "r.jsonl"
    outcome = _tune(model, path, planted)
    assert outcome.chose_default and outcome.tuned_s == outcome.default_s == 3.0
    assert best_configs(load_records(path), "host") == {relu_task.key: _config(DEFAULT)}
    assert ember.compile(model, records=path).kernels_text() == ember.compile(model).kernels_text()
    assert "(nothing beat it by the margin)" in ember.tune(model, records=path, trials_per_task=8, tuner="grid",
                                                            executor=planted, progress=False, options=SEARCH,
                                                            confirm=ConfirmOptions(where="kernel")).table()
    # without the confirm phase the lucky search minimum would have been applied
    unconfirmed = tmp_path / "unconfirmed.jsonl"
    _tune(model, unconfirmed, PlantedTimes(search={LUCKY: 1.0, STEADY: 2.0, DEFAULT: 3.0}, confirm={}), confirm=0)
    assert all(r.confirm is None for r in load_records(unconfirmed))
    assert best_configs(load_records(unconfirmed), "host") == {relu_task.key: _config(LUCKY)}
    assert ember.compile(model, records=unconfirmed).kernels_text() != ember.compile(model).kernels_text()


def test_a_resumed_run_confirms_again_only_after_new_trials(model, relu_task, tmp_path):
    path = tmp_path / "r.jsonl"
    first = PlantedTimes(search={LUCKY: 1.0, DEFAULT: 3.0}, confirm={LUCKY: [2.0], DEFAULT: [3.0]})
    tune_task(relu_task, trials=8, tuner="grid", records=path, executor=first, progress=False, options=SEARCH)
    lines = path.read_text().splitlines()
    assert len(lines) == 8 + 5 and len(first.confirm_calls()) == 5

    again = PlantedTimes(search={}, confirm={})
    outcome = _tune(model, path, again)
    assert again.calls == [] and path.read_text().splitlines() == lines, "nothing measured, nothing appended"
    assert outcome.chosen.config == _config(LUCKY) and outcome.tuned_s == 2.0, "the earlier phase is in force"

    # more trials: the search goes on, then a new confirm phase follows them and replaces the earlier one
    more = PlantedTimes(search={(16, True): 0.5}, confirm={(16, True): [2.5], LUCKY: [2.0], DEFAULT: [3.0]})
    tune_task(relu_task, trials=10, tuner="grid", records=path, executor=more, progress=False, options=SEARCH)
    assert [configs for phase, configs in more.calls if phase == "search"] == [[(8, False), (16, True)]]
    assert path.read_text().splitlines()[:13] == lines
    records = load_records(path)
    assert len(records) == 8 + 5 + 2 + 5 and [r.confirm.trials for r in records[15:]] == [10] * 5
    assert (16, True) in more.confirm_calls()[0]
    assert best_configs(records, "host") == {relu_task.key: _config(LUCKY)}, "re-measured, (16, True) was lucky"


def test_old_record_files_without_confirm_lines_still_work(model, relu_task, tmp_path):
    path = tmp_path / "old.jsonl"
    old_line = {"workload": relu_task.workload, "target": relu_task.target, "config": _config(LUCKY),
                "cost_s": [1.0], "error": None, "version": 1, "time": "2026-11-01T00:00:00+00:00"}
    path.write_text("".join(json.dumps(dict(old_line, config=_config(c), cost_s=[s])) + "\n"
                            for c, s in ((DEFAULT, 3.0), (LUCKY, 1.0), (STEADY, 2.0))))
    records = load_records(path)
    assert [r.confirm for r in records] == [None] * 3
    assert best_configs(records, "host") == {relu_task.key: _config(LUCKY)}
    assert ember.compile(model, records=path).kernels_text() == _kernels(model, _config(LUCKY), tmp_path)
    # tuning on resumes from the old lines, then confirms
    planted = PlantedTimes(search={}, confirm={LUCKY: [2.0], STEADY: [1.0], DEFAULT: [3.0]})
    results = tune_task(relu_task, trials=4, tuner="grid", records=path, executor=planted, progress=False,
                        options=SEARCH)
    assert [r.config for r in results[:3]] == [r.config for r in records] and len(results) == 4
    assert best_configs(load_records(path), "host") == {relu_task.key: _config(STEADY)}


def test_a_bad_confirm_field_is_refused(relu_task, tmp_path):
    path = tmp_path / "r.jsonl"
    line = json.loads(Record(relu_task.workload, relu_task.target, {}, [1.0]).to_json())
    path.write_text(json.dumps(dict(line, confirm={"chosen": True})) + "\n")
    with pytest.raises(RecordsError, match=":1: a record's confirm is"):
        load_records(path)


def test_candidates_rounds_and_the_margin():
    results = [MeasureResult({"c": c}, [s]) for c, s in ((0, 3.0), (1, 1.0), (2, None), (3, 2.0), (4, 4.0))]
    results[2] = MeasureResult({"c": 2}, None, "timeout")
    assert candidates(results, {"c": 0}, top=2) == [{"c": 0}, {"c": 1}, {"c": 3}]
    assert candidates(results, {"c": 9}, top=1) == [{"c": 9}, {"c": 1}], "the default is measured even if unknown"

    seen: list[list[int]] = []

    def measure(configs):
        seen.append([c["c"] for c in configs])
        return [MeasureResult(c, None, "crash: x") if c["c"] == 1 and len(seen) == 2 else MeasureResult(c, [c["c"]])
                for c in configs]

    out = measure_interleaved(measure, [{"c": 0}, {"c": 1}, {"c": 3}], rounds=4)
    assert seen == [[0, 1, 3], [1, 3, 0], [3, 0], [3, 0]], "reordered; a failed candidate leaves the later rounds"
    assert [r.costs for r in out] == [[0] * 4, None, [3] * 4] and out[1].error == "crash: x"

    default = {"c": 0}
    assert choose([MeasureResult(default, [1.0]), MeasureResult({"c": 1}, [0.98])], default, 0.03).config == default
    assert choose([MeasureResult(default, [1.0]), MeasureResult({"c": 1}, [0.96])], default, 0.03).config == {"c": 1}
    assert choose([MeasureResult(default, None, "timeout"), MeasureResult({"c": 1}, [2.0])], default,
                  0.03).config == {"c": 1}
    assert choose([MeasureResult(default, None, "timeout")], default, 0.03) is None
