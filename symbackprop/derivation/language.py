"""The claim language: a document's formulas, in its own notation, parsed and never run.

Formulas use Python syntax (``@``, ``*``, ``.T``, ``X[k]``, ``X[k][i, j]``, ``f'(z)``, ``⊙``) and
are read with :func:`ast.parse`; a whitelist walker turns the tree into explicit SymPy matrices
over a network instance.  Nothing is passed to ``eval``, ``exec`` or ``sympify``: a derivation
file cannot run code, only name quantities and the functions listed in :data:`FUNCTIONS`.

Indices: layers are the document's own numbers (a symbol's ``shift`` maps them to the network's);
entry indices are 1-based, as in the documents.  A letter used as an entry index and not defined
as a name is a *free index* — it ranges over the entry's dimension, as the left side uses it — or,
with Einstein summation, a *dummy* summed over when it repeats within a term.  Iverson brackets
``(i == j)`` are 1 or 0 and strongly zero: a product with a false bracket is 0 even where its
other factors are undefined (Knuth's convention, which the documents' Kronecker deltas rely on).
"""

from __future__ import annotations

import ast
import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass, field

import sympy
from sympy import Integer, Rational

from .. import limits, rules
from ..evaluate import Partial
from ..layers import FUNCTIONS as LAYER_FUNCTIONS
from ..layers import call as layer_call
from ..matrices import Explicit, Mat, ShapeError, _zip, shape_text
from ..network import Network

FUNCTIONS = ("grad", "jacobian", "diag", "ones", "sum", "mean", "var", "outer", "log", "exp", "sqrt", "max", "min",
             "norm", "trace", "logsumexp", "concat", "onehot", "sigmoid", "tanh", "relu", "softmax", "heaviside",
             *LAYER_FUNCTIONS)  # the layer library's rows: batchnorm(x, gamma, beta, eps), attention(Q, K, V), …
AXIS_FUNCTIONS = ("sum", "mean", "var", "max", "min", "softmax", "logsumexp", "concat")  # take axis=0|1
QUANTITIES = ("weight", "bias", "preactivation", "activation", "input", "output", "target", "onehot", "label",
              "loss", "depth", "batch", "width", "outputs", "activation_function", "hidden_activation", "output_activation")
MODEL_QUANTITIES = ("tensor", "size")  # a [model]'s own names: its tensors and its named sizes
LAYERED = {"weight": (1, 0), "bias": (1, 0), "preactivation": (1, 0), "activation": (0, 0), "width": (0, 0)}
FUNCTION_QUANTITIES = ("activation_function", "hidden_activation", "output_activation")
PRIME = "__prime"


class ClaimError(Exception):
    """The formula cannot be evaluated: the claim is ill-formed.  One line, naming the problem."""


# ----------------------------------------------------------------------------------- parsing


def preprocess(text: str) -> str:
    """⊙ and ∘ are elementwise products; ``f'(x)`` becomes the call ``f__prime(x)``; the range
    ``a..b`` of an index sum becomes ``a | b`` (Python has no ``..``; ``|`` is allowed nowhere else)."""
    text = text.replace("⊙", "*").replace("∘", "*").replace("..", " | ")
    return re.sub(r"(\w+)'\s*\(", lambda m: m.group(1) + PRIME + "(", text)


_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.MatMult, ast.Div, ast.Pow)
_COMPARISONS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_COMPARE = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
            ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}


def _quoted(text: str, width: int = 60) -> str:
    """A formula in a message: quoted, and elided when long (a message is one line)."""
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def show(node) -> str:
    """A parsed formula as the document writes it (f'(x), not the internal f__prime(x))."""
    return ast.unparse(node).replace(PRIME + "(", "'(").replace(" | ", "..")  # | only ever stands for ..


def parse(text: str) -> ast.expr:
    """Parse one formula and check that it uses only the claim language (and stays within the
    limits: its length, how deep it nests, the size of its numbers)."""
    if not isinstance(text, str):
        raise ClaimError(f"a formula must be a string, not {text!r}")
    if not text.strip():
        raise ClaimError("empty formula")
    if len(text) > limits.MAX_FORMULA_CHARS:
        raise ClaimError(f"formula too long: at most {limits.MAX_FORMULA_CHARS} characters, not {len(text)}")
    source = preprocess(text.strip())
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        column = f" at column {error.offset}" if error.offset else ""
        hint = " (use .T for transpose and ** for powers)" if "^" in text else ""
        message = error.msg
        prime = re.search(r"(?<=[\w\])])'", source)  # a prime left over: not name'( … )
        if prime:
            column = f" at column {prime.start() + 1}" if source == text.strip() else ""
            message = ("a prime (') must follow a function's name and be called, as in g'(z) "
                       "(for a layer's own function, map hidden_activation or output_activation to a name)")
        elif "too many nested parentheses" in message:
            message = f"nested too deeply (at most {limits.MAX_NESTING} levels)"
        raise ClaimError(f"cannot parse {_quoted(text)}{column}: {message}{hint}") from None
    except (RecursionError, MemoryError):
        raise ClaimError(f"formula nested too deeply: at most {limits.MAX_NESTING} levels") from None
    _check_nesting(tree)
    for node in ast.walk(tree):
        _check_node(node, text)
    _check_ranges(tree.body)
    return tree.body


def _check_nesting(tree) -> None:
    """The evaluator recurses along the syntax tree: its depth is bounded (a sum of k terms is k deep)."""
    level, deepest = [(tree, 0)], 0
    while level:
        node, depth = level.pop()
        deepest = max(deepest, depth)
        if deepest > limits.MAX_NESTING:
            raise ClaimError(f"formula nested too deeply: at most {limits.MAX_NESTING} levels "
                             "(a sum or product of many terms counts one level per term)")
        level += [(child, depth + 1) for child in ast.iter_child_nodes(node)]


def is_range(node) -> bool:
    """``k in a..b`` (after preprocessing: ``k in a | b``)."""
    return isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.In)


def _check_ranges(tree) -> None:
    """Ranges stand only as the trailing arguments of an index sum: sum(body, k in 1..K, …)."""
    allowed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "sum":
            for argument in node.args[1:]:
                if is_range(argument):
                    allowed.add(id(argument))
                    allowed.add(id(argument.comparators[0]))
    for node in ast.walk(tree):
        where = f" at column {node.col_offset + 1}" if hasattr(node, "col_offset") else ""
        if is_range(node) and id(node) not in allowed:
            raise ClaimError(f"a range 'k in a..b' may only follow the body of an index sum, "
                             f"as in sum(w[k] * x[k], k in 1..K){where}")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) and id(node) not in allowed:
            raise ClaimError(f"'|' and '..' are only for ranges, as in sum(w[k] * x[k], k in 1..K){where}")


def _check_node(node, text):
    where = f" at column {node.col_offset + 1}" if hasattr(node, "col_offset") else ""
    if isinstance(node, (ast.Expression, ast.Load, ast.USub, ast.UAdd, ast.Eq, ast.NotEq, ast.In, ast.BitOr) + _BINARY):
        return
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ClaimError(f"only numbers are allowed as constants, not {value!r}{where}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ClaimError(f"{ast.get_source_segment(text, node) or value} is not a finite number{where}")
        if abs(value) >= 10 ** limits.MAX_NUMBER_DIGITS:
            raise ClaimError(f"a number has at most {limits.MAX_NUMBER_DIGITS} digits{where}")
        return
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise ClaimError(f"names starting with '_' are not allowed: {node.id}{where}")
        return
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return  # a range a..b; _check_ranges says where it may stand
    if isinstance(node, ast.keyword):
        return  # axis=…, checked with its call
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.BitXor):
            raise ClaimError(f"^ is not allowed{where}: use .T for transpose and ** for powers")
        if not isinstance(node.op, _BINARY):
            raise ClaimError(f"operator {type(node.op).__name__} is not allowed{where} "
                             "(use + - * / ** @ and .T)")
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise ClaimError(f"operator {type(node.op).__name__} is not allowed{where}")
        return
    if isinstance(node, (ast.Subscript, ast.Tuple, ast.Slice)):
        return
    if isinstance(node, ast.Attribute):
        if node.attr != "T":
            raise ClaimError(f"attribute access .{node.attr} is not allowed{where} (only .T, the transpose)")
        return
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise ClaimError(f"only named functions can be called{where} (functions: {', '.join(FUNCTIONS)})")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise ClaimError(f"starred arguments are not allowed in {node.func.id}(…){where}")
        for keyword in node.keywords:
            if keyword.arg != "axis" or node.func.id not in AXIS_FUNCTIONS:
                allowed = f" ({', '.join(AXIS_FUNCTIONS)} take axis=0 or axis=1)"
                raise ClaimError(f"keyword argument {keyword.arg}= is not allowed in {node.func.id}(…){where}{allowed}")
            value = keyword.value
            if not (isinstance(value, ast.Constant) and value.value in (0, 1) and not isinstance(value.value, bool)):
                raise ClaimError(f"axis must be 0 (down the rows) or 1 (along each row) in {node.func.id}(…){where}")
        return
    if isinstance(node, ast.Compare):
        if len(node.ops) == 1 and isinstance(node.ops[0], ast.In):
            right = node.comparators[0]
            if not (isinstance(node.left, ast.Name) and isinstance(right, ast.BinOp) and isinstance(right.op, ast.BitOr)):
                raise ClaimError(f"a range is written 'k in 1..K'{where}")
            return
        if not all(isinstance(op, _COMPARISONS) for op in node.ops):
            raise ClaimError(f"only comparisons of integers (== != < <= > >=) are allowed{where}")
        return
    if isinstance(node, ast.In) or isinstance(node, _COMPARISONS):
        return
    raise ClaimError(f"{type(node).__name__.lower()} is not allowed in a formula{where}")


def parse_range(text: str) -> tuple[str, ast.expr, ast.expr]:
    """``"l in 1..L-1"`` → (variable, low, high), both bounds inclusive."""
    if not isinstance(text, str):
        raise ClaimError(f"a range is a string like 'l in 1..L-1', not {text!r}")
    match = re.fullmatch(r"\s*([^\W\d]\w*)\s+in\s+(.+?)\s*\.\.\s*(.+?)\s*", text)
    if not match:
        raise ClaimError(f"range {text!r} is not of the form 'l in 1..L-1'")
    return match.group(1), parse(match.group(2)), parse(match.group(3))


# ------------------------------------------------------------------------------ documents


@dataclass(frozen=True)
class Binding:
    """A document name for a network quantity; document layer = network layer + shift."""

    name: str
    quantity: str
    shift: int = 0


@dataclass
class Definition:
    """``name[layer][indices] = expr`` for ``variable in range`` (layer and indices optional)."""

    name: str
    layer: ast.expr | None
    indices: tuple
    expr: ast.expr
    range: tuple | None = None  # (variable, low, high)
    text: str = ""

    @property
    def variable(self):
        return self.range[0] if self.range else None


def parse_definition(target: str, expr: str, range_text: str | None, bindings: dict | None = None) -> Definition:
    """A ``[define]`` entry: ``"delta[l]"``, ``"eps[l][i]"``, ``"E"``, ``"E[i, j]"``, ``"mu[i]"``.

    One subscript is a layer when it is a number, an expression, a symbol (``d[L]``) or the range's
    variable (``delta[l]`` with ``for = "l in 1..L-1"``); any other letter is an entry index.
    """
    bindings = bindings or {}
    node = parse(target)
    subscripts = []
    while isinstance(node, ast.Subscript):
        subscripts.insert(0, node.slice)
        node = node.value
    if not isinstance(node, ast.Name):
        raise ClaimError(f"cannot define {target!r}: the left side must be a name like delta[l] or eps[l][i]")
    if len(subscripts) > 2:
        raise ClaimError(f"cannot define {target!r}: at most a layer and an entry index")
    layer, indices = None, ()

    def index_names(slice_node):
        elements = slice_node.elts if isinstance(slice_node, ast.Tuple) else [slice_node]
        if not all(isinstance(e, ast.Name) for e in elements):
            raise ClaimError(f"cannot define {target!r}: entry indices must be letters")
        if len(elements) > 2:
            raise ClaimError(f"cannot define {target!r}: an entry takes one or two indices, not {len(elements)}")
        return tuple(e.id for e in elements)

    range_ = parse_range(range_text) if range_text is not None else None
    formula = parse(expr)
    if len(subscripts) == 2:
        layer, indices = subscripts[0], index_names(subscripts[1])
    elif len(subscripts) == 1:
        sl = subscripts[0]
        letter = sl.id if isinstance(sl, ast.Name) else None
        if isinstance(sl, ast.Tuple) or letter is not None and letter not in bindings \
                and letter != (range_[0] if range_ else None):
            indices = index_names(sl)
            as_layer = _layer_use(formula, letter, bindings) if letter else None
            if as_layer:
                raise ClaimError(f"cannot define {target!r}: {letter} is an entry index here (a letter without a "
                                 f"range), but the formula uses it as a layer in {as_layer}; for a definition per "
                                 f"layer give its range, as in {{ expr = \"…\", for = \"{letter} in 1..L\" }}")
        else:
            layer = sl
    return Definition(node.id, layer, indices, formula, range_, text=expr)


def _layer_use(formula, letter: str, bindings: dict) -> str | None:
    """Where ``formula`` selects a layer with ``letter`` (as in z[l]), or None."""
    for sub in ast.walk(formula):
        if isinstance(sub, ast.Subscript) and isinstance(sub.value, ast.Name) and sub.value.id in bindings \
                and bindings[sub.value.id].quantity in LAYERED \
                and any(isinstance(n, ast.Name) and n.id == letter for n in ast.walk(sub.slice)):
            return show(sub)
    return None


# ------------------------------------------------------------------------------ evaluation


@dataclass
class Env:
    layers: dict = field(default_factory=dict)  # layer variables, e.g. l -> 2 (document numbering)
    indices: dict = field(default_factory=dict)  # entry indices, 1-based

    def bind(self, layers=None, indices=None) -> "Env":
        return Env({**self.layers, **(layers or {})}, {**self.indices, **(indices or {})})


def _is_matrix(value) -> bool:
    return isinstance(value, Mat)


def _scalar(value):
    """A 1×1 matrix acts as a scalar."""
    if isinstance(value, Mat) and value.shape == (1, 1):
        return value[0, 0]
    return value


def _elementwise(op: str, a, b, fn):
    """Entry by entry; a scalar (or a 1×1 matrix), a row against a matrix with as many columns, or
    a column against one with as many rows broadcasts (``matrices.broadcast_shape``); any other
    pair of shapes is an error naming both."""
    try:
        return _zip(op, a, b, fn)
    except ShapeError:
        raise ClaimError(f"shape mismatch in {op}: {shape_text(a.shape)} and {shape_text(b.shape)}") from None


class Scope:
    """What a document's names mean on one network instance; evaluates its formulas."""

    def __init__(self, bindings: dict, definitions: list, net: Network, *, einstein: bool = False,
                 label_names: tuple = ()):
        self.bindings = bindings
        self.definitions: dict[str, list[Definition]] = {}
        for d in definitions:
            self.definitions.setdefault(d.name, []).append(d)
        self.net = net
        self.spec = net.spec
        self.einstein = einstein
        self.memo: dict = {}
        self.active: set = set()
        self.alg = net.alg

    # ---- names
    def known_names(self) -> list[str]:
        return sorted(set(self.bindings) | set(self.definitions))

    def _undefined(self, name: str) -> ClaimError:
        return ClaimError(f"{name} is not defined (defined: {', '.join(self.known_names())})")

    def is_layered(self, name: str) -> bool:
        if name in self.bindings:
            binding = self.bindings[name]
            if binding.quantity == "tensor":
                return self.net.is_family(name)
            return binding.quantity in LAYERED
        if name in self.definitions:
            return any(d.layer is not None for d in self.definitions[name])
        return False

    def is_index_letter(self, name: str, env: Env) -> bool:
        return name not in self.bindings and name not in self.definitions and name not in env.layers \
            and name not in FUNCTIONS

    # ---- layers and integers
    def integer(self, node, env: Env) -> int:
        """A layer number, an index or an integer expression (document numbering)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in env.layers:
                return env.layers[node.id]
            if node.id in env.indices:
                return env.indices[node.id]
            binding = self.bindings.get(node.id)
            if binding is not None and binding.quantity in ("depth", "batch", "label", "size", "outputs"):
                return int(self._quantity_value(binding))
            if binding is None and node.id not in self.definitions:
                raise self._undefined(node.id)
            if binding is not None and binding.quantity == "tensor":  # an integer-valued input (a token id)
                value = _scalar(self._quantity_value(binding))
                if isinstance(value, sympy.Integer):
                    return int(value)
            raise ClaimError(f"{node.id} is not an integer here")
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
                and self.bindings.get(node.value.id, Binding("", "")).quantity == "width":
            return int(self._quantity_value(self.bindings[node.value.id], self.integer(node.slice, env)))
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
            a, b = self.integer(node.left, env), self.integer(node.right, env)
            return a + b if isinstance(node.op, ast.Add) else a - b if isinstance(node.op, ast.Sub) else a * b
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -self.integer(node.operand, env)
        if isinstance(node, ast.Subscript):  # an entry of an integer-valued input (token ids, labels)
            value = _scalar(self.value(node, env))
            if isinstance(value, sympy.Integer):
                return int(value)
        raise ClaimError(f"{show(node)} is not an integer expression")

    def layer_range(self, binding: Binding) -> tuple[int, int]:
        if binding.quantity == "tensor":
            return self.net.family_range(binding.name)
        low_network, _ = LAYERED[binding.quantity]
        return low_network + binding.shift, self.net.depth + binding.shift

    # ---- quantities
    def _quantity_value(self, binding: Binding, layer: int | None = None):
        net, q = self.net, binding.quantity
        if q == "size":
            return Integer(net.sizes[binding.name])
        if q == "tensor":
            return net.tensor(binding.name, layer)
        if q == "depth":
            return Integer(net.depth + binding.shift)
        if q == "batch":
            return Integer(net.batch)
        if q == "outputs":  # the output layer's width
            return Integer(self.spec.widths[-1])
        if q == "loss":
            return net.J
        if q == "input":
            return net.X
        if q in ("target", "onehot"):
            return net.Y
        if q == "output":
            return net.A[net.depth]
        if q == "label":
            if net.labels is None or len(net.labels) != 1:
                raise ClaimError(f"{binding.name} (the label) needs a single example (batch = 1)")
            return Integer(net.labels[0] + 1)
        if q in FUNCTION_QUANTITIES:
            raise ClaimError(f"{binding.name} is a function: apply it, as in {binding.name}(z)")
        if layer is None:
            low, high = self.layer_range(binding)
            raise ClaimError(f"{binding.name} needs a layer, as in {binding.name}[{low}] "
                             f"(defined: {binding.name}[{low}] … {binding.name}[{high}])")
        low, high = self.layer_range(binding)
        if not low <= layer <= high:
            defined = ", ".join(f"{binding.name}[{k}]" for k in range(low, high + 1))
            raise ClaimError(f"{binding.name}[{layer}] is not defined (defined: {defined})")
        k = layer - binding.shift
        if q == "width":
            return Integer(self.spec.widths[k])
        return net.quantity(q, k)

    def _variables(self, binding: Binding, layer: int | None, text: str) -> Mat:
        """The differentiation variables standing for a quantity (symbols or perturbations ε)."""
        net, q = self.net, binding.quantity
        if q == "tensor":
            return net.reference(binding.name, layer)
        if q in ("preactivation", "activation", "weight", "bias"):
            self._quantity_value(binding, layer)  # checks the layer
            k = layer - binding.shift
            if q == "weight":
                return net.W[k]
            if q == "bias":
                return net.b[k]
            if q == "activation" and k == 0:
                return net.X
            return net.perturbation_of(q, k)
        if q == "input":
            return net.X
        if q == "output":
            return net.perturbation_of("activation", net.depth)
        if q in ("target", "onehot"):
            if not all(isinstance(e, sympy.Symbol) for e in net.Y):
                raise ClaimError(f"cannot differentiate with respect to {text}: targets are constrained "
                                 "(one-hot, or soft targets summing to 1)")
            return net.Y
        raise ClaimError(f"cannot differentiate with respect to {text} ({q})")

    # ---- definitions
    def _definition_for(self, name: str, layer: int | None, env: Env) -> tuple[Definition, Env]:
        candidates = self.definitions[name]
        for d in candidates:
            if (d.layer is None) != (layer is None):
                continue
            if layer is None:
                return d, Env()
            if d.range is not None and isinstance(d.layer, ast.Name) and d.layer.id == d.variable:
                low, high = self.integer(d.range[1], Env()), self.integer(d.range[2], Env())
                if low <= layer <= high:
                    return d, Env({d.variable: layer})
            elif self.integer(d.layer, Env()) == layer:
                return d, Env()
        if layer is None:
            raise ClaimError(f"{name} needs a layer, as in {name}[…]")
        raise ClaimError(f"{name}[{layer}] is not defined (defined: {self._defined_layers(name)})")

    def _defined_layers(self, name: str) -> str:
        spans = []  # (low, high), inclusive
        for d in self.definitions[name]:
            if d.layer is None:
                continue
            try:
                if d.range is not None and isinstance(d.layer, ast.Name) and d.layer.id == d.variable:
                    low, high = self.integer(d.range[1], Env()), self.integer(d.range[2], Env())
                    spans += [(low, high)] if low <= high else []
                else:
                    layer = self.integer(d.layer, Env())
                    spans.append((layer, layer))
            except ClaimError:
                continue
        merged = []
        for low, high in sorted(spans):
            if merged and low <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
            else:
                merged.append((low, high))
        shown = [", ".join(f"{name}[{k}]" for k in range(low, high + 1)) if high - low < 3 else
                 f"{name}[{low}] … {name}[{high}]" for low, high in merged]
        return ", ".join(shown) or "none on this network"

    def definition_value(self, name: str, layer: int | None, env: Env, entry: tuple | None = None):
        d, denv = self._definition_for(name, layer, env)
        key = (name, layer, entry)
        if key in self.memo:
            return self.memo[key]
        if key in self.active:
            raise ClaimError(f"the definition of {name}{'' if layer is None else f'[{layer}]'} refers to itself")
        self.active.add(key)
        try:
            if not d.indices:
                value = self.value(d.expr, denv)
                if entry is not None:
                    value = self._entry(value, entry, name)
            elif entry is not None:
                if len(entry) != len(d.indices):
                    raise ClaimError(f"{name} has {len(d.indices)} entry indices, not {len(entry)}")
                value = self.value(d.expr, denv.bind(indices=dict(zip(d.indices, entry))))
            else:
                shape = [self.index_range(letter, d.expr, denv) for letter in d.indices]
                if len(shape) == 1:
                    shape.append(1)
                _check_size(shape[0], shape[1], name)
                value = Mat.build(shape[0], shape[1], lambda i, j: self.definition_value(
                    name, layer, env, (i + 1,) if len(d.indices) == 1 else (i + 1, j + 1)))
        finally:
            self.active.discard(key)
        self.memo[key] = value
        return value

    # ---- index letters
    def index_counts(self, node, env: Env) -> Counter:
        """How often each letter is used as an entry index (or in (i == j)) in the term ``node``.

        Einstein's convention is per term: a nested sum (in parentheses) and a function's argument
        (sigma(W[2][p, q] * a[1][q]), grad(…)) contribute only their own free letters, once — their
        dummies stay inside them.
        """
        counts = Counter()

        def letters_in(element):
            return [n.id for n in ast.walk(element) if isinstance(n, ast.Name) and self.is_index_letter(n.id, env)]

        def visit(sub):
            if isinstance(sub, ast.BinOp) and isinstance(sub.op, (ast.Add, ast.Sub)):
                counts.update(self.free_letters(sub, env))
            elif isinstance(sub, ast.Subscript) and self._is_entry_subscript(sub):
                elements = sub.slice.elts if isinstance(sub.slice, ast.Tuple) else [sub.slice]
                for element in elements:
                    counts.update(letters_in(element))
                visit(sub.value)
            elif isinstance(sub, ast.Compare):
                for side in (sub.left, *sub.comparators):
                    counts.update(letters_in(side))
            elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id == "sum" \
                    and len(sub.args) > 1:
                # an index sum binds its own letters; the rest of its body is free, counted once
                bound = {item.left.id for item in sub.args[1:] if is_range(item)} \
                    | {item.id for item in sub.args[1:] if isinstance(item, ast.Name)}
                inner = self.index_counts(sub.args[0], env)
                counts.update({letter for letter in inner if letter not in bound})
                for item in sub.args[1:]:
                    if is_range(item):
                        counts.update(letters_in(item.comparators[0]))
            elif isinstance(sub, ast.Call):  # a function's argument is a term of its own
                for argument in sub.args:
                    counts.update(self.free_letters(argument, env))
            else:
                for child in ast.iter_child_nodes(sub):
                    visit(child)

        visit(node)
        return counts

    def free_letters(self, node, env: Env) -> set:
        """The letters a (sum of) term(s) leaves free: with Einstein summation those not repeated
        within their term, otherwise all of them."""
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            return self.free_letters(node.left, env) | self.free_letters(node.right, env)
        counts = self.index_counts(node, env)
        return {letter for letter, count in counts.items() if count == 1 or not self.einstein}

    def _is_entry_subscript(self, node: ast.Subscript) -> bool:
        """``W[l]`` selects a layer; ``W[l][i, j]`` and ``x[i]`` select entries."""
        return not (isinstance(node.value, ast.Name) and self.is_layered(node.value.id))

    def index_range(self, letter: str, node, env: Env) -> int:
        """The dimension an index letter runs over, read from the entries it selects."""
        found = {}
        for sub in ast.walk(node):
            if not (isinstance(sub, ast.Subscript) and self._is_entry_subscript(sub)):
                continue
            elements = sub.slice.elts if isinstance(sub.slice, ast.Tuple) else [sub.slice]
            positions = [p for p, e in enumerate(elements) if isinstance(e, ast.Name) and e.id == letter]
            if not positions:
                continue
            base = self._peek_base(sub.value, env)
            if base is None:
                continue
            where = show(sub.value)
            if len(elements) > 2:
                raise ClaimError(f"{where}[{', '.join(map(show, elements))}] has {len(elements)} indices, but "
                                 f"{where} is a {shape_text(base.shape)} matrix: an entry takes one or two")
            for p in positions:
                if len(elements) == 1:
                    if base.cols != 1 and base.rows != 1:
                        raise ClaimError(f"{where} is {shape_text(base.shape)}: give two indices")
                    size = base.rows if base.cols == 1 else base.cols
                else:
                    size = base.shape[p]
                found.setdefault(size, where)
        if not found:
            raise ClaimError(f"cannot tell the range of index {letter}: use it as an entry index")
        if len(found) > 1:
            (n1, w1), (n2, w2) = list(found.items())[:2]
            raise ClaimError(f"index {letter} runs over {n1} in {w1} but over {n2} in {w2}")
        return next(iter(found))

    def _peek_base(self, node, env: Env):
        """The matrix an entry subscript selects from, evaluated with unbound letters set to 1."""
        letters = {name.id: 1 for name in ast.walk(node)
                   if isinstance(name, ast.Name) and self.is_index_letter(name.id, env) and name.id not in env.indices}
        value = self.value(node, env.bind(indices=letters))
        return value if isinstance(value, Mat) else None

    # ---- the evaluator
    def value(self, node, env: Env):
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            a, b = self.value(node.left, env), self.value(node.right, env)
            if isinstance(node.op, ast.Add):
                return _elementwise("a sum", a, b, lambda x, y: x + y)
            return _elementwise("a difference", a, b, lambda x, y: x - y)
        return self.term(node, env)

    def term(self, node, env: Env):
        """One term of a sum: with Einstein summation, letters repeated here are summed over."""
        counts = self.index_counts(node, env)
        unbound = [letter for letter in counts if letter not in env.indices]
        if not unbound:
            return self.atom(node, env)
        dummies = [letter for letter in unbound if counts[letter] >= 2]
        lonely = [letter for letter in unbound if counts[letter] < 2]
        if not self.einstein or lonely:
            raise self._unbound((lonely or unbound)[0], node, env)
        ranges = [range(1, self.index_range(letter, node, env) + 1) for letter in dummies]
        _check_entries(ranges, dummies, "summed")
        total = Integer(0)
        for values in itertools.product(*ranges):
            total = _elementwise("a sum", total, self.atom(node, env.bind(indices=dict(zip(dummies, values)))),
                                 lambda x, y: x + y)
        return total

    def _unbound(self, letter: str, node, env: Env) -> ClaimError:
        """Why ``letter`` is neither free (on the left side) nor summed in the term ``node``."""
        text = f"index {letter} in {show(node)} is not bound: it does not appear on the left side"
        if not self.einstein:
            return ClaimError(text + " (with summation = \"einstein\" a repeated index is summed)")
        uses = sum(isinstance(n, ast.Name) and n.id == letter for n in ast.walk(node))
        if uses < 2:
            return ClaimError(text)
        def scope_of_its_own(n):  # a nested sum or a function call, using the letter
            nested = isinstance(n, ast.Call) or isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub))
            return nested and n is not node and any(isinstance(m, ast.Name) and m.id == letter for m in ast.walk(n))

        inner = next((n for n in ast.walk(node) if scope_of_its_own(n)), None)
        if inner is None:
            return ClaimError(text)
        return ClaimError(f"{text}, and of its {uses} uses only one is at the level of this term: the others are "
                          f"inside {show(inner)}, which sums them on its own (Einstein's convention sums an index "
                          "repeated within one term; a parenthesized sum or a function's argument is a term of its "
                          "own)")

    def atom(self, node, env: Env):
        if isinstance(node, ast.Constant):
            value = node.value
            return Integer(value) if isinstance(value, int) else Rational(str(value))
        if isinstance(node, ast.Name):
            return self.name(node.id, env)
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, (ast.Add, ast.Sub)):
                return self.value(node, env)
            if isinstance(node.op, ast.Mult) and self._bracket_is_zero(node, env):
                return Integer(0)
            a, b = self.value(node.left, env), self.value(node.right, env)
            if isinstance(node.op, ast.Mult):
                return _elementwise("an elementwise product", a, b, lambda x, y: x * y)
            if isinstance(node.op, ast.Div):
                return _elementwise("a quotient", a, b, lambda x, y: x / y)
            if isinstance(node.op, ast.Pow):
                if _is_matrix(_scalar(b)):
                    raise ClaimError("a power's exponent must be a number")
                _check_power(a, _scalar(b), node)
                return _elementwise("a power", a, b, lambda x, y: x ** y)
            if isinstance(node.op, ast.MatMult):
                if not (_is_matrix(a) and _is_matrix(b)):
                    raise ClaimError(f"@ needs two matrices in {show(node)} (use * with a scalar)")
                try:
                    if a.cols == b.rows:
                        _check_size(a.rows, b.cols, show(node))
                    return self.alg.matmul(a, b)
                except ShapeError:
                    raise ClaimError(f"shape mismatch in {show(node)}: {shape_text(a.shape)} @ "
                                     f"{shape_text(b.shape)}") from None
        if isinstance(node, ast.UnaryOp):
            operand = self.value(node.operand, env)
            if isinstance(node.op, ast.UAdd):
                return operand
            return operand.map(lambda x: -x) if _is_matrix(operand) else -operand
        if isinstance(node, ast.Attribute):  # .T, checked by the parser
            operand = self.value(node.value, env)
            return operand.T if _is_matrix(operand) else operand
        if isinstance(node, ast.Compare):  # an Iverson bracket; chains (1 <= i <= n) hold link by link
            values = [self.integer(part, env) for part in (node.left, *node.comparators)]
            holds = all(_COMPARE[type(op)](a, b) for op, a, b in zip(node.ops, values, values[1:]))
            return Integer(1 if holds else 0)
        if isinstance(node, ast.Subscript):
            return self.subscript(node, env)
        if isinstance(node, ast.Call):
            return self.call(node, env)
        raise ClaimError(f"cannot evaluate {show(node)}")

    def _bracket_is_zero(self, node: ast.BinOp, env: Env) -> bool:
        """Iverson brackets are strongly zero (Knuth): in a product with a false (i == j), the
        other factors need not even be defined — as in the δ_(l,L−1) guarding a term that only
        exists for l = L−1."""
        factors, stack = [], [node]
        while stack:
            item = stack.pop()
            if isinstance(item, ast.BinOp) and isinstance(item.op, ast.Mult):
                stack += [item.left, item.right]
            else:
                factors.append(item)
        return any(isinstance(f, ast.Compare) and self.atom(f, env) == 0 for f in factors)

    def name(self, name: str, env: Env):
        if name in env.indices:
            return Integer(env.indices[name])
        if name in env.layers:
            return Integer(env.layers[name])
        if name in self.bindings:
            return self._quantity_value(self.bindings[name])
        if name in self.definitions:
            return self.definition_value(name, None, env)
        if name in FUNCTIONS:
            raise ClaimError(f"{name} is a function: call it, as in {name}(…)")
        raise self._undefined(name)

    def subscript(self, node: ast.Subscript, env: Env):
        base = node.value
        if isinstance(base, ast.Name) and self.is_layered(base.id):
            layer = self.integer(node.slice, env)
            if base.id in self.bindings:
                return self._quantity_value(self.bindings[base.id], layer)
            return self.definition_value(base.id, layer, env)
        # an entry: a defined element-level quantity evaluates the entry directly
        entry = self._entry_indices(node.slice, env)
        if isinstance(base, ast.Subscript) and isinstance(base.value, ast.Name) and base.value.id in self.definitions \
                and self.is_layered(base.value.id):
            layer = self.integer(base.slice, env)
            d, _ = self._definition_for(base.value.id, layer, env)
            if d.indices:
                return self.definition_value(base.value.id, layer, env, self._normalise(entry, d, base))
        if isinstance(base, ast.Name) and base.id in self.definitions:
            d, _ = self._definition_for(base.id, None, env)
            if d.indices:
                return self.definition_value(base.id, None, env, self._normalise(entry, d, base))
        return self._entry(self.value(base, env), entry, show(base))

    @staticmethod
    def _normalise(entry, definition, base):
        if len(entry) != len(definition.indices):
            raise ClaimError(f"{show(base)} takes {len(definition.indices)} entry indices, not {len(entry)}")
        return entry

    def _entry_indices(self, slice_node, env: Env) -> tuple:
        """Entry indices (1-based); None stands for a whole row or column, written ':', and a pair
        (a, b) for the rows or columns a..b, written 'a:b' (1-based, both ends included)."""
        elements = slice_node.elts if isinstance(slice_node, ast.Tuple) else [slice_node]
        result = []
        for e in elements:
            if isinstance(e, ast.Slice):
                if e.step is not None:
                    raise ClaimError("a slice takes no step: write a:b (1-based, both ends included)")
                if e.lower is None and e.upper is None:
                    result.append(None)
                elif e.lower is None or e.upper is None:
                    raise ClaimError("write a slice as a:b with both ends (1-based, both included), or ':' for all")
                else:
                    result.append((self.integer(e.lower, env), self.integer(e.upper, env)))
            else:
                result.append(self.integer(e, env))
        return tuple(result)

    @staticmethod
    def _entry(value, entry: tuple, where: str):
        if not isinstance(value, Mat):
            raise ClaimError(f"{where} is a scalar and has no entries")
        if any(e is None or isinstance(e, tuple) for e in entry):
            if len(entry) == 1 and (value.cols == 1 or value.rows == 1):
                entry = (entry[0], 1) if value.cols == 1 else (1, entry[0])
            if len(entry) != 2 or entry == (None, None):
                raise ClaimError(f"{where}[…]: use [i, :] for row i, [:, j] for column j, [a:b, :] for rows a..b")
            spans = []
            for position, (e, size) in enumerate(zip(entry, value.shape)):
                if e is None:
                    spans.append((0, size))
                elif isinstance(e, tuple):
                    low, high = e
                    if not 1 <= low <= high <= size:
                        what = "rows" if position == 0 else "columns"
                        raise ClaimError(f"{what} {low}:{high} are outside {where}, which is {shape_text(value.shape)} "
                                         "(entries are numbered from 1, both ends included)")
                    spans.append((low - 1, high))
                else:
                    if not 1 <= e <= size:
                        raise ClaimError(f"{'row' if position == 0 else 'column'} {e} is outside {where}, "
                                         f"which is {shape_text(value.shape)} (entries are numbered from 1)")
                    spans.append((e - 1, e))
            (r0, r1), (c0, c1) = spans
            return Mat([row[c0:c1] for row in value.entries[r0:r1]])
        if len(entry) == 1:
            if value.cols == 1:
                entry = (entry[0], 1)
            elif value.rows == 1:
                entry = (1, entry[0])
            else:
                raise ClaimError(f"{where} is {shape_text(value.shape)}: give two indices")
        if len(entry) != 2:
            raise ClaimError(f"{where} is a {shape_text(value.shape)} matrix: an entry takes one or two indices, "
                             f"not {len(entry)}")
        i, j = entry
        if not (1 <= i <= value.rows and 1 <= j <= value.cols):
            raise ClaimError(f"entry [{i},{j}] is outside {where}, which is {shape_text(value.shape)} "
                             "(entries are numbered from 1)")
        return value[i - 1, j - 1]

    # ---- references (what grad and jacobian differentiate with respect to)
    def reference(self, node, env: Env):
        text = show(node)
        if isinstance(node, ast.Name) and node.id in self.bindings:
            binding = self.bindings[node.id]
            if binding.quantity in LAYERED:
                self._quantity_value(binding)  # raises "needs a layer"
            return self._variables(binding, None, text)
        if isinstance(node, ast.Subscript):
            base = node.value
            if isinstance(base, ast.Name) and base.id in self.bindings and self.is_layered(base.id):
                return self._variables(self.bindings[base.id], self.integer(node.slice, env), text)
            if (isinstance(base, ast.Name) and base.id in self.bindings) or isinstance(base, ast.Subscript):
                # an entry (or a row, a column, a block) of x, y, ŷ, W[k] …
                part = self._entry(self.reference(base, env), self._entry_indices(node.slice, env), text)
                return part if isinstance(part, Mat) else Mat([[part]])
        if isinstance(node, ast.Name) and node.id not in self.bindings and node.id not in self.definitions:
            raise self._undefined(node.id)
        raise ClaimError(f"cannot differentiate with respect to {text}: name a quantity such as W[k], b[k], "
                         "z[k], a[k] or one of their entries")

    # ---- functions
    def call(self, node: ast.Call, env: Env):
        name, args = node.func.id, node.args
        if name.endswith(PRIME):
            base = name[: -len(PRIME)]
            self._arity(base + "'", args, 1)
            rule = self._function_rule(base)
            if rule.vector:
                raise ClaimError(f"{base}' of a vector function: use jacobian(…)")
            return self._apply(rule.derivative, self.value(args[0], env))
        if name == "grad":
            self._arity(name, args, 2)
            f = _scalar(self.value(args[0], env))
            if isinstance(f, Mat):
                raise ClaimError(f"grad needs a scalar first argument, not a {shape_text(f.shape)} matrix "
                                 "(for a vector use jacobian)")
            if self._is_integer_quantity(args[0]):
                raise ClaimError(f"grad of {show(args[0])}: it is an integer "
                                 f"({self.bindings[args[0].id].quantity}), not a function to differentiate")
            label = sympy.Symbol(show(args[0]))
            return self.reference(args[1], env).map(lambda theta: Partial(f, theta, label))
        if name == "jacobian":
            self._arity(name, args, 2)
            y = self.value(args[0], env)
            x = self.reference(args[1], env)
            ys = [y] if not isinstance(y, Mat) else self._vector(y, args[0])
            if x.rows > 1 and x.cols > 1:
                raise ClaimError(f"jacobian({show(args[0])}, {show(args[1])}): "
                                 f"{show(args[1])} is a {shape_text(x.shape)} matrix, so the derivative is a "
                                 "3-tensor, which matrix notation cannot multiply (differentiate by an entry instead)")
            xs = self._vector(x, args[1])
            labels = [sympy.Symbol(f"{show(args[0])}_{i + 1}") for i in range(len(ys))]
            _check_size(len(ys), len(xs), show(node))
            return Mat([[Partial(yi, xj, labels[i]) for xj in xs] for i, yi in enumerate(ys)])
        if name == "diag":
            self._arity(name, args, 1)
            v = self._vector(self.value(args[0], env), args[0])
            _check_size(len(v), len(v), show(node))
            return Mat.build(len(v), len(v), lambda i, j: v[i] if i == j else Integer(0))
        if name == "ones":
            self._arity(name, args, 1)
            n = self.integer(args[0], env)
            if not 1 <= n <= limits.MAX_ENTRIES:
                raise ClaimError(f"ones({show(args[0])}) needs a size from 1 to {limits.MAX_ENTRIES}, not {n}")
            return self.alg.ones(n, 1)
        if name == "sum" and len(args) > 1:
            return self._index_sum(node, env)
        if name in ("sum", "mean", "var", "max", "min", "logsumexp"):
            self._arity(name, args, 1)
            return self._reduce(name, self.value(args[0], env), self._axis(node), node)
        if name in ("sqrt", "norm", "trace"):
            self._arity(name, args, 1)
            value = self.value(args[0], env)
            if name == "sqrt":
                return self._apply(sympy.sqrt, value)
            if name == "norm":
                return sympy.sqrt(sympy.Add(*[e * e for e in _as_matrix(value)]))
            value = _as_matrix(value)
            if value.rows != value.cols:
                raise ClaimError(f"trace of a {shape_text(value.shape)} matrix: it must be square")
            return sympy.Add(*[value[i, i] for i in range(value.rows)])
        if name == "concat":
            self._arity(name, args, 2)
            a, b = (_as_matrix(self.value(arg, env)) for arg in args)
            try:
                return self.alg.concat(a, b, self._axis(node, default=0))
            except ShapeError as error:
                raise ClaimError(f"{show(node)}: {error}") from None
        if name == "onehot":
            self._arity(name, args, 2)
            labels = self._vector(self.value(args[0], env), args[0])
            classes = self.integer(args[1], env)
            if not all(isinstance(c, sympy.Integer) and 1 <= c <= classes for c in labels):
                raise ClaimError(f"onehot({show(args[0])}, {classes}) needs integer labels 1..{classes} "
                                 "(declare them with values = \"index 1..C\")")
            return Mat.build(len(labels), classes, lambda i, j: Integer(1 if labels[i] == j + 1 else 0))
        if name == "outer":
            self._arity(name, args, 2)
            u = self._vector(self.value(args[0], env), args[0])
            v = self._vector(self.value(args[1], env), args[1])
            _check_size(len(u), len(v), show(node))
            return Mat.build(len(u), len(v), lambda i, j: u[i] * v[j])
        if name == "log":
            self._arity(name, args, 1)
            return self._apply(sympy.log, self.value(args[0], env))
        if name in LAYER_FUNCTIONS:
            self._arity(name, args, len(LAYER_FUNCTIONS[name]))
            arguments = [_as_matrix(self.value(arg, env)) for arg in args]
            try:
                return layer_call(name, Explicit("rows"), arguments)
            except (ShapeError, ValueError, IndexError) as error:
                raise ClaimError(f"{show(node)}: {error} (arguments: {', '.join(LAYER_FUNCTIONS[name])})") from None
        if name in FUNCTIONS or name in self.bindings:
            if name == "max" or name == "min":
                self._arity(name, args, 2)
                a, b = (self.value(arg, env) for arg in args)
                if name == "min":
                    return _elementwise("an elementwise minimum", a, b, lambda x, y: -Explicit().maximum(-x, -y))
                return _elementwise("an elementwise maximum", a, b, lambda x, y: Explicit().maximum(x, y))
            self._arity(name, args, 1)
            rule = self._function_rule(name)
            value = self.value(args[0], env)
            if rule.vector:
                if not isinstance(value, Mat):
                    raise ClaimError(f"{name} needs a vector")
                axis = self._axis(node)
                if axis is None:
                    if value.cols != 1 and value.rows != 1 and self.spec is None:
                        raise ClaimError(f"{show(node)}: say along which axis (axis=0: each column, axis=1: each row)")
                    return self.alg.softmax(value, rule.atom)
                return Explicit("columns" if axis == 0 else "rows").softmax(value, rule.atom)
            return self._apply(rule.atom, value)
        if name in self.definitions:
            raise ClaimError(f"{name} is defined as a quantity, not a function")
        raise ClaimError(f"unknown function {name} (functions: {', '.join(FUNCTIONS)}, and names mapped to "
                         "activation functions)")

    @staticmethod
    def _axis(node: ast.Call, default=None):
        for keyword in node.keywords:
            if keyword.arg == "axis":
                return keyword.value.value
        return default

    def _reduce(self, name: str, value, axis, node):
        """sum, mean, var, max, min, logsumexp of all entries (axis None) or along an axis (kept
        as a row for axis 0, a column for axis 1)."""
        value = _as_matrix(value)
        if axis is None:
            lines = [list(value)]
        elif axis == 0:
            lines = [list(column) for column in zip(*value.entries)]
        else:
            lines = [list(row) for row in value.entries]

        def reduce(entries):
            count = len(entries)
            if name == "sum":
                return sympy.Add(*entries)
            if name == "mean":
                return sympy.Add(*entries) / count
            if name == "var":
                mean = sympy.Add(*entries) / count
                return sympy.Add(*[(e - mean) ** 2 for e in entries]) / count
            if name == "logsumexp":
                return sympy.log(sympy.Add(*[sympy.exp(e) for e in entries]))
            best = entries[0]
            for e in entries[1:]:
                best = Explicit().maximum(e, best) if name == "max" else -Explicit().maximum(-e, -best)
            return best

        results = [reduce(line) for line in lines]
        if axis is None:
            return results[0]
        return Mat([results]) if axis == 0 else Mat([[r] for r in results])

    def index_sum_ranges(self, node: ast.Call, env: Env) -> list:
        """The (letter, range) pairs of sum(body, k in a..b, j, …): a bare letter j runs over its
        whole range, the dimension of the entries it selects in the body."""
        body, bound = node.args[0], []
        for item in node.args[1:]:
            if isinstance(item, ast.Name) and self.is_index_letter(item.id, env):  # its own, as k in a..b
                bound.append((item.id, range(1, self.index_range(item.id, body, env) + 1)))
                continue
            if not is_range(item):
                raise ClaimError(f"{show(node)}: after the body, sum takes ranges like k in 1..K "
                                 "or an index letter k (its whole range)")
            letter = item.left.id
            if letter in self.bindings or letter in self.definitions or letter in env.layers:
                raise ClaimError(f"{show(node)}: the summation index {letter} is already a name; use another letter")
            span = item.comparators[0]
            low, high = self.integer(span.left, env), self.integer(span.right, env)
            if high - low + 1 > limits.MAX_INDEX_SUM:
                raise ClaimError(f"{show(node)}: {letter} runs over {high - low + 1} values "
                                 f"(at most {limits.MAX_INDEX_SUM})")
            bound.append((letter, range(low, high + 1)))
        return bound

    def _index_sum(self, node: ast.Call, env: Env):
        """sum(body, k in a..b, j, …): the body summed over every bound index (both ends included)."""
        body, bound = node.args[0], self.index_sum_ranges(node, env)
        _check_entries([span for _, span in bound], [letter for letter, _ in bound], "summed")
        total = Integer(0)
        for values in itertools.product(*(span for _, span in bound)):
            inner = env.bind(indices={letter: v for (letter, _), v in zip(bound, values)})
            total = _elementwise("a sum", total, self.value(body, inner), lambda x, y: x + y)
        return total

    def _is_integer_quantity(self, node) -> bool:
        return isinstance(node, ast.Name) and node.id in self.bindings and \
            self.bindings[node.id].quantity in ("depth", "batch", "label", "width", "size", "outputs")

    @staticmethod
    def _arity(name, args, n):
        if len(args) != n:
            raise ClaimError(f"{name} takes {n} argument{'s' if n > 1 else ''}, not {len(args)}")

    @staticmethod
    def _vector(value, node) -> list:
        if not isinstance(value, Mat):
            return [value]
        if value.cols == 1 or value.rows == 1:
            return list(value)
        raise ClaimError(f"{show(node)} is {shape_text(value.shape)}, not a vector")

    @staticmethod
    def _apply(fn, value):
        return value.map(fn) if isinstance(value, Mat) else fn(value)

    def _function_rule(self, name: str) -> rules.Activation:
        spec = self.spec
        if name in self.bindings:
            q = self.bindings[name].quantity
            if q == "hidden_activation":
                if spec.depth < 2:
                    raise ClaimError(f"{name} is the hidden activation, but the network has no hidden layer")
                return spec.activation(1)
            if q == "output_activation":
                return spec.activation(spec.depth)
            if q == "activation_function":
                keys = {spec.activation(k).key for k in range(1, spec.depth + 1)}
                if len(keys) > 1:
                    raise ClaimError(f"{name} is mapped to activation_function but the layers use different "
                                     "functions: map hidden_activation and output_activation instead")
                return spec.activation(1)
            raise ClaimError(f"{name} is a {q}, not a function")
        if name == "exp":
            return rules.EXP
        at_zero = spec.relu_at_zero if spec is not None else 0
        if name == "heaviside":
            return rules.relu_row(at_zero).derivative(sympy.Symbol("x")).func.rule
        if name == "relu":
            return rules.activation("relu", relu_at_zero=at_zero)
        return rules.activation(name)


def evaluate(scope: Scope, lhs: ast.expr, rhs: ast.expr, env: Env) -> tuple[Mat, Mat]:
    """Both sides of a claim as matrices of the same layout: whole matrices, or one entry per
    assignment of the free indices — every letter of the left side, as in ∂z_i/∂W_ij."""
    free = sorted(letter for letter in scope.index_counts(lhs, env) if letter not in env.indices)
    if not free:
        left_value, right_value = scope.value(lhs, env), scope.value(rhs, env)
        return _as_matrix(left_value), _as_matrix(right_value)
    # The left side sets the grid; an entry the right side cannot supply is reported where it is used.
    ranges = {letter: scope.index_range(letter, lhs, env) for letter in free}
    _check_entries([range(ranges[letter]) for letter in free], free, "free")
    left_entries, right_entries = [], []
    for values in itertools.product(*(range(1, ranges[letter] + 1) for letter in free)):
        bound = env.bind(indices=dict(zip(free, values)))
        left_entries.append(_single(scope.value(lhs, bound), lhs))
        right_entries.append(_single(scope.value(rhs, bound), rhs))
    return Mat([left_entries]), Mat([right_entries])


def _check_size(rows: int, cols: int, what: str) -> None:
    """A matrix the formula builds (diag, outer, jacobian, @) has at most MAX_ENTRIES entries."""
    if rows * cols > limits.MAX_ENTRIES:
        raise ClaimError(f"{what} would be a {rows}×{cols} matrix; at most {limits.MAX_ENTRIES} entries")


def _check_entries(ranges: list, letters: list, kind: str) -> None:
    """Index letters spell out one entry per combination of their values: a bounded number."""
    count = math.prod(len(r) for r in ranges)
    if count > limits.MAX_ENTRIES:
        sizes = " × ".join(f"{len(r)} ({letter})" for r, letter in zip(ranges, letters))
        raise ClaimError(f"the {kind} indices {', '.join(letters)} spell out {sizes} = {count} entries; "
                         f"at most {limits.MAX_ENTRIES}")


def _check_power(base, exponent, node) -> None:
    """x ** p stays small: |p| ≤ MAX_EXPONENT for a number p, and a number to a power keeps
    within MAX_NUMBER_DIGITS digits (2**2**2**2**2 has 19 729)."""
    if not (isinstance(exponent, sympy.Expr) and exponent.is_number):
        return
    if exponent.is_real is False or abs(exponent) > limits.MAX_EXPONENT:
        raise ClaimError(f"the exponent in {show(node)} is at most {limits.MAX_EXPONENT} in absolute value")
    for b in (base if isinstance(base, Mat) else [base]):
        if isinstance(b, sympy.Rational) and b != 0:
            digits = float(abs(exponent)) * max(abs(b.p).bit_length(), b.q.bit_length()) * math.log10(2)
            if digits > limits.MAX_NUMBER_DIGITS:
                raise ClaimError(f"{show(node)} has more than {limits.MAX_NUMBER_DIGITS} digits")


def _as_matrix(value) -> Mat:
    return value if isinstance(value, Mat) else Mat([[value]])


def _single(value, node):
    value = _scalar(value)
    if isinstance(value, Mat):
        raise ClaimError(f"{show(node)} is a {shape_text(value.shape)} matrix where an entry is expected")
    return value




