"""The Fused op: a group of nodes compiled as one kernel.

The fusion pass (``ember.passes.fuse_ops``) replaces a group of nodes by one
``Fused`` node whose ``body`` attribute is the group as IR text: a graph whose
inputs are the node's inputs (every constant of the group included, so the
body holds only structure). Everything about the op follows from its body:

* inference and the reference evaluate the body's nodes in order;
* the compute chains the body ops' compute definitions, each reading the
  tensors of the ones before it;
* the schedule is the schedule of the group's anchor (its convolution, matrix
  product or reduction), grown to the whole group, with every other plain
  compute stage inlined into its consumers, so the group's intermediates never
  reach memory.

::

    %y: f32[1,8,4,4] = Fused(%x, %w, %b) {body="graph g(%x: f32[...], ...) {
        %c: ... = Conv(%x, %w, %b) ...
        %y: ... = Relu(%c)
        return %y }"}
"""

from __future__ import annotations

from functools import lru_cache

from .compute import annotate_pointwise
from .registry import Fusion, Str, define

# fusion classes in order of how much an op's own schedule matters
_ANCHOR_RANK = {Fusion.OUT_FUSABLE: 3, Fusion.OPAQUE: 2, Fusion.REDUCTION: 1}


@lru_cache(maxsize=4096)
def _body(text: str):
    from ..text import parse

    return parse(text)


def body_graph(attrs: dict):
    """The group, parsed (cached by its text: identical groups share one graph)."""
    return _body(attrs["body"])


def _infer(types, attrs):
    from ..errors import ShapeError

    body = body_graph(attrs)
    if len(types) != len(body.inputs):
        raise ShapeError(f"takes {len(body.inputs)} inputs (its body's), got {len(types)}")
    for i, (t, v) in enumerate(zip(types, body.inputs)):
        if t != v.type:
            raise ShapeError(f"input {i} is {t}, the body's %{v.name} is {v.type}")
    return [v.type for v in body.outputs]


def _reference(arrays, attrs):
    from ..evaluate import evaluate

    return evaluate(body_graph(attrs), arrays)


def _compute(inputs, attrs, outputs):
    body = body_graph(attrs)
    env = {id(v): t for v, t in zip(body.inputs, inputs)}
    plan = []
    for node in body.nodes:
        outs = node.opdef.compute([env[id(v)] for v in node.inputs], node.attrs, [v.type for v in node.outputs])
        plan.append((node.opdef, list(outs)))
        env.update({id(v): t for v, t in zip(node.outputs, outs)})
    results = [env[id(v)] for v in body.outputs]
    results[0].fused_plan = plan  # read by _schedule
    return results


def anchor_index(opdefs) -> int:
    """The position of a group's anchor among its ops' definitions (in body order): the last
    op of the highest fusion class (out-fusable, then opaque, then reduction, then the rest)."""
    return max(range(len(opdefs)), key=lambda i: (_ANCHOR_RANK.get(opdefs[i].fusion, 0), i))


def anchor_node(attrs: dict):
    """The body node whose schedule a Fused node with ``attrs`` uses (see :func:`anchor_index`)."""
    nodes = body_graph(attrs).nodes
    return nodes[anchor_index([n.opdef for n in nodes])]


def _schedule(outputs, target, knobs=None):
    from ..loops.schedule import create_schedule

    plan = outputs[0].fused_plan
    opdef, anchor_outputs = plan[anchor_index([opdef for opdef, _ in plan])]
    if opdef.schedule is not None:
        schedule = opdef.schedule(anchor_outputs, target, knobs)
        schedule.extend(outputs)
    else:
        schedule = create_schedule(outputs)
    anchor_stages = {id(t) for t in anchor_outputs}
    for stage in schedule.stages:
        is_output = any(stage.tensor is t for t in outputs)
        mine = any(stage.tensor is t for _, outs in plan for t in outs) and id(stage.tensor) not in anchor_stages
        wants_inline = stage.op.tag == "inline" if not stage.is_extern else False
        if is_output or stage.is_extern or stage.op.reduce_axes or stage.attach is not None:
            continue
        if not (mine or wants_inline or id(stage.tensor) in anchor_stages):
            continue
        if all(not c.is_extern and c.attach is None for c in schedule.consumers(stage.tensor)):
            stage.compute_inline()
    for t in outputs:
        stage = schedule[t]
        if not (stage.is_extern or stage.relations or stage.annotations or stage.op.reduce_axes):
            annotate_pointwise(stage)  # a follower became the kernel's output: loop over it as they do
    return schedule


define(
    "Fused",
    infer=_infer,
    reference=_reference,
    compute=_compute,
    schedule=_schedule,
    attrs={"body": Str()},
    inputs=(0, None),
    fusion=Fusion.OPAQUE,
    doc="A group of nodes compiled as one kernel; body is the group as IR text.",
)
