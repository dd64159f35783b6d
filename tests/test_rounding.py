"""The rounding bounds are honest (they cover real float32/float64 evaluations) and not vacuous.

The constants they rest on are measured here: NumPy's elementary functions against 40-digit
mpmath (ULPS), and textbook ways of writing each activation against ours (ACTIVATION_ULPS).
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest
import sympy

from symbackprop import rules
from symbackprop.network import NetworkSpec
from symbackprop.numeric import VARIABLE, NumpyAlgebra, gradients
from symbackprop.rounding import ULPS, Bounded, Format, RoundingAlgebra, RoundingDomain, tolerances
from symbackprop.testing import sample_problem

from .gallery import correct

DTYPES = (np.float32, np.float64)


def grid(dtype, count=801):
    """Points in [−40, 40], denser near 0, exactly representable in ``dtype``."""
    points = np.concatenate([np.linspace(-40, 40, count), np.linspace(-1e-3, 1e-3, 101), [0.0]])
    return points.astype(dtype)


def exact(function, points):
    with mpmath.workdps(40):
        return np.array([float(function(mpmath.mpf(float(p)))) for p in points])


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_elementary_functions_are_within_ULPS(dtype):
    fmt = Format(dtype)
    x = grid(dtype)
    cases = {np.tanh: (mpmath.tanh, x), np.exp: (mpmath.exp, x[x < 80]),
             np.log: (mpmath.log, np.abs(x[x != 0])), (lambda v: np.logaddexp(0, v)): (lambda t: mpmath.log(1 + mpmath.exp(t)), x)}
    for ours, truth in cases.items():
        function, points = truth
        computed = ours(points).astype(float)
        error = np.abs(computed - exact(function, points))
        assert np.all(error <= ULPS * fmt.u * np.abs(exact(function, points)) + fmt.eta), ours


TEXTBOOK = {  # other ways people write each activation and its derivative
    "sigmoid": [lambda x: 1 / (1 + np.exp(-x)), lambda x: np.where(x < 0, np.exp(x) / (1 + np.exp(x)), 1 / (1 + np.exp(-x))),
                lambda x: 0.5 * np.tanh(0.5 * x) + 0.5],
    "tanh": [np.tanh, lambda x: 2 / (1 + np.exp(-2 * x)) - 1],
    "softplus": [lambda x: np.log(1 + np.exp(x)), lambda x: np.log1p(np.exp(x)),
                 lambda x: np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))],
    "silu": [lambda x: x / (1 + np.exp(-x)), lambda x: x * (1 / (1 + np.exp(-x)))],
}
DERIVATIVES = {
    "sigmoid": [lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2, lambda x: (1 / (1 + np.exp(-x))) * (1 - 1 / (1 + np.exp(-x)))],
    "tanh": [lambda x: 1 / np.cosh(x) ** 2, lambda x: 1 - np.tanh(x) ** 2],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(TEXTBOOK))
def test_textbook_activations_stay_within_the_bound(name, dtype):
    row = rules.activation(name)
    x = grid(dtype)
    bounded = Bounded(x.astype(float), None, Format(dtype))
    ours = RoundingDomain().atom(row, (bounded,))
    alg = RoundingAlgebra(dtype=dtype)
    slope = alg.apply(row.derivative, bounded)
    truth = exact(sympy.lambdify(VARIABLE, row.definition(VARIABLE), "mpmath"), x)
    truth_slope = exact(sympy.lambdify(VARIABLE, row.definition(VARIABLE).diff(VARIABLE), "mpmath"), x)
    with np.errstate(all="ignore"):
        for other in TEXTBOOK[name]:
            assert np.all(np.abs(other(x).astype(float) - truth) <= ours.error), (name, other)
        for other in DERIVATIVES.get(name, []):
            values = other(x).astype(float)
            finite = np.isfinite(values)
            assert np.all(np.abs(values - truth_slope)[finite] <= slope.error[finite]), (name, other)
    assert np.all(np.abs(ours.value - truth) <= ours.error)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matrix_products_and_sums_with_cancellation(dtype):
    rng = np.random.default_rng(3)
    fmt = Format(dtype)
    for _ in range(50):
        A = rng.normal(size=(4, 7)).astype(dtype) * 10.0 ** rng.integers(-3, 4)
        B = rng.normal(size=(7, 3)).astype(dtype)
        bounded = Bounded(A.astype(float), None, fmt) @ Bounded(B.astype(float), None, fmt)
        computed = A @ B
        for i, j in np.ndindex(computed.shape):
            exact_entry = sum(Fraction(float(a)) * Fraction(float(b)) for a, b in zip(A[i], B[:, j]))
            assert abs(Fraction(float(computed[i, j])) - exact_entry) <= Fraction(bounded.error[i, j])
        x, y = A[0, 0], -A[0, 0] * (1 + 2 * fmt.u)  # nearly cancelling
        total = Bounded(np.array([float(x)]), None, fmt) + Bounded(np.array([float(y)]), None, fmt)
        assert abs(float(np.asarray(x + y, dtype)) - (float(x) + float(y))) <= total.error[0]


def test_numpy_algebra_and_rounding_algebra_agree_on_values():
    spec = NetworkSpec((3, 4, 2), hidden="silu", output="softmax", loss="half_sse", batch=2)
    problem = sample_problem(spec, 1)
    from symbackprop.rounding import bounded_network
    from symbackprop.numeric import NumericNetwork

    plain, bounded = NumericNetwork(spec, *problem[1:4]), bounded_network(spec, *problem[1:4])
    for k in (1, 2):
        np.testing.assert_allclose(bounded.A[k].value, plain.A[k], rtol=1e-14)
    assert isinstance(NumpyAlgebra().lift([1, 2]), np.ndarray)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tolerances_are_tight_on_well_scaled_problems(dtype):
    """Not vacuous: on well-scaled problems the tolerance is a small fraction of each gradient."""
    fractions = []
    for seed in range(40):
        spec = NetworkSpec((3, 4, 3, 2), hidden=("sigmoid", "tanh", "relu", "silu")[seed % 4],
                           output="softmax", loss="cross_entropy", batch=3)
        problem = sample_problem(spec, seed, dtype=dtype)
        truth = gradients(spec, *problem[1:4])
        allowed = tolerances(spec, *problem[1:4], None, dtype)
        _, mine = correct(*problem[1:4], spec)
        for name in truth:
            assert np.all(np.abs(np.reshape(mine[name], truth[name].shape) - truth[name]) <= allowed[name])
            big = np.abs(truth[name]) > 1e-2 * np.abs(truth[name]).max()
            fractions.extend((allowed[name][big] / np.abs(truth[name][big])).tolist())
    limit = {np.float32: 1e-4, np.float64: 1e-12}[dtype]
    assert np.median(fractions) < limit, np.median(fractions)


SOFTMAXES = [  # how people write softmax, examples as columns
    lambda z: np.exp(z - z.max(axis=0)) / np.exp(z - z.max(axis=0)).sum(axis=0),
    lambda z: np.exp(z) / np.exp(z).sum(axis=0),
    lambda z: np.exp(z - z.max(axis=0) - np.log(np.exp(z - z.max(axis=0)).sum(axis=0))),
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_textbook_softmaxes_stay_within_the_bound(dtype):
    rng = np.random.default_rng(4)
    alg = RoundingAlgebra(dtype=dtype)
    for scale in (1.0, 10.0, 30.0):
        z = (rng.normal(size=(4, 200)) * scale).astype(dtype)
        ours = alg.softmax(alg.lift(z))
        with mpmath.workdps(40):
            truth = np.array([[float(mpmath.exp(mpmath.mpf(float(z[i, j])))
                                     / mpmath.fsum(mpmath.exp(mpmath.mpf(float(v))) for v in z[:, j]))
                               for j in range(z.shape[1])] for i in range(z.shape[0])])
        for other in SOFTMAXES:
            assert np.all(np.abs(other(z).astype(float) - truth) <= ours.error), (scale, other)
