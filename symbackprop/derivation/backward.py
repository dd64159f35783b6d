"""Backprop through a model's definitions: the second derivation of every gradient of a [model].

``derive.backprop`` writes the textbook recurrences for a dense network.  A model written as
definitions gets its recurrences the same way a textbook derives them: walking the definitions
from the loss back to the inputs, each operation passes the gradient of its result to its
operands by its own closed-form rule —

    C = A @ B          dA += dC Bᵀ,            dB += Aᵀ dC
    C = A ⊙ B          dA += dC ⊙ B,           dB += dC ⊙ A      (summed over broadcast rows/columns)
    C = A / B          dA += dC / B,           dB −= dC ⊙ A / B²
    C = A ** p         dA += dC ⊙ p A^(p−1)
    C = g(A)           dA += dC ⊙ g′(A)                          (g′ from the rules table: σ(1−σ), 1−tanh², H)
    C = softmax(A)     dA_i += Σ_j ∂ŷ_j/∂z_i dC_j = ŷ_i (dC_i − Σ_j ŷ_j dC_j)   (the row's Jacobian)
    C = Σ_axis A       dA += dC broadcast back;  mean: / n;  var: dC ⊙ 2(A − mean)/n
    C = exp(A), log(A), sqrt(A), max(A, B), concat, slices, entries, index sums …

— and a name used in several places (a weight shared over time, a tied embedding) collects the
sum of what each use passes back.  Nothing here differentiates: every rule is a closed form,
and the derivative rules of the activations are the rows' lemmas, which the prover requires
before a result counts as proved.  ``prove_model`` then decides, for every input, parameter and
intermediate, that this gradient equals the direct derivative of the loss.
"""

from __future__ import annotations

import ast
import itertools

import sympy
from sympy import Integer

from .. import rules
from ..matrices import Mat, broadcast_shape
from .language import PRIME, ClaimError, Env, Scope, _scalar
from .model import forward_order
from ..layers import FUNCTIONS as LAYER_FUNCTIONS
from ..matrices import Explicit


class NoRule(ClaimError):
    """An operation of the model has no backward rule here (yet)."""


def _zeros(rows: int, cols: int) -> Mat:
    return Mat.build(rows, cols, lambda i, j: Integer(0))


def _mat(value) -> Mat:
    return value if isinstance(value, Mat) else Mat([[value]])


def _map2(a: Mat, b: Mat, fn) -> Mat:
    return Mat([[fn(x, y) for x, y in zip(ra, rb)] for ra, rb in zip(a.entries, b.entries)])


def _unbroadcast(g: Mat, shape: tuple) -> Mat:
    """The gradient of an operand of ``shape`` that was broadcast to ``g``'s shape: summed over
    the rows (a 1 × n operand), the columns (m × 1), or everything (1 × 1)."""
    if g.shape == shape:
        return g
    rows, cols = shape
    if rows == 1 and g.rows != 1:
        g = Mat([[sympy.Add(*column) for column in zip(*g.entries)]])
    if cols == 1 and g.cols != 1:
        g = Mat([[sympy.Add(*row)] for row in g.entries])
    return g


class Adjoints:
    """Accumulated gradients of the model's names (whole tensors and family members)."""

    def __init__(self, instance):
        self.instance = instance
        self.values: dict = {}  # (name, member) -> Mat

    def add(self, name: str, member, g: Mat, part=None) -> None:
        """Add ``g`` to the gradient of ``name[member]``, or of its block ``part`` = ((r0, r1), (c0, c1))."""
        whole = _mat(self.instance.tensor(name, member))
        current = self.values.get((name, member))
        if current is None:
            current = _zeros(*whole.shape)
        if part is None:
            if g.shape != whole.shape:
                g = _unbroadcast(g, whole.shape)
            current = _map2(current, g, lambda x, y: x + y)
        else:
            (r0, r1), (c0, c1) = part
            rows = [list(row) for row in current.entries]
            for i in range(r0, r1):
                for j in range(c0, c1):
                    rows[i][j] = rows[i][j] + g[i - r0, j - c0]
            current = Mat(rows)
        self.values[name, member] = current

    def get(self, name: str, member=None) -> Mat:
        whole = _mat(self.instance.tensor(name, member))
        return self.values.get((name, member), _zeros(*whole.shape))


class Backward:
    """Pushes gradients back through formulas of one model instance (see the module docstring)."""

    def __init__(self, scope: Scope, adjoints: Adjoints):
        self.scope = scope
        self.adjoints = adjoints
        self.tensors = {name for name, b in scope.bindings.items() if b.quantity == "tensor"}

    def value(self, node, env: Env):
        return self.scope.value(node, env)

    def push(self, node, g, env: Env) -> None:
        """Pass the gradient ``g`` of ``node``'s value to what the node is made of."""
        value = self.value(node, env)
        g = _mat(g) if isinstance(value, Mat) else _scalar(g)
        if isinstance(g, Mat) and isinstance(value, Mat) and g.shape != value.shape:
            g = Mat.build(*value.shape, lambda i, j: g[0, 0]) if g.shape == (1, 1) else g
        if isinstance(node, ast.Constant):
            return
        if isinstance(node, ast.Name):
            return self._name(node.id, None, g, env)
        if isinstance(node, ast.BinOp):
            return self._binary(node, g, env)
        if isinstance(node, ast.UnaryOp):
            return self.push(node.operand, self._scale(-1, g) if isinstance(node.op, ast.USub) else g, env)
        if isinstance(node, ast.Attribute):  # .T
            return self.push(node.value, g.T if isinstance(g, Mat) else g, env)
        if isinstance(node, ast.Compare):
            return  # an Iverson bracket is a constant
        if isinstance(node, ast.Subscript):
            return self._subscript(node, g, env)
        if isinstance(node, ast.Call):
            return self._call(node, g, env)
        raise NoRule(f"no backward rule for {ast.unparse(node)}")

    # ---- names and entries
    def _name(self, name: str, member, g, env: Env) -> None:
        if name in env.indices or name in env.layers:
            return
        if name in self.tensors:
            self.adjoints.add(name, member, _mat(g))
            return
        binding = self.scope.bindings.get(name)
        if binding is not None and binding.quantity == "size":
            return
        raise NoRule(f"{name}: only the model's own tensors can be differentiated through")

    def _subscript(self, node: ast.Subscript, g, env: Env) -> None:
        base = node.value
        scope = self.scope
        if isinstance(base, ast.Name) and scope.is_layered(base.id):
            return self._name(base.id, scope.integer(node.slice, env), g, env)
        whole = _mat(self.value(base, env))
        entry = scope._entry_indices(node.slice, env)
        part = self._block(entry, whole.shape)
        if part is None:
            return  # an integer-valued lookup index carries no gradient
        (r0, r1), (c0, c1) = part
        g = _mat(g)
        if g.shape != (r1 - r0, c1 - c0):
            g = g.T if g.T.shape == (r1 - r0, c1 - c0) else g
        target = base
        member = None
        if isinstance(base, ast.Subscript) and isinstance(base.value, ast.Name) and scope.is_layered(base.value.id):
            target, member = base.value, scope.integer(base.slice, env)
        if isinstance(target, ast.Name) and target.id in self.tensors:
            self.adjoints.add(target.id, member, g, part)
            return
        full = _zeros(*whole.shape)
        rows = [list(row) for row in full.entries]
        for i in range(r0, r1):
            for j in range(c0, c1):
                rows[i][j] = g[i - r0, j - c0]
        self.push(base, Mat(rows), env)

    @staticmethod
    def _block(entry: tuple, shape: tuple):
        """The 0-based half-open rows and columns an entry, row, column or slice selects."""
        if len(entry) == 1:
            entry = (entry[0], 1) if shape[1] == 1 else (1, entry[0])
        spans = []
        for e, size in zip(entry, shape):
            if e is None:
                spans.append((0, size))
            elif isinstance(e, tuple):
                spans.append((e[0] - 1, e[1]))
            else:
                spans.append((e - 1, e))
        return tuple(spans)

    # ---- arithmetic
    @staticmethod
    def _scale(c, g):
        return g.map(lambda e: c * e) if isinstance(g, Mat) else c * g

    def _times(self, g, factor):
        """g ⊙ factor, broadcasting either way (scalars included)."""
        if not isinstance(g, Mat) and not isinstance(factor, Mat):
            return g * factor
        g, factor = _mat(g), _mat(factor)
        if g.shape == factor.shape:
            return _map2(g, factor, lambda x, y: x * y)
        rows, cols = broadcast_shape("a product", g.shape, factor.shape)

        def at(m, i, j):
            return m.entries[i if m.rows > 1 else 0][j if m.cols > 1 else 0]

        return Mat.build(rows, cols, lambda i, j: at(g, i, j) * at(factor, i, j))

    def _binary(self, node: ast.BinOp, g, env: Env) -> None:
        op, left, right = node.op, node.left, node.right
        a, b = self.value(left, env), self.value(right, env)
        if isinstance(op, (ast.Add, ast.Sub)):
            self.push(left, self._fit(g, a), env)
            self.push(right, self._fit(self._scale(-1, g) if isinstance(op, ast.Sub) else g, b), env)
        elif isinstance(op, ast.Mult):
            if self.scope._bracket_is_zero(node, env):
                return
            self.push(left, self._fit(self._times(g, b), a), env)
            self.push(right, self._fit(self._times(g, a), b), env)
        elif isinstance(op, ast.Div):
            self.push(left, self._fit(self._times(g, self._inverse(b)), a), env)
            self.push(right, self._fit(self._scale(-1, self._times(self._times(g, a), self._inverse_square(b))), b), env)
        elif isinstance(op, ast.Pow):
            exponent = _scalar(b)
            if isinstance(exponent, Mat) or exponent.free_symbols & self._variables():
                raise NoRule(f"no backward rule for a power with a variable exponent: {ast.unparse(node)}")
            self.push(left, self._fit(self._times(g, self._apply(lambda x: exponent * x ** (exponent - 1), a)), a), env)
        elif isinstance(op, ast.MatMult):
            a, b, g = _mat(a), _mat(b), _mat(g)
            alg = self.scope.alg
            self.push(left, alg.matmul(g, b.T), env)
            self.push(right, alg.matmul(a.T, g), env)
        else:
            raise NoRule(f"no backward rule for {type(op).__name__}")

    def _variables(self) -> set:
        return {symbol for symbol, _ in self.scope.net.variables} | set(self.scope.net.perturbation)

    @staticmethod
    def _apply(fn, value):
        return value.map(fn) if isinstance(value, Mat) else fn(value)

    def _inverse(self, b):
        return self._apply(lambda x: 1 / x, b)

    def _inverse_square(self, b):
        return self._apply(lambda x: 1 / x ** 2, b)

    @staticmethod
    def _fit(g, operand):
        """``g`` brought to the operand's shape: summed over what was broadcast."""
        if not isinstance(operand, Mat):
            return sympy.Add(*g) if isinstance(g, Mat) else g
        g = _mat(g)
        if g.shape == operand.shape:
            return g
        if g.shape == (1, 1):
            return Mat.build(*operand.shape, lambda i, j: g[0, 0])
        return _unbroadcast(g, operand.shape)

    # ---- functions
    def _call(self, node: ast.Call, g, env: Env) -> None:
        name, args = node.func.id, node.args
        scope = self.scope
        axis = scope._axis(node)
        if name == "sum" and len(args) > 1:
            bound = scope.index_sum_ranges(node, env)
            for values in itertools.product(*(span for _, span in bound)):
                self.push(args[0], g, env.bind(indices={letter: v for (letter, _), v in zip(bound, values)}))
            return
        if name.endswith(PRIME):
            raise NoRule(f"no backward rule through a derivative {name[:-len(PRIME)]}′ inside the model")
        if name in LAYER_FUNCTIONS:
            return self._layer(name, node, g, env)
        x = self.value(args[0], env) if args else None
        if name in ("sum", "mean", "var"):
            x = _mat(x)
            count = {None: x.rows * x.cols, 0: x.rows, 1: x.cols}[axis]
            back = self._spread(g, x.shape, axis)
            if name == "mean":
                back = self._scale(sympy.Integer(1) / count, back)
            if name == "var":
                centred = self._minus_mean(x, axis)
                back = self._times(back, centred.map(lambda e: 2 * e / count))
            return self.push(args[0], back, env)
        if name == "logsumexp":
            x = _mat(x)
            weights = self._softmax(x, axis)
            return self.push(args[0], self._times(self._spread(g, x.shape, axis), weights), env)
        if name in ("exp", "log", "sqrt"):
            derivative = {"exp": sympy.exp, "log": lambda e: 1 / e, "sqrt": lambda e: 1 / (2 * sympy.sqrt(e))}[name]
            return self.push(args[0], self._times(g, self._apply(derivative, x)), env)
        if name == "norm":
            total = sympy.sqrt(sympy.Add(*[e * e for e in _mat(x)]))
            return self.push(args[0], self._times(g, self._apply(lambda e: e / total, x)), env)
        if name == "trace":
            x = _mat(x)
            return self.push(args[0], Mat.build(*x.shape, lambda i, j: _scalar(g) if i == j else Integer(0)), env)
        if name in ("max", "min") and len(args) == 2:
            a, b = x, self.value(args[1], env)
            step = rules.relu_row(0).derivative  # H(a − b): which side the gradient takes
            sign = 1 if name == "max" else -1
            mask = self._zip(a, b, lambda u, v: step(sign * (u - v)))
            other = self._apply(lambda h: 1 - h, mask)
            self.push(args[0], self._fit(self._times(g, mask), a), env)
            self.push(args[1], self._fit(self._times(g, other), b), env)
            return
        if name == "concat":
            a = _mat(x)
            g = _mat(g)
            axis = 0 if axis is None else axis
            if axis == 0:
                first, second = Mat(g.entries[:a.rows]), Mat(g.entries[a.rows:])
            else:
                first, second = Mat([row[:a.cols] for row in g.entries]), Mat([row[a.cols:] for row in g.entries])
            self.push(args[0], first, env)
            self.push(args[1], second, env)
            return
        if name == "onehot":
            return
        if name in ("grad", "jacobian", "diag", "ones", "outer") or (name in ("max", "min") and len(args) == 1):
            raise NoRule(f"no backward rule for {name}(…) inside a model's definitions")
        rule = scope._function_rule(name)
        if rule.vector:
            x = _mat(x)
            if axis is None:
                axis = 0 if x.cols == 1 else 1
            y = self._softmax(x, axis, rule)
            return self.push(args[0], self._vector_back(rule, y, _mat(g), axis), env)
        return self.push(args[0], self._times(g, self._apply(rule.derivative, x)), env)

    def _layer(self, name: str, node: ast.Call, g, env: Env) -> None:
        """A row of the layer library: its closed-form backward pass (a proved lemma of the row, see
        ``layer_proofs``) with dy = the gradient arriving at the call passes each argument its part."""
        from ..layers import LAYERS

        names = LAYER_FUNCTIONS[name]
        values = {n: _mat(self.value(arg, env)) for n, arg in zip(names, node.args)}
        parts = LAYERS[name].backward(Explicit("rows"), values, _mat(g))
        variables = self._variables()
        for argument, arg in zip(names, node.args):
            if argument in parts:
                self.push(arg, _mat(parts[argument]), env)
            elif any(e.free_symbols & variables for e in values[argument]):
                raise NoRule(f"no backward rule for the argument {argument} of {name}(…): the row treats it as fixed")

    def _zip(self, a, b, fn):
        if not isinstance(a, Mat) and not isinstance(b, Mat):
            return fn(a, b)
        a, b = _mat(a), _mat(b)
        rows, cols = broadcast_shape("a comparison", a.shape, b.shape)

        def at(m, i, j):
            return m.entries[i if m.rows > 1 else 0][j if m.cols > 1 else 0]

        return Mat.build(rows, cols, lambda i, j: fn(at(a, i, j), at(b, i, j)))

    @staticmethod
    def _spread(g, shape: tuple, axis):
        """The gradient of a reduction, spread back over what was reduced."""
        rows, cols = shape
        if axis is None:
            value = _scalar(g)
            return Mat.build(rows, cols, lambda i, j: value)
        g = _mat(g)
        if axis == 0:
            return Mat.build(rows, cols, lambda i, j: g[0, j])
        return Mat.build(rows, cols, lambda i, j: g[i, 0])

    @staticmethod
    def _minus_mean(x: Mat, axis):
        if axis is None:
            mean = sympy.Add(*x) / (x.rows * x.cols)
            return x.map(lambda e: e - mean)
        if axis == 0:
            means = [sympy.Add(*column) / x.rows for column in zip(*x.entries)]
            return Mat.build(x.rows, x.cols, lambda i, j: x[i, j] - means[j])
        means = [sympy.Add(*row) / x.cols for row in x.entries]
        return Mat.build(x.rows, x.cols, lambda i, j: x[i, j] - means[i])

    def _softmax(self, x: Mat, axis, rule=rules.SOFTMAX) -> Mat:
        from ..matrices import Explicit

        return Explicit("columns" if axis in (0, None) else "rows").softmax(x, rule.atom)

    @staticmethod
    def _vector_back(rule, y: Mat, g: Mat, axis) -> Mat:
        """dz_i = Σ_j ∂ŷ_j/∂z_i · g_j along each column (axis 0) or row (axis 1), by the row's Jacobian."""
        def lines(m):
            return [list(column) for column in zip(*m.entries)] if axis == 0 else [list(row) for row in m.entries]

        result = []
        for ys, gs in zip(lines(y), lines(g)):
            result.append([sympy.Add(*[rule.jacobian(ys[j], ys[i], 1 if i == j else 0) * gs[j]
                                       for j in range(len(ys))]) for i in range(len(ys))])
        return Mat(result).T if axis == 0 else Mat(result)


def backprop(scope: Scope, spec) -> Adjoints:
    """The gradient of the loss with respect to every tensor of the model, by the rules above."""
    instance = scope.net
    adjoints = Adjoints(instance)
    walker = Backward(scope, adjoints)
    if spec.upstream:
        for output, upstream in spec.upstream.items():
            adjoints.add(output, None, _mat(instance.tensor(upstream)))
    elif spec.loss.strip() in spec.names():
        adjoints.add(spec.loss.strip(), None, Mat([[Integer(1)]]))
    else:
        walker.push(_parse(spec.loss), Integer(1), Env())
    for forward, member, env in reversed(list(forward_order(spec, scope))):
        d = forward.definition
        g = adjoints.get(d.name, member)
        if d.indices:
            letters = d.indices
            for i in range(g.rows):
                for j in range(g.cols):
                    bound = {letters[0]: i + 1} if len(letters) == 1 else {letters[0]: i + 1, letters[1]: j + 1}
                    walker.push(d.expr, g[i, j], env.bind(indices=bound))
        else:
            walker.push(d.expr, g if isinstance(instance.tensor(d.name, member), Mat) else g[0, 0], env)
    return adjoints


def _parse(text: str):
    from .language import parse

    return parse(text)


# ------------------------------------------------------------------------------ the proof
#
# Two routes.  ``exact``: every gradient of the whole instance, backprop's against the direct
# derivative — the cost grows with the expansion of the whole model.  ``composed`` (the
# default): each definition v = f(u₁, …) is checked *locally*, on an instance where every tensor
# is a fresh symbol U and v's gradient a fresh G: the rules' output equals (∂f/∂U)ᵀ G, an
# identity in U and G.  Backprop at full size runs the very same code with U replaced by the
# actual values, so each of its steps is (∂v/∂u)ᵀ ∂J/∂v; summed over the uses of u, that is the
# chain rule, and by induction from the loss back to the inputs every accumulated gradient is
# ∂J/∂u.  The cost grows with the number of definitions, not with the expansion.


class ModelProof:
    """For every tensor of a model and every instance checked: backprop's gradient = the direct one."""

    def __init__(self, derivation, method: str, results: list, instances: list, seconds: float):
        self.derivation = derivation
        self.method = method
        self.results = results  # [(instance description, statement, Verdict)]
        self.instances = instances
        self.seconds = seconds

    @property
    def all_proved(self) -> bool:
        return bool(self.results) and all(verdict.proved for *_, verdict in self.results)

    def to_dict(self) -> dict:
        return {"path": self.derivation.path, "title": self.derivation.title, "method": self.method,
                "instances": self.instances,
                "results": [{"instance": where, "statement": statement, **verdict.to_dict()}
                            for where, statement, verdict in self.results],
                "all_proved": self.all_proved, "seconds": round(self.seconds, 3)}

    def __repr__(self) -> str:
        proved = sum(v.proved for *_, v in self.results)
        return f"<ModelProof {self.derivation.path} ({self.method}): {proved} of {len(self.results)} proved>"


def _label(name: str, member) -> str:
    return name if member is None else f"{name}[{member}]"


def fresh_copy(instance):
    """The instance's tensors, shapes and integer inputs kept, every other value a fresh symbol."""
    from .model import ModelInstance

    local = ModelInstance(instance.sizes)
    for name, value in instance.values.items():
        members = value.items() if isinstance(value, dict) else [(None, value)]
        refs = instance.refs[name]
        for member, tensor in members:
            ref = refs[member] if isinstance(refs, dict) else refs
            if ref is None:  # integer-valued: kept as they are
                fresh, fresh_ref = tensor, None
            else:
                shape = tensor.shape if isinstance(tensor, Mat) else (1, 1)
                fresh = local.variable_matrix(f"U:{_label(name, member)}", *shape)
                fresh_ref = fresh
                if not isinstance(tensor, Mat):
                    fresh = fresh[0, 0]
            if member is None:
                local.values[name], local.refs[name] = fresh, fresh_ref
            else:
                local.values.setdefault(name, {})[member] = fresh
                local.refs.setdefault(name, {})[member] = fresh_ref
    return local


def local_lemmas(spec, instance, *, timeout: float | None = 60.0, progress=None, where: str = "") -> list:
    """(statement, Verdict) for every definition member and every operand it uses (see above)."""
    from ..evaluate import Partial
    from ..prove import Decider
    from .model import bindings_of, forward_order

    local = fresh_copy(instance)
    scope = Scope(bindings_of(spec), [], local)
    decider = Decider(local)
    owner = {}
    for name, value in local.refs.items():
        for member, ref in (value.items() if isinstance(value, dict) else [(None, value)]):
            if ref is not None:
                for symbol in ref:
                    owner[symbol] = (name, member)
    items = [(f, member, env) for f, member, env in forward_order(spec, scope)]
    if not spec.upstream and spec.loss.strip() not in spec.names():
        items.append((None, None, Env()))
    results = []
    for f, member, env in items:
        adjoints = Adjoints(local)
        walker = Backward(scope, adjoints)
        if f is None:
            target, expr, indices = "the loss", _parse(spec.loss), ()
            G = Integer(1)
            local_J = _scalar(scope.value(expr, env))
            walker.push(expr, G, env)
        else:
            d = f.definition
            target, expr, indices = _label(d.name, member), d.expr, d.indices
            shape = _mat(local.tensor(d.name, member)).shape
            G = local.variable_matrix(f"G:{target}", *shape)
            if indices:
                local_J = Integer(0)
                for i in range(shape[0]):
                    for j in range(shape[1]):
                        bound = {indices[0]: i + 1} if len(indices) == 1 else {indices[0]: i + 1, indices[1]: j + 1}
                        inner = env.bind(indices=bound)
                        local_J += G[i, j] * _scalar(scope.value(expr, inner))
                        walker.push(expr, G[i, j], inner)
            else:
                value = scope.value(expr, env)
                local_J = sympy.Add(*[v * g for v, g in zip(_mat(value), G)])
                walker.push(expr, G if isinstance(value, Mat) else G[0, 0], env)
        used = {owner[s] for s in sympy.sympify(local_J).free_symbols if s in owner} | set(adjoints.values)
        for name, operand in sorted(used, key=str):
            statement = f"{target} → ∂/∂{_label(name, operand)}"
            if progress:
                progress(f"{statement} on {where}")
            reference = local.refs[name][operand] if operand is not None else local.refs[name]
            truth = reference.map(lambda theta: Partial(local_J, theta, sympy.Symbol(target)))
            results.append((statement, decider.decide(truth, adjoints.get(name, operand), timeout=timeout)))
    return results


def prove_model(derivation, *, method: str = "composed", timeout: float | None = 60.0, progress=None) -> ModelProof:
    """Backprop through the definitions (:func:`backprop`) against direct differentiation, for the
    loss's gradient with respect to every input, parameter and intermediate, on the document's
    sizes and on sizes the tool chooses; ``method`` is "composed" or "exact" (see above)."""
    import random
    import time

    from ..evaluate import Partial
    from ..prove import UNDECIDED, Decider, Verdict
    from .check import model_cases
    from .model import bindings_of, build

    if method not in ("composed", "exact"):
        raise ValueError(f"method must be 'composed' or 'exact', not {method!r}")
    started = time.perf_counter()
    spec = derivation.model
    results, described = [], []
    for case in model_cases(derivation):
        instance = build(spec, case.sizes, random.Random(case.seed))
        where = case.describe(instance)
        described.append(where)
        try:
            if method == "composed":
                for statement, verdict in local_lemmas(spec, instance, timeout=timeout, progress=progress,
                                                       where=where):
                    results.append((where, statement, verdict))
                continue
            scope = Scope(bindings_of(spec), [], instance)
            adjoints = backprop(scope, spec)
        except ClaimError as error:
            results.append((where, "backprop through the definitions", Verdict(UNDECIDED, message=str(error))))
            continue
        decider = Decider(instance)
        for name in instance.values:
            members = sorted(instance.values[name]) if instance.is_family(name) else [None]
            for member in members:
                reference = instance.refs[name][member] if member is not None else instance.refs[name]
                if reference is None or name == "loss" or name in spec.upstream.values():
                    continue
                if progress:
                    progress(f"∂J/∂{_label(name, member)} on {where}")
                truth = reference.map(lambda theta: Partial(instance.J, theta, instance.loss_symbol))
                verdict = decider.decide(truth, adjoints.get(name, member), timeout=timeout)
                results.append((where, f"∂J/∂{_label(name, member)}", verdict))
    return ModelProof(derivation, method, results, described, time.perf_counter() - started)
