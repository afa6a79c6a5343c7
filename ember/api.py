"""The public entry points, wiring the frontends, the IR and the runtime together."""

from __future__ import annotations

import os
import sys
from typing import Any, Mapping, Sequence

from ember.ir import Graph, verify
from ember.ir.errors import ModelError
from ember.runtime import ReferenceModule


def load_graph(model: Any, input_shapes: Mapping[str, Sequence[int]] | None = None,
               input_values: Mapping[str, Any] | None = None, example_inputs: Any = None) -> Graph:
    """Import ``model`` into a verified ember graph.

    ``model`` is a path to an ``.onnx`` file, an ``onnx.ModelProto``, ONNX bytes,
    an IR text file (``.ember``/``.ir``), an :class:`ember.ir.Graph`, or a
    ``torch.nn.Module`` (exported with ``example_inputs``, a tuple of tensors;
    see :mod:`ember.frontend.torch`) or ``torch.export.ExportedProgram``.
    ``input_shapes`` binds symbolic input dimensions; ``input_values`` fixes
    inputs to constant values (for inputs that feed shapes, axes or pads).
    """
    if isinstance(model, Graph):
        return verify(model)
    if isinstance(model, (str, os.PathLike)) and str(model).endswith((".ember", ".ir")):
        from ember.ir import parse

        try:
            text = open(model).read()
        except OSError as err:
            raise ModelError(f"cannot read {model}: {err}") from None
        return verify(parse(text))
    if is_torch_model(model):
        if input_shapes or input_values:
            raise ModelError("input_shapes and input_values do not apply to a torch module: "
                             "its shapes come from example_inputs")
        from ember.frontend.torch import import_torch

        return verify(import_torch(model, example_inputs))
    from ember.frontend import import_onnx

    return verify(import_onnx(model, input_shapes, input_values))


def is_torch_model(model: Any) -> bool:
    """Whether ``model`` is a ``torch.nn.Module`` or an exported program (never imports torch)."""
    torch, export = sys.modules.get("torch"), sys.modules.get("torch.export")
    return (torch is not None and isinstance(model, torch.nn.Module)) or (
        export is not None and isinstance(model, export.ExportedProgram))


def reference(model: Any, input_shapes: Mapping[str, Sequence[int]] | None = None,
              input_values: Mapping[str, Any] | None = None, example_inputs: Any = None) -> ReferenceModule:
    """A module that runs ``model`` with the numpy reference implementations of its ops.

    >>> ref = ember.reference("model.onnx")      # doctest: +SKIP
    >>> outputs = ref.run({"x": x})              # doctest: +SKIP
    >>> ref = ember.reference(torch_module, example_inputs=(x,))   # doctest: +SKIP
    """
    return ReferenceModule(load_graph(model, input_shapes, input_values, example_inputs))


def compile(model: Any, *, target: Any = "host", opt_level: int = 3, records: Any = None,
            num_threads: int | None = None, example_inputs: Any = None,
            input_shapes: Mapping[str, Sequence[int]] | None = None,
            input_values: Mapping[str, Any] | None = None, passes: Sequence[Any] | None = None,
            profile: bool = False):
    """Compile ``model`` to native code for ``target``; returns a :class:`CompiledModule`.

    ``model`` is anything :func:`load_graph` takes. ``target`` is ``"host"``,
    a named target (``"x86-64"``, ``"x86-64-v3"``, ``"x86-64-v4"``) or a
    :class:`ember.codegen.Target`. ``opt_level`` picks the graph pass pipeline
    (0 runs none, 3 all; see :mod:`ember.passes`); ``passes`` replaces it with
    a list of your own. Every op of the model must lower; otherwise a
    :class:`CompileError` lists the ops that cannot. ``num_threads`` caps the
    threads parallel loops run on (a persistent native pool shared by all
    modules); ``None`` means every core this process may use, 1 no pool.
    ``profile=True`` times every kernel call (see :meth:`CompiledModule.profile`).
    ``records`` is a tuning-records file (see :func:`tune`): each kernel whose
    workload has a record for this target gets the best recorded config,
    the others their defaults. A ``torch.nn.Module`` is exported with
    ``example_inputs`` (a tuple of tensors); its outputs come back flat, in
    pytree order (docs/torch.md).

    >>> mod = ember.compile("model.onnx")            # doctest: +SKIP
    >>> (y,) = mod.run({"x": x})                      # doctest: +SKIP
    >>> mod.stats()["kernels"]                        # doctest: +SKIP
    """
    from ember.codegen.target import as_target
    from ember.runtime.compiled import CompiledModule

    target = as_target(target)
    if is_torch_model(model):
        model = load_graph(model, example_inputs=example_inputs)
    optimized, context = optimized_graph(model, opt_level=opt_level, passes=passes, input_shapes=input_shapes,
                                         input_values=input_values, target=target)
    configs = None
    if records is not None:
        from ember.autotune.records import tuned_configs

        configs = tuned_configs(records, target)
    return CompiledModule(optimized, target, opt_level=opt_level, passes=context.stats,
                          num_threads=num_threads, profile=profile, configs=configs)


def tune(model: Any, *, records: str | os.PathLike, trials_per_task: int = 200, example_inputs: Any = None,
         **options):
    """Tune the schedule knobs of every tunable kernel of ``model``, appending each measured
    candidate to the records file ``records`` (resuming from what it holds); returns a
    :class:`ember.autotune.tune.TuneSummary` (``.table()``, ``.plot(path)``).

    Options (see :func:`ember.autotune.tune.tune`): ``tuner`` ("xgb", "random",
    "grid", "beam"), ``jobs`` (candidates measured at once), ``executor`` (any
    ``concurrent.futures.Executor``, a Dask client's ``get_executor()`` included),
    ``target``, ``batch_size``, ``early_stopping``, ``seed``, ``progress``, ``plot``,
    ``confirm`` (each task's best configs re-measured with the default, interleaved, to
    choose the one applied: inside the model, every task at once, by default; default 4,
    0 turns it off, ``ConfirmOptions(where="kernel")`` measures each kernel alone).
    Compile with the result by ``ember.compile(model, records=records)``. A
    ``torch.nn.Module`` is exported with ``example_inputs`` as in :func:`compile`.

    >>> summary = ember.tune("model.onnx", records="tune.jsonl", trials_per_task=64)   # doctest: +SKIP
    >>> print(summary.table())                                                          # doctest: +SKIP
    """
    from ember.autotune.tune import tune as tune_model

    if is_torch_model(model):
        model = load_graph(model, example_inputs=example_inputs)
    return tune_model(model, records=records, trials_per_task=trials_per_task, **options)


def optimized_graph(model: Any, *, opt_level: int = 3, passes: Sequence[Any] | None = None,
                    input_shapes: Mapping[str, Sequence[int]] | None = None,
                    input_values: Mapping[str, Any] | None = None, target: Any = None):
    """``model`` imported (:func:`load_graph`) and run through the pass pipeline of ``opt_level``
    (or ``passes``) for ``target`` (a name or ``ember.codegen.Target``; ``None`` skips the
    target-dependent rewrites): the graph :func:`compile` lowers. Returns the graph and the pass context."""
    from ember.codegen.target import as_target
    from ember.passes import PassContext

    graph = load_graph(model, input_shapes, input_values)
    target = as_target(target) if target is not None else None
    context = PassContext(opt_level=opt_level, passes=passes, target=target)
    return context.run(graph), context
