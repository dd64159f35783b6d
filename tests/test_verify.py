"""`symbackprop verify`: the five documents, the JSON report, bad input and hostile files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from symbackprop.cli import main
from symbackprop.derivation import Checker, load

ROOT = Path(__file__).resolve().parent.parent
DERIVATIONS = ROOT / "derivations"

NETWORK = """
title = "test"
[network]
widths = [3, 4, 2]
hidden = "sigmoid"
output = "sigmoid"
loss = "half_sse"
[symbols]
W = "weight"
b = "bias"
z = "preactivation"
a = "activation"
t = "target"
C = "loss"
sigma = "activation_function"
[define]
"delta[2]" = "(a[2] - t) * sigma'(z[2])"
"delta[1]" = "W[2].T @ delta[2] * sigma'(z[1])"
"""


def write(tmp_path, body: str, name: str = "doc.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def run(*args):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


def check(path, timeout=60.0):
    return {r.claim.id: r for r in Checker(load(path), timeout=timeout).check().results}


# ------------------------------------------------------------------------------ the documents


@pytest.fixture(scope="module")
def report():
    result = run("verify", "derivations/", "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    return json.loads(result.stdout)


def test_all_five_documents_are_checked_as_expected(report):
    paths = sorted(Path(f["path"]).name for f in report["files"])
    assert paths == sorted(p.name for p in DERIVATIONS.glob("*.toml"))
    assert len(paths) >= 9  # the five seeds and the four layer-backward documents
    assert report["summary"]["unexpected"] == 0
    for file in report["files"]:
        assert file["errors"] == []
        for claim in file["claims"]:
            assert claim["verdict"] == claim["expect"], (file["path"], claim["id"], claim["message"])


def test_json_report_follows_the_spec(report):
    summary = report["summary"]
    assert set(summary) == {"proved", "refuted", "ill-formed", "undecided", "unexpected"}
    claims = [c for f in report["files"] for c in f["claims"]]
    assert sum(summary[k] for k in ("proved", "refuted", "ill-formed", "undecided")) == len(claims)
    for file in report["files"]:
        assert {"path", "title", "claims"} <= set(file)
    for claim in claims:
        assert {"id", "text", "verdict", "expect", "scope", "seconds", "message", "counterexample",
                "correction"} <= set(claim)
        # an instance of the general proof only when proved; never a stronger scope for another verdict
        assert claim["scope"] == "instance" or (claim["scope"] == "general, instantiated"
                                                and claim["verdict"] == "proved")
        assert isinstance(claim["seconds"], float)


def test_every_erratum_has_evidence_and_a_proved_correction(report):
    errata = [c for f in report["files"] for c in f["claims"] if c["expect"] != "proved"]
    assert len(errata) >= 10
    for claim in errata:
        assert claim["correction"] is not None, claim["id"]
        assert claim["correction"]["verdict"] == "proved", (claim["id"], claim["correction"])
        if claim["verdict"] == "refuted":
            cx = claim["counterexample"]
            assert cx["point"] and cx["lhs"] != cx["rhs"]
            assert all("/" in v or v.lstrip("-").isdigit() for v in cx["point"].values())  # exact values
        else:
            assert claim["verdict"] == "ill-formed" and claim["message"]


def test_known_errata_of_the_documents(report):
    by_id = {(Path(f["path"]).name[:3], c["id"]): c for f in report["files"] for c in f["claims"]}
    delta3 = by_id["002", "C3"]
    assert delta3["verdict"] == "ill-formed"
    assert "delta[3] is not defined (defined: delta[1], delta[2])" in delta3["message"]
    assert by_id["001", "O1"]["verdict"] == "refuted"  # the dropped minus sign
    assert by_id["003", "B1"]["verdict"] == "ill-formed" and "eps[1]" in by_id["003", "B1"]["message"]
    assert by_id["004", "P3"]["verdict"] == "ill-formed" and "shape mismatch" in by_id["004", "P3"]["message"]
    assert by_id["000", "F1"]["verdict"] == "refuted"
    assert by_id["000", "F1"]["counterexample"]["functions"]["f"]  # the generic f made concrete


def test_errata_and_readings_transcribed_literally(report):
    """Each erratum as printed, with its evidence and a proved correction; each claim that reads
    two ways (per example or for the batch) checked both ways."""
    by_id = {(Path(f["path"]).name[:3], c["id"]): c for f in report["files"] for c in f["claims"]}
    errata = {("001", "F7"): "ill-formed",    # Σ_{i=1}^m −log ŷ_l: a term without i, on m data points
              ("001", "T1"): "refuted",       # the thin network's chain through one output a_L11
              ("001", "P2m"): "ill-formed",   # the matrix ∇_{W_k} set equal to one entry's expression
              ("001", "H1p"): "refuted", ("001", "H2p"): "refuted",   # Σ_{m=1}^p over a_{i+1}, i < L−1
              ("001", "S4r"): "ill-formed",   # W_{k+1}ᵀ · (∇_{a_{k+1}} ⊙ g′(a_k)), the other grouping
              ("002", "C8a"): "ill-formed", ("002", "C8b"): "ill-formed",   # δ³ inside the ∂C/∂W¹ chain
              ("003", "F4y"): "refuted",      # y = n_{W,b}(x): y is the target everywhere else
              ("003", "F4a"): "refuted",      # … = a^(L), the chain's second link from its left side y
              ("003", "N2"): "ill-formed"}    # b = {b^(1), …, b^(l−1)}: l for L
    for key, verdict in errata.items():
        assert by_id[key]["verdict"] == verdict, (key, by_id[key]["message"])
        assert by_id[key]["correction"]["verdict"] == "proved", key
    batch = [("000", i) for i in ("G1B", "G2B", "G3B", "G4B", "G5B", "G6B", "G8B", "G11B", "G9B", "G10B",
                                  "G12aB", "G12B", "G13B", "G14B", "W1aB", "W1bB", "W1B", "W2B")]
    batch += [("003", "R1B"), ("003", "R2B"), ("003", "R3B"), ("003", "R4B"), ("004", "P3B"), ("004", "P4B")]
    for document, claim_id in batch:
        per_example = by_id[document, claim_id[:-1]]
        for_the_batch = by_id[document, claim_id]
        assert per_example["text"] == for_the_batch["text"], claim_id        # the same formula, read twice
        assert for_the_batch["verdict"] == "ill-formed" and for_the_batch["correction"]["verdict"] == "proved"
        assert any("batch 2" in instance for instance in for_the_batch["instances"]), claim_id
        assert all("batch 1" in instance for instance in per_example["instances"]), claim_id


def test_table_output_and_exit_code():
    result = run("verify", "derivations/002_backprop_in_neural_networks.toml")
    assert result.returncode == 0
    assert "delta[3] is not defined" in result.stdout
    assert "correction: grad(C, b[2]) = delta[2] — proved" in result.stdout
    assert "every verdict as expected" in " ".join(result.stdout.split())  # the summary may wrap


# ----------------------------------------------------------------------------- extra instances


def test_missing_transpose_hidden_by_the_documents_widths_is_caught(tmp_path):
    # with one unit per layer W₂ᵀ = W₂: only another instance can tell the slip
    body = NETWORK.replace("widths = [3, 4, 2]", "widths = [3, 1, 1]") + """
    [[claim]]
    id = "T"
    lhs = "grad(C, W[1])"
    rhs = "(W[2] @ delta[2] * sigma'(z[1])) @ a[0].T"
    """
    result = check(write(tmp_path, body))["T"]
    assert result.verdict.status == "ill-formed"
    assert "shape mismatch in W[2] @ delta[2]" in result.verdict.message
    assert "distinct widths" in result.verdict.message


def test_missing_mean_is_caught_on_a_batch(tmp_path):
    body = NETWORK.replace('loss = "half_sse"', 'loss = "half_sse"\nbatch = 2').replace(
        'C = "loss"', 'C = "loss"\nm = "batch"') + """
    [[claim]]
    id = "M"
    lhs = "grad(C, b[2])"
    rhs = "delta[2] @ ones(m)"
    [[claim]]
    id = "OK"
    lhs = "grad(C, b[2])"
    rhs = "delta[2] @ ones(m) / m"
    """
    results = check(write(tmp_path, body))
    assert results["M"].verdict.status == "refuted"
    assert results["OK"].verdict.status == "proved"


def test_claims_over_layers_are_checked_deeper(tmp_path):
    body = NETWORK.replace('C = "loss"', 'C = "loss"\nL = "depth"') + """
    "d[L]" = "(a[L] - t) * sigma'(z[L])"
    "d[l]" = { expr = "W[l+1].T @ d[l+1] * sigma'(z[l])", for = "l in 1..L-1" }
    [[claim]]
    id = "R"
    lhs = "grad(C, z[l])"
    rhs = "d[l]"
    for = "l in 1..L"
    [[claim]]
    id = "WRONG"
    lhs = "grad(C, z[l])"
    rhs = "W[l+1].T @ ((a[L] - t) * sigma'(z[L])) * sigma'(z[l])"
    for = "l in 1..L-1"
    """
    results = check(write(tmp_path, body))
    assert results["R"].verdict.status == "proved"
    assert any("depth 3" in item for item in results["R"].instances)
    # right only when layer l+1 is the output layer: the depth-3 instance catches it
    assert results["WRONG"].verdict.status == "ill-formed"
    assert "shape mismatch in W[l + 1].T @ ((a[L] - t) * sigma'(z[L]))" in results["WRONG"].verdict.message
    assert "depth 3" in results["WRONG"].verdict.message


# ----------------------------------------------------------------------------------- bad input


def test_malformed_toml_is_a_file_error(tmp_path):
    path = write(tmp_path, "title = \"x\"\n[network\nwidths = [1]\n")
    result = run("verify", str(path))
    assert result.returncode == 2
    assert "malformed TOML" in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_keys_are_reported_and_the_rest_is_checked(tmp_path):
    body = NETWORK.replace('title = "test"', 'title = "test"\ncolour = "blue"') + """
    [[claim]]
    id = "C1"
    lhs = "grad(C, b[2])"
    rhs = "delta[2]"
    exepct = "refuted"
    [[claim]]
    id = "C2"
    lhs = "grad(C, W[2])"
    rhs = "delta[2] @ a[1].T"
    """
    path = write(tmp_path, body)
    result = run("verify", str(path))
    assert result.returncode == 2
    assert "unknown key 'colour'" in result.stderr
    assert "claim C1: unknown key 'exepct'" in result.stderr
    assert "C2" in result.stdout and "proved" in result.stdout  # still checked


@pytest.mark.parametrize("symbols,fragment", [
    ('W = "weights"', "unknown quantity 'weights'"),
    ('W = { quantity = "weight", shift = "one" }', "shift must be an integer"),
    ('"ℓ" = "label"', "Python reads this name as 'l'"),
])
def test_bad_symbols_are_file_errors(tmp_path, symbols, fragment):
    body = NETWORK.replace('W = "weight"', symbols)
    result = run("verify", str(write(tmp_path, body)))
    assert result.returncode == 2
    assert fragment in result.stderr


@pytest.mark.parametrize("lhs,rhs,fragment", [
    ("grad(C, W[2])", "delta[2] @ q[1].T", "q is not defined (defined: C, W, a, b, delta, sigma, t, z)"),
    ("grad(C, b[2])", "delta[3]", "delta[3] is not defined (defined: delta[1], delta[2])"),
    ("grad(C, W[3])", "delta[2]", "W[3] is not defined (defined: W[1], W[2])"),
    ("grad(C, W[2])", "delta[2] @ a[1]", "shape mismatch in delta[2] @ a[1]: 2×1 @ 4×1"),
    ("grad(C, W[2])", "delta[2] * a[1].T", "shape mismatch in an elementwise product: 2×1 and 1×4"),
    ("grad(C, W[2])", "delta[2]", "shape mismatch: left side is 2×4, right side is 2×1"),
    ("grad(C, W[2])", "foo(delta[2])", "unknown function foo"),
    ("grad(C, W[2])", "delta[2] @ a[1]^T", "^ is not allowed at column 1: use .T for transpose"),
    ("grad(delta[2], W[2])", "delta[2]", "grad needs a scalar first argument"),
    ("grad(C, W[2] @ a[1])", "delta[2]", "cannot differentiate with respect to W[2] @ a[1]"),
])
def test_ill_formed_claims_say_what_is_wrong(tmp_path, lhs, rhs, fragment):
    body = NETWORK + f"""
    [[claim]]
    id = "X"
    lhs = "{lhs}"
    rhs = "{rhs}"
    [[claim]]
    id = "Y"
    lhs = "grad(C, W[2])"
    rhs = "delta[2] @ a[1].T"
    """
    results = check(write(tmp_path, body))
    assert results["X"].verdict.status == "ill-formed"
    assert fragment in results["X"].verdict.message, results["X"].verdict.message
    assert "\n" not in results["X"].verdict.message
    assert results["Y"].verdict.status == "proved"  # the rest of the file is still checked


@pytest.mark.parametrize("formula,fragment", [
    ("__import__('os').system('touch {marker}')", "only named functions can be called"),
    ("__import__('os')", "names starting with '_' are not allowed"),
    ("a.__class__", "attribute access .__class__ is not allowed"),
    ("W[2].T.__globals__", "attribute access .__globals__ is not allowed"),
    ("(lambda: 0)()", "only named functions can be called"),
    ("lambda: 0", "lambda is not allowed"),
    ("[x for x in a]", "is not allowed"),
    ("exec('import os')", "only numbers are allowed as constants"),
    ("open('{marker}', 'w')", "only numbers are allowed as constants"),
    ("eval(C)", "unknown function eval"),
    ("getattr(C, 'T')", "only numbers are allowed as constants"),
    ("a if C else b", "ifexp is not allowed"),
])
def test_hostile_formulas_cannot_run_code(tmp_path, formula, fragment):
    marker = tmp_path / "pwned"
    formula = formula.format(marker=marker)
    body = NETWORK + f'''
    [[claim]]
    id = "H"
    lhs = "C"
    rhs = """{formula}"""
    '''
    path = write(tmp_path, body)
    result = run("verify", str(path), "--json")
    assert not marker.exists()
    report = json.loads(result.stdout)
    claim = report["files"][0]["claims"][0]
    assert claim["verdict"] == "ill-formed"
    assert fragment in claim["message"], claim["message"]


def test_hostile_definition_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    body = NETWORK + f"""
    "evil" = "__import__('os').system('touch {marker}')"
    [[claim]]
    id = "E"
    lhs = "C"
    rhs = "evil"
    """
    result = run("verify", str(write(tmp_path, body)))
    assert not marker.exists()
    assert result.returncode == 2
    assert "[define] evil: only named functions can be called" in result.stderr
    assert "E" in result.stdout and "ill-formed" in result.stdout
    assert "whose definition is broken" in result.stdout


@pytest.mark.parametrize("claim,fragment", [
    ('id = "A"\nrhs = "delta[2]"', "claim A: needs lhs"),
    ('id = "B"\nlhs = "C"\nrhs = "C"\nexpect = "maybe"', "expect must be one of"),
    ('id = "D"\nlhs = "C"\nrhs = "C"\nfor = "l from 1 to 2"', "is not of the form 'l in 1..L-1'"),
])
def test_broken_claim_entries_are_file_errors(tmp_path, claim, fragment):
    body = NETWORK + "\n[[claim]]\n" + claim + "\n"
    result = run("verify", str(write(tmp_path, body)))
    assert result.returncode == 2
    assert fragment in result.stderr


def test_paths_that_do_not_exist_or_hold_nothing(tmp_path):
    result = run("verify", str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and "no such file" in result.stderr
    result = run("verify", str(tmp_path))
    assert result.returncode == 2 and "no *.toml derivation files" in result.stderr


def test_bad_network_is_a_file_error(tmp_path):
    result = run("verify", str(write(tmp_path, NETWORK.replace('loss = "half_sse"', 'loss = "hinge"'))))
    assert result.returncode == 2 and "[network]: unknown loss 'hinge'" in result.stderr


def test_unexpected_verdict_exits_1(tmp_path, capsys):
    body = NETWORK + """
    [[claim]]
    id = "WRONG"
    lhs = "grad(C, W[2])"
    rhs = "-delta[2] @ a[1].T"
    """
    assert main(["verify", str(write(tmp_path, body))]) == 1
    out = capsys.readouterr().out
    assert "UNEXPECTED (expected proved)" in out and "counterexample at" in out


def test_timeout_gives_undecided(tmp_path):
    body = NETWORK.replace("widths = [3, 4, 2]", "widths = [5, 6, 6, 5]").replace('C = "loss"', 'C = "loss"\nL = "depth"') + """
    [[claim]]
    id = "SLOW"
    lhs = "grad(C, W[1])"
    rhs = "grad(C, W[1]) * 1"
    """
    result = check(write(tmp_path, body), timeout=0.01)["SLOW"]
    assert result.verdict.status == "undecided"
    assert "budget" in result.verdict.message


# ---------------------------------------------------------------------------- the language


def test_einstein_dummies_belong_to_their_own_term(tmp_path):
    body = NETWORK.replace('title = "test"', 'title = "test"\nsummation = "einstein"') + """
    [[claim]]
    id = "E"
    lhs = "z[2][q]"
    rhs = "W[2][q, r] * a[1][r] + b[2][q]"
    [[claim]]
    id = "S"
    lhs = "grad(C, W[2][i, j])"
    rhs = "delta[2][i] * a[1][j]"
    """
    results = check(write(tmp_path, body))
    assert results["E"].verdict.status == "proved"
    assert results["S"].verdict.status == "proved"


def test_iverson_brackets_are_strongly_zero(tmp_path):
    body = NETWORK + """
    [[claim]]
    id = "K"
    lhs = "grad(C, b[2][i])"
    rhs = "delta[2][i] + (1 == 2) * delta[1][i + 7]"
    """
    assert check(write(tmp_path, body))["K"].verdict.status == "proved"


def test_rows_slices_and_widths(tmp_path):
    body = NETWORK.replace('C = "loss"', 'C = "loss"\nn = "width"') + """
    [[claim]]
    id = "ROW"
    lhs = "z[2][k]"
    rhs = "W[2][k, :] @ a[1] + b[2][k]"
    [[claim]]
    id = "ID"
    lhs = "jacobian(z[2], b[2])"
    rhs = "diag(ones(n[2]))"
    """
    results = check(write(tmp_path, body))
    assert results["ROW"].verdict.status == "proved"
    assert results["ID"].verdict.status == "proved"


def test_refuted_gradients_name_the_likely_slip(tmp_path):
    body = """
    title = "slips"
    [network]
    widths = [3, 3, 3, 2]
    hidden = "sigmoid"
    output = "sigmoid"
    loss = "half_sse"
    batch = 2
    [symbols]
    W = "weight"
    b = "bias"
    z = "preactivation"
    a = "activation"
    t = "target"
    C = "loss"
    m = "batch"
    sigma = "activation_function"
    [define]
    "d[3]" = "(a[3] - t) * sigma'(z[3]) / m"
    "d[2]" = "W[3].T @ d[3] * sigma'(z[2])"
    [[claim]]
    id = "NOMEAN"
    lhs = "grad(C, b[3])"
    rhs = "(a[3] - t) * sigma'(z[3]) @ ones(m)"
    [[claim]]
    id = "SIGN"
    lhs = "grad(C, W[3])"
    rhs = "-d[3] @ a[2].T"
    [[claim]]
    id = "NOT"
    lhs = "grad(C, z[1])"
    rhs = "W[2] @ d[2] * sigma'(z[1])"
    [[claim]]
    id = "NOGP"
    lhs = "grad(C, z[2])"
    rhs = "W[3].T @ d[3]"
    [[claim]]
    id = "RIGHT"
    lhs = "grad(C, z[2])"
    rhs = "d[2]"
    """
    results = check(write(tmp_path, body))
    assert results["NOMEAN"].slip == "missing 1/m"
    assert results["SIGN"].slip == "sign flipped"
    assert results["NOT"].slip.startswith("missing transpose")
    assert results["NOGP"].slip.startswith("missing derivative factor")
    assert results["RIGHT"].verdict.status == "proved" and results["RIGHT"].slip is None
    assert all(results[i].verdict.status == "refuted" for i in ("NOMEAN", "SIGN", "NOT", "NOGP"))
