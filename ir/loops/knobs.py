"""Schedule knobs: the tunable choices of a schedule template (autoTVM's config space).

A schedule template asks its :class:`Knobs` for every choice it makes
instead of hard-coding it::

    def matmul_schedule(outputs, target, knobs=None):
        knobs = knobs or Knobs()
        tile_j = knobs.split("tile_j", extent=n, default=16)
        order = knobs.choose("order", ["ikj", "kij"], default="ikj")
        ...

Run with an empty ``Knobs()`` the template makes its default choices; run
with ``Knobs(config)`` (a tuning record's ``config``) it makes the recorded
ones. Either way the knobs object has recorded the *space*: every knob the
template asked for with its options, in the order asked, which is what the
autotuner searches. A knob's options must not depend on the values of other
knobs (only on shapes and the target), so that every config sees the same
space; a template may clamp a value to what the other knobs leave possible. Knob values are plain JSON values (ints, strings, bools,
lists of them) so configs round-trip through the records file.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from .schedule import ScheduleError


def split_options(extent: int, limit: int | None = None) -> tuple[int, ...]:
    """Candidate inner factors for splitting a loop of ``extent``: its divisors and the powers
    of two below it (a ragged last tile is guarded), at most ``limit`` (default: the extent)."""
    top = min(extent, limit or extent)
    options = {d for d in range(1, top + 1) if extent % d == 0}
    options |= {1 << p for p in range(top.bit_length()) if (1 << p) <= top}
    return tuple(sorted(options))


class Knobs:
    """The values of a schedule's knobs, and the space of those a template asked for."""

    def __init__(self, config: Mapping[str, Any] | None = None):
        self.config = dict(config or {})
        self.space: dict[str, tuple] = {}
        self.defaults: dict[str, Any] = {}

    def choose(self, name: str, options: Iterable[Any], default: Any) -> Any:
        """The value of knob ``name``: the config's when it has one, else ``default``."""
        options = tuple(_plain(o) for o in options)
        default = _plain(default)
        if default not in options:
            raise ScheduleError(f"knob {name!r}: default {default!r} is not one of its options {options}")
        if name in self.space and self.space[name] != options:
            raise ScheduleError(f"knob {name!r} defined twice with different options")
        self.space[name] = options
        self.defaults[name] = default
        value = _plain(self.config.get(name, default))
        if value not in options:
            raise ScheduleError(f"knob {name!r}: {value!r} is not one of its options {options}")
        return value

    def split(self, name: str, extent: int, default: int, limit: int | None = None) -> int:
        """An inner split factor for a loop of ``extent`` (see :func:`split_options`)."""
        options = split_options(extent, limit)
        default = max(o for o in options if o <= max(1, default))
        return self.choose(name, options, default)

    @property
    def size(self) -> int:
        """How many configs the space holds (the product of the option counts)."""
        return math.prod(len(o) for o in self.space.values())

    def __repr__(self) -> str:
        return f"Knobs({self.config}, space of {self.size})"


def _plain(value: Any) -> Any:
    """Lists (as JSON gives them back) compare equal to tuples: make both tuples."""
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value
