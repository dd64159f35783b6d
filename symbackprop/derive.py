"""The two derivations of every gradient.

(a) :func:`direct` — differentiate the whole loss J with respect to each entry: ∂J/∂W_k[i,j],
    ∂J/∂b_k[i] and ∂J/∂z_k[i,e] (through the perturbation ε of z_k).  The chain rule is applied
    node by node by the evaluator; nothing about layers is assumed.
(b) :func:`backprop` — the textbook recurrences with the closed forms of the rules table:

        δ_L = c · (output delta)          c = 1/m (mean) or 1 (sum)
        δ_k = (W_{k+1}ᵀ δ_{k+1}) ⊙ g_k′(z_k)
        ∂J/∂W_k = δ_k a_{k-1}ᵀ (+ λ W_k),   ∂J/∂b_k = δ_k 1_m,   ∂J/∂z_k = δ_k

    (with examples as rows every product is transposed: δ_k = (δ_{k+1} W_{k+1}) ⊙ g_k′(z_k),
    ∂J/∂W_k = δ_kᵀ a_{k-1}, ∂J/∂b_k = δ_kᵀ 1_m).

Both return ``{(quantity, k): matrix}`` with quantity one of ``"z"``, ``"W"``, ``"b"``.
"""

from __future__ import annotations

from . import rules
from .evaluate import Partial
from .matrices import Mat
from .network import Network, _times, output_factor, penalty_coefficient

QUANTITIES = ("z", "W", "b")


def gradient_of(net: Network, of, wrt: Mat, label=None) -> Mat:
    """The matrix of true partial derivatives ∂(of)/∂(wrt entry), shaped like ``wrt``."""
    label = label if label is not None else net.loss_symbol
    return wrt.map(lambda theta: Partial(of, theta, label))


def direct(net: Network) -> dict:
    gradients = {}
    for k in range(1, net.depth + 1):
        gradients["z", k] = gradient_of(net, net.J, net.Ez[k])
        gradients["W", k] = gradient_of(net, net.J, net.W[k])
        gradients["b", k] = gradient_of(net, net.J, net.b[k])
    return gradients


def hidden_delta(alg, W_next, delta_next, derivative, Z):
    """δ_k = (W_{k+1}ᵀ δ_{k+1}) ⊙ g_k′(z_k)  (examples as rows: (δ_{k+1} W_{k+1}) ⊙ g_k′(z_k))."""
    if alg.layout == "columns":
        back = alg.matmul(alg.T(W_next), delta_next)
    else:
        back = alg.matmul(delta_next, W_next)
    return alg.hadamard(back, alg.apply(derivative, Z))


def parameter_gradients(alg, delta, A_prev, ones):
    """(∂J/∂W_k, ∂J/∂b_k) = (δ_k a_{k-1}ᵀ, δ_k 1_m)  (examples as rows: (δ_kᵀ a_{k-1}, δ_kᵀ 1_m))."""
    if alg.layout == "columns":
        return alg.matmul(delta, alg.T(A_prev)), alg.matmul(delta, ones)
    return alg.matmul(alg.T(delta), A_prev), alg.matmul(alg.T(delta), ones)


def penalty_gradient(alg, penalty, W):
    """∂/∂W_k of (λ/2)·Σ‖W‖² = λ W_k (other ``l2_form`` s: ``penalty`` is 2κλ for κλ·Σ‖W‖²)."""
    return alg.scale(penalty, W)


def output_step(spec, alg, A_L, Y, Z_L, reduction_factor, *, shortcut: bool = True):
    """δ_L = c · (output delta) [· 1/n_L when ℓ is averaged over the output units]."""
    output = rules.output_delta(alg, spec.loss_rule, spec.activation(spec.depth), A_L, Y, Z_L, shortcut=shortcut)
    if getattr(spec, "output_reduction", "sum") != "sum":  # ℓ averaged over the output units
        output = alg.scale(output_factor(spec, alg, A_L), output)
    return alg.scale(reduction_factor, output)


def penalty_factor(spec, penalty, m):
    """The factor of W_k in ∂/∂W_k of the penalty: λ for (λ/2)·Σ‖W‖², 2κλ for κλ·Σ‖W‖²."""
    if penalty is not None and getattr(spec, "l2_form", "lambda/2") != "lambda/2":  # ∂(κλ‖θ‖²)/∂θ = 2κλθ
        penalty = _times(penalty, 2 * penalty_coefficient(spec, m))
    return penalty


def layer_gradients(spec, alg, delta, A_prev, W, b, penalty, ones):
    """(∂J/∂W_k, ∂J/∂b_k) from δ_k and a_{k-1}, with the penalty's share (``penalty`` from :func:`penalty_factor`)."""
    dW, db = parameter_gradients(alg, delta, A_prev, ones)
    if penalty is not None:
        dW = alg.add(dW, penalty_gradient(alg, penalty, W))
        if getattr(spec, "l2_biases", False):
            db = alg.add(db, penalty_gradient(alg, penalty, b))
    return dW, db


def backprop(net: Network, *, shortcut: bool = True) -> dict:
    alg, spec, L = net.alg, net.spec, net.depth
    W, Z, A = net.W, net.Z, net.A
    ones = alg.ones(net.batch, 1)

    delta = {L: output_step(spec, alg, A[L], net.Y, Z[L], net.reduction_factor, shortcut=shortcut)}
    for k in range(L - 1, 0, -1):
        delta[k] = hidden_delta(alg, W[k + 1], delta[k + 1], spec.activation(k).derivative, Z[k])

    penalty = penalty_factor(spec, net.penalty, net.batch)
    gradients = {}
    for k in range(1, L + 1):
        dW, db = layer_gradients(spec, alg, delta[k], A[k - 1], W[k], net.b[k], penalty, ones)
        gradients["z", k], gradients["W", k], gradients["b", k] = delta[k], dW, db
    return gradients
