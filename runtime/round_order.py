"""The order in which interleaved timing runs its candidates, round after round.

Every interleaved measurement in ember (``ember bench``, the autotuner's
confirm phases, the tuning benchmark) times each candidate once per round. A
candidate inherits the state its predecessor leaves behind: warm or evicted
caches, worker threads still spinning, a CPU clock that has ramped up. Turning
the order by one place a round puts every candidate in every position, but
with three candidates A, B, C, B follows A in two rounds of three and A follows
B in none, so a candidate that leaves the machine in a bad state biases one
successor more than the others.

:func:`round_order` follows a Williams design instead: over one cycle of
rounds (``n`` rounds for an even count of candidates, ``2n`` for an odd one)
every candidate takes every position equally often and follows every other
candidate equally often.
"""

from __future__ import annotations

from collections.abc import Sequence


def cycle_length(count: int) -> int:
    """The rounds after which :func:`round_order` repeats, for ``count`` candidates."""
    if count <= 1:
        return 1
    return count if count % 2 == 0 else 2 * count


def round_order(count: int, round_index: int) -> list[int]:
    """The indices ``0 .. count-1`` in the order of round ``round_index`` (any non-negative int)."""
    if count < 0 or round_index < 0:
        raise ValueError(f"round_order needs a non-negative count and round, got {count}, {round_index}")
    if count <= 1:
        return list(range(count))
    # the first row 0, 1, n-1, 2, n-2, ...: its successive differences take every nonzero value once
    first = [0]
    low, high = 1, count - 1
    while len(first) < count:
        first.append(low)
        low += 1
        if len(first) < count:
            first.append(high)
            high -= 1
    row = round_index % cycle_length(count)
    order = [(i + row) % count for i in first]
    # an odd count needs the mirror rows too, so that each ordered pair occurs equally often
    return order[::-1] if row >= count else order


def ordered(items: Sequence, round_index: int) -> list:
    """``items`` in the order of round ``round_index`` (see :func:`round_order`)."""
    return [items[i] for i in round_order(len(items), round_index)]


__all__ = ["cycle_length", "ordered", "round_order"]
