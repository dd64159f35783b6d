"""Every width, every depth: lemmas over symbolic sizes, the induction, wrong rules rejected."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

import pytest
import sympy

from symbackprop import rules
from symbackprop.general import (GeneralSetting, Recurrences, clear_cache, decide, hidden_step, induction,
                                 prove_general)
from symbackprop.indexed import Sized, SizedMat, decide_zero, entries, index, size, summation
from symbackprop.network import NetworkSpec
from symbackprop.prove import ILL_FORMED, PROVED, REFUTED, UNDECIDED

HIDDEN = [name for name, row in rules.ACTIVATIONS.items() if not row.output_only] + ["generic"]
OUTPUTS = list(rules.ACTIVATIONS) + ["generic"]
PAIRINGS = [(output, loss) for loss, row in rules.LOSSES.items() for output in (row.outputs or OUTPUTS)]


def setting(hidden="sigmoid", output="sigmoid", loss="half_sse", **options):
    return GeneralSetting((rules.activation(hidden),), rules.activation(output), rules.loss(loss), **options)


def assert_all_proved(proof):
    failed = [(l.name, l.verdict.status, l.verdict.message) for l in proof.lemmas if not l.verdict.proved]
    assert not failed, failed
    assert all(l.verdict.scope == "general" for l in proof.lemmas)
    assert proof.induction.proved


# ------------------------------------------------------------------ every row of the table


@pytest.mark.parametrize("layout", ["columns", "rows"])
@pytest.mark.parametrize("output,loss", PAIRINGS)
def test_every_output_pairing_is_proved_for_every_width(output, loss, layout):
    proof = prove_general(setting("tanh", output, loss, layout=layout))
    assert_all_proved(proof)
    names = {l.name for l in proof.lemmas}
    out = rules.activation(output).name
    assert {"hidden step", "weight step", "bias step", "mean reduction", f"output: {out} + {loss}",
            f"output: {out} + any loss (general rule)"} <= names
    if output == "softmax":
        assert "softmax Jacobian" in names


@pytest.mark.parametrize("hidden", HIDDEN)
def test_every_hidden_activation_rule_is_a_general_lemma(hidden):
    proof = prove_general(setting(hidden, "sigmoid", "bce"))
    assert_all_proved(proof)
    row = rules.activation(hidden)
    lemma = next(l for l in proof.lemmas if l.name == f"{row.name}′")
    assert lemma.verdict.proved and lemma.verdict.scope == "general"


@pytest.mark.parametrize("reduction,l2", [("sum", False), ("mean", True)])
def test_sum_reduction_and_penalty(reduction, l2):
    proof = prove_general(setting("relu", "softmax", "cross_entropy", reduction=reduction, l2=l2))
    assert_all_proved(proof)
    assert f"{reduction} reduction" in {l.name for l in proof.lemmas}
    assert ("L2 penalty" in {l.name for l in proof.lemmas}) == l2
    assert ("λ" in str(proof.induction.conclusion[1])) == l2


def test_soft_targets_say_what_holds_without_the_simplex_condition():
    proof = prove_general(setting("tanh", "softmax", "cross_entropy"))
    soft = next(l for l in proof.lemmas if l.name.endswith("soft targets"))
    assert soft.verdict.proved and not any("sum to 1" in h for h in soft.hypotheses)
    shortcut = next(l for l in proof.lemmas if l.name == "output: softmax + cross_entropy")
    assert any("sum to 1" in h for h in shortcut.hypotheses)
    # Without Σe = 1 the shortcut ŷ − e is not the gradient: the hypothesis is doing real work.
    lemma = decide("shortcut without Σe = 1", lambda s: _shortcut_without_simplex(s), timeout=30)
    assert lemma.verdict.status == REFUTED, lemma.verdict
    assert "residual" in lemma.verdict.message


def _shortcut_without_simplex(sizes):
    from symbackprop.general import output_step

    return output_step(Recurrences(), "columns", sizes, rules.loss("cross_entropy"), rules.SOFTMAX, simplex=False)


# --------------------------------------------------------------------------- wrong rules


def w_instead_of_wt(alg, W_next, delta_next, derivative, Z):
    back = alg.matmul(W_next, delta_next) if alg.layout == "columns" else alg.matmul(delta_next, alg.T(W_next))
    return alg.hadamard(back, alg.apply(derivative, Z))


def missing_g_prime(alg, W_next, delta_next, derivative, Z):
    return alg.matmul(alg.T(W_next), delta_next) if alg.layout == "columns" else alg.matmul(delta_next, W_next)


def sign_flipped(alg, loss, output, A, Y, Z, shortcut=True):
    return alg.scale(-1, rules.output_delta(alg, loss, output, A, Y, Z, shortcut=shortcut))


WRONG = {
    "W instead of Wᵀ": (Recurrences(hidden_delta=w_instead_of_wt), "hidden step"),
    "missing g′": (Recurrences(hidden_delta=missing_g_prime), "hidden step"),
    "missing 1/m": (Recurrences(reduction_factor=lambda reduction, m: sympy.Integer(1)), "mean reduction"),
    "output delta sign": (Recurrences(output_delta=sign_flipped), "output: softmax + cross_entropy"),
    "a instead of aᵀ": (Recurrences(parameter_gradients=lambda alg, d, A, ones: (alg.matmul(d, A),
                                                                                  alg.matmul(d, ones))),
                        "weight step"),
}


@pytest.mark.parametrize("layout", ["columns", "rows"])
@pytest.mark.parametrize("variant", list(WRONG))
def test_wrong_recurrences_fail_with_the_residual_shown(variant, layout):
    recurrences, lemma_name = WRONG[variant]
    proof = prove_general(setting("sigmoid", "softmax", "cross_entropy", layout=layout), recurrences)
    assert not proof.all_proved and not proof.induction.proved
    lemma = next(l for l in proof.lemmas if l.name == lemma_name)
    assert lemma.verdict.status in (REFUTED, ILL_FORMED)
    assert "residual: " in lemma.verdict.message and lemma.residual is not None and lemma.residual != 0
    assert sympy.sstr(sympy.factor_terms(lemma.residual)) != "0"
    if lemma.verdict.status == REFUTED:
        assert lemma.verdict.counterexample["lhs"] != lemma.verdict.counterexample["rhs"]


def test_w_instead_of_wt_witness_re_evaluated_by_hand():
    """The counterexample is real: recompute both sides from its numbers with plain fractions."""
    proof = prove_general(setting("sigmoid", "sigmoid", "half_sse"), WRONG["W instead of Wᵀ"][0])
    lemma = next(l for l in proof.lemmas if l.name == "hidden step")
    assert lemma.verdict.status == REFUTED
    assert "W_{k+1}[i, l] + W_{k+1}[l, i]" in lemma.verdict.message.replace("-W", "W")
    ce = lemma.verdict.counterexample
    n, i, e = int(ce["sizes"]["n"]), int(ce["indices"]["i"]), int(ce["indices"]["j"])
    point = {name: Fraction(value) for name, value in ce["point"].items()}
    x = sympy.Symbol("x")
    g_prime = sympy.diff(sympy.sympify(ce["functions"]["g"]), x)
    slope = Fraction(str(g_prime.subs(x, sympy.Rational(str(point.get(f"z_k[{i}, {e}]", 0))))))

    def W(r, c):
        return point.get(f"W_{{k+1}}[{r}, {c}]", Fraction(0))

    def c(r):  # φ is linear: its partial for z_{k+1}[r, e]
        return point.get(f"∂φ/∂u[{r}, {e}]", Fraction(0))

    true_side = sum(c(r) * W(r, i) for r in range(1, n + 1)) * slope          # (Wᵀ ∇φ) ⊙ g′, entries from 1
    wrong_side = sum(W(i, r) * c(r) for r in range(1, n + 1)) * slope         # (W ∇φ) ⊙ g′
    assert (str(true_side), str(wrong_side)) == (ce["lhs"], ce["rhs"])
    assert true_side != wrong_side


def test_wrong_sigmoid_rule_is_never_proved():
    sigma = rules.SIGMOID.replace()
    object.__setattr__(sigma, "derivative_rule", lambda x: sigma.atom(x) * (1 + sigma.atom(x)))
    proof = prove_general(GeneralSetting((sigma,), sigma, rules.loss("bce")))
    verdicts = {l.name: l.verdict.status for l in proof.lemmas}
    assert verdicts["sigmoid′"] == REFUTED
    assert verdicts["output: sigmoid + bce"] != PROVED
    assert not proof.all_proved and not proof.induction.proved


# -------------------------------------------------------------------- the zero test itself


def test_a_range_condition_that_does_not_hold_is_not_discharged():
    n, j, x = size("n"), index("j"), sympy.IndexedBase("x")
    shifted = summation(lambda l: sympy.KroneckerDelta(l, j + 1) * x[l], n)  # 0 when j = n − 1
    zero, residual = decide_zero(shifted - x[j + 1], {j: (0, n - 1)})
    assert not zero and residual != 0
    same = summation(lambda l: sympy.KroneckerDelta(l, j) * x[l], n)
    assert decide_zero(same - x[j], {j: (0, n - 1)}) == (True, 0)


def test_sums_over_the_same_range_are_merged_before_giving_up():
    n, j, y, z = size("n"), index("j"), sympy.IndexedBase("y"), sympy.IndexedBase("z")
    S = summation(lambda l: sympy.exp(z[l]), n)
    # S·Σ y_l/(e_l − S) − Σ e_l y_l/(e_l − S) + Σ y_l = 0, but only after combining the sums.
    expr = (S * summation(lambda l: y[l] / (sympy.exp(z[l]) - S), n)
            - summation(lambda l: sympy.exp(z[l]) * y[l] / (sympy.exp(z[l]) - S), n) + summation(lambda l: y[l], n))
    assert decide_zero(expr, {j: (0, n - 1)})[0]
    assert not decide_zero(expr + y[j], {j: (0, n - 1)})[0]


def test_out_of_time_is_undecided():
    clear_cache()
    lemma = decide("hidden step", lambda s: hidden_step(Recurrences(), "columns", s), timeout=1e-4)
    assert lemma.verdict.status == UNDECIDED and "budget" in lemma.verdict.message


def test_a_rule_that_crashes_is_undecided_not_a_traceback():
    def broken(alg, W_next, delta_next, derivative, Z):
        raise RuntimeError("broken rule")

    proof = prove_general(setting("tanh", "sigmoid", "half_sse"), Recurrences(hidden_delta=broken))
    lemma = next(l for l in proof.lemmas if l.name == "hidden step")
    assert lemma.verdict.status == UNDECIDED and "broken rule" in lemma.verdict.message
    assert not proof.all_proved


def test_symbolic_algebra_matches_the_explicit_one_at_a_concrete_size():
    """The sized algebra is the explicit algebra with sums: W a + b at n = 2 agrees entry by entry."""
    alg = Sized("columns")
    W, A, b = entries("W", 2, 3), entries("a", 3, 1), entries("b", 2, 1)
    Z = alg.affine(W, A, b)
    assert isinstance(Z, SizedMat) and Z.shape == (2, 1)
    w, a, c = sympy.IndexedBase("W"), sympy.IndexedBase("a"), sympy.IndexedBase("b")
    assert sympy.expand(Z(1, 0).doit() - (w[1, 0] * a[0] + w[1, 1] * a[1] + w[1, 2] * a[2] + c[1])) == 0


# ---------------------------------------------------------------------------- the induction


def test_induction_is_an_explicit_argument_built_from_the_lemmas():
    proof = prove_general(NetworkSpec(widths=(3, 4, 2), hidden="tanh", output="softmax", loss="cross_entropy"))
    argument = proof.induction
    names = {l.name for l in proof.lemmas}
    steps = argument.base + argument.step + argument.parameters
    assert all(name in names for s in steps for name in s.uses)
    assert any("hidden step" in s.uses for s in argument.step)
    assert any("mean reduction" in s.uses for s in argument.base)
    for s in steps + [argument.claim] + argument.conclusion + argument.definitions:
        equation = getattr(s, "statement", s)
        assert isinstance(equation.lhs, sympy.Basic) and isinstance(equation.rhs, sympy.Basic)
    conclusion = "\n".join(str(c) for c in argument.conclusion)
    assert "∂J/∂W_k = δ_k·(a_{k-1})ᵀ" in conclusion
    assert "((W_{k+1})ᵀ·δ_{k+1}) ⊙ g_k′(z_k)" in str(argument.definitions[-1])
    assert "every depth L ≥ 1" in argument.scope
    json.dumps(proof.to_dict(), ensure_ascii=False)


def test_induction_states_the_rule_it_was_given():
    recurrences = WRONG["W instead of Wᵀ"][0]
    s = setting("sigmoid", "sigmoid", "half_sse")
    argument = induction(s, [], recurrences)
    assert "W_{k+1}·δ_{k+1}" in str(argument.definitions[-1])


# ------------------------------------------------------------------------------------- CLI


def run(*args):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True, timeout=300)


def test_cli_general_table_and_exit_code():
    result = run("prove", "--widths", "3,4,2", "--hidden", "relu", "--output-activation", "softmax", "--loss",
                 "cross_entropy", "--general")
    assert result.returncode == 0, result.stderr
    assert "scope: general" in result.stdout
    assert "hidden step" in result.stdout and "Base case k = L" in result.stdout
    assert "all 10 lemmas proved" in result.stdout


def test_cli_general_json():
    result = run("prove", "--widths", "2,3,2", "--hidden", "tanh", "--output-activation", "sigmoid", "--loss", "bce",
                 "--layout", "rows", "--general", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["all_proved"] is True
    general = report["general"]
    assert general["all_proved"] is True and general["scope"] == "general"
    assert {l["verdict"] for l in general["lemmas"]} == {"proved"}
    assert {l["scope"] for l in general["lemmas"]} == {"general"}
    assert all(isinstance(l["seconds"], float) for l in general["lemmas"])
    assert general["induction"]["proved"] is True
    assert [c["lhs"] for c in general["induction"]["conclusion"]] == ["∂J/∂z_k", "∂J/∂W_k", "∂J/∂b_k"]


def test_cli_without_general_has_no_general_key():
    result = run("prove", "--widths", "2,2", "--json")
    assert result.returncode == 0 and "general" not in json.loads(result.stdout)
