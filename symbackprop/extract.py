"""Math spans of a document: where each TeX formula is, and what it is about.

First slice of reading a post's own LaTeX: find every formula of a Markdown, HTML, TeX or
plain-text document with its 1-based line and column, and classify it (gradient, delta,
derivative, forward definition, loss, other).  Translating a formula into the claim language is
the TeX translator's job; this module only locates and sorts.
"""

from __future__ import annotations

import html.parser
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MathSpan", "ExtractError", "Draft", "find_math", "classify", "draft"]


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
    forward = {"z", "a", "h", "y", "haty", "hat y", "Z", "A", "H", "Y", "hatY"}  # and a batch's matrices
    if head in forward or any(_head(side) in forward for side in sides[1:-1]):
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
        except OSError as error:
            raise ExtractError(f"{path}: cannot read: {error.strerror}") from None
        except UnicodeDecodeError as error:
            raise ExtractError(f"{path}: cannot read: not UTF-8 (byte {error.start})") from None
    suffix = path.suffix.lower()
    if suffix in {".md", ".markdown"}:
        return _markdown(text, str(path))
    if suffix in {".html", ".htm"}:
        return _html(text, str(path))
    return _scan(text, str(path))


# ------------------------------------------------------------------------------ the draft

_SEPARATORS = ("\\qquad", "\\quad")
_ACTIVATIONS = {"sigma": "sigmoid", "tanh": "tanh", "operatorname{ReLU}": "relu", "phi": "sigmoid"}
_QUANTIFIER = re.compile(r"\s*\\forall\s*[A-Za-z]\s*=[^=]*")  # an inline ∀ k = 1(1)L standing alone
_CLAIMED = {"gradient", "delta", "derivative", "forward definition"}


@dataclass
class Draft:
    """A derivation file proposed from a document: its TOML text and the guesses it made."""

    toml: str
    guesses: list[str]
    claims: int
    unreadable: list[str]  # "file:line:column: …" of each drafted formula the LaTeX reader stops on


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
    ``\\cr``; a row that starts with ``=`` continues the chain of the row before."""
    tex = tex.strip()
    if tex.startswith("\\displaylines{") and tex.endswith("}"):
        tex = tex[len("\\displaylines{"):-1]
    tex = re.sub(r"\\(?:begin|end)\{(?:align|aligned|align\*|split|gather|gather\*|eqnarray\*?)\}", " ", tex)
    # Split at row breaks outside any inner environment (a bmatrix's rows stay in its formula).
    pieces, depth, start = [], 0, 0
    for m in re.finditer(r"\\begin\{[^}]*\}|\\end\{[^}]*\}|\\\\|\\cr\b", tex):
        token = m.group(0)
        if token.startswith("\\begin"):
            depth += 1
        elif token.startswith("\\end"):
            depth = max(depth - 1, 0)
        elif depth == 0:
            pieces.append(tex[start:m.start()])
            start = m.end()
    pieces.append(tex[start:])
    rows: list[str] = []
    for row in pieces:
        row = " ".join(_outside_environments(row, lambda part: part.replace("&", " ")).split())
        if row:
            rows.append(row)
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
    out: list[tuple[str, int]] = []
    chain = None
    for row in _rows(tex):
        for k, (part, offset) in enumerate(_split_row(row)):
            if k == 0 and part.startswith("=") and chain is not None:
                out[chain] = (out[chain][0] + " \\\\ " + part, out[chain][1])
                continue
            out.append((part, offset))
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


def draft(path: str | Path, text: str | None = None) -> Draft:
    """A derivation file for the document at *path*: [network] and [symbols] read from its forward
    definitions and loss (each guess commented), one claim per formula about a gradient, a delta, a
    derivative or the forward pass, with its ``tex`` and source line."""
    from .derivation.tex import TexError, translate

    path = Path(path)
    spans = find_math(path, text)
    formulas = []  # (tex, line, kind)
    column_of, continued, quantified = {}, {}, {}
    guesses: list[str] = []
    pending = None  # "Now, ∀ i = 1(1)L−1, [display]": a quantifier of its own, for the next display
    for span in spans:
        if not span.display and _QUANTIFIER.fullmatch(span.tex):
            pending = (span.tex.strip().rstrip(",.;").strip(), span.line)
            continue
        given, pending = (pending, None) if span.display else (None, pending)
        for part, _ in _split(span.tex):
            if given and "\\forall" not in part:
                quantified[(f"{part} \\quad {given[0]}", span.line)] = given
                column_of.setdefault((f"{part} \\quad {given[0]}", span.line), span.column)
                part = f"{part} \\quad {given[0]}"
            column_of.setdefault((part, span.line), span.column)
            if part.startswith("=") and formulas and span.display and _left_side(formulas[-1][0]):
                # a display that starts with '=' continues the chain of the formula above it
                printed, part = part, _left_side(formulas[-1][0]) + " " + part
                continued[(part, span.line)] = (formulas[-1][1], printed)
                column_of.setdefault((part, span.line), span.column)
                guesses.append(f"line {span.line}: the display starts with '=': it continues the chain of "
                               f"line {formulas[-1][1]}")
            formulas.append((part, span.line, classify(part.replace("\\equiv", "="))))
    symbols = {"W": "weight", "b": "bias", "z": "preactivation", "a": "activation"}
    everything = " ".join(f for f, _, _ in formulas)
    present = [k for k in symbols if re.search(rf"(?<![\\A-Za-z]){k}\s*\^", everything)]
    symbols = {k: symbols[k] for k in present} or symbols
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
            for letter in ("W", "a", "z", "b"):
                k = _layer_of(inner, letter)
                if k is None:
                    continue
                if letter == "W":
                    widths.setdefault(k, rows)
                    widths.setdefault(k - 1, cols)
                else:
                    widths.setdefault(k, rows)
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
            sizes.append(3 if k == first else (2 if k == last else 4))
    from_doc = all(k in widths for k in range(first, last + 1))
    guesses.append(f"widths {sizes} " + ("(the document's shapes)" if from_doc else "(guessed small)"))
    if first != 0:
        guesses.append(f"layers numbered from {first}: a^{first} is the input")
    # Definitions (\equiv) and claims.
    defines, claims = {}, []
    for tex, line, kind in formulas:
        if "\\equiv" in tex:
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
    for tex, line, kind in formulas:
        if kind not in _CLAIMED or "\\equiv" in tex or "=" not in tex:
            continue
        stripped, shapes = _shapes(tex)
        problems = []
        if shapes:
            problems.append("shape annotations removed, not checked: "
                            + ", ".join(f"[{inner}] {r}×{c}" for inner, r, c in shapes))
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
    claims.sort(key=lambda c: c[1])
    layout = _derivative_layout(claims, symbols, ["delta[0]", *defines])
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
        if isinstance(role, dict):
            lines.append(f'{name} = {{ quantity = "{role["quantity"]}", shift = {role["shift"]} }}      # guess')
        else:
            lines.append(f'{name} = "{role}"' + ("      # guess" if role in {"target", "loss", "activation_function", "input"} else ""))
    if first != 0:
        lines.append(f'# guess: the input is a^{first}')
    if defines:
        lines += ["", "[define]"]
        for name, (rhs, tex, line) in defines.items():
            lines.append(f"# line {line}: {tex}")
            lines.append(f'"{name}" = {_toml_string(rhs)}')
    count, unreadable = 0, []
    order = "denominator" if layout else None
    for tex, line, problem, printed in _chains_split(claims, symbols, ["delta[0]", *defines], order):
        count += 1
        try:
            translate(tex, symbols, ["delta[0]", *defines], layout=order)
        except (TexError, ValueError) as error:
            where = column_of.get((printed, line))
            unreadable.append(f"{path}:{line}:{where or 1}: the formula starting here cannot be read: {error}")
        lines += ["", "[[claim]]", f'id   = "L{line}-{count}"', f"tex  = {_toml_string(tex)}",
                  f"text = {_toml_string(printed)}", f'note = "line {line}"']
        if problem:
            lines[-1] = f"note = {_toml_string(f'line {line}; {problem}')}"
    return Draft("\n".join(lines) + "\n", guesses, count, unreadable)


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


def _derivative_layout(claims, symbols, defined) -> int | None:
    """The line of the first formula that prints the chain rule in the denominator layout
    (``∂z/∂b ∂L/∂z``), where the reader says so; None if no formula does."""
    from .derivation.tex import TexError, translate

    for tex, line, _, _ in claims:
        try:
            links = translate(tex, symbols, defined)
        except (TexError, ValueError):
            continue
        if any("in the denominator layout (each factor" in note for link in links for note in link.notes):
            return line
    return None


def _left_side(tex: str) -> str:
    """The left side of a chain: the text before its first ``=`` outside braces (empty if none)."""
    depth = 0
    for k, ch in enumerate(tex):
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "=" and depth == 0:
            return tex[:k].replace("&", " ").strip()
    return ""


def _chains_split(claims, symbols, defined, layout=None):
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
                translate(tex, symbols, defined, layout=layout)
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
