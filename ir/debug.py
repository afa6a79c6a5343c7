"""The ``EMBER_DEBUG`` ladder, shared by every stage of the compiler.

=====  ==========================================================
level  prints (on stderr)
=====  ==========================================================
1      each graph pass run: nodes before -> after, rewrites
2      and each pass's wall time
3      and each kernel's schedule: its loops and annotations
4      and each kernel's full loop IR
5      and the optimized LLVM IR and the machine code (assembly)
=====  ==========================================================
"""

from __future__ import annotations

import os
import sys


def debug_level() -> int:
    """``EMBER_DEBUG`` as an integer (0 when unset; a non-number such as ``yes`` counts as 1)."""
    value = os.environ.get("EMBER_DEBUG", "").strip()
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        return 1


def debug_print(level: int, text: str) -> None:
    """Print ``text`` to stderr when ``EMBER_DEBUG >= level``."""
    if debug_level() >= level:
        print(text, file=sys.stderr, flush=True)
