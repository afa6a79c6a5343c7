"""The nine light models compiled to native code, with random weights, against onnxruntime.

Each model is compiled for this CPU and for plain x86-64 (SSE2 only) and both
are compared with onnxruntime on the logits before the final Softmax.
"""

import numpy as np
import pytest

import ember
from tests.e2e.test_light_models import ort_run
from tests.models import LIGHT_MODELS, expected_light_output, light_model, randomize_weights, strip_final_softmax
from tests.ops.harness import COMPILE_TARGETS


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_compiled_matches_onnxruntime(name):
    model = strip_final_softmax(randomize_weights(light_model(name)))
    graph = ember.load_graph(model)
    ref = ember.reference(graph)
    feeds = ref.random_feeds(seed=2)
    (expected,) = ort_run(model, feeds)
    scale = np.abs(expected).max()
    for target in COMPILE_TARGETS:
        module = ember.compile(graph, target=target)
        (actual,) = module.run(feeds)
        assert actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=1e-4 * scale, err_msg=target)


@pytest.mark.parametrize("name", ["squeezenet", "resnet50"])
def test_compiled_matches_expected_output(name):
    module = ember.compile(light_model(name))
    (out,) = module.run(module.random_feeds())
    np.testing.assert_allclose(out, expected_light_output(name), rtol=1e-3, atol=1e-6)
    stats = module.stats()
    assert stats["kernels"] >= len(module.graph.nodes)
    assert stats["weight_bytes"] > 0 and stats["arena_bytes"] > 0
