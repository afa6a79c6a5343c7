"""Search strategies compared at an equal trial budget: how fast each finds a good schedule.

For three workloads (a BERT-sized GEMM, a 3x3 convolution of ResNet-50's
stage 2, a 1x1 convolution of the same stage), every tuner of ``--tuners``
tunes the kernel for ``--trials`` real measurements (``ember.autotune.tune_task``
with the measuring child processes of ``ember.autotune.measure``), once per seed.
The report gives, per task and tuner, the trials needed to reach 95% of the
best speed any run found for that task (averaged over the seeds that reach it),
and the ratio of the model-guided search's trials to random search's; a PNG
plots the best GFLOP/s so far against trials (mean over seeds, min-max band).
Where random search seldom gets there within the budget, the mean over its
runs is cut off at the budget; the report also gives the share of its trials
within 95% of the best (pooled over seeds; ``--random-seeds`` runs more of
them), whose inverse is the trials it needs on average (:func:`random_hit_rate`).

Each distinct config of a task is measured once per benchmark run (or taken
from the ``--landscape`` file of an earlier one) and shared by all tuners and
seeds (``--no-share`` measures every run afresh): the runs
then compare the searches on the same landscape rather than on measurement
noise, and the benchmark takes a fraction of the time. After the runs, the
``--remeasure`` fastest configs are measured ``--remeasure-rounds`` more times,
interleaved, and every trial of a config costs the median of all its timed
runs: on a shared machine one lucky measurement would otherwise set "the
best" (a config 6% above all others, found once), and reaching 95% of it would
mean finding that one config. A workload whose
template has no knobs (a space of one config) is tuned as the GEMM its
convolution amounts to (im2col: ``M = N*H*W``, ``K = C*R*S``, ``N = K_out``),
and the report says so.

Replay mode (``--replay LANDSCAPE``) compares the searches offline: no
measuring, every tuner restricted to the configs of a landscape file (real
measurements of each task: ``--sample N`` distinct random configs, all of a
smaller space, plus everything the live runs measured, saved with
``--landscape OUT``), each proposal answered with its recorded time
(:mod:`ember.autotune.replay`). "95% of the best" then means of the best in
the landscape, and many seeds cost seconds (``--statistic min`` replays each
config's fastest timed run rather than the median: on a busy machine the
least disturbed estimate). It measures how fast a search
finds the best *of the measured set*; over a sample of a large space that is
a different (smaller) problem than the live search, and the report says so.

    python benchmarks/tuning.py [--trials 64] [--seeds 3] [--tuners xgb,random,beam] [--plot tuning.png] [--json OUT]
    python benchmarks/tuning.py --sample 400 --landscape land.json ...   # also keep the measurements for replay
    python benchmarks/tuning.py --replay land.json [--seeds 20] [--trials 128] ...       # offline comparison
    python benchmarks/tuning.py --from-json OUT [--plot tuning.png]      # report and plot earlier runs again
    python benchmarks/tuning.py --from-json OUT --search-only            # trials counted after the default

With ``--transfer`` the tasks of ``--tasks`` are tuned as ``ember tune`` tunes a
model's: in order, a model tuner's run of a task starting trained on its own
runs (same tuner, same seed) of the earlier tasks of the same op; random
search has no use for them and starts from nothing. ``conv1x1_reduce`` (the
other 1x1 convolution of a stage-2 bottleneck) is there to be tuned before
``conv1x1``:

    python benchmarks/tuning.py --tasks conv1x1_reduce,conv1x1 --transfer --tuners xgb,random ...

Every run measures the template's default config first. Where the default is
within 95% of the best, every tuner "reaches" it at trial 1 and the ratio says
nothing about the searches; ``--search-only`` counts trials from the first one
after the default (the best still includes it), which compares the searches
from scratch. The report says which way it counted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_TUNERS = ("xgb", "random", "beam")
REACH = 0.95  # "good": this fraction of the best speed found


# ------------------------------------------------------------------ workloads
def _graph(build: Callable) -> Any:
    from ember.ir import Graph

    graph = Graph("bench")
    graph.set_outputs([build(graph)])
    return graph


def _matmul(m: int, k: int, n: int) -> Callable:
    from ember.ir.types import TensorType

    def build(g):
        a = g.add_input("a", TensorType("float32", (m, k)))
        b = g.add_constant(np.random.default_rng(0).standard_normal((k, n)).astype(np.float32), "b")
        return g.apply("MatMul", [a, b])
    return build


def _conv(channels: int, out_channels: int, size: int, kernel: int) -> Callable:
    from ember.ir.types import TensorType

    def build(g):
        x = g.add_input("x", TensorType("float32", (1, channels, size, size)))
        w = np.random.default_rng(0).standard_normal((out_channels, channels, kernel, kernel)).astype(np.float32)
        pad = kernel // 2
        return g.apply("Conv", [x, g.add_constant(w, "w")], {"pads": [pad] * 4, "kernel_shape": [kernel, kernel]})
    return build


# name -> (description, graph builder, the equivalent GEMM (M, K, N) when the op itself has no knobs)
WORKLOADS: dict[str, tuple[str, Callable, tuple[int, int, int]]] = {
    "gemm": ("MatMul 128x768 @ 768x768 (BERT-base)", _matmul(128, 768, 768), (128, 768, 768)),
    "conv3x3": ("Conv 3x3 64->64 on 56x56 (ResNet-50 stage 2)", _conv(64, 64, 56, 3), (56 * 56, 64 * 9, 64)),
    "conv1x1": ("Conv 1x1 64->256 on 56x56 (ResNet-50 stage 2)", _conv(64, 256, 56, 1), (56 * 56, 64, 256)),
    # the other 1x1 of a stage-2 bottleneck, tuned before conv1x1 for --transfer
    "conv1x1_reduce": ("Conv 1x1 256->64 on 56x56 (ResNet-50 stage 2, a bottleneck's first)", _conv(256, 64, 56, 1),
                       (56 * 56, 256, 64)),
}
DEFAULT_TASKS = ("gemm", "conv3x3", "conv1x1")


def workload_task(name: str, target: str) -> tuple[Any, str]:
    """The task of workload ``name`` (the heaviest kernel of its one-op graph) and a note: empty,
    or how it was replaced when its template has no knobs."""
    from ember.autotune.task import extract_tasks

    description, build, gemm = WORKLOADS[name]
    tasks = extract_tasks(_graph(build), target, tunable_only=False)
    task = max(tasks, key=lambda t: t.flops())
    if task.space_size() > 1:
        return task, description
    m, k, n = gemm
    fallback = max(extract_tasks(_graph(_matmul(m, k, n)), target, tunable_only=False), key=lambda t: t.flops())
    return fallback, f"{description}: no knobs yet, tuned as its GEMM {m}x{k} @ {k}x{n}"


# ------------------------------------------------------------------ shared measurements
class SharedMeasurements(Executor):
    """An executor for :class:`ember.autotune.measure.Measurer` that measures each config of one task
    once, with measuring children of its own kept across runs, and answers repeats from memory."""

    def __init__(self, task, options=None, known: list | None = None):
        from ember.autotune.measure import Measurer
        from ember.autotune.records import config_key

        self._measurer = Measurer(task, options=options)
        self._known: dict[str, Any] = {config_key(r.config): r for r in known or []}
        self.measured = 0

    def submit(self, fn, payload, configs, options=None, **kwargs) -> Future:
        future: Future = Future()
        future.set_result(self.measure(configs))
        return future

    def measure(self, configs: list[dict]) -> list:
        """The results of ``configs``, measuring those not measured before."""
        from ember.autotune.records import config_key

        fresh = [c for c in configs if config_key(c) not in self._known]
        for config, result in zip(fresh, self._measurer.measure(fresh)):
            self._known[config_key(config)] = result
        self.measured += len(fresh)
        return [self._with_config(self._known[config_key(c)], c) for c in configs]

    def results(self) -> list:
        """Every result measured so far, each config once."""
        return list(self._known.values())

    def remeasure_fastest(self, k: int, rounds: int) -> list[dict]:
        """Measure the ``k`` fastest configs ``rounds`` more times, interleaved (each round all of them,
        in a carryover-balanced order), each keeping every timed run: a config's time becomes the median of all
        of them, so that the best is not one lucky measurement. Returns the configs remeasured."""
        from dataclasses import replace

        from ember.autotune.records import config_key
        from ember.runtime.round_order import ordered

        fastest = sorted((r for r in self._known.values() if r.ok), key=lambda r: r.cost)[:k]
        configs = [dict(r.config) for r in fastest]
        for round_ in range(rounds):
            order = ordered(configs, round_)
            for config, result in zip(order, self._measurer.measure(order)):
                key = config_key(config)
                if result.ok and self._known[key].ok:
                    self._known[key] = replace(self._known[key], costs=[*self._known[key].costs, *result.costs])
                else:  # failed now: the config is not reliably fast
                    self._known[key] = replace(self._known[key], costs=None, error=result.error or "failed")
        return configs

    def cost(self, config: dict) -> float:
        """The current time of a measured config (the median of all its timed runs)."""
        from ember.autotune.records import config_key

        return self._known[config_key(config)].cost

    @staticmethod
    def _with_config(result, config):
        from dataclasses import replace

        return replace(result, config=dict(config))

    def shutdown(self, wait: bool = True, **kwargs) -> None:
        self._measurer.close()


# ------------------------------------------------------------------ runs
def run_tuner(task, tuner: str, seed: int, trials: int, executor: Executor | None, transfer_from=()) -> dict:
    """One tuning run: its costs in trial order, its results and the time it took (the search only:
    the shared measurements answer a repeat from memory, so there is nothing to confirm);
    ``transfer_from`` as :func:`ember.autotune.tune.tune_task`'s."""
    from ember.autotune.tune import tune_task

    start = time.perf_counter()
    results = tune_task(task, trials=trials, tuner=tuner, seed=seed, executor=executor, progress=False,
                        confirm=0, transfer_from=transfer_from)
    return run_entry(tuner, seed, results, time.perf_counter() - start)


def run_entry(tuner: str, seed: int, results: list, seconds: float) -> dict:
    """The report's entry for one run; ``results`` (not saved to JSON) feed --transfer."""
    return {"tuner": tuner, "seed": seed, "costs": [r.cost for r in results], "configs": [r.config for r in results],
            "seconds": seconds, "failed": sum(not r.ok for r in results), "results": results}


class EarlierRuns:
    """With --transfer: the runs of the tasks tuned so far, so that a model tuner's run of the next
    task starts trained on those of the same tuner and seed (as ``ember tune`` carries a model's
    earlier tasks over; only tasks of the same op count, see :func:`ember.autotune.tune.warm_start`)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.runs: dict[tuple[str, int], list] = {}
        self.tasks: list[tuple[str, Any]] = []  # (name, task) in tuning order

    def transfer_from(self, tuner: str, seed: int) -> list:
        """The results of the earlier runs of ``tuner`` with ``seed`` (as TaskResults)."""
        return list(self.runs.get((tuner, seed), [])) if self.enabled else []

    def sources_of(self, task) -> list[str]:
        """The earlier tasks a model tuner of ``task`` learns from (for the report)."""
        from ember.autotune.tune import learns_from

        return [name for name, earlier in self.tasks if learns_from(task, earlier)] if self.enabled else []

    def add(self, name: str, task, runs: list[dict]) -> None:
        """Keep the results of ``runs`` of task ``name`` (and drop them from the report's entries)."""
        from ember.autotune.tune import TaskResult

        self.tasks.append((name, task))
        for run in runs:
            self.runs.setdefault((run["tuner"], run["seed"]), []).append(TaskResult(task, run.pop("results")))


def best_so_far(costs: list[float]) -> np.ndarray:
    return np.minimum.accumulate(np.asarray(costs, dtype=float)) if costs else np.zeros(0)


def trials_to_reach(costs: list[float], target_cost: float) -> int | None:
    """The first trial (1-based) whose best-so-far cost is within :data:`REACH` of ``target_cost``."""
    hits = np.flatnonzero(best_so_far(costs) <= target_cost / REACH)
    return int(hits[0]) + 1 if len(hits) else None


def search_costs(run: dict, search_only: bool) -> list[float]:
    """A run's costs in trial order; with ``search_only``, without its first trial (the default
    config, which every run measures first, whatever the tuner)."""
    return run["costs"][1:] if search_only else run["costs"]


def summarize(task_runs: dict[str, Any], search_only: bool = False) -> dict:
    """Per tuner: mean trials to 95% of the task's best (over the seeds that reach it) and final speed.
    The best is the landscape's (``best_s`` of a replay) or the fastest any run found (the
    default included); ``search_only`` counts trials from the first one after the default."""
    runs = task_runs["runs"]
    best = task_runs.get("best_s") or min(min(r["costs"], default=math.inf) for r in runs)
    out: dict[str, Any] = {"best_s": best, "tuners": {}, "search_only": search_only}
    for tuner in dict.fromkeys(r["tuner"] for r in runs):
        mine = [r for r in runs if r["tuner"] == tuner]
        reached = [trials_to_reach(search_costs(r, search_only), best) for r in mine]
        hits = [n for n in reached if n is not None]
        out["tuners"][tuner] = {
            "trials_to_95": reached,
            "mean_trials_to_95": float(np.mean(hits)) if hits else None,
            "reached": f"{len(hits)}/{len(mine)}",
            "final_gflops": float(np.mean([task_runs["flops"] / min(search_costs(r, search_only)) * 1e-9
                                           for r in mine])),
            "failed": sum(r["failed"] for r in mine),
        }
    tuners = out["tuners"]
    if "random" in tuners:
        tuners["random"]["hit_rate"] = random_hit_rate([search_costs(r, search_only) for r in runs
                                                        if r["tuner"] == "random"], best)
    if "xgb" in tuners and "random" in tuners:
        # an unreached run counts as the budget + 1 (flattering random search, not the model)
        mean = {t: np.mean([n or task_runs["trials"] + 1 for n in tuners[t]["trials_to_95"]]) for t in ("xgb", "random")}
        out["xgb_over_random"] = float(mean["xgb"] / mean["random"])
        rate = tuners["random"]["hit_rate"]
        if rate["hits"]:  # random search's expected trials are 1 / rate: the ratio is mean_xgb * rate
            out["xgb_over_random_expected"] = [float(mean["xgb"] * q) for q in (rate["rate"], *rate["interval"])]
    return out


def random_hit_rate(runs: list[list[float]], best: float, confidence: float = 0.9) -> dict:
    """The share of random search's trials (pooled over ``runs``) within :data:`REACH` of ``best``, with
    its Clopper-Pearson ``confidence`` interval.

    Every trial of random search is a uniform draw from the space, so one over this rate is the
    trials it needs on average to reach 95% of the best (exactly for draws with replacement; without,
    from a space of ``N`` configs holding ``K`` good ones, ``(N + 1) / (K + 1)``: the same for large
    spaces, a little less for small ones). Unlike the mean over runs it is not cut off at the
    budget: where few random runs get there within it, that mean counts every other run as the
    budget + 1 and so makes random search look faster than it is.
    """
    from scipy.stats import beta

    costs = np.concatenate([np.asarray(r, dtype=float) for r in runs]) if runs else np.zeros(0)
    n, k = len(costs), int(np.sum(costs <= best / REACH))
    alpha = 1 - confidence
    low = float(beta.ppf(alpha / 2, k, n - k + 1)) if k else 0.0
    high = float(beta.ppf(1 - alpha / 2, k + 1, n - k)) if k < n else 1.0
    return {"hits": k, "trials": n, "rate": k / n if n else 0.0, "interval": [low, high], "confidence": confidence}


def plot(report: dict, path: str) -> None:
    """Best GFLOP/s so far against trials, one panel per task, one line (mean, min-max band) per tuner."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["tasks"])
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        entry = report["tasks"][name]
        search_only = entry["summary"].get("search_only", False)
        for tuner in dict.fromkeys(r["tuner"] for r in entry["runs"]):
            curves = [entry["flops"] / best_so_far(search_costs(r, search_only)) * 1e-9
                      for r in entry["runs"] if r["tuner"] == tuner]
            length = min(len(c) for c in curves)
            stack = np.vstack([c[:length] for c in curves])
            x = np.arange(1, length + 1)
            ax.plot(x, stack.mean(axis=0), label=tuner)
            ax.fill_between(x, stack.min(axis=0), stack.max(axis=0), alpha=0.2)
        best = entry["flops"] / entry["summary"]["best_s"] * 1e-9
        ax.axhline(REACH * best, color="grey", linestyle=":", linewidth=1, label=f"{REACH:.0%} of best")
        ax.set_title(textwrap.fill(entry["description"], 48), fontsize="small")
        ax.set_xlabel("trials")
        ax.set_ylabel("best GFLOP/s so far")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_report(report: dict) -> None:
    mode = report.get("mode", "live")
    seeds = report["seeds"] if report.get("random_seeds") in (None, report["seeds"]) else \
        f"{report['seeds']} ({report['random_seeds']} of random search)"
    print(f"{report['trials']} trials per run, seeds {seeds}, target {report['target']}, {mode} mode")
    if mode == "replay":
        print("replayed: each tuner searches only the configs measured in the landscape, best = the landscape's best; "
              f"a config's time is the {report.get('statistic', 'median')} of its timed runs")
    if report.get("transfer"):
        print("transfer: a model tuner's run of a task starts trained on its runs (same seed) of the earlier tasks "
              "of the same op; random search starts from nothing")
    if any(entry["summary"].get("search_only") for entry in report["tasks"].values()):
        print("search only: trials counted from the first after the default config (which every run measures first)")
    for entry in report["tasks"].values():
        s = entry["summary"]
        measured = "configs in the landscape" if mode == "replay" else "distinct configs measured"
        if entry.get("reused"):
            measured += f" ({entry['reused']} of them reused from the landscape file)"
        if entry.get("transfer_from"):
            measured += f"; model tuners (loop features) transfer from {', '.join(entry['transfer_from'])}"
        print(f"\n{entry['description']}  (space {entry['space']}, {entry['measured']} {measured}, "
              f"best {entry['flops'] / s['best_s'] * 1e-9:.2f} GFLOP/s)")
        print(f"  {'tuner':<8} {'trials to 95%':>14} {'reached':>8} {'per seed':>18} {'final GFLOP/s':>14} {'failed':>7}")
        for tuner, t in s["tuners"].items():
            mean = "-" if t["mean_trials_to_95"] is None else f"{t['mean_trials_to_95']:.1f}"
            seeds = ",".join("-" if n is None else str(n) for n in t["trials_to_95"])
            print(f"  {tuner:<8} {mean:>14} {t['reached']:>8} {seeds:>18} {t['final_gflops']:>14.2f} {t['failed']:>7}")
        rate = s["tuners"].get("random", {}).get("hit_rate")
        if rate:
            low, high = rate["interval"]
            expected = f"{1 / rate['rate']:.0f} [{1 / high:.0f}, {'inf' if not low else f'{1 / low:.0f}'}]" \
                if rate["hits"] else f"more than {rate['trials']}"
            print(f"  random: {rate['hits']} of its {rate['trials']} trials within 95% of the best; expected trials "
                  f"to 95% from that rate {expected} ({rate['confidence']:.0%} interval)")
        if "xgb_over_random" in s:
            print(f"  xgb / random trials to 95%: {s['xgb_over_random']:.2f} (means over runs, an unreached run "
                  "counted as the budget + 1)")
        if "xgb_over_random_expected" in s:
            ratio, low, high = s["xgb_over_random_expected"]
            print(f"  xgb / random's expected trials from its hit rate: {ratio:.2f} [{low:.2f}, {high:.2f}]")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--random-seeds", type=int,
                        help="seeds of random search (default: --seeds): more of them estimate its hit rate "
                             "more closely where few of its runs reach 95%% of the best within the budget")
    parser.add_argument("--tuners", default=",".join(DEFAULT_TUNERS))
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help=f"of {', '.join(WORKLOADS)}, tuned in this order")
    parser.add_argument("--target", default="host")
    parser.add_argument("--no-share", action="store_true", help="measure every run afresh")
    parser.add_argument("--sample", type=int, default=0,
                        help="first measure this many distinct random configs per task (for --landscape)")
    parser.add_argument("--landscape", help="keep every measurement of the live runs in this file (for --replay); "
                        "measurements it holds already are reused, not repeated")
    parser.add_argument("--remeasure", type=int, default=16,
                        help="after the runs, measure this many of the fastest configs again (live, shared "
                        "measurements; 0: no), so that the best is not one lucky measurement")
    parser.add_argument("--remeasure-rounds", type=int, default=4,
                        help="interleaved rounds of --remeasure; a config's time is the median of all its runs")
    parser.add_argument("--replay", help="replay the tuners over the measurements of this landscape file")
    parser.add_argument("--statistic", choices=("median", "min"), default="median",
                        help="a replayed config's time: the median of its timed runs (as tuning uses) or the "
                        "fastest (less disturbed on a busy machine)")
    parser.add_argument("--plot", default="tuning.png")
    parser.add_argument("--json")
    parser.add_argument("--from-json", help="report and plot the runs of an earlier --json instead of measuring")
    parser.add_argument("--transfer", action="store_true",
                        help="a model tuner's run starts trained on its own runs (same seed) of the earlier tasks of "
                             "--tasks of the same op, as `ember tune` tunes a model's tasks (random search cannot "
                             "use them)")
    parser.add_argument("--search-only", action="store_true",
                        help="count trials after the default config (every run measures it first: when it is "
                             "within 95%% of the best, every tuner reaches that at trial 1)")
    args = parser.parse_args(argv)

    if args.from_json:
        report = json.loads(Path(args.from_json).read_text())
    elif args.replay:
        report = replay_runs(args)
    else:
        report = measure_runs(args)
    for entry in report["tasks"].values():  # measured, replayed or read back: summarized here, once
        entry["summary"] = summarize(entry, args.search_only)
    print_report(report)
    if args.plot:
        plot(report, args.plot)
        print(f"\nplot: {args.plot}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    return report


def measure_runs(args: argparse.Namespace) -> dict:
    """Tune every task of ``args.tasks`` with every tuner and seed; the report :func:`print_report` prints."""
    report: dict[str, Any] = {"trials": args.trials, "seeds": args.seeds, "random_seeds": args.random_seeds,
                              "target": args.target, "tasks": {}, "mode": "live", "transfer": args.transfer}
    earlier = EarlierRuns(args.transfer)
    saved_landscapes = json.loads(Path(args.landscape).read_text()) if args.landscape and Path(args.landscape).exists() \
        else {"target": args.target, "tasks": {}}
    if saved_landscapes["target"] != args.target:
        raise SystemExit(f"{args.landscape} holds measurements for target {saved_landscapes['target']!r}")
    landscapes: dict[str, Any] = {"target": args.target, "tasks": dict(saved_landscapes["tasks"])}
    for name in args.tasks.split(","):
        task, description = workload_task(name, args.target)
        try:
            known = landscape_results(saved_landscapes, name, task)
        except StaleLandscape as stale:
            print(f"{stale}; measuring afresh", file=sys.stderr, flush=True)
            known = []
        executor = None if args.no_share else SharedMeasurements(task, known=known)
        if executor is not None and args.sample:
            executor.measure(random_distinct_configs(task, args.sample))
        runs = []
        for seed, tuner in runs_to_make(args):
            runs.append(run_tuner(task, tuner, seed, args.trials, executor, earlier.transfer_from(tuner, seed)))
            print(f"{name} {tuner} seed {seed}: best {min(runs[-1]['costs']) * 1e3:.3f} ms "
                  f"({runs[-1]['seconds']:.0f} s)", file=sys.stderr, flush=True)
        if executor is not None and args.remeasure:
            again = executor.remeasure_fastest(args.remeasure, args.remeasure_rounds)
            print(f"{name}: remeasured the {len(again)} fastest configs {args.remeasure_rounds} more times",
                  file=sys.stderr, flush=True)
            for run in runs:  # every trial of a config now costs its time over all its runs
                run["costs"] = [executor.cost(c) for c in run["configs"]]
        entry = {"description": description, "space": task.space_size(), "flops": task.flops(), "runs": runs,
                 "trials": args.trials,
                 "measured": len(executor.results()) if executor else sum(len(r["costs"]) for r in runs),
                 "reused": len(known), "transfer_from": earlier.sources_of(task)}
        report["tasks"][name] = entry
        earlier.add(name, task, runs)
        if executor is not None:
            landscapes["tasks"][name] = {"description": description, "workload": task.workload,
                                         "space": task.space_size(), "flops": task.flops(), "results": [
                                             {"config": r.config, "costs": r.costs, "error": r.error}
                                             for r in executor.results()]}
            executor.shutdown()
            if args.landscape:  # after every task: a long run interrupted keeps what it measured
                Path(args.landscape).write_text(json.dumps(landscapes, default=list))
    return report


def runs_to_make(args: argparse.Namespace) -> list[tuple[int, str]]:
    """(seed, tuner) of every run, seed by seed: ``--seeds`` of each tuner, ``--random-seeds`` of random search."""
    tuners = args.tuners.split(",")
    seeds = {t: args.random_seeds if t == "random" and args.random_seeds is not None else args.seeds for t in tuners}
    return [(seed, t) for seed in range(max(seeds.values(), default=0)) for t in tuners if seed < seeds[t]]


def landscape_results(saved: dict, name: str, task) -> list:
    """The measurements of task ``name`` in a landscape file's contents (as MeasureResults). A knob the
    template has gained since is set to its default: the kernel measured was lowered with it.
    Raises :class:`StaleLandscape` when they were measured for another kernel (see :func:`stale_reason`)."""
    from ember.autotune.measure import MeasureResult

    entry = saved["tasks"].get(name, {})
    reason = stale_reason(entry, task)
    if reason:
        raise StaleLandscape(f"the measurements of {name} are of another kernel than today's: {reason}")
    defaults = task.defaults()
    return [MeasureResult({**defaults, **r["config"]}, r["costs"], r["error"]) for r in entry.get("results", [])]


class StaleLandscape(Exception):
    """A landscape file's measurements of a workload no longer describe the kernel ember builds for it."""


def stale_reason(entry: dict, task) -> str | None:
    """Why the landscape ``entry`` does not describe ``task``'s kernel (``None`` when it does): the
    workload it recorded differs (the op's lowering changed, e.g. a convolution now lowered as a
    matrix product), or its configs have knobs the template no longer has."""
    if "workload" in entry and entry["workload"] != task.workload:
        return f"measured as {entry['workload']['op']} {entry['workload']['shapes']}, " \
               f"now {task.workload['op']} {task.workload['shapes']}"
    gone = sorted({k for r in entry.get("results", []) for k in r["config"]} - set(task.space()))
    return f"knobs {', '.join(gone)} are no longer in the template" if gone else None


def random_distinct_configs(task, n: int, seed: int = 12345) -> list[dict]:
    """``n`` random configs of ``task`` lowering to ``n`` different kernels (all of them when fewer)."""
    from ember.autotune.search import RandomTuner

    return RandomTuner(task, seed, include_default=False).next_batch(n)


def replay_runs(args: argparse.Namespace) -> dict:
    """Replay every tuner and seed over the landscape file ``args.replay`` (see the module docstring)."""
    from dataclasses import replace

    from ember.autotune.replay import Landscape, replay

    saved = json.loads(Path(args.replay).read_text())
    report: dict[str, Any] = {"trials": args.trials, "seeds": args.seeds, "random_seeds": args.random_seeds,
                              "target": saved["target"], "tasks": {}, "mode": "replay", "statistic": args.statistic, "transfer": args.transfer}
    earlier = EarlierRuns(args.transfer)
    for name in args.tasks.split(","):
        task, description = workload_task(name, saved["target"])
        try:
            results = landscape_results(saved, name, task)
        except StaleLandscape as stale:
            raise SystemExit(f"{args.replay}: {stale}; measure a new landscape (--landscape)") from None
        if args.statistic == "min":  # each config's fastest timed run: the one least disturbed by other load
            results = [replace(r, costs=[min(r.costs)]) if r.costs else r for r in results]
        landscape = Landscape.from_results(results)
        runs = []
        for seed, tuner in runs_to_make(args):
            start = time.perf_counter()
            results = replay(task, landscape, tuner, seed=seed, trials=args.trials,
                             transfer_from=earlier.transfer_from(tuner, seed))
            runs.append(run_entry(tuner, seed, results, time.perf_counter() - start))
        entry = {"description": description, "space": task.space_size(), "flops": task.flops(), "runs": runs,
                 "trials": args.trials, "measured": len(landscape),
                 "best_s": min(r.cost for r in landscape.results.values()), "transfer_from": earlier.sources_of(task)}
        report["tasks"][name] = entry
        earlier.add(name, task, runs)
        print(f"{name}: replayed {len(runs)} runs over {len(landscape)} configs", file=sys.stderr, flush=True)
    return report


if __name__ == "__main__":
    main()
