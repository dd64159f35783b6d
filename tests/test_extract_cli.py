"""``symbackprop extract DOC`` and ``verify DOC``: what the user sees — messages naming the
document and the formula's line, the user's symbols file merged key by key, the guesses and the
unreadable formulas in the JSON report, the help and the README's example."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from symbackprop.cli import main
from symbackprop.derivation.loader import entry_origins, load, merge
from symbackprop.extract import ExtractError, draft, find_math, load_document

from .optional import require

ROOT = Path(__file__).resolve().parent.parent

POST = r"""# A post

Forward: $z^2 = W^2 a^1 + b^2$ and $a^2 = \sigma(z^2)$, loss $C = \frac{1}{2} \|a^2 - y\|^2$.

$$
\frac{\partial C}{\partial b^2} = \delta^2, \qquad \delta^2 \equiv (a^2 - y) \odot \sigma'(z^2)
$$

$$
\frac{\partial C}{\partial W^2} = \unknownmacro{x}
$$
"""


@pytest.fixture
def post(tmp_path):
    path = tmp_path / "post.md"
    path.write_text(POST, encoding="utf-8")
    return path


def _verify_json(*args, capsys):
    code = main(["verify", "--json", *map(str, args)])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


# ------------------------------------------------------------------ 1. the draft is read from memory


def test_verify_doc_names_the_document_and_the_formulas_line_not_a_temporary_file(post, capsys):
    code, report, err = _verify_json(post, capsys=capsys)
    assert code == 2  # a formula the reader cannot read is a problem with the file, as in a derivation file
    (file,) = report["files"]
    assert file["path"] == str(post)
    assert report["errors"] == [f"{post}:10: claim L10-6: tex: unknown macro \\unknownmacro at column 35"]
    assert err.strip() == f"symbackprop: {report['errors'][0]}"
    assert ".draft.toml" not in json.dumps(report) and "symbackprop-" not in json.dumps(report)


def test_verify_doc_prints_the_documents_name_in_the_text_report(post, capsys):
    main(["verify", str(post)])
    out = capsys.readouterr().out
    assert f"{post} — post ({post.name})" in out
    assert ".draft.toml" not in out


def test_the_loader_takes_a_parsed_table_and_names_each_entry_by_its_origin():
    data = {"network": {"widths": [2, 2], "output": "sigmoid", "loss": "half_sse"},
            "symbols": {"C": "loss", "W": "weight", "q": "nonsense"},
            "claim": [{"id": "A", "lhs": "grad(C, W[1])", "rhs": "grad(C, W[1])"},
                      {"id": "B", "lhs": "grad(C, W[1])", "rhs": "1", "colour": 1}]}
    d = load("post.md", data=data, origins={("symbols", "q"): "mine.toml:4", ("claim", 2): "post.md:12"})
    assert d.path == "post.md" and [c.id for c in d.claims] == ["A", "B"]
    assert d.errors[0].startswith("mine.toml:4: [symbols] q: unknown quantity 'nonsense'")
    assert d.errors[1].startswith("post.md:12: claim B: unknown key 'colour'")


# ------------------------------------------------------------------ 2. --symbols merged as tables


def test_merge_is_key_by_key_the_override_wins_and_the_claims_stay():
    base = {"title": "t", "network": {"widths": [3, 4, 2], "hidden": "sigmoid"}, "symbols": {"y": "target"},
            "claim": [{"id": "A"}]}
    user = {"network": {"widths": [2, 3, 2]}, "symbols": {"t": "target"}, "tex": {"\\hat{y}": "yhat"},
            "claim": [{"id": "mine"}]}
    merged = merge(base, user)
    assert merged["network"] == {"widths": [2, 3, 2], "hidden": "sigmoid"}
    assert merged["symbols"] == {"y": "target", "t": "target"}
    assert merged["tex"] == {"\\hat{y}": "yhat"} and merged["claim"] == [{"id": "A"}]
    assert "network" not in merge(base, {"model": {}}) and base["network"]["widths"] == [3, 4, 2]


def test_entry_origins_are_the_lines_of_headers_and_keys():
    text = ("title = 'x'\n[network]  # mine\nwidths = [2, 2]\n\n[symbols]\n'\\hat{y}' = 'target'\n"
            "notes = '''\nfake = 1\n'''\n[[claim]]\nid = 'A'\n")
    origins = entry_origins(text, "m.toml")
    assert origins[(None, "title")] == "m.toml:1" and origins[("network", None)] == "m.toml:2"
    assert origins[("network", "widths")] == "m.toml:3" and origins[("symbols", "\\hat{y}")] == "m.toml:6"
    assert ("symbols", "fake") not in origins and origins[("claim", 1)] == "m.toml:10"


def test_symbols_file_merges_key_by_key_and_its_errors_name_its_lines(post, tmp_path, capsys):
    mine = tmp_path / "mine.toml"
    mine.write_text('[network]\nwidths = [2, 3, 2]\n\n[symbols]\ny = "target"\nq = "nonsense"\n', encoding="utf-8")
    _, report, _ = _verify_json(post, "--symbols", mine, capsys=capsys)
    assert f"{mine}:6: [symbols] q: unknown quantity 'nonsense'" in " ".join(report["errors"])
    (file,) = report["files"]
    # The user's widths, the draft's other [network] keys (hidden, output, loss), the draft's claims.
    assert "2-3-2 sigmoid/sigmoid, half_sse" in file["claims"][0]["instances"][0]
    assert [c["id"] for c in file["claims"]] == ["L3-1", "L3-2", "L3-3", "L6-4", "L6-5", "L10-6"]
    assert file["extraction"]["overridden"] == ["[network] widths"]  # y = "target" was the draft's too
    assert file["extraction"]["added"] == ["[symbols] q"]
    assert file["extraction"]["symbols"] == str(mine)


def test_a_broken_network_in_the_symbols_file_is_one_line_naming_it(post, tmp_path, capsys):
    mine = tmp_path / "mine.toml"
    mine.write_text('title = "x"\n[network]\nwidths = [0, 2]\n', encoding="utf-8")
    assert main(["verify", str(post), "--symbols", str(mine)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"symbackprop: {mine}:2: [network]: ") and "\n" not in err


def test_a_symbols_file_that_is_not_toml_is_one_line(post, tmp_path, capsys):
    mine = tmp_path / "mine.toml"
    mine.write_text("[network\n", encoding="utf-8")
    assert main(["verify", str(post), "--symbols", str(mine)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"symbackprop: {mine}:1:9: malformed TOML: ") and "\n" not in err
    assert main(["verify", str(post), "--symbols", str(tmp_path / "none.toml")]) == 2
    assert "none.toml: no such file" in capsys.readouterr().err


def test_claims_in_the_symbols_file_are_not_used_and_the_user_is_told(post, tmp_path, capsys):
    mine = tmp_path / "mine.toml"
    mine.write_text('[symbols]\ny = "target"\n[[claim]]\nid = "X"\nlhs = "1"\nrhs = "2"\n', encoding="utf-8")
    _, report, err = _verify_json(post, "--symbols", mine, capsys=capsys)
    assert f"{mine}: its [[claim]] tables are not used" in err
    assert "X" not in [c["id"] for c in report["files"][0]["claims"]]


# ------------------------------------------------------------------ 3. the JSON carries the guesses


def test_json_carries_the_guesses_and_the_unreadable_formulas_with_their_positions(post, capsys):
    _, report, _ = _verify_json(post, capsys=capsys)
    extraction = report["files"][0]["extraction"]
    assert extraction["document"] == str(post) and extraction["symbols"] is None
    assert "loss C = half_sse (line 3)" in extraction["guesses"]
    assert any(g.startswith("widths [3, 4, 2]") for g in extraction["guesses"])
    assert extraction["unreadable"] == [{"claim": "L10-6", "line": 10, "column": 1,
                                         "message": "unknown macro \\unknownmacro at column 35"}]


def test_a_derivation_file_has_no_extraction_in_its_report(tmp_path, capsys):
    _, report, _ = _verify_json(ROOT / "derivations" / "002_backprop_in_neural_networks.toml", capsys=capsys)
    assert "extraction" not in report["files"][0]


def test_the_report_of_a_document_matches_the_schema(post, tmp_path, capsys):
    jsonschema = require("jsonschema")
    schema = json.loads((ROOT / "docs" / "report.schema.json").read_text(encoding="utf-8"))
    _, report, _ = _verify_json(post, capsys=capsys)
    jsonschema.validate(report, schema)
    extraction = schema["$defs"]["file"]["properties"]["extraction"]
    assert set(extraction["required"]) == set(report["files"][0]["extraction"])


def test_the_tex_table_of_the_symbols_file_merges_the_same_way(tmp_path, capsys):
    doc = tmp_path / "post.md"
    doc.write_text("Loss $C = \\frac12 \\|a^2 - y\\|^2$, and\n\n"
                   "$$\\frac{\\partial \\mathcal{C}}{\\partial b^2} = \\delta^2, \\qquad "
                   "\\delta^2 \\equiv (a^2 - y) \\odot \\sigma'(z^2)$$\n", encoding="utf-8")
    mine = tmp_path / "mine.toml"
    mine.write_text('[tex]\n"\\\\mathcal{C}" = "C"\n"\\\\hat{y}" = "_bad"\n', encoding="utf-8")
    _, report, _ = _verify_json(doc, "--symbols", mine, capsys=capsys)
    assert report["errors"] == [(f"{mine}:3: [tex] '\\\\hat{{y}}': must name a claim-language name (letters, "
                                 "digits and _), not '_bad'")]
    claims = {c["lhs"]: c["verdict"] for c in report["files"][0]["claims"]}  # with the loss and δ² as ∂C/∂z²
    assert claims["grad(C, b[2])"] == "proved" and set(claims.values()) == {"proved"}


def test_seed_002_with_its_symbols_file(capsys):
    (seed,) = (ROOT / "tests" / "data" / "seeds").glob("002_*.txt")
    code, report, _ = _verify_json(seed, "--symbols", seed.with_name("002.symbols.toml"), capsys=capsys)
    (file,) = report["files"]
    assert file["path"] == str(seed) and code == 1
    assert any("delta[3] is not defined" in c["message"] for c in file["claims"])


# ------------------------------------------------------------------ 4. a lone $ in prose



@pytest.mark.parametrize("prose", ["It costs $5 or $10.\n", "It costs $5.\n", "Pay US$ 3 today.\n",
                                   "Escaped \\$x^2 here.\n", "Code `echo $HOME_{x}` here.\n",
                                   "From $5 to $a^2$ and on\n"])
def test_a_dollar_in_markdown_prose_is_not_math_and_not_an_error(prose):
    spans = find_math("post.md", prose)
    assert [s.tex for s in spans] == (["a^2"] if "a^2" in prose else [])


def test_math_after_a_price_keeps_its_position():
    (span,) = find_math("post.md", "# T\n\nPay $5, then $a^l = \\sigma(z^l)$ is computed.\n")
    assert (span.tex, span.line, span.column, span.start) == ("a^l = \\sigma(z^l)", 3, 14, (3, 15))


@pytest.mark.parametrize("source, where", [
    ("Bad $a^l = \\sigma(z^l) here\n", "post.md:1:5: $ is never closed by $"),
    ("x\n\n$$\na = b\n", "post.md:3:1: $$ is never closed by $$"),
    ("One $5 bill, and $W^{l} a^{l-1}\n", "post.md:1:18: $ is never closed by $"),
])
def test_an_unclosed_math_delimiter_in_markdown_is_one_line_with_its_position(source, where):
    with pytest.raises(ExtractError) as caught:
        find_math("post.md", source)
    assert str(caught.value) == where


def test_plain_text_takes_a_price_as_prose_and_latex_does_not():
    assert find_math("notes.txt", "It costs $5.\n") == []
    with pytest.raises(ExtractError, match=r"^notes\.txt:1:5: \$ is never closed by \$$"):
        find_math("notes.txt", "Bad $a^l = \\sigma(z^l)\n")
    with pytest.raises(ExtractError, match=r"^notes\.tex:1:10: \$ is never closed"):
        find_math("notes.tex", "It costs $5.\n")  # LaTeX writes a price \$5


def test_verify_a_markdown_post_with_prices(tmp_path, capsys):
    doc = tmp_path / "post.md"
    doc.write_text("A GPU hour costs $5 or $10.\n\n" + POST.split("\n", 1)[1], encoding="utf-8")
    _, report, _ = _verify_json(doc, capsys=capsys)
    assert [c["id"] for c in report["files"][0]["claims"]] == ["L4-1", "L4-2", "L4-3", "L7-4", "L7-5", "L11-6"]


# ------------------------------------------------------------------ 5. each row of an align, its own line

ALIGNED = r"""# Backward

$$
\begin{aligned}
\frac{\partial C}{\partial W^2} &= \delta^2 (a^1)^T \\
\frac{\partial C}{\partial b^2} &= \delta^2 \\
  &= (a^2 - y) \odot \sigma'(z^2)
\end{aligned}
$$

\begin{align}
\frac{\partial C}{\partial b^1} &= \delta^1, \qquad \frac{\partial C}{\partial W^1} = \delta^1 (a^0)^T
\end{align}
"""


@pytest.mark.parametrize("name", ["post.md", "notes.tex", "notes.txt"])
def test_each_align_row_is_drafted_with_its_own_text_and_line(name):
    data = draft(name, ALIGNED).data
    rows = [(c["id"], c["text"], c["note"]) for c in data["claim"]]
    assert rows == [
        ("L5-1", "\\frac{\\partial C}{\\partial W^2} = \\delta^2 (a^1)^T", "line 5"),
        ("L6-2", "\\frac{\\partial C}{\\partial b^2} = \\delta^2 \\\\ = (a^2 - y) \\odot \\sigma'(z^2)", "line 6"),
        ("L12-3", "\\frac{\\partial C}{\\partial b^1} = \\delta^1", "line 12"),
        ("L12-4", "\\frac{\\partial C}{\\partial W^1} = \\delta^1 (a^0)^T", "line 12"),
    ]


def test_a_row_the_reader_stops_on_is_named_at_its_own_line(tmp_path, capsys):
    doc = tmp_path / "notes.tex"
    doc.write_text("\\begin{align}\n\\frac{\\partial C}{\\partial b^2} &= \\delta^2 \\\\\n"
                   "  \\frac{\\partial C}{\\partial W^2} &= \\foo{x}\n\\end{align}\n", encoding="utf-8")
    result = draft(doc)
    (problem,) = result.unreadable
    assert problem.startswith(f"{doc}:3:3: the formula starting here cannot be read: unknown macro \\foo")
    _, report, _ = _verify_json(doc, capsys=capsys)
    assert report["files"][0]["extraction"]["unreadable"][0]["line"] == 3
    assert report["errors"][0].startswith(f"{doc}:3: claim L3-2: tex: unknown macro \\foo")


def test_a_dollar_pair_with_spaces_inside_is_math_when_it_reads_as_tex():
    assert [s.tex for s in find_math("post.md", "Then $ a^l = \\sigma(z^l) $ and $ 5 or $ 6.\n")] == \
        ["a^l = \\sigma(z^l)"]
    assert [s.tex for s in find_math("post.md", "So $ z = Wx + b $, for $ 5 = $ 5.\n")] == ["z = Wx + b"]


# ------------------------------------------------------------------ 6. shape annotations kept and checked

SHAPED = r"""Sizes: \( [W^1]_{4 \times 3} \), \( [W^2]_{2 \times 4} \).
Forward: \( z^l = W^l a^{l-1} + b^l \), \( a^l = \sigma(z^l) \), loss \( C = \frac12 \|a^2 - t\|^2 \).
\[ \delta^2 \equiv (a^2 - t) \circ \sigma'(z^2) \]
\[ \left[ \frac{\partial C}{\partial W^2} \right]_{2\times 4} = \left[ \delta^2 \right]_{2\times 1} \left[ a^1 \right]_{4\times 1}^\top \]
\[ \frac{\partial C}{\partial W^2} = \left[ \delta^2 (a^1)^\top \right]_{4\times 2} \]
\[ \frac{\partial C}{\partial b^2} = \left[ \delta^2 \right]_{7\times 1} \]
"""


def _shaped_claims():
    data = draft("notes.tex", SHAPED).data
    return data, {c["id"]: c for c in data["claim"]}


def test_shape_annotations_stay_in_the_claim_with_the_documents_sizes_as_widths():
    data, claims = _shaped_claims()
    assert data["network"]["widths"] == [3, 4, 2] and data["symbols"]["n"] == "width"
    claim = claims["L4-5"]
    assert claim["tex"] == (r"\left[ \frac{\partial C}{\partial W^2} \right]_{n_{2}\times n_{1}} = "
                            r"\left[ \delta^2 \right]_{n_{2}\times 1} \left[ a^1 \right]_{n_{1}\times 1}^\top")
    assert "[a^1] 4×1 as n_{1}×1" in claim["note"] and "instances" not in claim
    assert claims["L5-6"]["tex"].endswith(r"\right]_{n_{1}\times n_{2}}")  # by value: the one layer 4 wide


def test_a_size_that_is_no_layers_width_stays_printed_and_is_checked_on_the_documents_network():
    _, claims = _shaped_claims()
    claim = claims["L6-7"]
    assert claim["tex"].endswith(r"\right]_{7\times 1}") and claim["instances"] == "document"
    assert "shape sizes kept as printed ([\\delta^2] 7×1)" in claim["note"]


def test_the_shapes_are_checked_on_every_network(tmp_path, capsys):
    doc = tmp_path / "notes.tex"
    doc.write_text(SHAPED, encoding="utf-8")
    _, report, _ = _verify_json(doc, capsys=capsys)
    claims = {c["id"]: c for c in report["files"][0]["claims"]}
    assert claims["L4-5"]["verdict"] == "proved" and len(claims["L4-5"]["instances"]) == 2
    assert claims["L5-6"]["verdict"] == "ill-formed"   # the document's transposed annotation
    assert "the right side is 2×4, but its shape annotation says n[1]×n[2] = 4×2" in claims["L5-6"]["message"]
    assert claims["L6-7"]["verdict"] == "ill-formed" and "says 7×1" in claims["L6-7"]["message"]
    assert claims["L6-7"]["instances"] == [claims["L6-7"]["instances"][0]]  # the document's network only


def test_the_width_symbol_is_a_letter_the_document_does_not_use():
    data = draft("notes.tex", SHAPED + "\\( n = 3 \\)\n").data
    assert data["symbols"]["d"] == "width" and "n" not in data["symbols"]
    assert "d_{2}" in {c["id"]: c for c in data["claim"]}["L4-5"]["tex"]


# ------------------------------------------------------------------ 7. help and README


README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README.split("### Reading the document itself", 1)[1].split("\n### ", 1)[0]


def test_the_readme_commands_of_extract_run_as_written(tmp_path, monkeypatch, capsys):
    (commands,) = re.findall(r"```\n(symbackprop .*?)```", SECTION, flags=re.DOTALL)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").symlink_to(ROOT / "docs")
    codes = []
    for command in commands.strip().splitlines():
        words = shlex.split(command)
        assert words[0] == "symbackprop"
        codes.append(main(words[1:]))
    out = capsys.readouterr().out
    assert codes == [0, 1, 1] and (tmp_path / "draft.toml").is_file()
    assert "y_hat is not defined" in out and "docs/examples/post.symbols.toml: adds [tex] \\hat{y}" in out
    assert re.search(r"L9-\d+\s+\\frac\{\\partial J\}.*refuted", out)


def test_the_readme_shows_the_shipped_symbols_file():
    (shown,) = re.findall(r"```toml\n(.*?)```", SECTION, flags=re.DOTALL)
    shipped = (ROOT / "docs" / "examples" / "post.symbols.toml").read_text(encoding="utf-8")
    assert shown.strip() in shipped


@pytest.mark.parametrize("command, phrases", [
    ("extract", ["# guess:", "widths from shape annotations", "--symbols mine.toml", "key by key", "$5"]),
    ("verify", ["A document (.md", "formula's line", "--symbols FILE.toml overrides them", "extraction"]),
])
def test_the_help_says_what_the_command_does_its_guesses_and_how_to_override_them(command, phrases, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in phrases:
        assert " ".join(phrase.split()) in text, phrase


def test_each_link_of_a_chain_over_rows_has_its_own_rows_text_and_line(tmp_path, capsys):
    doc = tmp_path / "post.md"
    doc.write_text(ALIGNED, encoding="utf-8")
    _, report, _ = _verify_json(doc, capsys=capsys)
    claims = [(c["id"], c["text"], c["line"], c["notes"] is not None) for c in report["files"][0]["claims"]]
    assert claims[1:3] == [("L6-2a", "\\frac{\\partial C}{\\partial b^2} = \\delta^2", 6, True),
                           ("L6-2b", "= (a^2 - y) \\odot \\sigma'(z^2)", 7, True)]
    assert [c["line"] for c in report["files"][0]["claims"]] == [5, 6, 7, 12, 12]
    derivation = load_document(doc)
    assert derivation.claims[2].note.startswith("line 7")


def test_a_derivation_files_claims_have_no_line(capsys):
    _, report, _ = _verify_json(ROOT / "derivations" / "002_backprop_in_neural_networks.toml", capsys=capsys)
    assert {c["line"] for c in report["files"][0]["claims"]} == {None}


def test_a_document_that_cannot_be_read_costs_the_other_files_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.md"
    bad.write_text("Then $a^l = \\sigma(z^l) and so on.\n", encoding="utf-8")
    empty = tmp_path / "empty.md"
    empty.write_text("# No math\n", encoding="utf-8")
    code, report, err = _verify_json(bad, empty, ROOT / "derivations" / "002_backprop_in_neural_networks.toml",
                                     capsys=capsys)
    assert code == 2 and len(report["files"]) == 1
    assert report["errors"][:2] == [f"{bad}:1:6: $ is never closed by $",
                                    f"{empty}: nothing to verify: no formula about a gradient, a delta, a "
                                    "derivative or the forward pass found"]


def test_an_unknown_key_in_the_symbols_file_is_named_by_its_line(post, tmp_path, capsys):
    mine = tmp_path / "mine.toml"
    mine.write_text('[network]\nwidths = [3, 4, 2]\ncolour = "red"\n', encoding="utf-8")
    _, report, _ = _verify_json(post, "--symbols", mine, capsys=capsys)
    assert any(e.startswith(f"{mine}:3: [network]: unknown key 'colour'") for e in report["errors"])


def test_the_text_report_names_a_claims_line_in_the_document(post, capsys):
    main(["verify", str(post)])
    assert f"L10-6 ({post}:10):" in capsys.readouterr().out


def test_a_number_kept_inside_a_side_does_not_narrow_the_check():
    text = SHAPED + "\\[ \\frac{\\partial C}{\\partial W^2} = \\left[ \\delta^2 \\right]_{7\\times 1} (a^1)^\\top \\]\n"
    claim = {c["id"]: c for c in draft("notes.tex", text).data["claim"]}["L7-8"]
    assert "instances" not in claim and "[\\delta^2] 7×1" in claim["note"]
    assert "document's network only" not in claim["note"]
