"""Answers in the document's notation: counterexamples and likely slips name the file's symbols
(V, c, h, r …), the witness is shown shortest first, and a sign or a constant factor is named."""

from __future__ import annotations

import json
import textwrap
from fractions import Fraction

from symbackprop.cli import main
from symbackprop.derivation import verify

DOCUMENT = """
title = "notation"
[network]
widths = [3, 2, 2]
hidden = "sigmoid"
output = "sigmoid"
loss = "half_sse"
batch = 2
[symbols]
V = "weight"
c = "bias"
u = "preactivation"
h = "activation"
r = "target"
E = "loss"
phi = "activation_function"
m = "batch"
[define]
"d[2]" = "(h[2] - r) * phi'(u[2]) / m"
"d[1]" = "(V[2].T @ d[2]) * phi'(u[1])"
"""


def claims(tmp_path, *entries):
    body = DOCUMENT + "".join(textwrap.dedent(f"""
        [[claim]]
        id = "{name}"
        lhs = "{lhs}"
        rhs = "{rhs}"
        """) for name, lhs, rhs in entries)
    path = tmp_path / "doc.toml"
    path.write_text(body, encoding="utf-8")
    return path


def refuted(report, claim_id):
    result = next(r for r in report.results if r.claim.id == claim_id)
    assert result.verdict.status == "refuted", result.verdict
    return result


def test_counterexample_and_slip_use_the_documents_symbols(tmp_path):
    report = verify(claims(tmp_path, ("T", "grad(E, u[1])", "(V[2] @ d[2]) * phi'(u[1])")))
    result = refuted(report, "T")
    counterexample = result.verdict.counterexample
    names = list(counterexample["document_point"])
    assert names[0] == "V[1][1,1]" and "c[2][1]" in names and "h[0][3,2]" in names and "r[2,1]" in names
    assert not any(name.startswith(("W1", "b1", "x[", "y[")) for name in names)
    assert counterexample["document_point"]["V[1][1,1]"] == counterexample["point"]["W1[1,1]"]  # same point
    assert result.slip == "missing transpose: V used where V.T belongs"


def test_document_point_follows_the_claims_indexing_in_the_rows_layout(tmp_path):
    path = claims(tmp_path, ("T", "grad(E, V[2])", "2 * (d[2].T @ h[1]).T"))
    path.write_text(path.read_text(encoding="utf-8").replace('batch = 2', 'batch = 2\nlayout = "rows"')
                    .replace('"(V[2].T @ d[2]) * phi\'(u[1])"', '"(d[2] @ V[2]) * phi\'(u[1])"'), encoding="utf-8")
    result = refuted(verify(path), "T")
    point = result.verdict.counterexample["document_point"]
    # examples are rows: h[0] is m × n_0, so its entries are [example, feature] as a claim indexes them
    assert "h[0][2,3]" in point and "h[0][3,2]" not in point


def test_the_terminal_shows_the_short_witness_in_document_symbols(tmp_path, capsys):
    path = claims(tmp_path, ("T", "grad(E, u[1])", "(V[2] @ d[2]) * phi'(u[1])"))
    assert main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "counterexample at entry [1,1]: left side = " in out
    assert "differs in 4 of 4 entries of the 2×2 sides: [1,1], [1,2], [2,1], [2,2]" in out
    assert "at V[1][1,1] = " in out and "more: -v or --json" in out and "W1[" not in out
    assert main(["verify", str(path), "-v"]) == 1
    verbose = capsys.readouterr().out
    assert "r[2,2] = " in verbose and "more: -v or --json" not in verbose  # the whole point


def test_sign_and_integer_factors_are_named(tmp_path):
    report = verify(claims(tmp_path,
                           ("SIGN", "h[1]", "-h[1]"),                           # no gradient: only the factor tells
                           ("THREE", "grad(E, V[2])", "3 * d[2] @ h[1].T"),
                           ("MEAN", "grad(E, c[2])", "m * d[2] @ ones(m)"),
                           ("THIRD", "u[1]", "u[1] / 3")))
    sign = refuted(report, "SIGN")
    assert sign.verdict.counterexample["factor"] == "-1"
    assert sign.slip == "sign flipped: the two sides are exact negatives"
    three = refuted(report, "THREE")
    assert Fraction(three.verdict.counterexample["factor"]) == Fraction(1, 3)
    assert three.slip.startswith("factor 3: the left side is 1/3 × the right side")
    assert refuted(report, "MEAN").slip == "missing 1/m"  # the recurrences' own diagnosis comes first
    third = refuted(report, "THIRD")
    assert third.verdict.counterexample["factor"] == "3" and third.slip.startswith("factor 3")


def test_json_keeps_the_tool_point_and_adds_the_documents(tmp_path, capsys):
    path = claims(tmp_path, ("SIGN", "h[1]", "-h[1]"))
    assert main(["verify", str(path), "--json"]) == 1
    claim = json.loads(capsys.readouterr().out)["files"][0]["claims"][0]
    counterexample = claim["counterexample"]
    assert {"point", "lhs", "rhs", "entry", "document_point", "differing", "differing_count", "entries",
            "shape", "factor"} <= set(counterexample)
    assert len(counterexample["point"]) == len(counterexample["document_point"])
    assert claim["likely_slip"].startswith("sign flipped")
