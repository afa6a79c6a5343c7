"""The public entry points, wiring the frontends, the IR and the runtime together."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from ember.ir import Graph, verify
from ember.ir.errors import ModelError
from ember.runtime import ReferenceModule


def load_graph(model: Any, input_shapes: Mapping[str, Sequence[int]] | None = None,
               input_values: Mapping[str, Any] | None = None) -> Graph:
    """Import ``model`` into a verified ember graph.

    ``model`` is a path to an ``.onnx`` file, an ``onnx.ModelProto``, ONNX bytes,
    an IR text file (``.ember``/``.ir``) or an :class:`ember.ir.Graph`.
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
    type_name = type(model).__module__.split(".")[0]
    if type_name == "torch":
        raise ModelError("PyTorch modules are not supported yet: export to ONNX first "
                         "(torch.onnx.export) and pass the .onnx file")
    from ember.frontend import import_onnx

    return verify(import_onnx(model, input_shapes, input_values))


def reference(model: Any, input_shapes: Mapping[str, Sequence[int]] | None = None,
              input_values: Mapping[str, Any] | None = None) -> ReferenceModule:
    """A module that runs ``model`` with the numpy reference implementations of its ops.

    >>> ref = ember.reference("model.onnx")      # doctest: +SKIP
    >>> outputs = ref.run({"x": x})              # doctest: +SKIP
    """
    return ReferenceModule(load_graph(model, input_shapes, input_values))


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

    >>> mod = ember.compile("model.onnx")            # doctest: +SKIP
    >>> (y,) = mod.run({"x": x})                      # doctest: +SKIP
    >>> mod.stats()["kernels"]                        # doctest: +SKIP
    """
    from ember.codegen.target import as_target
    from ember.passes import PassContext
    from ember.runtime.compiled import CompiledModule

    graph = load_graph(model, input_shapes, input_values)
    context = PassContext(opt_level=opt_level, passes=passes)
    optimized = context.run(graph)
    return CompiledModule(optimized, as_target(target), opt_level=opt_level, passes=context.stats,
                          num_threads=num_threads, profile=profile)
