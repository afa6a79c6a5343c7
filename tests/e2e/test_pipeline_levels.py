"""The pass pipeline of every opt level keeps the models' answers.

The graph each opt level produces (for this CPU, so the blocked layout and
fusion apply at level 3) runs in the reference executor, whose ops are the
ones checked against onnxruntime: this checks the passes without the cost of
native code. Compiled code is checked at opt level 0 here and at the default
level 3 in the other end-to-end tests. The light models take a minute each:
two run by default, all nine with ``-m slow``.
"""

import numpy as np
import pytest

import ember
from ember.api import optimized_graph
from tests.e2e.test_light_models import ort_run
from tests.e2e.test_onnx_backend_cases import CASES, check_case
from tests.models import LIGHT_MODELS, light_model, randomize_weights, strip_final_softmax

LEVELS = (1, 2, 3)


def _optimized_reference(opt_level):
    def build(model, **options):
        graph, _ = optimized_graph(model, opt_level=opt_level, target="host", **options)
        return ember.reference(graph)
    return build


@pytest.mark.parametrize("opt_level", LEVELS)
@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_backend_case_after_pipeline(case, opt_level):
    check_case(case, _optimized_reference(opt_level))


# two models in the default run (residual adds, BatchNorm, concats, pools); all nine under -m slow
QUICK = ("squeezenet", "resnet50")


@pytest.mark.parametrize("name", [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow) for n in LIGHT_MODELS])
def test_light_model_after_every_pipeline(name):
    model = strip_final_softmax(randomize_weights(light_model(name)))
    graph = ember.load_graph(model)
    feeds = ember.reference(graph).random_feeds(seed=3)
    (expected,) = ort_run(model, feeds)
    scale = np.abs(expected).max()
    for opt_level in LEVELS:
        (actual,) = _optimized_reference(opt_level)(graph).run(feeds)
        np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=1e-4 * scale, err_msg=f"opt_level {opt_level}")
    (actual,) = ember.compile(graph, opt_level=0).run(feeds)
    np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=1e-4 * scale, err_msg="compiled at opt_level 0")
