"""Exported kernels check their inputs in forward, loss and loss_and_grads: a wrong batch is a
ValueError naming the problem, never a silently wrong answer or a raw gufunc error."""

from __future__ import annotations

import numpy as np
import pytest

from symbackprop import NetworkSpec
from symbackprop.kernels import build


@pytest.fixture(scope="module", params=["rows", "columns"])
def kernel(request):
    spec = NetworkSpec(widths=(4, 8, 3), hidden="tanh", output="softmax", loss="cross_entropy",
                       layout=request.param)
    return build(spec)


def batch(kernel, m=5):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(m, 4)), np.eye(3)[rng.integers(0, 3, size=m)]
    return (X, Y) if kernel.spec.layout == "rows" else (X.T.copy(), Y.T.copy())


def test_good_input_passes(kernel):
    params = kernel.init_params(0)
    X, Y = batch(kernel)
    assert kernel.forward(params, X).shape == ((5, 3) if kernel.spec.layout == "rows" else (3, 5))
    loss, grads = kernel.loss_and_grads(params, X, Y)
    assert np.isfinite(loss) and grads["W1"].shape == (8, 4)


@pytest.mark.parametrize("make, message", [
    (lambda X, Y, rows: (X[0] if rows else X[:, 0], Y), r"X is 1-D with shape \(4,\); expected a 2-D batch .*for one example pass X\["),
    (lambda X, Y, rows: (X.T.copy(), Y), r"X has shape .*; expected .* \(it looks transposed: pass X\.T\)"),
    (lambda X, Y, rows: (X[:, :3] if rows else X[:3], Y), r"X has shape .*; expected (m × 4|4 × m)"),
    (lambda X, Y, rows: (np.where(X > 1, np.nan, X), Y), r"X contains NaN or infinity \(first at X\["),
    (lambda X, Y, rows: (X.tolist(), Y), r"X must be a NumPy array"),
    (lambda X, Y, rows: (X, Y.T.copy()), r"Y has shape .* \(it looks transposed: pass Y\.T\)"),
    (lambda X, Y, rows: (X, Y[:2] if rows else Y[:, :2]), r"X holds 5 examples but Y holds 2"),
    (lambda X, Y, rows: (X, np.full_like(Y, np.inf)), r"Y contains NaN or infinity"),
])
def test_bad_input_is_a_value_error_naming_it(kernel, make, message):
    params = kernel.init_params(0)
    X, Y = make(*batch(kernel), kernel.spec.layout == "rows")
    with pytest.raises(ValueError, match=message):
        kernel.loss_and_grads(params, X, Y)
    with pytest.raises(ValueError, match=message):
        kernel.loss(params, X, Y)
    if "Y" not in message:
        with pytest.raises(ValueError, match=r"^forward: " + message):
            kernel.forward(params, X)


def test_train_step_is_not_checked(kernel):
    """The hot loop takes what it is given (train() passes checked arrays)."""
    assert "_check_inputs" not in kernel.source.split("def train_step", 1)[1]
