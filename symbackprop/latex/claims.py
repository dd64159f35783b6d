"""Claim-language formulas as LaTeX, in the document's own symbols.

A formula of a derivation file (``grad(C, W[2])``, ``W[2].T @ delta[2] ∘ sigma'(z[1])``) is
parsed by the claim language's own parser (never run) and printed from its syntax tree: one
``visit_<Node>`` per construct, as SymPy's printers have one ``_print_<Type>`` per class.  Names
and activation functions go through the project printer, so σ, δ, ŷ and layer superscripts look
the same everywhere.  A product ``*`` prints as ⊙ between matrices and as juxtaposition when a
side is a scalar (a number, an entry, the loss, an Iverson bracket…).
"""

from __future__ import annotations

import ast

from .. import rules
from ..derivation.language import FUNCTIONS, LAYERED, PRIME, is_range, parse
from .printer import layer_name, name, parens

_SCALAR_QUANTITIES = ("loss", "depth", "batch", "label", "size", "outputs")
_ADD, _MUL, _UNARY, _POW, _ATOM = 1, 2, 3, 4, 5


def _level(node) -> int:
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, (ast.Add, ast.Sub)):
            return _ADD
        return _POW if isinstance(node.op, ast.Pow) else _MUL
    if isinstance(node, ast.UnaryOp):
        return _UNARY
    return _ATOM





class ClaimPrinter(ast.NodeVisitor):
    """Prints formulas of one derivation (its ``[symbols]`` and ``[define]`` say what names are)."""

    def __init__(self, derivation=None):
        self.bindings = dict(derivation.bindings) if derivation is not None else {}
        self.definitions: dict = {}
        for definition in (derivation.definitions if derivation is not None else []):
            self.definitions.setdefault(definition.name, []).append(definition)

    @staticmethod
    def symbol(identifier: str) -> str:
        """A document name: ``sigma`` → σ, ``ŷ`` → ŷ."""
        return name(identifier)

    def formula(self, source: str) -> str:
        """LaTeX of a formula; raises ``ClaimError`` when it does not parse."""
        return self.visit(parse(source))

    # ---- what names are
    def _layered(self, identifier: str) -> bool:
        binding = self.bindings.get(identifier)
        if binding is not None:
            return binding.quantity in LAYERED
        return any(d.layer is not None for d in self.definitions.get(identifier, []))

    def _is_entry(self, node: ast.Subscript) -> bool:
        return not (isinstance(node.value, ast.Name) and self._layered(node.value.id))

    def is_scalar(self, node) -> bool:
        """Whether a sub-formula is a scalar (then ``*`` is plain multiplication, not ⊙)."""
        if isinstance(node, (ast.Constant, ast.Compare)):
            return True
        if isinstance(node, ast.Name):
            binding = self.bindings.get(node.id)
            if binding is not None:
                return binding.quantity in _SCALAR_QUANTITIES
            if node.id in self.definitions:
                return all(d.indices for d in self.definitions[node.id])
            return True  # an index letter or a layer variable
        if isinstance(node, ast.Subscript):
            if not self._is_entry(node):
                return any(d.indices for d in self.definitions.get(node.value.id, []))
            slice_ = node.slice
            return not (isinstance(slice_, ast.Tuple) and any(isinstance(e, ast.Slice) for e in slice_.elts))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            function, args = node.func.id, node.args
            if function == "sum":
                return True
            if function in ("grad",) and len(args) == 2:
                return self.is_scalar(args[1])
            if function in ("jacobian",) and len(args) == 2:
                return self.is_scalar(args[0]) and self.is_scalar(args[1])
            if function in ("diag", "ones", "outer"):
                return False
            return all(self.is_scalar(a) for a in args)
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.MatMult):
                return False
            if isinstance(node.op, ast.Pow):
                return self.is_scalar(node.left)
            return self.is_scalar(node.left) and self.is_scalar(node.right)
        if isinstance(node, ast.UnaryOp):
            return self.is_scalar(node.operand)
        if isinstance(node, ast.Attribute):
            return self.is_scalar(node.value)
        return False

    def _is_hadamard(self, node) -> bool:
        return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) \
            and not (self.is_scalar(node.left) or self.is_scalar(node.right))

    # ---- the printer
    def generic_visit(self, node):
        return rf"\texttt{{{type(node).__name__}}}"

    def visit_Constant(self, node):
        return str(node.value)

    def visit_Name(self, node):
        return self.symbol(node.id)

    def visit_BinOp(self, node):
        left, right = self.visit(node.left), self.visit(node.right)
        op = node.op
        if isinstance(op, ast.Div):
            return rf"\frac{{{left}}}{{{right}}}"
        if isinstance(op, ast.Pow):
            if _level(node.left) < _ATOM:
                left = parens(left)
            return f"{{{left}}}^{{{right}}}"
        if isinstance(op, (ast.Add, ast.Sub)):
            if isinstance(op, ast.Sub) and _level(node.right) == _ADD:
                right = parens(right)
            return f"{left} {'+' if isinstance(op, ast.Add) else '-'} {right}"
        hadamard = self._is_hadamard(node)
        matmul = isinstance(op, ast.MatMult)

        def operand(child, text, right=False):
            level = _level(child)
            if level <= _ADD or (right and level == _UNARY):
                return parens(text)
            # a ⊙ product next to a matrix product (or the reverse) gets parentheses: no
            # precedence between them is assumed
            if level == _MUL and not (isinstance(child, ast.BinOp) and isinstance(child.op, ast.Div)):
                if hadamard != self._is_hadamard(child):
                    return parens(text)
            return text

        left, right = operand(node.left, left), operand(node.right, right, right=True)
        if hadamard:
            return rf"{left} \odot {right}"
        if not matmul and isinstance(node.right, ast.Constant):  # 2 · 3, not 23
            return rf"{left} \cdot {right}"
        return f"{left} {right}"

    def visit_UnaryOp(self, node):
        operand = self.visit(node.operand)
        if _level(node.operand) <= _ADD:
            operand = parens(operand)
        return f"-{operand}" if isinstance(node.op, ast.USub) else operand

    def visit_Attribute(self, node):  # .T, the only attribute the language allows
        inner = self.visit(node.value)
        value = node.value
        simple = isinstance(value, ast.Name) or (isinstance(value, ast.Subscript) and self._is_entry(value)) \
            or (isinstance(value, ast.Call) and value.func.id == "ones")
        if not simple:
            inner = parens(inner)
        elif "^" in inner:  # a layer superscript already: group it, no double superscript
            inner = f"{{{inner}}}"
        return rf"{inner}^{{\top}}"

    _RELATIONS = {ast.Eq: "=", ast.NotEq: r"\neq", ast.Lt: "<", ast.LtE: r"\le", ast.Gt: ">", ast.GtE: r"\ge"}

    def visit_Compare(self, node):
        parts = [self.visit(node.left)]
        for op, right in zip(node.ops, node.comparators):
            parts += [self._RELATIONS[type(op)], self.visit(right)]
        return "[" + " ".join(parts) + "]"

    def visit_Tuple(self, node):
        return ",".join(self.visit(e) for e in node.elts)

    def visit_Slice(self, node):
        if node.lower is None and node.upper is None:
            return ":"
        return f"{self.visit(node.lower)}:{self.visit(node.upper)}"

    def _index(self, node) -> str:
        return self.visit(node).replace(" ", "")

    def visit_Subscript(self, node):
        base = node.value
        if isinstance(base, ast.Name) and self._layered(base.id):
            return layer_name(name(base.id), self._index(node.slice))
        inner = self.visit(base)
        if not isinstance(base, (ast.Name, ast.Subscript)):
            inner = parens(inner)
        elif "_" in inner:  # a subscript already: group it, no double subscript
            inner = f"{{{inner}}}"
        return f"{inner}_{{{self._index(node.slice)}}}"

    def visit_Call(self, node):
        function = node.func.id
        args = [self.visit(a) for k, a in enumerate(node.args)
                if not (is_range(a) or function == "sum" and k and isinstance(a, ast.Name))]
        if function.endswith(PRIME):
            return self._function_name(function[: -len(PRIME)]) + "'" + parens(", ".join(args))
        if function in ("grad", "jacobian") and len(args) == 2:
            of, wrt = node.args
            if isinstance(of, (ast.Name, ast.Subscript)):
                return rf"\frac{{\partial {args[0]}}}{{\partial {args[1]}}}"
            return rf"\frac{{\partial}}{{\partial {args[1]}}}{parens(args[0])}"
        if function == "sqrt" and len(args) == 1:
            return rf"\sqrt{{{args[0]}}}"
        if function == "diag":
            return r"\operatorname{diag}" + parens(", ".join(args))
        if function == "ones":
            return rf"\mathbf{{1}}_{{{', '.join(args)}}}"
        simple = bool(node.args) and isinstance(node.args[0], (ast.Name, ast.Subscript, ast.Call))
        axis = next((k.value.value for k in node.keywords if k.arg == "axis"), None)
        if function == "sum" and len(node.args) > 1:  # an index sum: sum(body, k in a..b, …)
            limits = "".join(rf"\sum_{{{self.visit(r)}}}" if isinstance(r, ast.Name) else
                             rf"\sum_{{{self.visit(r.left)}={self.visit(r.comparators[0].left)}}}"
                             rf"^{{{self.visit(r.comparators[0].right)}}}" for r in node.args[1:])
            return limits + " " + (args[0] if simple else parens(args[0]))
        if function == "sum" and len(args) == 1:
            below = "" if axis is None else rf"_{{\text{{{'rows' if axis == 0 else 'columns'}}}}}"
            return rf"\textstyle\sum{below} " + (args[0] if simple else parens(args[0]))
        if axis is not None:
            return self._function_name(function) + parens(", ".join(args) + rf", \text{{axis }}{axis}")
        if function == "outer" and len(args) == 2:
            return rf"{args[0]} {parens(args[1])}^{{\top}}"
        return self._function_name(function) + parens(", ".join(args))

    def _function_name(self, function: str) -> str:
        if function in self.bindings or function not in FUNCTIONS:
            return name(function)
        if function in ("log", "exp", "max", "min"):
            return "\\" + function
        if function == "heaviside":
            return "H"
        if function == "sum":
            return r"\textstyle\sum"
        if function in rules.ACTIVATIONS:
            return rules.ACTIVATIONS[function].latex
        return rf"\operatorname{{{function}}}"


def formula_latex(source: str, derivation=None) -> str:
    """A claim-language formula as LaTeX math (raises ``ClaimError`` if it does not parse)."""
    return ClaimPrinter(derivation).formula(source)
