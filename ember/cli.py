"""The ``ember`` command line.

::

    ember run MODEL [--input NAME=FILE.npy ...] [--input-shape NAME=1,3,224,224] [--repeat N]
                    [--executor compiled|reference] [--target T]
    ember bench MODEL [--compare reference,onnxruntime] [--threads N] [--repeat N] [--json OUT] [--profile] [--steady]
    ember ir MODEL [--after PASS] [--full-constants]
    ember tune MODEL --records R [--trials N] [--jobs N] [--tuner xgb|random|grid|beam] [--target T]
                     [--confirm K] [--confirm-in model|kernel] [--flush-cache] [--plot curve.png] [--dask ADDRESS]

``MODEL`` is an ``.onnx`` file, an IR text file, or ``light:NAME`` for a model
shipped in the onnx wheel (``light:resnet50``, ``light:squeezenet``, ...).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from ember.ir.errors import EmberError, InputError


def _shapes(items: list[str]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for item in items:
        name, sep, dims = item.rpartition("=")
        if not sep or not name:
            raise InputError(f"--input-shape expects NAME=d0,d1,..., got {item!r}")
        try:
            shapes[name] = tuple(int(d) for d in dims.split(",") if d.strip())
        except ValueError:
            raise InputError(f"--input-shape {item!r}: dimensions must be integers") from None
    return shapes


def _feeds(items: list[str]) -> dict[str, np.ndarray]:
    feeds = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            raise InputError(f"--input expects NAME=FILE.npy, got {item!r}")
        try:
            feeds[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise InputError(f"cannot read input {name!r} from {path}: {err}") from None
    return feeds


def _describe(name: str, array: np.ndarray) -> str:
    line = f"  {name}: {array.dtype}{list(array.shape)}"
    if array.size:
        flat = array.reshape(-1)
        head = ", ".join(f"{v:.6g}" if array.dtype.kind == "f" else str(v) for v in flat[:6].tolist())
        line += f"  [{head}{', ...' if flat.size > 6 else ''}]"
        if array.dtype.kind in "fiu":
            line += f"  min {flat.min():.6g} max {flat.max():.6g} mean {flat.astype(np.float64).mean():.6g}"
    return line


def cmd_run(args) -> int:
    import ember
    from ember.examples import resolve_model

    model = resolve_model(args.model)
    if args.executor == "reference":
        module = ember.reference(model, input_shapes=_shapes(args.input_shape))
    else:
        module = ember.compile(model, target=args.target, input_shapes=_shapes(args.input_shape),
                               records=args.records)
    feeds = module.random_feeds(seed=args.seed)
    feeds.update(_feeds(args.input))
    times = []
    for _ in range(max(1, args.repeat)):
        start = time.perf_counter()
        outputs = module.run(feeds)
        times.append(time.perf_counter() - start)
    print(f"model: {args.model}  (executor: {args.executor})")
    if args.executor == "compiled":
        stats = module.stats()
        print(f"compiled for {stats['target']} in {stats['compile_s']:.2f} s: {stats['kernels']} kernels, "
              f"arena {stats['arena_bytes'] / 2**20:.1f} MiB, weights {stats['weight_bytes'] / 2**20:.1f} MiB")
    print("inputs:")
    for name in module.input_names:
        print(_describe(name, np.asarray(feeds[name])))
    print("outputs:")
    for name, out in zip(module.output_names, outputs):
        print(_describe(name, out))
    print(f"time: median {statistics.median(times) * 1e3:.3f} ms, min {min(times) * 1e3:.3f} ms "
          f"over {len(times)} run(s)")
    return 0


def cmd_bench(args) -> int:
    import json

    from ember.bench import bench, format_table

    compare = [c for c in args.compare.split(",") if c]
    report = bench(args.model, compare=compare, threads=args.threads, repeat=args.repeat, target=args.target,
                   input_shapes=_shapes(args.input_shape), records=args.records, steady=args.steady,
                   progress=lambda msg: print(f"\r{msg}", end="", file=sys.stderr, flush=True))
    print(file=sys.stderr)
    print(format_table(report))
    if args.profile:
        from ember.bench import format_profile, kernel_profile

        print()
        print(format_profile(kernel_profile(args.model, threads=args.threads, repeat=args.repeat,
                                            target=args.target, input_shapes=_shapes(args.input_shape))))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


def cmd_ir(args) -> int:
    import ember
    from ember.examples import resolve_model
    from ember.ir import print_graph

    graph = ember.load_graph(resolve_model(args.model), input_shapes=_shapes(args.input_shape))
    if args.after:
        from ember.codegen.target import Target
        from ember.passes import PassContext, pipeline

        passes = pipeline(args.opt_level, Target.host())  # the passes `ember run` would run here
        names = [p.name for p in passes]
        if args.after not in names:
            raise EmberError(f"no pass {args.after!r} at opt level {args.opt_level}; the pipeline is "
                             f"{', '.join(names) or '(empty)'}")
        graph = PassContext(passes=passes[: names.index(args.after) + 1]).run(graph)
    sys.stdout.write(print_graph(graph, elide_constants=not args.full_constants))
    return 0


def cmd_tune(args) -> int:
    import ember
    from ember.autotune.confirm import ConfirmOptions
    from ember.autotune.measure import MeasureOptions
    from ember.examples import resolve_model

    executor, client = None, None
    if args.dask:
        from dask.distributed import Client

        client = Client(args.dask)
        executor = client.get_executor()
    try:
        summary = ember.tune(resolve_model(args.model), records=args.records, trials_per_task=args.trials,
                             tuner=args.tuner, jobs=args.jobs, executor=executor, target=args.target,
                             batch_size=args.batch_size, early_stopping=args.early_stopping, seed=args.seed,
                             plot=args.plot, input_shapes=_shapes(args.input_shape),
                             options=MeasureOptions(timeout_s=args.timeout, flush_cache=args.flush_cache),
                             confirm=(ConfirmOptions(top=args.confirm, where=args.confirm_in) if args.confirm > 0
                                      else args.confirm))
    finally:
        if client is not None:
            client.close()
    if summary.tasks:
        print(summary.table())
    else:
        print("no tunable kernels in this model")
    print(f"records: {args.records}" + (f", plot: {args.plot}" if args.plot else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ember", description="ember: an ML compiler for CPUs")
    sub = parser.add_subparsers(dest="command", required=True)

    def model_command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("model", help="an .onnx file, an IR text file, or light:NAME")
        p.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,...",
                       help="bind the symbolic dims of an input")
        return p

    run = model_command("run", "run a model and print its outputs and timing")
    run.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                     help="an input from a .npy file (random inputs of the declared shape otherwise)")
    run.add_argument("--repeat", type=int, default=3, help="timed runs (default 3)")
    run.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    run.add_argument("--executor", choices=("compiled", "reference"), default="compiled",
                     help="native code (default) or the numpy reference executor")
    run.add_argument("--target", default="host", help="host (default), x86-64, x86-64-v2, x86-64-v3, x86-64-v4")
    run.add_argument("--records", metavar="R", help="apply the best configs of this tuning-records file")
    run.set_defaults(func=cmd_run)

    bench = model_command("bench", "time ember against the reference and onnxruntime (one process, interleaved)")
    bench.add_argument("--compare", default="reference,onnxruntime",
                       help="comma-separated runners to compare with (reference, onnxruntime; untuned with --records)")
    bench.add_argument("--threads", type=int, default=1, help="threads for onnxruntime (and ember)")
    bench.add_argument("--repeat", type=int, default=10, help="timed rounds (default 10)")
    bench.add_argument("--target", default="host", help="compilation target")
    bench.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    bench.add_argument("--profile", action="store_true", help="also print the time of each kernel (a profiling build)")
    bench.add_argument("--records", metavar="R", help="compile with the best configs of this tuning-records file")
    bench.add_argument("--steady", action="store_true",
                       help="time back-to-back calls (a stream of requests) instead of one call after each pause")
    bench.set_defaults(func=cmd_bench)

    ir = model_command("ir", "print a model's IR text")
    ir.add_argument("--full-constants", action="store_true", help="print large constants in full (base64)")
    ir.add_argument("--after", metavar="PASS", help="print the IR after this pass of the pipeline")
    ir.add_argument("--opt-level", type=int, default=3, help="the pipeline --after refers to (default 3)")
    ir.set_defaults(func=cmd_ir)

    tune = model_command("tune", "tune the schedule knobs of every kernel, appending to a records file")
    tune.add_argument("--records", required=True, metavar="R",
                      help="the JSON-lines records file (appended to; a run resumes from it)")
    tune.add_argument("--trials", type=int, default=200, metavar="N", help="measured configs per task (default 200)")
    tune.add_argument("--jobs", type=int, default=1, metavar="N", help="candidates measured at once (default 1)")
    tune.add_argument("--tuner", default="xgb", help="xgb (default), random, grid, beam; xgb-rank, xgb-knob, ...")
    tune.add_argument("--target", default="host", help="compilation target (default host)")
    tune.add_argument("--batch-size", type=int, default=8, metavar="N", help="configs per measured batch")
    tune.add_argument("--early-stopping", type=int, metavar="N", help="stop a task after N trials without gain")
    tune.add_argument("--timeout", type=float, default=20.0, metavar="S", help="seconds per candidate (default 20)")
    tune.add_argument("--seed", type=int, default=0, help="seed of the tuner")
    tune.add_argument("--confirm", type=int, default=4, metavar="K",
                      help="re-measure each task's K best configs and the default, interleaved, and apply the "
                           "confirmed winner (default 4; 0 applies the fastest search measurement)")
    tune.add_argument("--confirm-in", choices=("model", "kernel"), default="model",
                      help="where the confirm phase times the candidates: inside the model, every task at once "
                           "(default), or each kernel alone")
    tune.add_argument("--flush-cache", action="store_true",
                      help="time each call after flushing the kernel's weights from the caches, as in a model")
    tune.add_argument("--plot", metavar="PNG", help="save the best GFLOP/s so far against trials per task")
    tune.add_argument("--dask", metavar="ADDRESS", help="measure on a Dask cluster (scheduler address)")
    tune.set_defaults(func=cmd_tune)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EmberError as err:
        print(f"ember: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
