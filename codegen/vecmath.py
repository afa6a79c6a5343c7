"""float32 ``exp``, ``erf`` and ``tanh`` as inline polynomial code, for scalars and vectors alike.

LLVM has no vector form of libm's ``expf``/``erff``: ``llvm.exp.v8f32`` becomes
eight scalar calls, and ``erff`` has no intrinsic at all. Softmax, Gelu
(``x * (1 + erf(x / sqrt 2)) / 2``), Sigmoid and friends spend most of their
time there. These emitters build the functions from plain arithmetic, bit
operations and selects (SSE2 has them all), so a vectorized loop computes them
in vector registers. Scalar code uses the same formulas, so the scalar
remainder of a vectorized loop gives exactly what the vector chunks give.

Accuracy (float32, against float64 references; tested in
``tests/codegen/test_vecmath.py``):

* ``exp``: Cephes' ``expf`` (S. L. Moshier): ``x = n ln 2 + r`` with
  ``|r| <= ln 2 / 2`` (Cody-Waite, two-part ln 2), ``e^r = 1 + r + r^2 P(r)``
  with P of degree 5, scaled by ``2^n`` as two exponent-built powers of two
  (so results fall gradually to subnormals and zero, or overflow to inf).
  Within 2 ulp on the normal range. ``exp(nan) = nan``, ``exp(+inf) = inf``,
  ``exp(-inf) = 0``.
* ``erf``: odd; for ``|x| < 1``, ``x P(x^2)`` (P of degree 6, a weighted
  least-squares fit of ``erf(x) / x`` at Chebyshev points); for
  ``1 <= |x| <= 4``, ``1 - P(u) / Q(u)`` with ``u = |x| - 1``, and 1 beyond
  (erf is 1 in float32 from 3.92 on), P of degree 6 and Q of degree 5: a
  near-minimax rational fit of erfc's absolute error on [1, 4] (2.7e-8), made
  by ``tools/fit_erfc.py``. One division instead of an exponential and a
  degree-10 polynomial: an Erf over 393K floats took 0.46 ms instead of
  0.77-0.99 ms (AVX2, 1 thread).
  Within 4 ulp; ``erf(nan) = nan``, ``erf(+-inf) = +-1``, ``erf(-0) = -0``.
* ``tanh``: Cephes' ``tanhf``: ``x + x^3 P(x^2)`` (P of degree 4) for
  ``|x| < 0.625``, else ``1 - 2 / (e^2|x| + 1)`` with the sign of x, ``|x|``
  clamped to 10. Within 1 ulp; NaN stays NaN, ``tanh(+-inf) = +-1``.

Polynomials are evaluated by Estrin's scheme (short dependence chains), with
``llvm.fma`` where the target has fused multiply-adds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llvmlite import ir

F32, I32 = ir.FloatType(), ir.IntType(32)

_LOG2E = 1.44269504088896341
_LN2_HI = 0.693359375  # 9 significant bits: n * _LN2_HI is exact for |n| <= 2^15
_LN2_LO = -2.12194440e-4
_ROUNDING = 12582912.0  # 1.5 * 2^23: (v + it) - it rounds v to an integer (|v| < 2^22)
_EXP_LOW, _EXP_HIGH = -104.0, 89.0  # e^x is 0 below, inf above, in float32
_EXP_POLY = (5.0000001201e-1, 1.6666665459e-1, 4.1665795894e-2, 8.3334519073e-3, 1.3981999507e-3,
             1.9875691500e-4)  # Cephes expf, low to high

_ERF_SPLIT = 1.0
_ERF_FIT_END = 4.0  # erf is 1 past it
_ERF_SMALL = (1.1283791065216064, -0.3761262595653534, 0.1128358244895935, -0.026853691786527634,
              0.0051880995742976665, -0.0008008193108253181, 7.847262168070301e-05)  # erf(x)/x in x^2
# erfc(t) ~ P(t - 1) / Q(t - 1) on [1, 4] (tools/fit_erfc.py --degrees 6 5 --center 1)
_ERFC_NUMERATOR = (0.1572992354631424, -0.3437855541706085, 0.31752824783325195, -0.15843184292316437,
                   0.04497328773140907, -0.006875797174870968, 0.00044162769336253405)
_ERFC_DENOMINATOR = (1.0, 0.4534360468387604, 0.5757948160171509, 0.19950124621391296, 0.11298942565917969,
                     0.04173512011766434)


_TANH_SPLIT = 0.625
_TANH_CLAMP = 10.0  # tanh rounds to 1 in float32 from 9.01 on, and so does the formula from 10 on
_TANH_SMALL = (-3.33332819422e-1, 1.33314422036e-1, -5.37397155531e-2, 2.06390887954e-2,
               -5.70498872745e-3)  # Cephes tanhf: tanh(x) = x + x^3 P(x^2) on |x| < 0.625


class _Math:
    """Arithmetic on float32 values of one shape (a scalar or a vector) with one builder."""

    def __init__(self, builder: ir.IRBuilder, like: ir.Value, fma: bool):
        self.b = builder
        self.fma = fma
        self.type = like.type
        lanes = like.type.count if isinstance(like.type, ir.VectorType) else None
        self.int_type = ir.VectorType(I32, lanes) if lanes else I32

    def f(self, value: float) -> ir.Constant:
        if isinstance(self.type, ir.VectorType):
            return ir.Constant(self.type, [ir.Constant(F32, value)] * self.type.count)
        return ir.Constant(F32, value)

    def i(self, value: int) -> ir.Constant:
        if isinstance(self.int_type, ir.VectorType):
            return ir.Constant(self.int_type, [ir.Constant(I32, value)] * self.int_type.count)
        return ir.Constant(I32, value)

    def add(self, a, c):
        return self.b.fadd(a, c)

    def sub(self, a, c):
        return self.b.fsub(a, c)

    def mul(self, a, c):
        return self.b.fmul(a, c)

    def less(self, a, c):
        return self.b.fcmp_ordered("<", a, c)

    def is_nan(self, a):
        return self.b.fcmp_unordered("uno", a, a)

    def select(self, cond, a, c):
        return self.b.select(cond, a, c)

    def multiply_add(self, a, c, d):
        """``a * c + d``: ``llvm.fma`` on targets that have it, else a multiply and an add (never
        left to LLVM to contract, which it might do in vector code and not in scalar code)."""
        return _call(self.b, "llvm.fma", a, [a, c, d]) if self.fma else self.add(self.mul(a, c), d)

    def polynomial(self, u, coefficients: Sequence[float]):
        """``sum coefficients[k] u^k`` by Estrin's scheme: pairs ``c[2i] + c[2i+1] u`` combined with
        ``u^2``, ``u^4``, ...; a dependence chain of log2(degree) steps instead of Horner's degree
        steps, which is what bounds the speed of a vector loop evaluating it."""
        terms = [self.f(c) for c in coefficients]
        power = u
        while len(terms) > 1:
            paired = [self.multiply_add(terms[i + 1], power, terms[i]) for i in range(0, len(terms) - 1, 2)]
            terms = paired + terms[len(terms) - len(terms) % 2:]
            if len(terms) > 1:
                power = self.mul(power, power)
        return terms[0]

    def power_of_two(self, n):
        """``2^n`` for integer ``n`` (i32) in [-126, 127], from its exponent bits."""
        bits = self.b.shl(self.b.add(n, self.i(127)), self.i(23))
        return self.b.bitcast(bits, self.type)


def exp(builder: ir.IRBuilder, x: ir.Value, fma: bool = False) -> ir.Value:
    """``e^x`` of a float32 scalar or vector (see the module doc for accuracy); ``fma``: the target
    has fused multiply-adds."""
    m = _Math(builder, x, fma)
    # NaN passes the clamps (ordered compares are false); its lanes compute garbage (fptosi of NaN
    # is poison in LLVM) that the last select discards
    v = m.select(m.less(x, m.f(_EXP_LOW)), m.f(_EXP_LOW), x)
    v = m.select(m.less(m.f(_EXP_HIGH), v), m.f(_EXP_HIGH), v)
    y, n = _exp_reduced(m, v)
    # 2^n as 2^(n >> 1) * 2^(n - (n >> 1)): n is in [-150, 128], each half stays a normal number
    half = builder.ashr(n, m.i(1))
    scaled = m.mul(m.mul(y, m.power_of_two(half)), m.power_of_two(builder.sub(n, half)))
    return m.select(m.is_nan(x), x, scaled)


def _exp_reduced(m: _Math, v: ir.Value) -> tuple[ir.Value, ir.Value]:
    """``e^v`` as ``(y, n)``, ``e^v = y 2^n`` with y in [0.7, 1.42] and n an i32 (|v| < 2^21)."""
    k = m.sub(m.add(m.mul(v, m.f(_LOG2E)), m.f(_ROUNDING)), m.f(_ROUNDING))
    r = m.multiply_add(k, m.f(-_LN2_LO), m.multiply_add(k, m.f(-_LN2_HI), v))  # k * _LN2_HI is exact
    y = m.add(m.multiply_add(m.polynomial(r, _EXP_POLY), m.mul(r, r), r), m.f(1.0))
    return y, m.b.fptosi(k, m.int_type)


def erf(builder: ir.IRBuilder, x: ir.Value, fma: bool = False) -> ir.Value:
    """The error function of a float32 scalar or vector (see the module doc for accuracy); ``fma``:
    the target has fused multiply-adds."""
    m = _Math(builder, x, fma)
    small = m.mul(x, m.polynomial(m.mul(x, x), _ERF_SMALL))
    magnitude = _abs(builder, x)
    u = m.sub(magnitude, m.f(_ERF_SPLIT))
    erfc = builder.fdiv(m.polynomial(u, _ERFC_NUMERATOR), m.polynomial(u, _ERFC_DENOMINATOR))
    # past the fit's range erfc is taken as 0 (lanes of huge or infinite |x| computed garbage);
    # NaN lanes compute NaN, which the last select replaces by x itself
    erfc = m.select(m.less(m.f(_ERF_FIT_END), magnitude), m.f(0.0), erfc)
    large = _copysign(builder, m.sub(m.f(1.0), erfc), x)
    return m.select(m.less(magnitude, m.f(_ERF_SPLIT)), small, m.select(m.is_nan(x), x, large))


def tanh(builder: ir.IRBuilder, x: ir.Value, fma: bool = False) -> ir.Value:
    """tanh of a float32 scalar or vector (see the module doc for accuracy); ``fma``: the target
    has fused multiply-adds."""
    m = _Math(builder, x, fma)
    square = m.mul(x, x)
    # (the sign of x restores tanh(-0) = -0, which the sum makes +0)
    small = _copysign(builder, m.multiply_add(m.mul(x, square), m.polynomial(square, _TANH_SMALL), x), x)
    magnitude = _abs(builder, x)
    t = m.select(m.less(m.f(_TANH_CLAMP), magnitude), m.f(_TANH_CLAMP), magnitude)
    y, n = _exp_reduced(m, m.add(t, t))
    large = m.sub(m.f(1.0), m.b.fdiv(m.f(2.0), m.add(m.mul(y, m.power_of_two(n)), m.f(1.0))))
    large = _copysign(builder, large, x)
    return m.select(m.less(magnitude, m.f(_TANH_SPLIT)), small, m.select(m.is_nan(x), x, large))


def _abs(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return _call(builder, "llvm.fabs", x, [x])


def _copysign(builder: ir.IRBuilder, magnitude: ir.Value, sign: ir.Value) -> ir.Value:
    return _call(builder, "llvm.copysign", magnitude, [magnitude, sign])


def _call(builder: ir.IRBuilder, name: str, like: ir.Value, args: list[ir.Value]) -> ir.Value:
    """An LLVM intrinsic on values of ``like``'s type (fabs and copysign are bit masks on any x86;
    fma only where the target has it)."""
    t = like.type
    suffix = f"v{t.count}f32" if isinstance(t, ir.VectorType) else "f32"
    module = builder.module
    full = f"{name}.{suffix}"
    fn = module.globals.get(full)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(t, [t] * len(args)), name=full)
    return builder.call(fn, args)


# float32 functions emitted inline: name -> emitter(builder, x, fma)
FLOAT32: dict[str, Callable[[ir.IRBuilder, ir.Value, bool], ir.Value]] = {"exp": exp, "erf": erf, "tanh": tanh}


def has_inline_form(function: str, t: ir.Type) -> bool:
    """Whether ``function`` of values of type ``t`` (float32 scalar or vector) is emitted inline."""
    element = t.element if isinstance(t, ir.VectorType) else t
    return function in FLOAT32 and element == F32
