"""The tuning driver: trials, records after every batch, resuming, the summary, Dask executors."""

from __future__ import annotations

import json

import pytest

import ember
from ember.autotune.confirm import ConfirmOptions
from ember.autotune.measure import MeasureOptions, MeasureResult
from ember.autotune.records import config_key, load_records
from ember.autotune.task import extract_tasks
from ember.autotune.tune import TaskResult, _stalled, tune_task

from .workloads import ONE_RELU, write_model

FAST = MeasureOptions(repeats=2, min_repeat_s=0.0005, min_total_s=0.0, timeout_s=20.0)


@pytest.fixture(scope="module")
def relu_task(tmp_path_factory):
    (task,) = extract_tasks(write_model(tmp_path_factory.mktemp("m"), ONE_RELU))
    return task


def test_tuning_records_every_trial_and_resumes_without_remeasuring(relu_task, tmp_path):
    # the search alone (confirm=0); test_confirm.py covers how a confirm phase is resumed
    path = tmp_path / "r.jsonl"
    first = tune_task(relu_task, trials=5, tuner="random", records=path, batch_size=3, progress=False,
                      options=FAST, confirm=0)
    assert len(first) == 5 and all(r.ok for r in first)
    assert first[0].config == relu_task.defaults(), "the default config is measured first"
    lines = path.read_text().splitlines()
    assert len(lines) == 5
    resumed = tune_task(relu_task, trials=8, tuner="random", records=path, batch_size=3, progress=False,
                        options=FAST, seed=1, jobs=2, confirm=0)  # two measuring children of the driver's own
    assert len(resumed) == 8
    assert [r.config for r in resumed[:5]] == [r.config for r in first], "earlier records come first"
    assert path.read_text().splitlines()[:5] == lines, "earlier lines are kept as they were"
    records = load_records(path)
    assert len(records) == 8 and len({config_key(r.config) for r in records}) == 8, "no config measured twice"
    # nothing left to do: no new lines
    assert len(tune_task(relu_task, trials=8, tuner="random", records=path, progress=False, options=FAST,
                         confirm=0)) == 8
    assert len(load_records(path)) == 8


def test_early_stopping_needs_a_window_without_improvement(relu_task):
    def outcome(costs):
        return TaskResult(relu_task, [MeasureResult({"i": i}, [c]) for i, c in enumerate(costs)])

    assert _stalled(outcome([3.0, 2.0, 2.5, 2.1]), 2)
    assert not _stalled(outcome([3.0, 2.5, 2.6, 2.0]), 2)
    assert not _stalled(outcome([3.0, 2.0]), 2)
    assert not _stalled(outcome([3.0, 2.0, 2.5, 2.1]), None)


def test_tune_a_model_summarizes_and_plots(tmp_path):
    model = write_model(tmp_path, ONE_RELU)
    records, plot = tmp_path / "r.jsonl", tmp_path / "curve.png"
    summary = ember.tune(model, records=records, trials_per_task=3, tuner="grid", batch_size=3, progress=False,
                         plot=plot, options=FAST)
    (task,) = summary.tasks
    assert len(task.results) == 3 and all(r.ok for r in task.results)
    assert len(task.best_so_far()) == 3 and task.best_so_far()[-1] > 0
    # the confirm phase measured the three configs again inside the model, a figure per round, and chose one
    assert task.confirmed.where == "model" and len(task.confirmed.results) == 3
    assert all(len(r.costs) == ConfirmOptions().model_rounds for r in task.confirmed.results)
    assert task.chosen in task.confirmed.results and 0 < task.tuned_s <= task.default_s
    table = summary.table()
    assert "Relu 8x64" in table and "default ms" in table and "total (weighted)" in table
    assert "medians of the confirm phase" in table and "inside the model" in table
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = load_records(records)
    assert [r.confirm is not None for r in lines] == [False] * 3 + [True] * 3


def test_measurements_run_on_a_local_dask_cluster(relu_task, tmp_path):
    import distributed  # the dev extra installs dask[distributed]

    path = tmp_path / "r.jsonl"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        results = tune_task(relu_task, trials=4, tuner="random", records=path, batch_size=4, jobs=2,
                            executor=client.get_executor(), progress=False, options=FAST)
    assert len(results) == 4 and all(r.ok for r in results)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["config"] for line in lines if "confirm" not in line] == [r.config for r in results]
    confirmed = [line for line in lines[4:] if line["confirm"]["trials"] == 4 and len(line["cost_s"]) == 5]
    assert len(confirmed) == len(lines) - 4 == 4, "the confirm phase is measured on the cluster too"
