"""symbackprop.testing catches real slips in hand-written backprop, names them, and shrinks to the
smallest network that shows them — and passes correct code, in float64 and float32."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symbackprop.network import NetworkSpec
from symbackprop.numeric import gradients
from symbackprop.testing import (BackpropCheckFailed, BackpropMismatch, assert_backprop, batches, check_backprop,
                                 networks, parameters, problems, sample_problem)

from . import gallery

SIGMOID = dict(hidden=["sigmoid"], output=["sigmoid"], loss=["half_sse"])
SOFTMAX = dict(hidden=["sigmoid"], output=["softmax"])
BOUNDS = dict(max_width=3, max_batch=3, layout=["columns"], reduction=["mean"])


# ---------------------------------------------------------------------------- strategies


@settings(max_examples=60, deadline=None)
@given(networks(min_depth=2, max_depth=3, max_width=3, max_batch=2, hidden=["tanh", "relu"],
                output=["sigmoid", "softmax"], loss=["bce", "cross_entropy"], layout=["rows"]))
def test_networks_respect_bounds_and_choices(network):
    assert 2 <= network.depth <= 3 and all(1 <= w <= 3 for w in network.widths) and 1 <= network.batch <= 2
    assert network.hidden in ("tanh", "relu") and network.layout == "rows"
    assert (network.output, network.loss) in {("sigmoid", "bce"), ("softmax", "bce"), ("softmax", "cross_entropy"),
                                              ("sigmoid", "cross_entropy")}


@pytest.mark.parametrize("arguments, message", [
    (dict(hidden=["sigmod"]), "unknown activation 'sigmod'"),
    (dict(hidden=["softmax"]), "softmax can only be the output activation"),
    (dict(hidden=["generic"]), "has no NumPy form"),
    (dict(min_width=3, max_width=2), "need 1 <= min_width <= max_width"),
    (dict(loss=["bce"], output=["tanh"]), "no loss in \\['bce'\\] is defined for an output in \\['tanh'\\]"),
    (dict(layout=["diagonal"]), "layout must be 'columns' or 'rows'"),
])
def test_networks_reject_bad_choices_in_one_line(arguments, message):
    with pytest.raises(ValueError, match=message):
        networks(**arguments)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_parameters_and_batches_fit_their_network(data):
    network = data.draw(networks(max_depth=2, loss=["cross_entropy", "bce", "half_sse"]))
    dtype = data.draw(st.sampled_from(["float32", "float64"]))
    params = data.draw(parameters(network, dtype=dtype))
    X, Y = data.draw(batches(network, params, dtype=dtype))
    n, m = network.widths, network.batch
    for k in range(1, network.depth + 1):
        assert params[f"W{k}"].shape == (n[k], n[k - 1]) and params[f"b{k}"].shape == (n[k],)
        assert params[f"W{k}"].dtype == np.dtype(dtype)
    columns = network.layout == "columns"
    assert X.shape == ((n[0], m) if columns else (m, n[0])) and Y.shape == ((n[-1], m) if columns else (m, n[-1]))
    if network.loss == "cross_entropy":
        assert np.all(Y.sum(axis=0 if columns else 1) == 1)  # exactly: multiples of 1/8
    if network.loss == "bce":
        assert np.all((0 <= Y) & (Y <= 1))


def preactivations(problem):
    from symbackprop.numeric import NumericNetwork

    net = NumericNetwork(*problem[:4], problem.penalty)
    return [net.Z[k] for k in range(1, net.depth + 1)]


def test_kinks_are_avoided_unless_asked_for():
    relu = networks(hidden=["relu"], output=["relu", "leaky_relu"], loss=["half_sse"], min_depth=2)

    @settings(max_examples=50, deadline=None)
    @given(problems(relu, dtype="float32"))
    def clear(problem):
        assert all(np.all(z != 0) for z in preactivations(problem))

    clear()
    spec = NetworkSpec((3, 3, 2), hidden="relu", output="relu", loss="half_sse", batch=2)
    zeros = sum(np.sum(z == 0) for seed in range(20) for z in preactivations(sample_problem(spec, seed, kinks=True)))
    assert zeros >= 10  # the dyadic grid lands on kinks often


def test_saturated_values_saturate():
    spec = NetworkSpec((3, 3, 2), hidden="sigmoid", output="sigmoid", loss="half_sse", batch=3)
    z = np.concatenate([z.ravel() for seed in range(10) for z in preactivations(sample_problem(spec, seed, saturated=True))])
    assert np.mean(np.abs(z) > 5) > 0.5  # σ′ < 0.007 for most units
    z = np.concatenate([z.ravel() for seed in range(10) for z in preactivations(sample_problem(spec, seed))])
    assert np.mean(np.abs(z) > 5) == 0


# ------------------------------------------------------------------- correct code passes


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_correct_backprop_passes_200_examples(dtype):
    seen = []

    def counted(params, X, Y, network):
        seen.append(network)
        return gallery.correct(params, X, Y, network)

    check_backprop(counted, networks(), max_examples=200, dtype=dtype, reduction="network", seed=1)
    assert len(seen) >= 200
    assert {n.hidden for n in seen} >= {"sigmoid", "tanh", "relu", "softplus", "silu"} and \
        {n.loss for n in seen} == {"half_sse", "mse", "bce", "cross_entropy"} and max(n.depth for n in seen) == 3


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the user's 1/(1 + e^{−z}) overflows to 0: fine
def test_a_correct_backprop_passes_saturated_float32():
    for choice in (dict(loss=["half_sse", "mse", "cross_entropy"]), dict(loss=["bce"], output=["sigmoid"])):
        check_backprop(gallery.correct, networks(**choice), max_examples=100, dtype="float32", saturated=True,
                       reduction="network", seed=2)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the user's code divides by 0
def test_an_unstable_chain_rule_is_caught_at_float32_saturation():
    """Softmax + BCE through ∂ℓ/∂a = (a − y)/(a(1 − a)) divides by 0 once float32 rounds a to 1."""
    with pytest.raises(BackpropCheckFailed, match="not finite") as failed:
        check_backprop(gallery.correct, networks(output=["softmax"], loss=["bce"]), max_examples=100,
                       dtype="float32", saturated=True, seed=2)
    assert failed.value.failures[0].wrong


def test_other_conventions():
    check_backprop(gallery.rows_in_out_sum, networks(hidden=["relu"], output=["softmax"], loss=["cross_entropy"]),
                   max_examples=60, examples="rows", weights="in_out", reduction="sum", seed=3)
    with pytest.raises(BackpropCheckFailed):  # told the wrong convention: caught too
        check_backprop(gallery.rows_in_out_sum, networks(hidden=["relu"], output=["softmax"], loss=["cross_entropy"]),
                       max_examples=60, examples="rows", reduction="sum", seed=3)

    def column_biases(params, X, Y, network):
        assert all(params[f"b{k}"].shape == (network.widths[k], 1) for k in range(1, network.depth + 1))
        loss, grads = gallery.correct(params, X, Y, network)
        return [grads[f"b{k}"] for k in range(1, network.depth + 1)], [grads[f"W{k}"] for k in range(1, network.depth + 1)]

    check_backprop(column_biases, networks(max_depth=2), max_examples=30, biases="column", seed=4)

    def with_penalty(params, X, Y, network, penalty):
        loss, grads = gallery.correct(params, X, Y, network)
        return {f"d{name}": value + penalty * params[name] if name[0] == "W" else value for name, value in grads.items()}

    check_backprop(with_penalty, networks(max_depth=2, l2=True), max_examples=30, seed=5)
    with pytest.raises(TypeError, match="must accept penalty"):
        check_backprop(lambda params, X, Y: {}, networks(l2=True), max_examples=5, seed=5)
    with pytest.raises(TypeError, match="must return"):
        check_backprop(lambda params, X, Y: 3.0, networks(), max_examples=5, seed=5)


def test_missing_gradients_and_a_wrong_loss_are_reported():
    def no_biases(params, X, Y, network):
        loss, grads = gallery.correct(params, X, Y, network)
        return {name: value for name, value in grads.items() if name[0] == "W"}

    with pytest.raises(BackpropCheckFailed, match="∂J/∂b1: missing from what your function returned"):
        check_backprop(no_biases, networks(max_depth=1), max_examples=10, seed=6)

    def loss_without_mean(params, X, Y, network):
        loss, grads = gallery.correct(params, X, Y, network)
        return loss * X.shape[1], grads

    with pytest.raises(BackpropCheckFailed, match="J is wrong") as failed:
        check_backprop(loss_without_mean, networks(max_depth=1, loss=["half_sse"]), max_examples=30, seed=6)
    assert failed.value.failures[0].network.batch == 2


# ------------------------------------------------------------------------- the gallery

GALLERY = [  # function, networks, then per failure: (kind, widths, batch, wrong gradients, likely slip)
    (gallery.missing_transpose, SIGMOID,
     [("raised", (1, 1, 2), 1, None, None),
      ("wrong", (1, 2, 2), 1, {"W1", "b1"}, "missing transpose: W used where Wᵀ belongs")]),
    (gallery.missing_sigma_prime, SIGMOID,
     [("wrong", (1, 1, 1), 1, {"W1", "b1"}, "missing derivative factor g′(z_1)")]),
    (gallery.forgotten_mean, SIGMOID,
     [("wrong", (1, 1), 2, {"W1", "b1"}, "missing 1/m")]),
    (gallery.bias_not_summed, SIGMOID,
     [("wrong", (1, 1), 2, {"b1"}, "bias gradient not summed over the batch")]),
    (gallery.softmax_shortcut_without_cross_entropy, dict(SOFTMAX, loss=["half_sse"]),
     [("wrong", (1, 1), 1, {"W1", "b1"}, "cross-entropy shortcut ŷ − y used without cross-entropy")]),
    (gallery.softmax_derivative_elementwise, dict(SOFTMAX, loss=["cross_entropy"]),
     [("wrong", (1, 2), 1, {"W1", "b1"}, "softmax derivative taken elementwise")]),
    (gallery.off_by_one_layer, SIGMOID,
     [("wrong", (1, 1), 1, {"W1"}, "a_k used where a_{k−1} belongs (off by one layer)")]),
]


def how_it_fails(user_fn, network) -> set:
    """The kinds of failure ("raised", "wrong") of ``user_fn`` on ``network`` at five generic points."""
    kinds = set()
    for seed in range(5):
        problem = sample_problem(network, seed)
        try:
            assert_backprop(user_fn, *problem)
        except BackpropMismatch:
            kinds.add("wrong")
        except Exception:  # noqa: BLE001 — the user's function raised
            kinds.add("raised")
    return kinds


def smaller_networks(network, max_width: int, max_batch: int):
    """Every network Hypothesis would rank below ``network``: fewer layers (any widths and batch
    within the bounds), or as many layers, each width and the batch no larger."""
    for depth in range(1, network.depth + 1):
        for widths in itertools.product(range(1, max_width + 1), repeat=depth + 1):
            for batch in range(1, max_batch + 1):
                if depth == network.depth and not (batch <= network.batch and
                                                   all(a <= b for a, b in zip(widths, network.widths))):
                    continue
                if (widths, batch) != (network.widths, network.batch):
                    yield dataclasses.replace(network, widths=widths, batch=batch)


@pytest.mark.parametrize("user_fn, choices, expected", GALLERY, ids=[case[0].__name__ for case in GALLERY])
def test_each_slip_is_caught_named_and_shrunk_to_a_minimal_network(user_fn, choices, expected):
    with pytest.raises(BackpropCheckFailed) as failed:
        check_backprop(user_fn, networks(**choices, **BOUNDS), seed=0)
    report = str(failed.value)
    failures = failed.value.failures
    assert len(failures) == len(expected), report
    for failure, (kind, widths, batch, names, slip) in zip(failures, expected):
        network = failure.network
        assert ("raised" if failure.raised is not None else "wrong") == kind, report
        assert (network.widths, network.batch) == (widths, batch), report
        if kind == "wrong":
            assert {w.name for w in failure.wrong} == names, report
            assert all(w.diagnosis is not None and w.diagnosis.startswith(slip) for w in failure.wrong), report
            assert f"likely slip: {slip}" in report
        # minimal: no network ranked below it fails this way (nor, for the first reported, any way)
        assert kind in how_it_fails(user_fn, network)
        for smaller in smaller_networks(network, BOUNDS["max_width"], BOUNDS["max_batch"]):
            kinds = how_it_fails(user_fn, smaller)
            assert kind not in kinds, (smaller.describe(), kinds)
            if failure is failures[0]:
                assert not kinds, (smaller.describe(), kinds)


def test_a_plain_allclose_passes_what_the_check_catches_at_saturation():
    """Outputs saturated at their targets: δ_L without σ′ is ~1e-13, so allclose sees nothing."""
    spec = NetworkSpec((2, 2), output="sigmoid", loss="half_sse", batch=2)
    params = {"W1": np.array([[6.0, 7.0], [8.0, 6.5]]), "b1": np.array([9.0, 8.0])}
    X, Y = np.array([[1.0, 0.5], [0.75, 1.0]]), np.ones((2, 2))

    def no_sigma_prime_at_the_output(params, X, Y):
        a = gallery.sigmoid(params["W1"] @ X + params["b1"][:, None])
        delta = (a - Y) / X.shape[1]
        return {"W1": delta @ X.T, "b1": delta.sum(axis=1)}

    claimed, truth = no_sigma_prime_at_the_output(params, X, Y), gradients(spec, params, X, Y)
    assert all(np.allclose(claimed[name], truth[name]) for name in truth if name[0] in "Wb")
    with pytest.raises(BackpropMismatch, match="missing derivative factor g′\\(z_1\\)"):
        assert_backprop(no_sigma_prime_at_the_output, spec, params, X, Y)


def test_the_relu_convention_is_checked_at_kinks():
    def relu_prime_one_at_zero(params, X, Y):
        Z1 = params["W1"] @ X + params["b1"][:, None]
        A1 = np.maximum(Z1, 0)
        delta = (params["W2"] @ A1 + params["b2"][:, None] - Y) / X.shape[1]
        grads = {"W2": delta @ A1.T, "b2": delta.sum(axis=1)}
        delta = (params["W2"].T @ delta) * (Z1 >= 0)  # ReLU′(0) = 1
        return {**grads, "W1": delta @ X.T, "b1": delta.sum(axis=1)}

    relu = dict(hidden=["relu"], output=["identity"], loss=["half_sse"], min_depth=2, max_depth=2)
    check_backprop(relu_prime_one_at_zero, networks(**relu), max_examples=50, seed=7)  # kinks avoided
    with pytest.raises(BackpropCheckFailed, match="ReLU′\\(0\\) taken as 1 \\(this network states ReLU′\\(0\\) = 0\\)"):
        check_backprop(relu_prime_one_at_zero, networks(**relu), max_examples=50, kinks=True, seed=7)
    check_backprop(relu_prime_one_at_zero, networks(**relu, relu_at_zero=1), max_examples=50, kinks=True, seed=7)


# -------------------------------------------------------------------- inside @given tests


def test_assert_backprop_inside_a_users_given_test():
    @settings(max_examples=30, deadline=None, database=None)
    @given(problems(networks(**SIGMOID, max_width=3, layout=["columns"], reduction=["mean"])))
    def test_mine(problem):
        assert_backprop(gallery.missing_sigma_prime, *problem)

    with pytest.raises(BackpropMismatch) as failed:
        test_mine()
    assert isinstance(failed.value, AssertionError)
    message = str(failed.value)
    assert "network 1-1-1 sigmoid/sigmoid half_sse, batch 1" in message  # Hypothesis shrank it
    assert "likely slip: missing derivative factor g′(z_1)" in message

    @settings(max_examples=30, deadline=None, database=None)
    @given(problems(networks(**SIGMOID), dtype="float32"))
    def test_correct(problem):
        assert_backprop(gallery.correct, *problem, examples="columns", reduction="network")

    test_correct()


# ----------------------------------------------------------- conventions of real code (issue 16)


def softmax_classifier_on_labels(params, X, y):
    """Examples as rows, z = x W + b (W is n_{k−1} × n_k), ReLU hidden layers, softmax + cross-entropy
    averaged over the batch; y holds class indices (shape (m,)), as classifier code takes them."""
    depth, m = len(params) // 2, X.shape[0]
    H = [X]
    for k in range(1, depth):
        H.append(np.maximum(H[-1] @ params[f"W{k}"] + params[f"b{k}"], 0))
    scores = H[-1] @ params[f"W{depth}"] + params[f"b{depth}"]
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    dscores = p.copy()
    dscores[np.arange(m), y] -= 1
    dscores /= m
    out = {}
    for k in range(depth, 0, -1):
        out[f"W{k}"], out[f"b{k}"] = H[k - 1].T @ dscores, dscores.sum(axis=0)
        if k > 1:
            dscores = (dscores @ params[f"W{k}"].T) * (H[k - 1] > 0)
    return out


LABELLED = dict(hidden=["relu"], output=["softmax"], loss=["cross_entropy"], max_depth=2, min_width=2)


def test_labels_are_passed_as_integers_when_asked():
    seen = []

    def recorded(params, X, y):
        seen.append(y)
        return softmax_classifier_on_labels(params, X, y)

    check_backprop(recorded, networks(**LABELLED), max_examples=40, examples="rows", weights="in_out",
                   targets="labels", seed=11)
    assert seen and all(y.ndim == 1 and np.issubdtype(y.dtype, np.integer) for y in seen)
    with pytest.raises(BackpropCheckFailed):  # on soft targets this code is wrong, and it is caught
        check_backprop(lambda p, X, Y: softmax_classifier_on_labels(p, X, Y.argmax(axis=1)), networks(**LABELLED),
                       max_examples=40, examples="rows", weights="in_out", seed=11)
    network = NetworkSpec((3, 2), output="softmax", loss="cross_entropy", batch=2, layout="rows")
    problem = sample_problem(network, 0, targets="labels")
    labels = problem.Y.argmax(axis=1)
    assert_backprop(softmax_classifier_on_labels, network, problem.params, problem.X, labels,
                    examples="rows", weights="in_out", targets="labels")


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_onehot_and_label_targets_are_one_class_per_example(data):
    targets = data.draw(st.sampled_from(["onehot", "labels"]))
    network = data.draw(networks(max_depth=1, loss=["cross_entropy", "bce", "half_sse"], layout=["columns"]))
    X, Y = data.draw(batches(network, targets=targets))
    if network.widths[-1] == 1:
        assert set(np.unique(Y)) <= {0.0, 1.0}
    else:
        assert np.all(Y.sum(axis=0) == 1) and set(np.unique(Y)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="targets must be one of soft, onehot, labels"):
        check_backprop(gallery.correct, network, targets="hard")


def binary_classifier(params, X, Y):
    """tanh hidden layers, one sigmoid output unit, BCE averaged over the batch; examples as columns,
    b as a column; the code insists on one output unit and a label row Y of shape (1, m)."""
    depth, m = len(params) // 2, X.shape[1]
    assert Y.shape == (1, m), "binary classifier: Y must be 1 × m"
    A = [X]
    for k in range(1, depth + 1):
        Z = params[f"W{k}"] @ A[-1] + params[f"b{k}"]
        A.append(np.tanh(Z) if k < depth else 1 / (1 + np.exp(-Z)))
    dZ = (A[-1] - Y) / m
    grads = {}
    for k in range(depth, 0, -1):
        grads[f"dW{k}"], grads[f"db{k}"] = dZ @ A[k - 1].T, dZ.sum(axis=1, keepdims=True)
        if k > 1:
            dZ = (params[f"W{k}"].T @ dZ) * (1 - A[k - 1] ** 2)
    return grads


def test_networks_pin_widths_and_depth():
    binary = networks(hidden=["tanh"], output=["sigmoid"], loss=["bce"], output_width=1, min_depth=2, max_depth=3,
                      layout=["columns"])
    check_backprop(binary_classifier, binary, max_examples=40, biases="column", targets="onehot", seed=12)

    @settings(max_examples=40, deadline=None)
    @given(networks(widths={0: 7, 1: 5, -2: 6, -1: 1}, min_depth=3, max_depth=4, max_width=2))
    def pinned(network):
        assert network.widths[:2] == (7, 5) and network.widths[-2:] == (6, 1) and 3 <= network.depth <= 4
        assert all(w <= 2 for w in network.widths[2:-2])

    pinned()
    with pytest.raises(ValueError, match="layer 1 is pinned to both 5 and 6"):
        networks(widths={1: 5, -2: 6}, min_depth=2, max_depth=2)
    with pytest.raises(ValueError, match="layer 3 does not exist in a network of depth 1"):
        networks(widths={3: 2})


def nabla_pair(params, X, Y):
    """One example at a time, as in the classic per-example loop: sigmoid layers, ½‖a − y‖² summed
    over the batch, biases as columns; returns (nabla_b, nabla_w), lists from layer 1."""
    depth = len(params) // 2
    Ws, bs = [params[f"W{k}"] for k in range(1, depth + 1)], [params[f"b{k}"] for k in range(1, depth + 1)]
    nabla_b, nabla_w = [np.zeros(b.shape) for b in bs], [np.zeros(W.shape) for W in Ws]
    for x, y in zip(X.T, Y.T):
        activations = [x.reshape(-1, 1)]
        for W, b in zip(Ws, bs):
            activations.append(gallery.sigmoid(W @ activations[-1] + b))
        delta = (activations[-1] - y.reshape(-1, 1)) * activations[-1] * (1 - activations[-1])
        for layer in range(depth - 1, -1, -1):
            nabla_b[layer] += delta
            nabla_w[layer] += delta @ activations[layer].T
            if layer:
                delta = (Ws[layer].T @ delta) * activations[layer] * (1 - activations[layer])
    return nabla_b, nabla_w


def pair_networks(**changes):
    return networks(**{**SIGMOID, "max_depth": 2, "layout": ["columns"], "reduction": ["sum"], **changes})


def test_a_nabla_b_nabla_w_pair_is_read_biases_first():
    check_backprop(nabla_pair, pair_networks(), max_examples=40, biases="column", reduction="sum", seed=13)

    def weights_first(params, X, Y):
        nabla_b, nabla_w = nabla_pair(params, X, Y)
        return nabla_w, nabla_b

    with pytest.raises(BackpropCheckFailed, match="lists are exchanged at layer 1") as failed:
        check_backprop(weights_first, pair_networks(), max_examples=40, biases="column", reduction="sum", seed=13)
    assert "likely slip" not in str(failed.value), str(failed.value)
    assert all(w.exchanged for f in failed.value.failures for w in f.wrong), str(failed.value)

    def exchanged_in_a_dict(params, X, Y):
        loss, grads = gallery.correct(params, X, Y, NetworkSpec((1, 2), output="sigmoid", loss="half_sse",
                                                                 batch=X.shape[1]))
        return {"dW1": grads["b1"], "db1": grads["W1"]}

    with pytest.raises(BackpropMismatch, match="exchanged with ∂J/∂b1: your 'dW1' holds ∂J/∂b1 and your 'db1'"):
        assert_backprop(exchanged_in_a_dict, *sample_problem(NetworkSpec((1, 2), batch=2), 0))

    def both_wrong_not_exchanged(params, X, Y):  # same shapes as exchanged ones, but the values are no swap
        loss, grads = gallery.correct(params, X, Y, NetworkSpec((1, 2), output="sigmoid", loss="half_sse",
                                                                 batch=X.shape[1]))
        return {"W1": 2 * grads["b1"], "b1": grads["W1"]}

    with pytest.raises(BackpropMismatch) as failed:
        assert_backprop(both_wrong_not_exchanged, *sample_problem(NetworkSpec((1, 2), batch=2), 0))
    assert "exchanged" not in str(failed.value)


def test_a_stray_key_is_reported_never_ignored():
    def with_stray(params, X, Y, network):
        loss, grads = gallery.correct(params, X, Y, network)
        return {**grads, "dW0": np.zeros_like(X)}

    with pytest.raises(BackpropCheckFailed, match="returned key 'dW0': names no quantity of this network"):
        check_backprop(with_stray, networks(max_depth=2), max_examples=10, reduction="network", seed=14)


def relu_prime_one_at_zero(params, X, Y):
    """ReLU hidden layer, identity output, ½‖a − y‖² averaged: the mask is z ≥ 0 (ReLU′(0) = 1)."""
    Z1 = params["W1"] @ X + params["b1"][:, None]
    A1 = np.maximum(Z1, 0)
    delta = (params["W2"] @ A1 + params["b2"][:, None] - Y) / X.shape[1]
    grads = {"W2": delta @ A1.T, "b2": delta.sum(axis=1)}
    delta = (params["W2"].T @ delta) * (Z1 >= 0)
    return {**grads, "W1": delta @ X.T, "b1": delta.sum(axis=1)}


def test_a_slip_is_named_only_if_it_explains_a_non_degenerate_example_too():
    """W1 = b1 = 0 puts every z_1 at the kink, where a missing g′ and ReLU′(0) = 1 give one value."""
    spec = NetworkSpec((2, 2, 1), hidden="relu", output="identity", loss="half_sse", batch=2)
    params = {"W1": np.zeros((2, 2)), "b1": np.zeros(2), "W2": np.array([[0.5, -1.0]]), "b2": np.array([0.25])}
    X, Y = np.array([[1.0, -0.5], [0.5, 1.0]]), np.array([[1.0, -1.0]])
    from symbackprop.diagnose import diagnose  # the first catalogue slip matching at this one example
    claimed = relu_prime_one_at_zero(params, X, Y)["W1"]
    assert diagnose(spec, params, X, Y, "W", 1, claimed).startswith("missing derivative factor")
    with pytest.raises(BackpropMismatch) as failed:
        assert_backprop(relu_prime_one_at_zero, spec, params, X, Y)
    report = str(failed.value)
    assert "likely slip: ReLU′(0) taken as 1" in report and "missing derivative factor" not in report, report


def test_slips_that_give_the_same_values_are_reported_as_a_tie():
    def output_without_sigma_prime(params, X, Y):  # δ_L = a − y with ½‖a − y‖²: either reading fits
        a = gallery.sigmoid(params["W1"] @ X + params["b1"][:, None])
        delta = (a - Y) / X.shape[1]
        return {"W1": delta @ X.T, "b1": delta.sum(axis=1)}

    spec = NetworkSpec((2, 2), output="sigmoid", loss="half_sse", batch=2)
    with pytest.raises(BackpropMismatch) as failed:
        assert_backprop(output_without_sigma_prime, *sample_problem(spec, 0))
    assert "likely slip: missing derivative factor g′(z_1), or equally bce shortcut a − y used without bce" \
        in str(failed.value) and "(these slips give the same values on this network)" in str(failed.value)


def bce_through_dA(params, X, Y):
    """Sigmoid layers, BCE averaged over the batch, the output delta through ∂ℓ/∂a = −y/a + (1−y)/(1−a):
    right, but 1/(1 − a) divides by zero once a rounds to 1."""
    depth, m = len(params) // 2, X.shape[1]
    A = [X]
    for k in range(1, depth + 1):
        A.append(1 / (1 + np.exp(-(params[f"W{k}"] @ A[-1] + params[f"b{k}"][:, None]))))
    dA = -Y / A[-1] + (1 - Y) / (1 - A[-1])
    grads = {}
    for k in range(depth, 0, -1):
        dZ = dA * A[k] * (1 - A[k]) / (m if k == depth else 1)
        grads[f"W{k}"], grads[f"b{k}"] = dZ @ A[k - 1].T, dZ.sum(axis=1)
        dA = params[f"W{k}"].T @ dZ
    return grads


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the user's code divides by zero
def test_overflow_at_saturation_is_its_own_finding():
    bce = networks(hidden=["sigmoid"], output=["sigmoid"], loss=["bce"], max_depth=2, layout=["columns"])
    check_backprop(bce_through_dA, bce, max_examples=40, dtype="float32", seed=15)  # unsaturated: right
    with pytest.raises(BackpropCheckFailed) as failed:
        check_backprop(bce_through_dA, bce, max_examples=100, dtype="float32", saturated=True, seed=15)
    report = str(failed.value)
    assert all(isinstance(f.wrong, list) and all(w.overflow for w in f.wrong) for f in failed.value.failures), report
    assert "your code overflows or divides by zero at saturation" in report, report
    assert "it is right: the formula is right, its evaluation is not stable" in report, report
    assert "likely slip" not in report, report


def sigmoid_net_with_conventions(output_mean=False, l2=None, on_biases=False):
    """A sigmoid network with BCE averaged over the batch, written in one of the loss conventions of
    real code: ``output_mean`` divides ℓ by n_L as well; ``l2`` is (coefficient κ of λ·Σ‖W‖² as a
    function of (m, n)) — 1 for reg·Σ‖W‖², 1/(2n) for λ/(2n)·Σ‖W‖², 1/(2m) for λ/(2m)·Σ‖W‖²."""

    def backprop(params, X, Y, penalty=None, training_size=None):
        depth, m = len(params) // 2, X.shape[1]
        A = [X]
        for k in range(1, depth + 1):
            A.append(gallery.sigmoid(params[f"W{k}"] @ A[-1] + params[f"b{k}"][:, None]))
        dZ = (A[-1] - Y) / m / (Y.shape[0] if output_mean else 1)
        scale = 2 * l2(m, training_size) * penalty if l2 is not None else 0.0
        grads = {}
        for k in range(depth, 0, -1):
            grads[f"W{k}"] = dZ @ A[k - 1].T + scale * params[f"W{k}"]
            grads[f"b{k}"] = dZ.sum(axis=1) + (scale * params[f"b{k}"] if on_biases else 0)
            if k > 1:
                dZ = (params[f"W{k}"].T @ dZ) * A[k - 1] * (1 - A[k - 1])
        return grads

    return backprop


BCE_NETS = dict(hidden=["sigmoid"], output=["sigmoid"], loss=["bce"], max_depth=2, layout=["columns"],
                min_width=2)


@pytest.mark.parametrize("user_fn, l2, options", [
    (sigmoid_net_with_conventions(output_mean=True), False, dict(output_reduction="mean")),
    (sigmoid_net_with_conventions(l2=lambda m, n: 1), True, dict(l2_form="lambda")),
    (sigmoid_net_with_conventions(l2=lambda m, n: 1 / (2 * n)), True, dict(l2_form="lambda/2n", training_size=50)),
    (sigmoid_net_with_conventions(l2=lambda m, n: 1 / (2 * m)), True, dict(l2_form="lambda/2m")),
    (sigmoid_net_with_conventions(l2=lambda m, n: 1 / 2, on_biases=True), True, dict(l2_biases=True)),
    (sigmoid_net_with_conventions(output_mean=True, l2=lambda m, n: 1, on_biases=True), True,
     dict(output_reduction="mean", l2_form="lambda", l2_biases=True)),
], ids=["output-mean", "reg", "lambda/2n", "lambda/2m", "l2-biases", "all"])
def test_loss_and_penalty_conventions_are_options(user_fn, l2, options):
    nets = networks(**BCE_NETS, l2=l2)
    check_backprop(user_fn, nets, max_examples=30, seed=16, **options)
    with pytest.raises(BackpropCheckFailed):  # in the default convention the same code is wrong
        check_backprop(user_fn, nets, max_examples=30, seed=16, **({"training_size": 50} if "training_size" in options
                                                                   else {}))


def test_the_conventions_are_in_the_proven_reference():
    from symbackprop.prove import prove_network

    spec = NetworkSpec((2, 2, 2), hidden="tanh", output="sigmoid", loss="bce", batch=2, output_reduction="mean",
                       l2=True, l2_form="lambda/2n", training_size=7, l2_biases=True)
    assert prove_network(spec).all_proved
    assert "mean over output units" in spec.describe() and "λ/(2n)·Σ‖W‖², n = 7" in spec.describe()
    with pytest.raises(ValueError, match="needs the training-set size"):
        check_backprop(gallery.correct, networks(l2=True), l2_form="lambda/2n")
    own = NetworkSpec((2, 3), output="sigmoid", loss="bce", batch=2, output_reduction="mean")
    check_backprop(sigmoid_net_with_conventions(output_mean=True), own, max_examples=10, seed=18)  # kept, not reset


def test_a_penalty_in_another_form_is_named():
    nets = networks(**BCE_NETS, l2=True)
    documents_form = sigmoid_net_with_conventions(l2=lambda m, n: 1 / 2)  # (λ/2)·Σ‖W‖²: λW in the gradient
    with pytest.raises(BackpropCheckFailed,
                       match=r"likely slip: L2 term of \(λ/2\)·Σ‖W‖² where λ/\(2n\)·Σ‖W‖² belongs") as failed:
        check_backprop(documents_form, nets, max_examples=30, seed=17, l2_form="lambda/2n", training_size=50)
    assert "another l2_form" in str(failed.value)
    with pytest.raises(BackpropCheckFailed, match="likely slip: L2 term λb_k missing"):
        check_backprop(documents_form, nets, max_examples=30, seed=17, l2_biases=True)
