"""Math spans of a document: where each TeX formula is, and what it is about.

First slice of reading a post's own LaTeX: find every formula of a Markdown, HTML, TeX or
plain-text document with its 1-based line and column, and classify it (gradient, delta,
derivative, forward definition, loss, other).  Translating a formula into the claim language is
the TeX translator's job; this module only locates and sorts.
"""

from __future__ import annotations

import html.parser
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MathSpan", "ExtractError", "Draft", "find_math", "classify", "draft", "load_document"]


class ExtractError(ValueError):
    """A document whose math cannot be delimited; the message names file:line:column."""


@dataclass(frozen=True)
class MathSpan:
    tex: str
    line: int  # where the formula's opening delimiter is (1-based)
    column: int
    display: bool
    kind: str
    start: tuple[int, int] | None = None  # (line, column) of the formula's first character, when known


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


_DECORATIONS = re.compile(r"\\(?:underline|mathbf|boldsymbol|bm|vec|mathrm|mathit|widetilde|tilde|therefore|because"
                          r"|underset\s*\{[^{}]*\})\s*|\\text\s*\{[^{}]*\}\s*")


def _head(side: str) -> str:
    """The name a side of a formula starts with, its decorations (\\underline, \\mathbf, …) removed:
    ``\\underline{a}_i`` → a, ``\\hat{y}_\\ell`` → haty."""
    head = _DECORATIONS.sub("", side.strip()).lstrip("\\")
    return re.split(r"[\^_(]", head.replace("{", "").replace("}", "").lstrip("\\"))[0].strip()


def classify(tex: str) -> str:
    """The kind of a formula, read from its left-hand side (or, for a chain ``f(x) = h_L(x) = …``,
    the side before any later ``=``)."""
    sides = tex.split("=")
    lhs = sides[0] if len(sides) > 1 else ""
    if not lhs:
        return "other"
    if "\\partial" in lhs or "\\nabla" in lhs:
        return "gradient" if "W" in lhs or "b" in lhs or "\\theta" in lhs else "derivative"
    if "\\delta" in lhs:
        return "delta"
    lhs = re.sub(r"\{\\bf\s+([A-Za-z])\s*\}|\\(?:mathbf|boldsymbol|bm)\s*\{\s*([A-Za-z])\s*\}",
                 lambda m: m.group(1) or m.group(2), lhs)  # {\bf a}^L: the name a
    head = _head(lhs)
    if head in {"J", "C", "L", "E", "F", "mathcalL", "mathcalJ"}:
        number = re.fullmatch(r"\s*-?\d+(\.\d+)?\s*[.,;]?\s*", sides[1]) is not None
        bare = re.fullmatch(r"\s*[A-Za-z]\s*", lhs) is not None
        return "other" if number and bare and len(sides) == 2 else "loss"  # L = 3: a size, not the loss
    if re.fullmatch(r"\s*\\?[A-Za-z]+\s*(_\{?\w*\}?)?\s*'\s*\(.*", lhs):
        return "derivative"  # g'(z) = …, \sigma'(z) = …
    forward = {"z", "a", "h", "x", "y", "haty", "hat y", "Z", "A", "H", "Y", "hatY"}  # and a batch's matrices
    if head in forward or any(_head(side) in forward for side in sides[1:-1]):
        return "forward definition"
    return "other"


def _position(text: str, offset: int, base_line: int = 1, base_column: int = 1) -> tuple[int, int]:
    before = text[:offset]
    newlines = before.count("\n")
    if newlines:
        return base_line + newlines, offset - before.rfind("\n")
    return base_line, base_column + offset


def _scan(text: str, name: str, base_line: int = 1, base_column: int = 1, dollars: str = "math") -> list[MathSpan]:
    """The formulas of ``text`` between TeX delimiters.  ``dollars`` says what a ``$`` is: ``"math"``
    a delimiter that must be closed (LaTeX, where a price is written ``\\$``); ``"lenient"`` a
    delimiter, but a single ``$`` never closed is prose (``$5``) unless what follows reads as TeX;
    ``"prose"`` not a delimiter (Markdown, whose parser has taken the math): only a ``$`` that
    opens TeX and is never closed is reported."""
    spans: list[MathSpan] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and text.startswith("\\$", i):
            i += 2
            continue
        for opening, closing, display in _DELIMITERS:
            if not text.startswith(opening, i):
                continue
            if opening.startswith("$") and dollars != "math":
                end = text.find(closing, i + len(opening))
                if end < 0 and (opening == "$$" or _opens_tex(text, i)):
                    line, column = _position(text, i, base_line, base_column)
                    raise ExtractError(f"{name}:{line}:{column}: {opening} is never closed by {closing}")
                if end < 0:
                    i += len(opening)  # prose: a price
                    break
                if dollars == "prose" and not _opens_tex(text[:end], i, closed=True):
                    i += len(opening)  # prose to the Markdown parser and to us ($5 … $10); the next $ is its own
                    break
            start = i + len(opening)
            end = text.find(closing, start)
            if end < 0:
                line, column = _position(text, i, base_line, base_column)
                raise ExtractError(f"{name}:{line}:{column}: {opening} is never closed by {closing}")
            raw = text[start:end]
            tex = raw.strip()
            line, column = _position(text, i, base_line, base_column)
            if tex:
                first = _position(text, start + len(raw) - len(raw.lstrip()), base_line, base_column)
                spans.append(MathSpan(tex, line, column, display, classify(tex), first))
            i = end + len(closing)
            break
        else:
            i += 1
    return spans


def _opens_tex(text: str, i: int, closed: bool = False) -> bool:
    """Whether the ``$`` at ``i`` opens a formula rather than being prose (``$5``, ``US$ 3``): what
    follows it in ``text``, to the paragraph's end, starts with no digit and has a TeX command, a
    script or a brace — or, between two ``$`` (``closed``, ``$ z = Wx $``), an ``=``."""
    after = re.split(r"\n[ \t]*\n", text[i + 1:], maxsplit=1)[0]
    if not after.strip() or after.lstrip()[0].isdigit():
        return False
    return re.search(r"\\[A-Za-z]+|[\^_{}]" + ("|=" if closed else ""), after) is not None


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
        spans.extend(_scan(data, name, line, column, dollars="lenient"))
    return spans


def _markdown(text: str, name: str) -> list[MathSpan]:
    from markdown_it import MarkdownIt
    from mdit_py_plugins.amsmath import amsmath_plugin
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    # Pandoc's rule: "$5 or $10" is prose (no digit after the closing $, no space inside the $s);
    # a pair it leaves for a space inside, $ x^2 $, is still math when it reads as TeX (_scan).
    md = MarkdownIt("commonmark").use(dollarmath_plugin, double_inline=True, allow_digits=False,
                                      allow_space=False).use(amsmath_plugin)
    lines = text.split("\n")
    spans: list[MathSpan] = []
    for token in md.parse(text):
        if token.map is None:
            continue
        first = token.map[0]
        if token.type in {"math_block", "amsmath", "math_block_label"}:
            column = lines[first].find(token.markup or "$$") + 1 if token.markup else 1
            tex = token.content.strip()
            block = "\n".join(lines[first: token.map[1]])
            at = block.find(tex[:40])
            start = _position(block, at, first + 1, 1) if tex and at >= 0 else None
            spans.append(MathSpan(tex, first + 1, max(column, 1), True, classify(tex), start))
        elif token.type == "inline":
            spans.extend(_inline_math(token, "\n".join(lines[first: token.map[1]]), name, first + 1))
    return spans


def _inline_math(token, block: str, name: str, base_line: int) -> list[MathSpan]:
    """The math of one inline run: ``$…$`` and ``$$…$$`` as the Markdown parser reads them, placed in
    the block's own source; ``\\(…\\)`` and ``\\[…\\]`` (escapes to Markdown) scanned in the rest."""
    spans, cursor, masked = [], 0, list(block)
    for child in token.children or ():
        if child.type in {"math_inline", "math_inline_double", "code_inline"}:
            written = child.markup + child.content + child.markup
            at = block.find(written, cursor)
            if at < 0:  # a code span whose content the parser normalised: from its opening mark
                at = block.find(child.markup, cursor)
                close = block.find(child.markup, at + len(child.markup)) if at >= 0 else -1
                if close < 0:
                    continue
                written = block[at: close + len(child.markup)]
            masked[at: at + len(written)] = [c if c == "\n" else " " for c in written]
            cursor = at + len(written)
            if child.type == "code_inline" or not child.content.strip():
                continue
            tex = child.content.strip()
            body = at + len(child.markup) + len(child.content) - len(child.content.lstrip())
            spans.append(MathSpan(tex, *_position(block, at, base_line, 1), child.type == "math_inline_double",
                                  classify(tex), _position(block, body, base_line, 1)))
    spans += _scan("".join(masked), name, base_line, 1, dollars="prose")
    return sorted(spans, key=lambda s: (s.line, s.column))


def find_math(path: str | Path, text: str | None = None) -> list[MathSpan]:
    """Every formula of the document at *path* (its text read unless given), in order."""
    path = Path(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ExtractError(f"{path}: cannot read: {error.strerror}") from None
        except UnicodeDecodeError as error:
            raise ExtractError(f"{path}: cannot read: not UTF-8 (byte {error.start})") from None
    suffix = path.suffix.lower()
    if suffix in {".md", ".markdown"}:
        return _markdown(text, str(path))
    if suffix in {".html", ".htm"}:
        return _html(text, str(path))
    return _scan(text, str(path), dollars="math" if suffix == ".tex" else "lenient")


# ------------------------------------------------------------------------------ the draft

_SEPARATORS = ("\\qquad", "\\quad")
_ACTIVATIONS = {"sigma": "sigmoid", "tanh": "tanh", "operatorname{ReLU}": "relu", "phi": "sigmoid"}
_QUANTIFIER = re.compile(r"\s*\\forall\s*[A-Za-z]\s*=[^=]*")  # an inline ∀ k = 1(1)L standing alone
_CLAIMED = {"gradient", "delta", "derivative", "forward definition", "loss"}


@dataclass
class Draft:
    """A derivation file proposed from a document: its TOML text and the guesses it made."""

    toml: str
    guesses: list[str]
    claims: int
    unreadable: list[str]  # "file:line:column: …" of each drafted formula the LaTeX reader stops on
    positions: dict = field(default_factory=dict)  # claim id -> (line, column) of its formula in the document
    origins: dict = field(default_factory=dict)  # the loader's origins: each claim and definition's "DOC:line"
    rows: dict = field(default_factory=dict)  # claim id -> [(offset in its tex, text, line, column)] of a chain's rows

    @property
    def data(self) -> dict:
        """The draft as the loader reads it (the parsed ``toml``)."""
        import tomllib

        return tomllib.loads(self.toml)


def _unwrap(tex: str) -> str:
    """A display's formulas as one line: ``\\displaylines{…}`` opened, ``\\\\`` joined."""
    tex = tex.strip()
    if tex.startswith("\\displaylines{") and tex.endswith("}"):
        tex = tex[len("\\displaylines{"):-1]
    return " ".join(tex.replace("\\\\", " ").replace("&", " ").split())


def _depth0(tex: str) -> list[int]:
    depth, level = 0, []
    for ch in tex:
        depth += ch in "{([" and 1 or 0
        depth -= ch in "})]" and 1 or 0
        level.append(depth)
    return level


def _rows(tex: str) -> list[str]:
    """The rows of a display: ``align``/``aligned``/``\\displaylines`` opened, split at ``\\\\`` and
    ``\\cr`` (a row that starts with ``=`` stays a row: :func:`_split` joins it to the chain above)."""
    return [row for row, _ in _placed_rows(tex)]


def _placed_rows(tex: str) -> list[tuple[str, int]]:
    """:func:`_rows` with the offset in ``tex`` where each row starts (its first character)."""
    tex = tex.strip()
    wrapped = tex.startswith("\\displaylines{") and tex.endswith("}")
    if wrapped:  # blanked, not cut: the offsets stay the formula's
        tex = " " * len("\\displaylines{") + tex[len("\\displaylines{"):-1] + " "
    tex = re.sub(r"\\(?:begin|end)\{(?:align|aligned|align\*|split|gather|gather\*|eqnarray\*?)\}",
                 lambda m: " " * len(m.group(0)), tex)
    # Split at row breaks outside any inner environment (a bmatrix's rows stay in its formula).
    pieces, depth, start = [], 0, 0
    for m in re.finditer(r"\\begin\{[^}]*\}|\\end\{[^}]*\}|\\\\|\\cr\b", tex):
        token = m.group(0)
        if token.startswith("\\begin"):
            depth += 1
        elif token.startswith("\\end"):
            depth = max(depth - 1, 0)
        elif depth == 0:
            pieces.append((tex[start:m.start()], start))
            start = m.end()
    pieces.append((tex[start:], start))
    rows: list[tuple[str, int]] = []
    for row, offset in pieces:
        offset += len(row) - len(row.lstrip())
        row = " ".join(_outside_environments(row, lambda part: part.replace("&", " ")).split())
        if row:
            rows.append((row, offset))
    return rows


def _outside_environments(tex: str, change) -> str:
    """``tex`` with ``change`` applied to the text outside every inner environment (a bmatrix's
    ``&`` separate its entries, an align's ``&`` only aligns)."""
    out, depth, start = [], 0, 0
    for m in re.finditer(r"\\begin\{[^}]*\}|\\end\{[^}]*\}", tex):
        if m.group(0).startswith("\\begin"):
            if depth == 0:
                out.append(change(tex[start:m.start()]))
                start = m.start()
            depth += 1
        elif depth:
            depth -= 1
            if depth == 0:
                out.append(tex[start:m.end()])
                start = m.end()
    out.append(change(tex[start:]) if depth == 0 else tex[start:])
    return "".join(out)


def _split(tex: str) -> list[tuple[str, int]]:
    """Formulas written side by side in one span (``a = b, \\qquad c = d``) or in rows; a row that
    starts with ``=`` continues the chain of the row above (kept as a row of it, after ``\\\\``),
    and what follows a ``\\quad`` in a row is a formula (or a remark) of its own."""
    return [(part, offset) for part, offset, _, _ in _placed(tex)]


_ROW_JOIN = " \\\\ "  # between the rows of one chain, as the draft writes them


def _placed(tex: str) -> list[tuple[str, int, int, list[tuple[str, int]]]]:
    """:func:`_split` with, for each formula, the offset in ``tex`` of its first row and its rows
    (each row's own text and offset: a chain continued on the rows below has several)."""
    out: list[tuple[str, int, int, list]] = []
    chain = None
    for row, at in _placed_rows(tex):
        for k, (part, offset) in enumerate(_split_row(row)):
            if k == 0 and part.startswith("=") and chain is not None:
                text, first, first_at, rows = out[chain]
                out[chain] = (text + _ROW_JOIN + part, first, first_at, rows + [(part, at)])
                continue
            out.append((part, offset, at, [(part, at)]))
            if k == 0:
                chain = len(out) - 1
    return out


def _split_row(tex: str) -> list[tuple[str, int]]:
    level = _depth0(tex)
    parts, start, i = [], 0, 0
    while i < len(tex):
        sep = next((s for s in _SEPARATORS if tex.startswith(s, i) and level[i] == 0), None)
        if sep:
            parts.append((tex[start:i], start))
            i += len(sep)
            start = i
        else:
            i += 1
    parts.append((tex[start:], start))
    out = []
    for part, offset in parts:
        stripped = part.strip().rstrip(",.;").strip()
        if stripped.startswith("\\forall") and out:  # a = b \quad \forall k = 1(1)L: the range of a = b
            out[-1] = (f"{out[-1][0]} \\quad {stripped}", out[-1][1])
        elif stripped:
            out.append((stripped, offset))
    return out


_SHAPE = re.compile(r"(?:\\left)?\[\s*((?:[^\[\]]|\[[^\[\]]*\])*?)\s*(?:\\right)?\]\s*_\{\s*(\d+)\s*\\times\s*(\d+)\s*\}")


def _shapes(tex: str) -> tuple[str, list[tuple[str, int, int]]]:
    """``\\left[ X \\right]_{m\\times n}`` and ``[X]_{m\\times n}`` → ``X``; the shapes seen, by name."""
    seen = []

    def strip(match):
        inner = match.group(1)
        seen.append((inner, int(match.group(2)), int(match.group(3))))
        return "(" + inner + ")"

    return _SHAPE.sub(strip, tex), seen


def _layer_of(name_tex: str, letter: str) -> int | None:
    match = re.fullmatch(rf"\s*\\?{letter}\s*\^\s*\{{?\s*\(?(\d+)\)?\s*\}}?\s*", name_tex)
    return int(match.group(1)) if match else None


def _annotated(inner: str) -> tuple[str, int] | None:
    """What a shape annotation ``[X]_{m\\times n}`` is about, when X is one layer's quantity: W^k, a^k,
    z^k, b^k, δ^k or the derivative ∂·/∂ of one (which has its shape) → (letter, k)."""
    inner = re.sub(r"\\(?:left|right)\b", "", inner).strip()
    derivative = re.fullmatch(r"\\frac\s*\{\s*\\partial[^{}]*\}\s*\{\s*\\partial\s*(.*)\}", inner)
    if derivative:
        inner = derivative.group(1)
    for letter in ("W", "a", "z", "b", "delta"):
        k = _layer_of(inner, letter)
        if k is not None:
            return letter, k
    return None


def _sized(tex: str, known: dict, name: str | None) -> tuple[str, list[str], list[str]]:
    """The shape annotations of ``tex`` with each number the document gives as a layer's width
    written as that width, ``name_{k}`` (checked on every network, not only where the number is
    right): the layer the annotation is about (``[W^2]_{2\\times 4}`` → n_{2}, n_{1}), else the one
    layer of ``known`` (the widths the document states) with that width.  A size 1 stays 1; any
    other number stays as printed.  Returns the formula, what was rewritten, what was kept."""
    rewritten, kept = [], []

    def size(number: int, layer: int | None, by_value: bool) -> str:
        if number == 1:
            return "1"
        if name is not None:
            if layer is not None and known.get(layer) == number:
                return f"{name}_{{{layer}}}"
            matches = [k for k, width in known.items() if width == number]
            if layer is None and by_value and len(matches) == 1:
                return f"{name}_{{{matches[0]}}}"
        return str(number)

    def rewrite(match):
        inner, rows, cols = match.group(1), int(match.group(2)), int(match.group(3))
        about = _annotated(inner)
        matrix = about is None or about[0] == "W"
        row_layer = about[1] if about else None
        col_layer = about[1] - 1 if about and about[0] == "W" else None
        r, c = size(rows, row_layer, True), size(cols, col_layer, matrix)
        shown = f"[{' '.join(inner.split())}] {rows}×{cols}"
        if (r, c) != (str(rows), str(cols)):
            rewritten.append(f"{shown} as {r}×{c}")
        if any(written == str(n) and n != 1 for written, n in ((r, rows), (c, cols))):
            kept.append(shown)
        start, whole = match.start(0), match.group(0)
        return (whole[:match.start(2) - start] + r + whole[match.end(2) - start:match.start(3) - start] + c
                + whole[match.end(3) - start:])

    return _SHAPE.sub(rewrite, tex), rewritten, kept


def draft(path: str | Path, text: str | None = None, given: dict | None = None) -> Draft:
    """A derivation file for the document at *path*: [network] and [symbols] read from its forward
    definitions and loss (each guess commented), one claim per formula about a gradient, a delta, a
    derivative or the forward pass, with its ``tex`` and source line.  ``given`` is the user's
    symbols file (its [network], [symbols] and [tex] tables): its names win over the guesses and
    its spellings are read as names."""
    from .derivation.tex import TexError
    from .derivation.tex import translate as read

    given = {k: v for k, v in (given or {}).items() if isinstance(v, dict)}  # its tables (the loader checks them)
    names = {str(k): v for k, v in given.get("tex", {}).items() if isinstance(v, str)}

    def translate(tex, symbols, defined, **options):
        return read(tex, symbols, defined, names, **options)

    path = Path(path)
    spans = find_math(path, text)
    formulas = []  # (tex, line, kind)
    column_of, continued, rows_of, quantified = {}, {}, {}, {}
    guesses: list[str] = []
    pending = None  # "Now, ∀ i = 1(1)L−1, [display]": a quantifier of its own, for the next display
    prose = None  # … and for the displays that follow it with \therefore, its consequences
    for span in spans:
        if not span.display and _QUANTIFIER.fullmatch(span.tex):
            pending = (span.tex.strip().rstrip(",.;").strip(), span.line)
            continue
        if span.display:
            follows = prose is not None and pending is None and span.tex.lstrip().startswith("\\therefore")
            prose, pending = (prose if follows else pending), None
        applied = prose if span.display else None
        for part, _, at, rows in _placed(span.tex):
            # Each row of a display at its own line: where it starts in the document.
            line, column = span.line, span.column
            if span.start is not None:
                line, column = _position(span.tex, at, *span.start)
            if applied and "\\forall" not in part:
                part = f"{part} \\quad {applied[0]}"
                quantified[(part, line)] = applied
            if span.start is not None and len(rows) > 1:  # a chain over several rows: each row's text and place
                rows_of[(part, line)] = [(row, *_position(span.tex, row_at, *span.start)) for row, row_at in rows]
            column_of.setdefault((part, line), column)
            if part.startswith("=") and formulas and span.display and _left_side(formulas[-1][0]):
                # a display that starts with '=' continues the chain of the formula above it
                printed, part = part, _left_side(formulas[-1][0]) + " " + part
                continued[(part, line)] = (formulas[-1][1], printed)
                column_of.setdefault((part, line), column)
                guesses.append(f"line {line}: the display starts with '=': it continues the chain of "
                               f"line {formulas[-1][1]}")
            formulas.append((part, line, classify(part.replace("\\equiv", "="))))
    symbols = {"W": "weight", "b": "bias", "z": "preactivation", "a": "activation"}
    everything = " ".join(f for f, _, _ in formulas)
    present = [k for k in symbols if re.search(rf"(?<![\\A-Za-z]){k}\s*\^", everything)]
    symbols = {k: symbols[k] for k in present} or symbols
    symbols = _forward_roles(formulas, symbols, guesses)
    # Loss: its left side names the loss, the other plain letter of it is the target.
    loss_name, loss, target = "C", "half_sse", None
    losses = [f for f in formulas if f[2] == "loss"]
    # The loss is the loss-named formula that looks like one (a log or a squared norm), else the first.
    shaped = [f for f in losses if re.search(r"\\log|\\ln|\\\||\\lVert|\|\||\^\s*2", f[0].split("=", 1)[1])]
    for tex, line, kind in shaped[:1] or losses[:1]:
        if kind == "loss":
            loss_name = re.sub(r"\s*\(.*", "", tex.split("=", 1)[0].strip().lstrip("\\"))
            body = tex.split("=", 1)[1]
            if "\\log" in body or "\\ln" in body:
                loss = "bce" if "1 -" in body or "1-" in body else "cross_entropy"
            letters = [m for m in re.findall(r"(?<![\\A-Za-z])([a-zA-Z])(?![A-Za-z])", body) if m not in symbols]
            usual = [m for m in letters if m in "ytd"]
            target = (usual or [m for m in letters if m.islower()] or [None])[0]
            guesses.append(f"loss {loss_name} = {loss} (line {line})")
            break
    else:
        guesses.append(f"loss {loss_name} = {loss}: no loss formula found")
    symbols[loss_name] = "loss"
    if target:
        symbols[target] = "target"
    activation = "sigmoid"
    for name, rule in _ACTIVATIONS.items():
        if "\\" + name in everything:
            activation = rule
            symbols[name.split("{")[-1].rstrip("}")] = "activation_function"
            break
    else:  # f'(z^l): a letter the document differentiates is its activation function, left unnamed
        primed = re.search(r"(?<![\\A-Za-z])([a-zA-Z])\s*'\s*\(", everything)
        if primed and primed.group(1) not in symbols:
            activation = f"generic:{primed.group(1)}"
            symbols[primed.group(1)] = "activation_function"
    softmax = any(re.search(r"\\frac\s*\{\s*e\s*\^", f) and "\\sum" in f for f, _, _ in formulas) or \
        "softmax" in everything.lower()
    if softmax:
        guesses.append(f"hidden layers {activation}, the output softmax (a normalised exponential is written)")
        if loss == "half_sse" and "\\log" in everything:
            loss = "cross_entropy"
    else:
        guesses.append(f"every layer's activation is {activation}")
    # Layers: the indices of z and a; widths from shape annotations [W^l]_{m×n}, else small.
    layers, weights, widths = set(), set(), {}
    for tex, _, _ in formulas:
        for letter in ("z", "a", "W", "b"):
            for m in re.finditer(rf"(?<![\\A-Za-z]){letter}\s*\^\s*\{{?\s*\(?(\d+)\)?\s*\}}?", tex):
                layers.add(int(m.group(1)))
                if letter == "W":
                    weights.add(int(m.group(1)))
    for span in spans:
        for inner, rows, cols in _shapes(_unwrap(span.tex))[1]:
            about = _annotated(inner)
            if about is None:
                continue
            letter, k = about
            widths.setdefault(k, rows)
            if letter == "W":
                widths.setdefault(k - 1, cols)
    # An index shift: the document's input is a^{(k)} (``x = a^{(1)}``): a and z are shifted by k.
    shift = 0
    for tex, line, _ in formulas:
        m = re.fullmatch(r"\s*([a-zA-Z])\s*=\s*a\s*\^\s*\{?\s*\(?(\d+)\)?\s*\}?\s*", tex) or \
            re.fullmatch(r"\s*a\s*\^\s*\{?\s*\(?(\d+)\)?\s*\}?\s*=\s*([a-zA-Z])\s*", tex)
        if m:
            letter, k = (m.group(1), int(m.group(2))) if m.group(1).isalpha() else (m.group(2), int(m.group(1)))
            if k:
                shift = k
                symbols[letter] = "input"
                for name in ("a", "z"):
                    if name in symbols:
                        symbols[name] = {"quantity": symbols[name], "shift": k}
                guesses.append(f"line {line}: {letter} = a^({k}) is the input: a and z indices shifted by {k}")
            break
    # The output layer's letter (a_L, z^{(L)}): the depth, shifted as a is.
    for letter in ("L", "N"):
        pattern = rf"(?<![\\A-Za-z])[azWb]\s*[_^]\s*\{{?\s*\(?{letter}\)?\s*\}}?(?![A-Za-z])"
        if letter not in symbols and re.search(pattern, everything):
            symbols[letter] = {"quantity": "depth", "shift": shift} if shift else "depth"
            guesses.append(f"{letter} is the number of the output layer (a layer index of the document)")
            break
    # The input is the layer before the first weight matrix (a^0 unless W^1 is missing).
    first = min(weights) - 1 if weights else 0
    if shift:
        first = 0
        layers = {k - shift for k in layers}
    last = max(layers) if layers else 2
    if last - first < 2:
        last = first + 2
    sizes = []
    for k in range(first, last + 1):
        if k in widths:
            sizes.append(widths[k])
        else:
            binary = loss == "bce" and not softmax  # one probability per example: one output unit
            sizes.append(3 if k == first else ((1 if binary else 2) if k == last else 4))
    from_doc = all(k in widths for k in range(first, last + 1))
    guesses.append(f"widths {sizes} " + ("(the document's shapes)" if from_doc else "(guessed small)")
                   + ("; one output unit for the binary cross-entropy" if last not in widths and sizes[-1] == 1 else ""))
    if first != 0:
        guesses.append(f"layers numbered from {first}: a^{first} is the input")
    guessed = dict(symbols)  # what the draft writes in [symbols]: its own guesses, the user's merged after
    symbols.update(_well_formed(given.get("symbols", {})))  # the formulas are read with the user's names
    widths_given = given.get("network", {}).get("widths")
    depth = len(widths_given) - 1 if isinstance(widths_given, list) and widths_given else len(sizes) - 1
    # Definitions (\equiv, or = of a name that names nothing yet) and claims.
    defines, claims = {}, []
    ranges = {}  # a definition's for range
    as_printed = {}  # a definition's formula as printed, where the one read differs
    repeated = False  # an entry index repeats in a product (Einstein's summation)
    for tex, line, kind in formulas:
        if kind != "other" or "\\equiv" in tex or "=" not in tex:
            continue
        try:  # read once to find the name on the left, then again with it a per-layer name
            head = _head_name(translate(tex, symbols, ["delta[0]", *defines])[0].lhs)
            links = translate(tex, symbols, ["delta[0]", *defines, head or "delta"])
        except (TexError, ValueError):
            continue
        if len(links) != 1 or not _names_a_new_quantity(links[0].lhs, symbols, defines):
            continue
        (link,) = links
        defines[link.lhs] = (link.rhs, tex, line)
        repeated = repeated or _repeats_an_index(links, symbols)
        layers = _layer_range(links, symbols, depth) if first == 0 else None
        if layers:
            ranges[link.lhs] = layers
        guesses.append(f"line {line}: {tex.split('=')[0].strip()} names nothing else: read as its definition")
    for tex, line, kind in formulas:
        if "\\equiv" in tex:
            original = tex
            repaired = re.sub(r"\[\s*\\equiv", r"\\equiv [", tex)
            if repaired != tex:
                guesses.append(f"line {line}: '[\\equiv' read as '\\equiv [' (a misplaced bracket)")
                tex = repaired
            lhs_tex, rhs_tex = tex.split("\\equiv", 1)
            as_claim = f"{lhs_tex.strip()} = {rhs_tex.strip()}"
            try:
                (link,) = translate(as_claim, symbols, ["delta[0]", *defines])
            except (TexError, ValueError) as error:
                claims.append((tex, line, f"a definition the reader could not read ({error}); left as a claim", tex))
                continue
            used = set(re.findall(r"delta\[\d+\]", link.rhs))
            if link.lhs in defines or not used <= set(defines):
                why = "defined before" if link.lhs in defines else "uses " + ", ".join(sorted(used - set(defines)))
                claims.append((as_claim, line, f"definition of {link.lhs} checked as a claim ({why})", tex))
                continue
            defines[link.lhs] = (link.rhs, tex, line)
            as_printed[link.lhs] = original
    # Shape annotations stay in the claims, checked.  A number the document gives as a layer's width
    # is written as that width (a symbol no formula uses), so that the claim holds on every network
    # the checker tries, as the document means; the network's layers must be the document's.
    width_name = None
    if first == 0 and not shift:
        width_name = next((n for n in ("n", "d", "N", "m") if n not in symbols
                           and not re.search(rf"(?<![\\A-Za-z]){n}(?![A-Za-z])", everything)), None)
    known = {k: w for k, w in widths.items() if 0 <= k - first < len(sizes) and sizes[k - first] == w}
    document_only = {}  # (printed, line) -> the annotations whose sizes stay numbers
    for tex, line, kind in formulas:
        at_layers = _at_preactivations(tex, symbols)
        if at_layers is not None:
            rewritten, problem = at_layers
            claims.append((rewritten, line, problem, tex))
            continue
        if kind not in _CLAIMED or "\\equiv" in tex or "=" not in tex:
            continue
        stripped, rewritten, kept = _sized(tex, known, width_name)
        problems = []
        if rewritten:
            symbols[width_name] = "width"
            problems.append("shape annotations checked, their sizes read as layer widths: " + ", ".join(rewritten))
        if kept:
            document_only[(tex, line)] = kept
        spelled = re.sub(r"\{\\bf\s+([A-Za-z])\s*\}|\\(?:mathbf|boldsymbol|bm)\s*\{\s*([A-Za-z])\s*\}",
                         lambda m: m.group(1) or m.group(2), stripped)
        spelled = spelled.replace("\\cdotp", "\\cdot")
        if spelled != stripped:
            problems.append("bold letters read as plain ones ({\\bf x}, \\mathbf{x} as x), \\cdotp as \\cdot")
        if loss_name and re.search(rf"(?<![A-Za-z\\_^]){re.escape(loss_name)}\s*\([^()]*\)", spelled):
            spelled = re.sub(rf"(?<![A-Za-z\\_^]){re.escape(loss_name)}\s*\([^()]*\)", lambda m: loss_name, spelled)
            problems.append(f"the loss's arguments dropped: {loss_name}(…) read as {loss_name}")
        if (tex, line) in quantified:
            problems.append("the quantifier {} printed before the display (line {}) applied to it".format(
                *quantified[(tex, line)]))
        if (tex, line) in continued:
            above, printed = continued[(tex, line)]
            problems.append(f"continues the chain of line {above} (its left side repeated)")
            column_of.setdefault((printed, line), column_of.get((tex, line)))
        claims.append((spelled, line, "; ".join(problems) or None, tex))
    claims = _functions_expanded(claims, formulas, symbols)
    claims += _errors_as_gradients(defines, symbols, loss_name, as_printed)
    claims.sort(key=lambda c: c[1])
    layout = _derivative_layout(claims, symbols, ["delta[0]", *defines], names)
    if layout:
        guesses.append(f"derivatives in the denominator layout (line {layout}: the chain rule printed "
                       "∂z/∂b ∂L/∂z): every ∂a/∂b of two vectors read as jacobian(a, b).T")
    lines = [f"# Draft derivation file extracted from {path.name} by `symbackprop extract`.",
             "# Every line marked `# guess:` is a reading of the document to confirm.",
             *(f"# guess: {g}" for g in guesses),
             f'title  = "{path.stem}"', f'source = "{path.name}"',
             *([f'derivative_layout = "denominator"      # guess: line {layout}'] if layout else []), "", "[network]",
             f"widths = {sizes}" + ("" if from_doc else "      # guess: the document gives no widths"),
             f'hidden = "{activation}"      # guess', f'output = "{"softmax" if softmax else activation}"      # guess',
             f'loss   = "{loss}"      # guess', "batch  = 1      # guess: one example", "", "[symbols]"]
    for name, role in symbols.items():
        if name in given.get("symbols", {}):
            if name not in guessed:
                continue
            role = guessed[name]
        name = name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml_string(name)
        if isinstance(role, dict):
            lines.append(f'{name} = {{ quantity = "{role["quantity"]}", shift = {role["shift"]} }}      # guess')
        else:
            lines.append(f'{name} = "{role}"' + ("      # guess" if role in {"target", "loss", "activation_function", "input",
                                                                          "depth"}
                                                 else "      # the sizes of shape annotations" if role == "width"
                                                 else ""))
    if first != 0:
        lines.append(f'# guess: the input is a^{first}')
    origins = {}
    if defines:
        lines += ["", "[define]"]
        for name, (rhs, tex, line) in defines.items():
            origins[("define", name)] = f"{path}:{line}"
            lines.append(f"# line {line}: {tex}")
            if name in ranges:
                lines.append(f'"{name}" = {{ expr = {_toml_string(rhs)}, for = "{ranges[name]}" }}'
                             "      # guess: the for range")
            else:
                lines.append(f'"{name}" = {_toml_string(rhs)}')
    count, unreadable, positions, chains, einstein = 0, [], {}, {}, repeated
    order = "denominator" if layout else None
    for tex, line, problem, printed in _chains_split(claims, symbols, ["delta[0]", *defines], order, names):
        count += 1
        column = column_of.get((printed, line)) or 1
        positions[f"L{line}-{count}"] = (line, column)
        rows = rows_of.get((printed, line))
        starts = [k + len(_ROW_JOIN) for k in range(len(tex)) if tex.startswith(_ROW_JOIN + "=", k)]
        if rows and len(starts) == len(rows) - 1:  # where each row starts in the drafted tex
            chains[f"L{line}-{count}"] = [(at, *row) for at, row in zip([0, *starts], rows)]
        origins[("claim", count)] = f"{path}:{line}"
        layers = None
        try:
            links = translate(tex, symbols, ["delta[0]", *defines], layout=order)
            quantified = any(getattr(link, "for_range", None) for link in links)  # \forall k: its own range
            layers = _layer_range(links, symbols, depth) if first == 0 and not quantified else None
            einstein = einstein or _repeats_an_index(links, symbols)
        except (TexError, ValueError) as error:
            links = None
            unreadable.append(f"{path}:{line}:{column}: the formula starting here cannot be read: {error}")
        kept = document_only.get((printed, line))
        # A number left in an annotation the checker checks (one on a whole side) holds on the
        # document's network only: the claim is checked there only.
        only = kept and (links is None or any(size.isdigit() and size != "1"
                                              for link in links for size in link.shape or ()))
        if kept:
            problem = "; ".join(filter(None, [problem, "shape sizes kept as printed (" + ", ".join(kept) + "): not "
                                              "a width the document gives one layer"
                                              + (", so checked on the document's network only" if only else "")]))
        lines += ["", "[[claim]]", f'id   = "L{line}-{count}"', f"tex  = {_toml_string(tex)}",
                  f"text = {_toml_string(printed)}", f'note = "line {line}"']
        if problem:
            lines[-1] = f"note = {_toml_string(f'line {line}; {problem}')}"
        if only:
            lines.append('instances = "document"')
        if layers:
            lines.append(f'for  = "{layers}"      # guess: every layer where the quantities it names exist')
    if einstein:
        at = lines.index("[network]")
        lines.insert(at - 1, 'summation = "einstein"      # guess: an entry index repeats in a product, '
                     "summed as in Einstein's convention")
        guesses.append("an entry index repeats within a product: summed (Einstein's convention)")
    return Draft("\n".join(lines) + "\n", guesses, count, unreadable, positions, origins, chains)


_FUNCTION_DEFINITION = re.compile(r"\s*\\(sigma|phi|varphi)\s*('?)\s*\(\s*([A-Za-z])\s*\)\s*=")


def _at_preactivations(tex: str, symbols: dict) -> tuple[str, str] | None:
    """``\\sigma(x) = \\frac{1}{1 + e^{-x}}``, x a letter naming nothing: the activation function's
    definition, to be checked where the network applies it: the formula with x replaced by the
    preactivation of layer l (and a note saying so); None for any other formula."""
    match = _FUNCTION_DEFINITION.match(tex)
    if match is None or match.group(1) not in symbols or match.group(3) in symbols:
        return None
    pre = next((k for k, v in symbols.items()
                if (v.get("quantity") if isinstance(v, dict) else v) == "preactivation"), None)
    if pre is None:
        return None
    letter, at = match.group(3), f"{pre}^{{(l)}}"
    rewritten = re.sub(rf"(?<![\\A-Za-z]){letter}(?![A-Za-z])", lambda m: at, tex)
    return rewritten, f"the definition of \\{match.group(1)}{match.group(2)}({letter}) checked at {letter} = {at}"


_ERROR = re.compile(r"\s*\\(delta|epsilon|varepsilon)(?![A-Za-z])(.*)")


def _errors_as_gradients(defines: dict, symbols: dict, loss_name: str, printed: dict) -> list:
    """A layer's error δ^l (or ε^l) defined by the document, checked as what backpropagation means
    by it, the gradient of the loss by z^l: one claim ``∂C/∂z^l = (the definition)`` per definition,
    its printed text the definition's, the reading in its note."""
    pre = next((k for k, v in symbols.items()
                if (v.get("quantity") if isinstance(v, dict) else v) == "preactivation"), None)
    if pre is None or not re.fullmatch(r"[A-Za-z]", loss_name or ""):
        return []
    out = []
    for name, (rhs, tex, line) in defines.items():
        left, _, right = tex.partition("\\equiv") if "\\equiv" in tex else tex.partition("=")
        match = _ERROR.fullmatch(left.strip())
        if match is None or not right.strip():
            continue
        claim = f"\\frac{{\\partial {loss_name}}}{{\\partial {pre}{match.group(2).strip()}}} = {right.strip()}"
        note = f"the definition of {name} checked as the gradient of {loss_name} by {pre}: a layer's error is that gradient"
        if printed.get(name, tex) != tex:
            note += f"; read as {tex}"
        out.append((claim, line, note, printed.get(name, tex)))
    return out


def _well_formed(roles: dict) -> dict:
    """The entries of a symbols file's [symbols] the draft can read with: a quantity's name, or a
    table with its ``quantity`` and an integer ``shift`` (the loader reports any other)."""
    out = {}
    for name, role in roles.items():
        if isinstance(role, str):
            out[name] = role
        elif isinstance(role, dict) and isinstance(role.get("quantity"), str) \
                and isinstance(role.get("shift", 0), int) and not isinstance(role.get("shift", 0), bool):
            out[name] = {"quantity": role["quantity"], "shift": role.get("shift", 0)}
    return out


def _head_name(lhs: str) -> str | None:
    """The name a left side is about: ``eps`` of ``eps[i] ** l``."""
    import ast
    try:
        node = ast.parse(lhs, mode="eval").body
    except SyntaxError:
        return None
    while isinstance(node, (ast.Subscript, ast.BinOp)):
        node = node.value if isinstance(node, ast.Subscript) else node.left
    return node.id if isinstance(node, ast.Name) else None


def _names_a_new_quantity(lhs: str, symbols: dict, defines: dict) -> bool:
    """Whether ``lhs`` is a name of nothing yet (not a symbol, not a function), with its layer and
    entry indices: ``eps[l][i]``."""
    import ast
    try:
        node = ast.parse(lhs, mode="eval").body
    except SyntaxError:
        return False
    while isinstance(node, ast.Subscript):
        node = node.value
    return isinstance(node, ast.Name) and node.id not in symbols and node.id != "delta" \
        and node.id.isidentifier() and len(node.id) > 1 and lhs not in defines


def _repeats_an_index(links, symbols) -> bool:
    """Whether an entry index letter not on a link's left side is used twice on its right side
    (``ε_q ∂z_q/∂W_ij``): the document sums over it as Einstein did."""
    import ast

    from .derivation.language import LAYERED, preprocess

    def entry_letters(side):
        try:
            tree = ast.parse(preprocess(side), mode="eval")
        except SyntaxError:
            return []
        out, bound = [], set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and \
                    isinstance(node.ops[0], ast.In):
                bound.add(node.left.id)  # sum(…, i in 1..m)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "sum":
                bound.update(a.id for a in node.args[1:] if isinstance(a, ast.Name))  # sum(…, i)
            if not isinstance(node, ast.Subscript):
                continue
            base = node.value
            role = symbols.get(base.id) if isinstance(base, ast.Name) else None
            quantity = role.get("quantity") if isinstance(role, dict) else role
            if isinstance(base, ast.Name) and quantity in LAYERED:
                continue  # X[l]: a layer
            index = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            out += [i.id for i in index if isinstance(i, ast.Name) and i.id not in symbols]
        return [letter for letter in out if letter not in bound]

    for link in links:
        left = set(entry_letters(link.lhs))
        right = entry_letters(link.rhs)
        if any(right.count(letter) >= 2 and letter not in left for letter in set(right)):
            return True
    return False


def _layer_letters(links, symbols) -> dict[str, list[tuple[str, int]]]:
    """Each letter used in a layer index (``W[l + 1]``) of the links: the names it indexes, with the
    offset (``l + 1`` → 1)."""
    import ast

    from .derivation.language import LAYERED, preprocess
    uses: dict[str, list[tuple[str, int]]] = {}
    for link in links:
        for side in (link.lhs, link.rhs):
            try:
                tree = ast.parse(preprocess(side), mode="eval")
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)):
                    continue
                role = symbols.get(node.value.id)
                quantity = role.get("quantity") if isinstance(role, dict) else role
                if quantity not in LAYERED:
                    continue
                index, offset = node.slice, 0
                if isinstance(index, ast.BinOp) and isinstance(index.op, (ast.Add, ast.Sub)) \
                        and isinstance(index.right, ast.Constant) and isinstance(index.right.value, int):
                    offset = index.right.value if isinstance(index.op, ast.Add) else -index.right.value
                    index = index.left
                if isinstance(index, ast.Name) and index.id not in symbols:
                    uses.setdefault(index.id, []).append((node.value.id, offset))
    return uses


def _layer_range(links, symbols, depth: int) -> str | None:
    """The ``for`` range of a formula with a free layer letter: the layers where every quantity it
    indexes exists (``z_{l+1} = W_{l+1} a_l + b_{l+1}``: l in 0..L-1), the last one written with
    the document's depth name if it has one; None without a layer letter, or with two."""
    from .derivation.language import LAYERED
    uses = _layer_letters(links, symbols)
    if len(uses) != 1:
        return None
    ((letter, refs),) = uses.items()
    depth_name = next((k for k, v in symbols.items()
                       if (v.get("quantity") if isinstance(v, dict) else v) == "depth"), None)
    depth_shift = next((v.get("shift", 0) for k, v in symbols.items() if k == depth_name and isinstance(v, dict)), 0)
    low, high = None, None
    for name, offset in refs:
        role = symbols[name]
        quantity, shift = (role["quantity"], role.get("shift", 0)) if isinstance(role, dict) else (role, 0)
        first = LAYERED[quantity][0] + shift - offset
        last = shift - offset  # beyond the network's depth
        low = first if low is None else max(low, first)
        high = last if high is None else min(high, last)
    if low > depth + high:
        return None
    if depth_name is None:
        top = str(depth + high)
    else:
        k = high - depth_shift
        top = depth_name if k == 0 else f"{depth_name} {'+' if k > 0 else '-'} {abs(k)}"
    return f"{letter} in {low}..{top}"


_FUNCTION = re.compile(r"\s*([A-Za-z])\s*\(\s*([A-Za-z])\s*\)\s*=\s*(.+?)\s*")


def _functions_expanded(claims, formulas, symbols):
    """The claims with each ``g(…)`` of a function the document defines, ``g(x) = \\frac12 \\| x \\|^2``
    (g and x letters that name nothing), written out at its argument (noted) — not where g is
    applied to its own letter, which states something of g itself."""
    definitions = {}
    for tex, line, _ in formulas:
        match = _FUNCTION.fullmatch(tex)
        if match and match.group(1) not in symbols and match.group(2) not in symbols and match.group(1) != match.group(2):
            definitions.setdefault(match.group(1), (match.group(2), match.group(3), line))
    out = []
    for tex, line, problem, printed in claims:
        notes = [problem] if problem else []
        for name, (letter, body, at) in definitions.items():
            expanded = _expand_calls(tex, name, letter, body)
            if expanded != tex and at < line:
                tex = expanded
                notes.append(f"{name}(…) written out by its definition at line {at}: {name}({letter}) = {body}")
        out.append((tex, line, "; ".join(notes) or None, printed))
    return out


def _expand_calls(tex, name, letter, body):
    """``tex`` with every ``name(arg)`` (balanced parentheses; ``arg`` not the letter itself)
    replaced by ``body`` at ``arg``."""
    out, i = [], 0
    for m in re.finditer(rf"(?<![\\A-Za-z]){name}\s*\(", tex):
        if m.start() < i:
            continue
        depth, k = 1, m.end()
        while k < len(tex) and depth:
            depth += {"(": 1, ")": -1}.get(tex[k], 0)
            k += 1
        if depth:
            return tex  # unbalanced: left as printed
        argument = tex[m.end():k - 1].strip()
        if argument == letter:
            continue
        at = re.sub(rf"(?<![\\A-Za-z]){letter}(?![A-Za-z])", lambda _: f"({argument})", body)
        out += [tex[i:m.start()], f"\\left( {at} \\right)"]
        i = k
    return "".join(out) + tex[i:]


def _derivative_layout(claims, symbols, defined, names=None) -> int | None:
    """The line of the first formula that prints the chain rule in the denominator layout
    (``∂z/∂b ∂L/∂z``), where the reader says so; None if no formula does."""
    from .derivation.tex import TexError, translate

    for tex, line, _, _ in claims:
        try:
            links = translate(tex, symbols, defined, names)
        except (TexError, ValueError):
            continue
        if any("in the denominator layout (each factor" in note for link in links for note in link.notes):
            return line
    return None


_AFFINE = re.compile(r"([A-Za-z])\s*[_^]\s*\{?\s*\(?\s*([a-zA-Z])\s*\)?\s*\}?\s*=\s*W\s*[_^]\s*\{?\s*\(?\s*\2"
                     r"\s*\)?\s*\}?\s*(?:\\cdot\s*)?([A-Za-z])\s*[_^]\s*\{?\s*\(?\s*\2\s*-\s*1\s*\)?\s*\}?\s*\+\s*b")


def _forward_roles(formulas, symbols: dict, guesses: list) -> dict:
    """The symbols, with the pre-activation and activation letters a forward definition of the
    document shows: ``a_i = W_i h_{i-1} + b_i`` makes a the pre-activation and h the activation
    (the defaults z, a give way; each guess noted)."""
    out = dict(symbols)
    for tex, line, kind in formulas:
        plain = _DECORATIONS.sub("", tex).replace("{\\bf", "{")
        plain = re.sub(r"\{\s*([A-Za-z])\s*\}", r"\1", plain)  # {a}_i, \underline{a}_i: the letter a
        match = _AFFINE.match(plain.strip()) if kind == "forward definition" else None
        if match is None or match.group(1) == match.group(3):
            continue
        pre, act = match.group(1), match.group(3)
        if out.get(pre) == "preactivation" and out.get(act) == "activation":
            return out
        for name, role in symbols.items():  # a default the document's letters replace
            if role in ("preactivation", "activation") and name not in (pre, act):
                out.pop(name, None)
        out[pre], out[act] = "preactivation", "activation"
        guesses.append(f"line {line}: {pre} = W {act} + b: {pre} is the pre-activation, {act} the activation")
        return out
    return out


def _left_side(tex: str) -> str:
    """The left side of a chain: the text before its first ``=`` outside braces (empty if none)."""
    depth = 0
    for k, ch in enumerate(tex):
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "=" and depth == 0:
            return tex[:k].replace("&", " ").strip()
    return ""


def _chains_split(claims, symbols, defined, layout=None, names=None):
    """The claims, a chain ``a = b = c`` that cannot be read as a whole drafted link by link
    (``a = b``, ``a = c``), so that one unreadable link does not hide the others (noted)."""
    from .derivation.tex import TexError, translate

    out = []
    for tex, line, problem, printed in claims:
        tex, quantifier = _without_quantifier(tex)
        sides = _sides(tex)
        if quantifier:  # each link keeps the chain's trailing \forall k = 1(1)L
            sides[1:] = [f"{side} {quantifier}" for side in sides[1:]]
            tex = f"{tex} {quantifier}"
        if len(sides) > 2:
            try:
                translate(tex, symbols, defined, names, layout=layout)
            except (TexError, ValueError):
                for k, side in enumerate(sides[1:], start=1):
                    why = f"link {k} of the chain at line {line} (the chain cannot be read as a whole)"
                    out.append((f"{sides[0]} = {side}", line, "; ".join(filter(None, [problem, why])), printed))
                continue
        out.append((tex, line, problem, printed))
    return out


def _without_quantifier(tex: str) -> tuple[str, str]:
    """A formula and its trailing quantifier ``\\quad \\forall k = 1(1)L`` (outside braces), split."""
    depth = 0
    for m in re.finditer(r"(?:\\q?quad\s*|,\s*)?\\forall(?![A-Za-z])|[{}]", tex):
        depth += m.group(0) == "{"
        depth -= m.group(0) == "}"
        if m.group(0) not in "{}" and depth == 0:
            return tex[:m.start()].rstrip(), tex[m.start():].strip()
    return tex, ""


def _sides(tex: str) -> list[str]:
    """The sides of a chain ``a = b = c``: split at each ``=`` outside braces and environments
    (the row break ``\\\\`` before a row's ``=`` is not part of a side)."""
    sides, depth, start = [], 0, 0
    for m in re.finditer(r"\\begin\{[^}]*\}|\\end\{[^}]*\}|\\.|[{}=]", tex):
        token = m.group(0)
        if token in ("{",) or token.startswith("\\begin"):
            depth += 1
        elif token in ("}",) or token.startswith("\\end"):
            depth -= 1
        elif token == "=" and depth == 0:
            sides.append(tex[start:m.start()].strip())
            start = m.end()
    sides.append(tex[start:].strip())
    return [side[:-2].rstrip() if side.endswith("\\\\") else side for side in sides]


def _toml_string(value: str) -> str:
    if "'" not in value and "\n" not in value:
        return f"'{value}'"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def load_document(path: str | Path, symbols: str | Path | None = None, text: str | None = None, *,
                  warn=None):
    """The draft of the document at *path* loaded as a Derivation, from memory, as ``symbackprop
    verify DOC`` checks it: every message names the document and the formula's line.  With
    ``symbols`` (a TOML file), that file's tables are merged over the draft's key by key, its
    entries winning and named FILE:line in messages; the claims stay the document's (its own
    ``[[claim]]`` tables are not used: ``warn`` is told).  ``derivation.extraction`` holds the guesses,
    the draft's entries the symbols file changed and the formulas that cannot be read, with their positions.
    Raises ExtractError for a document that cannot be read, FileError when nothing can be checked."""
    from .derivation.loader import load, merge, read_overrides

    user, user_origins = read_overrides(symbols) if symbols is not None else ({}, {})
    result = draft(path, text, given=user)  # the formulas read with the user's names and spellings
    data, origins, overridden, added = result.data, dict(result.origins), [], []
    if symbols is not None:
        if "claim" in user and warn is not None:
            warn(f"{symbols}: its [[claim]] tables are not used: the claims are those of {path}")
        overridden = [f"[{table}] {key}" for table, entries in user.items()
                      if isinstance(entries, dict) and isinstance(data.get(table), dict)
                      for key in entries if key in data[table] and data[table][key] != entries[key]]
        overridden += [f"[{table}]" for table in ("network", "symbols") if "model" in user and table in data]
        added = [f"[{table}] {key}" if isinstance(entries, dict) else table for table, entries in user.items()
                 if table != "claim" for key in (entries if isinstance(entries, dict) else [None])
                 if not isinstance(data.get(table), dict) or key not in data[table]]
        data = merge(data, user)
        origins.update((key, where) for key, where in user_origins.items() if key[0] != "claim")
    derivation = load(path, data=data, origins=origins)
    for claim in derivation.claims:  # each claim at its line; a link of a chain over rows, its own row's
        base = claim.id if claim.id in result.positions else claim.id[:-1]
        if base not in result.positions:
            continue
        claim.line = result.positions[base][0]
        rows = result.rows.get(base)
        if rows and claim.offset is not None:
            _, text, line, _ = [row for row in rows if row[0] <= claim.offset][-1]
            if claim.note and line != claim.line and claim.note.startswith(f"line {claim.line}"):
                claim.note = f"line {line}" + claim.note[len(f"line {claim.line}"):]
            claim.text, claim.line = text, line
    unreadable = []
    for claim in derivation.claims:
        if claim.error and claim.error.startswith("tex: ") and claim.id in result.positions:
            line, column = result.positions[claim.id]
            unreadable.append({"claim": claim.id, "line": line, "column": column, "message": claim.error[5:]})
    derivation.extraction = {"document": str(path), "symbols": None if symbols is None else str(symbols),
                             "guesses": list(result.guesses), "overridden": overridden, "added": added,
                             "unreadable": unreadable}
    return derivation
