"""The before/after check every pass test uses."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ember.ir import Graph, graph_difference, parse, verify
from ember.passes import Pass, PassContext
from ember.runtime.reference import ReferenceModule
from tests.helpers import assert_roundtrip


def run(passes: Pass | Sequence[Pass], graph: Graph) -> tuple[Graph, list[dict]]:
    """Run ``passes`` on ``graph`` with verification on; the result and the stats."""
    ctx = PassContext(passes=[passes] if isinstance(passes, Pass) else list(passes), verify=True)
    return ctx.run(graph), ctx.stats


def check_rewrite(passes: Pass | Sequence[Pass], before: str, after: str | None = None, *,
                  rtol: float = 0.0, atol: float = 0.0, seed: int = 0) -> Graph:
    """Run ``passes`` on the IR text ``before`` and check the result.

    The result must equal ``after`` structurally (names may differ; ``None``
    means the pass must leave the graph unchanged), verify, round-trip through
    the text format, and compute what ``before`` computes on random inputs
    (exactly, unless a tolerance is given).
    """
    original = parse(before)
    result, _ = run(passes, original)
    expected = parse(after if after is not None else before)
    diff = graph_difference(result, expected, names=False)
    assert diff is None, f"{diff}\n--- got:\n{result}--- expected:\n{expected}"
    verify(result)
    assert_roundtrip(result)
    assert [(v.name, v.type) for v in result.outputs] == [(v.name, v.type) for v in original.outputs]
    assert_same_values(original, result, rtol=rtol, atol=atol, seed=seed)
    return result


def assert_same_values(before: Graph, after: Graph, *, rtol: float, atol: float, seed: int = 0) -> None:
    """``after`` computes what ``before`` computes on random inputs, within the tolerances."""
    reference = ReferenceModule(before)
    feeds = reference.random_feeds(seed)
    for got, want in zip(ReferenceModule(after).run(feeds), reference.run(feeds)):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
