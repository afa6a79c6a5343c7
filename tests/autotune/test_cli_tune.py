"""``ember tune`` on the command line: killed mid-task with SIGKILL, it resumes without losing a batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ember.autotune.confirm import ConfirmOptions
from ember.autotune.records import config_key, load_records
from ember.cli import main

from .workloads import ONE_RELU, write_model


def _tune_command(model: str, records: str) -> list[str]:
    return [sys.executable, "-m", "ember", "tune", model, "--records", records, "--trials", "8", "--batch-size", "2",
            "--tuner", "grid"]


def test_a_killed_run_resumes_without_losing_finished_batches(tmp_path):
    model, records = write_model(tmp_path, ONE_RELU), str(tmp_path / "r.jsonl")
    # a planted hang keeps the first run busy in a later batch until it is killed
    env = dict(os.environ, EMBER_TUNE_FAULT="hang:vector_chunk=4")
    run = subprocess.Popen(_tune_command(model, records) + ["--timeout", "600"], env=env, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not (os.path.exists(records) and len(Path(records).read_text().splitlines()) >= 3):
            assert run.poll() is None, run.stderr.read().decode()
            assert time.monotonic() < deadline, "no batch was recorded"
            time.sleep(0.05)
        assert run.poll() is None, "the run must still be going when it is killed"
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the tuner and its measuring child
        run.wait()
        run.stderr.close()
    before = Path(records).read_text().splitlines()
    assert len(before) >= 3
    finished = len(load_records(records))
    assert all(r.confirm is None for r in load_records(records)), "killed while searching: nothing confirmed"

    subprocess.run(_tune_command(model, records), check=True, capture_output=True, timeout=600)
    after = Path(records).read_text().splitlines()
    assert after[:len(before)] == before, "finished batches are kept as they were"
    records_after = load_records(records)
    trials = [r for r in records_after if r.confirm is None]
    confirmed = [r for r in records_after if r.confirm is not None]
    assert len(trials) == 8 and len(after) - len(before) == 8 - finished + len(confirmed), \
        "only the missing trials are run"
    assert records_after[:8] == trials, "the search trials come first, the confirm phase after them"
    assert len({config_key(r.config) for r in trials}) == 8, "no config is measured twice in the search"
    assert all(r.error is None for r in trials)
    # then one confirm phase: the default and the 4 fastest other configs, each measured again once per round
    assert len(confirmed) == 5 and all(r.confirm.trials == 8 for r in confirmed)
    assert {config_key(r.config) for r in confirmed} <= {config_key(r.config) for r in trials}
    assert len({config_key(r.config) for r in confirmed}) == 5
    assert sum(r.confirm.chosen for r in confirmed) == 1
    assert all(r.confirm.where == "model" and len(r.cost_s) == ConfirmOptions().model_rounds for r in confirmed), \
        "confirmed inside the model by default, a figure per round"



def test_run_applies_records(tmp_path, capsys):
    model, records = write_model(tmp_path, ONE_RELU), str(tmp_path / "r.jsonl")
    assert main(["tune", model, "--records", records, "--trials", "2", "--tuner", "random", "--flush-cache",
                 "--confirm-in", "kernel"]) == 0
    out = capsys.readouterr().out
    assert "Relu 8x64" in out and "records: " in out and "medians of the confirm phase" in out
    assert "inside the model" not in out
    assert [r.confirm is not None for r in load_records(records)] == [False, False, True, True]
    assert {r.confirm.where for r in load_records(records) if r.confirm is not None} == {"kernel"}
    x = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", model, "--records", records, "--input", f"x={tmp_path / 'x.npy'}"]) == 0
    assert "outputs:" in capsys.readouterr().out
    json_path = tmp_path / "bench.json"
    assert main(["bench", model, "--records", records, "--compare", "untuned", "--repeat", "2",
                 "--json", str(json_path)]) == 0
    report = json.loads(json_path.read_text())
    assert set(report["results"]) == {"ember", "untuned"} and report["ratios"]["untuned/ember"] > 0


def test_confirm_0_applies_the_fastest_search_measurement(tmp_path, capsys):
    model, records = write_model(tmp_path, ONE_RELU), str(tmp_path / "r.jsonl")
    assert main(["tune", model, "--records", records, "--trials", "3", "--tuner", "random", "--confirm", "0"]) == 0
    assert "fastest single search measurement (not confirmed)" in capsys.readouterr().out
    assert [r.confirm for r in load_records(records)] == [None] * 3
