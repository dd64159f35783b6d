"""Hand-written NumPy backprop, as people write it: correct versions and the classic slips.

Nothing here imports symbackprop: this is the user's side.  Examples are columns, W_k is
n_k × n_{k−1}, b_k is (n_k,), and the loss is the mean over the batch, unless a function says
otherwise.  Each slip is marked ``# SLIP``.
"""

from __future__ import annotations

import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# name: (g(z), g′ given z and a = g(z))
ACTIVATIONS = {
    "sigmoid": (sigmoid, lambda z, a: a * (1 - a)),
    "tanh": (np.tanh, lambda z, a: 1 - a ** 2),
    "relu": (lambda z: np.maximum(z, 0), lambda z, a: (z > 0).astype(z.dtype)),
    "identity": (lambda z: z, lambda z, a: np.ones_like(z)),
    "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z), lambda z, a: np.where(z > 0, 1, 0.01).astype(z.dtype)),
    "softplus": (lambda z: np.logaddexp(0, z), lambda z, a: sigmoid(z)),
    "silu": (lambda z: z * sigmoid(z), lambda z, a: sigmoid(z) * (1 + z * (1 - sigmoid(z)))),
}


def softmax(z):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def forward(params, X, hidden="sigmoid", output="sigmoid"):
    """Pre-activations Z[k] and activations A[k], k = 0..L (Z[0] unused)."""
    depth = len(params) // 2
    Z, A = [None], [X]
    for k in range(1, depth + 1):
        Z.append(params[f"W{k}"] @ A[k - 1] + params[f"b{k}"].reshape(-1, 1))
        name = hidden if k < depth else output
        A.append(softmax(Z[k]) if name == "softmax" else ACTIVATIONS[name][0](Z[k]))
    return Z, A


def _loss(network, z, a, Y, m):
    """The loss from the output layer's z, computed stably (log σ and log softmax from z)."""
    if network.loss == "half_sse":
        total = 0.5 * np.sum((a - Y) ** 2)
    elif network.loss == "mse":
        total = np.sum((a - Y) ** 2) / Y.shape[0]
    elif network.output == "softmax":
        log_a = z - z.max(axis=0) - np.log(np.sum(np.exp(z - z.max(axis=0)), axis=0))
        with np.errstate(divide="ignore"):  # a one-unit softmax is 1: log 0
            log_1_minus_a = np.log1p(-a)
        total = -np.sum(Y * log_a) if network.loss == "cross_entropy" else \
            -np.sum(Y * log_a + (1 - Y) * log_1_minus_a)
    else:  # sigmoid output: log σ(z) = −log(1 + e^{−z}), log(1 − σ(z)) = −log(1 + e^{z})
        log_a, log_1_minus_a = -np.logaddexp(0, -z), -np.logaddexp(0, z)
        total = -np.sum(Y * log_a) if network.loss == "cross_entropy" else \
            -np.sum(Y * log_a + (1 - Y) * log_1_minus_a)
    return total / m if network.reduction == "mean" else total


def correct(params, X, Y, network):
    """Any of the activations above, any output and loss; returns (loss, grads incl. δ's)."""
    L, m = network.depth, X.shape[1]
    hidden = network.hidden if isinstance(network.hidden, str) else network.hidden[0]
    Z, A = forward(params, X, hidden, network.output)
    a, z = A[L], Z[L]
    if (network.output, network.loss) in (("softmax", "cross_entropy"), ("sigmoid", "bce")):
        delta = a - Y
    else:
        if network.loss in ("half_sse", "mse"):
            grad = (a - Y) * (1.0 if network.loss == "half_sse" else 2.0 / Y.shape[0])
        elif network.loss == "bce":
            grad = (a - Y) / (a * (1 - a))
        else:
            grad = -Y / a
        if network.output == "softmax":
            delta = a * (grad - np.sum(a * grad, axis=0, keepdims=True))
        else:
            delta = grad * ACTIVATIONS[network.output][1](z, a)
    if network.reduction == "mean":
        delta = delta / m
    grads = {}
    for k in range(L, 0, -1):
        grads[f"z{k}"] = delta
        grads[f"W{k}"] = delta @ A[k - 1].T
        grads[f"b{k}"] = delta.sum(axis=1)
        if k > 1:
            delta = (params[f"W{k}"].T @ delta) * ACTIVATIONS[hidden][1](Z[k - 1], A[k - 1])
    return _loss(network, z, a, Y, m), grads


def rows_in_out_sum(params, X, Y):
    """A ReLU classifier written the other way round: X is m × n_0, z = a W + b with W as
    n_{k−1} × n_k, softmax + cross-entropy summed over the batch."""
    depth = len(params) // 2
    A, Z = [X], [None]
    for k in range(1, depth + 1):
        Z.append(A[-1] @ params[f"W{k}"] + params[f"b{k}"])
        if k < depth:
            A.append(np.maximum(Z[k], 0))
        else:
            e = np.exp(Z[k] - Z[k].max(axis=1, keepdims=True))
            A.append(e / e.sum(axis=1, keepdims=True))
    delta = A[depth] - Y
    grads = {}
    for k in range(depth, 0, -1):
        grads[f"W{k}"] = A[k - 1].T @ delta
        grads[f"b{k}"] = delta.sum(axis=0)
        if k > 1:
            delta = (delta @ params[f"W{k}"].T) * (Z[k - 1] > 0)
    return grads


# ------------------------------------------------------------------ the slips (sigmoid MLPs)


def backward(params, A, delta):
    """The correct loop over layers, from δ_L (for slips that happen before it)."""
    grads = {}
    for k in range(len(A) - 1, 0, -1):
        grads[f"W{k}"], grads[f"b{k}"] = delta @ A[k - 1].T, delta.sum(axis=1)
        if k > 1:
            delta = (params[f"W{k}"].T @ delta) * A[k - 1] * (1 - A[k - 1])
    return grads


def missing_transpose(params, X, Y):
    """Sigmoid layers, ½‖a − y‖²: W_{k+1} where W_{k+1}ᵀ belongs."""
    L, m = len(params) // 2, X.shape[1]
    Z, A = forward(params, X)
    delta = (A[L] - Y) * A[L] * (1 - A[L]) / m
    grads = {}
    for k in range(L, 0, -1):
        grads[f"W{k}"], grads[f"b{k}"] = delta @ A[k - 1].T, delta.sum(axis=1)
        if k > 1:
            delta = (params[f"W{k}"] @ delta) * A[k - 1] * (1 - A[k - 1])  # SLIP: W, not W.T
    return grads


def missing_sigma_prime(params, X, Y):
    """Sigmoid layers, ½‖a − y‖²: the hidden δ without σ′."""
    L, m = len(params) // 2, X.shape[1]
    Z, A = forward(params, X)
    delta = (A[L] - Y) * A[L] * (1 - A[L]) / m
    grads = {}
    for k in range(L, 0, -1):
        grads[f"W{k}"], grads[f"b{k}"] = delta @ A[k - 1].T, delta.sum(axis=1)
        if k > 1:
            delta = params[f"W{k}"].T @ delta  # SLIP: no * a (1 - a)
    return grads


def forgotten_mean(params, X, Y):
    """Sigmoid layers, ½‖a − y‖² averaged over the batch — but no 1/m."""
    L = len(params) // 2
    Z, A = forward(params, X)
    return backward(params, A, (A[L] - Y) * A[L] * (1 - A[L]))  # SLIP: no / m


def bias_not_summed(params, X, Y):
    """Sigmoid layers, ½‖a − y‖²: ∂J/∂b left as δ, one column per example."""
    L, m = len(params) // 2, X.shape[1]
    Z, A = forward(params, X)
    delta = (A[L] - Y) * A[L] * (1 - A[L]) / m
    grads = {}
    for k in range(L, 0, -1):
        grads[f"W{k}"], grads[f"b{k}"] = delta @ A[k - 1].T, delta  # SLIP: not delta.sum(axis=1)
        if k > 1:
            delta = (params[f"W{k}"].T @ delta) * A[k - 1] * (1 - A[k - 1])
    return grads


def softmax_shortcut_without_cross_entropy(params, X, Y):
    """Sigmoid hidden layers, softmax output, ½‖ŷ − y‖²: δ_L = ŷ − y, true only for cross-entropy."""
    L, m = len(params) // 2, X.shape[1]
    Z, A = forward(params, X, output="softmax")
    return backward(params, A, (A[L] - Y) / m)  # SLIP: the softmax Jacobian is missing


def softmax_derivative_elementwise(params, X, Y):
    """Sigmoid hidden layers, softmax + cross-entropy through ∂ℓ/∂ŷ — with softmax′ = ŷ(1 − ŷ)."""
    L, m = len(params) // 2, X.shape[1]
    Z, A = forward(params, X, output="softmax")
    return backward(params, A, (-Y / A[L]) * A[L] * (1 - A[L]) / m)  # SLIP: only the Jacobian's diagonal


def off_by_one_layer(params, X, Y):
    """Sigmoid layers, ½‖a − y‖²: ∂J/∂W_k = δ_k a_kᵀ (the layer's own activation)."""
    L, m = len(params) // 2, X.shape[1]
    Z, A = forward(params, X)
    delta = (A[L] - Y) * A[L] * (1 - A[L]) / m
    grads = {}
    for k in range(L, 0, -1):
        grads[f"W{k}"], grads[f"b{k}"] = delta @ A[k].T, delta.sum(axis=1)  # SLIP: A[k], not A[k - 1]
        if k > 1:
            delta = (params[f"W{k}"].T @ delta) * A[k - 1] * (1 - A[k - 1])
    return grads
