"""Read a LaTeX formula (as printed in a paper) into the claim language.

``translate(tex, symbols, defined)`` returns one ``TexLink`` per ``=`` of a chain ``a = b = c``
(each link is "left side of the chain = this expression").  Any reading that is a guess is
recorded in ``TexLink.notes``; LaTeX the reader cannot read raises ``TexError`` with the column.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, replace
from typing import Iterable, Mapping

from .language import FUNCTION_QUANTITIES, LAYERED, QUANTITIES
from pylatexenc.latexwalker import (LatexCharsNode, LatexGroupNode, LatexMacroNode,
                                    LatexWalker, LatexWalkerError, LatexSpecialsNode)


class TexError(ValueError):
    """Unreadable LaTeX; ``offset`` is the 0-based character where reading stopped."""

    def __init__(self, message: str, offset: int, tex: str = ""):
        self.message = message
        self.offset = offset
        line = tex.count("\n", 0, offset) + 1
        column = offset - (tex.rfind("\n", 0, offset) + 1) + 1
        where = f"line {line}, column {column}" if "\n" in tex else f"column {column}"
        super().__init__(f"{message} at {where}")


@dataclass(frozen=True)
class TexLink:
    lhs: str
    rhs: str
    start: int
    end: int
    notes: tuple[str, ...] = ()
    shape: tuple | None = None  # (rows, cols) formulas of a shape annotation on the right side
    line: int = 1  # where the link's left side starts (1-based), for a formula of several lines
    column: int = 1
    for_range: str | None = None  # a trailing quantifier \forall k = 1(1)L, as a claim's for: k in 1..L


GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "eta", "theta", "lambda",
         "mu", "sigma", "tau", "phi", "varphi", "psi", "omega", "xi", "rho", "kappa", "nu"}
IGNORED = {",", ";", "!", " ", "quad", "qquad", "displaystyle", "right", "big", "Big",
           "bigg", "Bigg", "mathbf", "boldsymbol", "vec", "mathrm", "bm", "bf", "underline", "mathit",
           "limits"}
PRODUCTS = {"odot": "∘", "circ": "∘", "cdot": "*", "cdotp": "*", "times": "*"}
FUNCS = {"log": "log", "ln": "log", "exp": "exp", "tanh": "tanh"}
NAMES = {"ell": "ell"}
NORMS = {"|": "|", "lVert": "rVert", "Vert": "Vert"}  # the macro that opens a norm → the one that closes it
CALLS = {"diag", "trace", "softmax", "sigmoid", "tanh", "relu", "outer", "ones", "norm", "sqrt"}


MATRIX_ROLES = {"weight"}
VECTOR_ROLES = {"bias", "preactivation", "activation", "input", "output", "target", "onehot", "label"}
NUMBER_ROLES = {"loss", "cost", "objective", "scalar", "depth", "batch"}
ELEMENTWISE_CALLS = {"log", "exp", "sqrt", "tanh", "sigmoid", "relu", "sigma", "σ"}


def _operator(product, left):
    """The operator ``_product`` put after ``left`` in ``product`` (``left @ right`` → ``@``)."""
    rest = product[len(left):].split() if product.startswith(left) else []
    return rest[0] if rest else ""


def _role(value):
    """The quantity a [symbols] entry names (a role, or a table with its quantity)."""
    return str(value.get("quantity")) if isinstance(value, Mapping) else str(value)


def _kind(text, roles):
    """What a reading denotes, as far as the names' roles tell: "scalar", "col", "row", "matrix"
    or None (unknown).  Used only to choose between the readings of a product sign."""
    import ast

    from .language import preprocess
    try:
        tree = ast.parse(preprocess(text), mode="eval").body
    except SyntaxError:
        return None
    return _node_kind(tree, roles)


def _affine_contraction(left, left_kind, right, roles):
    """``v ∂(W a + b)/∂W`` — a vector times the derivative of a vector affine in the matrix W (a
    3-tensor the claim language does not write) — read as the contraction Σᵢ vᵢ ∂uᵢ/∂W = v aᵀ, as
    derivations simplify it: (reading, note), or None when ``right`` is not such a derivative.  The
    vector u is ``W @ a + b`` as printed, or the preactivation ``z[l]`` of W's own layer, whose
    forward definition is ``W[l] @ a[l-1] + b[l]`` (noted: the reading takes the network's)."""
    import ast

    from .language import preprocess
    if left_kind not in ("col", None):  # a matrix, a number or a row: the product as printed
        return None
    try:
        tree = ast.parse(preprocess(right), mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(tree, ast.Call) and getattr(tree.func, "id", "") == "jacobian" and len(tree.args) == 2):
        return None
    top, by = tree.args
    if _node_kind(by, roles) != "matrix":
        return None
    def holds_by(node):
        return ast.dump(by) in {ast.dump(n) for n in ast.walk(node)}

    added = top.right if isinstance(top, ast.BinOp) and isinstance(top.op, ast.Add) else None
    term = top.left if added is not None else top
    if isinstance(term, ast.BinOp) and isinstance(term.op, ast.MatMult) and ast.dump(term.left) == ast.dump(by):
        if _node_kind(term.right, roles) != "col" or holds_by(term.right) or (added is not None and holds_by(added)):
            return None  # not affine in W with a vector coefficient
        factor, how = ast.unparse(term.right), ""
    elif isinstance(top, ast.Subscript) and isinstance(top.value, ast.Name) and isinstance(by, ast.Subscript) \
            and _role(roles.get(top.value.id, "")) == "preactivation" \
            and not isinstance(top.slice, (ast.Tuple, ast.Slice)) and ast.dump(top.slice) == ast.dump(by.slice):
        activation = next((n for n, v in roles.items() if _role(v) == "activation"), None)
        if activation is None:
            return None
        layer = top.slice.value - 1 if isinstance(top.slice, ast.Constant) and isinstance(top.slice.value, int) \
            else f"{ast.unparse(top.slice)} - 1"
        factor = f"{activation}[{layer}]"
        how = f", {ast.unparse(top)} being {ast.unparse(by)} @ {factor} + its bias by the network's forward definition"
    else:
        return None
    read = f"({left}) @ ({factor}).T"
    return read, (f"read {left} times {right} (a vector times the derivative of a vector by a matrix) as "
                  f"the contraction {read}{how}")


def _column_times_jacobian(left, left_kind, right, roles):
    """``v ∂u/∂b`` with v a column and ∂u/∂b the Jacobian of two vectors (u's length rows): v stands
    for the row vᵀ, as the chain rule ∂C/∂b = ∂C/∂u ∂u/∂b has it, and the result for the column
    ∂C/∂b: ``jacobian(u, b).T @ v`` (reading, note); None otherwise.  A column times a matrix does
    not type, so no other reading is lost.  A chain of derivatives (``∂C/∂y ∂y/∂a``) is read in the
    numerator layout as a whole instead (``_chain_layout``)."""
    import ast

    from .language import preprocess
    if left_kind != "col":
        return None
    try:
        tree, before = (ast.parse(preprocess(text), mode="eval").body for text in (right, left))
    except SyntaxError:
        return None
    if any(isinstance(n, ast.Call) and getattr(n.func, "id", "") in ("grad", "jacobian") for n in ast.walk(before)):
        return None
    if not (isinstance(tree, ast.Call) and getattr(tree.func, "id", "") == "jacobian" and len(tree.args) == 2
            and all(_node_kind(arg, roles) == "col" for arg in tree.args)):
        return None
    read = f"{right}.T @ ({left})"
    return read, (f"read the column {left} times {right} as {read}: the column as a row (vᵀ ∂u/∂b), "
                  "the result as a column")


def _node_kind(node, roles):
    import ast
    if isinstance(node, ast.Constant):
        return "scalar"
    if isinstance(node, ast.Name):
        role = _role(roles.get(node.id, ""))
        return ("matrix" if role in MATRIX_ROLES else "col" if role in VECTOR_ROLES
                else "scalar" if role in NUMBER_ROLES else None)
    if isinstance(node, ast.Subscript):
        if isinstance(node.value, ast.Subscript):  # X[l][i]: an entry; X[l][:, j] a column
            index = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            sliced = [isinstance(i, ast.Slice) for i in index]
            if not any(sliced):
                return "scalar"
            return {(True, False): "col", (False, True): "row"}.get(tuple(sliced)) if len(index) == 2 else None
        if isinstance(node.value, ast.Name):
            role = _role(roles.get(node.value.id, ""))
            if role in LAYERED:  # X[l]: the layer's quantity
                return _node_kind(node.value, roles)
            return "scalar" if role in QUANTITIES else None  # y[i]: an entry
        return None
    if isinstance(node, ast.Attribute) and node.attr == "T":
        return {"col": "row", "row": "col"}.get(_node_kind(node.value, roles), _node_kind(node.value, roles))
    if isinstance(node, ast.UnaryOp):
        return _node_kind(node.operand, roles)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id.removesuffix("__prime")
        args = node.args
        if name == "grad" and len(args) == 2:
            return _node_kind(args[1], roles)
        if name in ("jacobian", "diag", "outer"):
            return "matrix"
        if name in ("norm", "sum", "trace", "mean"):
            return "scalar"
        if len(args) == 1 and (name in ELEMENTWISE_CALLS or _role(roles.get(name, "")) in FUNCTION_QUANTITIES):
            return _node_kind(args[0], roles)
        return None
    if isinstance(node, ast.BinOp):
        left, right = _node_kind(node.left, roles), _node_kind(node.right, roles)
        if isinstance(node.op, ast.MatMult):
            return {("matrix", "col"): "col", ("row", "col"): "scalar", ("col", "row"): "matrix",
                    ("matrix", "matrix"): "matrix", ("row", "matrix"): "row"}.get((left, right))
        if left == "scalar":
            return right
        if right == "scalar" or right is None:
            return left
        return left if left == right else None
    return None


def _greek_letter(name):
    import unicodedata
    try:
        return unicodedata.lookup(f"GREEK SMALL LETTER {name.upper()}")
    except KeyError:
        return name


INNER_ENVIRONMENTS = {"cases"}  # environments read inside a formula (an align's rows are read by translate)
RELATIONS = {"=": "==", "<": "<", ">": ">", "neq": "!=", "ne": "!=", "leq": "<=", "le": "<=", "geq": ">=",
             "ge": ">=", "lt": "<", "gt": ">"}
NEGATED = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
OTHERWISE = {"otherwise", "else", "elsewhere", "o.w.", "ow"}
VECTOR_MARKS = {"sim", "rightarrow", "to", "longrightarrow", "leftrightarrow"}


def _is_indicator(node):
    """``\\mathbb{1}`` or ``\\mathbf{1}`` (also ``\\boldsymbol``, ``\\bm``): the indicator's (or ones') 1."""
    if not isinstance(node, LatexMacroNode) or node.macroname not in ("mathbb", "mathbf", "boldsymbol", "bm"):
        return False
    argd = getattr(node, "nodeargd", None)
    args = [a for a in (argd.argnlist if argd else []) if a is not None]
    if len(args) != 1:
        return False
    inner = args[0].nodelist if isinstance(args[0], LatexGroupNode) else [args[0]]
    chars = [n for n in inner if not (isinstance(n, LatexCharsNode) and not n.chars.strip())]
    return len(chars) == 1 and isinstance(chars[0], LatexCharsNode) and chars[0].chars.strip() == "1"


def _text_word(tok):
    """The words of a ``\\text{…}`` token (lower case, stripped), or None for any other token."""
    if tok is None or tok.kind != "macro" or tok.value not in ("text", "textrm", "mbox", "textit", "mathrm"):
        return None
    argd = getattr(tok.node, "nodeargd", None)
    args = [a for a in (argd.argnlist if argd else []) if a is not None]
    if not args:
        return None
    nodes = args[0].nodelist if isinstance(args[0], LatexGroupNode) else [args[0]]
    return " ".join("".join(n.chars for n in nodes if isinstance(n, LatexCharsNode)).split()).lower()


class _Tok:
    __slots__ = ("kind", "value", "pos", "node", "_args")

    def __init__(self, kind, value, pos, node=None):
        self.kind, self.value, self.pos, self.node, self._args = kind, value, pos, node, None


def _tokens(nodes, tex, names=None):
    """The tokens of ``nodes``; with ``names`` (see :func:`spellings`), each printed spelling of a
    name is one ``name`` token."""
    out = []
    for node in nodes or ():
        if node is None:
            continue
        if isinstance(node, LatexCharsNode):
            for k, ch in enumerate(node.chars):
                if ch.isspace():
                    continue
                out.append(_Tok("char", ch, node.pos + k))
        elif isinstance(node, LatexGroupNode):
            script = bool(out) and out[-1].kind == "char" and out[-1].value in "^_"
            out.append(_Tok("group", _tokens(node.nodelist, tex, _outside_scripts(names) if script else names),
                            node.pos, node))
        elif _is_indicator(node):  # \mathbb{1}, \mathbf{1}: an indicator (or ones) before a subscript
            out.append(_Tok("indicator", "1", node.pos, node))
        elif isinstance(node, LatexMacroNode) and node.macroname in IGNORED:
            argd = getattr(node, "nodeargd", None)  # \mathbf{W}: the argument stands for itself
            out.extend(_tokens([a for a in (argd.argnlist if argd else []) if a is not None], tex, names))
        elif isinstance(node, LatexMacroNode):
            out.append(_Tok("macro", node.macroname, node.pos, node))
        elif isinstance(node, LatexSpecialsNode):
            out.append(_Tok("char", node.specials_chars, node.pos))
        elif getattr(node, "environmentname", None) in INNER_ENVIRONMENTS:
            out.append(_Tok("env", node.environmentname, node.pos, node))
        elif getattr(node, "environmentname", None) in MATRICES:
            out.append(_Tok("matrix", _matrix_cells(node, tex, names), node.pos, node))
        elif getattr(node, "environmentname", None):
            raise TexError(f"cannot read the environment {node.environmentname}", node.pos, tex)
        else:
            raise TexError(f"cannot read {type(node).__name__[5:-4].lower()} here", node.pos, tex)
    return _named(out, names) if names else out


def _key(tok):
    """What a token is, position aside: spellings are compared by it."""
    if tok.kind == "group":
        return ("{", tuple(_key(t) for t in tok.value))
    if tok.kind == "macro":
        argd = getattr(tok.node, "nodeargd", None)
        args = [a for a in (argd.argnlist if argd else []) if a is not None]
        parts = []
        for arg in args:  # \hat y and \hat{y} are one spelling
            inner = _tokens([arg], "")
            if len(inner) == 1 and inner[0].kind == "group":
                inner = inner[0].value
            parts.append(tuple(_key(t) for t in inner))
        return ("\\", tok.value, tuple(parts))
    return (tok.kind, tok.value)


def spellings(names: Mapping[str, str] | None) -> list[tuple[tuple, str, str]]:
    """A file's ``[tex]`` table (printed LaTeX → claim-language name) as token patterns, longest
    first, so that ``\\mathcal{L}(\\theta)`` wins over ``\\mathcal{L}``."""
    out = []
    for printed, name in (names or {}).items():
        try:
            nodes, _, _ = LatexWalker(printed, tolerant_parsing=False).get_latex_nodes()
            toks = _tokens(nodes, printed)
        except (LatexWalkerError, TexError) as error:
            first = str(error).splitlines()[0] if str(error).strip() else type(error).__name__
            raise TexError(f"[tex] {printed!r}: cannot read the spelling ({first})", 0, printed) from None
        if not toks:
            raise TexError(f"[tex] {printed!r}: an empty spelling", 0, printed)
        out.append((tuple(_key(t) for t in toks), name, printed))
    out.sort(key=lambda entry: -len(entry[0]))
    return out


def _outside_scripts(names):
    """The spellings matched inside a sub- or superscript: not the one-letter ones — there a
    letter is an index (the L of a^L is the layer even when [tex] spells the loss L)."""
    return [entry for entry in names or () if len(entry[0]) > 1 or entry[0][0][0] != "char"]


def _named(toks, names):
    """``toks`` with every spelling of ``names`` replaced by one ``name`` token (a one-letter
    spelling not right after ``^`` or ``_``)."""
    out, i = [], 0
    keys = [_key(t) for t in toks]
    inside = _outside_scripts(names)
    while i < len(toks):
        script = i > 0 and toks[i - 1].kind == "char" and toks[i - 1].value in "^_"
        for pattern, name, printed in (inside if script else names):
            if tuple(keys[i:i + len(pattern)]) == pattern:
                out.append(_Tok("name", name, toks[i].pos))
                i += len(pattern)
                break
        else:
            out.append(toks[i])
            i += 1
    return out


class _Parser:
    names: list = []  # the file's [tex] spellings, as spellings() gives them
    examples: tuple = ()  # the indices of the enclosing sums over the examples (\sum_{i=1}^{N}, N the batch)
    layout: str | None = None  # the document's layout of derivatives: None (as printed) or "denominator"
    renamed: dict = {}  # summation indices renamed in the sum being read (never mutated: replaced)

    def __init__(self, toks, tex, layered, notes, end):
        self.t, self.i, self.tex, self.layered, self.notes = toks, 0, tex, layered, notes
        self.end = end
        self.norms = 0
        self.closers = []  # the macro that closes each norm being read

    def peek(self):
        while self.i < len(self.t) and self.t[self.i].kind == "macro" and self.t[self.i].value in IGNORED:
            self.i += 1
        return self.t[self.i] if self.i < len(self.t) else None

    def pos(self):
        tok = self.peek()
        return tok.pos if tok else self.end

    def fail(self, msg):
        raise TexError(msg, self.pos(), self.tex)

    def sub(self, tok):
        end = tok.node.pos + tok.node.len if tok.node is not None else self.end
        return self._child(tok.value, end)

    def _child(self, toks, end):
        p = _Parser(toks, self.tex, self.layered, self.notes, end)
        p.scalars, p.symbols, p.perlayer, p.shapes = self.scalars, self.symbols, self.perlayer, self.shapes
        p.names, p.renamed = self.names, self.renamed
        p.examples, p.layout = self.examples, self.layout
        return p

    def macro_arg(self, mtok):
        """The next argument of macro ``mtok``: pylatexenc attaches known macros' arguments."""
        pending = getattr(mtok, "_args", None)
        if pending is None:
            argd = getattr(mtok.node, "nodeargd", None)
            pending = [a for a in (argd.argnlist if argd else []) if a is not None]
            mtok._args = pending
        if pending:
            node = pending.pop(0)
            toks = _tokens([node], self.tex, self.names)
            tok = toks[0]
            if tok.kind == "group":
                return self.sub(tok), tok
            return self._child(toks, node.pos + node.len), tok
        return self.arg()

    def arg(self):
        tok = self.peek()
        if tok is None:
            self.fail("missing argument")
        self.i += 1
        if tok.kind == "group":
            p = self.sub(tok)
            return p, tok
        return self._child([tok], tok.pos + 1), tok

    def parse_all(self):
        e = self.expr()
        if self.peek() is not None:
            self.fail(f"unexpected '{self._show(self.peek())}'")
        return e

    def _show(self, tok):
        if tok.kind == "matrix":
            return f"\\begin{{{tok.node.environmentname}}}"
        return "\\" + tok.value if tok.kind == "macro" else ("{" if tok.kind == "group" else tok.value)

    def expr(self):
        return self.expr_scalar()[0]

    def expr_scalar(self):
        """The expression and whether it is known to be a scalar."""
        tok = self.peek()
        negative = tok is not None and tok.kind == "char" and tok.value == "-"
        if negative:
            self.i += 1
        out, scalar = self.term()
        out = "-" + out if negative else out
        while (tok := self.peek()) is not None and tok.kind == "char" and tok.value in "+-":
            self.i += 1
            rhs, rs = self.term()
            out, scalar = f"{out} {tok.value} {rhs}", scalar and rs
        return out, scalar

    def _starts_atom(self, tok):
        if tok is None:
            return False
        if tok.kind == "char":
            if tok.value == "|":  # ||x|| opens a norm, unless it closes the one being read
                return self._bars() and not (self.closers and self.closers[-1] == "||")
            return tok.value.isalnum() or tok.value in "(["
        if tok.kind in ("group", "name", "matrix"):
            return True
        if self.norms and tok.value == self.closers[-1]:
            return False  # the \| that closes a norm
        return tok.value not in PRODUCTS and tok.value not in ("right",)

    def term(self):
        out, scalar = self.factor()
        ops = set()  # the products of this term, to note a matrix product mixed with an elementwise one
        while True:
            tok = self.peek()
            if tok is not None and (tok.kind == "macro" and tok.value in PRODUCTS
                                    or tok.kind == "char" and tok.value == "*"):
                self.i += 1
                rhs, rs = self.factor()
                product = self._product(tok, out, scalar, rhs, rs)
                ops.add(_operator(product, out))
                out, scalar = product, scalar and rs
            elif tok is not None and tok.kind == "char" and tok.value == "/":
                self.i += 1
                rhs, rs = self.factor()
                out, scalar = f"{out} / {rhs}", scalar and rs
            elif self._starts_atom(tok):
                rhs, rs = self.factor()
                product = self._product(None, out, scalar, rhs, rs)
                ops.add(_operator(product, out))
                out, scalar = product, scalar and rs
            else:
                if {"@", "∘"} <= ops:
                    self.notes.append(f"read {out} left to right, as printed without parentheses "
                                      "(a matrix product and an elementwise one)")
                return self._chain_layout(out), scalar

    def _product(self, sign, left, ls, right, rs):
        """``left sign right`` (``sign`` None for two factors written side by side).  Side by side is
        the matrix product, except between two vectors (then elementwise, noted); ``\\cdot`` between
        two non-scalars is the matrix product (as ``W \\cdot x`` is printed), ``\\times`` and ``*``
        the elementwise one; each noted."""
        kinds = (_kind(left, self.symbols), _kind(right, self.symbols))
        if ls or rs or "scalar" in kinds:
            return f"{left} * {right}"
        if sign is None:
            contracted = _affine_contraction(left, kinds[0], right, self.symbols) or \
                _column_times_jacobian(left, kinds[0], right, self.symbols)
            if contracted is not None:
                read, note = contracted
                self.notes.append(note)
                return read
            if kinds[0] == kinds[1] and kinds[0] in ("col", "row"):
                self.notes.append(f"read {left} and {right} side by side as the elementwise product "
                                  "(two vectors have no matrix product)")
                return f"{left} ∘ {right}"
            return f"{left} @ {right}"
        if sign.kind == "char":  # a * b
            self.notes.append(f"read * between {left} and {right} as the elementwise product "
                              "(a scalar factor broadcasts)")
            return f"{left} ∘ {right}"
        op = PRODUCTS[sign.value]
        if op != "*":
            return f"{left} {op} {right}"
        if sign.value in ("cdot", "cdotp"):
            self.notes.append(f"read \\{sign.value} between {left} and {right} as the matrix product")
            return f"{left} @ {right}"
        self.notes.append(f"read \\{sign.value} between {left} and {right} as the elementwise product "
                          "(a scalar factor broadcasts)")
        return f"{left} * {right}"

    def factor(self):
        """One factor: a name with its scripts, a call, a fraction, …; ``dW^{[l]}`` the loss's gradient."""
        loss = self._gradient_shorthand()
        base, scalar = self._factor()
        if loss is None:
            return base, scalar
        self.notes.append(f"read d{base} as the gradient of the loss {loss} by {base}")
        return f"grad({loss}, {base})", scalar

    def _gradient_shorthand(self):
        """``dW``, ``dZ^{[l]}`` (a d written against a per-layer name, d mapped to nothing): the
        gradient of the loss by that quantity, as lecture notes abbreviate ∂J/∂W — the loss's name,
        with the d consumed, or None."""
        tok = self.peek()
        nxt = self.t[self.i + 1] if tok is not None and self.i + 1 < len(self.t) else None
        if tok is None or tok.kind != "char" or tok.value != "d" or "d" in self.symbols or nxt is None \
                or nxt.kind != "char" or nxt.pos != tok.pos + 1 or not nxt.value.isalpha() \
                or self._role(nxt.value) not in ENTRY_RANK:
            return None
        losses = [k for k, v in self.symbols.items() if _role(v) == "loss"]
        if len(losses) != 1:
            return None
        self.i += 1
        return losses[0]

    def _factor(self):
        base, scalar, name = self.atom()
        sup = sub = packed = None  # a name's layer superscript and entry subscript, read together
        while (tok := self.peek()) is not None and tok.kind == "char" and tok.value in "^_'":
            self.i += 1
            if tok.value == "'":
                if self._primed_name(name, sup, sub):  # i', an index or a name of its own: i_prime
                    base = name = f"{name}_prime"
                    continue
                base = self._scripted(base, name, sup, sub, packed) + "'"
                name, sup, sub = None, None, None
                continue
            p, argtok = self.arg()
            if tok.value == "_" and name is not None:
                shape = self._shape(p)
                if shape is not None:  # W^2_{2\times 4}: the shape of W^2, not an entry
                    self.shapes.append((self._scripted(base, name, sup, sub), shape))
                    continue
                if sub is not None:
                    self.fail("a second subscript")
                sub, packed = self._subscript(p, name)
                continue
            if tok.value == "^" and self._is_transpose(p):
                scalar = scalar or self._reads_entry(name, sup, sub)
                base = self._scripted(base, name, sup, sub, packed) + ".T"
                name, sup, sub = None, None, None
                continue
            if tok.value == "_" and name is None and (shape := self._shape(p)) is not None:
                self.shapes.append((base, shape))  # \sigma(z^1)_{4\times 1}: an annotation, not an entry
                continue
            if tok.value == "_" and name is None and base.endswith(")"):  # softmax(a_L)_\ell: an entry
                base, scalar = f"{base}[{self._subscript(p, base)[0]}]", True
                continue
            inner = p.parse_all()
            if tok.value == "_" and name is None:
                self.fail("cannot read a subscript here")
            if tok.value == "^" and (name is None or sup is not None):
                scalar = scalar or self._reads_entry(name, sup, sub)
                base = self._scripted(base, name, sup, sub, packed)
                name, sup, sub = None, None, None
                base = f"{base} ** {_wrap(inner)}"
                continue
            if tok.value == "_" and sub is not None:
                self.fail("a second subscript")
            if tok.value == "^":
                sup = inner
            else:
                sub = inner
        if name is not None and sup is None and sub is not None and self._role(name) in FUNCTION_QUANTITIES \
                and (nxt := self.peek()) is not None and nxt.kind == "char" and nxt.value == "(":
            self.i += 1  # g_k(A_k): the layer's activation, which [symbols] gives as one function
            inner = self.expr()
            self._close(")")
            self.notes.append(f"read {name}_{_unparen(sub)}(…) as {name}(…): [symbols] gives one "
                              f"{self._role(name).replace('_', ' ')} for every layer")
            return f"{name}({inner})", False
        scalar = scalar or self._reads_entry(name, sup, sub)
        scripted = self._scripted(base, name, sup, sub, packed)
        if (sup is not None or sub is not None) and (arg := self._of_input(name)) is not None:
            self.notes.append(f"read {scripted}({arg}) as {scripted}: the input {arg} is the argument of every layer")
        base = scripted
        if scalar and _row_of(base) is not None:
            scalar = False  # w^l_i: a row of W^l, not an entry
        if name is not None:
            self._at_example(base)
        if self.peek() is not None and base.endswith("'") and self.peek().kind == "char" and self.peek().value == "(":
            self.i += 1
            inner, scalar = self.expr_scalar()  # g'(a_{ij}) of an entry is a scalar
            self._close(")")
            base = f"{base}({_unparen(inner)})"
        return base, scalar

    def _at_example(self, base):
        """``a^L(x_i)`` inside a sum over the examples i: the value at example i, which the sum's
        reading gives every per-example quantity; the argument is dropped (noted)."""
        toks = self.t[self.i:self.i + 5]
        if len(toks) < 5 or [t.value for t in (toks[0], toks[2], toks[4]) if t.kind == "char"] != ["(", "_", ")"]:
            return
        letter = toks[1].value if toks[1].kind == "char" else (
            toks[1].value[0].value if toks[1].kind == "group" and len(toks[1].value) == 1 else None)
        if toks[3].kind != "char" or not isinstance(letter, str) or not letter.isalpha() or \
                _symbol_role(self, letter) not in (None, "input"):
            return
        if toks[3].value not in self.examples:  # a^L(x_k) with no sum over k: not a product with x_k
            if _symbol_role(self, letter) == "input" and toks[3].value.isalpha():
                raise TexError(f"cannot read {base}({letter}_{toks[3].value}), the value at example "
                               f"{toks[3].value}, outside a sum over the examples", toks[0].pos, self.tex)
            return
        self.i += 5
        self.notes.append(f"read {base}({letter}_{toks[3].value}) as {base} at example {toks[3].value}")

    def _chain_layout(self, text):
        """A product of derivatives printed as the chain rule in the denominator layout
        (``∂z/∂b ∂L/∂z``: each factor's numerator the next one's denominator, none the other way):
        each Jacobian read transposed, as that layout's ∂z/∂b is (noted)."""
        if self.layout is not None:
            return text  # the document's layout says it, for every derivative
        try:
            tree = _formula_tree(text)
        except SyntaxError:
            return text
        leaves = _matmul_leaves(tree)  # (∂L/∂y ∂y/∂a)(∂a/∂w), grouped by \underbrace: one chain
        if _numerator_chain(leaves):
            return self._chain_numerator(text, leaves)
        factors, node = [], tree
        while isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            factors.insert(0, node.right)
            node = node.left
        factors.insert(0, node)
        if len(factors) < 2 or not all(isinstance(f, ast.Call) and getattr(f.func, "id", "") in ("jacobian", "grad")
                                       and len(f.args) == 2 for f in factors):
            return text
        num = [ast.dump(f.args[0]) for f in factors]
        den = [ast.dump(f.args[1]) for f in factors]
        down = sum(den[k + 1] == num[k] for k in range(len(factors) - 1))
        up = sum(num[k + 1] == den[k] for k in range(len(factors) - 1))
        if not down or up or not any(f.func.id == "jacobian" for f in factors):
            return text
        read = " @ ".join(_unparse(f) + (".T" if f.func.id == "jacobian" else "") for f in factors)
        self.notes.append(f"read the chain {text} in the denominator layout (each factor's numerator is the next "
                          f"one's denominator), each Jacobian transposed: {read}")
        return read

    def _chain_numerator(self, text, factors):
        """A product of derivatives printed as the chain rule in the numerator layout
        (``∂L/∂y ∂y/∂a ∂a/∂w``: each factor's denominator the next one's numerator) from a scalar to
        one entry: only read so does the product multiply out to the scalar it stands for, so its
        first factor, the gradient of the scalar, is read as the row it is in this layout (noted).
        A chain to a whole vector is left as printed (its product may be an erratum)."""
        first = factors[0]
        row = f"jacobian({_unparse(first.args[0])}, {_unparse(first.args[1])})"
        read = " @ ".join([row] + [_unparse(f) for f in factors[1:]])
        self.notes.append(f"read the chain {text} in the numerator layout (each factor's denominator is the next "
                          f"one's numerator), its first factor as the row {row}")
        return read

    def _placeholder(self, p):
        """``\\partial \\cdot`` above a fraction bar — the derivative of any function — read as the
        loss's, when the file names one loss (noted); None for anything else."""
        toks = [t for t in p.t[p.i:] if not (t.kind == "macro" and t.value in IGNORED)]
        if len(toks) != 1 or toks[0].kind != "macro" or toks[0].value not in ("cdot", "cdotp", "bullet"):
            return None
        if len(self.scalars) != 1:
            raise TexError(f"\\partial \\{toks[0].value} stands for any function: name the loss in [symbols] "
                           "to read it as the loss", toks[0].pos, self.tex)
        (loss,) = self.scalars
        p.i = len(p.t)
        self.notes.append(f"read ∂· (the derivative of any function) as that of the loss {loss}")
        return loss

    def _scripted(self, base, name, sup, sub, packed=None):
        """``name`` with its superscript (a layer, or a power) and subscript (an entry, or a layer);
        ``packed`` is the subscript as printed when it ran indices together (``jk``, ``kij``)."""
        if name is None or (sup is None and sub is None):
            return base
        if sup is None and self._onehot_of_label(name, sub):
            self.notes.append(f"read {name}_{sub} as the one-hot vector {name} of the label {sub}")
            return base
        if sup is not None and sub is not None and "," not in sub and name not in self.symbols and \
                name.upper() != name and _symbol_role(self, name.upper()) == "weight":
            self.notes.append(f"read {name}^{_unparen(sup)}_{sub} as row {sub} of {name.upper()}[{_unparen(sup)}], "
                              "as a column")
            return f"{name.upper()}[{_unparen(sup)}][{_unparen(sub)}, :].T"
        if name == "I" and "I" not in self.symbols and sup is None and "," not in sub:
            self.notes.append(f"read I_{sub} as the {sub} × {sub} identity matrix")
            return f"diag(ones({_unparen(sub)}))"
        layer_of = name if name in self.perlayer else None
        if layer_of is None and sup is not None and sub is not None and name.upper() in self.perlayer \
                and name.upper() != name:
            layer_of = name.upper()
            self.notes.append(f"read {name} with layer {_unparen(sup)} and entry [{sub}] as {layer_of}[{_unparen(sup)}][{sub}]")
        if name == "e" and sub is None and sup is not None and self._role("e") in ("None", "onehot"):
            why = "" if "e" not in self.symbols else ": e is the one-hot vector, which has no power"
            self.notes.append(f"read e^{sup} as exp({_unparen(sup)}){why}")
            return f"exp({_unparen(sup)})"
        if packed and (layer_of is None or sup is not None):
            self.notes.append(f"read the subscript {packed} of {name} as the entry [{sub}]")
        if layer_of is None:
            if sup is not None and _balanced(sup):
                self.notes.append(f"read {name}^{sup} as a power: {name} is not a per-layer name")
            out = base if sub is None else f"{base}[{self._entry(name, sub)}]"
            return out if sup is None else f"{out} ** {_wrap(sup)}"
        if sup is not None:
            out = f"{layer_of}[{_unparen(sup)}]"
            if sup.startswith("("):
                self.notes.append(f"read {name}^{sup} as layer {_unparen(sup)} of {layer_of}")
            return out if sub is None else f"{out}[{self._entry(name, sub)}]"
        inner = _unparen(sub)
        if "," in inner:
            return self._layer_and_entry(base, name, inner, packed)
        self.notes.append(f"read {name}_{inner} as layer {inner} of {name}")
        return f"{base}[{inner}]"

    def _primed_name(self, name, sup, sub):
        """``i'`` is the letter i primed, not a derivative: a letter the file does not declare, not called."""
        nxt = self.peek()
        return name is not None and len(name) == 1 and sup is None and sub is None and name not in self.layered \
            and not (nxt is not None and nxt.kind == "char" and nxt.value == "(")

    def _role(self, name):
        roles = self.symbols if isinstance(self.symbols, Mapping) else {}
        return _role(roles.get(name))

    def _of_input(self, name):
        """``h_L(x)``: a layer's quantity written as a function of the input; the argument is dropped
        (with a note).  Reads nothing unless the parenthesis holds exactly the input's name."""
        if name is None or self._role(name) not in ("activation", "preactivation", "output", "None"):
            return None
        toks = self.t[self.i:self.i + 3]
        inner = toks[1] if len(toks) == 3 else None
        while inner is not None and inner.kind == "group" and len(inner.value) == 1:
            inner = inner.value[0]  # \underline{x}
        if inner is not None and toks[0].kind == "char" and toks[0].value == "(" and toks[2].kind == "char" \
                and toks[2].value == ")" and inner.kind == "char" and self._role(inner.value) == "input":
            self.i += 3
            return inner.value
        return None

    def _layer_and_entry(self, base, name, inner, packed):
        """A per-layer name's one subscript holding its layer, then its entry (``W_{kij}``,
        ``a_{i+1,m}``, ``W_{i+1,\\cdot,j}``): read so when it has one index more than an entry of the
        name takes (noted); otherwise the indices as they stand."""
        parts = _top_split(inner)
        rank = ENTRY_RANK.get(_role(self.symbols.get(name)), 0)
        if not rank or len(parts) != rank + 1:
            if packed:
                self.notes.append(f"read the subscript {packed} of {name} as the entry [{inner}]")
            return f"{base}[{inner}]"
        layer, entry = parts[0], ", ".join(parts[1:])
        self.notes.append(f"read the subscript {packed or inner} of {name} as layer {layer}, entry [{entry}]")
        return f"{base}[{layer}][{entry}]"

    def _reads_entry(self, name, sup, sub):
        """Whether ``name`` with these scripts is one entry (a scalar)."""
        if name is None or sub is None or ":" in sub or (sup is None and self._onehot_of_label(name, sub)):
            return False
        if sup is None and name in self.perlayer:
            return len(_top_split(_unparen(sub))) > 1
        return True

    def _onehot_of_label(self, name, sub):
        """``e_\\ell``: the one-hot vector of the label, not an entry of it."""
        return _role(self.symbols.get(name)) == "onehot" and _role(self.symbols.get(sub)) == "label"

    def _entry(self, name, sub):
        return _unparen(sub)

    def _subscript(self, p, name):
        """A subscript and, when it runs indices together, as printed: ``jk`` (letters; on a
        per-layer name also digits and ``\\ell``: ``W_{111}``, ``a_{L\\ell}``) is the indices j, k,
        ``j,k`` the indices j, k, anything else one expression."""
        toks = [t for t in p.t if not (t.kind == "macro" and t.value in IGNORED)]
        run = [self._run_index(t, name in self.perlayer) for t in toks]
        digits = [r for r in run if r and r.isdigit()]
        if digits and ("0" in digits or len(run) != ENTRY_RANK.get(self._role(name), 0) + 1):
            run = [None]  # W_{12}, a_{10}: a layer number, unless it is a layer and an entry's indices
        if len(toks) > 1 and all(run):
            return ", ".join(run), "".join(("\\" + t.value + " ") if t.kind == "macro" else t.value
                                           for t in toks).strip()
        parts, cur = [], []
        for t in p.t:
            if t.kind == "char" and t.value == ",":
                parts.append(cur)
                cur = []
            else:
                cur.append(t)
        parts.append(cur)
        if len(parts) == 1:
            return p.parse_all(), None
        out, dotted = [], False
        for part in parts:
            if not part:
                p.fail("empty index")
            if len(part) == 1 and ((part[0].kind == "macro" and part[0].value in ("cdot", "bullet"))
                                   or (part[0].kind == "char" and part[0].value == ":")):
                out.append(":")  # W_{i,\cdot}: the whole row
                dotted = dotted or part[0].kind == "macro"
                continue
            out.append(self._child(part, p.end).parse_all())
        if dotted:
            self.notes.append(f"read the {chr(92)}cdot in the subscript of {name} as a whole row or column")
        return ", ".join(out), None

    def _run_index(self, tok, digits):
        """The index a token of a run like ``kij`` stands for, or None."""
        if tok.kind == "char" and len(tok.value) == 1 and (tok.value.isalpha() or digits and tok.value.isdigit()):
            return self.renamed.get(tok.value, tok.value)
        if tok.kind == "macro" and tok.value in NAMES:
            return NAMES[tok.value]
        if tok.kind == "name" and tok.value.isidentifier():
            return tok.value
        return None

    def _is_transpose(self, p):
        toks = [t for t in p.t if not (t.kind == "macro" and t.value in IGNORED | {"mathsf"})]
        flat = []
        for t in toks:
            flat.extend(t.value if t.kind == "group" else [t])
        return len(flat) == 1 and ((flat[0].kind == "char" and flat[0].value == "T")
                                   or (flat[0].kind == "macro" and flat[0].value in ("top", "intercal")))

    def _bars(self):
        """Whether the next two tokens are the characters ``||``."""
        return self._next_is("|") and self.i + 1 < len(self.t) and self.t[self.i + 1].kind == "char" \
            and self.t[self.i + 1].value == "|"

    def _next_is(self, ch):
        tok = self.peek()
        return tok is not None and tok.kind == "char" and tok.value == ch

    def _close(self, ch):
        tok = self.peek()
        if tok is None or tok.kind != "char" or tok.value != ch:
            self.fail(f"expected '{ch}'")
        self.i += 1

    def atom(self):
        tok = self.peek()
        if tok is None:
            self.fail("missing operand")
        self.i += 1
        if tok.kind == "indicator":
            return self._indicator()
        if tok.kind == "env":
            return self._cases(tok)
        if tok.kind == "matrix":
            return _atom_text(_read_matrix(self, tok)), False, None
        if tok.kind == "group":
            inner = self.sub(tok).parse_all()
            if inner.isidentifier():  # {W}, \mathbf{W}: the name itself, scripts apply to it
                return inner, False, inner
            return _wrap(inner), False, None
        if tok.kind == "name":  # a spelling of the file's [tex] table
            return tok.value, self._scalar_name(tok.value), tok.value
        if tok.kind == "char":
            if tok.value.isdigit():
                num = tok.value
                while (n := self.peek()) is not None and n.kind == "char" and (n.value.isdigit() or n.value == "."):
                    num += n.value
                    self.i += 1
                return num, True, None
            if tok.value.isalpha():
                nxt = self.peek()
                if self._role(tok.value) in FUNCTION_QUANTITIES and nxt is not None and nxt.kind == "char" \
                        and nxt.value == "(":  # g(a_i): the file's activation function applied
                    self.i += 1
                    inner = self.expr()
                    self._close(")")
                    return f"{tok.value}({inner})", False, None
                letter = self.renamed.get(tok.value, tok.value)
                return letter, self._scalar_name(letter), letter
            if tok.value == "[" and (listed := _dotted_list(self)) is not None:
                return listed, False, None
            if tok.value == "|" and self._next_is("|"):  # ||x||: a norm written with two bars
                self.i += 1
                self.closers.append("||")
                inner = self.expr()
                self.closers.pop()
                if not self._bars():
                    self.fail("expected '||'")
                self.i += 2
                return f"norm({inner})", True, None
            if tok.value == "[" and (bracket := self._iverson()) is not None:
                return bracket, True, None
            if tok.value in "([":
                inner, inner_scalar = self.expr_scalar()
                self._close(")" if tok.value == "(" else "]")
                nxt = self.peek()
                if nxt is not None and nxt.kind == "char" and nxt.value == "_":
                    save = self.i
                    self.i += 1
                    p, _ = self.arg()
                    shape = self._shape(p)
                    if shape is None:
                        self.i = save
                    else:
                        inner = self._array_of_entries(inner, shape)
                        self.shapes.append((f"({inner})", shape))
                        return f"({inner})", False, None
                return f"({inner})", inner_scalar, None
            raise TexError(f"unexpected '{tok.value}'", tok.pos, self.tex)
        name = tok.value
        if name in NORMS:
            self.norms += 1
            self.closers.append(NORMS[name])
            inner = self.expr()
            self.norms -= 1
            self.closers.pop()
            close = self.peek()
            if close is None or close.kind != "macro" or close.value != NORMS[name]:
                self.fail(f"expected '\\{NORMS[name]}'")
            self.i += 1
            return f"norm({inner})", True, None
        if name == "left":
            nxt = self.peek()
            if nxt is not None and nxt.kind == "macro" and nxt.value == "|":
                return self.atom()
            if nxt is None or nxt.kind != "char" or nxt.value not in "([":
                self.fail("expected '(' or '[' after \\left")
            return self.atom()
        if name == "frac":
            num, ntok = self.macro_arg(tok)
            den, dtok = self.macro_arg(tok)
            self._leibniz(num, den)
            d = self._partial(num, den)
            if d is not None:
                return d[0], d[1], None
            (a, top), (b, bottom) = self._whole(num), self._whole(den)
            return f"{_wrap(a)} / {_wrap(b)}", top and bottom, None  # \frac{1}{m} is a scalar
        if name == "sum":
            return self._sum(tok), True, None
        if name in ("underbrace", "overbrace"):  # \underbrace{x}_{label}: x; the label is a comment
            p, _ = self.macro_arg(tok)
            inner, inner_scalar = p.expr_scalar()
            if p.peek() is not None:
                p.fail(f"unexpected '{p._show(p.peek())}'")
            nxt = self.peek()
            if nxt is not None and nxt.kind == "char" and nxt.value in "_^":
                self.i += 1
                self.arg()
                self.notes.append(f"dropped the label of \\{name}{{{inner}}}")
            return _wrap(inner), inner_scalar, None
        if name in ("mathcal", "mathscr"):
            p, _ = self.macro_arg(tok)
            letter = p.parse_all()
            if letter not in self.layered:
                raise TexError(f"\\{name}{{{letter}}} is read as the name {letter}, which [symbols] does not map",
                               tok.pos, self.tex)
            self.notes.append(f"read \\{name}{{{letter}}} as {letter}")
            return letter, False, letter
        if name in NAMES:
            return NAMES[name], False, NAMES[name]
        if name == "nabla":
            return self._nabla(tok), False, None
        if name == "delta" and "delta" not in self.symbols and self._next_is("_"):
            kronecker = self._kronecker(tok)
            if kronecker is not None:
                return kronecker, True, None
        if name in GREEK:
            alias = name.replace("var", "")
            letter = _greek_letter(alias)
            if alias not in self.layered and letter in self.layered:  # the file writes σ, δ
                alias = letter
            nxt = self.peek()
            if nxt is not None and nxt.kind == "char" and nxt.value == "(" and alias in self.layered:
                self.i += 1
                inner = self.expr()
                self._close(")")
                return f"{alias}({inner})", False, None
            return alias, False, alias
        if name in FUNCS:
            inner, inner_scalar = self.factor()
            return f"{FUNCS[name]}({inner.strip('()') if _balanced(inner) else inner})", inner_scalar, None
        if name == "underset":
            return self._underset(tok)
        if name in ("hat", "tilde", "bar", "widetilde"):
            p, _ = self.macro_arg(tok)
            inner = p.parse_all()
            name = "tilde" if name == "widetilde" else name
            if name == "tilde" and f"{inner}_tilde" not in self.symbols and inner.split("[")[0] in self.layered:
                self.notes.append(f"read \\{tok.value}{{{inner}}} as {inner}: a mark, as no name {inner}_tilde is declared")
                return inner, False, inner if inner.isidentifier() else None
            self.notes.append(f"read \\{name}{{{inner}}} as the name {inner}_{name}")
            return f"{inner}_{name}", False, f"{inner}_{name}"
        if name in ("operatorname", "text", "mathrm"):
            p, _ = self.macro_arg(tok)
            word = "".join(t.value for t in p.t if t.kind == "char")
            nxt = self.peek()
            if word in CALLS and nxt is not None and (
                    (nxt.kind == "char" and nxt.value == "(") or (nxt.kind == "macro" and nxt.value == "left")):
                if nxt.kind == "macro":
                    self.i += 1
                    if self.peek() is None or self.peek().kind != "char" or self.peek().value != "(":
                        self.fail("expected '(' after \\left")
                self.i += 1
                inner = self.expr()
                self._close(")")
                return f"{word}({inner})", False, None
            return word, False, word
        raise TexError(f"unknown macro \\{name}", tok.pos, self.tex)

    def _array_of_entries(self, inner, shape):
        """``(a_i^l)_{(n_l \\times 1)}``: the array whose entries are a_i^l, i.e. a^l; any other
        annotated expression stands for itself."""
        import ast

        from .language import preprocess
        try:
            node = ast.parse(preprocess(inner), mode="eval").body
        except SyntaxError:
            return inner
        if not isinstance(node, ast.Subscript) or (isinstance(node.value, ast.Name) and node.value.id in self.perlayer):
            return inner  # a^l: a layer, not an entry
        index = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        letters = [i.id for i in index if isinstance(i, ast.Name) and len(i.id) == 1]
        if len(letters) != len(index) or len(set(letters)) != len(letters) or letters[0] in self.symbols:
            return inner
        whole = ast.unparse(node.value)
        self.notes.append(f"read ({inner})_{{{shape[0]}×{shape[1]}}} as the array of the entries {inner}: {whole}")
        return whole

    def _relation(self, toks, end):
        """The Iverson bracket ``(lhs op rhs)`` of a condition ``i = \\ell``, ``x \\geq 0``; None
        when the tokens hold no relation."""
        cut = [k for k, t in enumerate(toks) if (t.kind == "char" and t.value in "=<>")
               or (t.kind == "macro" and t.value in RELATIONS)]
        if not cut:
            return None
        if len(cut) > 1:
            raise TexError("a condition is one relation, as in i = j", toks[cut[1]].pos, self.tex)
        k = cut[0]
        if k == 0 or k == len(toks) - 1:
            raise TexError("a relation needs a side on the left and on the right", toks[k].pos, self.tex)
        left = self._child(toks[:k], toks[k].pos).parse_all()
        right = self._child(toks[k + 1:], end).parse_all()
        return left, RELATIONS[toks[k].value], right

    def _iverson(self):
        """``[i = \\ell]`` (after its ``[``), a bracket holding one relation, as the project's printer
        writes an Iverson bracket: ``(i == ell)``; None (nothing read) for any other bracket."""
        depth, k = 0, self.i
        while k < len(self.t):
            t = self.t[k]
            if t.kind == "char" and t.value in "([":
                depth += 1
            elif t.kind == "char" and t.value in ")]":
                if depth == 0:
                    break
                depth -= 1
            k += 1
        if k == len(self.t) or self.t[k].value != "]":
            return None
        inside = self.t[self.i:k]
        level, flat = 0, []
        for t in inside:  # the relation must be at the bracket's own level
            level += t.kind == "char" and t.value in "(["
            level -= t.kind == "char" and t.value in ")]"
            flat.append(t if level == 0 else None)
        if not any(t is not None and ((t.kind == "char" and t.value in "=<>") or
                                      (t.kind == "macro" and t.value in RELATIONS)) for t in flat):
            return None
        left, op, right = self._relation(inside, self.t[k].pos)
        self.i = k + 1
        return f"({left} {op} {right})"

    def _indicator(self):
        """``\\mathbb{1}_{i=\\ell}`` (or ``\\mathbf{1}``) is the Iverson bracket ``(i == ell)``;
        ``\\mathbf{1}_m`` the column of m ones (with a note); a bare ``\\mathbf{1}`` the number 1."""
        nxt = self.peek()
        if nxt is None or nxt.kind != "char" or nxt.value != "_":
            return "1", True, None
        self.i += 1
        p, argtok = self.arg()
        relation = self._relation(p.t, p.end)
        if relation is None:
            size = p.parse_all()
            self.notes.append(f"read 1_{size} as the column of {size} ones")
            return f"ones({size})", False, None
        left, op, right = relation
        return f"({left} {op} {right})", True, None

    def _cases(self, tok):
        """``\\begin{cases} v & \\text{if } c \\\\ w & \\text{otherwise} \\end{cases}`` is
        ``(c) * v + (not c) * w``: each value times the Iverson bracket of its condition, the
        ``otherwise`` value times the negation of every condition above it.  Several conditions are
        read as disjoint (with a note): the sum does not say which case wins where two hold."""
        if tok.value != "cases":
            raise TexError(f"cannot read the environment {tok.value}", tok.pos, self.tex)
        end = tok.node.pos + tok.node.len
        rows, cur = [], []
        for t in _tokens(tok.node.nodelist, self.tex, self.names):
            if t.kind == "macro" and t.value == "\\":
                rows.append(cur)
                cur = []
            else:
                cur.append(t)
        rows.append(cur)
        branches = []  # (value, scalar, relation or None for otherwise, position)
        for row in (r for r in rows if r):
            amps = [k for k, t in enumerate(row) if t.kind == "char" and t.value == "&"]
            if len(amps) != 1 or amps[0] == 0:
                raise TexError("a case is written value & condition", row[0].pos, self.tex)
            value_toks, cond_toks = row[:amps[0]], row[amps[0] + 1:]
            while value_toks and value_toks[-1].kind == "char" and value_toks[-1].value in ",;":
                value_toks = value_toks[:-1]
            while cond_toks and cond_toks[-1].kind == "char" and cond_toks[-1].value in ",.;":
                cond_toks = cond_toks[:-1]
            value, scalar = self._child(value_toks, row[amps[0]].pos).expr_scalar()
            word = _text_word(cond_toks[0]) if cond_toks else None
            if word is not None and word.strip(".,;: ") in OTHERWISE and len(cond_toks) == 1:
                branches.append((value, scalar, None, row[0].pos))
                continue
            if word is not None and word.strip(".,;: ") in ("if", "for", "when", "whenever"):
                cond_toks = cond_toks[1:]
            relation = self._relation(cond_toks, end) if cond_toks else None
            if relation is None:
                raise TexError("a case needs a condition, as in \\text{if } i = j, or \\text{otherwise}",
                               (cond_toks or row)[0].pos, self.tex)
            branches.append((value, scalar, relation, row[0].pos))
        if not branches:
            raise TexError("empty cases", tok.pos, self.tex)
        conditions = [b[2] for b in branches if b[2] is not None]
        for k, b in enumerate(branches):
            if b[2] is None and k != len(branches) - 1:
                raise TexError("\\text{otherwise} is the last case", b[3], self.tex)
        if len(conditions) > 1:
            shown = "; ".join(f"{l} {op} {r}" for l, op, r in conditions)
            self.notes.append(f"read the cases as disjoint conditions ({shown})")
        terms = []
        for value, _, relation, _ in branches:
            brackets = [relation] if relation is not None else [(l, NEGATED[op], r) for l, op, r in conditions]
            if value == "0":
                continue
            factors = [f"({l} {op} {r})" for l, op, r in brackets]
            if value.startswith("1 / ") and _wrap(value[4:]) == value[4:]:  # (c) * 1/x is (c) / x
                terms.append(" * ".join(factors) + " / " + value[4:])
                continue
            factors += [] if value == "1" else [_wrap(value)]
            terms.append(" * ".join(factors) or "1")
        out = " + ".join(terms) or "0"
        return (f"({out})" if len(terms) > 1 else out), all(b[1] for b in branches), None

    def _underset(self, tok):
        """``\\underset{\\sim}{x}``: the under-tilde (or arrow) marks a vector; read as x."""
        below, _ = self.macro_arg(tok)
        base, _ = self.macro_arg(tok)
        marks = [t for t in below.t if not (t.kind == "macro" and t.value in IGNORED)]
        if not (len(marks) == 1 and ((marks[0].kind == "macro" and marks[0].value in VECTOR_MARKS)
                                     or (marks[0].kind == "char" and marks[0].value in "~-"))):
            raise TexError("cannot read \\underset here: only a vector mark below (\\sim, \\rightarrow) is read",
                           tok.pos, self.tex)
        inner, scalar = base.expr_scalar()
        if base.peek() is not None:
            base.fail(f"unexpected '{base._show(base.peek())}'")
        if inner.isidentifier():
            return inner, False, inner
        return _wrap(inner), scalar, None

    def _whole(self, p):
        """All of ``p`` as one expression, and whether it is a scalar."""
        text, scalar = p.expr_scalar()
        if p.peek() is not None:
            p.fail(f"unexpected '{p._show(p.peek())}'")
        return text, scalar

    def _scalar_name(self, name):
        """A name [symbols] maps to a number: the loss, the batch size, the depth, a label."""
        return _role(self.symbols.get(name)) in SCALAR_ROLES | {"batch", "depth", "label", "output_width"}

    def _nabla(self, tok):
        """``\\nabla_{x} C`` is the gradient of C by x; ``\\nabla_{x}`` with no function after it and
        ``\\nabla x`` (no variable below) are the gradient of the loss by x (noted)."""
        nxt = self.peek()
        if nxt is not None and nxt.kind == "char" and nxt.value == "_":
            self.i += 1
            p, _ = self.arg()
            wrt = p.parse_all()
            if self._starts_atom(self.peek()):
                of = self.factor()[0]
                if of.split("[")[0] not in self.scalars:
                    self.notes.append(f"read ∇_{wrt} {of} as the gradient of {of} by {wrt}")
                return f"grad({of}, {wrt})"
            loss = self._loss(tok, f"∇_{wrt}")
            self.notes.append(f"read ∇_{wrt} with no function after it as the gradient of the loss {loss} by {wrt}")
            return f"grad({loss}, {wrt})"
        if not self._starts_atom(nxt):
            raise TexError("\\nabla needs a variable, as in \\nabla_{W^2} C or \\nabla W^2", tok.pos, self.tex)
        wrt = self.factor()[0]
        root = _unparen(wrt).split("[")[0].split(".")[0]
        after = self.peek()
        applied = wrt.isidentifier() and after is not None and after.kind == "char" and after.value == "("
        if root in self.scalars or "(" in _unparen(wrt) or self._role(root) in FUNCTION_QUANTITIES or applied:
            # ∇C, ∇g(x), ∇f: the gradient of a function, whose variable is not printed
            raise TexError(f"\\nabla {wrt} needs the variable below, as in \\nabla_{{W^2}} {wrt}", tok.pos, self.tex)
        wrt = _unparen(wrt)
        transposed = wrt.endswith(".T")  # \nabla h_k^T: the gradient, transposed
        wrt = _unparen(wrt[:-2]) if transposed else wrt
        loss = self._loss(tok, f"∇{wrt}")
        self.notes.append(f"read ∇{wrt} as the gradient of the loss {loss} by {wrt}")
        return f"grad({loss}, {wrt})" + (".T" if transposed else "")

    def _loss(self, tok, what):
        """The one name [symbols] maps to the loss, for a gradient that does not name its function."""
        losses = [k for k, v in self.symbols.items() if _role(v) == "loss"] \
            or [k for k, v in self.symbols.items() if _role(v) in SCALAR_ROLES]
        if len(losses) != 1:
            why = "no name" if not losses else "more than one name (" + ", ".join(sorted(losses)) + ")"
            raise TexError(f"{what} names no function, and {why} is mapped to the loss in [symbols]",
                           tok.pos, self.tex)
        return losses[0]

    def _shape(self, p):
        """The shape of an annotation ``[x]_{m \\times n}``, or None for a plain subscript."""
        if len(p.t) >= 2 and p.t[0].kind == "char" and p.t[0].value == "(" and p.t[-1].kind == "char" \
                and p.t[-1].value == ")":  # _{(m \times n)}
            p = self._child(p.t[1:-1], p.t[-1].pos)
        cut = [k for k, t in enumerate(p.t) if t.kind == "macro" and t.value == "times"]
        if len(cut) > 1:
            raise TexError("a shape is written m \\times n, with one \\times", p.t[cut[1]].pos, self.tex)
        if len(cut) != 1:
            return None
        k = cut[0]
        if k == 0 or k == len(p.t) - 1:
            p.fail("a shape is written m \\times n")
        return (self._child(p.t[:k], p.t[k].pos).parse_all(), self._child(p.t[k + 1:], p.end).parse_all())

    def _kronecker(self, tok):
        """``\\delta_{ij}``, ``\\delta_{i,j}``, ``\\delta_{(l,L-1)}`` where δ names nothing: the
        Kronecker delta, the bracket ``(i == j)`` (noted); None if the subscript is not two indices."""
        save = self.i
        self.i += 1
        p, _ = self.arg()
        toks = list(p.t)
        if len(toks) >= 2 and toks[0].kind == "char" and toks[0].value == "(" and toks[-1].kind == "char" \
                and toks[-1].value == ")":
            toks = toks[1:-1]
        parts, cur, depth, commas = [], [], 0, []
        for t in toks:
            if t.kind == "char" and t.value in "([":
                depth += 1
            elif t.kind == "char" and t.value in ")]":
                depth -= 1
            if depth == 0 and t.kind == "char" and t.value == ",":
                parts.append(cur)
                commas.append(t.pos)
                cur = []
            else:
                cur.append(t)
        parts.append(cur)
        letters = len(parts) == 1 and len(toks) == 2 and all(t.kind == "char" and t.value.isalpha() for t in toks)
        if letters:
            parts = [[toks[0]], [toks[1]]]
        paired = len(toks) < len(p.t)  # δ_{(l,L-1)}: a pair, whatever δ^l names
        layered = bool({"delta", "δ"} & self.layered)
        unlayered = layered and letters and self._entry_letters(toks, tok.pos)  # δ_{jk} of a per-layer δ
        if len(parts) != 2 or not (paired or not layered or unlayered):
            self.i = save
            return None
        if not all(parts):
            raise TexError("empty index", commas[0], self.tex)
        left, right = (self._child(part, p.end).parse_all() for part in parts)
        why = ("δ is per layer but δ_{" + toks[0].value + toks[1].value + "} has no layer" if unlayered and not paired
               else "δ is not a name of [symbols]")
        self.notes.append(f"read δ_({left},{right}) as the Kronecker delta ({left} == {right}): {why}")
        return f"({left} == {right})"

    def _entry_letters(self, toks, at):
        """Whether the two letters of ``δ_{jk}`` (δ at ``at``) are entry indices, not a layer packed
        with an entry (``δ_{Li}``): neither names a quantity (the depth, a layer's name), no ``^``
        follows to give δ its layer, and the formula uses each letter elsewhere as a subscript
        (``∂z_k^L/∂b^L_j = δ_{jk}``)."""
        if self._next_is("^") or self._next_is("'"):
            return False
        if any(t.value in self.symbols or t.value in self.layered for t in toks):
            return False
        own = range(at, toks[-1].pos + 1)
        elsewhere = {c for m in re.finditer(r"_(?:\{([^{}]*)\}|\s*([A-Za-z]))", self.tex) if m.start() not in own
                     for c in (m.group(1) or m.group(2) or "") if c.isalpha()}
        return all(t.value in elsewhere for t in toks)

    def _sum(self, tok):
        """``\\sum_{i=a}^{b} body`` is ``sum(body, i in a..b)``; ``\\sum_i body`` (no limits), and a sum
        from 1 to a letter no [symbols] name gives a value (``\\sum_{m=1}^{p}``), run over i's whole
        range: ``sum(body, i)`` (noted).  An index that is also a [symbols] name is renamed (noted).
        The body is the product that follows."""
        limits = {}
        for _ in range(2):
            nxt = self.peek()
            if nxt is None or nxt.kind != "char" or nxt.value not in "_^" or nxt.value in limits:
                break
            self.i += 1
            p, _ = self.arg()
            limits[nxt.value] = p
        if "_" not in limits:
            raise TexError("a sum needs its index, as in \\sum_{i=1}^{m} or \\sum_i", tok.pos, self.tex)
        below = limits["_"]
        var = below.peek()
        if var is None or var.kind != "char" or not var.value.isalpha():
            below.fail("expected the index of the sum")
        below.i += 1
        letter, whole, span = var.value, None, None
        if (prime := below.peek()) is not None and prime.kind == "char" and prime.value == "'":
            below.i += 1  # \sum_{i'=1}: the index i′, a letter of its own
            letter += "_prime"
        if below.peek() is None:
            if "^" in limits:
                raise TexError("a sum with an upper limit needs its lower one, as in \\sum_{i=1}^{m}",
                               tok.pos, self.tex)
            whole = f"read \\sum_{letter} without limits as the sum over every {letter}"
        else:
            below._close("=")
            if "^" not in limits:
                raise TexError("a sum needs its limits, as in \\sum_{i=1}^{m}", tok.pos, self.tex)
            low, high = below.parse_all(), limits["^"].parse_all()
            span = f"{low}..{high}"
            if low == "1" and self._no_size(high):
                whole = (f"read \\sum_{{{letter}=1}}^{{{high}}} as the sum over every {letter}: "
                         f"{high} is not a size [symbols] gives")
        index = self._fresh_index(letter)
        saved, outer = self.renamed, self.examples
        self.renamed = {**saved, letter: index}
        examples = span is not None and low == "1" and _symbol_role(self, high) == "batch"  # over the examples
        if examples:
            self.examples = outer + (index,)
        negative = self._next_is("-")  # \sum_{i=1}^m -\log y_i: the sum of the negated term
        self.i += negative
        try:
            body = self.term()[0]
            body = f"-{body}" if negative else body
            if examples:
                body = _per_example(self, body, index, high)
        finally:
            self.renamed, self.examples = saved, outer
        if whole:
            self.notes.append(whole)
            return f"sum({body}, {index})"
        return f"sum({body}, {index} in {span})"

    def _no_size(self, limit):
        """Whether a sum's upper limit names no size: a letter [symbols] does not map, or a width
        given without its layer."""
        if not limit.isidentifier():
            return False
        uses = re.finditer(rf"(?<![\\\\A-Za-z]){re.escape(limit)}(?![A-Za-z])", self.tex)
        if any(not re.search(r"\^\s*\{?\s*$", self.tex[:use.start()]) for use in uses):
            return False  # a size the formula uses elsewhere too (\\frac{1}{m} \\sum_{i=1}^{m}) is one
        return limit not in self.symbols and limit not in self.layered or _role(self.symbols.get(limit)) == "width"

    def _fresh_index(self, letter):
        """The summation index for ``letter``: itself, or a letter no name and no other index uses
        when [symbols] maps ``letter`` (``\\sum_{m}`` where m is the batch size; noted)."""
        if letter not in self.symbols and letter not in self.layered:
            return letter
        for other in "qrstuvwxyzdfgjkop":
            if other not in self.symbols and other not in self.layered and other not in self.renamed.values() \
                    and not re.search(rf"(?<![\\\\A-Za-z]){other}(?![A-Za-z])", self.tex):
                self.notes.append(f"read the summation index {letter} as {other}: {letter} is a name in [symbols]")
                return other
        raise TexError(f"the summation index {letter} is a name in [symbols], and no free letter is left",
                       self.pos(), self.tex)

    def _leibniz(self, num, den):
        """``\\frac{dy}{dx}`` and ``\\frac{d}{dx}`` (``\\mathrm{d}`` too): both d's turned into
        ``\\partial``, so that they read as that derivative (noted), unless [symbols] maps d."""
        def d_at(p):
            tok = p.peek()
            if tok is not None and tok.kind == "group" and len(tok.value) == 1:
                tok = tok.value[0]  # \mathrm{d}
            nxt = p.t[p.i + 1] if p.i + 1 < len(p.t) else None
            return tok is not None and tok.kind == "char" and tok.value == "d" and not (
                nxt is not None and nxt.kind == "char" and nxt.value in "_^'")
        if "d" in self.symbols:
            return
        first = num.peek()
        if first is not None and first.kind == "char" and first.value == "d" and num.i + 1 < len(num.t) \
                and num.t[num.i + 1].kind == "char" and num.t[num.i + 1].value == "^" and d_at(den):
            raise TexError("a higher derivative d^n y/dx^n is not read", first.pos, self.tex)
        if not (d_at(num) and d_at(den)) or den.i + 1 >= len(den.t):
            return
        for p in (num, den):
            p.t = p.t[:p.i] + [_Tok("macro", "partial", p.t[p.i].pos)] + p.t[p.i + 1:]
        self.notes.append("read d…/d… as the derivative ∂…/∂…")

    def _partial(self, num, den):
        """``\\frac{\\partial y}{\\partial x}`` as (the derivative, whether it is a scalar), or None."""
        def strip(p):
            tok = p.peek()
            if tok is None or tok.kind != "macro" or tok.value != "partial":
                return None, False
            p.i += 1
            if p.peek() is None:
                return "", False
            placeholder = self._placeholder(p)
            if placeholder:
                return placeholder, True
            text, scalar = p.expr_scalar()
            if p.peek() is not None:
                p.fail(f"unexpected '{p._show(p.peek())}'")
            return text, scalar
        (n, scalar), (d, by_scalar) = strip(num), strip(den)
        if n is None and d is None:
            return None
        if n is None or not d:
            raise TexError("a derivative needs \\partial above and below", self.pos(), self.tex)
        if n == "":  # \frac{\partial}{\partial x} f: the operator applied to the factor after it
            n, scalar = self.factor()
            n = _unparen(n) if _balanced(n) else n
            scalar = scalar or n.startswith(("sum(", "norm(", "trace("))
        root = n.split("[")[0]
        row = _row_of(d)  # by w_i, row i of W as a column: the derivative by that row
        if root in self.scalars or scalar or _kind(n, self.symbols) == "scalar":
            if row is not None:
                return f"grad({n}, {row}).T", False
            return f"grad({n}, {d})", by_scalar  # of a scalar by an entry: a scalar
        self.notes.append(f"read ∂{n}/∂{d} as the Jacobian of {n} by {d}")
        by = d if row is None else row
        if self.layout == "denominator" and not _is_entry(n, self.symbols) and not _is_entry(by, self.symbols):
            self.notes.append(f"read ∂{n}/∂{d} in the document's denominator layout: jacobian({n}, {by}).T")
            return f"jacobian({n}, {by}).T", False
        return f"jacobian({n}, {by})", False


def _membership(part, tex):
    """A side ``x \\in \\mathbb{R}^{m \\times n}`` (or ``^{n}``, a column): the side without it,
    and the tokens of (rows, cols), cols None for a column; (part, None) when it states no membership."""
    at = next((k for k, t in enumerate(part) if t.kind == "macro" and t.value == "in"), None)
    if at is None:
        return part, None
    rest = part[at + 1:]
    space = rest[0] if rest else None
    argd = getattr(space.node, "nodeargd", None) if space is not None and space.kind == "macro" else None
    letter = "".join(n.chars for a in (argd.argnlist if argd else []) if a is not None
                     for n in (a.nodelist if isinstance(a, LatexGroupNode) else [a]) if isinstance(n, LatexCharsNode))
    if at == 0 or space is None or space.value not in ("mathbb", "mathbf") or letter.strip() != "R" or len(rest) != 3 \
            or rest[1].kind != "char" or rest[1].value != "^":
        raise TexError("a membership is written x \\in \\mathbb{R}^{m \\times n}", part[at].pos, tex)
    dims = rest[2].value if rest[2].kind == "group" else [rest[2]]
    cut = [k for k, t in enumerate(dims) if t.kind == "macro" and t.value == "times"]
    if len(cut) > 1 or (cut and (cut[0] == 0 or cut[0] == len(dims) - 1)) or not dims:
        raise TexError("a membership's space is written \\mathbb{R}^{m \\times n} or \\mathbb{R}^{n}", rest[2].pos, tex)
    if not cut:
        return part[:at], (dims, None)
    return part[:at], (dims[:cut[0]], dims[cut[0] + 1:])


def _names_a_function(toks, symbols):
    """``f(x)`` with f a name the file does not declare: the chain ``f(x) = h_L(x) = …`` names f."""
    return len(toks) >= 3 and toks[0].kind == "char" and toks[0].value.isalpha() and toks[0].value not in symbols \
        and toks[1].kind == "char" and toks[1].value == "(" and toks[-1].kind == "char" and toks[-1].value == ")"


def _matmul_leaves(node):
    """The factors of a product ``a @ (b @ c)``, its parentheses dropped."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        return _matmul_leaves(node.left) + _matmul_leaves(node.right)
    return [node]


def _numerator_chain(factors):
    """Whether ``factors`` are derivatives chained in the numerator layout (each one's denominator
    the next one's numerator, never the other way) from a gradient to a derivative by one entry."""
    if len(factors) < 2 or not all(isinstance(f, ast.Call) and getattr(f.func, "id", "") in ("jacobian", "grad")
                                   and len(f.args) == 2 for f in factors):
        return False
    num = [ast.dump(f.args[0]) for f in factors]
    den = [ast.dump(f.args[1]) for f in factors]
    up = all(num[k + 1] == den[k] for k in range(len(factors) - 1))
    down = any(den[k + 1] == num[k] for k in range(len(factors) - 1))
    return up and not down and factors[0].func.id == "grad" and _entry_node(factors[-1].args[1])


def _entry_node(node):
    """Whether a parsed formula names one entry: ``W[1][1, 1]``, ``a[2][j]``, ``x[i, j]``."""
    return isinstance(node, ast.Subscript) and (isinstance(node.value, ast.Subscript)
                                                or isinstance(node.slice, ast.Tuple))


def _balanced(s):
    if not (s.startswith("(") and s.endswith(")")):
        return False
    depth = 0
    for k, ch in enumerate(s):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and k < len(s) - 1:
            return False
    return True


def _unparen(s):
    return s[1:-1] if _balanced(s) else s


def _wrap(s):
    return s if (s.replace("_", "").isalnum() or _balanced(s)) else f"({s})"


# ------------------------------------------------------------------ matrices written with dots

MATRICES = {"matrix", "bmatrix", "pmatrix", "Bmatrix", "vmatrix", "Vmatrix", "smallmatrix", "array"}
DOTS = {"dots": "…", "ldots": "…", "cdots": "…", "vdots": "⋮", "ddots": "⋱"}
ELEMENTWISE = {"exp", "log", "sqrt", "sigmoid", "tanh", "relu", "heaviside"}
_VECTOR_ROLES = {"preactivation", "activation", "bias", "input", "output", "target"}


class _NoPattern(Exception):
    pass


def _matrix_cells(node, tex, names=None):
    """The rows of a matrix environment, each a list of cells (a cell is its list of tokens)."""
    rows, row, cell = [], [], []
    for tok in _tokens(node.nodelist, tex, names):
        if tok.kind == "macro" and tok.value == "\\":
            rows.append(row + [cell])
            row, cell = [], []
        elif tok.kind == "char" and tok.value == "&":
            row.append(cell)
            cell = []
        else:
            cell.append(tok)
    rows.append(row + [cell])
    if len(rows) > 1 and rows[-1] == [[]]:  # a closing \\ before \end
        rows.pop()
    return rows


def _read_matrix(p, tok):
    """A matrix written with dots, read as the one formula its corners show: a diagonal
    ``x_1 … ⋱ … x_n`` is diag(x), a column ``x_1, ⋮, x_n`` is x, a row ``x_1 ⋯ x_n`` is xᵀ, and
    ``a_{11} ⋯ a_{1n} / ⋮ ⋱ ⋮ / a_{m1} ⋯ a_{mn}`` is a.  The entries between the corners must be
    dots, or follow the corners' formula; blank entries are 0.  Every reading carries a note."""
    env = tok.node.environmentname
    if env in ("vmatrix", "Vmatrix"):
        raise TexError(f"\\begin{{{env}}} is a determinant, which the claim language cannot write", tok.pos, p.tex)
    grid = []
    for row in tok.value:
        cells = []
        for cell in row:
            toks = [t for t in cell if not (t.kind == "macro" and t.value in IGNORED)]
            if not toks:
                cells.append(None)
            elif len(toks) == 1 and toks[0].kind == "macro" and toks[0].value in DOTS:
                cells.append(DOTS[toks[0].value])
            else:
                end = toks[-1].node.pos + toks[-1].node.len if toks[-1].node is not None else toks[-1].pos + 1
                cells.append((p._child(toks, end).parse_all(), toks[0].pos))
        grid.append(cells)
    if len(grid) == 1 and len(grid[0]) == 1 and isinstance(grid[0][0], tuple):  # \begin{pmatrix} x \end{pmatrix}
        p.notes.append(f"read the {env} with the one entry {grid[0][0][0]} as parentheses")
        return grid[0][0][0]
    if len(grid) == 1 and isinstance(grid[0][0], str) and isinstance(grid[0][-1], str) and \
            [c[0] for c in grid[0] if isinstance(c, tuple) and c[0] != "0"][1:] == []:
        raise TexError(f"cannot read this {env}: which column holds the entry between the zeros is not printed",
                       tok.pos, p.tex)
    if not any(isinstance(c, str) for row in grid for c in row):
        raise TexError(f"a {env} written out entry by entry (no \\dots, \\vdots, \\ddots) cannot be read: "
                       "the claim language has no matrix literal", tok.pos, p.tex)
    if len({len(row) for row in grid}) != 1:
        raise TexError(f"the rows of this {env} have different numbers of entries", tok.pos, p.tex)
    rows, cols = len(grid), len(grid[0])
    blank = any(c is None for row in grid for c in row)
    if rows == cols > 1 and all(grid[k][k] is not None for k in range(rows)) and \
            all(not isinstance(grid[i][j], tuple) or grid[i][j][0] == "0"
                for i in range(rows) for j in range(cols) if i != j):
        vector, ends = _corners(p, tok, [grid[k][k] for k in range(rows)], "⋱", 1)
        text = f"diag({vector})"
        shown = f"{grid[0][0][0]} … {grid[-1][-1][0]} on its diagonal"
    elif cols == 1 and rows > 1:
        vector, ends = _corners(p, tok, [row[0] for row in grid], "⋮", 1)
        text, shown = vector, f"the column {grid[0][0][0]} … {grid[-1][0][0]}"
    elif rows == 1 and cols > 1:
        vector, ends = _corners(p, tok, grid[0], "…", 1)
        text, shown = f"{_atom_text(vector)}.T", f"the row {grid[0][0][0]} … {grid[0][-1][0]}"
    elif rows > 2 and cols > 2:
        text, ends = _matrix_corners(p, tok, grid)
        shown = f"the entries {grid[0][0][0]} … {grid[-1][-1][0]}"
    else:
        raise TexError(f"cannot read this {env}: write a diagonal x_1 … \\ddots … x_n, a column x_1 \\vdots x_n, "
                       "a row x_1 \\cdots x_n or a matrix a_{11} \\cdots a_{mn}", tok.pos, p.tex)
    if blank:
        shown += ", blank entries 0"
    p.notes.append(f"read the {env} with {shown} as {text}" + ("" if ends is None else
                   f" (the entries 1..{ends} taken to be all of them)"))
    return text


def _cell(p, tok, cell):
    if not isinstance(cell, tuple):
        raise TexError("a corner of a matrix written with dots must be an entry", tok.pos, p.tex)
    return cell


def _corners(p, tok, line, dots, dims):
    """The vector whose entries 1 … n the cells of ``line`` show (the first and last an entry, the
    ones between ``dots`` or entries of the same formula), and the end index if it is not known
    to be the vector's length (else None)."""
    first, last = _cell(p, tok, line[0]), _cell(p, tok, line[-1])
    if not any(c == dots for c in line[1:-1]):
        raise TexError(f"expected {dots} between the first and the last entry", tok.pos, p.tex)
    vector, end, bases = _pattern_of(p, first, last, dims)
    for k, cell in enumerate(line[1:-1], start=2):
        if cell == dots:
            continue
        if not isinstance(cell, tuple):
            raise TexError(f"expected an entry or {dots} between {first[0]} and {last[0]}", tok.pos, p.tex)
        same, index, _ = _pattern_of(p, first, cell, dims, placeholder=True)
        if same != _pattern_of(p, first, last, dims, placeholder=True)[0] or _unparse(index) != str(k):
            raise TexError(f"the entry {cell[0]} does not follow the pattern of {first[0]} … {last[0]}", cell[1], p.tex)
    return vector, (None if _is_length(p, bases, end) else _unparse(end))


def _matrix_corners(p, tok, grid):
    top, bottom = grid[0], grid[-1]
    first, last = _cell(p, tok, top[0]), _cell(p, tok, bottom[-1])
    matrix, end, bases = _pattern_of(p, first, last, 2)
    rows_end, cols_end = end.elts
    for cell, want in ((top[-1], (1, cols_end)), (bottom[0], (rows_end, 1))):
        cell = _cell(p, tok, cell)
        _, corner, _ = _pattern_of(p, first, cell, 2, allow_first=True)
        got = tuple(_unparse(e) for e in corner.elts)
        if got != tuple(_unparse(w) if not isinstance(w, int) else str(w) for w in want):
            raise TexError(f"the corner {cell[0]} does not follow the pattern of {first[0]} … {last[0]}", cell[1], p.tex)
    # The cells between the corners: dots, or entries of the formula at their own row and column —
    # known where no dotted row (column) comes before them (then it is their number) or after them
    # (then it counts back from the last).
    dotted_rows = [i for i, row in enumerate(grid) if isinstance(row[0], str)]  # ⋮ where a row is skipped
    dotted_cols = [j for j, cell in enumerate(grid[0]) if isinstance(cell, str)]  # … where a column is

    def index(k, dotted, count, end):
        if not dotted or k < dotted[0]:
            return str(k + 1)
        if k > dotted[-1]:
            back = count - 1 - k
            return _unparse(end) if back == 0 else f"{_unparse(end)} - {back}"
        return None

    for i, row in enumerate(grid):
        for j, cell in enumerate(row):
            if (i, j) in ((0, 0), (0, len(row) - 1), (len(grid) - 1, 0), (len(grid) - 1, len(row) - 1)):
                continue
            if isinstance(cell, str):
                continue
            if cell is None:
                raise TexError(f"expected an entry or dots in row {i + 1}, column {j + 1} of the matrix", tok.pos, p.tex)
            same, at, _ = _pattern_of(p, first, cell, 2, allow_first=True)
            want = (index(i, dotted_rows, len(grid), rows_end), index(j, dotted_cols, len(row), cols_end))
            got = tuple(_unparse(e) for e in at.elts)
            if same != matrix or any(w is not None and w != g for w, g in zip(want, got)):
                raise TexError(f"the entry {cell[0]} does not follow the pattern of {first[0]} … {last[0]}", cell[1],
                               p.tex)
    if not dotted_rows or not dotted_cols:
        raise TexError("a matrix written with dots needs a row of \\vdots and a column of \\cdots", tok.pos, p.tex)
    return matrix, f"{_unparse(rows_end)}, 1..{_unparse(cols_end)}"


_PER_EXAMPLE = {"activation", "preactivation", "input", "output", "target", "onehot", "label"}


def _per_example(p, body, var, batch):
    """The body of a sum over the examples ``var`` = 1..``batch``: every per-example quantity in it
    (activations, pre-activations, inputs, targets) read as example ``var``'s — its column
    ``q[:, var]``, its entry ``q[k, var]`` — as ``y_i``, ``a^L(x_i)`` print it (noted)."""
    def role(name):
        return _symbol_role(p, name)

    def column(node, entry=None):
        index = ast.Name(var, ast.Load())
        return ast.Subscript(node, ast.Tuple([entry or ast.Slice(), index], ast.Load()), ast.Load())

    def walk(node):
        if isinstance(node, ast.Name) and role(node.id) in _PER_EXAMPLE and role(node.id) not in LAYERED:
            return column(node)
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and role(node.value.id) in _PER_EXAMPLE:
            if role(node.value.id) in LAYERED:
                return column(node)  # a[L]
            same = isinstance(node.slice, ast.Name) and node.slice.id == var  # y_i: example i
            return column(node.value, None if same else node.slice)
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Subscript) and \
                isinstance(node.value.value, ast.Name) and role(node.value.value.id) in _PER_EXAMPLE & set(LAYERED):
            same = isinstance(node.slice, ast.Name) and node.slice.id == var
            return column(node.value, None if same else node.slice)  # a[L][k]: entry k of example i
        for name, value in ast.iter_fields(node):
            if isinstance(value, list):
                setattr(node, name, [walk(v) if isinstance(v, ast.AST) else v for v in value])
            elif isinstance(value, ast.AST):
                setattr(node, name, walk(value))
        return node

    try:
        tree = _formula_tree(body)
    except SyntaxError:
        return body
    read = _unparse(walk(tree))
    if read != body:
        p.notes.append(f"read the sum over the examples {var} = 1..{batch} of {body} with each example's "
                       f"quantities: {read}")
    return read


_VECTORS = {"activation", "preactivation", "bias", "input", "output", "target"}
_FRESH = "ijpqrs"


def _entry_by_entry(link, symbols):
    """A link whose left side is a vector's derivative by an entry, ``∂a/∂b_j`` (``jacobian(a,
    b[j])``), read entry by entry, as its right side's unit vectors e_k ask: entry i (a letter the
    link does not use) of each side, ``jacobian(a, b)[i, j]``, e_k's entry ``(i == k)``, a vector
    v's ``v[i]``.  The derivative of an entry by an entry is the Jacobian's entry either way.
    Each reading is noted; a side with a matrix or a transpose is left as it is."""
    def role(name):
        value = symbols.get(name)
        return value.get("quantity") if isinstance(value, Mapping) else value

    def is_vector(node):
        if isinstance(node, ast.Name):
            return role(node.id) in _VECTORS and role(node.id) not in LAYERED
        return isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and \
            role(node.value.id) in _VECTORS and role(node.value.id) in LAYERED

    def entry_of(node):  # q[k] or q[l][k] of a vector q: (q, k)
        if isinstance(node, ast.Subscript) and is_vector(node.value) and not isinstance(node.slice, (ast.Tuple, ast.Slice)):
            return node.value, node.slice
        return None

    try:
        lhs, rhs = _formula_tree(link.lhs), _formula_tree(link.rhs)
    except SyntaxError:
        return link
    notes = []

    def scalar_jacobians(node):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "jacobian" and len(node.args) == 2:
            top, by = entry_of(node.args[0]), entry_of(node.args[1])
            if top and by:
                notes.append(f"read {_unparse(node)} as the entry [{_unparse(top[1])}, {_unparse(by[1])}] of "
                             "the Jacobian")
                return ast.Subscript(ast.Call(node.func, [top[0], by[0]], []),
                                     ast.Tuple([top[1], by[1]], ast.Load()), ast.Load())
        for name, value in ast.iter_fields(node):
            if isinstance(value, list):
                setattr(node, name, [scalar_jacobians(v) if isinstance(v, ast.AST) else v for v in value])
            elif isinstance(value, ast.AST):
                setattr(node, name, scalar_jacobians(value))
        return node

    lhs, rhs = scalar_jacobians(lhs), scalar_jacobians(rhs)
    vector_by_entry = isinstance(lhs, ast.Call) and getattr(lhs.func, "id", "") == "jacobian" and \
        is_vector(lhs.args[0]) and entry_of(lhs.args[1]) is not None or (  # ∂L/∂w_i, w_i a row of W
            isinstance(lhs, ast.Attribute) and isinstance(lhs.value, ast.Call) and
            getattr(lhs.value.func, "id", "") == "grad" and len(lhs.value.args) == 2 and _row(lhs.value.args[1]))
    if vector_by_entry:
        used = {n.id for side in (lhs, rhs) for n in ast.walk(side) if isinstance(n, ast.Name)}
        free = next((c for c in _FRESH if c not in used), None)
        sides = [_entries(side, free, symbols, is_vector, entry_of) for side in (lhs, rhs)] if free else [None]
        if None not in sides:
            lhs, rhs = sides
            notes.append(f"read the vector equation {link.lhs} = {link.rhs} entry by entry: its entry {free}"
                         + (f" (e_k the unit vector, its entry {free} is ({free} == k))" if "e[" in link.rhs else ""))
    if not notes:
        return link
    from dataclasses import replace
    return replace(link, lhs=_unparse(lhs), rhs=_unparse(rhs), notes=link.notes + tuple(notes))


def _entries(node, free, symbols, is_vector, entry_of):
    """Entry ``free`` of a vector formula built from vectors, scalars, + − * / and @ with a scalar
    (as ``v @ jacobian(z, b)[k, j]`` is): None where it holds a matrix or a transpose."""
    index = ast.Name(free, ast.Load())
    unit = [n for n in ("e",) if n not in symbols]

    def at(row):  # W[l][i, :] → W[l][i, free]
        return ast.Subscript(row.value, ast.Tuple([row.slice.elts[0], index], ast.Load()), ast.Load())

    def walk(node):  # (the entry's formula, whether it is a vector) or None
        if isinstance(node, ast.Attribute) and _row(node.value):
            return at(node.value), True  # w_i's entry
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Call) and len(node.value.args) == 2 and \
                getattr(node.value.func, "id", "") == "grad" and _row(node.value.args[1]):
            return ast.Call(node.value.func, [node.value.args[0], at(node.value.args[1])], []), True
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult) and isinstance(node.left, ast.Attribute) \
                and isinstance(node.left.value, ast.Call) and getattr(node.left.value.func, "id", "") == "jacobian" \
                and len(node.left.value.args) == 2 and _row(node.left.value.args[1]):
            by = ast.Call(node.left.value.func, [node.left.value.args[0], at(node.left.value.args[1])], [])
            return ast.BinOp(ast.Attribute(by, "T", ast.Load()), ast.MatMult(), node.right), True  # ∂z/∂w_i's row
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "jacobian" and len(node.args) == 2:
            by = entry_of(node.args[1])
            if is_vector(node.args[0]) and by:
                call = ast.Call(node.func, [node.args[0], by[0]], [])
                return ast.Subscript(call, ast.Tuple([index, by[1]], ast.Load()), ast.Load()), True
            return node, False
        if is_vector(node):
            return ast.Subscript(node, index, ast.Load()), True
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple) and isinstance(node.value, ast.Call) \
                and getattr(node.value.func, "id", "") == "jacobian":
            return node, False  # an entry of a Jacobian
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in unit \
                and not isinstance(node.slice, (ast.Tuple, ast.Slice)):
            return ast.Compare(index, [ast.Eq()], [node.slice]), True  # e_k: the unit vector
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.MatMult)):
            left, right = walk(node.left), walk(node.right)
            if left is None or right is None:
                return None
            op = ast.Mult() if isinstance(node.op, ast.MatMult) else node.op
            if isinstance(node.op, ast.MatMult) and left[1] and right[1]:
                return None  # two vectors: not a scalar factor
            return ast.BinOp(left[0], op, right[0]), left[1] or right[1]
        if isinstance(node, ast.UnaryOp):
            inner = walk(node.operand)
            return None if inner is None else (ast.UnaryOp(node.op, inner[0]), inner[1])
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "sum" and len(node.args) > 1:
            inner = walk(node.args[0])
            return None if inner is None else (ast.Call(node.func, [inner[0], *node.args[1:]], node.keywords), inner[1])
        if isinstance(node, ast.Attribute) or (isinstance(node, ast.Call) and getattr(node.func, "id", "") in
                                               ("jacobian", "diag", "outer")):
            return None
        if bare_vector(node) or matrix(node):
            return None  # a vector inside a call, or a matrix: not read entry by entry
        return node, False

    def matrix(node):  # a weight matrix somewhere in node (its entries W[l][i, j] aside)
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple):
            return False
        if isinstance(node, ast.Name):
            value = symbols.get(node.id)
            return (value.get("quantity") if isinstance(value, Mapping) else value) == "weight"
        return any(matrix(child) for child in ast.iter_child_nodes(node))

    def bare_vector(node):  # a whole vector somewhere in node (its entries q[k] aside)
        if entry_of(node) is not None:
            return False
        return is_vector(node) or any(bare_vector(child) for child in ast.iter_child_nodes(node))

    out = walk(node)
    return None if out is None or not out[1] else out[0]


def _is_entry(text, symbols):
    """Whether ``text`` is one entry (a[l][k], y[k]): its derivatives are the same in every layout."""
    try:
        node = _formula_tree(text)
    except SyntaxError:
        return False
    if not isinstance(node, ast.Subscript) or _row(node):
        return False
    elements = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    if any(isinstance(e, ast.Slice) for e in elements):
        return False  # a row, a column
    if isinstance(node.value, ast.Subscript):
        return True  # a[l][k]
    base = node.value.id if isinstance(node.value, ast.Name) else None
    role = symbols.get(base) if isinstance(symbols, Mapping) else None
    role = role.get("quantity") if isinstance(role, Mapping) else role
    return role not in LAYERED  # y[k]; W[l] is a layer


def _row(node):
    """Whether ``node`` is a row ``W[l][i, :]`` (an index, then the whole row)."""
    return isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple) and len(node.slice.elts) == 2 \
        and not isinstance(node.slice.elts[0], ast.Slice) and isinstance(node.slice.elts[1], ast.Slice) \
        and node.slice.elts[1].lower is None and node.slice.elts[1].upper is None


def _row_of(text):
    """``W[l][i, :]`` for a column ``W[l][i, :].T`` (w_i, row i of W), else None."""
    try:
        tree = _formula_tree(text)
    except SyntaxError:
        return None
    return _unparse(tree.value) if isinstance(tree, ast.Attribute) and _row(tree.value) else None


def _atom_text(text):
    """``text`` in parentheses unless it is one name, call, entry or transpose."""
    tree = _formula_tree(text)
    return text if isinstance(tree, (ast.Name, ast.Call, ast.Subscript, ast.Attribute)) else f"({text})"


def _formula_tree(text):
    from .language import preprocess
    return ast.parse(preprocess(text), mode="eval").body


def _unparse(node):
    from .language import show
    return show(node)


def _first_index(slice_node, dims):
    elts = slice_node.elts if isinstance(slice_node, ast.Tuple) else [slice_node]
    return len(elts) == dims and all(isinstance(e, ast.Constant) and e.value == 1 for e in elts)


def _pattern_of(p, first, last, dims, allow_first=False, placeholder=False):
    """(the formula with entry index 1 of ``first`` dropped, the index ``last`` has there, the
    quantities indexed); TexError where the two entries are not one formula."""
    ends, bases, units = [], [], []

    def walk(a, b):
        if dims == 1 and isinstance(a, ast.Compare) and isinstance(b, ast.Compare) and len(a.ops) == len(b.ops) == 1 \
                and isinstance(a.ops[0], ast.Eq) and isinstance(b.ops[0], ast.Eq) \
                and ast.dump(a.left) == ast.dump(b.left) and _first_index(a.comparators[0], 1) \
                and (allow_first or ast.dump(a.comparators[0]) != ast.dump(b.comparators[0])):
            ends.append(b.comparators[0])  # (x == 1) … (x == n): the unit vector e_x, entry by entry
            units.append(a.left)
            return ast.Name(f"UNIT{len(units) - 1}", ast.Load())
        if isinstance(a, ast.Subscript) and _first_index(a.slice, dims) and isinstance(b, ast.Subscript) \
                and ast.dump(a.value) == ast.dump(b.value) and (allow_first or ast.dump(a.slice) != ast.dump(b.slice)):
            ends.append(b.slice)
            bases.append(a.value)
            return a.value
        if type(a) is not type(b):
            raise _NoPattern
        if not isinstance(a, ast.AST):
            if a != b:
                raise _NoPattern
            return a
        fields = {}
        for name, va in ast.iter_fields(a):
            vb = getattr(b, name)
            if isinstance(va, list):
                if len(va) != len(vb):
                    raise _NoPattern
                fields[name] = [walk(x, y) for x, y in zip(va, vb)]
            else:
                fields[name] = walk(va, vb)
        return type(a)(**fields)

    try:
        tree = walk(_formula_tree(first[0]), _formula_tree(last[0]))
        if not ends or len({ast.dump(e) for e in ends}) != 1:
            raise _NoPattern
    except (_NoPattern, SyntaxError):
        raise TexError(f"cannot read {first[0]} … {last[0]} as the entries of one formula", first[1], p.tex) from None
    _check_elementwise(p, tree, first)
    text = _unparse(tree)
    for k, at in enumerate([] if placeholder else units):
        text = re.sub(rf"\bUNIT{k}\b", lambda _: f"diag(ones({_unparse(ends[0])}))[:, {_unparse(at)}]", text)
    return text, ends[0], bases


def _check_elementwise(p, tree, first):
    """Dropping the entry index is right only for a formula built entry by entry."""
    from .language import PRIME
    for node in ast.walk(tree):
        fine = isinstance(node, (ast.Name, ast.Constant, ast.Load, ast.UnaryOp, ast.USub, ast.UAdd, ast.Add,
                                 ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.Subscript))
        if isinstance(node, ast.BinOp):
            fine = isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow))
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", "")
            fine = not node.keywords and (name in ELEMENTWISE or name.endswith(PRIME) or _symbol_role(p, name) in (
                "activation_function", "hidden_activation", "output_activation"))
            if name == "grad" and len(node.args) == 2 and isinstance(node.args[0], ast.Name):
                fine = _symbol_role(p, node.args[0].id) in SCALAR_ROLES  # ∂L/∂x_k: entry k of ∂L/∂x
        if not fine:
            raise TexError(f"the entries {first[0]} … are not one formula applied entry by entry", first[1], p.tex)


def _dotted_list(p):
    """``[\\dots, x_k, \\dots]`` (the ``[`` just read): the vector whose entry k is x_k, its entry
    index dropped (noted); None when the brackets hold no dots.  Any other list with dots is an error."""
    depth, end = 0, None
    for k in range(p.i, len(p.t)):
        tok = p.t[k]
        if tok.kind == "char" and tok.value in "([":
            depth += 1
        elif tok.kind == "char" and tok.value in ")]":
            if depth == 0:
                end = k
                break
            depth -= 1
    if end is None:
        return None
    inside = p.t[p.i:end]
    if not any(t.kind == "macro" and t.value in DOTS for t in inside):
        return None
    items, cur, depth = [], [], 0
    for t in inside:
        depth += t.kind == "char" and t.value in "(["
        depth -= t.kind == "char" and t.value in ")]"
        if depth == 0 and t.kind == "char" and t.value == ",":
            items.append(cur)
            cur = []
        else:
            cur.append(t)
    items.append(cur)
    dots = [len(item) == 1 and item[0].kind == "macro" and item[0].value in DOTS for item in items]
    start = p.t[p.i - 1].pos
    if len(items) != 3 or dots != [True, False, True]:
        raise TexError("cannot read this list with dots: write [\\dots, x_k, \\dots] for the vector of the x_k",
                       start, p.tex)
    entry = p._child(items[1], items[1][-1].pos + 1).parse_all()
    tree = _formula_tree(entry)
    letters = {n.slice.id for n in ast.walk(tree) if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Name)
               and len(n.slice.id) == 1 and n.slice.id not in p.symbols  # an entry index, not a layer
               and not (isinstance(n.value, ast.Name) and _symbol_role(p, n.value.id) in LAYERED)}
    if len(letters) != 1:
        raise TexError(f"cannot tell which index of {entry} the list runs over", start, p.tex)
    (letter,) = letters

    def drop(node):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Name) and node.slice.id == letter:
            return drop(node.value)
        for name, value in ast.iter_fields(node):
            if isinstance(value, list):
                setattr(node, name, [drop(v) if isinstance(v, ast.AST) else v for v in value])
            elif isinstance(value, ast.AST):
                setattr(node, name, drop(value))
        return node

    vector = drop(tree)
    _check_elementwise(p, vector, (entry, items[1][0].pos))
    p.i = end + 1
    text = _unparse(vector)
    p.notes.append(f"read [… {entry} …] as the vector of the entries {entry} over {letter}: {text}")
    return _atom_text(text)


def _symbol_role(p, name):
    role = p.symbols.get(name) if isinstance(p.symbols, Mapping) else None
    return role.get("quantity") if isinstance(role, Mapping) else role


def _is_length(p, bases, end):
    """Whether ``end`` is n[l], the width of layer l, for every base q[l] (a per-layer vector)."""
    if not (isinstance(end, ast.Subscript) and isinstance(end.value, ast.Name) and _symbol_role(p, end.value.id) == "width"):
        return False
    return all(isinstance(b, ast.Subscript) and isinstance(b.value, ast.Name) and _symbol_role(p, b.value.id) in _VECTOR_ROLES
               and ast.dump(b.slice) == ast.dump(end.slice) for b in bases)


SCALAR_ROLES = {"loss", "cost", "objective", "scalar"}
ENTRY_RANK = {"weight": 2, "bias": 1, "preactivation": 1, "activation": 1}  # indices of one entry


def _top_split(text):
    """``text`` cut at its commas outside brackets: ``i + 1, m, j`` → three parts."""
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(text):
        depth += ch in "([" and 1 or 0
        depth -= ch in ")]" and 1 or 0
        if ch == "," and depth == 0:
            parts.append(text[start:k].strip())
            start = k + 1
    return parts + [text[start:].strip()]


ENVIRONMENTS = {"align", "align*", "aligned", "split", "gather", "gather*", "gathered", "equation",
                "equation*", "eqnarray", "eqnarray*", "multline", "multline*"}
ROW_IGNORED = {"nonumber", "notag", "label", "tag"}


def translate(tex: str, symbols: Mapping[str, object], defined: Iterable[str] = (),
              names: Mapping[str, str] | None = None, layout: str | None = None) -> list[TexLink]:
    """The links of the chains written in ``tex``, in the claim language: one chain, or one per row
    of an ``align``/``aligned`` environment (a row that starts with ``&=`` continues the previous
    row's chain).  ``names`` is the file's ``[tex]`` table: how the document prints a name
    (``\\mathcal{L}(\\theta)``) → the claim language's name (``Lθ``).  ``layout`` is the
    document's layout of derivatives: "denominator" reads ∂a/∂b (two vectors) as jacobian(a, b).T."""
    patterns = spellings(names)
    nodes, context = _prepare(tex, symbols, defined, patterns)
    layered, scalars, perlayer = context
    rows, cur = [], []
    for tok in _tokens(nodes, tex, patterns):
        if tok.kind == "macro" and tok.value == "\\":
            rows.append(cur)
            cur = []
        elif not (tok.kind == "char" and tok.value == "&") and not (tok.kind == "macro" and tok.value in ROW_IGNORED):
            cur.append(tok)
    rows.append(cur)
    rows = [piece for row in rows for piece in _prose(row, tex)]  # (tokens, notes, own chain)
    for row, _, _ in rows:  # a formula's closing punctuation: z = Wa + b,
        while row and row[-1].kind == "char" and row[-1].value in ".,;":
            row.pop()
    rows = [row for row in rows if row[0]]
    if not rows:
        raise TexError("no '=' in the formula", len(tex), tex)
    links: list[TexLink] = []
    previous = None
    for k, (row, prose_notes, own) in enumerate(rows):
        end = rows[k + 1][0][0].pos if k + 1 < len(rows) else len(tex)
        continues = row[0].kind == "char" and row[0].value == "=" and not own
        if continues and previous is None:
            raise TexError("a row starts with '=' but no row is above it", row[0].pos, tex)
        row, for_range = _quantifier(row, tex, layered, scalars, perlayer, dict(symbols), patterns)
        row_links = _chain(row, tex, end, layered, scalars, perlayer, dict(symbols),
                           previous if continues else None, patterns, prose_notes, layout=_layout(layout))
        if for_range:
            row_links = [replace(link, for_range=for_range) for link in row_links]
        links += row_links
        previous = row_links[0]
    return [_entry_by_entry(link, symbols) for link in links]


LAYOUTS = ("numerator", "denominator")


def _layout(layout):
    if layout is not None and layout not in LAYOUTS:
        raise TexError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}", 0)
    return None if layout == "numerator" else layout


LEADING_PROSE = {"now", "so", "thus", "hence", "then", "therefore", "finally", "also", "and", "recall", "note",
                 "since", "here", "i.e.", "ie", "similarly", "clearly"}
TRAILING_PROSE = {"where", "recall", "with", "for", "since", "because", "as", "i.e.", "ie", "e.g.", "eg", "which",
                  "is", "are", "note", "by", "using", "from", "here", "then", "so", "hence", "thus", "in", "see",
                  "whose", "the", "this", "it", "we"}
CONDITION_PROSE = {"if", "when", "whenever", "provided", "unless", "assuming", "iff"}
CONNECTIVES = {"therefore", "because"}


def _prose(row, tex):
    """A row without its prose: a leading ``\\therefore`` or ``\\text{Now, }`` is dropped, a
    ``\\text{ and }`` separates two formulas, and a ``\\text{ where …}`` (``recall``, ``for``, a
    parenthesis …) ends the formula: the rest is dropped, with a note.  A ``\\text{ if …}`` is a
    condition the claim would lose: it cannot be read outside ``cases``.  Returns (tokens, notes,
    own chain) for each formula of the row."""
    k = 0
    while k < len(row) - 1:
        word = _text_word(row[k])
        if row[k].kind == "macro" and row[k].value in CONNECTIVES:
            k += 1
        elif word is not None and (word.split(" ")[0].strip(",.;:") in LEADING_PROSE or word.endswith((",", ":"))):
            k += 1
        else:
            break
    pieces, cur, notes = [], [], []
    for n, tok in enumerate(row[k:], start=k):
        word = _text_word(tok)
        first = word.split(" ")[0].strip(",.;:") if word else ""
        if word is None or word == "" or (first not in TRAILING_PROSE | CONDITION_PROSE and first != "and"
                                          and not word.startswith(("(", ","))):
            cur.append(tok)
        elif word in ("and", ", and", "and,"):
            pieces.append(cur)
            cur = []
        elif first in CONDITION_PROSE:
            raise TexError(f"cannot read the condition \\text{{{word}}} outside a cases environment", tok.pos, tex)
        else:
            shown = " ".join(tex[tok.pos:row[-1].pos + 1 + (row[-1].node.len - 1 if row[-1].node else 0)].split())
            notes.append(f"dropped the prose after the formula: {shown if len(shown) <= 60 else shown[:59] + '…'}")
            break
    pieces.append(cur)
    return [(piece, notes if j == len(pieces) - 1 else [], j > 0) for j, piece in enumerate(pieces)]


def _quantifier(row, tex, layered, scalars, perlayer, symbols, patterns):
    """A row without its trailing ``\\forall k = 1(1)L`` (also ``1(1)\\overline{L-1}``,
    ``1, 2, \\dots, L``), and that quantifier as a range ``k in 1..L``, or None."""
    at = next((k for k, t in enumerate(row) if t.kind == "macro" and t.value == "forall"), None)
    if at is None:
        return row, None
    where, toks = row[at], row[at + 1:]
    while row[:at] and row[at - 1].kind == "char" and row[at - 1].value in ",;":
        at -= 1
    member = len(toks) > 3 and toks[1].kind == "macro" and toks[1].value == "in" \
        and toks[2].kind == "macro" and toks[2].value == "{"  # \forall k \in \{1, \dots, L\}
    if len(toks) < 3 or toks[0].kind != "char" or not toks[0].value.isalpha() \
            or not member and (toks[1].kind != "char" or toks[1].value != "="):
        raise TexError("a quantifier is written \\forall k = 1(1)L or \\forall k = 1, 2, \\dots, L", where.pos, tex)
    letter, rest = toks[0].value, toks[3 if member else 2:]
    while rest and rest[-1].kind == "char" and rest[-1].value in ".,;":
        rest = rest[:-1]
    if member:
        if not rest or rest[-1].kind != "macro" or rest[-1].value != "}":
            raise TexError("expected '\\}' closing the set of the quantifier", rest[-1].pos if rest else where.pos, tex)
        rest = rest[:-1]

    def read(part, end):
        flat = []
        for t in part:  # \overline{L-1}: the bar groups, as a parenthesis would
            if t.kind == "macro" and t.value == "overline":
                argd = getattr(t.node, "nodeargd", None)
                flat += _tokens([a for a in (argd.argnlist if argd else []) if a is not None], tex, patterns)
            else:
                flat.append(t)
        if not flat:
            raise TexError("a quantifier's range needs both ends", end, tex)
        p = _Parser(flat, tex, layered, [], end)
        p.scalars, p.symbols, p.perlayer, p.shapes = scalars, symbols, perlayer, []
        p.names = patterns
        return p.parse_all()

    end = rest[-1].pos + 1 if rest else where.pos
    step = next((k for k in range(1, len(rest) - 3) if rest[k].kind == "char" and rest[k].value == "("
                 and rest[k + 2].kind == "char" and rest[k + 2].value == ")"), None)
    if step is not None:  # a(s)b: from a in steps of s to b
        if read(rest[step + 1:step + 2], end) != "1":
            raise TexError("a quantifier's step must be 1", rest[step + 1].pos, tex)
        low, high = read(rest[:step], end), read(rest[step + 3:], end)
    else:
        commas = [k for k, t in enumerate(rest) if t.kind == "char" and t.value == ","]
        if not commas:
            raise TexError("a quantifier is written \\forall k = 1(1)L or \\forall k = 1, 2, \\dots, L", where.pos, tex)
        low, high = read(rest[:commas[0]], end), read(rest[commas[-1] + 1:], end)
        if high.isdigit() and not low.isdigit():  # k = L-1, \dots, 1: the same layers, counted down
            low, high = high, low
    return row[:at], f"{letter} in {_unparen(low)}..{_unparen(high)}"


def _prepare(tex, symbols, defined, patterns=()):
    defined = list(defined)
    layered = set(symbols) | {d.split("[")[0] for d in defined} | {name for _, name, _ in patterns}
    if "sigma" in layered:
        layered.add("σ")
    scalars = {k for k, v in symbols.items() if str(v) in SCALAR_ROLES}
    perlayer = {k for k, v in symbols.items() if str(v) in LAYERED or str(v) not in QUANTITIES} \
        | {d.split("[")[0] for d in defined}
    try:
        nodes, _, _ = LatexWalker(tex, tolerant_parsing=False).get_latex_nodes()
    except LatexWalkerError as e:
        raise TexError(str(e).splitlines()[0], getattr(e, "pos", 0) or 0, tex) from None
    return _environment_body(nodes, tex), (layered, scalars, perlayer)


def translate_expression(tex: str, symbols: Mapping[str, object], defined: Iterable[str] = (),
                         names: Mapping[str, str] | None = None, layout: str | None = None) -> TexLink:
    """One expression (no ``=``), as the right side of a link whose left side is empty."""
    patterns = spellings(names)
    nodes, (layered, scalars, perlayer) = _prepare(tex, symbols, defined, patterns)
    toks = [t for t in _tokens(nodes, tex, patterns) if not (t.kind == "macro" and t.value in ROW_IGNORED)]
    if not toks:
        raise TexError("empty formula", 0, tex)
    notes: list[str] = []
    p = _Parser(toks, tex, layered, notes, len(tex))
    p.scalars, p.symbols, p.perlayer, p.shapes = scalars, dict(symbols), perlayer, []
    p.names, p.layout = patterns, _layout(layout)
    text = p.parse_all()
    line, column = _line_column(tex, toks[0].pos)
    return TexLink("", text, toks[0].pos, len(tex), tuple(notes), None, line, column)


def _environment_body(nodes, tex):
    """The body of a formula that is one ``align``/``aligned``/… environment; else the nodes."""
    from pylatexenc.latexwalker import LatexEnvironmentNode
    solid = [n for n in nodes or () if not (isinstance(n, LatexCharsNode) and not n.chars.strip())]
    if len(solid) == 1 and isinstance(solid[0], LatexEnvironmentNode):
        env = solid[0]
        if env.environmentname not in ENVIRONMENTS:
            raise TexError(f"cannot read the environment {env.environmentname}", env.pos, tex)
        return _environment_body(env.nodelist, tex)
    return nodes


def _line_column(tex, offset):
    return tex.count("\n", 0, offset) + 1, offset - (tex.rfind("\n", 0, offset) + 1) + 1


ARROWS = {"rightarrow", "to", "longrightarrow"}
GOALS = {"min", "max", "arg"}


def _goal(toks, tex):
    """``F = … \\rightarrow \\min_b``: the formula without its trailing goal, and a note (else none)."""
    for k, tok in enumerate(toks[:-1]):
        nxt = toks[k + 1]
        if tok.kind == "macro" and tok.value in ARROWS and nxt.kind == "macro" and nxt.value in GOALS:
            last = toks[-1]
            end = last.node.pos + last.node.len if last.node is not None else last.pos + len(str(last.value))
            return toks[:k], f"dropped the trailing '{' '.join(tex[tok.pos:end].split())}': what is optimised, not a formula"
    return toks, None


def _chain(toks, tex, stop, layered, scalars, perlayer, symbols, previous, patterns=(), extra_notes=(),
           layout=None):
    toks, goal = _goal(toks, tex)
    pieces, cur, depth = [], [], 0
    for tok in toks:
        if tok.kind == "char" and tok.value in "([":
            depth += 1
        elif tok.kind == "char" and tok.value in ")]":
            depth = max(depth - 1, 0)
        if tok.kind == "char" and tok.value == "=" and depth == 0:  # [i = j] inside: an Iverson bracket
            pieces.append((cur, tok.pos))
            cur = []
        else:
            cur.append(tok)
    pieces.append((cur, stop))
    if previous is not None:
        pieces = pieces[1:]
    elif len(pieces) < 2:
        raise TexError("no '=' in the formula", stop, tex)
    sides = []
    for part, end in pieces:
        if not part:
            raise TexError("empty side of '='", end, tex)
        notes: list[str] = []
        part, member = _membership(part, tex)
        p = _Parser(part, tex, layered, notes, end)
        p.scalars, p.symbols, p.perlayer, p.shapes = scalars, symbols, perlayer, []
        p.names, p.layout = patterns, layout
        text = p.parse_all()
        shape = None
        if member is not None:
            shape = p._child(member[0], end).parse_all(), p._child(member[1], end).parse_all() if member[1] else "1"
            notes.append(f"read the membership ∈ ℝ^({shape[0]} × {shape[1]}) as the shape of {text} (checked)")
        for annotated, annotated_shape in p.shapes:
            if annotated == text and shape is None:
                shape = annotated_shape
                text = _unparen(text)
            else:
                notes.append(f"the shape annotation {annotated_shape[0]}×{annotated_shape[1]} inside a side "
                             "is not checked (only one on a whole side is)")
        sides.append((text, part[0].pos, end, notes, shape))
    if previous is not None:
        lhs, lstart, lnotes, lshape = previous.lhs, toks[0].pos, [], None
    else:
        if len(sides) > 2 and _names_a_function(pieces[0][0], symbols):
            first = " ".join(tex[pieces[0][0][0].pos:pieces[0][0][-1].pos + 1].split())
            sides = sides[1:]
            sides[0][3].append(f"read {first} = {sides[0][0]} = … as naming {first}; the chain's left side is "
                               f"{sides[0][0]}")
        (lhs, lstart, _, lnotes, lshape), sides = sides[0], sides[1:]
    if goal:
        sides[-1][3].append(goal)
    line, column = _line_column(tex, lstart)
    last = len(sides) - 1  # the prose after a formula follows its last side
    return [TexLink(lhs, rhs, lstart, end, tuple(dict.fromkeys(lnotes + notes + (list(extra_notes) if k == last else []))),
                    shape or lshape, line, column)
            for k, (rhs, _, end, notes, shape) in enumerate(sides)]
