"""The prover core: every pairing proved, every wrong recurrence refuted with a real witness."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from symbackprop import rules
from symbackprop.derive import backprop, direct
from symbackprop.network import Network, NetworkSpec, SpecError
from symbackprop.prove import (PROVED, REFUTED, UNDECIDED, Decider, lemmas_for, prove_lemma,
                               prove_network)

from .reference import check_counterexample

HIDDEN = [name for name, row in rules.ACTIVATIONS.items() if not row.output_only] + ["generic"]
OUTPUT_LOSS = [("sigmoid", "half_sse"), ("identity", "half_sse"), ("tanh", "mse"), ("sigmoid", "bce"),
               ("softmax", "cross_entropy"), ("softmax", "half_sse"), ("sigmoid", "cross_entropy"),
               ("softmax", "bce"), ("relu", "half_sse"), ("generic", "half_sse")]
INSTANCES = [((2, 3), 1, "columns"), ((3, 4, 2), 2, "columns"), ((2, 3, 2, 3), 1, "rows"), ((4, 2, 3), 2, "rows")]


def assert_all_proved(proof):
    failed = [(r.quantity, r.layer, r.verdict.status, r.verdict.message) for r in proof.results if not r.verdict.proved]
    assert not failed, failed
    assert all(l.verdict.proved for l in proof.lemmas), [(l.name, l.verdict) for l in proof.lemmas]


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("output,loss", OUTPUT_LOSS)
def test_every_pairing_is_proved(hidden, output, loss):
    for widths, batch, layout in INSTANCES:
        spec = NetworkSpec(widths=widths, hidden=hidden, output=output, loss=loss, batch=batch, layout=layout)
        proof = prove_network(spec, timeout=60)
        assert_all_proved(proof)
        assert len(proof.results) == 3 * spec.depth


@pytest.mark.parametrize("reduction,l2", [("sum", False), ("mean", True)])
def test_sum_reduction_and_l2_penalty(reduction, l2):
    spec = NetworkSpec(widths=(3, 3, 2), hidden="tanh", output="softmax", loss="cross_entropy", batch=2,
                       reduction=reduction, l2=l2)
    assert_all_proved(prove_network(spec))


@pytest.mark.parametrize("at_zero", ["0", "1/2", "1"])
def test_relu_convention_is_stated(at_zero):
    spec = NetworkSpec(widths=(2, 3, 2), hidden="relu", output="sigmoid", loss="half_sse", relu_at_zero=at_zero)
    proof = prove_network(spec)
    assert_all_proved(proof)
    notes = {note for r in proof.results for note in r.verdict.notes}
    assert any(f"taken as {at_zero}" in note and "exactly 0" in note for note in notes), notes


def test_issue_networks_are_proved():
    for hidden, output, loss in [("sigmoid", "sigmoid", "half_sse"), ("relu", "softmax", "cross_entropy"),
                                 ("tanh", "sigmoid", "bce"), ("sigmoid", "identity", "half_sse")]:
        spec = NetworkSpec(widths=(3, 4, 2), hidden=hidden, output=output, loss=loss, batch=2)
        assert_all_proved(prove_network(spec))


# ------------------------------------------------------------------------ wrong recurrences


def recurrence(net, *, transpose=True, derivative=None, reduction=True, sign=1, skip_derivative=False):
    """The columns-layout recurrences with one deliberate slip switched on."""
    alg, spec, L = net.alg, net.spec, net.depth
    output = spec.activation(L)
    G = alg.sub(net.A[L], net.Y) if sign == 1 else alg.sub(net.Y, net.A[L])
    rule = derivative or output.derivative
    delta = {L: alg.hadamard(G, alg.apply(rule, net.Z[L])) if spec.loss == "half_sse" else G}
    if reduction:
        delta[L] = alg.scale(net.reduction_factor, delta[L])
    for k in range(L - 1, 0, -1):
        W = alg.T(net.W[k + 1]) if transpose else net.W[k + 1]
        back = alg.matmul(W, delta[k + 1])
        g = derivative or spec.activation(k).derivative
        delta[k] = back if skip_derivative else alg.hadamard(back, alg.apply(g, net.Z[k]))
    claims = {}
    for k in range(1, L + 1):
        claims["z", k] = delta[k]
        claims["W", k] = alg.matmul(delta[k], alg.T(net.A[k - 1]))
        claims["b", k] = alg.matmul(delta[k], alg.ones(net.batch, 1))
    return claims


def wrong_sigmoid_derivative(x):
    return rules.SIGMOID.atom(x) * (1 + rules.SIGMOID.atom(x))


def wrong_tanh_derivative(x):
    return 1 - rules.TANH.atom(x)


SLIPS = {
    "W instead of Wᵀ": (dict(transpose=False), "sigmoid", "half_sse", (2, 3, 3, 3), [("z", 1), ("W", 1)]),
    "missing g′": (dict(skip_derivative=True), "tanh", "half_sse", (3, 4, 2), [("z", 1), ("b", 1)]),
    "missing 1/m": (dict(reduction=False), "relu", "half_sse", (2, 3, 2), [("z", 2), ("W", 1)]),
    "sign flip in the output delta": (dict(sign=-1), "sigmoid", "half_sse", (2, 3, 2), [("z", 2), ("b", 1)]),
    "tanh′ = 1 − tanh": (dict(derivative=wrong_tanh_derivative), "tanh", "half_sse", (3, 2, 2), [("z", 1)]),
    "σ′ = σ(1 + σ)": (dict(derivative=wrong_sigmoid_derivative), "sigmoid", "half_sse", (2, 3, 2), [("z", 2), ("W", 1)]),
}


@pytest.mark.parametrize("slip", list(SLIPS))
def test_wrong_recurrence_is_refuted_with_a_real_witness(slip):
    options, activation, loss, widths, quantities = SLIPS[slip]
    spec = NetworkSpec(widths=widths, hidden=activation, output=activation if loss == "half_sse" else "sigmoid",
                       loss=loss, batch=2)
    net = Network(spec)
    truth, claims = direct(net), recurrence(net, **options)
    assert all(Decider(net).decide(truth[key], backprop(net)[key]).proved for key in quantities)
    decider = Decider(net, seed=1)
    for key in quantities:
        verdict = decider.decide(truth[key], claims[key])
        assert verdict.status == REFUTED, (slip, key, verdict)
        check_counterexample(net, truth[key], claims[key], verdict.counterexample)


def test_transpose_slip_on_rectangular_layers_is_a_shape_error():
    net = Network(NetworkSpec(widths=(3, 4, 2), batch=2))
    with pytest.raises(Exception) as error:
        recurrence(net, transpose=False)
    assert "product of a 2×2 and a 2×2" not in str(error.value)
    assert "product of" in str(error.value)


def test_wrong_rule_in_the_table_is_never_proved():
    """With σ′ = σ(1+σ) in the table both derivations agree — only the lemma stands in the way."""
    wrong = rules.SIGMOID.replace(derivative_rule=lambda x: wrong.atom(x) * (1 + wrong.atom(x)))
    lemma = prove_lemma(wrong)
    assert lemma.status == REFUTED and lemma.counterexample
    rules.ACTIVATIONS["wrong_sigmoid"] = wrong
    try:
        spec = NetworkSpec(widths=(2, 3, 2), hidden="wrong_sigmoid", output="sigmoid", loss="half_sse")
        proof = prove_network(spec)
    finally:
        del rules.ACTIVATIONS["wrong_sigmoid"]
    assert not proof.all_proved
    statuses = {r.verdict.status for r in proof.results if r.layer == 1}
    assert statuses == {UNDECIDED}
    assert all("not proved" in r.verdict.message for r in proof.results if r.layer == 1)


def test_lemmas_are_proved_for_every_row():
    for name in rules.ACTIVATIONS:
        spec_output = name
        spec = NetworkSpec(widths=(2, 3), output=spec_output, loss="half_sse")
        for row, width in lemmas_for(spec):
            verdict = prove_lemma(row, width)
            assert verdict.status == PROVED, (row, verdict)


def test_time_budget_gives_undecided_not_a_hang():
    spec = NetworkSpec(widths=(4, 4, 4, 4, 4), hidden="sigmoid", output="softmax", loss="half_sse", batch=2)
    started = time.perf_counter()
    proof = prove_network(spec, timeout=0.001)
    assert time.perf_counter() - started < 20
    statuses = {r.verdict.status for r in proof.results}
    assert UNDECIDED in statuses
    assert all("budget" in r.verdict.message for r in proof.results if r.verdict.status == UNDECIDED)


@pytest.mark.parametrize("kwargs,message", [
    (dict(widths=(3,)), "at least two"),
    (dict(widths=(3, 0, 2)), "at least 1"),
    (dict(widths=(3, 2), loss="nope"), "unknown loss"),
    (dict(widths=(3, 4, 2), hidden="softmax"), "only be the output"),
    (dict(widths=(3, 2), output="tanh", loss="bce"), "outputs in (0, 1)"),
    (dict(widths=(3, 2), batch=0), "batch"),
])
def test_bad_specs_are_one_line_errors(kwargs, message):
    with pytest.raises(SpecError) as error:
        NetworkSpec(**kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


# ---------------------------------------------------------------------- hypothesis networks


@st.composite
def small_networks(draw):
    depth = draw(st.integers(1, 3))
    widths = tuple(draw(st.lists(st.integers(1, 3), min_size=depth + 1, max_size=depth + 1)))
    output, loss = draw(st.sampled_from(OUTPUT_LOSS))
    if output == "softmax" and widths[-1] < 2:
        widths = widths[:-1] + (2,)
    return NetworkSpec(widths=widths, hidden=draw(st.sampled_from(HIDDEN)), output=output, loss=loss,
                       batch=draw(st.integers(1, 2)), layout=draw(st.sampled_from(["columns", "rows"])),
                       reduction=draw(st.sampled_from(["mean", "sum"])))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_networks())
@example(NetworkSpec(widths=(3, 4, 2), hidden="sigmoid", output="sigmoid", loss="half_sse"))  # document 002
@example(NetworkSpec(widths=(3, 4, 4, 2), hidden="relu", output="softmax", loss="cross_entropy", batch=2))  # 001
@example(NetworkSpec(widths=(3, 3, 1), hidden="sigmoid", output="sigmoid", loss="bce", batch=2))  # 004
def test_generated_networks_are_proved(spec):
    assert_all_proved(prove_network(spec))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_networks(), st.sampled_from(["sign", "scale"]))
def test_generated_wrong_output_delta_is_refuted(spec, slip):
    net = Network(spec)
    truth, claims = direct(net), backprop(net)
    L = spec.depth
    factor = -1 if slip == "sign" else 2
    wrong = net.alg.scale(factor, claims["z", L])
    verdict = Decider(net).decide(truth["z", L], wrong)
    assert verdict.status == REFUTED, verdict
    check_counterexample(net, truth["z", L], wrong, verdict.counterexample)
