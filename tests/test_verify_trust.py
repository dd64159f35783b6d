"""`verify` a user can trust: a refutation is true of the document, one failure never costs the
other claims or files their results, messages say what is wrong, nothing is assumed silently."""

from __future__ import annotations

import json
import textwrap
import tomllib
from pathlib import Path

import pytest

from symbackprop.cli import main
from symbackprop.derivation import Checker, check, load, loader

ROOT = Path(__file__).resolve().parent.parent

SYMBOLS = """
[symbols]
W = "weight"
b = "bias"
z = "preactivation"
a = "activation"
x = "input"
t = "target"
C = "loss"
g = "activation_function"
"""


def document(widths, claims: str, top: str = "", network: str = "", hidden: str = 'hidden = "sigmoid"\n') -> str:
    return (f'title = "test"\n{top}\n[network]\nwidths = {list(widths)}\n{hidden}output = "sigmoid"\n'
            f'loss = "half_sse"\n{network}' + SYMBOLS + textwrap.dedent(claims))


def write(tmp_path, body: str, name: str = "doc.toml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def results(path, timeout=60.0):
    return {r.claim.id: r for r in Checker(load(path), timeout=timeout).check().results}


# ----------------------------------------------------------- claims about the document's own sizes

NEURON = """
[[claim]]
id = "SUM"
text = "z = w_1 x_1 + w_2 x_2 + b"
lhs = "z[1][1]"
rhs = "W[1][1, 1] * x[1] + W[1][1, 2] * x[2] + b[1][1]"
[[claim]]
id = "GRAD"
text = "∂C/∂w_2 = (a − t) σ′(z) x_2"
lhs = "grad(C, W[1][1, 2])"
rhs = "(a[1][1] - t[1]) * g'(z[1][1]) * x[2]"
[[claim]]
id = "GENERAL"
lhs = "z[1]"
rhs = "W[1] @ x + b[1]"
"""

HIDDEN_331 = """
[[claim]]
id = "Z1"
lhs = "z[1][2]"
rhs = "W[1][2, 1] * x[1] + W[1][2, 2] * x[2] + W[1][2, 3] * x[3] + b[1][2]"
[[claim]]
id = "Z2"
lhs = "z[2][1]"
rhs = "W[2][1, 1] * a[1][1] + W[2][1, 2] * a[1][2] + W[2][1, 3] * a[1][3] + b[2][1]"
[[claim]]
id = "DELTA1"
lhs = "grad(C, z[1][3])"
rhs = "W[2][1, 3] * (a[2][1] - t[1]) * g'(z[2][1]) * g'(z[1][3])"
"""


def test_a_two_input_neuron_written_out_is_proved_on_its_own_network(tmp_path):
    checked = results(write(tmp_path, document([2, 1], NEURON, hidden="")))
    for claim_id in ("SUM", "GRAD"):
        result = checked[claim_id]
        assert result.verdict.status == "proved", result.verdict.message
        assert len(result.instances) == 1 and "the document's network" in result.instances[0]
        assert any("names an entry by number" in note for note in result.verdict.notes), result.verdict.notes
    # a claim in matrix notation is general, and still checked on the tool's networks too
    assert len(checked["GENERAL"].instances) == 2 and checked["GENERAL"].verdict.status == "proved"


def test_a_3_3_1_hidden_layer_written_out_is_proved(tmp_path):
    checked = results(write(tmp_path, document([3, 3, 1], HIDDEN_331)))
    for result in checked.values():
        assert result.verdict.status == "proved", (result.claim.id, result.verdict.message)
        assert len(result.instances) == 1


def test_instances_all_checks_the_tools_networks_and_says_the_verdict_comes_from_one(tmp_path, capsys):
    body = document([2, 1], NEURON.replace('id = "SUM"', 'id = "SUM"\ninstances = "all"'), hidden="")
    path = write(tmp_path, body)
    result = results(path)["SUM"]
    assert result.verdict.status == "refuted"  # on 3-1, x[3] is missing from the written-out sum
    assert "a network the tool chose, not the document's" in result.verdict.message
    assert result.decided_on["chosen_by"] == "tool" and "distinct widths" in result.decided_on["instance"]
    assert result.verdict.counterexample["chosen_by"] == "tool"
    main(["verify", str(path), "--json"])
    claim = json.loads(capsys.readouterr().out)["files"][0]["claims"][0]
    assert claim["decided_on"]["chosen_by"] == "tool" and "the tool chose" in claim["message"]


def test_a_verdict_on_the_documents_network_says_so(tmp_path):
    body = document([2, 3, 2], """
    [[claim]]
    id = "WRONG"
    lhs = "grad(C, W[2])"
    rhs = "-(a[2] - t) * g'(z[2]) @ a[1].T"
    """)
    result = results(write(tmp_path, body))["WRONG"]
    assert result.verdict.status == "refuted"
    assert result.decided_on["chosen_by"] == "document" and "the tool chose" not in result.verdict.message


def test_instances_document_for_the_file_and_all_for_one_claim(tmp_path):
    claims = """
    [[claim]]
    id = "DOC"
    lhs = "z[1]"
    rhs = "W[1] @ x + b[1]"
    [[claim]]
    id = "ALL"
    instances = "all"
    lhs = "z[1]"
    rhs = "W[1] @ x + b[1]"
    """
    checked = results(write(tmp_path, document([2, 3, 2], claims, top='instances = "document"')))
    assert len(checked["DOC"].instances) == 1
    assert 'instances = "document"' in checked["DOC"].verdict.notes[0]
    assert len(checked["ALL"].instances) == 2


def test_a_bad_instances_value_is_a_file_error(tmp_path, capsys):
    path = write(tmp_path, document([2, 1], NEURON.replace('id = "SUM"', 'id = "SUM"\ninstances = "some"'), hidden=""))
    assert main(["verify", str(path)]) == 2
    assert 'instances must be "document"' in capsys.readouterr().err


def test_a_layer_named_by_number_is_not_checked_deeper(tmp_path):
    # delta[2] is the output delta of the document's 2-layer network; on 3 layers it would not be
    claims = """
    [define]
    "delta[2]" = "(a[2] - t) * g'(z[2])"
    "delta[l]" = { expr = "W[l+1].T @ delta[l+1] * g'(z[l])", for = "l in 1..1" }
    [[claim]]
    id = "R"
    lhs = "grad(C, z[l])"
    rhs = "delta[l]"
    for = "l in 1..2"
    """
    result = results(write(tmp_path, document([2, 3, 2], claims)))["R"]
    assert result.verdict.status == "proved", result.verdict.message
    assert not any("depth 3" in item for item in result.instances)


# ------------------------------------------------------------------- nothing crashes, nothing is lost

THREE_INDICES = document([2, 3, 2], """
[[claim]]
id = "T3"
lhs = "W[1][i, j, k]"
rhs = "W[1][i, j]"
[[claim]]
id = "FINE"
lhs = "z[1]"
rhs = "W[1] @ x + b[1]"
""")


def test_three_letter_indices_are_ill_formed_and_the_folder_keeps_every_result(tmp_path, capsys):
    write(tmp_path, THREE_INDICES, "a.toml")
    write(tmp_path, document([2, 1], NEURON, hidden=""), "b.toml")
    code = main(["verify", str(tmp_path), "--json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    report = json.loads(captured.out)
    assert code == 1 and len(report["files"]) == 2
    claims = {c["id"]: c for f in report["files"] for c in f["claims"]}
    assert claims["T3"]["verdict"] == "ill-formed"
    assert "an entry takes one or two" in claims["T3"]["message"] and "\n" not in claims["T3"]["message"]
    assert claims["FINE"]["verdict"] == claims["SUM"]["verdict"] == "proved"


def test_an_unexpected_error_in_one_claim_costs_only_that_claim(tmp_path, monkeypatch):
    original = check.Checker._decide_on

    def failing(self, instance, claim, *args):
        if claim.id == "T3":
            raise RuntimeError("a bug\nwith a second line")
        return original(self, instance, claim, *args)

    monkeypatch.setattr(check.Checker, "_decide_on", failing)
    checked = results(write(tmp_path, THREE_INDICES))
    verdict = checked["T3"].verdict
    assert verdict.status == "undecided"
    assert verdict.message.startswith("could not be checked: RuntimeError: a bug") and "\n" not in verdict.message
    assert checked["FINE"].verdict.status == "proved"


def test_an_unexpected_error_in_one_file_costs_only_that_file(tmp_path, monkeypatch, capsys):
    original = loader._load_claims

    def failing(d, claims, shown):
        if shown.endswith("a.toml"):
            raise KeyError("a bug")
        return original(d, claims, shown)

    monkeypatch.setattr(loader, "_load_claims", failing)
    write(tmp_path, THREE_INDICES, "a.toml")
    write(tmp_path, document([2, 1], NEURON, hidden=""), "b.toml")
    assert main(["verify", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "a.toml: could not be read (KeyError: 'a bug')" in captured.err
    assert "b.toml" in captured.out and "SUM" in captured.out


# ------------------------------------------------------------------------------- clear messages

EINSTEIN = 'summation = "einstein"'


def test_an_index_summed_inside_parentheses_is_explained(tmp_path):
    body = document([2, 3, 2], """
    [[claim]]
    id = "P"
    lhs = "a[2][p]"
    rhs = "g(W[2][p, q] * a[1][q] + b[2][p]) * a[1][q]"
    """, top=EINSTEIN)
    message = results(write(tmp_path, body))["P"].verdict.message
    assert "of its 3 uses only one is at the level of this term" in message
    assert "inside g(W[2][p, q] * a[1][q] + b[2][p]), which sums them on its own" in message


def test_a_functions_argument_is_a_term_of_its_own(tmp_path):
    body = document([2, 3, 2], """
    [[claim]]
    id = "F"
    lhs = "g(z[2][p] - b[2][p])"
    rhs = "g(W[2][p, q] * a[1][q])"
    """, top=EINSTEIN)
    assert results(write(tmp_path, body))["F"].verdict.status == "proved"  # σ(Σ_q W_pq a_q), not Σ_q σ(W_pq a_q)


def test_a_prime_after_a_subscript_is_explained(tmp_path):
    body = document([2, 3, 2], """
    [[claim]]
    id = "P"
    lhs = "a[1]"
    rhs = "g[l]'(z[1])"
    """)
    message = results(write(tmp_path, body))["P"].verdict.message
    assert "a prime (') must follow a function's name" in message and "string literal" not in message


def test_a_single_letter_without_a_range_is_an_entry_index(tmp_path, capsys):
    body = document([2, 3, 2], """
    [define]
    "mu[i]" = "2 * z[1][i]"
    [[claim]]
    id = "MU"
    lhs = "mu[j]"
    rhs = "z[1][j] + z[1][j]"
    [[claim]]
    id = "WHOLE"
    lhs = "mu"
    rhs = "2 * z[1]"
    """)
    checked = results(write(tmp_path, body))
    assert checked["MU"].verdict.status == "proved" and checked["WHOLE"].verdict.status == "proved"
    layered = document([2, 3, 2], """
    [define]
    "mu[l]" = "2 * z[l]"
    """)
    assert main(["verify", str(write(tmp_path, layered, "layered.toml"))]) == 2
    assert "the formula uses it as a layer in z[l]; for a definition per layer give its range" in \
        capsys.readouterr().err


def test_counterexamples_in_the_rows_layout_index_example_first(tmp_path):
    body = document([3, 2], """
    [[claim]]
    id = "WRONG"
    lhs = "grad(C, W[1])"
    rhs = "-((a[1] - t) * g'(z[1])).T @ x / 2"
    """, network='layout = "rows"\nbatch = 2\n', hidden="")
    result = results(write(tmp_path, body))["WRONG"]
    assert result.verdict.status == "refuted"
    point = result.verdict.counterexample["point"]
    assert "x[2,3]" in point and "x[3,2]" not in point  # example 2, feature 3: X is m × n_0


# ------------------------------------------------------------------------- nothing is assumed


@pytest.mark.parametrize("key", ["widths", "hidden", "output", "loss"])
def test_every_required_network_key_is_required(tmp_path, capsys, key):
    body = document([2, 3, 2], NEURON)
    lines = [line for line in body.splitlines() if not line.startswith(f"{key} ")]
    code = main(["verify", str(write(tmp_path, "\n".join(lines)))])
    err = capsys.readouterr().err
    assert code == 2 and f"[network] needs {key}" in err and len(err.strip().splitlines()) == 1


def test_a_single_layer_needs_no_hidden_activation(tmp_path):
    assert results(write(tmp_path, document([2, 1], NEURON, hidden="")))["GENERAL"].verdict.status == "proved"


def test_the_five_documents_state_every_required_key():
    for path in sorted((ROOT / "derivations").glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        if "network" not in data:  # a [model] file: its declarations are required by the loader itself
            assert "model" in data, path.name
            continue
        network = data["network"]
        required = set(loader.REQUIRED_NETWORK_KEYS) - ({"hidden"} if len(network["widths"]) == 2 else set())
        assert required <= set(network), (path.name, required - set(network))


def test_the_header_shows_activations_loss_reduction_and_layout(tmp_path, capsys):
    claims = """
    [[claim]]
    id = "W2"
    lhs = "grad(C, W[2])"
    rhs = "((a[2] - t) * g'(z[2])) @ a[1].T"
    """
    path = write(tmp_path, document([2, 3, 2], claims, network='batch = 2\nreduction = "sum"\n'))
    assert main(["verify", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the list wraps at the terminal's width
    header = out[out.index("checked on:"):]
    assert "2-3-2 sigmoid/sigmoid, half_sse, batch 2 (sum), examples as columns (the document's network)" in header
    assert "(distinct widths, batch 3; chosen by the tool)" in header


MODEL_SUM = """
title = "a model written out"
[model]
sizes = { N = 2, D = 2 }
loss = "L"
[model.inputs]
x = "N x D"
[model.parameters]
w = "D"
[model.forward]
L = "sum(x @ w)"
[[claim]]
id = "OUT"
lhs = "L"
rhs = "x[1, 1] * w[1] + x[1, 2] * w[2] + x[2, 1] * w[1] + x[2, 2] * w[2]"
"""


def test_a_model_written_out_at_its_sizes_is_proved_there_and_the_tools_sizes_say_so(tmp_path):
    result = results(write(tmp_path, MODEL_SUM))["OUT"]
    assert result.verdict.status == "proved" and len(result.instances) == 1
    everywhere = results(write(tmp_path, MODEL_SUM.replace('id = "OUT"', 'id = "OUT"\ninstances = "all"'),
                               "all.toml"))["OUT"]
    assert everywhere.verdict.status == "refuted"
    assert "on sizes the tool chose, not the document's" in everywhere.verdict.message
    assert everywhere.decided_on["chosen_by"] == "tool"
