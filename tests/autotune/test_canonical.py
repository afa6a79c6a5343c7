"""Configs that lower to the same kernel are one candidate: proposed once, never measured twice."""

from __future__ import annotations

import pytest
from ember.autotune.lowering import LoweredConfigs, kernel_key
from ember.autotune.search import TUNERS, make_tuner
from ember.autotune.space import ConfigSpace
from ember.ir.errors import EmberError

from .test_search import Result, run

SPACE = {"tile": (1, 2, 4, 8, 16, 32), "block": (1, 2, 3, 4), "unroll": (False, True)}


class ClampingTask:
    """A template whose ``block`` is clamped to ``32 // tile`` panels (so several configs lower to one
    kernel), whose ``unroll`` only matters for tiles above 4, and that refuses tile 32 with block 4."""

    def space(self) -> dict:
        return dict(SPACE)

    def defaults(self) -> dict:
        return {"tile": 8, "block": 2, "unroll": False}

    def kernel(self, config: dict) -> tuple:
        tile = config["tile"]
        return tile, min(config["block"], 32 // tile), config["unroll"] and tile > 4

    def lower(self, config: dict) -> str:
        if config["tile"] == 32 and config["block"] == 4:
            raise EmberError("tile 32 leaves no room for 4 blocks")
        return "kernel tile={} block={} unroll={}".format(*self.kernel(config))

    def cost(self, config: dict) -> float:
        tile, block, unroll = self.kernel(config)
        return 1.0 + abs(tile - 8) + abs(block - 2) + (0.0 if unroll else 0.5)


def distinct_kernels() -> set[tuple]:
    task = ClampingTask()
    return {task.kernel(c) for c in ConfigSpace(SPACE) if not (c["tile"] == 32 and c["block"] == 4)}


def test_lowered_configs_key_equal_kernels_alike_and_lower_each_config_once():
    task = ClampingTask()
    calls = []
    lower = task.lower
    task.lower = lambda config: calls.append(config) or lower(config)  # type: ignore[method-assign]
    space = ConfigSpace(SPACE)
    lowered = LoweredConfigs(task, space)
    a = space.index({"tile": 16, "block": 2, "unroll": True})
    b = space.index({"tile": 16, "block": 4, "unroll": True})  # block clamped to 2: the same kernel
    c = space.index({"tile": 16, "block": 1, "unroll": True})
    refused = space.index({"tile": 32, "block": 4, "unroll": False})
    assert lowered.key(a) == lowered.key(b) != lowered.key(c)
    assert lowered.key(refused) is None
    assert lowered.key(a) == kernel_key(task.lower(space.config(a)))
    calls.clear()
    lowered.key(a), lowered.key(b), lowered.key(refused)
    assert calls == []


@pytest.mark.parametrize("name", sorted(TUNERS))
def test_every_tuner_measures_each_kernel_once_and_never_a_refused_config(name):
    task = ClampingTask()
    tuner = make_tuner(name + ("-knob" if name == "xgb" else ""), task, seed=2)
    results = run(tuner, task, trials=1000, batch=4)
    kernels = [task.kernel(r.config) for r in results]
    assert len(kernels) == len(set(kernels))  # no trial spent on a kernel measured before
    assert set(kernels) == distinct_kernels()  # ... and every kernel measured once the tuner is exhausted
    refused = 2  # tile 32, block 4, either unroll
    assert tuner.exhausted() and tuner.duplicates == ConfigSpace(SPACE).size - refused - len(kernels)
    assert min(r.cost for r in results) == 1.0


def test_records_of_an_earlier_run_rule_out_configs_of_the_same_kernel():
    task = ClampingTask()
    tuner = make_tuner("random", task, seed=0)
    tuner.update([Result({"tile": 16, "block": 2, "unroll": True}, 3.0)])
    proposed = [task.kernel(c) for c in tuner.next_batch(1000)]
    assert (16, 2, True) not in proposed and len(proposed) == len(set(proposed)) == len(distinct_kernels()) - 1
