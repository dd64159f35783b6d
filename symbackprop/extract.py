"""Math spans of a document: where each TeX formula is, and what it is about.

First slice of reading a post's own LaTeX: find every formula of a Markdown, HTML, TeX or
plain-text document with its 1-based line and column, and classify it (gradient, delta,
derivative, forward definition, loss, other).  Translating a formula into the claim language is
the TeX translator's job; this module only locates and sorts.
"""

from __future__ import annotations

import html.parser
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MathSpan", "ExtractError", "find_math", "classify"]


class ExtractError(ValueError):
    """A document whose math cannot be delimited; the message names file:line:column."""


@dataclass(frozen=True)
class MathSpan:
    tex: str
    line: int
    column: int
    display: bool
    kind: str


# (opening, closing, display); longest openings first so $$ wins over $.
_DELIMITERS = (
    ("\\begin{equation*}", "\\end{equation*}", True),
    ("\\begin{equation}", "\\end{equation}", True),
    ("\\begin{align*}", "\\end{align*}", True),
    ("\\begin{align}", "\\end{align}", True),
    ("$$", "$$", True),
    ("\\[", "\\]", True),
    ("\\(", "\\)", False),
    ("$", "$", False),
)


def classify(tex: str) -> str:
    """The kind of a formula, read from its left-hand side."""
    lhs = tex.split("=", 1)[0] if "=" in tex else ""
    if not lhs:
        return "other"
    if "\\partial" in lhs or "\\nabla" in lhs:
        return "gradient" if "W" in lhs or "b" in lhs or "\\theta" in lhs else "derivative"
    if "\\delta" in lhs:
        return "delta"
    head = lhs.strip().lstrip("\\").split("^")[0].split("_")[0].strip("{} ")
    if head in {"J", "C", "L", "E", "mathcal{L}", "mathcal{J}"}:
        return "loss"
    if head in {"z", "a", "h", "y", "hat y", "hat{y}"}:
        return "forward definition"
    return "other"


def _position(text: str, offset: int, base_line: int = 1, base_column: int = 1) -> tuple[int, int]:
    before = text[:offset]
    newlines = before.count("\n")
    if newlines:
        return base_line + newlines, offset - before.rfind("\n")
    return base_line, base_column + offset


def _scan(text: str, name: str, base_line: int = 1, base_column: int = 1) -> list[MathSpan]:
    spans: list[MathSpan] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and text.startswith("\\$", i):
            i += 2
            continue
        for opening, closing, display in _DELIMITERS:
            if text.startswith(opening, i):
                start = i + len(opening)
                end = text.find(closing, start)
                if end < 0:
                    line, column = _position(text, i, base_line, base_column)
                    raise ExtractError(f"{name}:{line}:{column}: {opening} is never closed by {closing}")
                tex = text[start:end].strip()
                line, column = _position(text, i, base_line, base_column)
                if tex:
                    spans.append(MathSpan(tex, line, column, display, classify(tex)))
                i = end + len(closing)
                break
        else:
            i += 1
    return spans


class _HtmlText(html.parser.HTMLParser):
    """Text runs of an HTML document with their positions (scripts and styles skipped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.runs: list[tuple[str, int, int]] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in {"script", "style"}:
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in {"script", "style"} and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            line, column = self.getpos()
            self.runs.append((data, line, column + 1))


def _html(text: str, name: str) -> list[MathSpan]:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    spans: list[MathSpan] = []
    for data, line, column in parser.runs:
        spans.extend(_scan(data, name, line, column))
    return spans


def _markdown(text: str, name: str) -> list[MathSpan]:
    from markdown_it import MarkdownIt
    from mdit_py_plugins.amsmath import amsmath_plugin
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark").use(dollarmath_plugin, double_inline=True).use(amsmath_plugin)
    lines = text.split("\n")
    spans: list[MathSpan] = []
    for token in md.parse(text):
        if token.map is None:
            continue
        first = token.map[0]
        if token.type in {"math_block", "amsmath", "math_block_label"}:
            column = lines[first].find(token.markup or "$$") + 1 if token.markup else 1
            tex = token.content.strip()
            spans.append(MathSpan(tex, first + 1, max(column, 1), True, classify(tex)))
        elif token.type == "inline":
            # Inline math: scan the block's own source lines so columns are the document's.
            block = "\n".join(lines[token.map[0] : token.map[1]])
            spans.extend(_scan(block, name, first + 1, 1))
    return spans


def find_math(path: str | Path, text: str | None = None) -> list[MathSpan]:
    """Every formula of the document at *path* (its text read unless given), in order."""
    path = Path(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ExtractError(f"{path}: cannot read: {error}") from None
    suffix = path.suffix.lower()
    if suffix in {".md", ".markdown"}:
        return _markdown(text, str(path))
    if suffix in {".html", ".htm"}:
        return _html(text, str(path))
    return _scan(text, str(path))
