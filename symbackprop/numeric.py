"""The proven formulas evaluated in floating point with NumPy.

The forward pass (``network.forward``), the loss (``network.objective``) and the recurrences
(``derive.backprop``) are the very functions the prover checks, run here over :class:`NumpyAlgebra`
instead of explicit SymPy matrices.  Closed forms such as σ′ = σ(1−σ) are evaluated from the same
rule rows (their SymPy form, then each atom's NumPy template).  This is a clear reference, not a
fast kernel (see ``kernels`` for those).

Parameters are ``{"W1": (n_1, n_0) array, "b1": (n_1,) array, …}``; data follow the spec's layout:
X is (n_0, m) with examples as columns, (m, n_0) with examples as rows.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import sympy

from .algebra import Algebra
from .derive import backprop
from .evaluate import Evaluation, NumpyDomain
from .network import NetworkSpec, forward, objective


VARIABLE = sympy.Symbol("x")


class NumpyAlgebra(Algebra):
    """The matrix algebra of ``matrices.Explicit``, on float arrays."""

    def __init__(self, layout: str = "columns"):
        self.layout = layout
        self._compiled: dict = {}

    def matmul(self, a, b):
        return a @ b

    def T(self, a):
        return a.T

    def add(self, a, b):
        return a + b

    def sub(self, a, b):
        return a - b

    def hadamard(self, a, b):
        return a * b

    def divide(self, a, b):
        return a / b

    def scale(self, c, a):
        return float(c) * a

    def lift(self, array):
        """An input (parameter or data array) as a value of this algebra."""
        return np.asarray(array, dtype=float)

    def closed_form(self, fn: Callable):
        """``fn`` (an atom class or a closed form) as a SymPy expression in ``VARIABLE``, cached."""
        expr = self._compiled.get(fn)
        if expr is None:
            expr = self._compiled[fn] = sympy.sympify(fn(VARIABLE))
        return expr

    def apply(self, fn: Callable, a):
        """``fn`` is a SymPy-level function (an atom class or a closed form); evaluate it elementwise."""
        value = Evaluation(NumpyDomain(), {VARIABLE: a}).value(self.closed_form(fn))
        return np.broadcast_to(value, a.shape).astype(float)

    def log(self, a):
        return np.log(a)

    def exp(self, a):
        return np.exp(a)

    def power(self, a, p):
        return np.power(a, float(p))

    def maximum(self, a, b):
        return np.maximum(a, b)

    def shape(self, a) -> tuple:
        return np.shape(a) if np.ndim(a) == 2 else (1, 1)

    def sum_axis(self, a, axis: int):
        return np.sum(a, axis=axis, keepdims=True)

    def concat(self, a, b, axis: int):
        return np.concatenate([a, b], axis=axis)

    def block(self, a, rows: tuple, cols: tuple):
        return a[rows[0]:rows[1], cols[0]:cols[1]]

    def build(self, rows, cols, entry):
        return np.array([[float(entry(i, j)) for j in range(cols)] for i in range(rows)])

    def entry(self, a, i, j):
        return a[i, j] if np.ndim(a) == 2 else a

    def index_sum(self, body, count):
        return sum((body(k) for k in range(count)), 0.0)

    def full(self, value, like):
        return np.full(like.shape, float(value))

    def ones(self, rows: int, cols: int = 1):
        return np.ones((rows, cols))

    def total(self, a):
        return float(np.sum(a))

    def examples(self, a) -> int:
        return a.shape[1] if self.layout == "columns" else a.shape[0]

    def output_width(self, a) -> int:
        return a.shape[0] if self.layout == "columns" else a.shape[1]

    def example_sums(self, a):
        axis = 0 if self.layout == "columns" else 1
        return np.broadcast_to(a.sum(axis=axis, keepdims=True), a.shape)

    def affine(self, W, A, b):
        return W @ A + b if self.layout == "columns" else A @ W.T + b.T

    def softmax(self, Z, atom=None):
        axis = 0 if self.layout == "columns" else 1
        shifted = np.exp(Z - Z.max(axis=axis, keepdims=True))
        return shifted / shifted.sum(axis=axis, keepdims=True)


class NumericNetwork:
    """A spec with concrete parameters and data: the quantities ``derive.backprop`` reads, as arrays.

    ``alg`` may be another algebra over arrays (``rounding.RoundingAlgebra`` carries error bounds).
    """

    def __init__(self, spec: NetworkSpec, params: dict, X, Y, penalty: float | None = None,
                 alg: NumpyAlgebra | None = None):
        self.spec = spec
        self.alg = alg = alg if alg is not None else NumpyAlgebra(spec.layout)
        self.depth = L = spec.depth
        self.W = {k: alg.lift(params[f"W{k}"]) for k in range(1, L + 1)}
        self.b = {k: alg.lift(np.reshape(params[f"b{k}"], (-1, 1))) for k in range(1, L + 1)}
        self.X = alg.lift(X)
        self.Y = alg.lift(Y)
        self.batch = alg.examples(self.X)
        self.reduction_factor = 1.0 / self.batch if spec.reduction == "mean" else 1.0
        self.penalty = penalty if spec.l2 else None
        if spec.l2 and penalty is None:
            raise ValueError("this spec has an L2 penalty: give its λ as penalty=")
        self.Z, self.A = forward(spec, alg, self.W, self.b, self.X)

    @property
    def loss(self) -> float:
        return objective(self.spec, self.alg, self.A[self.depth], self.Y, self.W, self.reduction_factor, self.penalty,
                         self.b)


def gradients(spec: NetworkSpec, params: dict, X, Y, penalty: float | None = None) -> dict:
    """``{"W1": ∂J/∂W1, "b1": ∂J/∂b1 (1-D), "z1": ∂J/∂z1, …}`` from the proven recurrences."""
    net = NumericNetwork(spec, params, X, Y, penalty)
    result = {}
    for (quantity, k), value in backprop(net).items():
        result[f"{quantity}{k}"] = value.reshape(-1) if quantity == "b" else value
    return result


def loss(spec: NetworkSpec, params: dict, X, Y, penalty: float | None = None) -> float:
    return NumericNetwork(spec, params, X, Y, penalty).loss
