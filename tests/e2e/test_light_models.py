"""The nine light models of the onnx wheel, in the reference executor.

Their constant weights make the expected outputs uniform softmaxes, so each
model is also run with random weights and compared against onnxruntime on the
logits before the final Softmax.
"""

import numpy as np
import pytest

import ember
from tests.helpers import assert_roundtrip
from tests.models import LIGHT_MODELS, expected_light_output, light_model, randomize_weights, strip_final_softmax


def ort_run(model, feeds):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_matches_expected_output(name):
    ref = ember.reference(light_model(name))
    (out,) = ref.run(ref.random_feeds())
    expected = expected_light_output(name)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_random_weights_match_onnxruntime(name):
    model = strip_final_softmax(randomize_weights(light_model(name)))
    graph = ember.load_graph(model)
    ref = ember.reference(graph)
    feeds = ref.random_feeds(seed=1)
    (actual,) = ref.run(feeds)
    (expected,) = ort_run(model, feeds)
    assert actual.shape == expected.shape
    scale = np.abs(expected).max()
    assert scale > 1e-3, "random weights should give non-trivial logits"
    assert np.std(expected) > 1e-4 * scale, "logits should not be uniform"
    np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=1e-4 * scale)


@pytest.mark.parametrize("name", ["squeezenet", "resnet50"])
def test_imported_ir_roundtrips(name):
    assert_roundtrip(ember.load_graph(light_model(name)))
