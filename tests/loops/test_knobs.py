"""Knobs: default choices, recorded configs, and the space a template defines."""

import pytest

from ember.ir.loops import ScheduleError
from ember.ir.loops.knobs import Knobs, split_options


def test_defaults_without_a_config_and_space_recorded():
    knobs = Knobs()
    assert knobs.choose("order", ["ikj", "kij"], default="kij") == "kij"
    assert knobs.split("tile", extent=12, default=5) == 4
    assert knobs.space == {"order": ("ikj", "kij"), "tile": (1, 2, 3, 4, 6, 8, 12)}
    assert knobs.defaults == {"order": "kij", "tile": 4}
    assert knobs.size == 14


def test_config_values_are_used_and_json_lists_match_tuples():
    knobs = Knobs({"order": "ikj", "perm": [1, 0]})
    assert knobs.choose("order", ["ikj", "kij"], default="kij") == "ikj"
    assert knobs.choose("perm", [(0, 1), (1, 0)], default=(0, 1)) == (1, 0)


def test_a_value_outside_the_options_is_refused():
    with pytest.raises(ScheduleError, match="not one of its options"):
        Knobs({"tile": 5}).split("tile", extent=12, default=4)
    with pytest.raises(ScheduleError, match="default"):
        Knobs().choose("x", [1, 2], default=3)


def test_split_options_cover_divisors_and_powers_of_two():
    assert split_options(10) == (1, 2, 4, 5, 8, 10)
    assert split_options(64, limit=16) == (1, 2, 4, 8, 16)
