"""The proven recurrences evaluated with NumPy agree with finite differences of the NumPy loss."""

from __future__ import annotations

import numpy as np
import pytest

from symbackprop.network import NetworkSpec
from symbackprop.numeric import gradients, loss

CASES = [
    dict(widths=(3, 4, 2), hidden="sigmoid", output="sigmoid", loss="half_sse", batch=3),
    dict(widths=(3, 4, 3), hidden="relu", output="softmax", loss="cross_entropy", batch=2, layout="rows"),
    dict(widths=(2, 3, 3, 1), hidden="tanh", output="sigmoid", loss="bce", batch=2, reduction="sum"),
    dict(widths=(2, 3, 2), hidden="silu", output="identity", loss="half_sse", batch=2, l2=True),
    dict(widths=(2, 3, 2), hidden="softplus", output="softmax", loss="half_sse", batch=2),
    dict(widths=(2, 3, 2), hidden="leaky_relu", output="tanh", loss="mse", batch=2),
]


def random_problem(spec, rng):
    n, m = spec.widths, spec.batch
    params = {}
    for k in range(1, spec.depth + 1):
        params[f"W{k}"] = rng.normal(size=(n[k], n[k - 1]))
        params[f"b{k}"] = rng.normal(size=n[k])
    X = rng.normal(size=(n[0], m))
    if spec.loss_rule.simplex_targets:
        Y = rng.dirichlet(np.ones(n[-1]), size=m).T
    elif spec.loss == "bce":
        Y = rng.uniform(size=(n[-1], m))
    else:
        Y = rng.normal(size=(n[-1], m))
    if spec.layout == "rows":
        X, Y = X.T, Y.T
    return params, X, Y


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['hidden']}-{c['output']}-{c['loss']}")
def test_recurrences_match_finite_differences(case):
    spec = NetworkSpec(**case)
    rng = np.random.default_rng(0)
    params, X, Y = random_problem(spec, rng)
    penalty = 0.3 if spec.l2 else None
    grads = gradients(spec, params, X, Y, penalty)
    h = 1e-6
    for name, value in params.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            plus = {k: v.copy() for k, v in params.items()}
            minus = {k: v.copy() for k, v in params.items()}
            plus[name][index] += h
            minus[name][index] -= h
            numeric[index] = (loss(spec, plus, X, Y, penalty) - loss(spec, minus, X, Y, penalty)) / (2 * h)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-5, atol=1e-7, err_msg=name)
