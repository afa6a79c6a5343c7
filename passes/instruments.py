"""Pass instruments: what the pass context does around each pass, besides running it.

An instrument gets ``start`` with the input graph, ``before_pass`` and
``after_pass`` around each pass (``after_pass`` also gets the pass's stats
record) and ``end`` with every record. The context installs the built-in ones
from its options and the environment:

=====================  =============================================================
``Verify``             ``verify=True`` or ``EMBER_DEBUG>=1``: verify the graph after
                       every pass and check its interface (input and output names,
                       order and types) did not change
``DumpIR``             ``dump_ir=DIR`` or ``EMBER_DUMP_IR=DIR``: the IR text after every
                       pass, ``DIR/00_input.ir``, ``DIR/01_fold_constants.ir``, ...
``PrintPasses``        ``EMBER_DEBUG>=1``: one line per pass run on stderr (node counts,
                       rewrites); ``EMBER_DEBUG>=2`` adds the wall time
=====================  =============================================================
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ember.ir import Graph, VerifyError, print_graph, verify
from ember.ir.errors import EmberError

if TYPE_CHECKING:
    from .pass_manager import Pass


class Instrument:
    """Hooks around a pass pipeline; every hook is optional (the defaults do nothing)."""

    def start(self, graph: Graph) -> None:
        """Called once with the input graph, before any pass."""

    def before_pass(self, pass_: "Pass", graph: Graph) -> None:
        """Called before ``pass_`` runs on ``graph``."""

    def after_pass(self, pass_: "Pass", graph: Graph, record: dict) -> None:
        """Called with the graph ``pass_`` returned and its stats record."""

    def end(self, graph: Graph, records: list[dict]) -> None:
        """Called once with the final graph and every pass's record."""


def _interface(graph: Graph) -> list[tuple[str, str, str]]:
    return ([("input", v.name, str(v.type)) for v in graph.inputs]
            + [("output", v.name, str(v.type)) for v in graph.outputs])


class Verify(Instrument):
    """Verify the input and the graph after every pass; a pass may not change the interface."""

    def start(self, graph: Graph) -> None:
        self._check(graph, "the pass pipeline's input")
        self._interface = _interface(graph)

    def after_pass(self, pass_: "Pass", graph: Graph, record: dict) -> None:
        self._check(graph, f"pass {pass_.name}")
        now = _interface(graph)
        if now != self._interface:
            changed = next((a, b) for a, b in zip(self._interface + [None], now + [None]) if a != b)
            raise VerifyError(f"pass {pass_.name} changed the graph's interface: {changed[0]} became {changed[1]}")

    @staticmethod
    def _check(graph: Graph, where: str) -> None:
        try:
            verify(graph)
        except EmberError as err:
            raise VerifyError(f"after {where}: {err.reason}", node=err.node, op=err.op) from None


_DUMPED = re.compile(r"\d{2,}_[A-Za-z0-9_.\-]+\.ir\Z")


class DumpIR(Instrument):
    """Write the IR text of the input and after every pass to numbered files in ``directory``.

    Files from an earlier dump into the same directory are removed first, so
    the directory always shows one pipeline. ``elide_constants`` prints large
    constants as ``const elided`` (smaller files; parse them with ``allow_elided=True``).
    """

    def __init__(self, directory: str | os.PathLike, elide_constants: bool = False):
        self.directory = Path(directory)
        self.elide_constants = elide_constants
        self._index = 0

    def start(self, graph: Graph) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for old in self.directory.iterdir():
            if _DUMPED.match(old.name):
                old.unlink()
        self._index = 0
        self._write("input", graph)

    def after_pass(self, pass_: "Pass", graph: Graph, record: dict) -> None:
        self._write(pass_.name, graph)

    def _write(self, name: str, graph: Graph) -> None:
        path = self.directory / f"{self._index:02d}_{name}.ir"
        path.write_text(print_graph(graph, elide_constants=self.elide_constants))
        self._index += 1


class PrintPasses(Instrument):
    """One line per pass on ``stream`` (stderr): node counts, rewrites and, with ``timings``, seconds."""

    def __init__(self, timings: bool = False, stream: TextIO | None = None):
        self.timings = timings
        self.stream = stream

    def after_pass(self, pass_: "Pass", graph: Graph, record: dict) -> None:
        line = (f"[ember] pass {record['name']:<18} {record['nodes_before']:>5} -> {record['nodes_after']:<5} nodes"
                f"  {record['rewrites']:>5} rewrites")
        if self.timings:
            line += f"  {record['seconds'] * 1e3:9.2f} ms"
        print(line, file=self.stream or sys.stderr)

    def end(self, graph: Graph, records: list[dict]) -> None:
        if self.timings and records:
            total = sum(r["seconds"] for r in records)
            print(f"[ember] {len(records)} passes in {total * 1e3:.2f} ms", file=self.stream or sys.stderr)
