"""How far a floating-point evaluation of the proven formulas may stray: running error bounds.

The forward pass, the loss and the recurrences (``network.forward``, ``network.objective``,
``derive.backprop``) are run once more, over :class:`RoundingAlgebra`: every value v carries an
absolute bound e such that evaluating the same formulas in a given floating-point format — in any
order of summation — lands within e of the exact value (Wilkinson's running error analysis).
With u the unit roundoff and η the smallest subnormal of the format, a result r whose inputs
carry e_a, e_b is charged the inputs' errors propagated, plus its own rounding
R = u·(|r| + e) + η:

    a ± b                 e_a + e_b + R
    a ⊙ b                 |a| e_b + e_a |b| + e_a e_b + R
    a / b                 (e_a |b| + |a| e_b) / (|b| (|b| − e_b)) + R       (∞ if e_b ≥ |b|)
    A B  (inner size n)   |A| e_B + e_A |B| + e_A e_B + γ_n (|A| + e_A)(|B| + e_B) + n η,  γ_n = n u/(1 − n u)
    f(a)  (tanh, exp, …)  max |f(a ± e_a) − f(a)| + ULPS·u·|f(a)| + η  (monotone; libm within ULPS ulps)

Activations are their NumPy forms (the ``numpy`` text of their ``rules`` row) evaluated by these
rules, so 0.5·(1 + tanh(x/2)) is charged its cancellation when σ(x) is tiny, plus
ACTIVATION_ULPS·u·(|g| + 1) for the other ways to write a transcendental g (1/(1 + e^{−x}),
log(1 + e^x), …); softmax is exp(z − max z)/Σ exp(z − max z) by the same rules, plus
ACTIVATION_ULPS·u·ŷ·(|z − max z| + 1) for writing it without the shift or through log Σ exp.  The products e_a e_b and the η terms keep the
bound honest where values underflow or are smaller than their own errors (saturated layers).

Parameters and data are exact inputs (e = 0): the reference is computed from the very numbers a
user's code was given.  ``ULPS`` is measured, not assumed: the tests check NumPy's tanh, exp, log
and logaddexp against 50-digit mpmath in float32 and float64.
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
# A transcendental activation as someone else writes it (1/(1+e^{−x}), log(1+e^x), 2σ(2x)−1, …) is
# within ACTIVATION_ULPS·u·(|g| + 1) of ours: cancellation inside such forms costs ulps of 1, not of
# g (measured: tests/test_rounding.py).
ACTIVATION_ULPS = 4
_HUGE = 1e300  # an unbounded error, capped in products so that an exact 0 times it stays 0 (not NaN)


def _capped(error):
    return np.minimum(error, _HUGE)


class Format:
    """A floating-point format: unit roundoff u = 2^-p and η, the smallest subnormal."""

    def __init__(self, dtype):
        info = np.finfo(np.dtype(dtype))
        self.dtype = np.dtype(dtype)
        self.u = float(info.eps) / 2
        self.eta = float(info.smallest_subnormal)

    def rounding(self, result, error):
        """R: the error of rounding a result of magnitude up to |result| + error."""
        return self.u * (np.abs(result) + error) + self.eta


def unit_roundoff(dtype) -> float:
    return Format(dtype).u


class Bounded:
    """A float64 array ``value`` and an absolute error bound ``error`` for computing it in ``format``.

    NumPy arrays and Python numbers mixed in are exact constants.
    """

    __slots__ = ("value", "error", "format")
    __array_ufunc__ = None  # ndarray ∘ Bounded defers to Bounded's reflected operators

    def __init__(self, value, error=None, format: Format | None = None):
        self.value = np.asarray(value, dtype=float)
        self.error = np.zeros_like(self.value) if error is None else np.asarray(error, dtype=float)
        self.format = format

    def _exact(self, x) -> "Bounded":
        return x if isinstance(x, Bounded) else Bounded(x, None, self.format)

    def _made(self, value, propagated, other: "Bounded | None" = None) -> "Bounded":
        fmt = self.format or (other.format if other is not None else None)
        return Bounded(value, propagated + fmt.rounding(value, propagated), fmt)

    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def T(self) -> "Bounded":
        return Bounded(self.value.T, self.error.T, self.format)

    def astype(self, dtype) -> "Bounded":
        return self

    def __repr__(self):
        return f"Bounded({self.value!r}, error={self.error!r})"

    # --- arithmetic: each result is rounded once
    def __add__(self, other):
        other = self._exact(other)
        return self._made(self.value + other.value, self.error + other.error, other)

    __radd__ = __add__

    def __neg__(self):
        return Bounded(-self.value, self.error, self.format)

    def __sub__(self, other):
        return self + (-self._exact(other))

    def __rsub__(self, other):
        return self._exact(other) + (-self)

    def __mul__(self, other):
        if not isinstance(other, Bounded) and np.ndim(other) == 0:
            c = float(other)
            value = c * self.value
            if c == 0 or math.frexp(c)[0] in (0.5, -0.5):  # a power of 2: exact but for underflow
                return Bounded(value, abs(c) * self.error + self.format.eta, self.format)
            return self._made(value, abs(c) * self.error + self.format.u * np.abs(value))  # c is rounded
        other = self._exact(other)
        e_a, e_b = _capped(self.error), _capped(other.error)
        return self._made(self.value * other.value,
                          np.abs(self.value) * e_b + e_a * np.abs(other.value) + e_a * e_b, other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        other = self._exact(other)
        b, e_b = np.abs(other.value), _capped(other.error)
        exact_zero = (self.value == 0) & (self.error == 0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            propagated = np.where(e_b < b, (_capped(self.error) * b + np.abs(self.value) * e_b) / (b * (b - e_b)),
                                  np.inf)
        propagated = np.where(exact_zero, 0.0, propagated)
        return self._made(self.value / other.value, propagated, other)

    def __rtruediv__(self, other):
        return self._exact(other) / self

    def __pow__(self, n):
        if int(n) != n:
            raise Unsupported(f"power {n}")
        n = int(n)
        if n < 0:
            return 1.0 / self ** (-n)
        if n == 0:
            return Bounded(np.ones_like(self.value), None, self.format)
        result = self
        for _ in range(n - 1):
            result = result * self
        return result

    def __matmul__(self, other):
        other = self._exact(other)
        fmt = self.format or other.format
        inner = self.value.shape[-1]
        gamma = inner * fmt.u / (1 - inner * fmt.u)
        a, b = np.abs(self.value), np.abs(other.value)
        e_a, e_b = _capped(self.error), _capped(other.error)
        with np.errstate(over="ignore"):
            error = a @ e_b + e_a @ b + e_a @ e_b + gamma * ((a + e_a) @ (b + e_b)) + inner * fmt.eta
        return Bounded(self.value @ other.value, error, fmt)

    def __rmatmul__(self, other):
        return self._exact(other) @ self

    def sum(self, axis=None, keepdims: bool = False) -> "Bounded":
        terms = self.value.size if axis is None else self.value.shape[axis]
        gamma = terms * self.format.u / (1 - terms * self.format.u)
        magnitude = (np.abs(self.value) + self.error).sum(axis=axis, keepdims=keepdims)
        return Bounded(self.value.sum(axis=axis, keepdims=keepdims),
                       self.error.sum(axis=axis, keepdims=keepdims) + gamma * magnitude + terms * self.format.eta,
                       self.format)

    # --- comparisons select branches (np.where, step): plain boolean arrays
    def __gt__(self, other):
        return self.value > other

    def __lt__(self, other):
        return self.value < other


def _monotone(rule: rules.Activation):
    """A monotone libm function from a rules row (its NumPy form and its derivative, for tiny errors)."""
    slope = sympy.sympify(rule.derivative(VARIABLE))
    evaluate = NumpyDomain().atom

    def function(x: Bounded) -> Bounded:
        with np.errstate(all="ignore"):
            value = evaluate(rule, (x.value,))
            spread = np.maximum(np.abs(evaluate(rule, (x.value + x.error,)) - value),
                                np.abs(evaluate(rule, (x.value - x.error,)) - value))
            linear = np.abs(Evaluation(NumpyDomain(), {VARIABLE: x.value}).value(slope)) * x.error
            propagated = np.nan_to_num(np.maximum(spread, linear), nan=np.inf)
        fmt = x.format
        return Bounded(value, propagated + ULPS * fmt.u * np.abs(value) + fmt.eta, fmt)

    return function


class _BoundedNumpy:
    """The part of NumPy that the rows' ``numpy`` forms use, on :class:`Bounded` arrays."""

    tanh = staticmethod(_monotone(rules.TANH))
    exp = staticmethod(_monotone(rules.EXP))
    _softplus = staticmethod(_monotone(rules.SOFTPLUS))

    @classmethod
    def logaddexp(cls, zero, x):
        if np.any(np.asarray(zero) != 0):
            raise Unsupported("logaddexp(a, x) with a ≠ 0")
        return cls._softplus(x)

    @staticmethod
    def where(condition, a, b):
        if not isinstance(a, Bounded) and not isinstance(b, Bounded):
            return np.where(condition, a, b)  # constants: exact
        fmt = next(x.format for x in (a, b) if isinstance(x, Bounded))
        a, b = (x if isinstance(x, Bounded) else Bounded(x, None, fmt) for x in (a, b))
        return Bounded(np.where(condition, a.value, b.value), np.where(condition, a.error, b.error), fmt)

    @classmethod
    def maximum(cls, a, b):
        a_value = a.value if isinstance(a, Bounded) else a
        b_value = b.value if isinstance(b, Bounded) else b
        return cls.where(a_value >= b_value, a, b)

    @staticmethod
    def ones_like(x):
        return Bounded(np.ones_like(x.value), None, x.format)

    @staticmethod
    def zeros_like(x):
        return Bounded(np.zeros_like(x.value), None, x.format)


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


def _log(a: Bounded) -> Bounded:
    with np.errstate(all="ignore"):
        value = np.log(a.value)
        low = np.where(a.value > a.error, np.log(np.abs(a.value - a.error)), -np.inf)
        propagated = np.maximum(np.abs(np.log(a.value + a.error) - value), np.abs(value - low))
        linear = a.error / np.abs(a.value)
        propagated = np.nan_to_num(np.maximum(propagated, linear), nan=np.inf)
    return Bounded(value, propagated + ULPS * a.format.u * np.abs(value) + a.format.eta, a.format)


class RoundingDomain(NumpyDomain):
    """``evaluate.Evaluation`` domain of :class:`Bounded` arrays (for closed forms like σ(1−σ))."""

    @staticmethod
    def const(value):
        return float(value)

    @staticmethod
    def power(a, n):
        return a ** n

    def atom(self, rule, arguments, indices=(), node=None):
        if rule.vector:
            raise Unsupported(f"{rule.name} is not elementwise")
        x = arguments[0]
        result = _bounded_form(rule)(x)
        if not isinstance(result, Bounded):  # a step: exact 0s and 1s
            return Bounded(result, None, x.format)
        if rule.exact is None:  # transcendental: written some other way, it may differ by this much
            return Bounded(result.value, result.error + ACTIVATION_ULPS * x.format.u * (np.abs(result.value) + 1),
                           x.format)
        return result

    @staticmethod
    def log(argument):
        return _log(argument)

    @staticmethod
    def root(base, exponent):
        raise Unsupported("roots are not bounded")


class RoundingAlgebra(NumpyAlgebra):
    """``numeric.NumpyAlgebra`` on :class:`Bounded` arrays: values with their error bounds in ``dtype``."""

    def __init__(self, layout: str = "columns", dtype="float64"):
        super().__init__(layout)
        self.format = Format(dtype)

    def lift(self, array):
        return Bounded(np.asarray(array, dtype=float), None, self.format)

    def apply(self, fn, a):
        expr = self.closed_form(fn)
        value = Evaluation(RoundingDomain(), {VARIABLE: a}).value(expr)
        if not isinstance(value, Bounded):  # a constant, such as 1 for the identity's derivative
            value = self.lift(value)
        error = value.error
        if not isinstance(expr, rules.Atom) and any(atom.rule.exact is None for atom in expr.atoms(rules.Atom)):
            # a closed form such as σ(1 − σ) or 1 − tanh², which others write as e^{−x}/(1 + e^{−x})², 1/cosh²
            error = error + ACTIVATION_ULPS * self.format.u * (np.abs(value.value) + 1)
        return Bounded(np.broadcast_to(value.value, a.shape), np.broadcast_to(error, a.shape), self.format)

    def log(self, a):
        return _log(a)

    def full(self, value, like):
        return self.lift(np.full(like.shape, float(value)))

    def ones(self, rows: int, cols: int = 1):
        return self.lift(np.ones((rows, cols)))

    def total(self, a):
        return a.sum()

    def example_sums(self, a):
        sums = a.sum(axis=0 if self.layout == "columns" else 1, keepdims=True)
        return Bounded(np.broadcast_to(sums.value, a.shape), np.broadcast_to(sums.error, a.shape), self.format)

    def softmax(self, Z, atom=None):
        axis = 0 if self.layout == "columns" else 1
        offsets = Z - Z.value.max(axis=axis, keepdims=True)
        shifted = _BoundedNumpy.exp(offsets)
        s = shifted / shifted.sum(axis=axis, keepdims=True)
        # written another way (no shift, or exp(z − max − log Σ)): other roundings of the exponents
        other_ways = ACTIVATION_ULPS * self.format.u * s.value * (np.abs(offsets.value) + 1)
        return Bounded(s.value, s.error + other_ways, self.format)


def bounded_network(spec, params: dict, X, Y, penalty: float | None = None, dtype="float64") -> NumericNetwork:
    """The network over :class:`RoundingAlgebra`: ``.Z``, ``.A``, ``.loss`` carry error bounds for ``dtype``."""
    return NumericNetwork(spec, params, X, Y, penalty, alg=RoundingAlgebra(spec.layout, dtype))


def gradient_bounds(net: NumericNetwork, *, shortcut: bool = True) -> dict:
    """``{(quantity, k): error bound}`` of ``derive.backprop`` over a bounded network."""
    with np.errstate(all="ignore"):
        return {key: value.error for key, value in backprop(net, shortcut=shortcut).items()}


def error_bounds(spec, params: dict, X, Y, penalty: float | None = None, dtype="float64") -> dict:
    """``{"W1": e, "b1": e (1-D), "z1": e, …, "loss": e}``: how far an evaluation in ``dtype`` may stray.

    Shaped like ``numeric.gradients``.
    """
    net = bounded_network(spec, params, X, Y, penalty, dtype)
    with np.errstate(all="ignore"):  # log 0 at saturation: an infinite bound, not a warning
        bounds = {"loss": float(net.loss.error)}
    for (quantity, k), error in gradient_bounds(net).items():
        bounds[f"{quantity}{k}"] = error.reshape(-1) if quantity == "b" else error
    return bounds


def tolerances(spec, params: dict, X, Y, penalty: float | None = None, dtype="float64") -> dict:
    """Largest honest disagreement between an evaluation in ``dtype`` and the float64 reference.

    Each is within its own bound of the exact value; the tolerance is the sum of the two bounds.
    """
    user = error_bounds(spec, params, X, Y, penalty, dtype)
    if np.dtype(dtype) == np.float64:
        return {name: 2 * bound for name, bound in user.items()}
    reference = error_bounds(spec, params, X, Y, penalty, np.float64)
    return {name: user[name] + reference[name] for name in user}
