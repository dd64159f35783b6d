"""Models written as definitions (``[model]``): the instances, the claims, the errors.

Every refutation here is re-evaluated independently (tests/reference.py: SymPy substitution and
mpmath's numerical differentiation), and every true closed form is proved on the document's sizes
and on sizes the tool chooses.
"""

from __future__ import annotations

import textwrap

import pytest

from symbackprop.cli import main
from symbackprop.derivation import Checker, load
from symbackprop.derivation.check import ModelCase
from symbackprop.derivation.language import Env, evaluate, parse, parse_range

from .reference import check_counterexample

BATCHNORM = """
title = "batch normalization, training mode"
[model]
sizes = { N = 4, D = 2 }
upstream = { y = "dy" }
[model.inputs]
x = "N x D"
[model.parameters]
gamma = "1 x D"
beta = "1 x D"
eps = { shape = "scalar", values = "positive" }
[model.forward]
mu = "mean(x, axis=0)"
var = "mean((x - mu)**2, axis=0)"
xhat = "(x - mu) / sqrt(var + eps)"
y = "gamma * xhat + beta"
"""

RNN = """
title = "an RNN over T steps"
[model]
sizes = { T = 3, H = 2, D = 2 }
loss = "L"
[model.inputs]
"x[t]" = { shape = "D", for = "t in 1..T" }
"h[0]" = "H"
"dh[t]" = { shape = "H", for = "t in 1..T" }
[model.parameters]
W = "H x H"
U = "H x D"
b = "H"
[model.forward]
"h[t]" = { expr = "tanh(W @ h[t-1] + U @ x[t] + b)", for = "t in 1..T" }
L = "sum(sum(dh[t] * h[t]), t in 1..T)"
[define]
"delta[T]" = "dh[T] * (1 - h[T]**2)"
"delta[t]" = { expr = "(dh[t] + W.T @ delta[t+1]) * (1 - h[t]**2)", for = "t in 1..T-1" }
"""


def claims(*items) -> str:
    text = ""
    for number, (lhs, rhs, *rest) in enumerate(items):
        text += f'\n[[claim]]\nid = "c{number}"\nlhs = "{lhs}"\nrhs = "{rhs}"\n'
        for extra in rest:
            text += extra + "\n"
    return text


def check(tmp_path, body: str):
    path = tmp_path / "model.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    checker = Checker(load(path), timeout=60)
    return checker, checker.check().results


def assert_refuted_truly(checker, result):
    """The witness is real: rebuild the instance it names and re-evaluate both sides independently."""
    assert result.verdict.status == "refuted", result.verdict.message
    counterexample = result.verdict.counterexample
    case = next(c for c in _cases(checker) if c.sizes == counterexample["sizes"])
    scope, decider = checker._context(case)
    claim = result.claim
    env = Env()
    if claim.range:
        variable = parse_range(claim.range)[0]
        env = Env({variable: counterexample[variable]})
    left, right = evaluate(scope, parse(claim.lhs), parse(claim.rhs), env)
    check_counterexample(scope.net, left, right, counterexample)


def _cases(checker):
    from symbackprop.derivation.check import model_cases

    return model_cases(checker.derivation)


# ------------------------------------------------------------------------------ batchnorm

BATCHNORM_DX = "(1/N) * gamma * (var + eps)**(-1/2) * (N * dy - sum(dy, axis=0) - xhat * sum(dy * xhat, axis=0))"


def test_batchnorm_closed_forms_are_proved_on_two_sizes(tmp_path):
    checker, results = check(tmp_path, BATCHNORM + claims(
        ("grad(loss, x)", BATCHNORM_DX),
        ("grad(loss, gamma)", "sum(dy * xhat, axis=0)"),
        ("grad(loss, beta)", "sum(dy, axis=0)"),
        ("grad(loss, xhat)", "dy * gamma"),  # an intermediate node
        ("grad(loss, var)", "sum(dy * gamma * (x - mu) * (-1/2) * (var + eps)**(-3/2), axis=0)"),
    ))
    for result in results:
        assert result.verdict.status == "proved", (result.claim.lhs, result.verdict.message)
        assert len(result.instances) == 2 and "distinct sizes" in result.instances[1]


@pytest.mark.parametrize("wrong", [
    # the terms from the mean and the variance dropped
    "gamma * (var + eps)**(-1/2) * dy",
    # the variance term dropped
    "(1/N) * gamma * (var + eps)**(-1/2) * (N * dy - sum(dy, axis=0))",
    # the 1/N on the wrong term
    "gamma * (var + eps)**(-1/2) * (N * dy - sum(dy, axis=0) - xhat * sum(dy * xhat, axis=0))",
    # (σ² + ε)^(-3/2) where the closed form has ^(-1/2)
    "(1/N) * gamma * (var + eps)**(-3/2) * (N * dy - sum(dy, axis=0) - xhat * sum(dy * xhat, axis=0))",
])
def test_batchnorm_slips_are_refuted_with_true_witnesses(tmp_path, wrong):
    checker, (result,) = check(tmp_path, BATCHNORM + claims(("grad(loss, x)", wrong)))
    assert_refuted_truly(checker, result)
    assert result.verdict.counterexample["point"]["eps"] > "0"  # ε is drawn positive


# ---------------------------------------------------------------------- recurrence (BPTT)


def test_bptt_sums_over_time_and_one_step_is_refuted(tmp_path):
    checker, results = check(tmp_path, RNN + claims(
        ("grad(L, W)", "sum(delta[t] @ h[t-1].T, t in 1..T)"),
        ("grad(L, U)", "sum(delta[t] @ x[t].T, t in 1..T)"),
        ("grad(L, b)", "sum(delta[t], t in 1..T)"),
        ("grad(L, h[t])", "W.T @ delta[t+1] + dh[t]", 'for = "t in 1..T-1"'),
        ("grad(L, W)", "delta[T] @ h[T-1].T"),  # BPTT that does not sum over time
        ("grad(L, h[t])", "W.T @ delta[t+1]", 'for = "t in 1..T-1"'),  # the direct term dropped
    ))
    assert [r.verdict.status for r in results[:4]] == ["proved"] * 4, [r.verdict.message for r in results]
    for result in results[4:]:
        assert_refuted_truly(checker, result)
    # a recurrence is also checked at a length of at least 3, with sizes pairwise distinct
    sizes = [c.sizes for c in _cases(checker)]
    assert sizes[1]["T"] >= 3 and len(set(sizes[1].values())) == 3 and sizes[1] != sizes[0]


# --------------------------------------------------- tied parameters, lookups, per-example losses


def test_a_tied_embedding_gets_the_gradient_of_both_uses(tmp_path):
    body = """
    title = "tied embedding"
    [model]
    sizes = { V = 3, E = 2 }
    loss = "L"
    [model.inputs]
    token = { shape = "scalar", values = "index 1..V" }
    label = { shape = "scalar", values = "index 1..V" }
    [model.parameters]
    M = "V x E"
    [model.forward]
    e = "M[token, :]"
    s = "M @ e.T"
    L = "-log(softmax(s)[label])"
    """ + claims(
        ("grad(L, s)", "softmax(s) - onehot(label, V).T"),
        ("grad(L, M)", "(softmax(s) - onehot(label, V).T) @ e + onehot(token, V).T @ ((softmax(s) - onehot(label, V).T).T @ M)"),
        ("grad(L, M)", "(softmax(s) - onehot(label, V).T) @ e"),  # the lookup's use forgotten
    )
    checker, results = check(tmp_path, body)
    assert [r.verdict.status for r in results[:2]] == ["proved", "proved"], [r.verdict.message for r in results]
    assert_refuted_truly(checker, results[2])
    assert "draw 2" in " ".join(results[0].instances)  # integer inputs are drawn more than once


def test_a_per_example_loss_beside_the_batch_loss(tmp_path):
    body = """
    title = "per-example and batch losses"
    [model]
    sizes = { N = 3, C = 2 }
    loss = "J"
    [model.inputs]
    Z = "C x N"
    [model.targets]
    Y = { shape = "C x N", values = "unit" }
    [model.forward]
    A = "sigmoid(Z)"
    "l[n]" = { expr = "-sum(Y[:, n] * log(A[:, n]) + (1 - Y[:, n]) * log(1 - A[:, n]))", for = "n in 1..N" }
    J = "sum(l[n], n in 1..N) / N"
    """ + claims(
        ("grad(J, Z)", "(A - Y) / N"),
        ("grad(l[1], Z[:, 1])", "A[:, 1] - Y[:, 1]"),  # Ng's dZ for one example
        ("grad(J, Z)", "A - Y"),  # the batch gradient without its 1/N
    )
    checker, results = check(tmp_path, body)
    assert [r.verdict.status for r in results[:2]] == ["proved", "proved"], [r.verdict.message for r in results]
    assert_refuted_truly(checker, results[2])


MASKED_ATTENTION = """
    [model]
    sizes = { T = 3, d = 2 }
    upstream = { O = "dO" }
    [model.inputs]
    Q = "T x d"
    K = "T x d"
    V = "T x d"
    mask = { shape = "T x T", values = "binary" }
"""  # queries, keys, values and a symbolic 0/1 mask


def test_masks_are_binary_and_causal_attention_keeps_the_softmax_jacobian(tmp_path):
    body = """
    title = "masked attention"
""" + MASKED_ATTENTION + """    [model.forward]
    S = "Q @ K.T / sqrt(d)"
    E = "mask * exp(S)"
    P = "E / sum(E, axis=1)"
    O = "P @ V"
    """ + claims(
        ("grad(loss, S)", "P * (dO @ V.T - sum(P * (dO @ V.T), axis=1))"),
        ("grad(loss, V)", "P.T @ dO"),
        ("grad(loss, S)", "dO @ V.T"),  # without the softmax Jacobian
    )
    checker, results = check(tmp_path, body)
    assert [r.verdict.status for r in results[:2]] == ["proved", "proved"], [r.verdict.message for r in results]
    assert_refuted_truly(checker, results[2])
    point = results[2].verdict.counterexample["point"]
    assert {point[k] for k in point if k.startswith("mask")} <= {"0", "1"}


def test_the_masked_attention_row_in_a_model_keeps_its_mask_symbolic(tmp_path):
    body = """
    title = "masked attention, the library's row"
""" + MASKED_ATTENTION + """    [model.forward]
    O = "masked_attention(Q, K, V, mask)"
    """ + claims(
        ("grad(loss, V)", "(mask * exp(Q @ K.T / sqrt(d)) / sum(mask * exp(Q @ K.T / sqrt(d)), axis=1)).T @ dO"),
        ("grad(loss, V)", "(exp(Q @ K.T / sqrt(d)) / sum(exp(Q @ K.T / sqrt(d)), axis=1)).T @ dO"),  # mask dropped
    )
    checker, results = check(tmp_path, body)
    assert results[0].verdict.status == "proved", results[0].verdict.message
    assert_refuted_truly(checker, results[1])
    point = results[1].verdict.counterexample["point"]
    assert {point[k] for k in point if k.startswith("mask")} <= {"0", "1"}


def test_convolution_by_index_sums(tmp_path):
    body = """
    title = "conv1d, valid padding"
    [model]
    sizes = { N = 5, K = 2 }
    upstream = { y = "dy" }
    [model.inputs]
    x = "N"
    [model.parameters]
    w = "K"
    [model.forward]
    "y[i]" = { expr = "sum(w[k] * x[i+k-1], k in 1..K)", shape = "N-K+1" }
    """ + claims(
        ("grad(loss, w[k])", "sum(dy[i] * x[i+k-1], i in 1..N-K+1)"),
        ("grad(loss, x[j])", "sum(w[k] * dy[j-k+1] * (1 <= j-k+1 <= N-K+1), k in 1..K)"),
        ("grad(loss, x[j])", "sum(w[k] * dy[j+k-1] * (1 <= j+k-1 <= N-K+1), k in 1..K)"),  # kernel not flipped
    )
    checker, results = check(tmp_path, body)
    assert [r.verdict.status for r in results[:2]] == ["proved", "proved"], [r.verdict.message for r in results]
    assert_refuted_truly(checker, results[2])


# ------------------------------------------------------------------------- shapes and errors


def test_broadcasting_rows_and_columns_but_never_a_row_against_a_column(tmp_path):
    checker, results = check(tmp_path, BATCHNORM + claims(
        ("y", "gamma * xhat + beta"),  # 1×D rows against N×D
        ("y", "gamma.T * xhat + beta"),  # a D×1 column against N×D: an error
        ("mu", "mu + x[:, 1]"),  # 1×D against N×1: an error
    ))
    assert results[0].verdict.status == "proved"
    assert results[1].verdict.status == "ill-formed"
    assert "2×1 and 4×2" in results[1].verdict.message
    assert results[2].verdict.status == "ill-formed" and "1×2 and 4×1" in results[2].verdict.message


@pytest.mark.parametrize("forward, message", [
    ('a = "b + 1"\nb = "x"', "[model.forward] a: b is not defined yet"),
    ('a = "a + 1"', "[model.forward] a: a is not defined yet"),
    ('"h[t]" = { expr = "tanh(h[t])", for = "t in 1..N" }', "[model.forward] h[1]: h[1] is not defined"),
    ('"h[t]" = { expr = "tanh(h[t-1])", for = "t in 1..1000" }', "1000 members (at most 200)"),
    ('a = "x @ x"', "[model.forward] a: shape mismatch in x @ x: 3×2 @ 3×2"),
    ('a = "q + x"', "[model.forward] a: q is not defined"),
    ('a = "softmax(x)"', "say along which axis"),
    ('"y[i]" = "x[i, 1]"', "needs shape"),
])
def test_a_malformed_model_is_one_line_naming_file_and_definition(tmp_path, capsys, forward, message):
    path = tmp_path / "bad.toml"
    path.write_text(textwrap.dedent(f"""
    title = "bad"
    [model]
    sizes = {{ N = 3 }}
    loss = "sum(x)"
    [model.inputs]
    x = "N x 2"
    "h[0]" = "N"
    [model.forward]
    {forward}
    [[claim]]
    lhs = "grad(loss, x)"
    rhs = "x"
    """), encoding="utf-8")
    assert main(["verify", str(path)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"symbackprop: {path}: ") and message in error[0], error


@pytest.mark.parametrize("model, message", [
    ('sizes = { N = 1000 }\nloss = "x"', "sizes: N must be an integer from 1 to 64"),
    ('sizes = { N = 3 }', "needs loss"),
    ('sizes = { N = 3 }\nloss = "x"\nupstream = { x = "dx" }', "either loss or upstream"),
    ('sizes = { N = 3 }\nloss = "x"\ncolour = 1', "unknown key 'colour'"),
])
def test_malformed_model_tables(tmp_path, capsys, model, message):
    path = tmp_path / "bad.toml"
    path.write_text(f'title = "bad"\n[model]\n{model}\n[model.inputs]\nx = "scalar"\n', encoding="utf-8")
    assert main(["verify", str(path)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0], error


def test_sizes_too_large_to_expand_are_refused_before_work(tmp_path, capsys):
    path = tmp_path / "big.toml"
    path.write_text('title = "big"\n[model]\nsizes = { N = 64 }\nloss = "sum(x)"\n[model.inputs]\n'
                    'x = "N x N"\ny = "N x N"\n', encoding="utf-8")
    assert main(["verify", str(path)]) == 2
    assert "more than 4000 free entries" in capsys.readouterr().err


# ------------------------------------------------------------- backprop through the definitions

LSTM = """
title = "an LSTM over T steps"
[model]
sizes = { T = 3, H = 2, D = 1 }
loss = "L"
[model.inputs]
"x[t]" = { shape = "D", for = "t in 1..T" }
"h[0]" = "H"
"c[0]" = "H"
"dh[t]" = { shape = "H", for = "t in 1..T" }
[model.parameters]
Wf = "H x H"
Uf = "H x D"
Wi = "H x H"
Ui = "H x D"
Wo = "H x H"
Uo = "H x D"
Wg = "H x H"
Ug = "H x D"
[model.forward]
"f[t]" = { expr = "sigmoid(Wf @ h[t-1] + Uf @ x[t])", for = "t in 1..T" }
"i[t]" = { expr = "sigmoid(Wi @ h[t-1] + Ui @ x[t])", for = "t in 1..T" }
"o[t]" = { expr = "sigmoid(Wo @ h[t-1] + Uo @ x[t])", for = "t in 1..T" }
"g[t]" = { expr = "tanh(Wg @ h[t-1] + Ug @ x[t])", for = "t in 1..T" }
"c[t]" = { expr = "f[t] * c[t-1] + i[t] * g[t]", for = "t in 1..T" }
"h[t]" = { expr = "o[t] * tanh(c[t])", for = "t in 1..T" }
L = "sum(sum(dh[t] * h[t]), t in 1..T)"
"""


def load_text(tmp_path, body: str):
    path = tmp_path / "model.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return load(path)


@pytest.mark.parametrize("body", [BATCHNORM, RNN, LSTM], ids=["batchnorm", "rnn", "lstm"])
def test_backprop_through_the_definitions_is_proved_node_by_node(tmp_path, body):
    from symbackprop.derivation.backward import prove_model

    proof = prove_model(load_text(tmp_path, body))
    assert proof.all_proved, [(s, v.message) for _, s, v in proof.results if not v.proved]
    assert len(proof.instances) == 2  # the document's sizes and distinct ones
    # every operand of every definition has its local rule checked
    statements = {s for _, s, _ in proof.results}
    if body is LSTM:
        assert "c[2] → ∂/∂c[1]" in statements and "h[3] → ∂/∂o[3]" in statements


@pytest.mark.parametrize("body", [BATCHNORM, RNN], ids=["batchnorm", "rnn"])
def test_the_exact_route_agrees_on_small_models(tmp_path, body):
    from symbackprop.derivation.backward import prove_model

    proof = prove_model(load_text(tmp_path, body), method="exact")
    assert proof.all_proved, [(s, v.message) for _, s, v in proof.results if not v.proved]
    names = {s for _, s, _ in proof.results}
    assert "∂J/∂x" in names or "∂J/∂W" in names


def test_a_wrong_backward_rule_is_caught_by_its_local_lemma(tmp_path, monkeypatch):
    """With dB = A dC (not Aᵀ dC) for C = A @ B, the composed proof must fail — and say where."""
    from symbackprop.derivation import backward

    original = backward.Backward._binary

    def wrong(self, node, g, env):
        if isinstance(node.op, backward.ast.MatMult):
            a, b, g = (backward._mat(v) for v in (self.value(node.left, env), self.value(node.right, env), g))
            if a.rows == a.cols:  # a square A: A dC has the right shape
                self.push(node.left, self.scope.alg.matmul(g, b.T), env)
                self.push(node.right, self.scope.alg.matmul(a, g), env)
                return
        return original(self, node, g, env)

    monkeypatch.setattr(backward.Backward, "_binary", wrong)
    proof = backward.prove_model(load_text(tmp_path, RNN))
    failed = [(s, v) for _, s, v in proof.results if not v.proved]
    assert not proof.all_proved and failed
    assert all(v.status == "refuted" for _, v in failed)
    assert any("∂/∂h[" in s for s, _ in failed)  # W @ h[t-1]: the gradient passed to h[t-1] is wrong


def test_a_model_report_compiles_to_a_pdf_in_the_documents_notation(tmp_path):
    from symbackprop.latex import compile_pdf, derivation_document, write

    from .test_latex import pdf_text, require_pdflatex

    require_pdflatex()
    checker, _ = check(tmp_path, BATCHNORM + claims(("grad(loss, x)", BATCHNORM_DX),
                                                     ("grad(loss, x)", "gamma * (var + eps)**(-1/2) * dy")))
    report = checker.check()
    path = write(derivation_document([report]), tmp_path / "model.tex")
    shown = pdf_text(compile_pdf(path))
    assert "Model with sizes N = 4, D = 2" in shown and "Forward pass" in shown
    assert "upstream gradient dy of y given" in shown
    assert "refuted" in shown and "γ1 =" in shown  # the witness in the document's symbols: γ₁, not gamma[1]
