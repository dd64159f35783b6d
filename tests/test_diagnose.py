"""diagnose() names the slip behind a wrong gradient.

The wrong gradients come from a hand-written NumPy backprop with switches for the classic slips
(independent of symbackprop's code), or from simple transformations of the true gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

import symbackprop.diagnose as diagnose_module
from symbackprop.diagnose import diagnose
from symbackprop.network import NetworkSpec
from symbackprop.numeric import gradients

from .gallery import ACTIVATIONS, softmax


def problem(spec, seed=0, scale=1.0, penalty=None):
    rng = np.random.default_rng(seed)
    n, m = spec.widths, spec.batch
    params = {}
    for k in range(1, spec.depth + 1):
        params[f"W{k}"] = rng.uniform(-1, 1, (n[k], n[k - 1])) * scale
        params[f"b{k}"] = rng.uniform(-1, 1, n[k]) * scale
    X = rng.uniform(-1, 1, (n[0], m))
    if spec.loss == "cross_entropy":
        Y = np.eye(n[-1])[:, rng.integers(0, n[-1], m)]
    else:
        Y = rng.uniform(0, 1, (n[-1], m))
    if spec.layout == "rows":
        X, Y = X.T, Y.T
    return params, X, Y


def hand(spec, params, X, Y, penalty=None, *, untransposed=(), flat=(), flat_output=False, g_at_a=(),
         shift_a=False, relu0=0.0, extra_output_derivative=False, elementwise_softmax=False,
         borrowed_shortcut=False, no_recursion=False, factor=1.0, penalty_factor=1.0):
    """Backprop by hand (examples as columns inside), with switches for the slips."""
    L, m = spec.depth, spec.batch
    rows = spec.layout == "rows"
    X, Y = (X.T, Y.T) if rows else (X, Y)
    W = {k: params[f"W{k}"] for k in range(1, L + 1)}
    Z, A = {}, {0: X}
    for k in range(1, L + 1):
        Z[k] = W[k] @ A[k - 1] + params[f"b{k}"].reshape(-1, 1)
        name = spec.activation(k).name
        A[k] = softmax(Z[k]) if name == "softmax" else ACTIVATIONS[name][0](Z[k])

    def g_prime(k, z, a):
        name = spec.activation(k).name
        if name == "relu":
            return np.where(z > 0, 1.0, np.where(z < 0, 0.0, relu0))
        return ACTIVATIONS[name][1](z, a)

    a, z, out = A[L], Z[L], spec.output
    shortcut = (out, spec.loss) in (("softmax", "cross_entropy"), ("sigmoid", "bce"))
    grad = {"half_sse": lambda: a - Y, "bce": lambda: (a - Y) / (a * (1 - a)), "cross_entropy": lambda: -Y / a}[spec.loss]()
    if borrowed_shortcut or (shortcut and not (flat_output or elementwise_softmax)):
        delta = a - Y
        if extra_output_derivative:
            delta = delta * (a * (1 - a) if out == "softmax" else g_prime(L, z, a))
    elif flat_output:
        delta = grad
    elif out == "softmax":
        delta = grad * a * (1 - a) if elementwise_softmax else a * (grad - np.sum(a * grad, axis=0))
    else:
        delta = grad * g_prime(L, z, a)
    delta = delta * factor / (m if spec.reduction == "mean" else 1)
    deltas = {L: delta}
    for k in range(L - 1, 0, -1):
        Wn = W[k + 1] if (k + 1) in untransposed else W[k + 1].T
        back = deltas[k + 1] if no_recursion else Wn @ deltas[k + 1]
        at = A[k] if k in g_at_a else Z[k]
        deltas[k] = back if (k in flat or no_recursion) else back * g_prime(k, at, ACTIVATIONS[spec.hidden][0](at))
    grads = {}
    for k in range(1, L + 1):
        grads[f"W{k}"] = deltas[k] @ (A[k] if shift_a else A[k - 1]).T
        if penalty is not None and penalty_factor:
            grads[f"W{k}"] = grads[f"W{k}"] + penalty * penalty_factor * W[k]
        grads[f"b{k}"] = deltas[k].sum(axis=1)
        grads[f"z{k}"] = deltas[k].T if rows else deltas[k]
        grads[f"unsummed{k}"] = deltas[k]
    return grads


SIGMOID3 = dict(widths=(2, 3, 3, 3), hidden="sigmoid", output="sigmoid", loss="half_sse", batch=3)


def check(spec, slip_kwargs, expected, quantities=("W1",), penalty=None, seed=0, scale=1.0):
    spec = NetworkSpec(**spec)
    params, X, Y = problem(spec, seed, scale)
    truth = gradients(spec, params, X, Y, penalty)
    wrong = hand(spec, params, X, Y, penalty, **slip_kwargs)
    for name in quantities:
        assert np.shape(wrong[name]) != np.shape(truth[name]) or np.abs(wrong[name] - truth[name]).max() > 1e-9, \
            f"the slip leaves {name} right"
        found = diagnose(spec, params, X, Y, name[0], int(name[1:]), wrong[name], penalty)
        assert found is not None and found.startswith(expected), (name, found)


def test_hand_written_backprop_without_slips_is_right():
    for spec in (NetworkSpec(**SIGMOID3), NetworkSpec((2, 3, 3), hidden="relu", output="softmax",
                                                      loss="cross_entropy", batch=2, layout="rows")):
        params, X, Y = problem(spec)
        truth = gradients(spec, params, X, Y)
        mine = hand(spec, params, X, Y)
        for name, value in truth.items():
            np.testing.assert_allclose(np.reshape(mine[name], value.shape), value, rtol=1e-12, atol=1e-15)
            assert diagnose(spec, params, X, Y, name[0], int(name[1:]), mine[name]) is None


@pytest.mark.parametrize("slip, expected, quantities", [
    (dict(untransposed=(2, 3)), "missing transpose: W used where Wᵀ belongs", ("W1", "b1", "z2")),
    (dict(untransposed=(2,)), "missing transpose: W_2 used where W_2ᵀ belongs", ("W1",)),
    (dict(flat=(1,)), "missing derivative factor g′(z_1)", ("W1", "b1")),
    (dict(flat=(2,)), "missing derivative factor g′(z_2)", ("W2", "z2")),
    (dict(flat=(1, 2)), "missing derivative factor g′(z_k) in every hidden layer", ("W1",)),
    (dict(flat_output=True), "missing derivative factor g′(z_3)", ("W3", "W1")),
    (dict(factor=3.0), "missing 1/m", ("W3", "b2", "W1")),
    (dict(factor=1 / 3), "1/m applied twice", ("W1",)),
    (dict(factor=-1.0), "sign flipped", ("W1", "b3", "z2")),
    (dict(g_at_a=(1, 2)), "g′ evaluated at a_2 where z_2 belongs", ("W2",)),
    (dict(shift_a=True), "a_k used where a_{k−1} belongs", ("W1", "W3")),
    (dict(no_recursion=True), "δ_L used where δ_k belongs", ("W1",)),
])
def test_slips_of_a_sigmoid_network(slip, expected, quantities):
    check(SIGMOID3, slip, expected, quantities)


def test_slips_at_the_output_layer():
    softmax_ce = dict(widths=(2, 3, 3), hidden="tanh", output="softmax", loss="cross_entropy", batch=2)
    check(softmax_ce, dict(elementwise_softmax=True), "softmax derivative taken elementwise", ("W2", "W1"))
    check(softmax_ce, dict(flat_output=True), "missing softmax Jacobian", ("W2",))
    check(softmax_ce, dict(extra_output_derivative=True), "softmax derivative ŷ(1−ŷ) applied on top", ("W2",))
    softmax_sse = dict(softmax_ce, loss="half_sse")
    check(softmax_sse, dict(borrowed_shortcut=True), "cross-entropy shortcut ŷ − y used without cross-entropy", ("W2",))
    sigmoid_bce = dict(widths=(2, 3, 2), hidden="relu", output="sigmoid", loss="bce", batch=2)
    check(sigmoid_bce, dict(extra_output_derivative=True), "derivative factor g′(z_2) applied on top of the a−y",
          ("W2", "b1"))


def test_examples_as_rows_and_summed_losses():
    rows = dict(SIGMOID3, layout="rows")
    check(rows, dict(untransposed=(2, 3)), "missing transpose", ("W1", "z1"))
    check(rows, dict(factor=-1.0), "sign flipped", ("z2", "b1"))
    summed = dict(SIGMOID3, reduction="sum")
    check(summed, dict(factor=1 / 3), "1/m applied to a summed loss", ("W2",))


def test_l2_penalty_slips():
    spec = dict(SIGMOID3, l2=True)
    check(spec, dict(penalty_factor=0), "L2 term λW_k missing", ("W2",), penalty=0.3)
    check(spec, dict(penalty_factor=2), "L2 term doubled", ("W1",), penalty=0.3)
    check(spec, dict(penalty_factor=0.5), "L2 term halved", ("W3",), penalty=0.3)


def test_relu_convention_at_zero():
    spec = NetworkSpec((2, 2, 1), hidden="relu", output="identity", loss="half_sse", batch=2)
    params = {"W1": np.array([[1.0, -1.0], [0.5, 0.5]]), "b1": np.array([0.0, 0.25]),
              "W2": np.array([[1.0, -2.0]]), "b2": np.array([0.5])}
    X, Y = np.array([[1.0, -1.0], [1.0, 0.5]]), np.array([[0.25, -0.5]])  # z1 = [[0, -1.5], [1.25, 0]]
    wrong = hand(spec, params, X, Y, relu0=1.0)
    assert diagnose(spec, params, X, Y, "W", 1, wrong["W1"]) == \
        "ReLU′(0) taken as 1 (this network states ReLU′(0) = 0)"


def test_shape_slips_and_direct_comparisons():
    spec = NetworkSpec(**SIGMOID3)
    params, X, Y = problem(spec)
    right = hand(spec, params, X, Y)
    args = (spec, params, X, Y)
    assert diagnose(*args, "b", 2, right["unsummed2"]) == "bias gradient not summed over the batch"
    assert diagnose(*args, "b", 2, right["unsummed2"].T) == "bias gradient not summed over the batch"
    assert diagnose(*args, "b", 2, right["unsummed2"][:, 0]).startswith("bias gradient of the first example only")
    assert diagnose(*args, "b", 2, right["b2"].reshape(-1, 1)) is None  # (n, 1) is a fine bias shape
    assert diagnose(*args, "W", 2, right["W2"].T).startswith("gradient transposed")
    assert diagnose(*args, "W", 2, right["W3"]) == "gradient of layer 3 given for layer 2 (k+1)"
    assert diagnose(*args, "W", 3, right["W2"]) == "gradient of layer 2 given for layer 3 (k−1)"


def test_float32_claims_are_matched_within_their_own_rounding():
    spec = NetworkSpec(**SIGMOID3)
    params, X, Y = problem(spec)
    wrong = hand(spec, params, X, Y, flat=(1,))["W1"]
    assert diagnose(spec, params, X, Y, "W", 1, wrong.astype(np.float32)) == "missing derivative factor g′(z_1)"
    right = hand(spec, params, X, Y)["W1"].astype(np.float32)
    assert diagnose(spec, params, X, Y, "W", 1, right) is None


def test_saturated_sigmoids_do_not_hide_a_missing_derivative():
    spec = NetworkSpec(**SIGMOID3)
    params, X, Y = problem(spec, scale=8.0)  # |z| up to ~30: σ′ as small as 1e-13
    check(SIGMOID3, dict(flat=(1,)), "missing derivative factor g′(z_1)", ("W1",), scale=8.0)
    assert diagnose(spec, params, X, Y, "W", 1, hand(spec, params, X, Y)["W1"]) is None


def test_nothing_to_name():
    spec = NetworkSpec(**SIGMOID3)
    params, X, Y = problem(spec)
    noise = np.random.default_rng(5).normal(size=(3, 2))
    assert diagnose(spec, params, X, Y, "W", 1, noise) is None
    generic = NetworkSpec((2, 2, 1), hidden="generic", output="identity", loss="half_sse")
    params, X, Y = problem(generic)
    assert diagnose(generic, params, X, Y, "W", 1, np.zeros((2, 2))) is None
    with pytest.raises(ValueError, match="no quantity a1"):
        diagnose(spec, params, X, Y, "a", 1, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="no quantity W4"):
        diagnose(spec, params, X, Y, "W", 4, np.zeros((3, 2)))


def test_slips_are_the_proven_recurrences_rerun(monkeypatch):
    """Every slip value comes from derive.backprop over a changed network, not from a second copy."""
    calls = []
    real = diagnose_module.backprop
    monkeypatch.setattr(diagnose_module, "backprop", lambda net, **kw: calls.append(net) or real(net, **kw))
    spec = NetworkSpec(**SIGMOID3)
    params, X, Y = problem(spec)
    wrong = hand(spec, params, X, Y, shift_a=True)["W2"]
    assert diagnose(spec, params, X, Y, "W", 2, wrong).startswith("a_k used where a_{k−1} belongs")
    assert len(calls) >= 10 and len({id(net) for net in calls}) >= 10
