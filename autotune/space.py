"""A task's config space as a grid of option indices: encoding, sampling, neighbours.

A config space is ``task.space()``: knob name → tuple of options (the order the
schedule template asked for them). A point of the space is a config dict
``{knob: option}``; :class:`ConfigSpace` numbers the points in mixed radix (the
last knob varies fastest), so tuners can enumerate, sample without repeats and
walk to neighbours by index arithmetic::

    >>> space = ConfigSpace({"tile": (1, 2, 4), "order": ("ij", "ji")})
    >>> space.size, space.config(3), space.index({"tile": 2, "order": "ji"})
    (6, {'tile': 2, 'order': 'ji'}, 3)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

Config = dict[str, Any]


def plain(value: Any) -> Any:
    """JSON lists (as records give configs back) compare equal to the tuples of a space."""
    if isinstance(value, list):
        return tuple(plain(v) for v in value)
    return value


class ConfigSpace:
    """The configs of a space, numbered ``0 .. size-1``."""

    def __init__(self, space: Mapping[str, tuple]):
        self.knobs: list[str] = list(space)
        self.options: list[tuple] = [tuple(plain(o) for o in space[k]) for k in self.knobs]
        self._positions = [{o: i for i, o in enumerate(opts)} for opts in self.options]
        self.size = math.prod(len(o) for o in self.options)

    # ------------------------------------------------------------ encoding
    def digits(self, config: Mapping[str, Any]) -> tuple[int, ...]:
        """The option index of each knob in ``config`` (raises KeyError for values outside the space)."""
        return tuple(pos[plain(config[k])] for k, pos in zip(self.knobs, self._positions))

    def index(self, config: Mapping[str, Any]) -> int:
        """The number of ``config`` in the space."""
        return self._number(self.digits(config))

    def config(self, index: int) -> Config:
        """The config numbered ``index``."""
        return {k: opts[d] for k, opts, d in zip(self.knobs, self.options, self._digits_of(index))}

    def _number(self, digits) -> int:
        number = 0
        for digit, opts in zip(digits, self.options):
            number = number * len(opts) + digit
        return number

    def _digits_of(self, index: int) -> tuple[int, ...]:
        digits = []
        for opts in reversed(self.options):
            index, digit = divmod(index, len(opts))
            digits.append(digit)
        return tuple(reversed(digits))

    def __contains__(self, config: Mapping[str, Any]) -> bool:
        try:
            self.digits(config)
        except (KeyError, TypeError):
            return False
        return True

    def __iter__(self) -> Iterator[Config]:
        return (self.config(i) for i in range(self.size))

    # ------------------------------------------------------------ sampling
    def random_index(self, rng: np.random.Generator) -> int:
        """A uniformly random config number (spaces may exceed int64: digits are drawn per knob)."""
        number = 0
        for opts in self.options:
            number = number * len(opts) + int(rng.integers(len(opts)))
        return number

    def random_unseen(self, rng: np.random.Generator, seen: set[int], n: int) -> list[int]:
        """Up to ``n`` distinct random config numbers not in ``seen`` (fewer only when the space runs out)."""
        left = self.size - len(seen)
        n = min(n, left)
        if left <= 4 * n or (self.size <= 1 << 16 and len(seen) > self.size // 2):
            # Nearly full: draw from the complement instead of rejecting over and over.
            unseen = [i for i in range(self.size) if i not in seen]
            return [unseen[int(j)] for j in rng.choice(len(unseen), size=n, replace=False)]
        picked: list[int] = []
        chosen: set[int] = set()
        while len(picked) < n:
            i = self.random_index(rng)
            if i not in seen and i not in chosen:
                chosen.add(i)
                picked.append(i)
        return picked

    # ----------------------------------------------------------- neighbours
    def neighbors(self, index: int) -> list[int]:
        """Every config that differs from config ``index`` in exactly one knob."""
        digits = self._digits_of(index)
        out = []
        for k, opts in enumerate(self.options):
            for d in range(len(opts)):
                if d != digits[k]:
                    out.append(self._number(digits[:k] + (d,) + digits[k + 1:]))
        return out

    def random_neighbor(self, index: int, rng: np.random.Generator) -> int:
        """A config differing in one random knob: half the time the adjacent option (options of a
        split are ordered by size, so that is a small step), otherwise any other option."""
        digits = list(self._digits_of(index))
        movable = [k for k, opts in enumerate(self.options) if len(opts) > 1]
        if not movable:
            return index
        k = movable[int(rng.integers(len(movable)))]
        count = len(self.options[k])
        if rng.random() < 0.5:
            step = 1 if rng.random() < 0.5 else -1
            if not 0 <= digits[k] + step < count:
                step = -step  # bounce off the end of the options
            digits[k] += step
        else:
            digits[k] = (digits[k] + 1 + int(rng.integers(count - 1))) % count
        return self._number(digits)
