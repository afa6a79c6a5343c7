"""Memory planning: one arena for every intermediate, buffers reused once dead.

Each buffer has a size and a lifetime ``[first, last]`` in kernel-call order
(an intermediate lives from the call that writes it to the last call that
reads it; a kernel's workspace only during its own call). Greedy by size:
the largest buffers are placed first, each at the lowest aligned offset that
overlaps no placed buffer alive at the same time. It is the strategy of
TFLite's and TVM's arena planners: simple, and close to optimal on CNNs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

ALIGNMENT = 64


@dataclass(frozen=True)
class Lifetime:
    key: Hashable
    nbytes: int
    first: int
    last: int


def aligned(nbytes: int, alignment: int = ALIGNMENT) -> int:
    return -(-max(nbytes, 1) // alignment) * alignment


def plan_arena(buffers: Sequence[Lifetime], alignment: int = ALIGNMENT) -> tuple[dict[Hashable, int], int]:
    """Offsets for ``buffers`` (by key) in one arena, and the arena's size in bytes."""
    placed: list[tuple[int, int, Lifetime]] = []  # (offset, size, buffer)
    offsets: dict[Hashable, int] = {}
    order = sorted(buffers, key=lambda b: (-aligned(b.nbytes, alignment), b.first, str(b.key)))
    for buf in order:
        size = aligned(buf.nbytes, alignment)
        busy = sorted((off, off + sz) for off, sz, other in placed
                      if other.first <= buf.last and buf.first <= other.last)
        offset = 0
        for start, end in busy:
            if offset + size <= start:
                break
            offset = max(offset, end)
        offsets[buf.key] = offset
        placed.append((offset, size, buf))
    total = max((off + sz for off, sz, _ in placed), default=0)
    return offsets, total
