"""Per-kernel profiles from a profiling build."""

import pytest

import ember
from ember.examples import resolve_model


def test_profile_times_every_kernel_and_resets():
    mod = ember.compile(resolve_model("light:squeezenet"), profile=True, num_threads=1)
    feeds = mod.random_feeds()
    mod.run(feeds)
    rows = mod.profile()
    assert len(rows) == mod.stats()["kernels"]
    assert all(r["seconds"] >= 0 for r in rows) and sum(r["seconds"] for r in rows) > 0
    assert rows == sorted(rows, key=lambda r: -r["seconds"])
    assert any(op in ("Conv", "ConvNCHWc") for r in rows for op in r["ops"])  # plain or blocked layout
    assert sum(r["seconds"] for r in mod.profile()) == 0  # reset by the previous call


def test_profile_needs_a_profiling_build():
    mod = ember.compile(resolve_model("light:squeezenet"), num_threads=1)
    with pytest.raises(ember.CompileError, match="profile=True"):
        mod.profile()
