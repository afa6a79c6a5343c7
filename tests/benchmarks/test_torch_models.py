"""Smoke test of benchmarks/torch_models.py in its --quick mode (no timing is asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "torch_models.py"


@pytest.mark.slow  # exports and compiles twice: tens of seconds on a busy machine
def test_torch_models_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("ember_benchmarks_torch_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "torch.md"
    assert module.main(["--quick", "--threads", "1,2", "--out", str(out)]) == 0
    table = out.read_text()
    rows = [line for line in table.splitlines() if line.startswith("| mlp |")]
    assert [row.split(" | ")[1] for row in rows] == ["1", "2"]
    assert all(row.split(" | ")[2] != "-" and row.split(" | ")[3] != "-" for row in rows)
