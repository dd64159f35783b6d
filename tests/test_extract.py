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
