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

    subprocess.run(_tune_command(model, records), check=True, capture_output=True, timeout=600)
    after = Path(records).read_text().splitlines()
    assert after[:len(before)] == before, "finished batches are kept as they were"
    results = load_records(records)
    assert len(results) == 8 and len(after) - len(before) == 8 - finished, "only the missing trials are run"
    assert len({config_key(r.config) for r in results}) == 8, "no config is measured twice"
    assert all(r.error is None for r in results)


def test_run_applies_records(tmp_path, capsys):
    model, records = write_model(tmp_path, ONE_RELU), str(tmp_path / "r.jsonl")
    assert main(["tune", model, "--records", records, "--trials", "2", "--tuner", "random"]) == 0
    out = capsys.readouterr().out
    assert "Relu 8x64" in out and "records: " in out
    x = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", model, "--records", records, "--input", f"x={tmp_path / 'x.npy'}"]) == 0
    assert "outputs:" in capsys.readouterr().out
    json_path = tmp_path / "bench.json"
    assert main(["bench", model, "--records", records, "--compare", "untuned", "--repeat", "2",
                 "--json", str(json_path)]) == 0
    report = json.loads(json_path.read_text())
    assert set(report["results"]) == {"ember", "untuned"} and report["ratios"]["untuned/ember"] > 0
