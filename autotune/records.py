"""The tuning-records log: one JSON line per measured candidate.

Each line (the format of DESIGN.md, version 1)::

    {"workload": {"op": ..., "shapes": ..., "dtype": ..., "attrs": ...}, "target": "<target string>",
     "config": {knob: value, ...}, "cost_s": [seconds per run, ...], "error": null | "...",
     "version": 1, "time": "<iso8601>"}

A failed candidate has ``"cost_s": []`` and its error. The tuner appends a
batch of lines and flushes them as soon as the batch is measured, so a
killed run loses at most the batch in flight; a torn last line (the process
died mid-write) is skipped when reading and cut off before the next append. Lines of an unknown ``version`` are
refused loudly. Reading and applying records imports nothing of the search
(no xgboost).

A confirm phase (:mod:`ember.autotune.confirm`) re-measures a task's best
configs and the default side by side and appends one line per candidate,
written together, with an extra field (files without it read as before)::

    "confirm": {"trials": <search trials it followed>, "chosen": true | false[, "in": "model"]}

Its ``cost_s`` holds one figure per confirm round (that round's median; with
``"in": "model"``, the time of the task's kernels inside the model that round,
per kernel: :mod:`ember.autotune.model_confirm`).
:func:`best_records` applies the chosen line of a workload's latest confirm
phase when there is one, the fastest search record otherwise.

>>> best = best_configs(load_records("tune.jsonl"), "host")     # doctest: +SKIP
>>> mod = ember.compile("model.onnx", records="tune.jsonl")     # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import json
import math
import os
import statistics
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ember.ir.errors import EmberError

from .task import target_key, workload_key, workload_of

VERSION = 1


class RecordsError(EmberError):
    """A records file that cannot be read: bad line, unknown version."""


@dataclass(frozen=True)
class Confirmation:
    """What marks a record as a confirm-phase measurement: how many search trials of the task
    the phase followed, and whether it chose this record's config."""

    trials: int
    chosen: bool = False
    where: str = "kernel"  # "model": measured inside the model (written as "in": "model")


@dataclass
class Record:
    """One measured candidate of a workload on a target (a confirm-phase one with ``confirm``)."""

    workload: dict
    target: str
    config: dict
    cost_s: list[float] = field(default_factory=list)
    error: str | None = None
    time: str = ""
    confirm: Confirmation | None = None

    @property
    def cost(self) -> float:
        """The median seconds per run; infinite for a failed candidate."""
        if self.error is not None or not self.cost_s:
            return math.inf
        return statistics.median(self.cost_s)

    @property
    def ok(self) -> bool:
        """Whether the candidate ran and computed the right answer."""
        return self.error is None and bool(self.cost_s)

    @property
    def key(self) -> str:
        """The workload's canonical string."""
        return workload_key(self.workload)

    def to_json(self) -> str:
        """The record as one line of the file (without the newline)."""
        line = {"workload": self.workload, "target": self.target, "config": self.config,
                "cost_s": list(self.cost_s), "error": self.error, "version": VERSION, "time": self.time or _now()}
        if self.confirm is not None:
            line["confirm"] = {"trials": self.confirm.trials, "chosen": self.confirm.chosen}
            if self.confirm.where != "kernel":
                line["confirm"]["in"] = self.confirm.where
        return json.dumps(line)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def config_key(config: dict) -> str:
    """A canonical string of a config (lists and tuples alike), to tell configs apart."""
    return json.dumps(config, sort_keys=True, default=list)


def append_records(path: str | os.PathLike, records: Iterable[Record]) -> None:
    """Append ``records`` to the file at ``path`` (created if missing) and flush them to the OS,
    so they survive the process being killed."""
    lines = "".join(r.to_json() + "\n" for r in records).encode()
    with open(path, "ab+") as f:
        _drop_torn_line(f)
        f.write(lines)
        f.flush()
        os.fsync(f.fileno())


def _drop_torn_line(f) -> None:
    """Cut a last line without a newline (a writer killed mid-line) off the file ``f``."""
    end = f.seek(0, os.SEEK_END)
    if end == 0:
        return
    f.seek(end - 1)
    if f.read(1) == b"\n":
        return
    start = max(0, end - (1 << 20))
    f.seek(start)
    tail = f.read()
    newline = tail.rfind(b"\n")
    f.truncate(start + newline + 1 if newline >= 0 else start)
    f.seek(0, os.SEEK_END)


def load_records(path: str | os.PathLike, *, missing_ok: bool = True) -> list[Record]:
    """Every record of the file at ``path`` in file order (none when the file does not exist and
    ``missing_ok``). A torn last line is skipped with a warning; any other bad line, or one of
    an unknown version, raises :class:`RecordsError`."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        if missing_ok:
            return []
        raise RecordsError(f"no tuning records at {path}") from None
    except OSError as err:
        raise RecordsError(f"cannot read tuning records {path}: {err}") from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):  # no newline after it: the writer died mid-line
                warnings.warn(f"{path}:{number}: skipping a truncated last record", stacklevel=2)
                continue
            raise RecordsError(f"{path}:{number}: not a JSON record ({err})") from None
        records.append(_parse(data, f"{path}:{number}"))
    return records


def _parse(data: Any, where: str) -> Record:
    if not isinstance(data, dict):
        raise RecordsError(f"{where}: a record is a JSON object, got {type(data).__name__}")
    if data.get("version") != VERSION:
        raise RecordsError(f"{where}: records of version {data.get('version')!r} are not supported "
                           f"(this ember reads version {VERSION})")
    missing = [k for k in ("workload", "target", "config") if k not in data]
    if missing:
        raise RecordsError(f"{where}: record lacks {', '.join(missing)}")
    return Record(data["workload"], data["target"], data["config"], list(data.get("cost_s") or []),
                  data.get("error"), data.get("time", ""), _confirmation(data.get("confirm"), where))


def _confirmation(data: Any, where: str) -> Confirmation | None:
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("trials"), int) \
            or not isinstance(data.get("chosen", False), bool) or data.get("in", "kernel") not in ("kernel", "model"):
        raise RecordsError(f"{where}: a record's confirm is {{\"trials\": int, \"chosen\": bool, \"in\": "
                           f"\"kernel\" | \"model\"}}, got {data!r}")
    return Confirmation(data["trials"], data.get("chosen", False), data.get("in", "kernel"))


def best_records(records: Iterable[Record], target: Any) -> dict[str, Record]:
    """The record to apply per workload (by canonical key) among those of ``target`` (a Target,
    a target name or a records target string; other targets' records are ignored): the chosen
    record of the workload's latest confirm phase when it had one (the default config, when
    nothing beat it), else its fastest successful search record."""
    wanted = target if isinstance(target, str) and " (" in target else target_key(target)
    fastest: dict[str, Record] = {}
    chosen: dict[str, Record] = {}
    for r in records:
        if r.target != wanted:
            continue
        if r.confirm is not None:
            if r.confirm.chosen:
                chosen[r.key] = r  # a later confirm phase replaces an earlier one
        elif r.ok and (r.key not in fastest or r.cost < fastest[r.key].cost):
            fastest[r.key] = r
    return {**fastest, **chosen}


def best_configs(records: Iterable[Record], target: Any) -> dict[str, dict]:
    """Workload key -> the config of its best record for ``target`` (see :func:`best_records`)."""
    return {key: r.config for key, r in best_records(records, target).items()}


def tuned_configs(path: str | os.PathLike, target: Any) -> Callable[[Any], dict | None]:
    """A function giving a graph node the best recorded config of its workload for ``target``
    (``None`` when the file has none): what :func:`ember.compile` applies with ``records=``."""
    best = best_configs(load_records(path, missing_ok=False), target)

    def config_for(node) -> dict | None:
        return best.get(workload_key(workload_of(node))) if best else None

    return config_for


__all__ = [
    "VERSION",
    "Confirmation",
    "Record",
    "RecordsError",
    "append_records",
    "best_configs",
    "best_records",
    "config_key",
    "load_records",
    "tuned_configs",
]
