"""docs/passes.md runs: its Python blocks execute in order, print what the text blocks after them show,
and the test functions they define pass."""

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "passes.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks() -> list[tuple[str, str, int]]:
    """(language, code, end offset) of every fenced block."""
    return [(m.group(1), m.group(2), m.end()) for m in BLOCK.finditer(DOC.read_text())]


def expected_output(text: str, end: int, following: tuple[str, str, int] | None) -> str | None:
    """The text block right after a Python block (only blank lines between) is its printed output."""
    if following is None or following[0] != "text":
        return None
    start = text.index("```text", end)
    return following[1] if not text[end:start].strip() else None


def run_tutorial() -> dict:
    text = DOC.read_text()
    found = blocks()
    namespace = {"__name__": "ember_passes_tutorial"}
    for i, (lang, code, end) in enumerate(found):
        if lang != "python":
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"{DOC}:block{i}", "exec"), namespace)
        want = expected_output(text, end, found[i + 1] if i + 1 < len(found) else None)
        if want is not None:
            assert out.getvalue().strip() == want.strip(), f"block {i} printed:\n{out.getvalue()}"
            namespace.setdefault("_outputs_checked", []).append(i)
    return namespace


def test_the_tutorial_runs_and_its_tests_pass():
    namespace = run_tutorial()
    assert len(namespace.pop("_outputs_checked")) == 2  # the two examples that print
    tests = {name: fn for name, fn in namespace.items() if name.startswith("test_") and callable(fn)}
    assert set(tests) == {"test_remove_double_relu", "test_remove_double_relu_cases"}
    for fn in tests.values():
        fn()


def test_every_block_is_python_or_text():
    languages = {lang for lang, _, _ in blocks()}
    assert languages <= {"python", "text"}, "other blocks would neither run nor be checked"


@pytest.mark.parametrize("level", [0, 1, 2])
def test_the_opt_level_table_matches_the_pipeline(level):
    from ember.passes import pipeline

    names = ", ".join(f"`{p.name}`" for p in pipeline(level)) or "none"
    assert f"| {level} | {names} |" in DOC.read_text()
