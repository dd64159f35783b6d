"""Read a LaTeX formula (as printed in a paper) into the claim language.

``translate(tex, symbols, defined)`` returns one ``TexLink`` per ``=`` of a chain ``a = b = c``
(each link is "left side of the chain = this expression").  Any reading that is a guess is
recorded in ``TexLink.notes``; LaTeX the reader cannot read raises ``TexError`` with the column.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

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
    shape: tuple | None = None


GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "eta", "theta", "lambda",
         "mu", "sigma", "tau", "phi", "varphi", "psi", "omega", "xi", "rho", "kappa", "nu"}
IGNORED = {",", ";", "!", " ", "quad", "qquad", "displaystyle", "right", "big", "Big",
           "bigg", "Bigg", "mathbf", "boldsymbol", "vec", "mathrm", "bm"}
PRODUCTS = {"odot": "∘", "circ": "∘", "cdot": "*", "times": "*"}
FUNCS = {"log": "log", "ln": "log", "exp": "exp"}


class _Tok:
    __slots__ = ("kind", "value", "pos", "node", "_args")

    def __init__(self, kind, value, pos, node=None):
        self.kind, self.value, self.pos, self.node, self._args = kind, value, pos, node, None


def _tokens(nodes, tex):
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
            out.append(_Tok("group", _tokens(node.nodelist, tex), node.pos, node))
        elif isinstance(node, LatexMacroNode):
            out.append(_Tok("macro", node.macroname, node.pos, node))
        elif isinstance(node, LatexSpecialsNode):
            out.append(_Tok("char", node.specials_chars, node.pos))
        else:
            raise TexError(f"cannot read {type(node).__name__[5:-4].lower()} here", node.pos, tex)
    return out


class _Parser:
    def __init__(self, toks, tex, layered, notes, end):
        self.t, self.i, self.tex, self.layered, self.notes = toks, 0, tex, layered, notes
        self.end = end

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
        return _Parser(tok.value, self.tex, self.layered, self.notes, end)

    def macro_arg(self, mtok):
        """The next argument of macro ``mtok``: pylatexenc attaches known macros' arguments."""
        pending = getattr(mtok, "_args", None)
        if pending is None:
            argd = getattr(mtok.node, "nodeargd", None)
            pending = [a for a in (argd.argnlist if argd else []) if a is not None]
            mtok._args = pending
        if pending:
            node = pending.pop(0)
            toks = _tokens([node], self.tex)
            tok = toks[0]
            if tok.kind == "group":
                return self.sub(tok), tok
            return _Parser(toks, self.tex, self.layered, self.notes, node.pos + node.len), tok
        return self.arg()

    def arg(self):
        tok = self.peek()
        if tok is None:
            self.fail("missing argument")
        self.i += 1
        if tok.kind == "group":
            p = self.sub(tok)
            return p, tok
        return _Parser([tok], self.tex, self.layered, self.notes, tok.pos + 1), tok

    def parse_all(self):
        e = self.expr()
        if self.peek() is not None:
            self.fail(f"unexpected '{self._show(self.peek())}'")
        return e

    def _show(self, tok):
        return "\\" + tok.value if tok.kind == "macro" else ("{" if tok.kind == "group" else tok.value)

    def expr(self):
        tok = self.peek()
        if tok is not None and tok.kind == "char" and tok.value == "-":
            self.i += 1
            out = "-" + self.term()[0]
        else:
            out = self.term()[0]
        while (tok := self.peek()) is not None and tok.kind == "char" and tok.value in "+-":
            self.i += 1
            out = f"{out} {tok.value} {self.term()[0]}"
        return out

    def _starts_atom(self, tok):
        if tok is None:
            return False
        if tok.kind == "char":
            return tok.value.isalnum() or tok.value in "(["
        if tok.kind == "group":
            return True
        return tok.value not in PRODUCTS and tok.value not in ("right",)

    def term(self):
        out, scalar = self.factor()
        while True:
            tok = self.peek()
            if tok is not None and tok.kind == "macro" and tok.value in PRODUCTS:
                self.i += 1
                rhs, rs = self.factor()
                out, scalar = f"{out} {PRODUCTS[tok.value]} {rhs}", scalar and rs
            elif tok is not None and tok.kind == "char" and tok.value == "/":
                self.i += 1
                rhs, rs = self.factor()
                out, scalar = f"{out} / {rhs}", scalar and rs
            elif self._starts_atom(tok):
                rhs, rs = self.factor()
                op = "*" if scalar or rs else "@"
                out, scalar = f"{out} {op} {rhs}", scalar and rs
            else:
                return out, scalar

    def factor(self):
        base, scalar, name = self.atom()
        while (tok := self.peek()) is not None and tok.kind == "char" and tok.value in "^_'":
            self.i += 1
            if tok.value == "'":
                base = base + "'"
                continue
            p, argtok = self.arg()
            if tok.value == "^" and self._is_transpose(p):
                base = f"{base}.T"
                continue
            inner = p.parse_all()
            if tok.value == "_" and name is None:
                self.fail("cannot read a subscript here")
            if tok.value == "^" and name not in self.layered:
                base, scalar = f"{base} ** {_wrap(inner)}", scalar
                continue
            inner = inner.strip("()") if inner.startswith("(") and inner.endswith(")") else inner
            if "," not in inner and inner.isalpha() and len(inner) > 1 and tok.value == "_":
                inner = ", ".join(inner)
                self.notes.append(f"read the subscript of {name} as the entry [{inner}]")
            base = f"{base}[{inner}]"
            if tok.value == "_" and name in self.layered and "," not in inner:
                self.notes.append(f"read {name}_{inner} as layer {inner} of {name}")
        if self.peek() is not None and base.endswith("'") and self.peek().kind == "char" and self.peek().value == "(":
            self.i += 1
            inner = self.expr()
            self._close(")")
            base = f"{base}({inner})"
        return base, scalar

    def _is_transpose(self, p):
        toks = [t for t in p.t if not (t.kind == "macro" and t.value in IGNORED | {"mathsf"})]
        flat = []
        for t in toks:
            flat.extend(t.value if t.kind == "group" else [t])
        return len(flat) == 1 and ((flat[0].kind == "char" and flat[0].value == "T")
                                   or (flat[0].kind == "macro" and flat[0].value in ("top", "intercal")))

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
        if tok.kind == "group":
            return _wrap(self.sub(tok).parse_all()), False, None
        if tok.kind == "char":
            if tok.value.isdigit():
                num = tok.value
                while (n := self.peek()) is not None and n.kind == "char" and (n.value.isdigit() or n.value == "."):
                    num += n.value
                    self.i += 1
                return num, True, None
            if tok.value.isalpha():
                return tok.value, False, tok.value
            if tok.value in "([":
                inner = self.expr()
                self._close(")" if tok.value == "(" else "]")
                return f"({inner})", False, None
            raise TexError(f"unexpected '{tok.value}'", tok.pos, self.tex)
        name = tok.value
        if name == "left":
            nxt = self.peek()
            if nxt is None or nxt.kind != "char" or nxt.value not in "([":
                self.fail("expected '(' or '[' after \\left")
            return self.atom()
        if name == "frac":
            num, ntok = self.macro_arg(tok)
            den, dtok = self.macro_arg(tok)
            d = self._partial(num, den)
            if d is not None:
                return d, False, None
            a, b = num.parse_all(), den.parse_all()
            scalar = a.replace(".", "").isdigit() and b.replace(".", "").isdigit()
            return f"({a}) / ({b})" if not scalar else f"{a} / {b}", scalar, None
        if name in GREEK:
            alias = name.replace("var", "")
            nxt = self.peek()
            if nxt is not None and nxt.kind == "char" and nxt.value == "(" and alias in self.layered:
                self.i += 1
                inner = self.expr()
                self._close(")")
                return f"{alias}({inner})", False, None
            return alias, False, alias
        if name in FUNCS:
            inner, _ = self.factor()
            return f"{FUNCS[name]}({inner.strip('()') if _balanced(inner) else inner})", False, None
        if name in ("hat", "tilde", "bar"):
            p, _ = self.macro_arg(tok)
            inner = p.parse_all()
            self.notes.append(f"read \\{name}{{{inner}}} as the name {inner}_{name}")
            return f"{inner}_{name}", False, f"{inner}_{name}"
        if name in ("operatorname", "text", "mathrm"):
            p, _ = self.macro_arg(tok)
            word = "".join(t.value for t in p.t if t.kind == "char")
            return word, False, word
        raise TexError(f"unknown macro \\{name}", tok.pos, self.tex)

    def _partial(self, num, den):
        def strip(p):
            tok = p.peek()
            if tok is None or tok.kind != "macro" or tok.value != "partial":
                return None
            p.i += 1
            return p.parse_all()
        n, d = strip(num), strip(den)
        if n is None and d is None:
            return None
        if n is None or d is None:
            raise TexError("a derivative needs \\partial above and below", self.pos(), self.tex)
        root = n.split("[")[0]
        if root in self.scalars:
            return f"grad({n}, {d})"
        self.notes.append(f"read ∂{n}/∂{d} as the Jacobian of {n} by {d}")
        return f"jacobian({n}, {d})"


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


def _wrap(s):
    return s if (s.replace("_", "").isalnum() or _balanced(s)) else f"({s})"


SCALAR_ROLES = {"loss", "cost", "objective", "scalar"}


def translate(tex: str, symbols: Mapping[str, object], defined: Iterable[str] = ()) -> list[TexLink]:
    """The links of the chain written in ``tex``, in the claim language."""
    layered = set(symbols) | {d.split("[")[0] for d in defined}
    if "sigma" in layered:
        layered.add("σ")
    scalars = {k for k, v in symbols.items() if str(v) in SCALAR_ROLES}
    try:
        nodes, _, _ = LatexWalker(tex, tolerant_parsing=False).get_latex_nodes()
    except LatexWalkerError as e:
        raise TexError(str(e).splitlines()[0], getattr(e, "pos", 0) or 0, tex) from None
    toks = _tokens(nodes, tex)
    pieces, cur = [], []
    for tok in toks:
        if tok.kind == "char" and tok.value == "=":
            pieces.append((cur, tok.pos))
            cur = []
        else:
            cur.append(tok)
    pieces.append((cur, len(tex)))
    if len(pieces) < 2:
        raise TexError("no '=' in the formula", len(tex), tex)
    sides = []
    for k, (part, end) in enumerate(pieces):
        if not part:
            raise TexError("empty side of '='", end, tex)
        notes: list[str] = []
        p = _Parser(part, tex, layered, notes, end)
        p.scalars = scalars
        sides.append((p.parse_all(), part[0].pos, end, notes))
    lhs, lstart, _, lnotes = sides[0]
    return [TexLink(lhs, rhs, lstart, end, tuple(lnotes + notes)) for rhs, _, end, notes in sides[1:]]
