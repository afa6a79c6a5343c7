"""PyTorch import: ``nn.Module`` + example inputs → :class:`ember.ir.Graph`, through ``torch.export``.

The module is exported with ``torch.export.export(module.eval(), example_inputs)``
and decomposed to the core ATen opset (``run_decompositions()``); every ATen op
of the result is mapped onto registry ops by the converters of
:mod:`ember.frontend.torch_ops` (one small function per op family, looked up by
overload name such as ``aten.convolution.default``).

* Parameters, buffers and lifted tensor constants become graph constants named
  by their module path (``layer1.0.conv1.weight``).
* Graph inputs are the forward() arguments' tensors, named as torch.export names
  them (the argument names: ``x``; ``x_0``, ``x_1`` for a tuple argument).
* Outputs are the forward() result flattened in pytree order (a tuple in order,
  a dict in insertion order, nested containers depth first), named after their
  key path: a single tensor is ``output``, a tuple's items ``output.0``,
  ``output.1``, a dict's items their keys (``logits``), nested ones joined with
  dots (``feats.0``). :func:`output_spec` gives the pytree spec to rebuild the
  structure (``torch.utils._pytree.tree_unflatten(outputs, spec)``).
* Every unsupported op of the model is reported in one
  :class:`UnsupportedOpError`, each with the module path it came from.

torch is an optional dependency: importing this module imports torch.
"""

from __future__ import annotations

import operator
import re
from typing import Any, Sequence

import numpy as np
import torch

from ember.ir import Graph, TensorType, Value
from ember.ir.errors import EmberError, ModelError, UnsupportedOpError
from ember.ir.ops import get_op

from .torch_context import NodeContext, ember_dtype
from .torch_ops import CONVERTERS, IGNORED, NO_FOLD

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_./\-]")


def export_program(module: torch.nn.Module, example_inputs: Any) -> torch.export.ExportedProgram:
    """``module`` (put in eval mode) exported with ``example_inputs`` and decomposed to core ATen."""
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if not isinstance(example_inputs, (tuple, list)):
        raise ModelError(f"example_inputs must be a tuple of tensors, not {type(example_inputs).__name__}")
    try:
        exported = torch.export.export(module.eval(), tuple(example_inputs))
    except Exception as err:  # torch raises many kinds (Unsupported, UserError, RuntimeError)
        raise ModelError(f"torch.export could not export {type(module).__name__}: {type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}") from err
    return exported.run_decompositions()


def output_spec(module: torch.nn.Module | torch.export.ExportedProgram, example_inputs: Any = None):
    """The pytree spec of the module's outputs: ``tree_unflatten(mod.run(feeds), spec)`` rebuilds them."""
    program = module if isinstance(module, torch.export.ExportedProgram) else export_program(module, example_inputs)
    return program.call_spec.out_spec


def import_torch(module: torch.nn.Module | torch.export.ExportedProgram, example_inputs: Any = None) -> Graph:
    """Import a torch module (or an already exported program) into an ember graph.

    >>> graph = import_torch(model, (torch.randn(1, 3, 32, 32),))   # doctest: +SKIP

    Raises :class:`UnsupportedOpError` listing every unsupported ATen op with
    the module paths it came from, and :class:`ModelError` when torch.export
    fails.
    """
    if isinstance(module, torch.export.ExportedProgram):
        program = module
    else:
        if example_inputs is None:
            raise ModelError("a torch module needs example_inputs=(tensor, ...) to be exported")
        program = export_program(module, example_inputs)
    return _Importer(program).run()


def module_path(node: torch.fx.Node) -> str:
    """The path of the innermost module a node came from (``layer3.0.conv1``), or ``""`` at top level."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = str(list(stack.values())[-1][0])
    path = re.sub(r"\[(\d+)\]", r".\1", path.replace("L['self'].", "").replace("L['self']", ""))
    return re.sub(r"\[['\"]([^'\"]+)['\"]\]", r".\1", path).strip(".")


def _output_names(spec, count: int) -> list[str]:
    """Output names from the key paths of the output pytree (see the module docstring)."""
    from torch.utils import _pytree as pytree

    leaves, _ = pytree.tree_flatten_with_path(pytree.tree_unflatten(list(range(count)), spec))
    names = []
    for path, _leaf in leaves:
        parts = [str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path]
        if not parts:
            names.append("output")
            continue
        if isinstance(path[0], pytree.SequenceKey):
            parts.insert(0, "output")
        names.append(_NAME_CHARS.sub("_", ".".join(parts)))
    return names


class _Failed:
    """Marks the result of a node that could not be converted (its users are skipped)."""


FAILED = _Failed()


class _Importer:
    def __init__(self, program: torch.export.ExportedProgram):
        self.program = program
        self.graph = Graph("main")
        self.env: dict[torch.fx.Node, Any] = {}
        self.unsupported: dict[str, dict[str, list[str]]] = {}  # op -> reason -> module paths

    def run(self) -> Graph:
        fx_graph = self.program.graph_module.graph
        for node in fx_graph.nodes:
            if node.op == "placeholder":
                self.env[node] = self._placeholder(node)
            elif node.op == "call_function":
                self.env[node] = self._call(node)
            elif node.op == "output":
                self._set_outputs(node)
            else:
                self._refuse(node, f"fx {node.op} node", "control flow and submodule calls are not supported")
                self.env[node] = FAILED
        self._raise_unsupported()
        self._drop_unused_nodes()
        return self.graph

    def _drop_unused_nodes(self) -> None:
        """Remove nodes no output depends on (e.g. an expand that a matmul converter read through)."""
        live = {id(v) for v in self.graph.outputs}
        dead = []
        for node in reversed(self.graph.nodes):
            if any(id(v) in live for v in node.outputs):
                live.update(id(v) for v in node.inputs)
            else:
                dead.append(node)
        self.graph.remove_nodes(dead)

    # ------------------------------------------------------------ inputs
    def _placeholder(self, node: torch.fx.Node) -> Any:
        sig = self.program.graph_signature
        target = (sig.inputs_to_parameters.get(node.name) or sig.inputs_to_buffers.get(node.name)
                  or sig.inputs_to_lifted_tensor_constants.get(node.name))
        if target is not None:
            tensor = self.program.state_dict.get(target)
            if tensor is None:
                tensor = self.program.constants[target]
            return self.graph.add_constant(_to_numpy(tensor), self.graph.fresh_name(_NAME_CHARS.sub("_", target)))
        meta = node.meta.get("val")
        if not isinstance(meta, torch.Tensor):
            return meta  # a non-tensor input torch.export specialized on (an int, a bool)
        return self.graph.add_input(node.name, TensorType(ember_dtype(meta.dtype, node.name), tuple(meta.shape)))

    # ------------------------------------------------------------ ops
    def _call(self, node: torch.fx.Node) -> Any:
        name = str(node.target)
        if name in IGNORED:
            return None
        convert = CONVERTERS.get(name)
        if convert is None and node.target is not operator.getitem:
            return self._refuse(node, name, "no converter for this ATen op")
        if any(self.env.get(arg) is FAILED for arg in node.all_input_nodes):
            return FAILED  # an input already failed: only missing converters are reported past it
        if node.target is operator.getitem:
            return self._getitem(node)
        ctx = NodeContext(self, node)
        try:
            return convert(ctx)
        except UnsupportedOpError as err:
            return self._refuse(node, name, err.reason)
        except EmberError as err:
            raise err.at(node=node.name, op=name) from None

    def _getitem(self, node: torch.fx.Node) -> Any:
        source, index = node.args
        value = self.env[source][index]
        if value is None:
            return self._refuse(node, str(source.target), f"output {index} is not supported")
        return value

    def _refuse(self, node: torch.fx.Node, op: str, reason: str) -> _Failed:
        paths = self.unsupported.setdefault(op, {}).setdefault(reason, [])
        paths.append(module_path(node) or f"<top level: {node.name}>")
        return FAILED

    def _raise_unsupported(self) -> None:
        if not self.unsupported:
            return
        lines = []
        for op, reasons in sorted(self.unsupported.items()):
            for reason, paths in reasons.items():
                shown = ", ".join(dict.fromkeys(paths[:8])) + (", ..." if len(paths) > 8 else "")
                lines.append(f"  {op} in {shown}: {reason}")
        count = len(self.unsupported)
        raise UnsupportedOpError(f"the model uses {count} unsupported ATen op{'s' if count > 1 else ''}:\n"
                                 + "\n".join(lines))

    def emit(self, op: str, inputs: Sequence[Value], attrs: dict, hint: str) -> list[Value]:
        """Add a node named after ``hint``, or fold it into constants when every input is constant."""
        opdef = get_op(op)
        norm = opdef.normalize_attrs(attrs)
        if inputs and all(v.is_constant for v in inputs) and op not in NO_FOLD:
            arrays = opdef.run_reference([v.data for v in inputs], norm)
            return [self.graph.add_constant(np.asarray(a), self.graph.fresh_name(hint)) for a in arrays]
        count = len(opdef.infer_types([v.type for v in inputs], norm))
        names = [self.graph.fresh_name(hint if i == 0 else f"{hint}.{i}") for i in range(count)]
        return self.graph.add_node(op, inputs, norm, name=hint, output_names=names).outputs

    # ------------------------------------------------------------ outputs
    def _set_outputs(self, node: torch.fx.Node) -> None:
        specs = self.program.graph_signature.output_specs
        mutated = [spec.target for spec in specs if spec.kind != torch.export.graph_signature.OutputKind.USER_OUTPUT]
        if mutated:
            self._refuse(node, "buffer or input mutation", f"forward() updates {', '.join(map(str, mutated))} in "
                         "place; ember compiles pure functions only")
            return
        results = [self.env.get(arg) if isinstance(arg, torch.fx.Node) else arg for arg in node.args[0]]
        if any(r is FAILED for r in results):
            return
        names = _output_names(self.program.call_spec.out_spec, len(results))
        outputs: list[Value] = []
        for name, value in zip(names, results):
            if not isinstance(value, Value):
                raise UnsupportedOpError(f"output {name!r} is a {type(value).__name__}, not a tensor")
            if value.producer is None or any(v is value for v in outputs):
                # inputs, constants and repeated outputs get their own value through an Identity
                value = self.graph.add_node("Identity", [value], output_names=[self.graph.fresh_name(name)]).output
            elif value.name != name:
                self.graph.rename(value, self.graph.fresh_name(name))
            outputs.append(value)
        self.graph.set_outputs(outputs)


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().contiguous().numpy().copy()
