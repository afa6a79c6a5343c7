"""Suite-wide fixtures and reporting (how many of the onnx wheel's backend cases ember passes)."""

from __future__ import annotations

import pytest

_COUNTS: dict[str, dict[str, int]] = {}


@pytest.fixture
def parallel_however_small(monkeypatch):
    """Tiny kernels: share their parallel loops among threads anyway, to test the pool and what runs on it."""
    from ember.codegen import work

    monkeypatch.setattr(work, "MIN_PARALLEL_WORK", 0)


def pytest_runtest_logreport(report):
    name = report.nodeid.split("::")[-1]
    for prefix, label in (("test_backend_case_compiled[", "compiled"), ("test_backend_case[", "reference")):
        if name.startswith(prefix):
            counts = _COUNTS.setdefault(label, {"passed": 0, "failed": 0, "skipped": 0})
            if report.when == "call" and report.outcome in ("passed", "failed"):
                counts[report.outcome] += 1
            elif report.outcome == "skipped":
                counts["skipped"] += 1
            elif report.when == "setup" and report.outcome == "failed":
                counts["failed"] += 1
            break


def pytest_terminal_summary(terminalreporter):
    for label, c in sorted(_COUNTS.items()):
        total = c["passed"] + c["failed"] + c["skipped"]
        terminalreporter.write_line(
            f"onnx backend cases ({label}): {c['passed']} of {total} match, {c['failed']} do not, "
            f"{c['skipped']} use ops outside ember's scope")
