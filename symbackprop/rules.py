"""The table of rules: every activation and every loss is one row.

An activation row holds its elementary definition (what the function *is*), the closed-form
derivative the documents use (σ′ = σ(1−σ), …), and its numeric forms.  In proofs the activation
is an opaque SymPy function (an *atom*) whose ``fdiff`` returns the row's closed form; the row's
lemma — closed form = derivative of the definition — is proved before anything relying on it
counts as proved (see ``prove.prove_lemma``).  The prover, the LaTeX writer and the kernel
generator all read the same row.

A loss row holds its matrix-level formula, its gradient with respect to the output activation,
and the output-delta shortcuts the documents use (sigmoid+BCE → a−y, softmax+CE → ŷ−e).  Formulas
are written against a small matrix algebra (``alg``) so that one row serves explicit instances,
printed proofs and generated code alike.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import mpmath
import sympy
from sympy import Function, Rational


class Kink(ArithmeticError):
    """A non-smooth activation was evaluated exactly at (or too near) its kink."""


class NotRational(ArithmeticError):
    """An exact rational evaluation met a transcendental function."""


class Atom(Function):
    """An activation applied to pre-activations, opaque to the prover.

    Subclasses are made per rule row; ``fdiff`` is the row's closed-form derivative.  The first
    ``rule.index_args`` arguments are integer indices (softmax_i(z_1..z_n) has one), the rest are
    expressions.
    """

    rule: "Activation"

    def fdiff(self, argindex=1):
        return self.rule.partial(self, argindex)

    def _sympystr(self, printer):
        rule = self.rule
        inner = ", ".join(printer._print(a) for a in self.args[rule.index_args:])
        name = rule.name + (f"_{int(self.args[0]) + 1}" if rule.index_args else "")
        return f"{name}({inner})"


@dataclass(frozen=True, eq=False)
class Activation:
    """One row: an elementwise activation (or softmax, the one vector activation)."""

    name: str
    latex: str
    definition: Callable | None  # x -> elementary SymPy expression (None: generic function)
    derivative_rule: Callable | None  # x -> closed form in terms of atoms
    derivative_text: str  # the closed form as the documents write it
    interval: Callable | None = None  # mpmath.iv value at intervals
    exact: Callable | None = None  # Fraction -> Fraction; None when transcendental
    numpy: str = ""  # NumPy expression of {x}
    numpy_derivative: str = ""  # NumPy expression of the derivative at {x} (may use {a} = g(x))
    kink: bool = False  # not differentiable at 0
    vector: bool = False  # softmax: acts on a whole column
    output_only: bool = False
    unfold: Callable | None = None  # atom node -> an equal expression the prover may substitute
    params: tuple = ()
    derivative_of: "Activation | None" = None  # this row is the derivative atom of that one
    index_args: int = 0
    partial_rule: Callable | None = None  # (atom node, argindex) -> closed form (vector rows)
    # What the kernels compute (``kernels``), each proved equal to the definition before it is used:
    stable: Callable | None = None  # x -> overflow-free elementary form (None: the definition is)
    log_form: Callable | None = None  # x -> log g(x) without cancellation (softmax: (i, zs, c))
    log_complement_form: Callable | None = None  # x -> log(1 − g(x))
    init_variance: float = 1.0  # initial weights ~ N(0, init_variance / fan_in) (2: He, for ReLU)
    jacobian: Callable | None = None  # vector rows: (ŷ_i, ŷ_j, [i = j]) -> ∂ŷ_i/∂z_j, any width
    positive: bool = False  # g(x) > 0 for every x (so log g(x) may be split: log(g·h) = log g + log h)
    atom: type = field(init=False, repr=False)

    def __post_init__(self):
        attributes = {"rule": self, "__module__": __name__}
        if not self.vector:
            attributes["nargs"] = 1
        object.__setattr__(self, "atom", type(self.name, (Atom,), attributes))

    @property
    def key(self):
        return (self.name, self.params)

    def __call__(self, *args):
        return self.atom(*args)

    def derivative(self, x):
        """The closed-form derivative at ``x`` (a SymPy expression over atoms)."""
        if self.derivative_rule is None:
            raise NotImplementedError(f"{self.name} has no derivative rule")
        return self.derivative_rule(x)

    def partial(self, node, argindex):
        """∂ node / ∂ (argument ``argindex``), the closed form ``fdiff`` returns."""
        if self.partial_rule is not None:
            return self.partial_rule(node, argindex)
        if argindex != 1:
            raise sympy.ArgumentIndexError(node, argindex)
        return self.derivative(node.args[0])

    def replace(self, **changes) -> "Activation":
        return dataclasses.replace(self, **changes)

    def __repr__(self):
        return f"<activation {self.name}{list(self.params) if self.params else ''}>"


def _sigmoid_interval(x):
    return 1 / (1 + mpmath.iv.exp(-x))


def _tanh_interval(x):
    return 1 - 2 / (mpmath.iv.exp(2 * x) + 1)


def _sign(x):
    """-1, 0 or 1 for a Fraction or an mpmath interval; raises Kink when undecidable."""
    if isinstance(x, Fraction):
        if x == 0:
            raise Kink("a pre-activation is exactly 0")
        return 1 if x > 0 else -1
    if x.a > 0:
        return 1
    if x.b < 0:
        return -1
    raise Kink("a pre-activation interval contains 0")


def _exp_x(x):
    return sympy.exp(x)


class LogAddExp(Function):
    """log(eᵃ + eᵇ) as one node: NumPy's ``logaddexp`` computes it without overflow."""

    nargs = 2

    def _eval_rewrite_as_exp(self, a, b, **kwargs):
        return sympy.log(sympy.exp(a) + sympy.exp(b))


def _half_tanh_sigmoid(x):
    """σ(x) = (1 + tanh(x/2))/2: no exp(−x) to overflow for large negative x."""
    return (1 + sympy.tanh(x / 2)) / 2


# ----------------------------------------------------------------------- the activation rows


def _make_exp() -> Activation:
    row = Activation(
        name="exp", latex=r"\exp", definition=_exp_x,
        derivative_rule=None, derivative_text="exp(z)",
        interval=mpmath.iv.exp, numpy="np.exp({x})", numpy_derivative="np.exp({x})", positive=True,
    )
    object.__setattr__(row, "derivative_rule", lambda x: row.atom(x))
    return row


EXP = _make_exp()


def _make_sigmoid() -> Activation:
    row = Activation(
        name="sigmoid", latex=r"\sigma", definition=lambda x: 1 / (1 + sympy.exp(-x)),
        derivative_rule=None, derivative_text="σ(z)(1 − σ(z))",
        interval=_sigmoid_interval,
        numpy="0.5 * (1 + np.tanh(0.5 * {x}))", numpy_derivative="{a} * (1 - {a})",
        stable=_half_tanh_sigmoid,
        log_form=lambda x: -LogAddExp(0, -x),  # log σ(x) = −softplus(−x): BCE from logits
        log_complement_form=lambda x: -LogAddExp(0, x),  # log(1 − σ(x)) = −softplus(x)
        unfold=lambda node: 1 / (1 + EXP.atom(-node.args[0])), positive=True,
    )
    object.__setattr__(row, "derivative_rule", lambda x: row.atom(x) * (1 - row.atom(x)))
    return row


SIGMOID = _make_sigmoid()


def _make_tanh() -> Activation:
    row = Activation(
        name="tanh", latex=r"\tanh",
        definition=lambda x: (sympy.exp(x) - sympy.exp(-x)) / (sympy.exp(x) + sympy.exp(-x)),
        derivative_rule=None, derivative_text="1 − tanh(z)²",
        interval=_tanh_interval, numpy="np.tanh({x})", numpy_derivative="1 - {a} ** 2",
        stable=sympy.tanh,
        unfold=lambda node: ((EXP.atom(node.args[0]) - EXP.atom(-node.args[0]))
                             / (EXP.atom(node.args[0]) + EXP.atom(-node.args[0]))),
    )
    object.__setattr__(row, "derivative_rule", lambda x: 1 - row.atom(x) ** 2)
    return row


TANH = _make_tanh()


def step_row(at_zero: Fraction = Fraction(0)) -> Activation:
    """Heaviside step, the derivative of ReLU away from 0, with a stated value at 0."""
    at_zero = Fraction(at_zero)

    def exact(x):
        return Fraction(1 if _sign(x) > 0 else 0)

    def interval(x):
        return mpmath.iv.mpf(1 if _sign(x) > 0 else 0)

    return Activation(
        name="step", latex=r"H", definition=lambda x: sympy.Heaviside(x, Rational(at_zero)),
        derivative_rule=lambda x: sympy.Integer(0),  # away from 0
        derivative_text="0 (z ≠ 0)", interval=interval, exact=exact,
        numpy=(f"np.where({{x}} > 0, 1.0, np.where({{x}} < 0, 0.0, {float(at_zero)!r}))" if at_zero
               else "({x} > 0).astype({x}.dtype)"),
        numpy_derivative="np.zeros_like({x})", kink=True, params=(at_zero,),
    )


def relu_row(at_zero: Fraction = Fraction(0)) -> Activation:
    step = step_row(at_zero)

    def exact(x):
        return x if _sign(x) > 0 else Fraction(0)

    def interval(x):
        return x if _sign(x) > 0 else mpmath.iv.mpf(0)

    row = Activation(
        name="relu", latex=r"\operatorname{ReLU}", definition=lambda x: sympy.Max(0, x),
        derivative_rule=lambda x: step.atom(x),
        derivative_text=f"H(z) (ReLU′(0) := {at_zero})", interval=interval, exact=exact,
        numpy="np.maximum({x}, 0)", numpy_derivative=step.numpy, kink=True, params=(Fraction(at_zero),),
        init_variance=2.0,
    )
    object.__setattr__(step, "derivative_of", row)
    return row


def leaky_relu_row(slope: Fraction = Fraction(1, 100), at_zero: Fraction = Fraction(0)) -> Activation:
    slope = Fraction(slope)
    step = step_row(at_zero)
    alpha = Rational(slope)

    def exact(x):
        return x if _sign(x) > 0 else slope * x

    def interval(x):
        return x if _sign(x) > 0 else mpmath.iv.mpf(slope.numerator) / slope.denominator * x

    return Activation(
        name="leaky_relu", latex=r"\operatorname{LReLU}",
        definition=lambda x: sympy.Max(alpha * x, x),
        derivative_rule=lambda x: alpha + (1 - alpha) * step.atom(x),
        derivative_text=f"α + (1 − α)·H(z), α = {slope}", interval=interval, exact=exact,
        numpy=f"np.where({{x}} > 0, {{x}}, {float(slope)!r} * {{x}})",
        numpy_derivative=f"np.where({{x}} > 0, 1.0, {float(slope)!r})",
        kink=True, params=(slope, Fraction(at_zero)), init_variance=2.0,
    )


def _make_identity() -> Activation:
    return Activation(
        name="identity", latex=r"\operatorname{id}", definition=lambda x: x,
        derivative_rule=lambda x: sympy.Integer(1), derivative_text="1",
        interval=lambda x: x, exact=lambda x: x, numpy="{x}", numpy_derivative="np.ones_like({x})",
        unfold=lambda node: node.args[0],
    )


IDENTITY = _make_identity()


def _make_softplus() -> Activation:
    return Activation(
        name="softplus", latex=r"\operatorname{softplus}",
        definition=lambda x: sympy.log(1 + sympy.exp(x)),
        derivative_rule=lambda x: SIGMOID.atom(x), derivative_text="σ(z)",
        interval=lambda x: mpmath.iv.log(1 + mpmath.iv.exp(x)),
        numpy="np.logaddexp(0, {x})", numpy_derivative="0.5 * (1 + np.tanh(0.5 * {x}))",
        stable=lambda x: LogAddExp(0, x),
        unfold=lambda node: sympy.log(1 + EXP.atom(node.args[0])), positive=True,
    )


SOFTPLUS = _make_softplus()


def _silu_prime_closed_form(x):
    return SIGMOID.atom(x) * (1 + x * (1 - SIGMOID.atom(x)))


def _make_silu() -> Activation:
    # SiLU′ contains z itself; as its own atom it keeps every layer from re-expanding W a + b.
    prime = Activation(
        name="silu'", latex=r"\operatorname{SiLU}'", definition=_silu_prime_closed_form,
        derivative_rule=None, derivative_text="",
        interval=lambda x: (lambda s: s * (1 + x * (1 - s)))(_sigmoid_interval(x)),
        numpy="(lambda s: s * (1 + {x} * (1 - s)))(0.5 * (1 + np.tanh(0.5 * {x})))",
        unfold=lambda node: _silu_prime_closed_form(node.args[0]),
    )
    row = Activation(
        name="silu", latex=r"\operatorname{SiLU}", definition=lambda x: x / (1 + sympy.exp(-x)),
        derivative_rule=lambda x: prime.atom(x),
        derivative_text="σ(z)(1 + z(1 − σ(z)))",
        interval=lambda x: x * _sigmoid_interval(x),
        numpy="{x} * 0.5 * (1 + np.tanh(0.5 * {x}))",
        numpy_derivative=prime.numpy, stable=lambda x: x * _half_tanh_sigmoid(x),
        unfold=lambda node: node.args[0] * SIGMOID.atom(node.args[0]),
    )
    object.__setattr__(prime, "derivative_of", row)
    return row


SILU = _make_silu()


def _softmax_definition(node):
    """softmax_i(z) = exp(z_i) / Σ_j exp(z_j)."""
    i, zs = int(node.args[0]), node.args[1:]
    return EXP.atom(zs[i]) / sympy.Add(*[EXP.atom(z) for z in zs])


def _softmax_jacobian(y_i, y_j, same):
    """∂ŷ_i/∂z_j = ŷ_i ([i = j] − ŷ_j): the Jacobian diag(ŷ) − ŷŷᵀ (``same`` is [i = j])."""
    return y_i * (same - y_j)


def _softmax_partial(node, argindex):
    i, zs = int(node.args[0]), node.args[1:]
    j = argindex - 2
    if not 0 <= j < len(zs):
        raise sympy.ArgumentIndexError(node, argindex)
    return _softmax_jacobian(node, node.func(j, *zs), 1 if i == j else 0)


def _softmax_interval(i, *zs):
    top = max(zs, key=lambda z: z.b)  # shifting by a large entry keeps enclosures tight
    exps = [mpmath.iv.exp(z - top) for z in zs]
    return exps[i] / sum(exps[1:], exps[0])


def _softmax_shifted(i, zs, c):
    """softmax_i(z) = exp(z_i − c)/Σ_j exp(z_j − c) for any c; with c = max_j z_j nothing overflows."""
    return sympy.exp(zs[i] - c) / sympy.Add(*[sympy.exp(z - c) for z in zs])


def _log_softmax_shifted(i, zs, c):
    """log softmax_i(z) = z_i − c − log Σ_j exp(z_j − c): cross-entropy without log(0)."""
    return zs[i] - c - sympy.log(sympy.Add(*[sympy.exp(z - c) for z in zs]))


SOFTMAX = Activation(
    name="softmax", latex=r"\operatorname{softmax}", definition=None, derivative_rule=None,
    derivative_text="diag(ŷ) − ŷŷᵀ", interval=_softmax_interval, vector=True, output_only=True,
    index_args=1, partial_rule=_softmax_partial, jacobian=_softmax_jacobian, unfold=_softmax_definition,
    stable=_softmax_shifted, log_form=_log_softmax_shifted, positive=True,
)


def generic_row(name: str = "g") -> Activation:
    """An unspecified differentiable function g with its derivative g′ as another atom.

    Proofs over a generic g hold for every differentiable g; no lemma is needed because g′ is,
    by definition, the derivative of g.
    """
    prime = Activation(
        name=f"{name}'", latex=rf"{name}'", definition=None, derivative_rule=None,
        derivative_text="", params=("generic",),
    )
    row = Activation(
        name=name, latex=name, definition=None, derivative_rule=lambda x: prime.atom(x),
        derivative_text=f"{name}′(z)", params=("generic",),
    )
    object.__setattr__(prime, "derivative_of", row)
    return row


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "relu": relu_row(),
    "identity": IDENTITY,
    "leaky_relu": leaky_relu_row(),
    "softplus": SOFTPLUS,
    "silu": SILU,
    "softmax": SOFTMAX,
}


def activation(name: str, *, relu_at_zero=Fraction(0), leaky_slope=Fraction(1, 100)) -> Activation:
    """The row called ``name`` (``generic`` or ``generic:g`` gives an unspecified function)."""
    if name == "relu" and Fraction(relu_at_zero) != 0:
        return relu_row(relu_at_zero)
    if name == "leaky_relu" and (Fraction(leaky_slope) != Fraction(1, 100) or Fraction(relu_at_zero) != 0):
        return leaky_relu_row(leaky_slope, relu_at_zero)
    if name == "generic" or name.startswith("generic:"):
        return generic_row(name.partition(":")[2] or "g")
    try:
        return ACTIVATIONS[name]
    except KeyError:
        known = ", ".join(list(ACTIVATIONS) + ["generic"])
        raise KeyError(f"unknown activation {name!r} (known: {known})") from None


def custom_activation(name: str, definition: sympy.Expr, derivative: sympy.Expr,
                      x: sympy.Symbol, g: sympy.Symbol | None = None) -> Activation:
    """A user's elementwise activation ``definition`` in ``x`` with a *claimed* derivative.

    ``derivative`` may use ``g`` for the activation itself (as in σ(1−σ)).  The claim is checked
    like every other row's lemma before anything relies on it.
    """
    from sympy import lambdify

    def interval(value):
        return lambdify(x, definition, modules=[{"exp": mpmath.iv.exp, "log": mpmath.iv.log,
                                                 "sqrt": mpmath.iv.sqrt}, mpmath.iv])(value)

    row = Activation(
        name=name, latex=rf"\operatorname{{{name}}}", definition=lambda v: definition.subs(x, v),
        derivative_rule=None, derivative_text=str(derivative), interval=interval,
        params=("custom", sympy.srepr(definition), sympy.srepr(derivative)),
    )

    def closed_form(v):
        expr = derivative.subs(x, v)
        return expr.subs(g, row.atom(v)) if g is not None else expr

    object.__setattr__(row, "derivative_rule", closed_form)
    return row


# ----------------------------------------------------------------------------- the loss rows


@dataclass(frozen=True, eq=False)
class Loss:
    """One row: a per-example loss, its gradient in the output, and its delta shortcuts.

    ``formula(alg, A, Y)`` is the loss summed over the batch (the reduction is applied by the
    network); ``grad_output(alg, A, Y)`` is ∂ℓ/∂a; ``shortcuts[output]`` is the closed-form
    output delta ∂ℓ/∂z the documents use for that output activation.
    """

    name: str
    latex: str
    formula: Callable
    grad_output: Callable
    text: str
    shortcuts: dict = field(default_factory=dict)
    outputs: tuple | None = None  # output activations the loss is defined for (None: any)
    simplex_targets: bool = False  # targets are one-hot or soft, each column summing to 1
    numpy: str = ""


def _half_sse(alg, A, Y):
    R = alg.sub(A, Y)
    return alg.scale(Rational(1, 2), alg.total(alg.hadamard(R, R)))


def _bce(alg, A, Y):
    one = alg.full(1, A)
    inside = alg.add(alg.hadamard(Y, alg.log(A)), alg.hadamard(alg.sub(one, Y), alg.log(alg.sub(one, A))))
    return alg.scale(-1, alg.total(inside))


def _bce_grad(alg, A, Y):
    one = alg.full(1, A)
    return alg.divide(alg.sub(A, Y), alg.hadamard(A, alg.sub(one, A)))


def _mse(alg, A, Y):
    R = alg.sub(A, Y)
    return alg.scale(sympy.Integer(1) / alg.output_width(A), alg.total(alg.hadamard(R, R)))


LOSSES: dict[str, Loss] = {
    "half_sse": Loss(
        name="half_sse", latex=r"\tfrac12\lVert a - y\rVert^2", formula=_half_sse,
        grad_output=lambda alg, A, Y: alg.sub(A, Y), text="½‖a − y‖²",
    ),
    "mse": Loss(
        name="mse", latex=r"\tfrac1{n}\lVert a - y\rVert^2", formula=_mse,
        grad_output=lambda alg, A, Y: alg.scale(sympy.Integer(2) / alg.output_width(A), alg.sub(A, Y)),
        text="(1/n)‖a − y‖²",
    ),
    "bce": Loss(
        name="bce", latex=r"-[y\log a + (1-y)\log(1-a)]", formula=_bce, grad_output=_bce_grad,
        text="−[y log a + (1 − y) log(1 − a)]",
        shortcuts={"sigmoid": lambda alg, A, Y, Z: alg.sub(A, Y)},
        outputs=("sigmoid", "softmax"),
    ),
    "cross_entropy": Loss(
        name="cross_entropy", latex=r"-\textstyle\sum_j e_j\log \hat y_j",
        formula=lambda alg, A, Y: alg.scale(-1, alg.total(alg.hadamard(Y, alg.log(A)))),
        grad_output=lambda alg, A, Y: alg.scale(-1, alg.divide(Y, A)),
        text="−Σ e_j log ŷ_j",
        shortcuts={"softmax": lambda alg, A, Y, Z: alg.sub(A, Y)},
        outputs=("softmax", "sigmoid"), simplex_targets=True,
    ),
}


def loss(name: str) -> Loss:
    try:
        return LOSSES[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r} (known: {', '.join(LOSSES)})") from None


def output_delta(alg, loss_row: Loss, output: Activation, A, Y, Z, *, shortcut: bool = True):
    """∂ℓ/∂z_L per example: the documents' shortcut when there is one, else the general rule.

    General rule: (∂ℓ/∂a) ⊙ g′(z) for elementwise g; Jᵀ(∂ℓ/∂a) with J = diag(ŷ) − ŷŷᵀ
    for softmax, i.e. ŷ ⊙ (v − 1·(ŷᵀv)) column by column.
    """
    rule = loss_row.shortcuts.get(output.name) if shortcut else None
    if rule is not None:
        return rule(alg, A, Y, Z)
    G = loss_row.grad_output(alg, A, Y)
    if output.vector:
        weighted = alg.hadamard(A, G)
        return alg.sub(weighted, alg.hadamard(A, alg.example_sums(weighted)))
    return alg.hadamard(G, alg.apply(output.derivative, Z))
