"""Arena planning: no two live buffers overlap; dead buffers are reused."""

import numpy as np
from hypothesis import given, settings, strategies as st

import ember
from ember.examples import resolve_model
from ember.runtime.memory import ALIGNMENT, Lifetime, aligned, plan_arena


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.integers(1, 5000), st.integers(0, 20), st.integers(0, 5)), max_size=30))
def test_live_buffers_never_overlap(specs):
    buffers = [Lifetime(i, size, first, first + length) for i, (size, first, length) in enumerate(specs)]
    offsets, total = plan_arena(buffers)
    for a in buffers:
        assert offsets[a.key] % ALIGNMENT == 0
        assert offsets[a.key] + a.nbytes <= total
        for b in buffers:
            if a.key < b.key and a.first <= b.last and b.first <= a.last:
                a0, b0 = offsets[a.key], offsets[b.key]
                assert a0 + aligned(a.nbytes) <= b0 or b0 + aligned(b.nbytes) <= a0, (a, b)
    assert total <= sum(aligned(b.nbytes) for b in buffers)


def test_a_chain_reuses_two_buffers():
    chain = [Lifetime(i, 1000, i, i + 1) for i in range(10)]
    _, total = plan_arena(chain)
    assert total == 2 * aligned(1000)


def test_planned_model_runs_and_saves_memory():
    mod = ember.compile(resolve_model("light:squeezenet"))
    stats = mod.stats()
    assert stats["arena_bytes"] < stats["intermediate_bytes"] / 2
    ref = ember.reference(resolve_model("light:squeezenet"))
    feeds = ref.random_feeds(seed=3)
    np.testing.assert_allclose(mod.run(feeds)[0], ref.run(feeds)[0], rtol=1e-4, atol=1e-7)
