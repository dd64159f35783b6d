"""Name the likely slip behind a wrong gradient.

A wrong ∂J/∂W_k, ∂J/∂b_k or δ_k = ∂J/∂z_k is compared with the values of the textbook slips —
a missing transpose, a missing g′, a forgotten 1/m, a flipped sign, a layer off by one, a bias
gradient not summed over the batch, softmax shortcuts used without their loss, …  Each slip is
the proven recurrences (``derive.backprop``) run over the network with ONE thing changed: a
wrapper around the spec (an activation row without its derivative), around the algebra (W taken
for its own transpose) or around the network's quantities (a_k where a_{k−1} belongs).  Nothing
here writes the recurrences a second time.

A slip *matches* when the claimed array agrees with the slip's value within the rounding bound of
``rounding`` (for the claimed array's dtype and the float64 reference) while the slip itself
differs from the truth.  ``symbackprop verify`` and ``symbackprop.testing`` both report through
:func:`diagnose`.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator

import numpy as np
import sympy

from . import rules
from .derive import backprop
from .evaluate import Unsupported
from .network import L2_FORMS, NetworkSpec, penalty_coefficient
from .numeric import NumericNetwork
from .rounding import bounded_network


@dataclass(frozen=True)
class Notation:
    """How a slip's phrase names the network's quantities.  The default is the textbook's
    (W_k, z_k, a_k, g′(z_k)); ``verify`` passes the document's own symbols and layer numbers
    (``names``: quantity → (the document's name, its layer shift), as in a derivation file's
    [symbols]), so that the hint reads V[2].T where the document writes V."""

    names: tuple = ()  # ((quantity, name, shift), ...); quantities: weight, preactivation, activation,
    #                    hidden_function, output_function

    def _entry(self, quantity: str):
        return next(((name, shift) for q, name, shift in self.names if q == quantity), None)

    def base(self, quantity: str) -> str:
        entry = self._entry(quantity)
        return entry[0] if entry else _TEXTBOOK[quantity]

    def __call__(self, quantity: str, layer) -> str:
        """``layer``: a network layer number, or "k", "k+1", "k−1" (relative to any layer k)."""
        entry = self._entry(quantity)
        if entry is None:
            text = str(layer)
            return f"{_TEXTBOOK[quantity]}_{text if len(text) == 1 else '{' + text + '}'}"
        name, shift = entry
        return f"{name}[{layer + shift if isinstance(layer, int) else layer}]"

    def T(self, text: str) -> str:
        return text + (".T" if self.names else "ᵀ")

    def prime(self, layer=None, depth: int | None = None) -> str:
        """The derivative of layer ``layer``'s activation: g′, or the document's sigma'."""
        entry = None
        if layer is not None and layer == depth:
            entry = self._entry("output_function")
        entry = entry or self._entry("hidden_function")
        return f"{entry[0]}'" if entry else "g′"

    def derivative(self, layer, depth: int | None = None) -> str:
        return f"{self.prime(layer, depth)}({self('preactivation', layer)})"


_TEXTBOOK = {"weight": "W", "preactivation": "z", "activation": "a"}
TEXTBOOK = Notation()


@dataclass(frozen=True)
class Quantity:
    """A float64 reference value and how far an honest evaluation may differ from it (``rounding``)."""

    value: np.ndarray
    tolerance: np.ndarray

    @property
    def T(self) -> "Quantity":
        return Quantity(self.value.T, self.tolerance.T)


def diagnose(spec: NetworkSpec, params: dict, X, Y, quantity: str, layer: int, claimed,
             penalty: float | None = None, notation: Notation = TEXTBOOK) -> str | None:
    """A short phrase naming the likely slip that produced ``claimed``, or None.

    ``quantity`` is "W", "b" or "z" (∂J/∂W_k, ∂J/∂b_k, δ_k = ∂J/∂z_k) of layer ``layer``;
    ``claimed`` is the wrong array, shaped like the true quantity in the spec's layout (a bias
    gradient as (n_k,) or (n_k, 1); other shapes are accepted where they identify a slip, such as
    a bias gradient left n_k × m).  ``params``, ``X``, ``Y``, ``penalty`` are as in
    ``numeric.gradients``.  None when ``claimed`` is in fact right, when no single slip explains
    it, or when the network cannot be evaluated numerically (a generic g).  ``notation`` names
    the quantities in the phrase.
    """
    outcomes = slip_outcomes(spec, params, X, Y, quantity, layer, claimed, penalty, notation, first=True)
    return next((phrase for phrase, explains in (outcomes or {}).items() if explains), None)


def slip_outcomes(spec: NetworkSpec, params: dict, X, Y, quantity: str, layer: int, claimed,
                  penalty: float | None = None, notation: Notation = TEXTBOOK, *,
                  first: bool = False) -> dict | None:
    """What each catalogue slip says about ``claimed`` at this example, in catalogue order:
    ``{phrase: True}`` it explains ``claimed``, ``False`` it is visible here (its value differs from
    the truth) and ``claimed`` is not it, ``None`` it cannot be seen here (it does not apply, or its
    value is the truth's).  A right ``claimed`` gives False for every visible slip.  ``first``: stop at
    the first slip that explains it.  None when the network cannot be evaluated numerically.
    Arguments as for :func:`diagnose`.
    """
    if quantity not in ("W", "b", "z") or not 1 <= layer <= spec.depth:
        raise ValueError(f"no quantity {quantity}{layer} in a network of depth {spec.depth}")
    claimed = np.asarray(claimed)
    dtype = claimed.dtype if np.issubdtype(claimed.dtype, np.floating) else np.dtype(np.float64)
    claimed = claimed.astype(float)
    try:
        slips = Slips(spec, params, X, Y, penalty, dtype, notation)
        truth = slips.quantity(_unchanged, quantity, layer)
    except (Unsupported, NotImplementedError):
        return None
    right = agrees(claimed, truth, quantity)
    outcomes = {}
    for phrase, evaluate in slips.candidates(quantity, layer, truth):
        if phrase in outcomes:
            continue
        slip = evaluate()
        if slip is None or not differs(slip, truth):
            outcomes[phrase] = None  # does not apply here, or is no slip on this network
            continue
        outcomes[phrase] = not right and agrees(claimed, slip, quantity)
        if first and outcomes[phrase]:
            break
    return outcomes


# ------------------------------------------------------------------------- comparing arrays


def views(claimed: np.ndarray, quantity: str) -> list:
    """The ways a claimed array may line up with a quantity: a bias gradient as a column or a row."""
    if quantity != "b":
        return [claimed]
    shown = [claimed.reshape(-1, 1)] if claimed.ndim <= 1 or 1 in claimed.shape else []
    return shown + [claimed, claimed.T]


def agrees(claimed: np.ndarray, reference: Quantity, quantity: str) -> bool:
    """Some view of ``claimed`` equals ``reference`` within its tolerance."""
    for view in views(claimed, quantity):
        if view.shape == reference.value.shape and np.all(np.isfinite(view)):
            if np.all(np.abs(view - reference.value) <= reference.tolerance):
                return True
    return False


def differs(a: Quantity, b: Quantity) -> bool:
    """The two certainly differ: another shape, or an entry apart by more than both tolerances."""
    if a.value.shape != b.value.shape:
        return True
    with np.errstate(invalid="ignore"):
        return bool(np.any(np.abs(a.value - b.value) > a.tolerance + b.tolerance))


# ------------------------------------------------------------------------------ the slips


def _unchanged(net):
    return net, True


def _with(net, **changes):
    """A shallow copy of a network with some quantities replaced."""
    changed = copy.copy(net)
    changed.__dict__.update(changes)
    return changed


class _SpecWith:
    """The spec with some layers' activation rows, or its loss row, replaced."""

    def __init__(self, spec, rows: dict | None = None, loss_rule: rules.Loss | None = None, **fields):
        self._spec, self._rows, self._loss_rule, self._fields = spec, rows or {}, loss_rule, fields

    def __getattr__(self, name):
        if name in self.__dict__.get("_fields", {}):
            return self._fields[name]
        return getattr(self._spec, name)

    def activation(self, k: int) -> rules.Activation:
        return self._rows.get(k) or self._spec.activation(k)

    @property
    def loss_rule(self) -> rules.Loss:
        return self._loss_rule or self._spec.loss_rule


class _AlgebraWith:
    """An algebra with one operation changed; everything else is the wrapped algebra's."""

    def __init__(self, base):
        self.base = base

    def __getattr__(self, name):
        return getattr(self.base, name)


class _Untransposed(_AlgebraWith):
    """Takes the given weight matrices for their own transposes: W where Wᵀ belongs."""

    def __init__(self, base, weights):
        super().__init__(base)
        self.weights = weights

    def _is_weight(self, x) -> bool:
        return any(x is w for w in self.weights)

    def T(self, a):
        return a if self._is_weight(a) else self.base.T(a)

    def matmul(self, a, b):  # examples as rows: δ W_{k+1} is the product, δ W_{k+1}ᵀ the slip
        if self.base.layout == "rows" and self._is_weight(b):
            b = self.base.T(b)
        return self.base.matmul(a, b)


class _OnesAs(_AlgebraWith):
    """Replaces the batch's vector of ones (the sum over examples in ∂J/∂b = δ 1)."""

    def __init__(self, base, make: Callable[[int], np.ndarray]):
        super().__init__(base)
        self.make = make

    def ones(self, rows: int, cols: int = 1):
        return self.base.lift(self.make(rows))


def _flat(row: rules.Activation) -> rules.Activation:
    """The row with derivative 1: its g′ factor forgotten (softmax: its Jacobian forgotten)."""
    return row.replace(vector=False, partial_rule=None, index_args=0,
                       derivative_rule=lambda x: sympy.Integer(1))


def _elementwise_softmax() -> rules.Activation:
    """softmax′ taken as ŷ(1 − ŷ), applied to ŷ itself (the diagonal of the Jacobian only)."""
    return _flat(rules.SOFTMAX).replace(derivative_rule=lambda a: a * (1 - a))


class Slips:
    """The network in float64 values and in rounding bounds (for ``dtype`` and float64), and its slips."""

    def __init__(self, spec: NetworkSpec, params: dict, X, Y, penalty: float | None = None, dtype="float64",
                 notation: Notation = TEXTBOOK):
        self.spec = spec
        self.n = notation
        formats = [np.dtype(dtype)] + ([np.dtype(np.float64)] if np.dtype(dtype) != np.float64 else [])
        self.nets = (NumericNetwork(spec, params, X, Y, penalty),
                     *(bounded_network(spec, params, X, Y, penalty, f) for f in formats))
        self.batch = self.nets[0].batch
        self.penalty = penalty if spec.l2 else None
        self._cache: dict = {}

    def gradients(self, make) -> dict | None:
        """``{(quantity, k): Quantity}`` of the recurrences over ``make(net)``; None if they do not apply."""
        if make not in self._cache:
            try:
                with np.errstate(all="ignore"):
                    runs = [self._run(make, net) for net in self.nets]
            except (ValueError, IndexError):  # shapes that do not fit: the slip is impossible here
                self._cache[make] = None
            else:  # tolerance: the bound for dtype plus the float64 reference's own (twice if the same)
                bounds = [{key: value.error for key, value in run.items()} for run in runs[1:]]
                if len(bounds) == 1:
                    bounds *= 2
                self._cache[make] = {key: Quantity(np.asarray(runs[0][key]), bounds[0][key] + bounds[1][key])
                                     for key in runs[0]}
        return self._cache[make]

    @staticmethod
    def _run(make, net) -> dict:
        changed, shortcut = make(net)
        return backprop(changed, shortcut=shortcut)

    def quantity(self, make, quantity: str, layer: int) -> Quantity | None:
        gradients = self.gradients(make)
        return None if gradients is None else gradients.get((quantity, layer))

    # ---- the catalogue, most specific first; each entry is (phrase, () -> Quantity | None)
    def candidates(self, quantity: str, layer: int, truth: Quantity) -> Iterator[tuple]:
        spec, L, m, n = self.spec, self.spec.depth, self.batch, self.n
        hidden = range(1, L)
        output = spec.activation(L)
        loss = spec.loss_rule
        shortcut = loss.shortcuts.get(output.name)

        def at(make):
            return lambda: self.quantity(make, quantity, layer)

        if quantity == "W":
            yield "gradient transposed: (n_{k−1} × n_k) where (n_k × n_{k−1}) belongs", lambda: truth.T
        yield "sign flipped", at(lambda net: (_with(net, reduction_factor=-net.reduction_factor), True))
        if m > 1:
            if spec.reduction == "mean":
                yield "missing 1/m", at(lambda net: (_with(net, reduction_factor=net.reduction_factor * m), True))
                yield "1/m applied twice", at(lambda net: (_with(net, reduction_factor=net.reduction_factor / m), True))
            else:
                yield "1/m applied to a summed loss", at(lambda net: (_with(net, reduction_factor=1 / m), True))
            if quantity == "b":
                yield "bias gradient not summed over the batch", at(
                    lambda net: (_with(net, alg=_OnesAs(net.alg, np.eye)), True))
                yield "bias gradient of the first example only (not summed over the batch)", at(
                    lambda net: (_with(net, alg=_OnesAs(net.alg, lambda n: np.eye(n)[:, :1])), True))
        for j in reversed(hidden):
            yield (f"missing derivative factor {n.derivative(j, L)}",
                   at(lambda net, j=j: (_with(net, spec=_SpecWith(spec, {j: _flat(spec.activation(j))})), True)))
        flat_output = at(lambda net: (_with(net, spec=_SpecWith(spec, {L: _flat(output)})), False))
        if output.vector:  # with ½‖ŷ − y‖² the borrowed ŷ − y is ∂ℓ/∂ŷ: name the borrowing first
            yield from self._borrowed_shortcuts(at, output, loss, shortcut)
            yield "missing softmax Jacobian: ∂ℓ/∂ŷ used as ∂J/∂z_L", flat_output
        else:
            yield f"missing derivative factor {n.derivative(L, L)}", flat_output
            yield from self._borrowed_shortcuts(at, output, loss, shortcut)
        if len(hidden) > 1:
            yield f"missing derivative factor {n.derivative('k')} in every hidden layer", at(
                lambda net: (_with(net, spec=_SpecWith(spec, {j: _flat(spec.activation(j)) for j in hidden})), True))
        yield from self._transposes(at)
        yield from self._output_slips(at, output, loss, shortcut)
        for j in reversed(hidden):
            yield (f"{n.prime(j, L)} evaluated at {n('activation', j)} where {n('preactivation', j)} belongs",
                   at(lambda net, j=j: (_with(net, Z={**net.Z, j: net.A[j]}), True)))
        yield from self._off_by_one(at, quantity, layer)
        if self.penalty is not None:
            yield from self._penalty_slips(at, quantity)
        yield from self._relu_at_zero(at)

    def _penalty_slips(self, at, quantity: str):
        """The L2 term missing, doubled, halved; written in another of the forms (``l2_form``); on the
        biases when it belongs on the weights only, or the other way round."""
        spec, n = self.spec, self.n
        W = n.base("weight")
        on_biases = getattr(spec, "l2_biases", False)
        theta = "b_k" if quantity == "b" else n("weight", "k")
        form = getattr(spec, "l2_form", "lambda/2")
        if form == "lambda/2":
            term, text = f"λ{theta}", f"(the derivative of (λ/2)‖{theta}‖² is λ{theta})"
        else:
            term, text = f"2κλ{theta}", f"(the derivative of κλ‖{theta}‖² is 2κλ{theta}, κλ = {L2_FORMS[form]})"
        if quantity != "b" or on_biases:
            for phrase, factor in ((f"L2 term {term} missing", 0), (f"L2 term doubled: 2·{term}", 2),
                                   (f"L2 term halved: {term}/2 {text}", 0.5)):
                yield phrase, at(lambda net, f=factor: (_with(net, penalty=net.penalty * f if f else None), True))
        if quantity == "b" and not on_biases:
            yield ("L2 term applied to the biases too (the penalty is on the weights only)",
                   at(lambda net: (_with(net, spec=_SpecWith(spec, l2_biases=True)), True)))
        own = penalty_coefficient(spec, self.batch)
        for other, written in L2_FORMS.items():
            if other == form or (other == "lambda/2n" and not getattr(spec, "training_size", None)):
                continue
            factor = float(penalty_coefficient(dataclasses.replace(spec, l2_form=other), self.batch) / own) \
                if isinstance(spec, NetworkSpec) else None
            if factor is None or factor == 1:
                continue
            yield (f"L2 term of {written}·Σ‖{W}‖² where {L2_FORMS[form]}·Σ‖{W}‖² belongs (another l2_form)",
                   at(lambda net, f=factor: (_with(net, penalty=net.penalty * f), True)))

    def _transposes(self, at):
        L, n = self.spec.depth, self.n
        if L < 2:
            return
        W = n.base("weight")
        yield f"missing transpose: {W} used where {n.T(W)} belongs", at(
            lambda net: (_with(net, alg=_Untransposed(net.alg, [net.W[j] for j in range(2, L + 1)])), True))
        if L > 2:
            for j in range(L, 1, -1):
                yield (f"missing transpose: {n('weight', j)} used where {n.T(n('weight', j))} belongs",
                       at(lambda net, j=j: (_with(net, alg=_Untransposed(net.alg, [net.W[j]])), True)))

    def _output_slips(self, at, output, loss, shortcut):
        spec, L = self.spec, self.spec.depth
        if shortcut is not None:  # the loss's a − y already contains g′(z_L): applying it again
            as_gradient = dataclasses.replace(loss, grad_output=lambda alg, A, Y: shortcut(alg, A, Y, None),
                                              shortcuts={})
            if output.vector:
                yield ("softmax Jacobian applied on top of the ŷ−y shortcut (cross-entropy already contains it)",
                       at(lambda net: (_with(net, spec=_SpecWith(spec, loss_rule=as_gradient)), False)))
                yield ("softmax derivative ŷ(1−ŷ) applied on top of the ŷ−y shortcut",
                       at(lambda net: (_with(net, spec=_SpecWith(spec, {L: _elementwise_softmax()}, as_gradient),
                                             Z={**net.Z, L: net.A[L]}), False)))
            else:
                yield (f"derivative factor {self.n.derivative(L, L)} applied on top of the a−y shortcut "
                       f"({loss.name} already contains it)",
                       at(lambda net: (_with(net, spec=_SpecWith(spec, loss_rule=as_gradient)), False)))
        if output.vector:
            yield ("softmax derivative taken elementwise: ŷ(1−ŷ) where the Jacobian diag(ŷ) − ŷŷᵀ belongs",
                   at(lambda net: (_with(net, spec=_SpecWith(spec, {L: _elementwise_softmax()}),
                                         Z={**net.Z, L: net.A[L]}), False)))

    def _borrowed_shortcuts(self, at, output, loss, shortcut):
        """Another loss's shortcut (softmax + cross-entropy → ŷ − y) used with this loss."""
        if shortcut is not None:
            return
        L = self.spec.depth
        missing = "the softmax Jacobian" if output.vector else self.n.derivative(L, L)
        for other in rules.LOSSES.values():
            if other is not loss and output.name in other.shortcuts:
                borrowed = dataclasses.replace(loss, shortcuts={output.name: other.shortcuts[output.name]})
                name = other.name.replace("_", "-")
                yield (f"{name} shortcut {'ŷ' if output.vector else 'a'} − y used without {name} ({missing} is missing)",
                       at(lambda net, b=borrowed: (_with(net, spec=_SpecWith(self.spec, loss_rule=b)), True)))

    def _off_by_one(self, at, quantity, layer):
        L, n = self.spec.depth, self.n
        yield f"{n('activation', 'k')} used where {n('activation', 'k−1')} belongs (off by one layer)", at(
            lambda net: (_with(net, A={**net.A, **{j: net.A[j + 1] for j in range(L)}}), True))
        if L >= 2:
            yield f"{n.derivative('k+1')} used where {n.derivative('k')} belongs (off by one layer)", at(
                lambda net: (_with(net, Z={**{j: net.Z[j + 1] for j in range(1, L)}, L: net.Z[L]}), True))
            if self.penalty is None:
                yield f"{n('weight', 'k')} used where {n('weight', 'k+1')} belongs (off by one layer)", at(
                    lambda net: (_with(net, W={1: net.W[1], **{j: net.W[j - 1] for j in range(2, L + 1)}}), True))
                yield "δ_L used where δ_k belongs (the recursion over layers skipped)", at(self._no_recursion)
        for other in (layer + 1, layer - 1):
            if 1 <= other <= L:
                yield (f"gradient of layer {other} given for layer {layer} (k{'+' if other > layer else '−'}1)",
                       lambda other=other: self.quantity(_unchanged, quantity, other))

    def _no_recursion(self, net):
        """δ_k = δ_{k+1}: every W_{k+1}ᵀ taken as the identity and every g′ as 1."""
        L = self.spec.depth
        identities = {j: net.alg.lift(np.eye(self.spec.widths[j])) for j in range(2, L + 1)}
        flat = {j: _flat(self.spec.activation(j)) for j in range(1, L)}
        return _with(net, W={**net.W, **identities}, spec=_SpecWith(self.spec, flat)), True

    def _relu_at_zero(self, at):
        spec = self.spec
        kinked = [k for k in range(1, spec.depth + 1) if spec.activation(k).kink]
        if not kinked:
            return
        for value in (Fraction(0), Fraction(1, 2), Fraction(1)):
            if value == spec.relu_at_zero:
                continue
            rows = {k: rules.activation(spec.activation(k).name, relu_at_zero=value, leaky_slope=spec.leaky_slope)
                    for k in kinked}
            yield (f"ReLU′(0) taken as {value} (this network states ReLU′(0) = {spec.relu_at_zero})",
                   at(lambda net, rows=rows: (_with(net, spec=_SpecWith(spec, rows)), True)))
