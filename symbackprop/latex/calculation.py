"""Calculational proofs: chains of equalities at matrix level, every line checked by the prover.

A :class:`Step` states a matrix-level expression (the nodes of ``printer``) and the reason it
equals the line before.  The expressions are notation *and* data: :class:`Instantiate` turns
each into the explicit matrices of a network instance, and :func:`check` has ``prove.Decider``
decide every consecutive pair — a line counts as proven only with a ``proved`` verdict.

The recurrences are not retyped here: ``derive.backprop`` runs over :class:`MatrixExpressions`,
an algebra whose values are these nodes, so the δ^{(k)} and ∂J/∂W^{(k)} a document prints are
the formulas the prover proves.  Each calculation starts from the true gradient and rewrites it,
one chain-rule step, lemma or simplification per line, into that recurrence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy
from sympy import Derivative, HadamardProduct, Integer, MatAdd, MatMul, Symbol, Transpose, sympify
from sympy.matrices.expressions.matexpr import MatrixExpr

from .. import rules
from ..derive import backprop, gradient_of
from ..evaluate import Partial
from ..matrices import Mat, ShapeError, shape_text
from ..network import Network, NetworkSpec
from ..prove import ILL_FORMED, Decider, Verdict, lemmas_for
from .printer import (Entrywise, EntrywisePartial, ExampleSums, Filled, Layer, Ones, PartialMatrix, Quotient,
                      SoftmaxMatrix, latex)

BATCH = Symbol("m", positive=True, integer=True)  # the batch size, as the documents write it
PENALTY = Symbol("λ")  # the network's own L2 coefficient symbol
LOSS = Symbol("J")
_X = Symbol("x")  # the variable of an entrywise function's body


# ------------------------------------------------------------------ the printing algebra


class MatrixExpressions:
    """The matrix algebra of ``matrices.Explicit`` with formulas as values instead of entries."""

    def __init__(self, layout: str = "columns", batch: int = 1):
        self.layout, self.batch = layout, batch

    @staticmethod
    def _check(op: str, a, b) -> None:
        if a.shape != b.shape:
            raise ShapeError(f"{op} of a {shape_text(a.shape)} and a {shape_text(b.shape)} matrix")

    def _pair(self, op: str, a, b):
        """Scalars broadcast, as in ``Explicit``."""
        if not isinstance(a, MatrixExpr):
            a = Filled(a, *b.shape)
        if not isinstance(b, MatrixExpr):
            b = Filled(b, *a.shape)
        self._check(op, a, b)
        return a, b

    def matmul(self, a, b):
        if a.shape[1] != b.shape[0]:
            raise ShapeError(f"product of a {shape_text(a.shape)} and a {shape_text(b.shape)} matrix")
        if isinstance(b, Ones) and b.shape == (1, 1):
            return a
        return MatMul(a, b)

    def T(self, a):
        return Transpose(a)

    def add(self, a, b):
        return MatAdd(*self._pair("sum", a, b))

    def sub(self, a, b):
        a, b = self._pair("difference", a, b)
        return MatAdd(a, self.scale(-1, b))

    def hadamard(self, a, b):
        if not isinstance(a, MatrixExpr):
            return self.scale(a, b)
        if not isinstance(b, MatrixExpr):
            return self.scale(b, a)
        self._check("elementwise product", a, b)
        return HadamardProduct(a, b)

    def divide(self, a, b):
        return Quotient(*self._pair("elementwise quotient", a, b))

    def scale(self, c, a):
        c = sympify(c)
        return a if c == 1 else MatMul(c, a)

    def apply(self, fn, a):
        return Entrywise(fn(_X), _X, a)

    def log(self, a):
        return Entrywise(sympy.log(_X), _X, a)

    def full(self, value, like):
        return Filled(value, *like.shape)

    def ones(self, rows: int, cols: int = 1):
        label = BATCH if self.batch in (rows, cols) else max(rows, cols)
        return Ones(rows, cols, label)

    def total(self, a):
        raise NotImplementedError("a loss is printed from its row's LaTeX, not summed symbolically")

    def examples(self, a) -> int:
        return int(a.shape[1] if self.layout == "columns" else a.shape[0])

    def output_width(self, a) -> int:
        return int(a.shape[0] if self.layout == "columns" else a.shape[1])

    def example_sums(self, a):
        return ExampleSums(a, self.layout)

    def affine(self, W, A, b):
        """W a + b 𝟏ᵀ (columns) or a Wᵀ + 𝟏 bᵀ (rows); with one example, W a + b."""
        if self.layout == "columns":
            bias = b if self.batch == 1 else self.matmul(b, self.ones(1, self.batch))
            return self.add(self.matmul(W, A), bias)
        bias = Transpose(b) if self.batch == 1 else self.matmul(self.ones(self.batch, 1), Transpose(b))
        return self.add(self.matmul(A, Transpose(W)), bias)

    def softmax(self, Z, atom):
        return SoftmaxMatrix(Z)


class SymbolicNetwork:
    """A network's quantities as names (W^{(k)}, z^{(k)}, …): what ``derive.backprop`` reads, so
    that run over :class:`MatrixExpressions` it returns the recurrences as formulas."""

    def __init__(self, spec: NetworkSpec):
        n, L, m = spec.widths, spec.depth, spec.batch
        self.spec, self.depth, self.batch = spec, L, m
        self.alg = MatrixExpressions(spec.layout, m)

        def data(kind, k, width):
            return Layer(kind, k, width, m) if spec.layout == "columns" else Layer(kind, k, m, width)

        self.W = {k: Layer("W", k, n[k], n[k - 1]) for k in range(1, L + 1)}
        self.b = {k: Layer("b", k, n[k], 1) for k in range(1, L + 1)}
        self.Z = {k: data("z", k, n[k]) for k in range(1, L + 1)}
        self.A = {0: data("x", 0, n[0]), **{k: data("a", k, n[k]) for k in range(1, L + 1)}}
        self.Y = data("y", 0, n[L])
        # one example: the mean is the example itself, and the documents write no 1/1
        self.reduction_factor = 1 / BATCH if spec.reduction == "mean" and m > 1 else Integer(1)
        self.penalty = PENALTY if spec.l2 else None
        self.loss_symbol = LOSS

    def delta(self, k: int) -> Layer:
        return Layer("delta", k, *self.Z[k].shape)


# ------------------------------------------------------------------------ instantiation


def closed_form(body):
    """An entrywise body with every g′(x) replaced by the row's closed form (σ(x)(1 − σ(x)), …)."""
    derivatives = {d: d.expr.rule.derivative(d.variables[0]) for d in body.atoms(Derivative)
                   if isinstance(d.expr, rules.Atom)}
    return body.xreplace(derivatives) if derivatives else body


class Instantiate:
    """Matrix-level expressions → the explicit matrices of one network instance.

    W^{(k)}, z^{(k)}, … are the network's matrices; ∂J/∂X is the matrix of true partial
    derivatives (``evaluate.Partial`` nodes; ∂J/∂z differentiates through z's perturbation ε);
    δ^{(k)} is what ``derive.backprop`` computes on the instance.
    """

    def __init__(self, net: Network):
        self.net = net
        self.alg = net.alg
        self.memo: dict = {}
        self._deltas: dict | None = None

    def deltas(self) -> dict:
        if self._deltas is None:
            gradients = backprop(self.net)
            self._deltas = {k: gradients["z", k] for k in range(1, self.net.depth + 1)}
        return self._deltas

    def __call__(self, node):
        try:
            return self.memo[node]
        except KeyError:
            pass
        value = self._value(node)
        self.memo[node] = value
        return value

    def _layer(self, node: Layer, variables: bool = False) -> Mat:
        net, k = self.net, node.layer
        if node.kind == "x":
            return net.X
        if node.kind == "y":
            return net.Y
        if node.kind == "delta":
            return self.deltas()[k]
        if variables and node.kind in ("z", "a"):
            return net.perturbation_of("preactivation" if node.kind == "z" else "activation", k)
        return {"W": net.W, "b": net.b, "z": net.Z, "a": net.A}[node.kind][k]

    def _value(self, node):
        net, alg = self.net, self.alg
        if not isinstance(node, MatrixExpr):
            return sympify(node).xreplace({BATCH: Integer(net.batch)})
        if isinstance(node, Layer):
            return self._layer(node)
        if isinstance(node, PartialMatrix):
            if node.of != LOSS:
                raise ValueError(f"only the loss {LOSS} is differentiated at matrix level, not {node.of}")
            return gradient_of(net, net.J, self._layer(node.wrt, variables=True), label=LOSS)
        if isinstance(node, EntrywisePartial):
            numerator, denominator = (self._layer(a) for a in node.args)
            variables = self._layer(node.args[1], variables=True)
            label = Symbol(node.args[0].kind + str(node.args[0].layer))
            return Mat.build(numerator.rows, numerator.cols,
                             lambda i, j: Partial(numerator[i, j], variables[i, j], label))
        if isinstance(node, Entrywise):
            body = closed_form(node.body)
            return self(node.matrix).map(lambda entry: body.xreplace({node.variable: entry}))
        if isinstance(node, SoftmaxMatrix):
            return alg.softmax(self(node.args[0]), rules.SOFTMAX.atom)
        if isinstance(node, Ones):
            return alg.ones(int(node.shape[0]), int(node.shape[1]))
        if isinstance(node, Filled):
            return Mat.build(int(node.shape[0]), int(node.shape[1]), lambda i, j: node.args[0])
        if isinstance(node, Quotient):
            return alg.divide(self(node.args[0]), self(node.args[1]))
        if isinstance(node, ExampleSums):
            return alg.example_sums(self(node.args[0]))
        if isinstance(node, Transpose):
            return alg.T(self(node.arg))
        if isinstance(node, MatMul):
            scalars = [self(a) for a in node.args if not isinstance(a, MatrixExpr)]
            matrices = [self(a) for a in node.args if isinstance(a, MatrixExpr)]
            product = matrices[0]
            for matrix in matrices[1:]:
                product = alg.matmul(product, matrix)
            return alg.scale(sympy.Mul(*scalars), product) if scalars else product
        if isinstance(node, (MatAdd, HadamardProduct)):
            combine = alg.add if isinstance(node, MatAdd) else alg.hadamard
            values = [self(a) for a in node.args]
            total = values[0]
            for value in values[1:]:
                total = combine(total, value)
            return total
        raise TypeError(f"cannot instantiate {type(node).__name__}")


# ------------------------------------------------------------------------- calculations


@dataclass
class Step:
    """One line of a calculation: ``= statement`` because ``reason`` (LaTeX, may hold $…$).

    ``verdict`` is the prover's verdict on "previous line = this line"; None means not checked.
    """

    statement: object
    reason: str
    verdict: Verdict | None = None

    @property
    def proved(self) -> bool:
        return self.verdict is not None and self.verdict.proved


@dataclass
class Calculation:
    """A chain of equalities ``start = steps[0] = steps[1] = …``; its conclusion is start = last."""

    title: str  # LaTeX
    start: object
    steps: list = field(default_factory=list)
    key: tuple = ()  # ("z" | "W" | "b", layer) for network calculations

    @property
    def checked(self) -> bool:
        return all(step.verdict is not None for step in self.steps)

    @property
    def proved(self) -> bool:
        """Every line proved equal to the line before: the conclusion holds (on the instance)."""
        return bool(self.steps) and all(step.proved for step in self.steps)

    @property
    def failures(self) -> list:
        return [(number, step) for number, step in enumerate(self.steps, start=1)
                if step.verdict is not None and not step.proved]


def check(calculation: Calculation, decider: Decider, instantiate: Instantiate, *, timeout: float | None = 60.0
          ) -> Calculation:
    """Decide every line of ``calculation`` equal to the line before; the verdicts are stored on the steps."""
    previous = calculation.start
    for step in calculation.steps:
        try:
            left, right = instantiate(previous), instantiate(step.statement)
        except ShapeError as error:
            step.verdict = Verdict(ILL_FORMED, message=f"shape mismatch: {error}")
        else:
            step.verdict = decider.decide(left, right, timeout=timeout)
        previous = step.statement
    return calculation


@dataclass
class Recurrences:
    """The recurrences ``derive.backprop`` computes, as formulas with δ^{(k)} named."""

    network: SymbolicNetwork
    delta: dict  # k -> δ^{(k)} in terms of δ^{(k+1)}
    weight: dict  # k -> ∂J/∂W^{(k)} in terms of δ^{(k)}
    bias: dict
    expanded: dict  # k -> δ^{(k)} as backprop builds it (nested)


def recurrences(spec: NetworkSpec) -> Recurrences:
    net = SymbolicNetwork(spec)
    gradients = backprop(net)
    L = spec.depth
    expanded = {k: gradients["z", k] for k in range(1, L + 1)}
    named = {expanded[k]: net.delta(k) for k in range(1, L + 1)}
    delta = {k: expanded[k].xreplace({expanded[k + 1]: net.delta(k + 1)}) if k < L else expanded[k]
             for k in range(1, L + 1)}
    return Recurrences(net, delta, {k: gradients["W", k].xreplace(named) for k in range(1, L + 1)},
                       {k: gradients["b", k].xreplace(named) for k in range(1, L + 1)}, expanded)


def _inline(expr) -> str:
    """Mathematics inside a line of text: ∂J/∂X folded onto one line."""
    return latex(expr, fold=True)


def _prime(row: rules.Activation, Z) -> Entrywise:
    """g′(z) as notation (instantiated to the row's closed form, which its lemma justifies)."""
    return Entrywise(Derivative(row.atom(_X), _X), _X, Z)


def _lemma_reason(row, numbers: dict) -> str:
    number = numbers.get(row.name)
    cited = f"Lemma {number}" if number else "the derivative rule"
    return rf"{cited}: ${_inline(Derivative(row.atom(_X), _X))} = {_inline(row.derivative(_X))}$"


def network_calculations(spec: NetworkSpec) -> tuple[Recurrences, list[Calculation]]:
    """For every layer, from L down to 1: ∂J/∂z^{(k)}, ∂J/∂W^{(k)} and ∂J/∂b^{(k)}, each a chain
    from the true gradient to the recurrence (not yet checked: see :func:`check`)."""
    rec = recurrences(spec)
    net, alg, L = rec.network, rec.network.alg, spec.depth
    loss_row = spec.loss_rule
    lemma_numbers = {row.name: i for i, (row, _) in enumerate(lemmas_for(spec), start=1)}
    calculations = []
    for k in range(L, 0, -1):
        row = spec.activation(k)
        A, Z = net.A[k], net.Z[k]
        forward = rf"${_inline(A)} = {_inline(alg.softmax(Z, None) if row.vector else alg.apply(row.atom, Z))}$"
        steps = []
        if row.vector or k == L:
            c = net.reduction_factor
            general = alg.scale(c, rules.output_delta(alg, loss_row, row, A, net.Y, Z, shortcut=False))
            scale = _inline(c) + " " if c != 1 else ""
            penalty = r" + \tfrac{\lambda}{2}\sum_k \lVert W^{(k)}\rVert^2" if spec.l2 else ""
            loss = (rf"$J = {scale}\sum_{{e}} \ell({_inline(A)}_e, y_e){penalty}$, "
                    rf"$\ell(a, y) = {loss_row.latex}$, $\partial \ell/\partial a = "
                    rf"{_inline(loss_row.grad_output(alg, A, net.Y))}$")
            if row.vector:
                steps.append(Step(general, rf"chain rule through {forward}, whose Jacobian in each example "
                                           rf"is $\operatorname{{diag}}(\hat y) - \hat y \hat y^{{\top}}$ "
                                           rf"(Lemma {lemma_numbers.get(row.name, '')}); " + loss))
            else:
                closed, prime, entry = alg.apply(row.derivative, Z), _prime(row, Z), EntrywisePartial(A, Z)
                steps.append(Step(alg.hadamard(PartialMatrix(LOSS, A), entry),
                                  f"chain rule: {forward}, entry by entry"))
                steps.append(Step(general.xreplace({closed: entry}), loss))
                steps.append(Step(general.xreplace({closed: prime}), f"{forward}"))
                if _inline(prime) != _inline(closed):
                    steps.append(Step(general, _lemma_reason(row, lemma_numbers)))
            if rec.expanded[k] != general:
                facts = [] if row.vector else [rf"${_inline(A)} = {_inline(alg.apply(row.atom, Z))}$"]
                if loss_row.simplex_targets:
                    facts.append("the targets of each example sum to 1")
                steps.append(Step(rec.expanded[k], "simplification: " + ", and ".join(facts or ["algebra"])))
        else:
            upper = net.delta(k + 1)
            recurrence = rec.delta[k]
            closed, prime, entry = alg.apply(row.derivative, Z), _prime(row, Z), EntrywisePartial(A, Z)
            through = recurrence.xreplace({upper: PartialMatrix(LOSS, net.Z[k + 1])})
            with_prime = through.xreplace({closed: prime})
            affine = alg.affine(net.W[k + 1], A, net.b[k + 1])
            steps.append(Step(alg.hadamard(PartialMatrix(LOSS, A), entry), f"chain rule: {forward}, entry by entry"))
            steps.append(Step(with_prime.xreplace({prime: entry}),
                              rf"chain rule through ${_inline(net.Z[k + 1])} = {_inline(affine)}$"))
            steps.append(Step(with_prime, forward))
            if _inline(prime) != _inline(closed):
                steps.append(Step(through, _lemma_reason(row, lemma_numbers)))
            steps.append(Step(recurrence, rf"${_inline(PartialMatrix(LOSS, net.Z[k + 1]))} = {_inline(upper)}$, "
                                          "proved above"))
        steps.append(Step(net.delta(k), rf"definition of ${_inline(net.delta(k))}$"))
        calculations.append(Calculation(rf"${_inline(PartialMatrix(LOSS, Z))}$", PartialMatrix(LOSS, Z), steps,
                                        ("z", k)))

        affine = rf"${_inline(Z)} = {_inline(alg.affine(net.W[k], net.A[k - 1], net.b[k]))}$"
        for key, parameter, final in (("W", net.W[k], rec.weight[k]), ("b", net.b[k], rec.bias[k])):
            through = final.xreplace({net.delta(k): PartialMatrix(LOSS, Z)})
            reason = f"chain rule through {affine}"
            if key == "W" and spec.l2:
                W = _inline(parameter)
                reason += rf", and $\tfrac{{\lambda}}{{2}}\lVert {W}\rVert^2$ adds ${_inline(PENALTY)} {W}$"
            steps = [Step(through, reason),
                     Step(final, rf"${_inline(PartialMatrix(LOSS, Z))} = {_inline(net.delta(k))}$, proved above")]
            start = PartialMatrix(LOSS, parameter)
            calculations.append(Calculation(rf"${_inline(start)}$", start, steps, (key, k)))
    return rec, calculations


def check_network_calculations(spec: NetworkSpec, calculations: list, *, timeout: float | None = 60.0,
                               seed: int = 0) -> list:
    """Check every line of the network's calculations on its explicit instance."""
    net = Network(spec)
    decider, instantiate = Decider(net, seed=seed), Instantiate(net)
    for calculation in calculations:
        check(calculation, decider, instantiate, timeout=timeout)
    return calculations
