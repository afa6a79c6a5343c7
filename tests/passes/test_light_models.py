"""The whole pipeline at every opt level on real models (random weights), through the reference executor."""

from collections import Counter

import numpy as np
import pytest

from ember.frontend import import_onnx
from ember.ir import graphs_equal
from ember.passes import PassContext
from ember.runtime.reference import ReferenceModule
from tests.helpers import assert_roundtrip
from tests.models import light_model, randomize_weights, strip_final_softmax

MODELS = ["squeezenet", "resnet50", "shufflenet", "inception_v2"]


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    """(name, graph, feeds, reference outputs, graphs checked so far) of one light model with random weights."""
    graph = import_onnx(strip_final_softmax(randomize_weights(light_model(request.param))))
    reference = ReferenceModule(graph)
    feeds = reference.random_feeds(0)
    return request.param, graph, feeds, reference.run(feeds), [graph]


@pytest.mark.parametrize("opt_level", [0, 1, 2, 3])
def test_pipeline_keeps_outputs(model, opt_level):
    name, graph, feeds, expected, checked = model
    ctx = PassContext(opt_level=opt_level, verify=True)
    optimized = ctx.run(graph)
    assert [(v.name, v.type) for v in optimized.outputs] == [(v.name, v.type) for v in graph.outputs]
    assert [(v.name, v.type) for v in optimized.inputs] == [(v.name, v.type) for v in graph.inputs]
    # Running the reference is the slow part: a graph equal to one already checked computes the same.
    if not any(graphs_equal(optimized, other) for other in checked):
        for got, want in zip(ReferenceModule(optimized).run(feeds), expected):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
        checked.append(optimized)
    if opt_level == 0:
        assert ctx.stats == [] and graphs_equal(optimized, graph)
    if opt_level == 2:  # (later stages of opt level 3 may regroup nodes)
        ops = Counter(n.op for n in optimized.nodes)
        # Every BatchNormalization of these models follows a Conv (inception_v2 adds a Mul and an Add).
        assert ops["BatchNormalization"] == 0 and ops["Mul"] == 0 and ops["Add"] == 0
        assert ops["Conv"] == Counter(n.op for n in graph.nodes)["Conv"]
    if name == "resnet50" and opt_level >= 2:
        after_conv = [n for n in graph.nodes if n.op == "BatchNormalization" and n.inputs[0].producer.op == "Conv"]
        assert len(after_conv) == 53
        record = next(r for r in ctx.stats if r["name"] == "fold_batch_norm")
        assert record["rewrites"] == 53 and record["nodes_before"] - record["nodes_after"] == 53
    if name == "squeezenet" and opt_level == 3:
        assert_roundtrip(optimized)
