"""PoolNCHWc: its reference is the plain pool's, and it compiles to the same values on each target."""

from __future__ import annotations

import numpy as np
import pytest
from ember.ir.ops import get_op
from ember.ir.ops.layout import from_blocked, to_blocked
from ember.runtime.reference import ReferenceModule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ops.harness import COMPILE_TARGETS
from tests.ops.test_conv_blocked_compiled import check_compiled_graph, one_node

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def blocked_pools(draw):
    """(pool, attrs, x NCHW, block) of a 2-D max or average pool."""
    pool = draw(st.sampled_from(["MaxPool", "AveragePool"]))
    kernel = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    pads = [draw(st.integers(0, k - 1)) for k in kernel + kernel]
    attrs = {"kernel_shape": kernel, "pads": pads, "strides": [draw(st.integers(1, 2)) for _ in kernel],
             "ceil_mode": int(draw(st.booleans()))}
    if pool == "AveragePool":
        attrs["count_include_pad"] = int(draw(st.booleans()))
    else:
        attrs["dilations"] = [draw(st.integers(1, 2)) for _ in kernel]
    extent = [(k - 1) * attrs.get("dilations", [1, 1])[i] + 1 for i, k in enumerate(kernel)]
    block = draw(st.sampled_from([4, 8]))
    shape = (draw(st.integers(1, 2)), block * draw(st.integers(1, 2)), *(e + draw(st.integers(0, 6)) for e in extent))
    x = np.random.default_rng(draw(st.integers(0, 2**31))).uniform(-1, 1, shape).astype(np.float32)
    return pool, attrs, x, block


@SETTINGS
@given(case=blocked_pools(), target=st.sampled_from(COMPILE_TARGETS))
def test_pool_nchwc_is_the_plain_pool(case, target):
    pool, attrs, x, block = case
    graph = one_node("PoolNCHWc", to_blocked(x, block), [], {"pool": pool, **attrs})
    (blocked,) = ReferenceModule(graph).run({"x": to_blocked(x, block)})
    plain = get_op(pool)
    (expected,) = plain.run_reference([x], plain.normalize_attrs(attrs))
    np.testing.assert_allclose(from_blocked(blocked), expected, rtol=1e-6, atol=1e-6)
    check_compiled_graph(graph, to_blocked(x, block), targets=[target])


def test_pool_nchwc_rejects_other_pools():
    from ember.ir.errors import ShapeError

    x = np.zeros((1, 1, 4, 4, 4), np.float32)
    with pytest.raises(ShapeError, match="not one of"):
        ReferenceModule(one_node("PoolNCHWc", x, [], {"pool": "LpPool", "kernel_shape": [2, 2]}))
