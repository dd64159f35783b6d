"""Math spans found in each format and delimiter kind, with their lines and columns."""

import pytest

from symbackprop.extract import ExtractError, classify, find_math


@pytest.mark.parametrize(
    "source, tex, display",
    [
        ("x $a^l = \\sigma(z^l)$ y", "a^l = \\sigma(z^l)", False),
        ("x \\(z^l = W^l a^{l-1}\\) y", "z^l = W^l a^{l-1}", False),
        ("x $$J = \\frac12 y$$ y", "J = \\frac12 y", True),
        ("x \\[\\delta^L = a^L - y\\] y", "\\delta^L = a^L - y", True),
        ("\\begin{equation}a = b\\end{equation}", "a = b", True),
        ("\\begin{align}a &= b\\end{align}", "a &= b", True),
    ],
)
def test_each_delimiter(source, tex, display):
    (span,) = find_math("doc.tex", source)
    assert (span.tex, span.display) == (tex, display)


def test_lines_and_columns_in_plain_text():
    spans = find_math("doc.txt", "first line\nsee $a$ and\n  \\(b\\)")
    assert [(s.tex, s.line, s.column) for s in spans] == [("a", 2, 5), ("b", 3, 3)]


def test_markdown_inline_and_block():
    text = "# T\n\nThe $z^l$ here.\n\n$$\n\\delta^L = a^L - y\n$$\n"
    spans = find_math("post.md", text)
    assert [(s.tex, s.line, s.display) for s in spans] == [("z^l", 3, False), ("\\delta^L = a^L - y", 5, True)]


def test_html_skips_scripts_and_keeps_positions():
    text = "<p>\n<script>var x = '$no$';</script> set \\( a^0 = x \\)</p>"
    (span,) = find_math("post.html", text)
    assert (span.tex, span.line) == ("a^0 = x", 2)


@pytest.mark.parametrize(
    "tex, kind",
    [
        ("\\frac{\\partial C}{\\partial W^2} = \\delta^2 [a^1]^T", "gradient"),
        ("\\delta^3 = (a^3 - y) \\odot \\sigma'(z^3)", "delta"),
        ("\\frac{\\partial a}{\\partial z} = \\sigma'(z)", "derivative"),
        ("z^l = W^l a^{l-1} + b^l", "forward definition"),
        ("J = \\frac12\\|a^L - y\\|^2", "loss"),
        ("x^2", "other"),
    ],
)
def test_classify(tex, kind):
    assert classify(tex) == kind


def test_unclosed_delimiter_is_one_line_with_position():
    with pytest.raises(ExtractError) as caught:
        find_math("doc.txt", "ok\n  \\[ a = b")
    assert str(caught.value).startswith("doc.txt:2:3:") and "\n" not in str(caught.value)


# ------------------------------------------------------------------------------ the draft

import tomllib
from pathlib import Path

from symbackprop.extract import draft

SEEDS = Path(__file__).parent / "data" / "seeds"
POST = """# A post

Forward: $z^l = W^l a^{l-1} + b^l$ and $a^l = \\sigma(z^l)$, loss $C = \\frac{1}{2} \\|a^2 - y\\|^2$.

$$
\\frac{\\partial C}{\\partial b^2} = \\delta^2, \\qquad \\delta^2 \\equiv (a^2 - y) \\odot \\sigma'(z^2)
$$
"""


def test_draft_reads_network_symbols_and_claims_from_a_post():
    result = draft("post.md", POST)
    data = tomllib.loads(result.toml)
    assert data["network"]["widths"] == [3, 4, 2] and data["network"]["loss"] == "half_sse"
    assert data["symbols"]["W"] == "weight" and data["symbols"]["y"] == "target"
    assert data["symbols"]["C"] == "loss" and data["symbols"]["sigma"] == "activation_function"
    assert data["define"] == {"delta[2]": "(a[2] - y) ∘ sigma'(z[2])"}
    texts = [c["tex"] for c in data["claim"]]
    assert texts == ["z^l = W^l a^{l-1} + b^l", "a^l = \\sigma(z^l)", "C = \\frac{1}{2} \\|a^2 - y\\|^2",
                     "\\frac{\\partial C}{\\partial b^2} = \\delta^2",
                     "\\frac{\\partial C}{\\partial z^2} = (a^2 - y) \\odot \\sigma'(z^2)"]
    assert [c["note"] for c in data["claim"]][:4] == ["line 3", "line 3", "line 3", "line 6"]
    assert "# guess: the document gives no widths" in result.toml
    assert any("guessed small" in g for g in result.guesses)


def test_draft_of_seed_002_takes_the_widths_from_its_shapes_and_keeps_the_erratum():
    (seed,) = SEEDS.glob("002_*.txt")
    result = draft(seed)
    data = tomllib.loads(result.toml)
    assert data["network"]["widths"] == [3, 4, 2]
    assert set(data["define"]) == {"delta[2]", "delta[1]"}
    assert any("\\delta^3" in c["tex"] for c in data["claim"])
    shaped = [c for c in data["claim"] if "line 69" in c["note"]]
    assert shaped and "shape annotations checked" in shaped[0]["note"] and "_{n_{2}\\times n_{1}}" in shaped[0]["tex"]


def test_side_by_side_formulas_are_split():
    result = draft("doc.tex", "\\[ \\frac{\\partial C}{\\partial W^2} = \\delta^2, \\qquad "
                              "\\frac{\\partial C}{\\partial b^2} = \\delta^2 \\]")
    data = tomllib.loads(result.toml)
    assert [c["tex"] for c in data["claim"]] == ["\\frac{\\partial C}{\\partial W^2} = \\delta^2",
                                                  "\\frac{\\partial C}{\\partial b^2} = \\delta^2"]


def test_unreadable_document_is_one_line_error(tmp_path):
    with pytest.raises(ExtractError, match=r"missing\.md: cannot read: No such file"):
        draft(tmp_path / "missing.md")


def test_align_rows_are_formulas_and_a_row_starting_with_equals_continues_the_chain():
    text = ("$$\\begin{align} z^{(2)} &= W^{(1)} a^{(1)} + b^{(1)} \\\\ a^{(2)} &= \\sigma(z^{(2)}) \\\\ "
            "&= \\sigma(W^{(1)} a^{(1)} + b^{(1)}) \\end{align}$$ and $x = a^{(1)}$")
    data = tomllib.loads(draft("notes.txt", text).toml)
    assert [c["tex"] for c in data["claim"]] == [
        "z^{(2)} = W^{(1)} a^{(1)} + b^{(1)}",
        "a^{(2)} = \\sigma(z^{(2)}) \\\\ = \\sigma(W^{(1)} a^{(1)} + b^{(1)})", "x = a^{(1)}"]  # the row break kept
    assert data["symbols"]["x"] == "input" and data["symbols"]["a"] == {"quantity": "activation", "shift": 1}


def test_a_matrix_keeps_its_rows():
    text = "\\[ \\frac{\\partial C}{\\partial b^2} = \\begin{bmatrix} 1 \\\\ 2 \\end{bmatrix} \\]"
    (claim,) = tomllib.loads(draft("m.tex", text).toml)["claim"]
    assert "\\begin{bmatrix} 1 \\\\ 2 \\end{bmatrix}" in claim["tex"]


def test_a_formula_the_reader_stops_on_is_named_with_line_and_column():
    text = "intro\n  \\[ \\frac{\\partial C}{\\partial W^2} = \\unknownmacro{x} \\]\n"
    result = draft("doc.tex", text)
    (problem,) = result.unreadable
    assert problem.startswith("doc.tex:2:6: the formula starting here cannot be read: ") and "column" in problem
    assert "\n" not in problem and result.claims == 1


def test_a_loss_written_with_its_arguments():
    text = "$J(W,x,y) = \\frac{1}{2} \\| a^2 - y \\|^2$ and $\\frac{\\partial J(W,x,y)}{\\partial b^2} = \\delta^2$"
    assert classify("J(W,x,y) = 1") == "loss"
    result = draft("doc.txt", text)
    data = tomllib.loads(result.toml)
    assert data["symbols"]["J"] == "loss"
    loss, claim = data["claim"]
    assert loss["tex"] == "J = \\frac{1}{2} \\| a^2 - y \\|^2" and "arguments dropped" in loss["note"]
    assert claim["tex"] == "\\frac{\\partial J}{\\partial b^2} = \\delta^2" and "J(W,x,y)" in claim["text"]
    assert "arguments dropped" in claim["note"]


def test_softmax_and_cross_entropy_are_guessed_from_their_formulas():
    text = ("$a^2 = \\frac{e^{z^2}}{\\sum_j e^{z^2_j}}$, $L = 3$ and $L = -\\sum_i y_i \\log a^2_i$, "
            "$\\frac{\\partial L}{\\partial z^2} = a^2 - y$")
    data = tomllib.loads(draft("doc.txt", text).toml)
    assert (data["network"]["output"], data["network"]["loss"]) == ("softmax", "cross_entropy")
    assert data["symbols"]["y"] == "target"
