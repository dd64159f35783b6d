"""A network spec and its symbolic instance: explicit weights, forward pass and loss in SymPy.

    z_k = W_k a_{k-1} + b_k,   a_k = g_k(z_k),   a_0 = x,   ŷ = a_L
    J   = (1/m) Σ_examples ℓ(a_L, y)  [+ (λ/2) Σ_k ‖W_k‖²]

Every pre-activation and activation carries a *perturbation* symbol (ε, evaluated at 0): the
true ∂J/∂z_k is then an ordinary partial derivative ∂J/∂ε_k, with no special casing.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from fractions import Fraction

import sympy
from sympy import Integer, Rational, Symbol

from . import limits, rules
from .matrices import Explicit, Mat
from .model import DOMAINS, Instance


class SpecError(ValueError):
    """A network spec that cannot be built; the message is one line for the user."""


def _integer(value, what: str) -> int:
    """An integer as written (3, or 3.0): not a bool, not 3.5, not inf, not "3"."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if isinstance(value, numbers.Integral) or (math.isfinite(value) and value == int(value)):
            return int(value)
    raise SpecError(f"{what} must be {'integers' if what == 'widths' else 'an integer'}, not {value!r}")


def _fraction(value, what: str) -> Fraction:
    try:
        if isinstance(value, bool):
            raise TypeError
        number = Fraction(value) if isinstance(value, (numbers.Rational, str)) else Fraction(str(value))
    except (ValueError, ZeroDivisionError, TypeError):
        raise SpecError(f"{what} must be a number, not {str(value)[:40]!r}") from None
    if max(abs(number.numerator), number.denominator) >= 10 ** limits.MAX_NUMBER_DIGITS:
        raise SpecError(f"{what}: a number has at most {limits.MAX_NUMBER_DIGITS} digits")
    return number


@dataclass(frozen=True)
class NetworkSpec:
    """What a network is: widths n_0..n_L, activations, loss, batch and conventions."""

    widths: tuple
    hidden: str | tuple = "sigmoid"
    output: str = "sigmoid"
    loss: str = "half_sse"
    batch: int = 1
    reduction: str = "mean"
    layout: str = "columns"
    l2: bool = False
    relu_at_zero: Fraction = Fraction(0)
    leaky_slope: Fraction = Fraction(1, 100)
    output_reduction: str = "sum"  # ℓ summed over the output units, or averaged ("mean": Keras, nnfs)
    l2_form: str = "lambda/2"  # the penalty: one of L2_FORMS
    l2_biases: bool = False  # the penalty covers the biases too
    training_size: int | None = None  # n in λ/(2n)·Σ‖W‖²
    activations: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if isinstance(self.widths, (str, bytes)) or not hasattr(self.widths, "__len__"):
            raise SpecError(f"widths must be a list of integers, not {self.widths!r}")
        if len(self.widths) > limits.MAX_DEPTH + 1:
            raise SpecError(f"widths: at most {limits.MAX_DEPTH} layers ({limits.MAX_DEPTH + 1} widths), "
                            f"not {len(self.widths) - 1}")
        widths = tuple(_integer(w, "widths") for w in self.widths)
        if len(widths) < 2:
            raise SpecError(f"widths need at least two entries (n_0 and n_L), got {list(widths)}")
        if any(w < 1 for w in widths):
            raise SpecError(f"every width must be at least 1, got {list(widths)}")
        object.__setattr__(self, "widths", widths)
        batch = _integer(self.batch, "batch")
        if batch < 1:
            raise SpecError(f"batch must be at least 1, got {batch}")
        object.__setattr__(self, "batch", batch)
        too_large = limits.network_problem(widths, batch)
        if too_large:
            raise SpecError(f"network too large: {too_large}")
        names = {"output": self.output, "loss": self.loss, "reduction": self.reduction, "layout": self.layout}
        if not isinstance(self.hidden, str):
            if isinstance(self.hidden, (list, tuple)):
                names.update({f"hidden[{k}]": name for k, name in enumerate(self.hidden, start=1)})
            else:
                names["hidden"] = self.hidden
        for key, name in names.items():
            if not isinstance(name, str):
                raise SpecError(f"{key} must be a name (a string), not {name!r}")
        if not isinstance(self.l2, bool):
            raise SpecError(f"l2 must be true or false, not {self.l2!r}")
        if self.reduction not in ("mean", "sum"):
            raise SpecError(f"reduction must be 'mean' or 'sum', not {self.reduction!r}")
        if self.layout not in ("columns", "rows"):
            raise SpecError(f"layout must be 'columns' or 'rows', not {self.layout!r}")
        if self.output_reduction not in ("sum", "mean"):
            raise SpecError(f"output_reduction must be 'sum' or 'mean', not {self.output_reduction!r}")
        if self.output_reduction == "mean" and self.loss == "mse":
            raise SpecError("loss mse already averages over the output units: output_reduction 'mean' "
                            "goes with half_sse, bce or cross_entropy")
        if self.l2_form not in L2_FORMS:
            raise SpecError(f"l2_form must be one of {', '.join(L2_FORMS)}, not {self.l2_form!r}")
        if not isinstance(self.l2_biases, bool):
            raise SpecError(f"l2_biases must be true or false, not {self.l2_biases!r}")
        if self.training_size is not None:
            size = _integer(self.training_size, "training_size")
            if size < 1:
                raise SpecError(f"training_size must be at least 1, got {size}")
            object.__setattr__(self, "training_size", size)
        if self.l2 and self.l2_form == "lambda/2n" and self.training_size is None:
            raise SpecError("l2_form lambda/2n needs the training-set size n: give training_size")
        object.__setattr__(self, "relu_at_zero", _fraction(self.relu_at_zero, "relu_at_zero"))
        object.__setattr__(self, "leaky_slope", _fraction(self.leaky_slope, "leaky_slope"))
        depth = len(widths) - 1
        hidden = (self.hidden,) * (depth - 1) if isinstance(self.hidden, str) else tuple(self.hidden)
        if len(hidden) != depth - 1:
            raise SpecError(f"{len(hidden)} hidden activations given for {depth - 1} hidden layers")
        object.__setattr__(self, "hidden", self.hidden if isinstance(self.hidden, str) else hidden)
        rows = {}
        built = []
        if isinstance(self.hidden, str) and depth == 1:
            hidden_names = (self.hidden,)  # unused, but a misspelt name is still an error
        else:
            hidden_names = hidden
        for name in set(hidden_names) - set(hidden):
            try:
                rules.activation(name)
            except KeyError as error:
                raise SpecError(error.args[0]) from None
        for name in hidden + (self.output,):
            if name not in rows:
                try:
                    rows[name] = rules.activation(name, relu_at_zero=self.relu_at_zero,
                                                  leaky_slope=self.leaky_slope)
                except KeyError as error:
                    raise SpecError(error.args[0]) from None
            built.append(rows[name])
        for k, row in enumerate(built[:-1], start=1):
            if row.output_only:
                raise SpecError(f"{row.name} can only be the output activation (layer {k} is hidden)")
        try:
            loss_row = rules.loss(self.loss)
        except KeyError as error:
            raise SpecError(error.args[0]) from None
        if loss_row.outputs is not None and self.output not in loss_row.outputs:
            raise SpecError(f"loss {self.loss} needs outputs in (0, 1): use the output activation "
                            f"{' or '.join(loss_row.outputs)}, not {self.output}")
        object.__setattr__(self, "activations", tuple(built))

    @property
    def depth(self) -> int:
        return len(self.widths) - 1

    def activation(self, k: int) -> rules.Activation:
        """The activation row of layer k (1..L)."""
        return self.activations[k - 1]

    @property
    def loss_rule(self) -> rules.Loss:
        return rules.loss(self.loss)

    def describe(self) -> str:
        hidden = self.hidden if isinstance(self.hidden, str) else ",".join(self.hidden)
        parts = ["-".join(map(str, self.widths))]
        parts.append(f"{hidden}/{self.output}" if self.depth > 1 else self.output)
        parts.append(self.loss)
        text = " ".join(parts) + f", batch {self.batch}"
        penalty = "L2 penalty" if self.l2_form == "lambda/2" else f"L2 penalty {L2_FORMS[self.l2_form]}·Σ‖W‖²"
        if self.l2_form == "lambda/2n":
            penalty += f", n = {self.training_size}"
        extras = [e for e in (self.reduction != "mean" and "sum over batch",
                              self.output_reduction == "mean" and "mean over output units",
                              self.layout != "columns" and "examples as rows",
                              self.l2 and penalty + (" on W and b" if self.l2_biases else "")) if e]
        return text + (f" ({', '.join(extras)})" if extras else "")


def forward(spec: NetworkSpec, alg, W: dict, b: dict, X, Ez: dict | None = None, Ea: dict | None = None):
    """z_k = W_k a_{k-1} + b_k (+ ε), a_k = g_k(z_k) (+ ε), in any matrix algebra: (Z, A) by layer."""
    Z, A = {}, {0: X}
    for k in range(1, spec.depth + 1):
        Z[k] = alg.affine(W[k], A[k - 1], b[k])
        if Ez:
            Z[k] = alg.add(Z[k], Ez[k])
        g = spec.activation(k)
        A[k] = alg.softmax(Z[k], g.atom) if g.vector else alg.apply(g.atom, Z[k])
        if Ea:
            A[k] = alg.add(A[k], Ea[k])
    return Z, A


L2_FORMS = {  # l2_form: the coefficient κλ of Σ‖W_k‖² as written
    "lambda/2": "(λ/2)",  # (λ/2)·Σ‖W‖², the documents' form
    "lambda": "λ",  # reg·Σ‖W‖² (CS231n)
    "lambda/2m": "λ/(2m)",  # m the batch size
    "lambda/2n": "λ/(2n)",  # n the training-set size (Nielsen's network2.py)
}


def penalty_coefficient(spec: NetworkSpec, m):
    """κ in the penalty κ·λ·Σ‖W_k‖² (m, the batch size, may be symbolic)."""
    return {"lambda/2": Rational(1, 2), "lambda": Integer(1), "lambda/2m": Integer(1) / (2 * m),
            "lambda/2n": Rational(1, 2 * (spec.training_size or 1))}[spec.l2_form]


def _times(penalty, coefficient):
    """penalty·coefficient, a float for a float penalty (the numeric reference stays in floats)."""
    if isinstance(penalty, sympy.Basic):
        return penalty * coefficient
    return penalty * float(coefficient)


def output_factor(spec: NetworkSpec, alg, output):
    """1, or 1/n_L when ℓ is averaged over the output units (``output_reduction="mean"``)."""
    return Integer(1) if spec.output_reduction == "sum" else Integer(1) / alg.output_width(output)


def reduction_factor(reduction: str, m):
    """c in J = c · Σ_examples ℓ: 1/m for the mean over the batch, 1 for the sum (m may be symbolic)."""
    return Integer(1) / m if reduction == "mean" else Integer(1)


def objective(spec: NetworkSpec, alg, output, Y, W: dict, reduction_factor, penalty=None, b: dict | None = None):
    """J = c · o · Σ_examples ℓ(a_L, y) [+ κ λ Σ_k ‖W_k‖² (+ ‖b_k‖²)], c = 1/m (mean) or 1 (sum),
    o = 1 or 1/n_L (``output_reduction``), κ from ``l2_form`` (1/2 by default)."""
    loss = spec.loss_rule.formula(alg, output, Y)
    if spec.output_reduction != "sum":
        loss = alg.scale(output_factor(spec, alg, output), loss)
    J = alg.scale(reduction_factor, loss)
    if penalty is not None:
        if spec.l2_biases and b is None:
            raise ValueError("this spec puts the L2 penalty on the biases too: pass them")
        terms = [W[k] for k in range(1, spec.depth + 1)] + ([b[k] for k in range(1, spec.depth + 1)]
                                                          if spec.l2_biases else [])
        J = J + penalty_term(spec, alg, terms, penalty, alg.examples(output))
    return J


def penalty_term(spec: NetworkSpec, alg, terms, penalty, m):
    """κλ · Σ_t ‖t‖² over the penalised matrices ``terms`` (κ = 1/2 written as λ/2, see ``l2_form``)."""
    squares = [alg.total(alg.hadamard(t, t)) for t in terms]
    if spec.l2_form == "lambda/2":
        weight = penalty / 2  # as the documents write it
    else:
        weight = _times(penalty, penalty_coefficient(spec, m))
    return weight * sum(squares[1:], squares[0])


class Network(Instance):
    """The symbolic instance of a spec: every quantity as an explicit matrix of SymPy expressions.

    Quantities follow the spec's layout: with examples as columns, X is n_0 × m and W_k is
    n_k × n_{k-1}; with examples as rows, X is m × n_0 (W_k and b_k keep their shapes).
    """

    def __init__(self, spec: NetworkSpec, labels: tuple | None = None):
        """``labels`` (one class index per example, 0-based) fixes the targets to one-hot columns."""
        too_large = limits.symbolic_problem(spec.widths, spec.batch)
        if too_large:
            shape = "-".join(map(str, spec.widths)) if spec.depth <= 8 else f"of {spec.depth} layers"
            raise SpecError(f"network {shape}, batch {spec.batch} is too large: {too_large}")
        super().__init__()
        self.spec = spec
        self.labels = labels
        self.alg = alg = Explicit(spec.layout)
        L, n, m = spec.depth, spec.widths, spec.batch
        self.depth, self.batch = L, m
        self.parameters: dict[str, list[Symbol]] = {"weight": [], "bias": [], "input": [], "target": []}

        def data(width, stem, kind, make=None):
            """A width × m block (transposed for rows layout) of fresh symbols."""
            make = make or (lambda i, e: self._symbol(self._entry_name(stem, i, e), kind))
            block = Mat.build(width, m, make)
            return block if spec.layout == "columns" else block.T

        self.W = {k: Mat.build(n[k], n[k - 1], lambda i, j, k=k: self._symbol(f"W{k}[{i + 1},{j + 1}]", "weight"))
                  for k in range(1, L + 1)}
        self.b = {k: Mat.build(n[k], 1, lambda i, j, k=k: self._symbol(f"b{k}[{i + 1}]", "bias"))
                  for k in range(1, L + 1)}
        self.X = data(n[0], "x", "input")
        if labels is None:
            self.Y = self._targets(data, n[L])
        else:
            if len(labels) != m or not all(0 <= c < n[L] for c in labels):
                raise SpecError(f"labels {list(labels)} do not fit {m} examples of {n[L]} classes")
            self.Y = data(n[L], "y", None, lambda i, e: Integer(1 if labels[e] == i else 0))
        self.Ez: dict[int, Mat] = {}
        self.Ea: dict[int, Mat] = {}
        for k in range(1, L + 1):
            self.Ez[k] = data(n[k], f"εz{k}", None, lambda i, e, k=k: self._perturbation(f"εz{k}", self._entry_name("", i, e)))
            self.Ea[k] = data(n[k], f"εa{k}", None, lambda i, e, k=k: self._perturbation(f"εa{k}", self._entry_name("", i, e)))
        self.Z, self.A = forward(spec, alg, self.W, self.b, self.X, self.Ez, self.Ea)
        self.penalty = self._symbol("λ", "penalty") if spec.l2 else None
        self.reduction_factor = reduction_factor(spec.reduction, m)
        self.J = objective(spec, alg, self.A[L], self.Y, self.W, self.reduction_factor, self.penalty, self.b)

    # ---- the Instance interface
    KINDS = ("weight", "bias", "input", "target", "penalty")

    @property
    def variables(self) -> list:
        domains = {"weight": DOMAINS["real"], "bias": DOMAINS["real"], "input": DOMAINS["real"],
                   "target": DOMAINS["unit"], "penalty": DOMAINS["positive"]}
        return [(s, domains[kind]) for kind in self.KINDS for s in self.parameters.get(kind, [])]

    def sample(self, rng) -> dict:
        """Weights, biases and inputs in [−5/3, 5/3], targets in [0, 1] (soft targets: each
        example's free targets sum to at most 1), λ in (0, 1]."""
        point = {}
        for symbol, domain in self.variables:
            value = domain.sample(rng)
            if domain.name == "unit" and self.spec.loss_rule.simplex_targets:
                value /= self.spec.widths[-1]
            point[symbol] = value
        return point

    def witness_note(self) -> str | None:
        if self.spec.loss_rule.simplex_targets and self.labels is None:
            return "each example's last target is 1 minus the sum of the others"
        return None

    def describe(self) -> str:
        return self.spec.describe()

    # ---- symbols
    def _entry_name(self, stem: str, i: int, e: int) -> str:
        """Entry i of example e, indexed as the layout's matrices are: x[i,e] in columns, x[e,i] in rows."""
        if self.spec.batch == 1:
            return f"{stem}[{i + 1}]"
        return f"{stem}[{i + 1},{e + 1}]" if self.spec.layout == "columns" else f"{stem}[{e + 1},{i + 1}]"

    def _symbol(self, name: str, kind: str | None) -> Symbol:
        symbol = Symbol(name)
        if kind is not None:
            self.parameters.setdefault(kind, []).append(symbol)
        return symbol

    def _perturbation(self, stem: str, index: str) -> Symbol:
        symbol = Symbol(stem + index)
        self.perturbation.append(symbol)
        return symbol

    def _targets(self, data, width: int) -> Mat:
        """Free targets, except that one-hot/soft targets sum to 1: the last is 1 − Σ others."""
        if not self.spec.loss_rule.simplex_targets:
            return data(width, "y", "target")
        free = {}

        def make(i, e):
            name = self._entry_name("y", i, e)
            if i < width - 1:
                free[i, e] = self._symbol(name, "target")
                return free[i, e]
            return 1 - sympy.Add(*[free[j, e] for j in range(width - 1)])

        return data(width, "y", "target", make)

    # ---- access by the derivation-file quantity names
    def quantity(self, kind: str, k: int | None = None) -> Mat:
        table = {"weight": self.W, "bias": self.b, "preactivation": self.Z, "activation": self.A}
        if kind in table:
            return table[kind][k]
        if kind == "input":
            return self.X
        if kind in ("output",):
            return self.A[self.depth]
        if kind in ("target", "onehot"):
            return self.Y
        raise KeyError(kind)

    def perturbation_of(self, kind: str, k: int) -> Mat:
        """The ε symbols whose partial derivatives are ∂J/∂z_k or ∂J/∂a_k."""
        return {"preactivation": self.Ez, "activation": self.Ea}[kind][k]
