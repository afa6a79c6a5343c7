"""Fit the rational erfc(x) ~ P(u) / Q(u), u = x - center, that codegen/vecmath.py's erf uses on [1, 4].

The fit minimizes the largest absolute error (erf = 1 - erfc needs erfc to an absolute, not a
relative, precision) by the Sanathanan-Koerner iteration: each step solves the linear least-squares
problem ``P(u) - erfc(x) Q(u) ~ 0`` weighted by the previous step's ``1 / Q``, so that it converges
to the rational's own error; after the first steps, Lawson's reweighting (each point's weight times
its error) moves the least-squares solution toward the minimax one. Points are Chebyshev nodes;
the reference is Python's float64 ``math.erfc``.

It then rounds the coefficients to float32 and reports the largest error of ``1 - P/Q`` evaluated in
float32 (Horner's scheme with fused multiply-adds), in float32 ulps of erf, over [1, 4.5] (the code
clamps x to 4). Run: ``python tools/fit_erfc.py [--degrees 6 5] [--center 1.25]``.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

LOW, HIGH = 1.0, 4.0


def fit(num_degree: int, den_degree: int, center: float, points: int = 4000, steps: int = 80):
    """float64 coefficients (low to high) of P and Q (Q's constant term 1) in ``u = x - center``."""
    x = LOW + (HIGH - LOW) * (np.cos(np.pi * (np.arange(points) + 0.5) / points) + 1) / 2
    target = np.array([math.erfc(v) for v in x])
    half = (HIGH - LOW) / 2
    v = (x - center) / half  # a scaled variable keeps the least-squares system well conditioned
    weights, previous_q = np.ones(points), np.ones(points)
    best = (math.inf, None, None)
    powers_p = np.vander(v, num_degree + 1, increasing=True)
    powers_q = np.vander(v, den_degree + 1, increasing=True)[:, 1:]
    for step in range(steps):
        system = np.hstack([powers_p, -target[:, None] * powers_q])
        w = weights / previous_q
        coefficients, *_ = np.linalg.lstsq(system * w[:, None], target * w, rcond=None)
        p = coefficients[:num_degree + 1]
        q = np.concatenate([[1.0], coefficients[num_degree + 1:]])
        previous_q = powers_q @ q[1:] + 1.0
        error = np.abs(powers_p @ p / previous_q - target)
        best = min(best, (float(error.max()), p, q), key=lambda b: b[0])
        if step >= 10:
            weights = weights * error / error.mean()
    error, p, q = best  # (Lawson's steps need not improve monotonically)
    scale = half ** np.arange(max(num_degree, den_degree) + 1)
    return p / scale[:num_degree + 1], q / scale[:den_degree + 1], error


def float32_ulps(p: np.ndarray, q: np.ndarray, center: float) -> tuple[float, float]:
    """The largest error of ``1 - P/Q`` in float32 arithmetic, in ulps of erf, and where."""
    p32, q32 = p.astype(np.float32), q.astype(np.float32)

    def horner(coefficients, u):
        result = np.full_like(u, coefficients[-1])
        for c in coefficients[-2::-1]:
            result = (result.astype(np.float64) * u + np.float64(c)).astype(np.float32)  # one rounding: a fma
        return result

    x = np.linspace(LOW, 4.5, 400_001, dtype=np.float32)
    u = (np.minimum(x, np.float32(HIGH)) - np.float32(center)).astype(np.float32)
    y = np.float32(1) - horner(p32, u) / horner(q32, u)
    exact = np.array([math.erf(float(t)) for t in x])
    ulps = np.abs(y.astype(np.float64) - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64)
    return float(ulps.max()), float(x[ulps.argmax()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--degrees", type=int, nargs=2, default=(6, 5), metavar=("P", "Q"))
    parser.add_argument("--center", type=float, default=1.25)
    args = parser.parse_args()
    p, q, error = fit(*args.degrees, args.center)
    ulps, where = float32_ulps(p, q, args.center)
    print(f"largest float64 error of the fit: {error:.3g}; in float32: {ulps:.2f} ulp (at x = {where:.5f})")
    print("P =", tuple(float(c) for c in p.astype(np.float32)))
    print("Q =", tuple(float(c) for c in q.astype(np.float32)))


if __name__ == "__main__":
    main()
