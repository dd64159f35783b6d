"""Every width, every depth: the backprop recurrences proved once for all networks.

An instance proof (widths 3-4-2) says nothing about 784-256-10.  Here the sizes are symbols: each
lemma is an identity between entries of matrices of symbolic size (``indexed.Sized``), decided
for every size at once.  The lemmas are about the very functions the instance prover and the
numeric evaluation run — ``derive.hidden_delta``, ``derive.parameter_gradients``, ``rules.output_delta``,
``network.reduction_factor`` and the rows of ``rules`` — evaluated over the symbolic algebra:

* hidden step: for an arbitrary differentiable φ(z_{k+1}), ∂φ/∂z_k = (W_{k+1}ᵀ∇φ) ⊙ g′(z_k);
* parameter step: ∂φ/∂W_k = ∇φ a_{k-1}ᵀ, ∂φ/∂b_k = ∇φ 1_m (and the L2 penalty's λW_k);
* the reduction: the 1/m of the mean (or the 1 of the sum);
* the output delta of the loss/output pairing (softmax + cross-entropy → ŷ − e given Σe = 1, and
  ŷ·Σe − e without it), and the general rule (∂ℓ/∂a through g′ or the softmax Jacobian) for an
  arbitrary differentiable loss;
* each activation's derivative rule — ``prove.prove_lemma``, already general — and the softmax
  Jacobian for a symbolic number of classes.

:class:`Induction` then states the argument over depth: P(k) is "∂J/∂z_k = δ_k"; the base case
P(L) follows from the output and reduction lemmas, the step P(k+1) ⇒ P(k) from the hidden step,
and the parameter gradients of every layer from P(k) and the parameter step.  Statements are
SymPy objects (a LaTeX printer can render them), justifications are :class:`Prose`: text naming the
lemmas, whose formulas stay SymPy objects too.  Everything shown is 1-based, as the documents
index (:func:`one_based`): the sums run over 1…n, entries and witnesses count from 1; the
obligations themselves are decided over ``indexed``'s 0-based sums.

A lemma whose difference does not reduce to 0 is never ``proved``: its message shows the
residual; a concrete small instance where the two sides differ, if found, makes it ``refuted``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import sympy
from sympy import (Basic, Derivative, Function, Indexed, IndexedBase, KroneckerDelta, MatrixSymbol, OneMatrix, Sum,
                   Symbol)
from sympy.core.symbol import Str
from sympy.matrices.expressions import HadamardPower, HadamardProduct, MatrixExpr
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from . import budget, derive, rules
from .evaluate import Partial, Unsupported
from .indexed import (Gradient, ShapeMismatch, Sized, SizedMat, arbitrary_function, collapse, decide_zero,
                      entries, index, per_example_function, readable, size)
from .network import NetworkSpec, reduction_factor
from .prove import (ILL_FORMED, INSTANTIATED, PROVED, QUANTITIES, QUANTITY_TEXT, REFUTED, UNDECIDED, LemmaResult,
                    NetworkProof, QuantityResult, Verdict, compare_at, generic_choices, lemma_rows, prove_lemma,
                    prove_network)

GENERAL = "general"
METHOD = "exact, symbolic sizes (indexed sums)"
GENERIC = rules.generic_row("g")


# ------------------------------------------------------------------------- what is checked


@dataclass(frozen=True)
class Recurrences:
    """The rules a general proof checks; the defaults are the ones ``derive.backprop`` runs."""

    hidden_delta: Callable = derive.hidden_delta
    parameter_gradients: Callable = derive.parameter_gradients
    penalty_gradient: Callable = derive.penalty_gradient
    output_delta: Callable = rules.output_delta
    reduction_factor: Callable = reduction_factor


@dataclass(frozen=True)
class GeneralSetting:
    """What a general proof is about: activations, loss and conventions — no widths, no depth."""

    hidden: tuple
    output: rules.Activation
    loss: rules.Loss
    reduction: str = "mean"
    layout: str = "columns"
    l2: bool = False

    @classmethod
    def from_spec(cls, spec: NetworkSpec) -> "GeneralSetting":
        if spec.depth > 1:
            hidden = tuple(dict.fromkeys(spec.activations[:-1]))
        else:
            names = (spec.hidden,) if isinstance(spec.hidden, str) else tuple(spec.hidden)
            hidden = tuple(rules.activation(name, relu_at_zero=spec.relu_at_zero, leaky_slope=spec.leaky_slope)
                           for name in names)
        return cls(hidden, spec.activation(spec.depth), spec.loss_rule, spec.reduction, spec.layout, spec.l2)

    def describe(self) -> "Prose":
        hidden = ",".join(row.name for row in self.hidden)
        extras = [e for e in (self.reduction != "mean" and "sum over batch",
                              self.layout != "columns" and "examples as rows", self.l2 and "L2 penalty") if e]
        return Prose(f"{hidden}/{self.output.name} {self.loss.name}, every depth ", sympy.Ge(Symbol("L"), 1),
                     ", every width, every batch ", sympy.Ge(Symbol("m"), 1),
                     f" ({', '.join(extras)})" if extras else "")

    def to_dict(self) -> dict:
        return {"hidden": [row.name for row in self.hidden], "output": self.output.name, "loss": self.loss.name,
                "reduction": self.reduction, "layout": self.layout, "l2": self.l2}


# ------------------------------------------------------------------------ the proof objects


class StatementPrinter(StrPrinter):
    """Plain text with the documents' matrix notation: ⊙, ᵀ, ·, Σ, and 1 (𝟙) for ones."""

    def _print_HadamardProduct(self, expr):
        return " ⊙ ".join(self.parenthesize(arg, PRECEDENCE["Mul"]) for arg in expr.args)

    def _print_HadamardPower(self, expr):
        return f"{self.parenthesize(expr.base, PRECEDENCE['Atom'])}^∘({self._print(expr.exp)})"

    def _print_Transpose(self, expr):
        return f"{self.parenthesize(expr.arg, PRECEDENCE['Atom'])}ᵀ"

    def _print_OneMatrix(self, expr):
        rows, cols = expr.shape
        if rows == 1 and cols != 1:
            return "1ᵀ"
        return "1" if cols == 1 else "𝟙"  # the all-ones matrix

    def _print_Sum(self, expr):
        body = self.parenthesize(expr.function, PRECEDENCE["Mul"])
        limits = "".join(f"Σ_{{{self._print(v)}={self._print(low)}}}^{{{self._print(high)}}} "
                         for v, low, high in reversed(expr.limits))
        return limits + body

    def _print_KroneckerDelta(self, expr):
        return f"[{self._print(expr.args[0])} = {self._print(expr.args[1])}]"

    def _print_Derivative(self, expr):
        variables = "".join(f"∂{self._print(v)}" for v in expr.variables)
        return f"∂/{variables} {self.parenthesize(expr.expr, PRECEDENCE['Mul'])}"

    def _print_MatMul(self, expr):
        coefficient, factors = expr.as_coeff_mmul()
        sign = ""
        if coefficient.is_number and coefficient.is_negative:
            expr, sign = expr.func(-coefficient, *factors.args) if coefficient != -1 else factors, "-"
        return sign + "·".join(self.parenthesize(arg, PRECEDENCE["Mul"]) for arg in expr.args)

    def _print_Relational(self, expr):
        relation = {">=": "≥", "<=": "≤"}.get(expr.rel_op, expr.rel_op)
        return f"{self._print(expr.lhs)} {relation} {self._print(expr.rhs)}"


def text(expr) -> str:
    """A statement as plain text (``StatementPrinter``)."""
    return StatementPrinter().doprint(expr)


class Prose(str):
    """Plain text that keeps its formulas: ``parts`` are words (``str``) and mathematics (SymPy
    objects, :class:`Equation`), so that a LaTeX printer sets the mathematics as mathematics.
    As a ``str`` it is the plain text (formulas by :func:`text`)."""

    parts: tuple

    def __new__(cls, *parts):
        prose = super().__new__(cls, "".join(p if isinstance(p, str) else _plain(p) for p in parts))
        prose.parts = parts
        return prose


def _plain(part) -> str:
    return str(part) if isinstance(part, (Equation, Prose)) else text(part)


class Between(Basic):
    """low ≤ variable ≤ high, for stating a range."""

    def __new__(cls, low, variable, high):
        return Basic.__new__(cls, sympy.sympify(low), variable, sympy.sympify(high))

    def _sympystr(self, printer):
        return " ≤ ".join(printer._print(a) for a in self.args)

    def _latex(self, printer):
        return r" \leq ".join(printer._print(a) for a in self.args)


@dataclass
class Equation:
    """lhs = rhs, both SymPy objects."""

    lhs: Basic
    rhs: Basic

    def __str__(self) -> str:
        return f"{text(self.lhs)} = {text(self.rhs)}"

    def _latex(self, printer):
        return f"{printer._print(self.lhs)} = {printer._print(self.rhs)}"

    def to_dict(self) -> dict:
        return {"lhs": sympy.sstr(self.lhs), "rhs": sympy.sstr(self.rhs), "text": str(self)}


@dataclass
class Lemma:
    """One width-independent fact, its statement per entry, and its verdict."""

    name: str
    statement: Equation
    hypotheses: tuple
    verdict: Verdict
    residual: Basic | None = None

    def __repr__(self) -> str:
        return f"<Lemma {self.name}: {self.verdict.status} ({self.verdict.scope})>"

    def to_dict(self) -> dict:
        return {"lemma": self.name, "statement": str(self.statement), "hypotheses": list(self.hypotheses),
                **self.verdict.to_dict(),
                "residual": None if self.residual is None else sympy.sstr(self.residual)}


@dataclass
class Step:
    """One step of the argument: a statement and why it holds (naming the lemmas it uses)."""

    statement: Equation
    justification: Prose
    uses: tuple = ()

    def to_dict(self) -> dict:
        return {"statement": str(self.statement), "justification": str(self.justification), "uses": list(self.uses)}


@dataclass
class Induction:
    """Downward induction over the layers of a network of any depth L ≥ 1.

    ``claim`` is P(k): ∂J/∂z_k = δ_k.  ``base`` proves P(L); ``step`` proves P(k) from P(k+1) for
    1 ≤ k < L; ``parameters`` turns P(k) into ∂J/∂W_k and ∂J/∂b_k for every 1 ≤ k ≤ L.
    """

    definitions: list
    claim: Equation
    base: list
    step: list
    parameters: list
    conclusion: list
    scope: str
    notes: list = field(default_factory=list)
    proved: bool = False

    def lines(self) -> list[str]:
        lines = ["Definitions:"] + [f"  {d}" for d in self.definitions]
        lines.append(f"Claim P(k), 1 ≤ k ≤ L: {self.claim}")
        for title, steps in (("Base case k = L:", self.base), ("Step: P(k+1) ⇒ P(k) for 1 ≤ k < L:", self.step),
                             ("Parameters, every 1 ≤ k ≤ L, from P(k):", self.parameters)):
            lines.append(title)
            for number, step in enumerate(steps, start=1):
                lines.append(f"  ({number}) {step.statement}")
                lines.append(f"      — {step.justification}")
        verdict = "proved" if self.proved else "NOT proved (a lemma above is not proved)"
        lines.append(f"Conclusion ({verdict}), {self.scope}:")
        lines += [f"  {equation}" for equation in self.conclusion]
        lines += [f"  note: {note}" for note in self.notes]
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return (f"<Induction over depth: {'proved' if self.proved else 'not proved'}, "
                f"{len(self.base)} + {len(self.step)} + {len(self.parameters)} steps>")

    def to_dict(self) -> dict:
        return {"definitions": [d.to_dict() for d in self.definitions], "claim": self.claim.to_dict(),
                "base": [s.to_dict() for s in self.base], "step": [s.to_dict() for s in self.step],
                "parameters": [s.to_dict() for s in self.parameters],
                "conclusion": [c.to_dict() for c in self.conclusion], "scope": str(self.scope),
                "notes": list(self.notes), "proved": self.proved}


@dataclass
class GeneralProof:
    setting: GeneralSetting
    lemmas: list
    induction: Induction
    seconds: float

    @property
    def all_proved(self) -> bool:
        return all(lemma.verdict.proved for lemma in self.lemmas)

    def __repr__(self) -> str:
        proved = sum(lemma.verdict.proved for lemma in self.lemmas)
        return (f"<GeneralProof {self.setting.describe()}: {proved} of {len(self.lemmas)} lemmas proved, "
                f"{self.seconds:.2f} s>")

    def to_dict(self) -> dict:
        return {"setting": self.setting.to_dict(), "scope": GENERAL,
                "lemmas": [lemma.to_dict() for lemma in self.lemmas], "induction": self.induction.to_dict(),
                "all_proved": self.all_proved, "seconds": round(self.seconds, 3)}


# ------------------------------------------------------------------------------- obligations


@dataclass
class Obligation:
    """truth = claim for every size and every free index in ``ranges`` (under ``hypotheses``)."""

    statement: Equation
    truth: Basic
    claim: Basic
    ranges: dict
    hypotheses: dict = field(default_factory=dict)
    targets: tuple | None = None  # (Y, layout): targets whose examples sum to 1 (witnesses respect it)


I, J = index("i"), index("j")


def one_based(expr):
    """``expr`` as the documents index it, from 1.  Decided 0-based, shown 1-based: each sum's index
    and the free i, j are renamed v → v − 1 (so Σ_{l=0}^{n−1} is Σ_{l=1}^{n}, the same value), then
    every entry position s is written s + 1 — each index prints as itself, counted from 1."""
    expr = sympy.sympify(expr).xreplace({I: I - 1, J: J - 1})
    expr = expr.replace(lambda e: isinstance(e, Sum), _sum_from_one)
    return expr.replace(lambda e: isinstance(e, (Indexed, KroneckerDelta, Gradient)), _counted_from_one)


def _sum_from_one(node: Sum) -> Sum:
    body, limits = node.function, []
    for variable, low, high in node.limits:
        body = body.xreplace({variable: variable - 1})
        limits.append((variable, low + 1, high + 1))
    return Sum(body, *limits)


def _counted_from_one(node):
    if isinstance(node, Indexed):
        return node.base[tuple(i + 1 for i in node.indices)]
    if isinstance(node, KroneckerDelta):
        return KroneckerDelta(*(a + 1 for a in node.args))
    label, shown, count, *rest = node.args  # a Gradient: its coordinates and point
    return Gradient(label, shown, count, *(a + 1 for a in rest))


def _entry_name(entry: Indexed) -> str:
    """An entry at concrete 0-based indices, named as printed: from 1."""
    return sympy.sstr(entry.base[tuple(i + 1 for i in entry.indices)])


def _shape(layout: str, units, examples) -> tuple:
    return (units, examples) if layout == "columns" else (examples, units)


def _check_shape(claim: SizedMat, rows, cols, what: str) -> None:
    if sympy.simplify(claim.rows - rows) != 0 or sympy.simplify(claim.cols - cols) != 0:
        raise ShapeMismatch(f"{what} is {claim.rows}×{claim.cols}, the gradient is {rows}×{cols}")


def _entry_obligation(f, label: str, wrt: SizedMat, claim: SizedMat, **extra) -> Obligation:
    """∂f/∂wrt[i, j] = claim[i, j] for every entry."""
    _check_shape(claim, wrt.rows, wrt.cols, "the claimed matrix")
    ranges = {I: (0, wrt.rows - 1), J: (0, wrt.cols - 1)}
    variable = wrt(I, J)
    statement = Equation(Partial(f, one_based(variable), Symbol(label)), one_based(claim(I, J)))
    return Obligation(statement, Derivative(f, variable), claim(I, J), ranges, **extra)


def hidden_step(rec: Recurrences, layout: str, sizes: dict) -> Obligation:
    """For any φ of z_{k+1} = W_{k+1} g(z_k) + b_{k+1}1ᵀ: ∂φ/∂z_k is the recurrence's δ_k with ∇φ for δ_{k+1}."""
    alg, n, p, m = Sized(layout), sizes["n_k"], sizes["n_{k+1}"], sizes["m"]
    Z = entries("z_k", *_shape(layout, n, m))
    W, b = entries("W_{k+1}", p, n), entries("b_{k+1}", p, 1)
    phi, grad = arbitrary_function("φ", "z_{k+1}", alg.affine(W, alg.apply(GENERIC.atom, Z), b))
    return _entry_obligation(phi, "φ", Z, rec.hidden_delta(alg, W, grad, GENERIC.derivative, Z))


def _parameter_layer(layout: str, sizes: dict):
    alg, n, q, m = Sized(layout), sizes["n_k"], sizes["n_{k-1}"], sizes["m"]
    W, b = entries("W_k", n, q), entries("b_k", n, 1)
    A = entries("a_{k-1}", *_shape(layout, q, m))
    phi, grad = arbitrary_function("φ", "z_k", alg.affine(W, A, b))
    return alg, W, b, A, phi, grad, m


def weight_step(rec: Recurrences, layout: str, sizes: dict) -> Obligation:
    """For any φ of z_k = W_k a_{k-1} + b_k1ᵀ: ∂φ/∂W_k is the recurrence's ∂J/∂W_k with ∇φ for δ_k."""
    alg, W, b, A, phi, grad, m = _parameter_layer(layout, sizes)
    return _entry_obligation(phi, "φ", W, rec.parameter_gradients(alg, grad, A, alg.ones(m, 1))[0])


def bias_step(rec: Recurrences, layout: str, sizes: dict) -> Obligation:
    alg, W, b, A, phi, grad, m = _parameter_layer(layout, sizes)
    return _entry_obligation(phi, "φ", b, rec.parameter_gradients(alg, grad, A, alg.ones(m, 1))[1])


def penalty_step(rec: Recurrences, layout: str, sizes: dict) -> Obligation:
    alg, W = Sized(layout), entries("W_k", sizes["n_k"], sizes["n_{k-1}"])
    penalty = Symbol("λ")
    return _entry_obligation(penalty / 2 * alg.total(alg.hadamard(W, W)), "P", W,
                             rec.penalty_gradient(alg, penalty, W))


def reduction_step(rec: Recurrences, layout: str, sizes: dict, reduction: str) -> Obligation:
    """J = (1/m) Σ_e ℓ(z_e) (mean; Σ_e ℓ(z_e) for sum): ∂J/∂z = c ∂ℓ/∂z with c the recurrences' factor."""
    alg, n, m = Sized(layout), sizes["n_L"], sizes["m"]
    Z = entries("z_L", *_shape(layout, n, m))
    total, grad = per_example_function(alg, "ℓ", "z_L", Z)
    J = total / m if reduction == "mean" else total  # the definition of the reduction
    return _entry_obligation(J, "J", Z, alg.scale(rec.reduction_factor(reduction, m), grad))


def _output_layer(layout: str, sizes: dict, output: rules.Activation):
    alg, n, m = Sized(layout), sizes["n_L"], sizes["m"]
    Z, Y = entries("z_L", *_shape(layout, n, m)), entries("y", *_shape(layout, n, m))
    A = alg.softmax(Z) if output.vector else alg.apply(output.atom, Z)
    return alg, Z, Y, A


def output_step(rec: Recurrences, layout: str, sizes: dict, loss: rules.Loss, output: rules.Activation,
                simplex: bool = True, claim: Callable | None = None) -> Obligation:
    """∂(Σ_e ℓ(a_e, y_e))/∂z_L = the recurrences' output delta (targets summing to 1 if the loss says so)."""
    alg, Z, Y, A = _output_layer(layout, sizes, output)
    claimed = claim(alg, A, Y) if claim else rec.output_delta(alg, loss, output, A, Y, Z)
    hypotheses = {}
    if simplex and loss.simplex_targets:
        hypotheses = {alg.example_sums(Y)(I, J): sympy.Integer(1)}
    return _entry_obligation(loss.formula(alg, A, Y), "ℓ", Z, claimed, hypotheses=hypotheses,
                             targets=(Y, layout) if hypotheses else None)


def _soft_targets_delta(alg, A, Y):
    """What softmax + cross-entropy gives when the targets need not sum to 1: ŷ·Σe − e."""
    return alg.sub(alg.hadamard(A, alg.example_sums(Y)), Y)


def _any_loss() -> rules.Loss:
    """An arbitrary differentiable per-example loss ℓ(a): its gradient is ℓ's named partials."""
    return rules.Loss(name="any ℓ", latex=r"\ell", text="any differentiable ℓ(a)",
                      formula=lambda alg, A, Y: per_example_function(alg, "ℓ", "a_L", A)[0],
                      grad_output=lambda alg, A, Y: per_example_function(alg, "ℓ", "a_L", A)[1])


def general_output_step(rec: Recurrences, layout: str, sizes: dict, output: rules.Activation) -> Obligation:
    alg, Z, Y, A = _output_layer(layout, sizes, output)
    any_loss = _any_loss()
    claimed = rec.output_delta(alg, any_loss, output, A, Y, Z, shortcut=False)
    return _entry_obligation(any_loss.formula(alg, A, Y), "ℓ", Z, claimed)


def jacobian_step(row: rules.Activation, sizes: dict) -> Obligation:
    """∂ŷ_i/∂z_j = the row's closed form, ŷ = softmax(z) by its definition, for n classes."""
    alg, n = Sized("columns"), sizes["n_L"]
    Z = entries("z", n, 1)
    A = alg.softmax(Z)
    if row.jacobian is None:
        raise ShapeMismatch(f"{row.name} has no Jacobian rule for a symbolic number of classes")
    claim = row.jacobian(A(I, 0), A(J, 0), KroneckerDelta(I, J))
    variable = Z(J, 0)
    y = IndexedBase("ŷ")  # the statement in ŷ = softmax(z), as the rule is written
    statement = Equation(Partial(A(I, 0), one_based(variable), one_based(y[I])),
                         one_based(row.jacobian(y[I], y[J], KroneckerDelta(I, J))))
    return Obligation(statement, Derivative(A(I, 0), variable), claim, {I: (0, n - 1), J: (0, n - 1)})


# ---------------------------------------------------------------------------------- deciding


SIZE_NAMES = ("n_{k-1}", "n_k", "n_{k+1}", "n_L", "m")
_cache: dict = {}


def clear_cache() -> None:
    """Forget decided lemmas (benchmarks measure each pairing from scratch)."""
    _cache.clear()


def _sizes(equal: int = 0) -> dict:
    """Symbolic sizes: all distinct (0), the widths equal (1), or widths and batch equal (2)."""
    if equal == 0:
        return {name: size(name) for name in SIZE_NAMES}
    n = size("n")
    return {name: (size("m") if name == "m" and equal == 1 else n) for name in SIZE_NAMES}


def _build(build: Callable) -> tuple:
    """(obligation or None, note): a rule that only type-checks when sizes agree is decided where they do."""
    note = ""
    for equal in (0, 1, 2):
        try:
            return build(_sizes(equal)), note
        except ShapeMismatch as error:
            note = note or f"ill-formed for distinct sizes: {error}"
    return None, note


def decide(name: str, build: Callable, hypotheses: tuple = (), *, rows=(), timeout: float | None = 30.0,
           key=None) -> Lemma:
    """Decide the obligation ``build(sizes)`` for every size; cached under ``key``."""
    if key is not None and key in _cache:
        return _cache[key]
    started = time.perf_counter()
    statement, residual = None, None
    try:
        with budget.budget(timeout):
            obligation, shape_note = _build(build)
            if obligation is None:
                verdict = Verdict(ILL_FORMED, GENERAL, message=shape_note)
            else:
                statement = obligation.statement
                zero, residual = decide_zero(obligation.truth - obligation.claim, obligation.ranges,
                                             obligation.hypotheses)
                if zero and not shape_note:
                    verdict, residual = Verdict(PROVED, GENERAL, METHOD), None
                elif zero:
                    verdict, residual = Verdict(ILL_FORMED, GENERAL, message=f"{shape_note}; it holds only "
                                                                            f"where the sizes agree"), None
                else:
                    residual = one_based(readable(residual))
                    verdict = _not_zero(obligation, residual, rows, shape_note)
    except budget.OutOfTime:
        verdict = Verdict(UNDECIDED, GENERAL, message=f"ran out of the {timeout:g} s budget")
    except Exception as error:  # SymPy failing on a rule is "not shown", never a crash of the report
        verdict = Verdict(UNDECIDED, GENERAL, message=f"could not be decided: {type(error).__name__}: {error}")
    verdict.seconds = time.perf_counter() - started
    if statement is None:
        statement = Equation(Symbol(name), Symbol("?"))
    lemma = Lemma(name, statement, tuple(hypotheses), verdict, residual)
    if key is not None:
        _cache[key] = lemma
    return lemma


def _not_zero(obligation: Obligation, shown, rows, shape_note: str) -> Verdict:
    message = f"not reduced to 0; residual: {sympy.sstr(shown)}"
    if shape_note:
        message = f"{shape_note}; where the sizes agree, {message}"
    try:
        counterexample = witness(obligation, rows)
    except (ArithmeticError, Unsupported, ValueError, TypeError):
        counterexample = None
    if counterexample is not None:
        return Verdict(REFUTED, GENERAL, "certified counterexample at a small instance", message=message,
                       counterexample=counterexample)
    return Verdict(UNDECIDED, GENERAL, METHOD, message=message)


# ----------------------------------------------------------------------------------- witnesses


def _instance(expr, values: dict):
    """``expr`` at concrete sizes and indices: explicit sums, entries and partials as symbols."""
    expr = collapse(expr.xreplace(values), {})
    expr = sympy.sympify(expr).doit()
    mapping = {}
    for node in expr.atoms(sympy.Indexed):
        mapping[node] = Symbol(_entry_name(node))
    for node in expr.atoms(Gradient):
        # The partials of a linear φ(u) = Σ c_u u: one value per coordinate, whatever the point.
        mapping[node] = Symbol(f"∂{node.label}/∂u{[c + 1 for c in node.coordinates]}")
    return expr.xreplace(mapping)


def witness(obligation: Obligation, rows=(), attempts: int = 6, seed: int = 0) -> dict | None:
    """A small instance (sizes 1–3) and a rational point where the two sides certifiably differ."""
    rng = random.Random(seed)
    size_symbols = sorted({s for s in (obligation.truth - obligation.claim).free_symbols
                           if s.is_positive and s.is_integer and s not in obligation.ranges},
                          key=lambda s: s.name)
    for attempt in range(attempts):
        budget.check()
        chosen = {s: sympy.Integer(2 + attempt % 2) for s in size_symbols}
        indices = {i: sympy.Integer(rng.randint(int(sympy.sympify(low).xreplace(chosen)),
                                                int(sympy.sympify(high).xreplace(chosen))))
                   for i, (low, high) in obligation.ranges.items()}
        values = {**chosen, **indices}
        lhs, rhs = _instance(obligation.truth, values), _instance(obligation.claim, values)
        substitution = _simplex_targets(*obligation.targets, chosen) if obligation.targets else {}
        lhs, rhs = lhs.xreplace(substitution), rhs.xreplace(substitution)
        point = {}
        for symbol in sorted((lhs.free_symbols | rhs.free_symbols), key=lambda s: s.name):
            if symbol.name.startswith("y["):
                point[symbol] = Fraction(rng.randint(0, 8), 8 * (4 if substitution else 1))
            else:
                point[symbol] = Fraction(rng.randint(-6, 6), rng.choice((3, 4, 5)))
        used = {atom.rule.derivative_of or atom.rule for side in (lhs, rhs) for atom in side.atoms(rules.Atom)}
        generic, shown = generic_choices(rng, sorted(used, key=lambda row: row.name))
        try:
            outcome = compare_at(lhs, rhs, point, {}, generic)
        except (ArithmeticError, Unsupported):
            continue
        if outcome is None:
            continue
        left, right, arithmetic = outcome
        counterexample = {"sizes": {s.name: str(v) for s, v in chosen.items()},
                          "indices": {s.name: str(v + 1) for s, v in indices.items()},  # from 1
                          "point": {s.name: str(v) for s, v in point.items()},
                          "lhs": left, "rhs": right, "arithmetic": arithmetic}
        if shown:
            counterexample["functions"] = shown
        notes = []
        if any(s.name.startswith("∂") for s in point):
            notes.append("∂…/∂u[…] are the coefficients of a linear function (any values are some function's "
                         "partials)")
        if substitution:
            notes.append("each example's last target is 1 minus the sum of the others")
        if notes:
            counterexample["note"] = "; ".join(notes)
        return counterexample
    return None


def _simplex_targets(Y: SizedMat, layout: str, chosen: dict) -> dict:
    """At concrete sizes: each example's last target is 1 − Σ the others (Σe = 1)."""
    rows, cols = int(Y.rows.xreplace(chosen)), int(Y.cols.xreplace(chosen))
    units, examples = (rows, cols) if layout == "columns" else (cols, rows)

    def name(u, e):
        return Symbol(_entry_name(Y(u, e) if layout == "columns" else Y(e, u)))

    return {name(units - 1, e): 1 - sum(name(u, e) for u in range(units - 1)) for e in range(examples)}


# ------------------------------------------------------------------- the lemmas of a setting


def _activation_lemma(row: rules.Activation) -> Lemma:
    """A row's derivative rule: ``prove.prove_lemma``, already general in scope."""
    x = Symbol("x", real=True)
    statement = Equation(Derivative(row.atom(x), x), row.derivative(x))
    hypotheses = ("x ≠ 0",) if row.kink else ()
    return Lemma(f"{row.name}′", statement, hypotheses, prove_lemma(row))


INDEX_RANGES = "i, j range over the rows and columns of the matrix differentiated (from 1)"


def lemmas_for(setting: GeneralSetting, rec: Recurrences = Recurrences(), *, timeout: float | None = 30.0) -> list:
    """Every lemma the induction uses, each decided for symbolic sizes."""
    layout, out, loss = setting.layout, setting.output, setting.loss
    lemmas = []
    for row in lemma_rows((*setting.hidden, out)):
        if row.vector:
            lemmas.append(decide(f"{row.name} Jacobian", lambda s, row=row: jacobian_step(row, s),
                                 ("z ∈ ℝⁿ, any number of classes n ≥ 1",), timeout=timeout, key=("jacobian", row)))
        else:
            lemmas.append(_activation_lemma(row))
    anything = (INDEX_RANGES, "φ: any differentiable function of the whole matrix")
    sized = "any widths n_{k-1}, n_k, n_{k+1} ≥ 1 and batch m ≥ 1"
    lemmas.append(decide("hidden step", lambda s: hidden_step(rec, layout, s),
                         (*anything, "g: any differentiable function, g′ its derivative", sized),
                         timeout=timeout, key=("hidden", rec, layout)))
    lemmas.append(decide("weight step", lambda s: weight_step(rec, layout, s), (*anything, sized),
                         timeout=timeout, key=("weight", rec, layout)))
    lemmas.append(decide("bias step", lambda s: bias_step(rec, layout, s), (*anything, sized),
                         timeout=timeout, key=("bias", rec, layout)))
    if setting.l2:
        lemmas.append(decide("L2 penalty", lambda s: penalty_step(rec, layout, s), (INDEX_RANGES, sized),
                             timeout=timeout, key=("penalty", rec, layout)))
    lemmas.append(decide(f"{setting.reduction} reduction",
                         lambda s: reduction_step(rec, layout, s, setting.reduction),
                         (INDEX_RANGES, "ℓ: any differentiable per-example loss", "any n_L ≥ 1, m ≥ 1"),
                         timeout=timeout, key=("reduction", rec, layout, setting.reduction)))
    targets = ("each example's targets sum to 1 (Σ_i y[i, e] = 1)",) if loss.simplex_targets else ()
    rule = () if out.vector else (f"{out.name}′ as its rule gives it (lemma {out.name}′)",)
    lemmas.append(decide(f"output: {out.name} + {loss.name}", lambda s: output_step(rec, layout, s, loss, out),
                         (INDEX_RANGES, *targets, *rule, "any n_L ≥ 1, m ≥ 1"), rows=(out,), timeout=timeout,
                         key=("output", rec, layout, loss, out)))
    if loss.simplex_targets and out.name in loss.shortcuts:
        lemmas.append(decide(f"output: {out.name} + {loss.name}, soft targets",
                             lambda s: output_step(rec, layout, s, loss, out, simplex=False,
                                                   claim=_soft_targets_delta),
                             (INDEX_RANGES, "no condition on the targets: the delta is ŷ·Σe − e, "
                                            "which is the shortcut ŷ − e exactly when Σe = 1",
                              "any n_L ≥ 1, m ≥ 1"), rows=(out,), timeout=timeout,
                             key=("soft", layout, loss, out)))
    lemmas.append(decide(f"output: {out.name} + any loss (general rule)",
                         lambda s: general_output_step(rec, layout, s, out),
                         (INDEX_RANGES, "ℓ: any differentiable per-example loss of a_L", "any n_L ≥ 1, m ≥ 1"),
                         rows=(out,), timeout=timeout, key=("general output", rec, layout, out)))
    return lemmas


# ---------------------------------------------------------------- the induction, as statements


class Applied(MatrixExpr):
    """f(Z) entry by entry — only for stating the recurrences (no calculus is done with it).

    ``function`` is an activation row (its derivative: the row's ``derivative``), a SymPy function
    (``log``) or a name (``g_k``); an activation is printed with its row's LaTeX name."""

    def __new__(cls, name, latex, argument):
        return Basic.__new__(cls, *(a if isinstance(a, Str) else Str(a) for a in (name, latex)), argument)

    @classmethod
    def of(cls, function, argument) -> "Applied":
        return cls(*_function_names(function), argument)

    @property
    def shape(self):
        return self.args[2].shape

    def _sympystr(self, printer):
        return f"{self.args[0].name}({printer._print(self.args[2])})"

    def _latex(self, printer, exp=None):
        name, latex = self.args[0].name, self.args[1].name
        head = latex or printer._print(Symbol(name))
        argument = printer._print(self.args[2])
        return head + (printer._add_parens(argument) if hasattr(printer, "_add_parens") else f"({argument})")


def _function_names(fn) -> tuple[str, str]:
    """(plain-text name, LaTeX name or "" for the printer to set the plain name)."""
    if isinstance(fn, rules.Activation):
        return fn.name, fn.latex
    row = getattr(fn, "__self__", None)
    if isinstance(row, rules.Activation):  # a row's closed-form derivative
        return f"{row.name}′", row.latex + "'"
    if fn is sympy.log:
        return "log", r"\log"
    return (fn if isinstance(fn, str) else getattr(fn, "__name__", None) or str(fn)), ""


class Printed:
    """The matrix algebra over SymPy matrix symbols: the recurrences as statements to print."""

    def __init__(self, layout: str = "columns"):
        self.layout = layout

    def matmul(self, a, b):
        return a * b

    def T(self, a):
        return a.T

    def add(self, a, b):
        return a + b

    def sub(self, a, b):
        return a - b

    def hadamard(self, a, b):
        return HadamardProduct(a, b) if isinstance(a, MatrixExpr) and isinstance(b, MatrixExpr) else a * b

    def divide(self, a, b):
        return HadamardProduct(a, HadamardPower(b, -1))

    def scale(self, c, a):
        return c * a

    def apply(self, fn, a):
        return Applied.of(fn, a)

    def log(self, a):
        return Applied.of(sympy.log, a)

    def full(self, value, like):
        return value * OneMatrix(*like.shape)

    def ones(self, rows, cols=1):
        return OneMatrix(rows, cols)

    def total(self, a):
        return OneMatrix(1, a.rows) * a * OneMatrix(a.cols, 1)

    def examples(self, a):
        return a.cols if self.layout == "columns" else a.rows

    def output_width(self, a):
        return a.rows if self.layout == "columns" else a.cols

    def example_sums(self, a):
        if self.layout == "columns":
            return OneMatrix(a.rows, 1) * OneMatrix(1, a.rows) * a
        return a * OneMatrix(a.cols, 1) * OneMatrix(1, a.cols)

    def affine(self, W, A, b):
        if self.layout == "columns":
            return W * A + b * OneMatrix(1, A.cols)
        return A * W.T + OneMatrix(A.rows, 1) * b.T

    def softmax(self, Z, atom=None):
        return Applied.of(rules.SOFTMAX, Z)


def induction(setting: GeneralSetting, lemmas: list, rec: Recurrences = Recurrences()) -> Induction:
    """The argument over depth, stated with the recurrences' own formulas."""
    alg, layout = Printed(setting.layout), setting.layout
    n = {k: size(f"n_{k}") for k in ("{k-1}", "k", "{k+1}", "L")}
    m = size("m")

    def unit_matrix(name, width):
        return MatrixSymbol(name, *_shape(layout, width, m))

    z_k, z_next, z_L = unit_matrix("z_k", n["k"]), unit_matrix("z_{k+1}", n["{k+1}"]), unit_matrix("z_L", n["L"])
    a_prev, a_k, a_L = unit_matrix("a_{k-1}", n["{k-1}"]), unit_matrix("a_k", n["k"]), unit_matrix("a_L", n["L"])
    y = unit_matrix("y", n["L"])
    delta_k, delta_next, delta_L = (unit_matrix("δ_k", n["k"]), unit_matrix("δ_{k+1}", n["{k+1}"]),
                                    unit_matrix("δ_L", n["L"]))
    grad_next, grad_k = unit_matrix("∇φ_{k+1}", n["{k+1}"]), unit_matrix("∇φ_k", n["k"])
    W_k, W_next = MatrixSymbol("W_k", n["k"], n["{k-1}"]), MatrixSymbol("W_{k+1}", n["{k+1}"], n["k"])
    b_k, b_next = MatrixSymbol("b_k", n["k"], 1), MatrixSymbol("b_{k+1}", n["{k+1}"], 1)
    g_k, g_prime = Function("g_k"), Function("g_k′")
    J, penalty = Symbol("J"), Symbol("λ")
    out, loss = setting.output, setting.loss
    c = rec.reduction_factor(setting.reduction, m)
    e, k, L = index("e"), index("k"), Symbol("L")
    P = Function("P")
    per_example = sympy.Sum(Function("ℓ")(Symbol("a_{L,e}"), Symbol("y_e")), (e, 1, m))
    penalty_term = penalty / 2 * sympy.Sum(Symbol("‖W_k‖²"), (k, 1, L)) if setting.l2 else sympy.Integer(0)
    objective = c * per_example + penalty_term

    def d(f, x, label=None):
        return Partial(f, x, label if label is not None else f)

    delta_output = alg.scale(c, rec.output_delta(alg, loss, out, a_L, y, z_L))
    delta_hidden = rec.hidden_delta(alg, W_next, delta_next, g_prime, z_k)
    ones = alg.ones(m, 1)
    dW, db = rec.parameter_gradients(alg, delta_k, a_prev, ones)
    dW_phi, db_phi = rec.parameter_gradients(alg, grad_k, a_prev, ones)
    if setting.l2:
        dW = alg.add(dW, rec.penalty_gradient(alg, penalty, W_k))
        dW_phi = alg.add(dW_phi, rec.penalty_gradient(alg, penalty, W_k))
    definitions = [
        Equation(z_k, alg.affine(W_k, a_prev, b_k)),
        Equation(a_k, Applied.of(g_k, z_k)),
        Equation(a_L, alg.softmax(z_L) if out.vector else Applied.of(out, z_L)),
        Equation(J, objective),
        Equation(delta_L, delta_output),
        Equation(delta_k, delta_hidden),
    ]
    claim = Equation(d(J, z_k), delta_k)
    names = {lemma.name for lemma in lemmas}
    activation_lemmas = tuple(lemma.name for lemma in lemmas if lemma.name.endswith("′") or "Jacobian" in lemma.name)
    output_lemma = f"output: {out.name} + {loss.name}"
    reduction_lemma = f"{setting.reduction} reduction"
    penalty_free = (" (the penalty does not depend on ", z_L, ")") if setting.l2 else ()
    loss_sum = Symbol("(Σ_e ℓ)")
    base = [
        Step(Equation(d(J, z_L), c * d(loss_sum, z_L)),
             Prose(f"lemma '{reduction_lemma}'", *penalty_free), (reduction_lemma,)),
        Step(Equation(d(loss_sum, z_L), rec.output_delta(alg, loss, out, a_L, y, z_L)),
             Prose(f"lemma '{output_lemma}', with the activation rules it uses"), (output_lemma, *activation_lemmas)),
        Step(Equation(d(J, z_L), delta_L), Prose("by (1), (2) and the definition of ", delta_L, ": ", P(L), " holds")),
    ]
    phi, phi_next, phi_k = Symbol("φ"), Function("φ_{k+1}"), Function("φ_k")
    step = [
        Step(Equation(J, phi_next(z_next) + penalty_term),
             Prose(J, " depends on ", z_k, " only through ",
                   Equation(z_next, alg.affine(W_next, Applied.of(g_k, z_k), b_next)),
                   "; ", Symbol("φ_{k+1}"), " (the layers above and the loss) is differentiable, and ", P(k + 1),
                   " says its gradient at ", z_next, " is ", delta_next)),
        Step(Equation(d(J, z_k), rec.hidden_delta(alg, W_next, grad_next, g_prime, z_k)),
             Prose("lemma 'hidden step' (for every ", phi, ", every ", n["k"], ", ", n["{k+1}"], " and ", m, ") with ",
                   Equation(phi, Symbol("φ_{k+1}"))), ("hidden step",)),
        Step(Equation(d(J, z_k), delta_k),
             Prose("substitute ", Equation(grad_next, delta_next), " (", P(k + 1), "); ", Symbol(g_prime.__name__),
                   " is the derivative of ", Symbol(g_k.__name__), " by the activation lemmas; definition of ",
                   delta_k, ": ", P(k), " holds"), activation_lemmas),
    ]
    parameter_lemmas = ("weight step", "bias step") + (("L2 penalty",) if setting.l2 else ())
    by_p_k = Prose(Equation(grad_k, delta_k), " by ", P(k))
    parameters = [
        Step(Equation(J, phi_k(alg.affine(W_k, a_prev, b_k)) + penalty_term),
             Prose(W_k, " and ", b_k, " enter ", J, " only through ", z_k, " (", a_prev, " and ", Symbol("φ_k"),
                   ", the layers above, do not depend on them)")),
        Step(Equation(d(J, W_k), dW_phi),
             Prose("lemma 'weight step'" + (" and lemma 'L2 penalty'" if setting.l2 else "")),
             parameter_lemmas[:1] + parameter_lemmas[2:]),
        Step(Equation(d(J, b_k), db_phi), Prose("lemma 'bias step'"), ("bias step",)),
        Step(Equation(d(J, W_k), dW), by_p_k),
        Step(Equation(d(J, b_k), db), by_p_k),
    ]
    used = {name for part in (base, step, parameters) for s in part for name in s.uses}
    missing = sorted(used - names)
    notes = []
    if any(row.kink for row in (*setting.hidden, out)):
        notes.append("ReLU-type activations: wherever no pre-activation is exactly 0 (a null set); the value "
                     "taken for the derivative at 0 does not matter there")
    if loss.simplex_targets:
        notes.append("targets: each example's targets sum to 1 (one-hot or soft labels)")
    if missing:
        notes.append(f"lemmas missing from the list: {', '.join(missing)}")
    proved = not missing and all(lemma.verdict.proved for lemma in lemmas)
    shown_m = Symbol("m")  # sizes without the assumptions that would make m ≥ 1 simply True
    scope = Prose("for every depth ", sympy.Ge(L, 1), ", all widths ", Symbol("n_0"), ", …, ", sympy.Ge(Symbol("n_L"), 1),
                  ", every batch size ", sympy.Ge(shown_m, 1), " and every layer ", Between(1, k, L),
                  " (downward induction on ", k, ": base ", Equation(k, L), ", step ", k + 1, " → ", k, ")")
    conclusion = [Equation(d(J, z_k), delta_k), Equation(d(J, W_k), dW), Equation(d(J, b_k), db)]
    return Induction(definitions, claim, base, step, parameters, conclusion, scope, notes, proved)


def prove_general(spec: NetworkSpec | GeneralSetting, recurrences: Recurrences = Recurrences(), *,
                  timeout: float | None = 30.0) -> GeneralProof:
    """Prove the backprop recurrences for every width and every depth of networks like ``spec``."""
    started = time.perf_counter()
    setting = spec if isinstance(spec, GeneralSetting) else GeneralSetting.from_spec(spec)
    lemmas = lemmas_for(setting, recurrences, timeout=timeout)
    try:
        argument = induction(setting, lemmas, recurrences)
    except Exception as error:  # a rule that cannot even be stated: no argument, and said so
        unstated = Equation(Symbol("∂J/∂z_k"), Symbol("δ_k"))
        argument = Induction([], unstated, [], [], [], [], "none",
                             [f"the recurrences could not be stated: {type(error).__name__}: {error}"])
    return GeneralProof(setting, lemmas, argument, time.perf_counter() - started)


# ------------------------------------------------------------------- instances of the general proof


def instantiate(spec: NetworkSpec, *, timeout: float | None = 30.0):
    """The gradients of ``spec``'s network as an instance of the general proof, or None when the
    general proof of its setting is not complete (then only the exact expansion can say more).

    Sound because the general proof is about the very functions ``derive.backprop`` runs (the
    default :class:`Recurrences`) for every depth L ≥ 1, every width and batch m ≥ 1, with the
    setting's activation rows (their conventions at 0 included), loss, reduction, layout and
    penalty — all read from ``spec`` itself, so the instance is that setting at these sizes.
    Nothing is expanded: the cost does not depend on the widths.
    """
    started = time.perf_counter()
    setting = GeneralSetting.from_spec(spec)
    general = prove_general(setting, timeout=timeout)
    if not (general.all_proved and general.induction.proved):
        return None
    method = f"instance of the general proof at L = {spec.depth}, m = {spec.batch}"
    notes = list(general.induction.notes)
    results = []
    for k in range(spec.depth, 0, -1):
        step = "base case k = L" if k == spec.depth else f"induction step down to k = {k}"
        for quantity in QUANTITIES:
            why = step if quantity == "z" else f"{step}, then the {'weight' if quantity == 'W' else 'bias'} step"
            verdict = Verdict(PROVED, INSTANTIATED, f"{method}: {why}", notes=notes)
            results.append(QuantityResult(QUANTITY_TEXT[quantity], k, verdict))
    lemmas = [LemmaResult(lemma.name, str(lemma.statement), lemma.verdict) for lemma in general.lemmas]
    return NetworkProof(spec, lemmas, results, time.perf_counter() - started, general=general)


def prove_instance(spec: NetworkSpec, *, timeout: float | None = 30.0, progress=None, exact: bool = False,
                   memory: int | None = None, route: str | None = None) -> NetworkProof:
    """The gradients of ``spec``'s backprop recurrences: an instance of the general proof when that
    covers the setting (every gradient ``proved`` with scope ``general, instantiated``, whatever
    the widths), otherwise — or with ``exact`` — the exact proof of :func:`prove.prove_network`
    on the instance, by its ``route`` (layerwise unless ``"expand"``).
    """
    if not exact:
        if progress:
            progress("the general proof")
        proof = instantiate(spec, timeout=timeout)
        if proof is not None:
            return proof
    return prove_network(spec, timeout=timeout, progress=progress, memory=memory, route=route)

