"""Proofs at every size: instances of the general proof, memory budgets, parallel verify."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from symbackprop import general, layerwise
from symbackprop.derivation import verify
from symbackprop.network import NetworkSpec
from symbackprop.prove import INSTANTIATED, PROVED, REFUTED, UNDECIDED, Verdict, prove_layerwise, prove_network
from symbackprop.derive import backprop
from symbackprop.network import Network

ROOT = Path(__file__).resolve().parent.parent


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def test_a_large_network_is_an_instance_of_the_general_proof():
    result = run("prove", "--widths", "784,256,128,10", "--hidden", "relu", "--output-activation", "softmax",
                 "--loss", "cross_entropy", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["all_proved"] and report["scope"] == INSTANTIATED
    assert len(report["results"]) == 9
    assert {r["verdict"] for r in report["results"]} == {PROVED}
    assert {r["scope"] for r in report["results"]} == {INSTANTIATED}
    table = run("prove", "--widths", "784,256,128,10", "--hidden", "relu", "--output-activation", "softmax",
                "--loss", "cross_entropy")
    assert "scope: general, instantiated" in table.stdout and table.returncode == 0


def test_exact_forces_the_expansion():
    result = run("prove", "--widths", "2,3,2", "--exact", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["scope"] == "instance"
    assert {r["scope"] for r in report["results"]} == {"instance"}


def test_an_expansion_that_cannot_fit_is_refused_up_front():
    result = run("prove", "--widths", "64,32,10", "--hidden", "relu", "--output-activation", "softmax",
                 "--loss", "cross_entropy", "--batch", "2", "--exact", "expand", "--memory", "500M", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert {r["verdict"] for r in report["results"]} == {UNDECIDED}
    assert all("memory budget" in r["message"] and "--general" in r["message"] for r in report["results"])


def test_a_small_memory_budget_gives_undecided_saying_so():
    result = run("prove", "--widths", "4,4,4,2", "--batch", "2", "--exact", "expand", "--memory", "2M", "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    verdicts = {r["verdict"] for r in report["results"]}
    assert verdicts == {UNDECIDED}
    assert all("memory budget" in r["message"] for r in report["results"])


def test_the_time_budget_is_respected_on_the_exact_route():
    result = run("prove", "--widths", "8,8,8,8,8", "--hidden", "tanh", "--output-activation", "softmax",
                 "--loss", "cross_entropy", "--batch", "2", "--exact", "expand", "--timeout", "1", "--json",
                 timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    undecided = [r for r in report["results"] if r["verdict"] == UNDECIDED]
    assert undecided and all("1 s budget" in r["message"] or "memory budget" in r["message"] for r in undecided)


def test_a_setting_the_general_proof_does_not_cover_goes_the_exact_route(monkeypatch):
    real = general.prove_general

    def incomplete(*args, **kwargs):
        proof = real(*args, **kwargs)
        lemmas = list(proof.lemmas)
        lemmas[0] = dataclasses.replace(lemmas[0], verdict=Verdict(UNDECIDED, "general", message="not shown"))
        return dataclasses.replace(proof, lemmas=lemmas)

    monkeypatch.setattr(general, "prove_general", incomplete)
    proof = general.prove_instance(NetworkSpec(widths=(2, 3, 2)))
    assert proof.scope == "instance" and proof.general is None
    assert all(r.verdict.proved and r.verdict.scope == "instance" for r in proof.results)


def test_given_claims_are_never_instantiated_and_a_false_one_is_refuted():
    spec = NetworkSpec(widths=(2, 3, 2), hidden="sigmoid", output="sigmoid", loss="half_sse")
    claims = dict(backprop(Network(spec)))
    claims["W", 1] = claims["W", 1].map(lambda e: 2 * e)  # a slip: twice the gradient
    proof = prove_network(spec, claims=claims)
    by_key = {(r.quantity, r.layer): r.verdict for r in proof.results}
    assert by_key["∂J/∂W", 1].status == REFUTED
    assert all(v.scope == "instance" for v in by_key.values())


DOCUMENT = '''
[network]
widths = [3, 4, 2]
hidden = "sigmoid"
output = "sigmoid"
loss   = "half_sse"
batch  = 1

[symbols]
W = "weight"
b = "bias"
z = "preactivation"
a = "activation"
t = "target"
C = "loss"
sigma = "activation_function"

[define]
"delta[2]" = "(a[2] - t) ∘ sigma'(z[2])"
"delta[1]" = "W[2].T @ delta[2] ∘ sigma'(z[1])"

[[claim]]
id = "good"
text = "dC/dW2 = delta2 a1^T"
lhs = "grad(C, W[2])"
rhs = "delta[2] @ a[1].T"

[[claim]]
id = "wrong layer"
text = "dC/dW1 = delta2 a1^T"
lhs = "grad(C, W[1])"
rhs = "delta[2] @ a[1].T"
expect = "ill-formed"

[[claim]]
id = "no derivative"
text = "dC/dW1 = (W2^T delta2) a0^T"
lhs = "grad(C, W[1])"
rhs = "(W[2].T @ delta[2]) @ a[0].T"
expect = "refuted"
'''


def test_verify_instantiates_only_the_recurrence_itself(tmp_path):
    path = tmp_path / "doc.toml"
    path.write_text(DOCUMENT, encoding="utf-8")
    report = verify(str(path))
    results = {r.claim.id: r.verdict for r in report.results}
    assert results["good"].status == PROVED and results["good"].scope == INSTANTIATED
    assert results["wrong layer"].status != PROVED and results["wrong layer"].scope == "instance"
    assert results["no derivative"].status == REFUTED and results["no derivative"].scope == "instance"


def _without_seconds(document):
    if isinstance(document, dict):
        return {k: _without_seconds(v) for k, v in document.items() if k != "seconds"}
    if isinstance(document, list):
        return [_without_seconds(v) for v in document]
    return document


def test_verify_jobs_gives_the_serial_report(tmp_path):
    for name in ("002_backprop_in_neural_networks.toml", "000_bro_do_you_even_backprop.toml"):
        shutil.copy(ROOT / "derivations" / name, tmp_path / name)
    (tmp_path / "doc.toml").write_text(DOCUMENT, encoding="utf-8")
    serial = run("verify", str(tmp_path), "--jobs", "1", "--json")
    parallel = run("verify", str(tmp_path), "--jobs", "2", "--json")
    assert serial.returncode == parallel.returncode
    assert _without_seconds(json.loads(serial.stdout)) == _without_seconds(json.loads(parallel.stdout))


# ------------------------------------------------------------------ the layerwise exact route

LAYERWISE_PAIRINGS = [("sigmoid", "sigmoid", "half_sse"), ("tanh", "softmax", "cross_entropy"),
                      ("relu", "sigmoid", "bce")]


@pytest.mark.parametrize("hidden,output,loss", LAYERWISE_PAIRINGS)
def test_the_layerwise_route_proves_depth_4_width_8_quickly(hidden, output, loss):
    spec = NetworkSpec(widths=(8,) * 5, hidden=hidden, output=output, loss=loss, batch=2)
    started = time.perf_counter()
    proof = prove_network(spec, timeout=60)
    assert time.perf_counter() - started < 10
    assert proof.all_proved and proof.scope == "instance" and len(proof.results) == 12
    assert {r.verdict.method for r in proof.results} == {layerwise.METHOD}
    assert not any("expansion" in note for r in proof.results for note in r.verdict.notes)


@pytest.mark.parametrize("layout,reduction,l2,output_reduction", [
    ("rows", "sum", False, "sum"), ("columns", "mean", True, "mean"), ("rows", "mean", True, "sum")])
def test_the_layerwise_route_covers_the_conventions(layout, reduction, l2, output_reduction):
    spec = NetworkSpec(widths=(3, 4, 3, 2), hidden="tanh", output="softmax", loss="cross_entropy", batch=2,
                       layout=layout, reduction=reduction, l2=l2, output_reduction=output_reduction,
                       l2_form="lambda/2m", l2_biases=l2)
    proof = prove_network(spec)
    assert proof.all_proved and {r.verdict.method for r in proof.results} == {layerwise.METHOD}


def test_a_wrong_recurrence_step_is_not_proved_layerwise(monkeypatch):
    """δ_k without the derivative g′(z_k): the local recurrence identity fails, the layerwise
    route does not prove it, and the expansion then refutes the instance at a point of it."""
    def slipped(alg, W_next, delta_next, derivative, Z):
        return alg.matmul(alg.T(W_next), delta_next)

    monkeypatch.setattr(layerwise, "hidden_delta", slipped)
    spec = NetworkSpec(widths=(3, 4, 4, 2), hidden="sigmoid", output="sigmoid", loss="half_sse", batch=2)
    verdicts, local_verdicts = prove_layerwise(spec, timeout=30)
    statuses = dict(local_verdicts)
    assert not statuses["recurrence δ1 = Σ δ2·∂Z2/∂Z1"].proved
    assert not statuses["recurrence δ2 = Σ δ3·∂Z3/∂Z2"].proved
    assert statuses["output delta δ3 = ∂J/∂Z3"].proved
    assert all(not verdicts[q, k].proved for q in ("z", "W", "b") for k in (1, 2))
    assert all(verdicts[q, 3].proved for q in ("z", "W", "b"))
    proof = prove_network(spec)  # the tool's own (unpatched) backprop, expanded: proved after all
    assert not any(r.verdict.method == layerwise.METHOD for r in proof.results)


def test_a_wrong_output_delta_is_not_proved_layerwise(monkeypatch):
    def slipped(spec, alg, A_L, Y, Z_L, factor, shortcut=True):
        return alg.scale(2, real(spec, alg, A_L, Y, Z_L, factor, shortcut=shortcut))  # a ½ lost

    real = layerwise.output_step
    monkeypatch.setattr(layerwise, "output_step", slipped)
    spec = NetworkSpec(widths=(8,) * 5, hidden="tanh", output="softmax", loss="cross_entropy", batch=2)
    verdicts, local_verdicts = prove_layerwise(spec, timeout=30)
    assert not local_verdicts[0][1].proved
    assert not any(v.proved for v in verdicts.values())
    assert all("local identity not proved" in v.message for v in verdicts.values())


def test_a_wrong_rule_in_the_table_is_not_proved_layerwise(monkeypatch):
    """The recurrence and the truth would agree with σ′ = σ(1+σ) in the table: the lemma stops it."""
    from symbackprop import rules

    wrong = rules.SIGMOID.replace(derivative_rule=lambda x: wrong.atom(x) * (1 + wrong.atom(x)))
    monkeypatch.setitem(rules.ACTIVATIONS, "wrong_sigmoid", wrong)
    spec = NetworkSpec(widths=(3, 4, 4, 2), hidden="wrong_sigmoid", output="sigmoid", loss="half_sse", batch=2)
    verdicts, _ = prove_layerwise(spec, timeout=30)
    assert not verdicts["z", 1].proved and "not proved" in verdicts["z", 1].message


def test_exact_on_the_command_line_is_layerwise_and_fits_a_small_memory_budget():
    result = run("prove", "--widths", "64,32,10", "--hidden", "relu", "--output-activation", "softmax",
                 "--loss", "cross_entropy", "--batch", "2", "--exact", "--memory", "500M", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["all_proved"] and report["scope"] == "instance"
    assert {r["method"] for r in report["results"]} == {layerwise.METHOD}
