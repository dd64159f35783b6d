"""Property-based tests for anyone's backprop code, against the proven gradients.

    from symbackprop.testing import check_backprop, networks
    check_backprop(my_backprop, networks(hidden=["sigmoid"], output=["softmax"], loss=["cross_entropy"]))

Hypothesis draws networks (depth, widths, batch, activations, loss); for each it draws
well-scaled parameters and a batch, calls the user's function and compares every gradient it
returns with ``numeric.gradients`` — the recurrences ``derive.backprop`` that the prover proves
equal to the true gradient, evaluated in float64.  On a failure Hypothesis shrinks to the smallest
network that still fails, and the report says which gradient is wrong, by how much, and the
likely slip (``diagnose``).

**The user's function.**  ``user_fn(params, X, Y)`` returning ``{"W1": ∂J/∂W1, "b1": ∂J/∂b1, …}``
(keys may be written dW1, db1; optionally ``"z1"`` = δ_1 … and ``"loss"``), or ``(loss, grads)``, or
a pair of lists ``(nabla_b, nabla_w)`` — biases first, as in Nielsen's network.py.  A key that names
no quantity of the network (a stray ``dW0``) is reported, and so are W and b gradients that are
right but exchanged (a pair returned weights first).  It may also take
``network`` (the :class:`~symbackprop.network.NetworkSpec`: widths, activations, loss) and must
take ``penalty`` (λ) for networks with an L2 penalty.  ``params`` is ``{"W1": …, "b1": …}``.
Conventions (keywords of :func:`check_backprop` and :func:`assert_backprop`):

- ``examples="columns"`` (X is n_0 × m) or ``"rows"`` (X is m × n_0), or ``"network"`` (the
  network's own ``layout``);
- ``weights="out_in"`` (W_k is n_k × n_{k−1}, z = W a + b) or ``"in_out"`` (n_{k−1} × n_k, z = a W + b);
- ``reduction="mean"`` (J averages over the batch) or ``"sum"``, or ``"network"``;
- ``biases="vector"`` (n_k,), ``"column"`` (n_k, 1) or ``"row"`` (1, n_k);
- ``targets="soft"`` (any targets the loss allows), ``"onehot"`` (each example one class) or
  ``"labels"`` (one class each, given to the function as integer indices of shape (m,) in place of Y);
- ``output_reduction="sum"`` (ℓ summed over the output units, the documents' BCE) or ``"mean"``
  (averaged over them, as Keras's and nnfs's binary cross-entropy); unset, this and the options
  below keep the network's own (its spec's defaults: "sum", "lambda/2", no penalty on biases);
- ``l2_form``, for networks with an L2 penalty: ``"lambda/2"`` ((λ/2)·Σ‖W‖²), ``"lambda"``
  (reg·Σ‖W‖²), ``"lambda/2m"`` (λ/(2m)·Σ‖W‖², m the batch size) or ``"lambda/2n"`` (λ/(2n)·Σ‖W‖²,
  n = ``training_size``, passed to the function as ``training_size=`` if it takes it);
  ``l2_biases=True`` puts the penalty on the biases too.

These loss conventions are fields of the network spec, so the reference is the proven recurrences of
that very loss (``symbackprop prove`` proves them), not a rescaling of another one.

**The tolerance** is not a fixed rtol/atol.  ``rounding`` evaluates the very same formulas once
more carrying first-order error bounds: for each gradient entry a coefficient e such that any
evaluation of the formulas with unit roundoff u (in any order of summation) lies within u·e of
the exact value.  e grows with the magnitudes of the terms summed (|W|ᵀ|δ| rather than Wᵀδ), the
lengths of the sums, and the cancellation inside closed forms such as σ(1−σ) and 1−tanh² near
saturation.  The user's value and the float64 reference may therefore differ by
(u_user + u_float64)·e, where u_user is the unit roundoff of the dtype the function was given or
returned (2⁻²⁴ for float32).  So a correct float32 implementation passes even where σ′ underflows,
while a wrong one fails even when every gradient is tiny (a plain ``allclose`` passes it there).

**Kinks.**  ReLU-like activations are not differentiable at 0.  By default every pre-activation of
a kinked layer is kept further from 0 than its own rounding bound, so the user's code and the
reference agree on every ReLU′.  ``kinks=True`` draws values on a small dyadic grid instead, where
pre-activations are exactly 0 often: the check then tests the ReLU′(0) convention the network
states (``relu_at_zero``, default 0).  ``saturated=True`` draws weights large enough to saturate
sigmoid, tanh and softmax.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, NamedTuple

import hypothesis
import numpy as np
from hypothesis import strategies as st

from . import rules
from .diagnose import slip_outcomes, views
from .network import NetworkSpec, SpecError
from .numeric import gradients, loss as numeric_loss
from .rounding import bounded_network, tolerances, unit_roundoff

__all__ = ["networks", "parameters", "batches", "problems", "Problem", "check_backprop",
           "assert_backprop", "BackpropMismatch", "UserCodeNotFinite", "BackpropCheckFailed"]

HIDDEN = tuple(name for name, row in rules.ACTIVATIONS.items() if not row.output_only)
OUTPUTS = tuple(rules.ACTIVATIONS)
LOSSES = tuple(rules.LOSSES)
KINK_GRID = (-1.0, -0.5, 0.0, 0.5, 1.0)  # dyadic: sums of products are exact, so z = 0 exactly


# ------------------------------------------------------------------------------ strategies


def _names(given, default, kind: str, check: Callable) -> tuple:
    names = tuple(default if given is None else ([given] if isinstance(given, str) else given))
    if not names:
        raise ValueError(f"no {kind} to choose from")
    for name in names:
        try:
            check(name)
        except (KeyError, SpecError) as error:
            raise ValueError(error.args[0]) from None
    return names


def _hidden_row(name: str):
    row = rules.activation(name)
    if row.output_only:
        raise KeyError(f"{name} can only be the output activation")
    if not row.numpy:
        raise KeyError(f"{name} has no NumPy form, so it cannot be tested numerically")
    return row


def _output_row(name: str):
    row = rules.activation(name)
    if not row.numpy and not row.vector:
        raise KeyError(f"{name} has no NumPy form, so it cannot be tested numerically")
    return row


def _bounds(kind: str, low: int, high: int, least: int) -> None:
    if not least <= low <= high:
        raise ValueError(f"{kind}: need {least} <= min_{kind} <= max_{kind}, got {low} and {high}")


def _pins(widths, input_width, output_width, min_depth: int) -> dict:
    """``{layer index: width}`` (negative indices count from the output, −1 is n_L)."""
    pins = {}
    for key, value in [*dict(widths or {}).items(), (0, input_width), (-1, output_width)]:
        if value is None:
            continue
        if not isinstance(key, int) or isinstance(key, bool):
            raise ValueError(f"widths: keys are layer indices (0 is the input, −1 the output), not {key!r}")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"widths: the width of layer {key} must be an integer >= 1, not {value!r}")
        if key > min_depth or key < -(min_depth + 1):
            raise ValueError(f"widths: layer {key} does not exist in a network of depth {min_depth} "
                             f"(raise min_depth)")
        if key in pins and pins[key] != value:
            raise ValueError(f"widths: layer {key} pinned to both {pins[key]} and {value}")
        pins[key] = value
    return pins


def networks(*, min_depth: int = 1, max_depth: int = 3, min_width: int = 1, max_width: int = 4,
             min_batch: int = 1, max_batch: int = 3, hidden=None, output=None, loss=None,
             layout=("columns", "rows"), reduction=("mean", "sum"), l2=(False,),
             relu_at_zero=Fraction(0), widths: dict | None = None, input_width: int | None = None,
             output_width: int | None = None) -> st.SearchStrategy:
    """Network specs: depth L (weight layers), widths n_0..n_L, batch m, activations, loss.

    ``hidden``, ``output``, ``loss``, ``layout``, ``reduction`` and ``l2`` are the choices allowed
    (names from ``rules``; default all that can be evaluated numerically).  Every hidden layer of a
    network shares one activation.  Outputs are paired only with losses defined for them.
    Widths are drawn in [min_width, max_width] except those pinned: ``output_width=1`` (n_L, a
    binary classifier), ``input_width`` (n_0), or any by layer index in ``widths={1: 5, -2: 3}``
    (negative indices count from the output: −1 is n_L); a pin may lie outside the range.
    ``min_depth``/``max_depth`` bound L.  Shrinking goes to fewer layers, then narrower layers and
    smaller batches, then the first names listed.
    """
    _bounds("depth", min_depth, max_depth, 1)
    _bounds("width", min_width, max_width, 1)
    _bounds("batch", min_batch, max_batch, 1)
    pins = _pins(widths, input_width, output_width, min_depth)
    for depth in range(min_depth, max_depth + 1):  # a positive and a negative index meeting at one layer
        by_layer = {}
        for key, value in pins.items():
            layer = key if key >= 0 else depth + 1 + key
            if by_layer.setdefault(layer, value) != value:
                raise ValueError(f"widths: at depth {depth} layer {layer} is pinned to both "
                                 f"{by_layer[layer]} and {value}")
    hidden = _names(hidden, HIDDEN, "hidden activation", _hidden_row)
    outputs = _names(output, OUTPUTS, "output activation", _output_row)
    losses = _names(loss, LOSSES, "loss", rules.loss)
    pairs = {name: [o for o in outputs if rules.loss(name).outputs is None or o in rules.loss(name).outputs]
             for name in losses}
    losses = tuple(name for name in losses if pairs[name])
    if not losses:
        raise ValueError(f"no loss in {list(pairs)} is defined for an output in {list(outputs)}")
    layouts = _names(layout, (), "layout", lambda name: NetworkSpec((1, 1), layout=name))
    reductions = _names(reduction, (), "reduction", lambda name: NetworkSpec((1, 1), reduction=name))
    penalties = tuple(bool(choice) for choice in ((l2,) if isinstance(l2, bool) else l2))

    @st.composite
    def draw_network(draw):
        depth = draw(st.integers(min_depth, max_depth))
        pinned = {(key if key >= 0 else depth + 1 + key): value for key, value in pins.items()}
        widths = tuple(pinned[k] if k in pinned else draw(st.integers(min_width, max_width))
                       for k in range(depth + 1))
        batch = draw(st.integers(min_batch, max_batch))
        hidden_name = draw(st.sampled_from(hidden)) if depth > 1 else hidden[0]
        loss_name = draw(st.sampled_from(losses))
        output_name = draw(st.sampled_from(pairs[loss_name]))
        return NetworkSpec(widths, hidden=hidden_name, output=output_name, loss=loss_name, batch=batch,
                           layout=draw(st.sampled_from(layouts)), reduction=draw(st.sampled_from(reductions)),
                           l2=draw(st.sampled_from(penalties)), relu_at_zero=relu_at_zero)

    return draw_network()


class Problem(NamedTuple):
    """One check: a network, its parameters, a batch (in the network's layout) and λ (or None)."""

    network: NetworkSpec
    params: dict
    X: np.ndarray
    Y: np.ndarray
    penalty: float | None = None


def _signed(rng, shape, low: float, high: float) -> np.ndarray:
    return rng.uniform(low, high, shape) * rng.choice((-1.0, 1.0), shape)


def sample_parameters(network: NetworkSpec, rng: np.random.Generator, *, saturated: bool = False,
                      kinks: bool = False) -> dict:
    """Well-scaled W_k (n_k × n_{k−1}) and b_k (n_k,), float64.

    Entries have magnitude in [1/4, 1], weights divided by √n_{k−1}, so pre-activations are of
    order 1; ``saturated``: magnitudes in [2, 8], so |z| reaches tens; ``kinks``: the dyadic grid.
    """
    params = {}
    n = network.widths
    for k in range(1, network.depth + 1):
        for name, shape, fan_in in ((f"W{k}", (n[k], n[k - 1]), n[k - 1]), (f"b{k}", (n[k],), 1)):
            if kinks:
                params[name] = rng.choice(KINK_GRID, shape)
            elif saturated:
                params[name] = _signed(rng, shape, 2.0, 8.0)
            else:
                params[name] = _signed(rng, shape, 0.25, 1.0) / np.sqrt(fan_in)
    return params


TARGETS = ("soft", "onehot", "labels")


def _targets_choice(targets: str) -> str:
    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {', '.join(TARGETS)}, not {targets!r}")
    return targets


def sample_batch(network: NetworkSpec, rng: np.random.Generator, *, kinks: bool = False,
                 targets: str = "soft") -> tuple:
    """(X, Y) in the network's layout: inputs of magnitude [1/4, 1] (or the grid), targets for its loss.

    ``targets="soft"``: in [−1, 1] for squared errors; in [0, 1] or hard 0/1 labels for BCE; one-hot
    or soft (multiples of 1/8 summing to exactly 1) for cross-entropy.  ``"onehot"`` or
    ``"labels"``: every example is one class c — Y's column is e_c, or with one output unit
    (a binary classifier) y = c ∈ {0, 1}.
    """
    n0, nL, m = network.widths[0], network.widths[-1], network.batch
    X = rng.choice(KINK_GRID, (n0, m)) if kinks else _signed(rng, (n0, m), 0.25, 1.0)
    if _targets_choice(targets) != "soft":
        classes = rng.integers(0, 2 if nL == 1 else nL, m)
        Y = classes[None, :].astype(float) if nL == 1 else np.eye(nL)[:, classes]
    elif network.loss_rule.simplex_targets:
        if rng.random() < 0.5:
            Y = np.eye(nL)[:, rng.integers(0, nL, m)]
        else:
            Y = rng.multinomial(8, np.full(nL, 1 / nL), size=m).T / 8
    elif network.loss == "bce":
        Y = rng.integers(0, 2, (nL, m)).astype(float) if rng.random() < 0.5 else rng.uniform(0, 1, (nL, m))
    else:
        Y = rng.uniform(-1, 1, (nL, m))
    return (X, Y) if network.layout == "columns" else (X.T, Y.T)


def clear_of_kinks(network: NetworkSpec, params: dict, X, Y, dtype="float64") -> bool:
    """Every pre-activation of a kinked layer (ReLU, leaky ReLU) is further from 0 than its rounding bound."""
    kinked = [k for k in range(1, network.depth + 1) if network.activation(k).kink]
    if not kinked:
        return True
    penalty = 0.0 if network.l2 else None
    user, reference = (bounded_network(network, params, X, Y, penalty, d) for d in (dtype, np.float64))
    return all(np.all(np.abs(user.Z[k].value) > user.Z[k].error + reference.Z[k].error) for k in kinked)


def _cast(array, dtype):
    return np.asarray(array, dtype=dtype)


def sample_problem(network: NetworkSpec, seed: int, *, dtype="float64", saturated: bool = False,
                   kinks: bool = False, targets: str = "soft", attempts: int = 20) -> Problem | None:
    """A problem from ``seed``: values cast to ``dtype``, clear of kinks unless ``kinks``, finite
    proven gradients.  None when ``attempts`` seeds in a row miss."""
    for attempt in range(attempts):
        rng = np.random.default_rng([seed, attempt])
        params = {name: _cast(value, dtype) for name, value in
                  sample_parameters(network, rng, saturated=saturated, kinks=kinks).items()}
        X, Y = (_cast(a, dtype) for a in sample_batch(network, rng, kinks=kinks, targets=targets))
        penalty = float(_cast(rng.uniform(0.05, 1.0), dtype)) if network.l2 else None
        if not kinks and not clear_of_kinks(network, params, X, Y, dtype):
            continue
        with np.errstate(all="ignore"):
            reference = gradients(network, params, X, Y, penalty)
        if all(np.all(np.isfinite(value)) for value in reference.values()):
            return Problem(network, params, X, Y, penalty)
    return None


def _network_strategy(network_or_strategy) -> st.SearchStrategy:
    if network_or_strategy is None:
        return networks()
    if isinstance(network_or_strategy, NetworkSpec):
        return st.just(network_or_strategy)
    if isinstance(network_or_strategy, st.SearchStrategy):
        return network_or_strategy
    raise TypeError(f"expected a NetworkSpec or a strategy of them (networks()), not {network_or_strategy!r}")


SEEDS = st.integers(0, 2 ** 32 - 1)


def parameters(network: NetworkSpec, *, dtype="float64", saturated: bool = False,
               kinks: bool = False) -> st.SearchStrategy:
    """``{"W1": (n_1, n_0), "b1": (n_1,), …}`` for ``network`` (see :func:`sample_parameters`)."""
    return SEEDS.map(lambda seed: {name: _cast(value, dtype) for name, value in sample_parameters(
        network, np.random.default_rng(seed), saturated=saturated, kinks=kinks).items()})


def batches(network: NetworkSpec, params: dict | None = None, *, dtype="float64",
            kinks: bool = False, targets: str = "soft") -> st.SearchStrategy:
    """``(X, Y)`` for ``network`` (see :func:`sample_batch`); given ``params``, clear of kinks unless ``kinks``."""
    _targets_choice(targets)

    def batch(seed):
        X, Y = (_cast(a, dtype) for a in sample_batch(network, np.random.default_rng(seed), kinks=kinks,
                                                       targets=targets))
        return X, Y

    drawn = SEEDS.map(batch)
    if params is not None and not kinks:
        drawn = drawn.filter(lambda XY: clear_of_kinks(network, params, *XY, dtype))
    return drawn


def problems(network_or_strategy=None, *, dtype="float64", saturated: bool = False,
             kinks: bool = False, targets: str = "soft") -> st.SearchStrategy:
    """:class:`Problem` s — network, parameters, batch, λ — ready for :func:`assert_backprop`.

    With ``targets="onehot"`` or ``"labels"`` every Y is one-hot (pass ``targets="labels"`` to
    :func:`assert_backprop` too, and your function gets the class indices)."""
    network_strategy = _network_strategy(network_or_strategy)
    _targets_choice(targets)

    @st.composite
    def draw_problem(draw):
        network = draw(network_strategy)
        problem = sample_problem(network, draw(SEEDS), dtype=dtype, saturated=saturated, kinks=kinks,
                                 targets=targets)
        hypothesis.assume(problem is not None)
        return problem

    return draw_problem()


# ------------------------------------------------------------------------------ conventions


@dataclass(frozen=True)
class Convention:
    """How the user's function sees the world (see the module docstring)."""

    examples: str = "columns"
    weights: str = "out_in"
    reduction: str = "mean"
    biases: str = "vector"
    targets: str = "soft"
    output_reduction: str | None = None  # these four: None keeps the network's own
    l2_form: str | None = None
    l2_biases: bool | None = None
    training_size: int | None = None

    def __post_init__(self):
        for name, allowed in (("examples", ("columns", "rows", "network")), ("weights", ("out_in", "in_out")),
                              ("reduction", ("mean", "sum", "network")), ("biases", ("vector", "column", "row")),
                              ("targets", TARGETS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")

    def adapt(self, network: NetworkSpec) -> NetworkSpec:
        """The network whose loss and layout are the ones the user's function computes."""
        changes = {}
        if self.examples != "network":
            changes["layout"] = self.examples
        if self.reduction != "network":
            changes["reduction"] = self.reduction
        loss = {"output_reduction": self.output_reduction, "l2_form": self.l2_form, "l2_biases": self.l2_biases,
                "training_size": self.training_size}
        changes.update({name: value for name, value in loss.items()
                        if value is not None and getattr(network, name) != value})
        if changes.get("output_reduction") == "mean" and network.loss == "mse":
            del changes["output_reduction"]  # mse is a mean over the output units already
        try:
            return dataclasses.replace(network, **changes) if changes else network
        except SpecError as error:
            raise ValueError(error.args[0]) from None

    def to_user(self, params: dict) -> dict:
        shown = {}
        for name, value in params.items():
            if name.startswith("W") and self.weights == "in_out":
                value = value.T
            elif name.startswith("b"):
                value = {"vector": value.reshape(-1), "column": value.reshape(-1, 1),
                         "row": value.reshape(1, -1)}[self.biases]
            shown[name] = value
        return shown

    def targets_to_user(self, network: NetworkSpec, Y: np.ndarray) -> np.ndarray:
        """Y as the user's function takes it: as drawn, or (``targets="labels"``) class indices, shape (m,)."""
        if self.targets != "labels":
            return Y
        if network.widths[-1] == 1:
            return np.rint(Y.reshape(-1)).astype(np.int64)
        return np.argmax(Y, axis=0 if network.layout == "columns" else 1).astype(np.int64)

    def from_user(self, name: str, value: np.ndarray) -> np.ndarray:
        """A returned gradient in the network's own convention (W_k as n_k × n_{k−1})."""
        return value.T if name.startswith("W") and self.weights == "in_out" and value.ndim == 2 else value


# ------------------------------------------------------------------------------ the check


class _FailedExample(AssertionError):
    """A failing example; ``.failure`` holds it, its message is the report (composed when shown)."""

    def __init__(self, failure: "Failure"):
        super().__init__()
        self.failure = failure

    def __str__(self):
        return self.failure.report()


class BackpropMismatch(_FailedExample):
    """The user's gradients disagree with the proven ones on one example."""


class UserCodeNotFinite(BackpropMismatch):
    """The user's code gives NaN or ±inf where every proven value is finite, and is right elsewhere
    in that example: it overflows or divides by zero (at saturation, typically) — a finding of its
    own, apart from wrong formulas."""


class UserFunctionRaised(_FailedExample):
    """The user's function raised on an example (a type of its own: Hypothesis shrinks it apart)."""


class BackpropCheckFailed(AssertionError):
    """:func:`check_backprop` found failures, each shrunk to its smallest network (``.failures``)."""

    def __init__(self, failures: list):
        self.failures = failures
        super().__init__(_summary(failures))


@dataclass
class WrongGradient:
    """One gradient that disagrees with the proven one."""

    name: str  # "W2", "b1", "z3", "loss"
    claimed: np.ndarray | None  # as returned (after the weights convention), None if missing
    truth: np.ndarray
    problem: str = ""  # "missing", "shape (2, 3) where (2,) belongs", "not finite", or ""
    worst: tuple = ()  # index of the worst entry
    error: float = float("nan")  # |claimed − proven| at the worst entry
    allowed: float = float("nan")  # the tolerance at that entry
    relative: float = float("nan")  # ‖claimed − proven‖ / ‖proven‖
    diagnosis: str | None = None
    claimed_view: np.ndarray | None = None  # claimed, lined up with the truth (a bias as a column)
    written: str = ""  # the key as the user wrote it, for a key that names no quantity of the network
    exchanged: bool = False  # right in the place of the layer's other gradient (W_k for b_k)
    overflow: bool = False  # every wrong entry is NaN or ±inf where the proven value is finite

    @property
    def nameable(self) -> bool:
        """A wrong value whose slip ``diagnose`` may name (not a missing, stray or exchanged one)."""
        return self.claimed is not None and not self.written and not self.exchanged and not self.overflow and \
            not self.problem.startswith(("missing", "not numbers"))

    @property
    def symbol(self) -> str:
        if self.written:
            return f"returned key {self.written!r}"
        if self.name == "loss":
            return "J"
        quantity, layer = self.name[0], self.name[1:]
        return f"∂J/∂{quantity}{layer}" if quantity != "z" else f"δ{layer} = ∂J/∂z{layer}"

    def line(self) -> str:
        if self.problem:
            text = f"{self.symbol}: {self.problem}"
        else:
            entry = f"entry [{','.join(str(i + 1) for i in self.worst)}]" if self.worst else "it"
            claimed, true = np.asarray(self.claimed_view)[self.worst], np.asarray(self.truth)[self.worst]
            text = (f"{self.symbol} is wrong: {entry} is {claimed:.6g} where the proven value is {true:.6g} "
                    f"(off by {self.error:.3g}, tolerance {self.allowed:.3g}); relative error {self.relative:.3g}")
        if self.diagnosis:
            text += f"\n      likely slip: {self.diagnosis}"
        return text


def _compare(name: str, claimed, truth: np.ndarray, allowed: np.ndarray) -> WrongGradient | None:
    quantity = name[0] if name != "loss" else "loss"
    truth, allowed = np.asarray(truth, dtype=float), np.asarray(allowed, dtype=float)
    if quantity == "b":
        truth, allowed = truth.reshape(-1, 1), allowed.reshape(-1, 1)
    if claimed is None:
        return WrongGradient(name, None, truth, problem="missing from what your function returned")
    claimed = np.asarray(claimed)
    if not np.issubdtype(claimed.dtype, np.number):
        return WrongGradient(name, claimed, truth, problem=f"not numbers but {claimed.dtype}")
    fitting = [v for v in views(claimed, quantity) if v.shape == truth.shape]
    if not fitting:
        shape = "()" if truth.ndim == 0 else str(truth.shape if quantity != "b" else (truth.shape[0],))
        return WrongGradient(name, claimed, truth, problem=f"shape {claimed.shape} where {shape} belongs")
    view = fitting[0].astype(float)
    with np.errstate(invalid="ignore"):
        difference = np.abs(view - truth)
        bad = ~(difference <= allowed)  # NaN counts as bad
    if not np.any(bad):
        return None
    with np.errstate(all="ignore"):
        ratio = np.where(bad, np.nan_to_num(difference / np.maximum(allowed, 1e-300), nan=np.inf), -1)
        norm = float(np.linalg.norm(truth))
        relative = float(np.linalg.norm(np.nan_to_num(view - truth, nan=np.inf))) / norm if norm else float("inf")
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape) if ratio.ndim else ()
    wrong = WrongGradient(name, claimed, truth, worst=tuple(int(i) for i in worst),
                          error=float(np.asarray(difference)[worst]), allowed=float(np.asarray(allowed)[worst]),
                          relative=relative)
    wrong.claimed_view = view
    if not np.all(np.isfinite(view)):
        where = f"entry [{','.join(str(i + 1) for i in wrong.worst)}]" if wrong.worst else "it"
        wrong.problem = f"not finite ({where} is {view[worst]})"
        wrong.overflow = bool(np.all(~np.isfinite(view[bad])))  # every wrong entry is NaN or inf
    return wrong


def _least_precise(dtype, returned: dict) -> np.dtype:
    """The dtype the user's numbers were computed in: the given one, or a less precise one returned."""
    candidates = [np.dtype(dtype)]
    for value in returned.values():
        try:
            candidates.append(np.asarray(value).dtype)
        except ValueError:  # ragged: reported as a wrong shape
            pass
    return max((d for d in candidates if np.issubdtype(d, np.floating)), key=unit_roundoff)


def _accepts(fn: Callable, name: str) -> bool:
    try:
        parameters_ = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind == p.VAR_KEYWORD for p in parameters_)


class Returned(dict):
    """The user's gradients by name (``"W1"``, ``"b1"``, ``"z1"``, ``"loss"``); ``written`` maps each
    name to the key as written (``"dW1"``); ``pair``: they came as a (nabla_b, nabla_w) pair of lists."""

    def __init__(self, *args, written=None, pair=False):
        super().__init__(*args)
        self.written = written or {}
        self.pair = pair


def _returned_gradients(result) -> Returned:
    """The user's return value as ``{"W1": …, "b1": …, ["z1": …,] ["loss": …]}``.

    Accepted: that dict (keys W1 or dW1, …), ``(loss, dict)`` or ``(dict, loss)``, or a pair of
    lists ``(nabla_b, nabla_w)`` — biases first, layer 1 first, as in Nielsen's network.py.
    """
    loss, pair = None, False
    if isinstance(result, tuple) and len(result) == 2 and any(isinstance(part, dict) for part in result):
        grads, loss = (result[0], result[1]) if isinstance(result[0], dict) else (result[1], result[0])
    elif isinstance(result, tuple) and len(result) == 2 and all(isinstance(p, (list, tuple)) for p in result):
        grads = {**{f"b{k}": b for k, b in enumerate(result[0], 1)}, **{f"W{k}": w for k, w in enumerate(result[1], 1)}}
        pair = True
    elif isinstance(result, dict):
        grads = result
    else:
        raise TypeError("your function must return {'W1': dJ/dW1, 'b1': dJ/db1, ...}, (loss, that dict) or "
                        f"(nabla_b, nabla_w) as two lists, not {type(result).__name__}")
    named, written = {}, {}
    for key, value in grads.items():
        name = key[1:] if isinstance(key, str) and key[:1] == "d" and key[1:2] in ("W", "b", "z") else key
        if name in named:  # W1 and dW1 both: the second is reported as a stray key
            name = key
        named[name], written[name] = value, key if isinstance(key, str) else repr(key)
    if loss is not None:
        named["loss"], written["loss"] = loss, "loss"
    return Returned(named, written=written, pair=pair)


def _known_names(network: NetworkSpec) -> set:
    return {f"{q}{k}" for k in range(1, network.depth + 1) for q in "Wbz"} | {"loss"}


def _exchanged(wrong: list, returned: Returned, problem: Problem, convention: Convention, allowed: dict,
               reference: dict) -> list:
    """Where W_k and b_k are both wrong but each is right in the other's place, one finding saying so."""
    by_name = {w.name: w for w in wrong}
    for k in range(1, problem.network.depth + 1):
        dW, db = by_name.get(f"W{k}"), by_name.get(f"b{k}")
        if dW is None or db is None or dW.claimed is None or db.claimed is None:
            continue
        as_W = convention.from_user(f"W{k}", np.asarray(returned[f"b{k}"]))
        if as_W.shape != reference[f"W{k}"].shape and as_W.size == reference[f"W{k}"].size:
            as_W = as_W.reshape(reference[f"W{k}"].shape)  # a bias-shaped (n_k,) in W_k's (n_k, 1) place
        if _compare(f"W{k}", as_W, reference[f"W{k}"], allowed[f"W{k}"]) is not None or \
                _compare(f"b{k}", np.asarray(returned[f"W{k}"]), reference[f"b{k}"], allowed[f"b{k}"]) is not None:
            continue
        if returned.pair:
            dW.problem = (f"your pair's lists are exchanged at layer {k}: the first list holds ∂J/∂W{k}, the "
                          f"second ∂J/∂b{k} (a pair is read biases first, (nabla_b, nabla_w))")
        else:
            shown_W, shown_b = returned.written.get(f"W{k}", f"W{k}"), returned.written.get(f"b{k}", f"b{k}")
            dW.problem = (f"exchanged with ∂J/∂b{k}: your {shown_W!r} holds ∂J/∂b{k} "
                          f"and your {shown_b!r} holds ∂J/∂W{k}")
        dW.exchanged = True
        wrong = [w for w in wrong if w is not db]
    return wrong


def _keywords(user_fn: Callable, problem: Problem) -> dict:
    """``network=`` if the function takes it; ``penalty=`` for networks with an L2 penalty."""
    keywords = {}
    if _accepts(user_fn, "network"):
        keywords["network"] = problem.network
    if problem.network.l2:
        if not _accepts(user_fn, "penalty"):
            raise TypeError("this network has an L2 penalty: your function must accept penalty=λ")
        keywords["penalty"] = problem.penalty
        if problem.network.training_size is not None and _accepts(user_fn, "training_size"):
            keywords["training_size"] = problem.network.training_size
    return keywords


def _call(user_fn: Callable, problem: Problem, convention: Convention, keywords: dict):
    """The user's function on copies: an update in place must not change the reference's inputs."""
    params = {name: value.copy() for name, value in convention.to_user(problem.params).items()}
    Y = convention.targets_to_user(problem.network, problem.Y)
    return user_fn(params, problem.X.copy(), Y.copy(), **keywords)


def _wrong_gradients(problem: Problem, returned: dict, convention: Convention, dtype) -> list:
    network, params, X, Y, penalty = problem
    reference = gradients(network, params, X, Y, penalty)
    allowed = tolerances(network, params, X, Y, penalty, _least_precise(dtype, returned))
    names = [f"{q}{k}" for k in range(1, network.depth + 1) for q in ("W", "b")]
    names += [f"z{k}" for k in range(1, network.depth + 1) if f"z{k}" in returned]
    wrong = []
    for name in names:
        claimed = returned.get(name)
        claimed = None if claimed is None else convention.from_user(name, np.asarray(claimed))
        mismatch = _compare(name, claimed, reference[name], allowed[name])
        if mismatch is not None:
            wrong.append(mismatch)
    if "loss" in returned:
        with np.errstate(all="ignore"):
            true_loss = numeric_loss(network, params, X, Y, penalty)
        if np.isfinite(true_loss):  # the reference's plain log(σ) overflows before a stable user's does
            mismatch = _compare("loss", returned["loss"], true_loss, allowed["loss"])
            if mismatch is not None:
                wrong.append(mismatch)
    wrong = _exchanged(wrong, returned, problem, convention, allowed, reference)
    known = _known_names(network)
    written = getattr(returned, "written", {})
    layers = f"W1…W{network.depth}, b1…b{network.depth}" if network.depth > 1 else "W1, b1"
    for name in returned:
        if name not in known:
            key = written.get(name, str(name))
            wrong.append(WrongGradient(str(name), returned[name], np.asarray(np.nan), written=key,
                                       problem=f"names no quantity of this network (it has {layers}, "
                                               f"optionally z1…, loss): a stray gradient, or a misnamed one"))
    return wrong


@dataclass
class Failure:
    """One failing example: wrong gradients, or an exception from the user's function."""

    problem: Problem
    convention: Convention
    dtype: np.dtype
    user_fn: Callable | None = None
    wrong: list = field(default_factory=list)
    raised: BaseException | None = None
    kinks: bool = False  # found among examples drawn at kinks
    searching: bool = False  # found by check_backprop, which has not finished shrinking yet
    _report: str | None = field(default=None, repr=False)

    @property
    def network(self) -> NetworkSpec:
        return self.problem.network

    @property
    def size(self) -> tuple:
        n = self.network
        return (n.depth, sum(n.widths), n.batch)

    def diagnose(self) -> None:
        """Name the slip behind each wrong gradient — only a slip that explains it here (when one
        does) and at fresh, non-degenerate examples of the same network too, refuted by none.

        At a shrunk example two slips can give the same value by accident (W = b = 0 makes z = 0,
        where a missing g′ and ReLU′(0) taken as 1 coincide; saturation makes σ′ vanish): the
        fresh examples are drawn away from saturation and, unless the failure was found at kinks,
        away from kinks.  Slips that survive together are reported as a tie.
        """
        pending = [w for w in self.wrong if w.name != "loss" and w.nameable and w.diagnosis is None]
        if not pending:
            return
        here = {w.name: self._outcomes(self.problem, w.name, w.claimed_view if w.claimed_view is not None
                                       else np.asarray(w.claimed)) for w in pending}
        confirmed = {w.name: {} for w in pending}  # ordered sets: dicts of phrase -> None
        refuted = {w.name: {} for w in pending}
        if self.user_fn is not None:
            for seed in range(4):
                problem = sample_problem(self.network, 1000 + seed, dtype=self.dtype, kinks=self.kinks,
                                         targets=self.convention.targets)
                if problem is None:
                    continue
                try:
                    with np.errstate(all="ignore"):
                        returned = _returned_gradients(_call(self.user_fn, problem, self.convention,
                                                             _keywords(self.user_fn, problem)))
                except Exception:  # noqa: BLE001 — the user's code; its failure is reported elsewhere
                    continue
                for wrong in pending:
                    claimed = returned.get(wrong.name)
                    try:
                        claimed = None if claimed is None else np.asarray(
                            self.convention.from_user(wrong.name, np.asarray(claimed)), dtype=float)
                    except (TypeError, ValueError):
                        claimed = None
                    if claimed is None or not np.all(np.isfinite(claimed)):
                        continue
                    for phrase, explains in (self._outcomes(problem, wrong.name, claimed) or {}).items():
                        if explains:
                            confirmed[wrong.name][phrase] = None
                        elif explains is False:
                            refuted[wrong.name][phrase] = None
        for wrong in pending:
            matched = [p for p, explains in (here[wrong.name] or {}).items() if explains]
            candidates = matched or list(confirmed[wrong.name])
            named = [p for p in candidates if p in confirmed[wrong.name] and p not in refuted[wrong.name]]
            if len(named) == 1:
                wrong.diagnosis = named[0]
            elif named:
                wrong.diagnosis = named[0] + "".join(f", or equally {p}" for p in named[1:]) + \
                    " (these slips give the same values on this network)"

    def _compose_overflow(self, head: str) -> str:
        """NaN/inf from a formula that is right: say where it breaks, and whether it is right elsewhere."""
        problem = self.problem
        where = "at saturation" if saturated_units(problem.network, problem.params, problem.X, self.dtype) \
            else "at this example"
        lines = [f"{head}: your code overflows or divides by zero {where}: it gives NaN or inf where the proven "
                 f"values are finite (the finite entries are right)"]
        lines += [f"  {wrong.line()}" for wrong in self.wrong]
        right, tried = self._right_elsewhere()
        if tried:
            lines.append(f"  on {tried} unsaturated example{'s' if tried != 1 else ''} of this network it is "
                         + ("right: the formula is right, its evaluation is not stable" if right == tried else
                            f"wrong on {tried - right}: a wrong formula too"))
        lines.append("  example: " + _example_text(problem, self.convention))
        return "\n".join(lines)

    def _right_elsewhere(self) -> tuple:
        """(examples where the user's gradients are all right, examples tried): fresh, unsaturated ones."""
        right = tried = 0
        if self.user_fn is None:
            return right, tried
        for seed in range(3):
            problem = sample_problem(self.network, 2000 + seed, dtype=self.dtype, kinks=self.kinks,
                                     targets=self.convention.targets)
            if problem is None:
                continue
            try:
                with np.errstate(all="ignore"):
                    returned = _returned_gradients(_call(self.user_fn, problem, self.convention,
                                                         _keywords(self.user_fn, problem)))
                    wrong = _wrong_gradients(problem, returned, self.convention, self.dtype)
            except Exception:  # noqa: BLE001 — the user's code
                continue
            tried += 1
            right += not wrong
        return right, tried

    def _outcomes(self, problem: Problem, name: str, claimed) -> dict | None:
        if claimed is None:
            return None
        network, params, X, Y, penalty = problem
        with np.errstate(all="ignore"):
            return slip_outcomes(network, params, X, Y, name[0], int(name[1:]), np.asarray(claimed), penalty)

    def report(self) -> str:
        if self.searching:  # Hypothesis shows every example it shrinks through: no diagnosis for those
            return f"network {self.network.describe()}: {len(self.wrong) or 'an exception'} (still shrinking)"
        if self._report is None:
            self._report = self._compose()
        return self._report

    def _compose(self) -> str:
        network = self.network
        head = f"network {network.describe()}, {np.dtype(self.dtype).name}"
        if self.raised is not None:
            message = str(self.raised).strip().splitlines()[0] if str(self.raised).strip() else ""
            text = f"{head}: your function raised {type(self.raised).__name__}: {message}"
            if isinstance(self.raised, ValueError) and any(w in message for w in ("shape", "mismatch", "broadcast", "align")):
                text += "\n  (shapes clash: a transpose missing or extra, or a layer index off by one?)"
            return text
        if self.wrong and all(w.overflow for w in self.wrong):
            return self._compose_overflow(head)
        self.diagnose()
        count = len(self.wrong)
        lines = [f"{head}: {count} value{'s disagree' if count != 1 else ' disagrees'} with the proven ones"]
        lines += [f"  {wrong.line()}" for wrong in self.wrong]
        lines.append("  example: " + _example_text(self.problem, self.convention))
        return "\n".join(lines)


def saturated_units(network: NetworkSpec, params: dict, X, dtype) -> bool:
    """Some sigmoid, tanh or softmax unit is within a few roundoffs of its bound (0, ±1) in ``dtype``."""
    from .numeric import NumericNetwork

    with np.errstate(all="ignore"):
        net = NumericNetwork(network, params, X, np.zeros(1), 0.0 if network.l2 else None)
    margin = 4 * unit_roundoff(dtype)
    for k in range(1, network.depth + 1):
        name, A = network.activation(k).name, np.asarray(net.A[k], dtype=float)
        if name in ("sigmoid", "softmax") and np.any(np.minimum(A, 1 - A) <= margin):
            return True
        if name == "tanh" and np.any(1 - np.abs(A) <= margin):
            return True
    return False


def _example_text(problem: Problem, convention: Convention) -> str:
    shown = convention.to_user(problem.params)
    parts = [f"{name}={np.array2string(np.asarray(value), precision=4, separator=', ')}" for name, value in shown.items()]
    parts += [f"X={np.array2string(problem.X, precision=4, separator=', ')}"]
    if convention.targets == "labels":
        labels = convention.targets_to_user(problem.network, problem.Y)
        parts.append(f"labels={np.array2string(labels, separator=', ')}")
    else:
        parts.append(f"Y={np.array2string(problem.Y, precision=4, separator=', ')}")
    if problem.penalty is not None:
        parts.append(f"penalty={problem.penalty:.6g}")
    return " ".join(" ".join(parts).split())


def _summary(failures: list) -> str:
    count = len(failures)
    lines = ["check_backprop: 1 failure, shrunk to the smallest network that shows it:" if count == 1 else
             f"check_backprop: {count} distinct failures, each shrunk to the smallest network that shows it:"]
    for i, failure in enumerate(failures, 1):
        lines.append(f"{i}. " + failure.report())
    return "\n".join(lines)


def _check(user_fn: Callable, problem: Problem, convention: Convention, dtype, on_error: str,
           kinks: bool = False, searching: bool = False) -> None:
    """Raise BackpropMismatch on wrong gradients; on an exception from the user's function:
    ``"raise"`` it, ``"report"`` it as UserFunctionRaised, or ``"skip"`` the example."""
    keywords = _keywords(user_fn, problem)
    try:
        result = _call(user_fn, problem, convention, keywords)
    except Exception as error:  # noqa: BLE001 — the user's code
        if on_error == "raise":
            raise
        if on_error == "skip":
            hypothesis.reject()
        raise UserFunctionRaised(Failure(problem, convention, dtype, user_fn, raised=error, kinks=kinks,
                                         searching=searching)) from error
    returned = _returned_gradients(result)
    wrong = _wrong_gradients(problem, returned, convention, dtype)
    if wrong:
        kinks = kinks or not clear_of_kinks(problem.network, problem.params, problem.X, problem.Y, dtype)
        if all(w.overflow for w in wrong):
            raise UserCodeNotFinite(Failure(problem, convention, dtype, user_fn, wrong=wrong, kinks=kinks,
                                            searching=searching))
        raise BackpropMismatch(Failure(problem, convention, dtype, user_fn, wrong=wrong, kinks=kinks,
                                       searching=searching))


def _one_hot(network: NetworkSpec, Y) -> np.ndarray:
    """Targets given as class indices (shape (m,)) as the one-hot Y of ``network``'s layout."""
    Y = np.asarray(Y)
    if Y.ndim != 1 or not np.issubdtype(Y.dtype, np.integer):
        return Y
    nL = network.widths[-1]
    if Y.size and (Y.min() < 0 or Y.max() >= max(nL, 2) or (nL == 1 and Y.max() > 1)):
        raise ValueError(f"labels must be class indices in 0..{max(nL, 2) - 1}, got {Y.tolist()}")
    onehot = Y[None, :].astype(float) if nL == 1 else np.eye(nL)[:, Y]
    return onehot if network.layout == "columns" else onehot.T


def assert_backprop(user_fn: Callable, network: NetworkSpec, params: dict, X, Y, penalty: float | None = None,
                    *, dtype=None, examples: str = "columns", weights: str = "out_in", reduction: str = "mean",
                    biases: str = "vector", targets: str = "soft", output_reduction: str | None = None,
                    l2_form: str | None = None, l2_biases: bool | None = None,
                    training_size: int | None = None) -> None:
    """Check one example; raise :class:`BackpropMismatch` (an AssertionError) naming every wrong gradient.

    For use inside your own ``@given`` test, e.g. ``assert_backprop(my_backprop, *problem)`` with
    ``problem`` drawn from :func:`problems`.  ``params``, ``X``, ``Y`` follow ``network``'s layout
    (with ``targets="labels"``, Y may be one-hot or the class indices); the keywords say how your
    function sees them.  ``dtype`` defaults to the parameters' dtype.
    """
    convention = Convention(examples, weights, reduction, biases, targets, output_reduction, l2_form, l2_biases,
                            training_size)
    adapted = convention.adapt(network)
    X, Y = np.asarray(X), _one_hot(network, Y)
    if adapted.layout != network.layout:
        X, Y = X.T, Y.T
    dtype = np.dtype(dtype) if dtype is not None else np.asarray(params["W1"]).dtype
    if not np.issubdtype(dtype, np.floating):
        dtype = np.dtype(np.float64)
    problem = Problem(adapted, {k: _cast(v, dtype) for k, v in params.items()}, _cast(X, dtype), _cast(Y, dtype),
                      penalty)
    _check(user_fn, problem, convention, dtype, on_error="raise")


def check_backprop(user_fn: Callable, network_or_strategy=None, *, max_examples: int = 100, dtype="float64",
                   saturated: bool = False, kinks: bool = False, seed: int | None = None,
                   settings: hypothesis.settings | None = None, examples: str = "columns",
                   weights: str = "out_in", reduction: str = "mean", biases: str = "vector",
                   targets: str = "soft", output_reduction: str | None = None, l2_form: str | None = None,
                   l2_biases: bool | None = None, training_size: int | None = None) -> None:
    """Check ``user_fn`` on ``max_examples`` Hypothesis-drawn problems; raise :class:`BackpropCheckFailed`.

    ``network_or_strategy`` is a strategy (default :func:`networks`) or one :class:`NetworkSpec`.
    ``targets``: ``"soft"`` (any targets the loss allows), ``"onehot"`` (each example one class: Y's
    column is e_c, or y = c ∈ {0, 1} with one output unit) or ``"labels"`` (the same, but your
    function gets the class indices, an integer array of shape (m,), in place of Y).  Each
    distinct failure (a wrong gradient; an exception, by where it was raised) is shrunk to the
    smallest network that shows it and reported with the wrong gradients, by how much, and the
    likely slip.  ``seed`` makes the run repeatable; ``settings`` overrides Hypothesis's.
    Not for use inside a ``@given`` test: use :func:`assert_backprop` there.
    """
    convention = Convention(examples, weights, reduction, biases, targets, output_reduction, l2_form, l2_biases,
                            training_size)
    if l2_form == "lambda/2n" and training_size is None:
        raise ValueError("l2_form='lambda/2n' needs the training-set size n: give training_size=")
    dtype = np.dtype(dtype)
    strategy = problems(_network_strategy(network_or_strategy).map(convention.adapt), dtype=dtype, saturated=saturated,
                        kinks=kinks, targets=targets)
    chosen = settings if settings is not None else hypothesis.settings(
        max_examples=max_examples, deadline=None, database=None, verbosity=hypothesis.Verbosity.quiet,
        phases=[p for p in hypothesis.Phase if p is not hypothesis.Phase.explain],  # our report explains
        suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.filter_too_much])

    def search(on_error: str) -> list:
        @chosen
        @hypothesis.given(strategy)
        def run(problem):
            _check(user_fn, problem, convention, dtype, on_error=on_error, kinks=kinks, searching=True)

        return _failures(run if seed is None else hypothesis.seed(seed)(run))

    failures = search("report")
    if failures and all(f.raised is not None for f in failures):
        # Exceptions shrink to the networks where shapes clash first (a missing transpose crashes
        # on non-square W): search again among the examples where the function returns, for a
        # wrong value whose slip can be named.
        try:
            failures += search("skip")
        except hypothesis.errors.Unsatisfiable:
            pass
    if failures:
        raise BackpropCheckFailed(sorted(failures, key=lambda f: f.size))


def _failures(run: Callable) -> list:
    """Run a Hypothesis test; the failures it found (several distinct ones come as a group)."""
    failures = []
    try:
        run()
    except _FailedExample as error:
        failures = [error.failure]
    except BaseException as error:  # noqa: BLE001 — a group, or not ours: then re-raised
        inner = list(getattr(error, "exceptions", ()))
        if not inner or not all(isinstance(e, _FailedExample) for e in inner):
            raise
        failures = [e.failure for e in inner]
    for failure in failures:
        failure.searching = False
    return failures
