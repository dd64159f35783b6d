"""How far a floating-point evaluation of the proven formulas may stray: first-order error bounds.

The forward pass, the loss and the recurrences (``network.forward``, ``network.objective``,
``derive.backprop``) are run once more, over :class:`RoundingAlgebra`: every value v carries a
coefficient e such that evaluating the same formulas in floating point with unit roundoff u — in
any order of summation — lands within u·e of v, to first order in u (Wilkinson's running error
analysis).  The rules, for inputs a, b carrying e_a, e_b:

    a ± b,  a ⊙ b,  a / b     the inputs' errors propagated, plus |result| (one rounding)
    A B  (inner size n)       |A| e_B + e_A |B| + n·|A||B|        (γ_n ≤ n·u for a dot product)
    c · a  (constant c)       |c| e_a + 2|c a|                   (c itself may be rounded)
    f(a)   (tanh, exp, …)     |f′(a)| e_a + ULPS·|f(a)|          (libm is accurate to a few ulps)
    activations               their NumPy form (``rules`` rows' ``numpy`` text) evaluated by these
                              rules, so 0.5·(1 + tanh(x/2)) is charged its cancellation near 0
    softmax                   s_i (e_i + Σ_j s_j e_j) + s_i (|z_i| + |max z| + max_j(|z_j| + |max z|)
                              + 2·ULPS + n)   (shift, exp, sum of n, divide)

Parameters and data are exact inputs (e = 0): the reference is computed from the very numbers a
user's code was given, whatever their dtype.  ``ULPS`` is measured, not assumed: the tests check
NumPy's tanh, exp, log and logaddexp against 50-digit mpmath in float32 and float64.
"""

from __future__ import annotations

import math

import numpy as np
import sympy

from . import rules
from .derive import backprop
from .evaluate import Evaluation, NumpyDomain, Unsupported
from .numeric import VARIABLE, NumericNetwork, NumpyAlgebra

ULPS = 4  # NumPy's elementary functions, in ulps of their value (measured: tests/test_rounding.py)


def unit_roundoff(dtype) -> float:
    """u = 2^-p for a floating dtype with p significand bits (float64: 2^-53, float32: 2^-24)."""
    return float(np.finfo(dtype).eps) / 2


class Bounded:
    """A float array ``value`` and its error coefficient ``error`` (same shape, ≥ 0).

    NumPy arrays and Python numbers mixed in are exact constants.
    """

    __slots__ = ("value", "error")
    __array_ufunc__ = None  # ndarray ∘ Bounded defers to Bounded's reflected operators

    def __init__(self, value, error=None):
        self.value = np.asarray(value, dtype=float)
        self.error = np.zeros_like(self.value) if error is None else np.asarray(error, dtype=float)

    @staticmethod
    def of(x) -> "Bounded":
        return x if isinstance(x, Bounded) else Bounded(x)

    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def T(self) -> "Bounded":
        return Bounded(self.value.T, self.error.T)

    def astype(self, dtype) -> "Bounded":
        return self

    def __repr__(self):
        return f"Bounded({self.value!r}, error={self.error!r})"

    # --- arithmetic: each result is rounded once
    def __add__(self, other):
        other = Bounded.of(other)
        value = self.value + other.value
        return Bounded(value, self.error + other.error + np.abs(value))

    __radd__ = __add__

    def __neg__(self):
        return Bounded(-self.value, self.error)

    def __sub__(self, other):
        return self + (-Bounded.of(other))

    def __rsub__(self, other):
        return Bounded.of(other) + (-self)

    def __mul__(self, other):
        if not isinstance(other, Bounded) and np.ndim(other) == 0:
            c = float(other)
            value = c * self.value
            rounded = 0 if c == 0 or math.frexp(c)[0] in (0.5, -0.5) else 2  # powers of 2 are exact
            return Bounded(value, abs(c) * self.error + rounded * np.abs(value))
        other = Bounded.of(other)
        value = self.value * other.value
        return Bounded(value, np.abs(self.value) * other.error + self.error * np.abs(other.value)
                       + np.abs(value))

    __rmul__ = __mul__

    def __truediv__(self, other):
        other = Bounded.of(other)
        value = self.value / other.value
        return Bounded(value, self.error / np.abs(other.value)
                       + np.abs(self.value) * other.error / other.value ** 2 + np.abs(value))

    def __rtruediv__(self, other):
        return Bounded.of(other) / self

    def __pow__(self, n):
        if int(n) != n:
            raise Unsupported(f"power {n}")
        n = int(n)
        if n < 0:
            return Bounded(1.0) / self ** (-n)
        if n == 0:
            return Bounded(np.ones_like(self.value))
        result = self
        for _ in range(n - 1):
            result = result * self
        return result

    def __matmul__(self, other):
        other = Bounded.of(other)
        inner = self.value.shape[-1]
        magnitude = np.abs(self.value) @ np.abs(other.value)
        return Bounded(self.value @ other.value,
                       np.abs(self.value) @ other.error + self.error @ np.abs(other.value) + inner * magnitude)

    def __rmatmul__(self, other):
        return Bounded.of(other) @ self

    # --- comparisons select branches (np.where, step): plain boolean arrays
    def __gt__(self, other):
        return self.value > other

    def __lt__(self, other):
        return self.value < other

    def __ge__(self, other):
        return self.value >= other

    def __le__(self, other):
        return self.value <= other


def _elementary(rule: rules.Activation, ulps: int = ULPS):
    """A libm function from a rules row: value, and error |f′| e + ulps·|f| (its row's f′)."""
    slope = sympy.sympify(rule.derivative(VARIABLE))

    def function(x):
        x = Bounded.of(x)
        value = NumpyDomain().atom(rule, (x.value,))
        derivative = Evaluation(NumpyDomain(), {VARIABLE: x.value}).value(slope)
        return Bounded(value, np.abs(derivative) * x.error + ulps * np.abs(value))

    return function


class _BoundedNumpy:
    """The part of NumPy that the rows' ``numpy`` forms use, on :class:`Bounded` arrays."""

    tanh = staticmethod(_elementary(rules.TANH))
    exp = staticmethod(_elementary(rules.EXP))
    _softplus = staticmethod(_elementary(rules.SOFTPLUS))

    @classmethod
    def logaddexp(cls, zero, x):
        if np.any(np.asarray(zero) != 0):
            raise Unsupported("logaddexp(a, x) with a ≠ 0")
        return cls._softplus(x)

    @staticmethod
    def where(condition, a, b):
        a, b = Bounded.of(a), Bounded.of(b)
        return Bounded(np.where(condition, a.value, b.value), np.where(condition, a.error, b.error))

    @classmethod
    def maximum(cls, a, b):
        a, b = Bounded.of(a), Bounded.of(b)
        return cls.where(a.value >= b.value, a, b)

    @staticmethod
    def ones_like(x):
        return Bounded(np.ones_like(Bounded.of(x).value))

    @staticmethod
    def zeros_like(x):
        return Bounded(np.zeros_like(Bounded.of(x).value))


_bounded_forms: dict = {}


def _bounded_form(rule: rules.Activation):
    """The row's NumPy form (trusted table text) evaluated over :class:`Bounded` arrays."""
    function = _bounded_forms.get(rule)
    if function is None:
        if not rule.numpy:
            raise Unsupported(f"no NumPy form for {rule.name}")
        function = eval("lambda x: " + rule.numpy.format(x="x"), {"np": _BoundedNumpy})  # noqa: S307
        _bounded_forms[rule] = function
    return function


def _log(a) -> Bounded:
    a = Bounded.of(a)
    value = np.log(a.value)
    return Bounded(value, a.error / np.abs(a.value) + ULPS * np.abs(value))


class RoundingDomain(NumpyDomain):
    """``evaluate.Evaluation`` domain of :class:`Bounded` arrays (for closed forms like σ(1−σ))."""

    @staticmethod
    def const(value):
        return float(value)

    @staticmethod
    def power(a, n):
        return Bounded.of(a) ** n

    def atom(self, rule, arguments, indices=(), node=None):
        if rule.vector:
            raise Unsupported(f"{rule.name} is not elementwise")
        return Bounded.of(_bounded_form(rule)(Bounded.of(arguments[0])))

    @staticmethod
    def log(argument):
        return _log(argument)

    @staticmethod
    def root(base, exponent):
        raise Unsupported("roots are not bounded")


class RoundingAlgebra(NumpyAlgebra):
    """``numeric.NumpyAlgebra`` on :class:`Bounded` arrays: values with their error coefficients."""

    def lift(self, array):
        return Bounded(np.asarray(array, dtype=float))

    def apply(self, fn, a):
        value = Bounded.of(Evaluation(RoundingDomain(), {VARIABLE: a}).value(self.closed_form(fn)))
        return Bounded(np.broadcast_to(value.value, a.shape), np.broadcast_to(value.error, a.shape))

    def log(self, a):
        return _log(a)

    def total(self, a):
        a = Bounded.of(a)
        return Bounded(np.sum(a.value), np.sum(a.error) + a.value.size * np.sum(np.abs(a.value)))

    def example_sums(self, a):
        axis = 0 if self.layout == "columns" else 1
        units = a.value.shape[axis]
        value = a.value.sum(axis=axis, keepdims=True)
        error = a.error.sum(axis=axis, keepdims=True) + units * np.abs(a.value).sum(axis=axis, keepdims=True)
        return Bounded(np.broadcast_to(value, a.shape), np.broadcast_to(error, a.shape))

    def softmax(self, Z, atom=None):
        axis = 0 if self.layout == "columns" else 1
        z = Z.value
        top = np.abs(z.max(axis=axis, keepdims=True))
        s = np.exp(z - z.max(axis=axis, keepdims=True))
        s = s / s.sum(axis=axis, keepdims=True)
        units = z.shape[axis]
        shift = np.abs(z) + top  # bounds |z_i − max z| and |z_i|: with or without the shift
        propagated = s * (Z.error + np.sum(s * Z.error, axis=axis, keepdims=True))
        local = s * (shift + np.max(shift, axis=axis, keepdims=True) + 2 * ULPS + units)
        return Bounded(s, propagated + local)


def tolerance(bound, dtype) -> np.ndarray:
    """Largest honest disagreement between a computation in ``dtype`` and the float64 reference.

    Each is within u·bound of the exact value, so they are within (u_dtype + u_float64)·bound of
    each other.
    """
    return (unit_roundoff(dtype) + unit_roundoff(np.float64)) * np.asarray(bound)


def bounded_network(spec, params: dict, X, Y, penalty: float | None = None) -> NumericNetwork:
    """The network over :class:`RoundingAlgebra`: ``.Z``, ``.A``, ``.loss`` carry error coefficients."""
    return NumericNetwork(spec, params, X, Y, penalty, alg=RoundingAlgebra(spec.layout))


def error_bounds(spec, params: dict, X, Y, penalty: float | None = None) -> dict:
    """``{"W1": e, "b1": e (1-D), "z1": e, …, "loss": e}``: coefficients of u bounding each value's error.

    Shaped like ``numeric.gradients``; |computed − exact| ≤ u·e for a computation in unit roundoff u.
    """
    net = bounded_network(spec, params, X, Y, penalty)
    with np.errstate(all="ignore"):  # log 0 at saturation: an infinite bound, not a warning
        bounds = {"loss": float(Bounded.of(net.loss).error)}
    for (quantity, k), value in backprop(net).items():
        bounds[f"{quantity}{k}"] = value.error.reshape(-1) if quantity == "b" else value.error
    return bounds
