"""Inline float32 exp, erf and tanh (codegen/vecmath.py): accuracy in ulps against float64 references over
the whole float32 range (subnormals, overflow, NaN and infinities included), vector lanes against
the scalar loop, on this CPU and on plain x86-64."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ember.ir.ops.elementwise import erf as erf_float64

from tests.ops.harness import COMPILE_TARGETS, check_compiled
from tests.ops.test_elementwise_compiled import ulp_distance


def _inputs(limit: float) -> np.ndarray:
    """A dense grid on [-limit, limit], magnitudes from the smallest subnormal up, and special values."""
    magnitudes = np.geomspace(1e-45, 3e38, 40000)
    x = np.concatenate([np.linspace(-limit, limit, 200001), magnitudes, -magnitudes,
                        [0.0, -0.0, 1e-40, -1e-40, math.inf, -math.inf, math.nan]])
    return x.astype(np.float32)


def _expected(fn, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return fn(x.astype(np.float64)).astype(np.float32)


@pytest.mark.parametrize("target", COMPILE_TARGETS)
def test_exp_within_two_ulps(target):
    x = np.concatenate([_inputs(110.0), np.float32([88.72, 88.73, -87.3, -103.0, -104.0, -150.0])])
    (y,) = check_compiled("Exp", [x], targets=(target,))
    expected = _expected(np.exp, x)
    normal = np.abs(expected) >= np.finfo(np.float32).tiny
    assert ulp_distance(y, expected)[normal | np.isnan(expected)].max() <= 2
    # subnormal results: within a few subnormal steps (2^-149) of exact
    tiny = ~normal & np.isfinite(x)
    assert np.abs(y[tiny].astype(np.float64) - np.exp(x[tiny].astype(np.float64))).max() <= 2.0**-149 * 4
    assert y[x == math.inf] == math.inf and y[x == -math.inf] == 0 and np.isnan(y[np.isnan(x)]).all()
    assert (y[x > 88.73] == math.inf).all() and (y[x < -104.0] == 0).all()


@pytest.mark.parametrize("target", COMPILE_TARGETS)
def test_erf_within_four_ulps(target):
    x = _inputs(6.0)
    (y,) = check_compiled("Erf", [x], targets=(target,))
    expected = _expected(erf_float64, x)
    assert ulp_distance(y, expected).max() <= 4
    assert np.array_equal(np.signbit(y[x == 0]), np.signbit(x[x == 0]))  # erf(-0) = -0
    assert list(y[np.isinf(x)]) == [1.0, -1.0] and np.isnan(y[np.isnan(x)]).all()


@pytest.mark.parametrize("target", COMPILE_TARGETS)
def test_tanh_within_one_ulp(target):
    x = _inputs(12.0)
    (y,) = check_compiled("Tanh", [x], targets=(target,))
    assert ulp_distance(y, _expected(np.tanh, x)).max() <= 1
    assert np.array_equal(np.signbit(y[x == 0]), np.signbit(x[x == 0]))  # tanh(-0) = -0
    assert list(y[np.isinf(x)]) == [1.0, -1.0] and np.isnan(y[np.isnan(x)]).all()


@pytest.mark.parametrize("target", COMPILE_TARGETS)
@pytest.mark.parametrize("op", ["Exp", "Erf", "Tanh"])
def test_vector_lanes_match_scalar_loop(op, target):
    """Each value alone (a scalar loop) gives the bits it gets inside a long vectorized loop."""
    x = np.float32([-100.0, -3.5, -1.0, -0.3, 1e-30, 0.7, 1.0, 2.9, 4.5, 80.0, 88.7])
    (together,) = check_compiled(op, [np.tile(x, 7)], targets=(target,))
    for i, v in enumerate(x):
        (alone,) = check_compiled(op, [np.float32([v])], targets=(target,))
        assert alone.view(np.int32)[0] == together.view(np.int32)[i]


def test_erfc_rational_is_the_fit_script_output():
    """The erfc coefficients in vecmath are what tools/fit_erfc.py computes (to float32 rounding)."""
    import importlib.util
    from pathlib import Path

    from ember.codegen import vecmath

    path = Path(__file__).parents[2] / "tools" / "fit_erfc.py"
    spec = importlib.util.spec_from_file_location("fit_erfc", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    numerator, denominator, error = script.fit(6, 5, center=vecmath._ERF_SPLIT)
    assert error < 5e-8
    np.testing.assert_allclose(numerator, vecmath._ERFC_NUMERATOR, rtol=1e-5)
    np.testing.assert_allclose(denominator, vecmath._ERFC_DENOMINATOR, rtol=1e-5)
