"""One LaTeX printer for every symbolic object of the project, and text that pdflatex accepts.

:class:`ProofPrinter` extends SymPy's ``LatexPrinter`` with a ``_print_<Type>`` method per
project object: activation atoms (their row's ``latex`` name), ``evaluate.Partial`` (∂J/∂θ), the
network's own symbols (``W1[2,3]`` is W^{(1)}_{2,3}) and the matrix-level nodes below, in which
the documents' formulas are written: layer quantities W^{(k)}, δ^{(k)}, the gradient ∂J/∂X, the
entrywise product ⊙, functions applied entrywise, transposes.

Everything the documents print goes through :func:`latex` (mathematics) or :func:`text` (prose
and quoted formulas), and both return plain ASCII: the documents' σ, δ, ŷ, ⊙, ∂, ℓ become LaTeX
macros here, so the output compiles with pdflatex and the packages of texlive-latex-base.
"""

from __future__ import annotations

import re
import unicodedata

import sympy
from sympy import Basic, MatMul, Symbol, sympify
from sympy.core.symbol import Str
from sympy.matrices.expressions.matexpr import MatrixExpr
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE, precedence

from .. import rules

# ------------------------------------------------------------------------ unicode -> LaTeX

_GREEK_MACROS = {"alpha", "beta", "gamma", "delta", "zeta", "eta", "theta", "iota", "kappa", "mu", "nu", "xi",
                 "pi", "rho", "sigma", "tau", "upsilon", "chi", "psi", "omega"}
_GREEK_CAPITALS = {"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}
_GREEK_SPECIAL = {"epsilon": r"\varepsilon", "lamda": r"\lambda", "phi": r"\varphi", "final sigma": r"\varsigma",
                  "omicron": "o"}

# Symbols met in the documents and in the tool's own messages (math-mode LaTeX).
_MATH_SYMBOLS = {
    "·": r"\cdot", "×": r"\times", "±": r"\pm", "‖": r"\|", "′": "'", "″": "''", "−": "-", "∘": r"\circ",
    "⊙": r"\odot", "∂": r"\partial", "∇": r"\nabla", "∀": r"\forall", "∃": r"\exists", "∈": r"\in",
    "≈": r"\approx", "≠": r"\neq", "≡": r"\equiv", "≤": r"\leq", "≥": r"\geq", "→": r"\to", "↦": r"\mapsto",
    "⇒": r"\Rightarrow", "∑": r"\sum", "∏": r"\prod", "√": r"\surd", "∞": r"\infty", "⊤": r"\top",
    "ℓ": r"\ell", "ℝ": r"\mathbb{R}", "ℚ": r"\mathbb{Q}", "ℕ": r"\mathbb{N}", "ℤ": r"\mathbb{Z}",
    "𝟙": r"\mathbf{1}", "½": r"\tfrac{1}{2}", "…": r"\dots", "⋯": r"\cdots", "⟨": r"\langle", "⟩": r"\rangle",
    "∅": r"\emptyset", "⌊": r"\lfloor", "⌋": r"\rfloor", "⌈": r"\lceil", "⌉": r"\rceil", "°": r"^{\circ}",
}
# Prose punctuation (text-mode LaTeX).
_TEXT_SYMBOLS = {"—": "---", "–": "--", "“": "``", "”": "''", "‘": "`", "’": "'", "§": r"\S{}", "…": r"\dots{}",
                 "\u00a0": "~", "«": "<<", "»": ">>"}
_TEXT_ESCAPES = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
                 "%": r"\%", "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}",
                 "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", '"': "''"}
_ACCENTS = {"\u0302": ("hat", "^"), "\u0303": ("tilde", "~"), "\u0304": ("bar", "="), "\u0307": ("dot", "."),
            "\u0308": ("ddot", '"'), "\u0301": ("acute", "'"), "\u0300": ("grave", "`"), "\u030c": ("check", "v")}


def _greek(char: str) -> str | None:
    name = unicodedata.name(char, "")
    match = re.fullmatch(r"GREEK (SMALL|CAPITAL) LETTER (\w+(?: SIGMA)?)", name)
    if not match:
        return None
    small, letter = match.group(1) == "SMALL", match.group(2).lower()
    if small:
        if letter in _GREEK_SPECIAL:
            return _GREEK_SPECIAL[letter]
        return "\\" + letter if letter in _GREEK_MACROS else None
    capital = letter.capitalize()
    if capital == "Lamda":
        capital = "Lambda"
    return "\\" + capital if capital in _GREEK_CAPITALS else unicodedata.normalize("NFKD", char)[0]


def _math_char(char: str) -> str | None:
    """One non-ASCII character as math-mode LaTeX, or None when it has no reading."""
    if char in _MATH_SYMBOLS:
        return _MATH_SYMBOLS[char]
    greek = _greek(char)
    if greek is not None:
        return greek
    decomposition = unicodedata.decomposition(char)
    if decomposition.startswith(("<super>", "<sub>")):
        inner = _math_char_or_ascii(unicodedata.normalize("NFKC", char))
        return ("^{%s}" if decomposition.startswith("<super>") else "_{%s}") % inner
    if decomposition.startswith("<font>"):
        base = unicodedata.normalize("NFKC", char)
        name = unicodedata.name(char, "")
        inner = _math_char_or_ascii(base)
        if "SCRIPT" in name and base.isupper():
            return rf"\mathcal{{{inner}}}"
        if "DOUBLE-STRUCK" in name and base.isupper():
            return rf"\mathbb{{{inner}}}"
        if "BOLD" in name or "DOUBLE-STRUCK" in name:
            return rf"\mathbf{{{inner}}}"
        return inner
    decomposed = unicodedata.normalize("NFD", char)
    if len(decomposed) == 2 and decomposed[1] in _ACCENTS and decomposed[0].isascii():
        return rf"\{_ACCENTS[decomposed[1]][0]}{{{decomposed[0]}}}"
    if decomposed[0].isascii() and decomposed[0].isalnum():
        return decomposed[0]
    return None


def _math_char_or_ascii(char: str) -> str:
    return char if char.isascii() else (_math_char(char) or r"\square")


def math_text(name: str) -> str:
    """A name in math mode: ``ŷ`` → ``\\hat{y}``, ``Lθ`` → ``L\\theta``, ``∂C`` → ``\\partial C``."""
    out = []
    for char in name:
        if char.isascii():
            out.append(char if char.isalnum() or char in "()[],.+-*/=:;! '" else _TEXT_ESCAPES.get(char, char))
        else:
            piece = _math_char_or_ascii(char)
            out.append(piece + (" " if piece[-1].isalpha() and piece.startswith("\\") else ""))
    return "".join(out).strip()


def text(value: str) -> str:
    """Prose (a message, a formula quoted as printed) as text-mode LaTeX, special characters escaped.

    Prose that keeps its formulas (a ``str`` with ``parts``: words and mathematical objects, as
    ``general.Prose``) has the words escaped and the formulas set as mathematics by :func:`latex`."""
    parts = getattr(value, "parts", None)
    if parts is not None:
        return "".join(text(part) if isinstance(part, str) else f"${latex(part)}$" for part in parts)
    out = []
    for char in str(value):
        if char.isascii():
            out.append(_TEXT_ESCAPES.get(char, char))
        elif char in _TEXT_SYMBOLS:
            out.append(_TEXT_SYMBOLS[char])
        else:
            decomposed = unicodedata.normalize("NFD", char)
            if len(decomposed) == 2 and decomposed[1] in _ACCENTS and decomposed[0].isascii() \
                    and unicodedata.category(char).startswith("L") and _greek(char) is None:
                out.append(rf"\{_ACCENTS[decomposed[1]][1]}{{{decomposed[0]}}}")
                continue
            piece = _math_char(char)
            out.append(rf"\ensuremath{{{piece}}}" if piece is not None else rf"[U+{ord(char):04X}]")
    return "".join(out)


# --------------------------------------------------------------------- matrix-level nodes


class _Node(MatrixExpr):
    """A matrix-level node: printed by :class:`ProofPrinter`, instantiated on a network by
    ``calculation.Instantiate``.  ``doit`` leaves it alone (it is notation, not a computation)."""

    def doit(self, **hints):
        return self


def _str(value) -> Str:
    return value if isinstance(value, Str) else Str(value)


class Layer(_Node):
    """A quantity of the network: W^{(k)}, b^{(k)}, z^{(k)}, a^{(k)}, δ^{(k)} (kind W, b, z, a,
    delta; layer k) or the data x, y (layer 0)."""

    def __new__(cls, kind, layer, rows, cols):
        return Basic.__new__(cls, _str(kind), *map(sympify, (layer, rows, cols)))

    kind = property(lambda self: self.args[0].name)
    layer = property(lambda self: int(self.args[1]))
    shape = property(lambda self: (self.args[2], self.args[3]))


class PartialMatrix(_Node):
    """∂f/∂X entry by entry, shaped like X (the true gradient when f is the loss)."""

    def __new__(cls, of, wrt):
        return Basic.__new__(cls, sympify(of), wrt)

    of = property(lambda self: self.args[0])
    wrt = property(lambda self: self.args[1])
    shape = property(lambda self: self.args[1].shape)


class EntrywisePartial(_Node):
    """∂a/∂z of an entrywise map a = g(z), entry by entry (the diagonal of the Jacobian)."""

    def __new__(cls, numerator, denominator):
        return Basic.__new__(cls, numerator, denominator)

    shape = property(lambda self: self.args[1].shape)


class Entrywise(_Node):
    """A scalar function ``body`` of ``variable`` applied to every entry of a matrix."""

    def __new__(cls, body, variable, matrix):
        return Basic.__new__(cls, sympify(body), variable, matrix)

    body = property(lambda self: self.args[0])
    variable = property(lambda self: self.args[1])
    matrix = property(lambda self: self.args[2])
    shape = property(lambda self: self.args[2].shape)

    @property
    def precedence(self):
        return min(precedence(self.body), PRECEDENCE["Func"])


class SoftmaxMatrix(_Node):
    """softmax of each example of Z (columns, or rows with examples as rows)."""

    def __new__(cls, matrix):
        return Basic.__new__(cls, matrix)

    shape = property(lambda self: self.args[0].shape)


class Ones(_Node):
    """A matrix of ones, printed 𝟏_m (a column), 𝟏_mᵀ (a row); ``label`` names its length."""

    def __new__(cls, rows, cols, label):
        return Basic.__new__(cls, sympify(rows), sympify(cols), sympify(label))

    shape = property(lambda self: (self.args[0], self.args[1]))


class Filled(_Node):
    """A matrix every entry of which is ``value`` (printed as the value: 1 − a)."""

    def __new__(cls, value, rows, cols):
        return Basic.__new__(cls, sympify(value), sympify(rows), sympify(cols))

    shape = property(lambda self: (self.args[1], self.args[2]))


class Quotient(_Node):
    """The entrywise quotient X / Y."""

    def __new__(cls, numerator, denominator):
        return Basic.__new__(cls, numerator, denominator)

    shape = property(lambda self: self.args[0].shape)


class ExampleSums(_Node):
    """Each example's sum over units, broadcast over its units: 𝟏𝟏ᵀX (columns) or X𝟏𝟏ᵀ (rows)."""

    precedence = PRECEDENCE["Mul"]

    def __new__(cls, matrix, layout):
        return Basic.__new__(cls, matrix, _str(layout))

    shape = property(lambda self: self.args[0].shape)


# ----------------------------------------------------------------------------- the printer

# A name with a subscript: the subscript is one braced group or a run of letters and digits.
_SUBSCRIPTED = re.compile(r"(?P<base>[^_]+)_(?:\{(?P<braced>[^{}]*)\}|(?P<plain>\w+))(?P<rest>.*)", re.DOTALL)
_NETWORK_SYMBOL = re.compile(r"(?P<stem>W|b|x|y|εz|εa)(?P<layer>\d*)\[(?P<entry>[\d,]+)\]")
_MODEL_SYMBOL = re.compile(r"(?P<stem>[^\W\d]\w*?)(?:\[(?P<member>-?\d+)\](?=\[))?(?:\[(?P<entry>[\d,]+)\])?")
_ALIASES = {"ell": r"\ell", "eps": r"\varepsilon", "lam": r"\lambda", "nabla": r"\nabla"}
LAYER_STEMS = {"delta": r"\delta"}


def layer_name(stem: str, layer) -> str:
    """The documents' layer superscript: W^{(k)} (k may be an expression such as l+1)."""
    return f"{stem}^{{({layer})}}"


def parens(s: str) -> str:
    """Parentheses that grow only around tall material: σ(z^{(1)}), but ∂J/∂z as a fraction gets \\left(."""
    return rf"\left({s}\right)" if any(tall in s for tall in (r"\frac", r"\sum", r"\left")) else f"({s})"


class ProofPrinter(LatexPrinter):
    """SymPy's LaTeX printer taught the project's objects; terms keep the order they were built in."""

    printmethod = "_latex"
    # fold_partials: ∂J/∂X on one line (for text and tables) instead of a fraction
    _default_settings = {**LatexPrinter._default_settings, "order": "none", "fold_partials": False}

    def __init__(self, settings=None):
        super().__init__(settings)
        self._placeholders: dict = {}
        self._entrywise = 0

    def _print(self, expr, **kwargs):
        # Atom classes are named after their rows ("tanh", "exp"), which could shadow SymPy's
        # own _print_<name> methods: dispatch them here.
        if isinstance(expr, rules.Atom):
            return self._print_Atom(expr, **kwargs)
        return super()._print(expr, **kwargs)

    # ---- scalars: atoms, partial derivatives, the network's symbols
    def _add_parens(self, s: str) -> str:
        return parens(s)

    def _print_Atom(self, expr, exp=None):
        rule = expr.rule
        inner = ", ".join(self._print(a) for a in expr.args[rule.index_args:])
        name = rule.latex + (f"_{{{int(expr.args[0]) + 1}}}" if rule.index_args else "")
        body = name + self._add_parens(inner)
        return rf"{body}^{{{exp}}}" if exp else body

    def _print_Derivative(self, expr):
        """g′(x) for the derivative of an activation atom in its own argument."""
        inner = expr.expr
        if isinstance(inner, rules.Atom) and not inner.rule.index_args and len(expr.variables) == 1 \
                and inner.args == (expr.variables[0],):
            return inner.rule.latex + "'" + self._add_parens(self._print(inner.args[0]))
        return super()._print_Derivative(expr)

    def _partial(self, of: str, wrt: str) -> str:
        if self._settings["fold_partials"]:
            return rf"\partial {of}/\partial {wrt}"
        return rf"\frac{{\partial {of}}}{{\partial {wrt}}}"

    def _print_Partial(self, expr, exp=None):
        body = self._partial(self._print(expr.label), self.variable(expr.wrt))
        return rf"\left({body}\right)^{{{exp}}}" if exp else body

    def variable(self, symbol) -> str:
        """A differentiation variable: the perturbation ε of z_k stands for z_k itself."""
        match = _NETWORK_SYMBOL.fullmatch(symbol.name) if isinstance(symbol, Symbol) else None
        if match and match["stem"] in ("εz", "εa"):
            return layer_name(match["stem"][1], match["layer"]) + f"_{{{match['entry']}}}"
        return self._print(symbol)

    def _print_Symbol(self, expr, style="plain"):
        if expr in self._placeholders:
            return self._placeholders[expr]
        match = _NETWORK_SYMBOL.fullmatch(expr.name)
        if match:
            stem, layer, entry = match["stem"], match["layer"], match["entry"]
            if stem in ("εz", "εa"):
                return rf"\varepsilon^{{{stem[1]}({layer})}}_{{{entry}}}"
            return (layer_name(stem, layer) if layer else stem) + f"_{{{entry}}}"
        match = _MODEL_SYMBOL.fullmatch(expr.name)
        if match:  # a [model]'s entries: gamma[1] → γ₁, h[2][1] → h^{(2)}_1
            stem = self.name(match["stem"], style)
            if match["member"] is not None:
                stem = layer_name(stem, match["member"])
            return f"{{{stem}}}_{{{match['entry']}}}" if match["entry"] else stem
        return self.name(expr.name, style)

    def name(self, name: str, style: str = "plain") -> str:
        """A document's name: ``sigma`` → σ, ``ŷ`` → ŷ, ``ell`` → ℓ, ``a_1`` → a₁, ``g_k′`` → g_k′
        (the prime on the function, not in its subscript)."""
        if name in _ALIASES:
            return _ALIASES[name]
        primes = len(name) - len(name.rstrip("′'"))
        if primes and name[:-primes]:
            return self.name(name[:-primes], style) + "'" * primes
        if name.isascii():
            return super()._print_Symbol(Symbol(name), style=style)
        match = _SUBSCRIPTED.fullmatch(name)
        if match:  # δ_k, ∇φ_{k+1}, (Σ_e ℓ): a subscript, as SymPy prints a_1, and what follows it
            subscript = match["braced"] if match["braced"] is not None else match["plain"]
            rest = match["rest"]
            return (f"{self.name(match['base'], style)}_{{{_ascii_math(subscript)}}}"
                    + (" " + self.name(rest.lstrip(), style) if rest.strip() else rest))
        return math_text(name)

    def _as_ordered_terms(self, expr, order=None):
        """A sum as the documents write it: a − y, k + 1, [i = j] − ŷ_j (SymPy's lexicographic
        order; its argument order, −y + a, 1 + k, is not the order anything was written in)."""
        return expr.as_ordered_terms() if isinstance(expr, sympy.Add) else super()._as_ordered_terms(expr, order)

    def _print_KroneckerDelta(self, expr, exp=None):
        """[i = j], as the documents' Jacobians write it (δ is the backprop delta here)."""
        i, j = (self._print(a) for a in expr.args)
        return rf"[{i} = {j}]" + (f"^{{{exp}}}" if exp else "")

    def _print_Indexed(self, expr):
        """An entry: W_{q,i}; a name that has a subscript already is bracketed, (W_{k+1})_{q,i}."""
        base = self._print(expr.base)
        if "_" in base:
            base = parens(base)
        return base + "_{%s}" % ",".join(self._print(i) for i in expr.indices)

    def _print_Mul(self, expr):
        """Functions before sums, as the documents write σ(z)(1 − σ(z)); inside an entrywise
        function, a product of functions of matrices is entrywise: ⊙.  A fraction's sums and
        derivatives follow it, (1/m) Σ_e ℓ_e and (λ/2) Σ_k ‖W_k‖², rather than sit in its numerator."""
        coefficient, factors = expr.as_coeff_mul()
        factors = sorted(factors, key=_factor_rank)
        quotient = not coefficient.is_Integer or any(f.is_Pow and f.exp.is_negative for f in factors)
        tall = [f for f in factors if type(f).__name__ in _TALL]
        if quotient and tall and len(tall) < len(factors) + (coefficient != 1) and not self._entrywise:
            rest = sympy.Mul(coefficient, *(f for f in factors if f not in tall), evaluate=False)
            shown = [self._print(f) if len(tall) == 1 else self.parenthesize(f, PRECEDENCE["Mul"]) for f in tall]
            return " ".join([self._print(rest)] + shown)
        if quotient and not self._entrywise:  # SymPy's printer makes the fraction
            return super()._print_Mul(sympy.Mul(coefficient, *factors, evaluate=False) if coefficient != 1
                                      else sympy.Mul(*factors, evaluate=False))
        sign = ""
        if coefficient < 0:
            sign, coefficient = "- ", -coefficient
        parts = [self.parenthesize(f, PRECEDENCE["Mul"]) for f in factors]
        prefix = "" if coefficient == 1 else self._print(coefficient) + " "
        return sign + prefix + (r" \odot " if self._entrywise else " ").join(parts)

    # ---- matrices
    def _print_Layer(self, expr):
        stem = LAYER_STEMS.get(expr.kind, expr.kind)
        return stem if expr.kind in ("x", "y") else layer_name(stem, expr.layer)

    def _print_PartialMatrix(self, expr):
        return self._partial(self._print(expr.of), self._print(expr.wrt))

    def _print_EntrywisePartial(self, expr):
        return self._partial(*(self._print(a) for a in expr.args))

    def _print_Entrywise(self, expr):
        argument = self._print(expr.matrix)
        if precedence(expr.matrix) < PRECEDENCE["Func"]:
            argument = self._add_parens(argument)
        saved = self._placeholders.get(expr.variable)
        self._placeholders[expr.variable] = argument
        self._entrywise += 1
        try:
            return self._print(expr.body)
        finally:
            self._entrywise -= 1
            if saved is None:
                del self._placeholders[expr.variable]
            else:
                self._placeholders[expr.variable] = saved

    def _print_SoftmaxMatrix(self, expr):
        return rules.SOFTMAX.latex + self._add_parens(self._print(expr.args[0]))

    def _print_Ones(self, expr):
        rows, cols, label = expr.args
        return self._ones(rows, cols, label)

    def _print_OneMatrix(self, expr):
        rows, cols = expr.shape
        return self._ones(rows, cols, rows if cols == 1 else cols)

    def _ones(self, rows, cols, length) -> str:
        """𝟏_m (a column), 𝟏_mᵀ (a row: b 𝟏_mᵀ broadcasts b over the m examples), 𝟏_{r×c}."""
        if cols == 1:
            return rf"\mathbf{{1}}_{{{self._print(length)}}}"
        if rows == 1:
            return rf"\mathbf{{1}}_{{{self._print(length)}}}^{{\top}}"
        return rf"\mathbf{{1}}_{{{self._print(rows)}\times {self._print(cols)}}}"

    def _print_Filled(self, expr):
        return self._print(expr.args[0])

    def _print_Quotient(self, expr):
        numerator, denominator = expr.args
        return rf"\frac{{{self._print(numerator)}}}{{{self._print(denominator)}}}"

    def _print_ExampleSums(self, expr):
        inner = self.parenthesize(expr.args[0], PRECEDENCE["Mul"])
        ones = r"\mathbf{1}\mathbf{1}^{\top}"
        return f"{ones} {inner}" if expr.args[1].name == "columns" else f"{inner} {ones}"

    def _print_Transpose(self, expr):
        inner = expr.arg
        if isinstance(inner, Layer) and inner.kind in ("x", "y"):
            return rf"{self._print(inner)}^{{\top}}"
        return self._add_parens(self._print(inner)) + r"^{\top}"

    def _print_HadamardProduct(self, expr):
        return r" \odot ".join(self.parenthesize(arg, PRECEDENCE["Mul"]) for arg in expr.args)

    def _print_MatMul(self, expr):
        parts = []
        for arg in expr.args:
            if arg == -1 and not parts:
                parts.append("-")
            elif isinstance(arg, MatrixExpr):
                parts.append(self.parenthesize(arg, PRECEDENCE["Mul"]))
            else:
                parts.append(self.parenthesize(arg, PRECEDENCE["Mul"], strict=True))
        return " ".join(parts)

    def _print_MatAdd(self, expr):
        """Terms in the order they were built, those with a minus sign last — a − y, not SymPy's
        −y + a (SymPy's Add printer negates terms with ``doit``, which would reorder the ⊙
        products inside them)."""
        out = []
        terms = sorted(expr.args, key=_negative_term)
        for term in terms:
            negative = _negative_term(term)
            if negative:
                coefficient, rest = -term.args[0], term.args[1:]
                if coefficient != 1:
                    term = MatMul(coefficient, *rest)
                else:
                    term = rest[0] if len(rest) == 1 else MatMul(*rest)
            printed = self.parenthesize(term, PRECEDENCE["Add"], strict=True)
            out.append(("- " if negative else "+ ") + printed if out else ("- " if negative else "") + printed)
        return " ".join(out)


def _negative_term(term) -> bool:
    return bool(isinstance(term, MatMul) and term.args[0].is_number and term.args[0] < 0)


# Factors printed after a fraction rather than in its numerator.
_TALL = {"Sum", "Partial", "Gradient", "Derivative"}


def _factor_rank(factor) -> int:
    """Numbers, names and functions first, then powers, then sums."""
    if factor.is_Add:
        return 2
    return 1 if factor.is_Pow else 0


_printer = ProofPrinter()


_folding_printer = ProofPrinter({"fold_partials": True})


def latex(expr, *, fold: bool = False) -> str:
    """``expr`` (a SymPy expression, a project atom or a matrix-level node) as LaTeX math;
    ``fold`` writes ∂J/∂X on one line, for text and tables.  Always ASCII: an object's own
    ``_latex`` may return characters like ℓ, which become macros here."""
    printed = (_folding_printer if fold else _printer).doprint(expr)
    return printed if printed.isascii() else _ascii_math(printed)


def _ascii_math(printed: str) -> str:
    out = []
    for char in printed:
        if char.isascii():
            out.append(char)
        else:
            piece = _math_char_or_ascii(char)
            out.append(piece + (" " if piece[-1].isalpha() and piece.startswith("\\") else ""))
    return "".join(out)


def name(document_name: str) -> str:
    """A document's symbol name as LaTeX math (``sigma`` → σ, ``ŷ`` → ŷ)."""
    return _printer.name(document_name)


def variable(symbol) -> str:
    """A network symbol as a differentiation variable (ε of z_k prints as z_k)."""
    return _printer.variable(symbol)


__all__ = ["ProofPrinter", "latex", "text", "math_text", "name", "variable", "Layer", "PartialMatrix",
           "EntrywisePartial", "Entrywise", "SoftmaxMatrix", "Ones", "Filled", "Quotient", "ExampleSums",
           "layer_name", "parens"]
