"""The carryover-balanced order of interleaved timing rounds."""

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ember.runtime.round_order import cycle_length, ordered, round_order


@given(st.integers(min_value=1, max_value=12))
def test_a_cycle_balances_positions_and_predecessors(count):
    rows = [round_order(count, r) for r in range(cycle_length(count))]
    assert all(sorted(row) == list(range(count)) for row in rows), "each round is a permutation"
    places = Counter((place, i) for row in rows for place, i in enumerate(row))
    assert len(places) == count * count and len(set(places.values())) == 1, "every index in every place equally often"
    if count > 1:
        pairs = Counter(pair for row in rows for pair in zip(row, row[1:]))
        assert len(pairs) == count * (count - 1), "every index follows every other one"
        assert len(set(pairs.values())) == 1, "... equally often"


def test_rotation_would_not_balance_three_runners():
    # the order this replaces: turned by one a round; B follows A twice, A follows B never
    rotations = [[(i + r) % 3 for i in range(3)] for r in range(3)]
    pairs = Counter(pair for row in rotations for pair in zip(row, row[1:]))
    assert pairs[(0, 1)] == 2 and pairs[(1, 0)] == 0
    rows = [round_order(3, r) for r in range(cycle_length(3))]
    balanced = Counter(pair for row in rows for pair in zip(row, row[1:]))
    assert balanced[(0, 1)] == balanced[(1, 0)] == 2


def test_the_order_repeats_after_a_cycle_and_orders_items():
    assert [round_order(4, r) for r in range(8)][4:] == [round_order(4, r) for r in range(4)]
    assert round_order(3, 6) == round_order(3, 0)
    assert ordered(["a", "b", "c"], 3) == ["c", "b", "a"]
    assert round_order(0, 5) == [] and round_order(1, 7) == [0]
    with pytest.raises(ValueError):
        round_order(3, -1)
