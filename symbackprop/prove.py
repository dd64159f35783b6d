"""Verdicts: proved / refuted / ill-formed / undecided — and ``proved`` only from an exact zero.

Deciding ``lhs = rhs`` for explicit matrices:

1. Evaluate ``lhs − rhs`` entry by entry in the ring of rational functions whose generators are
   the parameters, the data and every atom (σ(z), tanh(z), eᶻ, log u, …).  If every numerator is
   the zero polynomial, the identity holds wherever the denominators (σ, 1−σ, Σeᶻ, …: never 0)
   are defined — a proof, provided every activation rule used is itself a proved lemma.
2. A non-zero normal form is *not* a refutation (atoms satisfy relations the ring ignores).
   After unfolding identity atoms, look for a rational point where the two sides certifiably
   differ — exact ``Fraction`` arithmetic, or 256-bit interval arithmetic with disjoint
   enclosures.  Such a point is a refutation anyone can re-evaluate.
3. Otherwise ``undecided``; numeric agreement is reported as such, never as a proof.

Every obligation runs under a time budget; running out gives ``undecided``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from fractions import Fraction

import sympy

from . import budget, layerwise, limits, rules
from .derive import QUANTITIES, backprop, direct
from .evaluate import (Evaluation, ExactDomain, IntervalDomain, RingDomain, Unsupported,
                       interval_precision)
from .matrices import Mat, shape_text
from .model import Instance
from .network import Network, NetworkSpec
from .polys import DegreeOverflow, generators_of

PROVED, REFUTED, ILL_FORMED, UNDECIDED = "proved", "refuted", "ill-formed", "undecided"
EXACT_METHOD = "exact: rational normal form over activation atoms"
INSTANTIATED = "general, instantiated"  # the scope of a gradient that follows from the general proof
DEFAULT_TIMEOUT = 60.0


@dataclass
class Verdict:
    status: str
    scope: str = "instance"
    method: str = ""
    seconds: float = 0.0
    message: str = ""
    counterexample: dict | None = None
    notes: list = field(default_factory=list)
    slip: str | None = None  # for a refutation: the textbook slip that explains it, if one does

    @property
    def proved(self) -> bool:
        return self.status == PROVED

    def __repr__(self) -> str:
        detail = self.method if self.proved else self.message
        return f"<Verdict {self.status} ({self.scope}, {self.seconds:.2f} s){': ' + _clip(detail) if detail else ''}>"

    def to_dict(self) -> dict:
        return {"verdict": self.status, "scope": self.scope, "method": self.method,
                "seconds": round(self.seconds, 4), "message": self.message,
                "counterexample": self.counterexample, "notes": list(self.notes), "likely_slip": self.slip}


def _clip(text: str, width: int = 70) -> str:
    """A one-line excerpt for a repr."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


# ------------------------------------------------------------------------------------ lemmas

_lemma_cache: dict = {}


def elementary(expr):
    """``expr`` with every atom replaced by its definition, until only SymPy's functions remain."""
    for _ in range(8):
        mapping = {}
        for atom in expr.atoms(rules.Atom):
            rule = atom.rule
            if rule.unfold is not None:
                mapping[atom] = rule.unfold(atom)
            elif rule.definition is not None:
                mapping[atom] = rule.definition(*atom.args)
        if not mapping:
            return expr
        expr = expr.xreplace(mapping)
    return expr


def needs_lemma(row: rules.Activation) -> bool:
    return row.derivative_rule is not None or row.partial_rule is not None


def lemma_statement(row: rules.Activation, width: int | None = None) -> str:
    if row.vector:
        return f"∂ softmax_i/∂z_j = ŷ_i((i = j) − ŷ_j) for n = {width}"
    if row.definition is None:
        return f"{row.name}′ is the derivative of {row.name} (definition)"
    return f"d/dz {row.name}(z) = {row.derivative_text}"


def prove_lemma(row: rules.Activation, width: int | None = None, timeout: float | None = 20.0) -> Verdict:
    """Prove the row's closed-form derivative equal to the derivative of its definition."""
    cached = _lemma_cache.get((row, width))
    if cached is not None:
        return cached
    started = time.perf_counter()
    if not needs_lemma(row) or (row.definition is None and not row.vector):
        verdict = Verdict(PROVED, "general", "definition", message=lemma_statement(row))
    else:
        try:
            with budget.budget(timeout):
                verdict = _prove_vector_lemma(row, width) if row.vector else _prove_lemma(row)
        except budget.OutOfTime:
            verdict = Verdict(UNDECIDED, "general", message=f"ran out of the {timeout:g} s budget")
    verdict.seconds = time.perf_counter() - started
    _lemma_cache[row, width] = verdict
    return verdict


def _zero_after_exp_substitution(difference, variables) -> bool:
    """cancel(difference) = 0 once every exp(v) is a positive symbol t_v (a rational identity)."""
    difference = difference.rewrite(sympy.exp)
    for v in variables:
        difference = difference.subs(sympy.exp(v), sympy.Symbol(f"t_{v}", positive=True))
    return sympy.cancel(difference) == 0


def _prove_lemma(row: rules.Activation) -> Verdict:
    x = sympy.Symbol("x", real=True)
    p = sympy.Symbol("p", positive=True)
    statement = lemma_statement(row)
    if row.kink:
        # Away from 0 the function is smooth: check x = p > 0 and x = −p < 0 separately.
        for sign in (1, -1):
            lhs = sympy.diff(row.definition(sign * p), p) / sign
            rhs = elementary(row.derivative(sign * p))
            if sympy.simplify(lhs - rhs) != 0:
                return _lemma_counterexample(row, x, statement) or Verdict(
                    UNDECIDED, "general", message=f"{statement}: not shown for {'x > 0' if sign > 0 else 'x < 0'}")
        at_zero = row.params[-1] if row.params else 0
        return Verdict(PROVED, "general", "by cases x > 0, x < 0",
                       message=f"{statement} for x ≠ 0 (the value at 0 is the convention {at_zero})")
    difference = sympy.diff(row.definition(x), x) - elementary(row.derivative(x))
    if _zero_after_exp_substitution(difference, [x]):
        return Verdict(PROVED, "general", "cancel after exp(x) = t", message=statement)
    if sympy.simplify(difference) == 0:
        return Verdict(PROVED, "general", "simplify", message=statement)
    return _lemma_counterexample(row, x, statement) or Verdict(
        UNDECIDED, "general", message=f"{statement}: not reduced to 0 and no counterexample found")


def _prove_vector_lemma(row: rules.Activation, width: int) -> Verdict:
    zs = sympy.symbols(f"z1:{width + 1}", real=True)
    statement = lemma_statement(row, width)
    for i in range(width):
        node = row.atom(i, *zs)
        definition = elementary(node)
        for j in range(width):
            difference = sympy.diff(definition, zs[j]) - elementary(row.partial(node, j + 2))
            if not _zero_after_exp_substitution(difference, zs):
                return Verdict(UNDECIDED, "instance", message=f"{statement}: entry ({i + 1},{j + 1}) not reduced to 0")
    return Verdict(PROVED, "instance", "cancel after exp(z_j) = t_j", message=statement)


def _lemma_counterexample(row, x, statement) -> Verdict | None:
    lhs = sympy.diff(row.definition(x), x)
    rhs = elementary(row.derivative(x))
    for value in (Fraction(1, 3), Fraction(-2, 3), Fraction(3, 2), Fraction(-5, 2), Fraction(1, 7)):
        with interval_precision():
            evaluation = Evaluation(IntervalDomain(), {x: IntervalDomain().const(value)})
            try:
                left, right = evaluation.value(lhs), evaluation.value(rhs)
            except (ArithmeticError, Unsupported):
                continue
            if left.b < right.a or right.b < left.a:
                return Verdict(REFUTED, "general", "interval arithmetic", message=f"{statement} is false",
                               counterexample={"point": {"x": str(value)},
                                               "lhs": _interval_text(left), "rhs": _interval_text(right)})
    return None


# ---------------------------------------------------------------------------- the decider


def _interval_text(value) -> str:
    """Midpoint to 25 digits and the enclosure's radius, e.g. ``-0.000331266… ± 1.0e-78``."""
    import mpmath

    with mpmath.workprec(IntervalDomain.PRECISION):
        low, high = (mpmath.mpf(end) for end in value._mpi_)
        return f"{mpmath.nstr((low + high) / 2, 25)} ± {mpmath.nstr((high - low) / 2, 2)}"


def generic_choices(rng: random.Random, rows) -> tuple[dict, dict]:
    """Concrete cubics standing in for generic functions g, with g′ their exact derivative.

    A claim that fails for one differentiable g is refuted; the cubic is part of the witness.
    """
    choices, shown = {}, {}
    x = sympy.Symbol("x")
    for row in rows:
        if row.params[:1] != ("generic",) or row.derivative_of is not None:
            continue
        coefficients = [Fraction(rng.randint(-3, 3), rng.choice((2, 3))) for _ in range(3)]
        coefficients.append(Fraction(1, 3))
        coefficients[1] = coefficients[1] or Fraction(1)
        prime = row.derivative(x).func.rule
        choices[row.key] = coefficients
        choices[prime.key] = [k * c for k, c in enumerate(coefficients)][1:]
        polynomial = sum(sympy.Rational(c.numerator, c.denominator) * x ** k for k, c in enumerate(coefficients))
        shown[row.name] = str(polynomial)
    return choices, shown


class Decider:
    """Decides claimed identities about one model instance (``model.Instance``: a network, a model
    written as definitions, a layer), sharing all memoised work between its obligations."""

    def __init__(self, net: Instance, seed: int = 0):
        self.net = net
        self.domain = RingDomain()
        env = {eps: self.domain.zero for eps in net.perturbation}
        self.evaluation = Evaluation(self.domain, env)
        self.seed = seed

    def forget(self) -> None:
        """Drop the memoised values (after running out of memory they may be incomplete)."""
        self.domain = RingDomain()
        env = {eps: self.domain.zero for eps in self.net.perturbation}
        self.evaluation = Evaluation(self.domain, env)

    # ---- deciding
    def decide(self, lhs, rhs, *, timeout: float | None = DEFAULT_TIMEOUT, attempts: int = 12,
               memory: int | None = None) -> Verdict:
        """``lhs = rhs`` decided under ``timeout`` seconds and ``memory`` bytes (default:
        ``budget.default_memory()``); running out of either is ``undecided``, saying which."""
        started = time.perf_counter()
        memory = budget.default_memory() if memory is None else memory
        try:
            with budget.budget(timeout), budget.memory_budget(memory):
                verdict = self._decide(lhs, rhs, attempts)
        except budget.OutOfTime:
            verdict = Verdict(UNDECIDED, message=f"ran out of the {timeout:g} s budget")
        except MemoryError:
            self.forget()
            verdict = Verdict(UNDECIDED, message=f"ran out of the {budget.size_text(memory)} memory budget "
                                                 f"(--memory)")
        except DegreeOverflow as error:
            verdict = Verdict(UNDECIDED, message=f"normal form too large: {error}")
        except Unsupported as error:
            verdict = Verdict(UNDECIDED, message=str(error))
        finally:
            self.evaluation.partials.clear()  # derivatives are per obligation; values are shared
        verdict.seconds = time.perf_counter() - started
        return verdict

    def _decide(self, lhs, rhs, attempts: int) -> Verdict:
        lhs, rhs = _as_matrix(lhs), _as_matrix(rhs)
        if lhs.shape != rhs.shape:
            return Verdict(ILL_FORMED, message=f"shape mismatch: left side is {shape_text(lhs.shape)}, "
                                                f"right side is {shape_text(rhs.shape)}")
        d, ev = self.domain, self.evaluation
        residuals = []
        for i in range(lhs.rows):
            for j in range(lhs.cols):
                try:
                    difference = d.reduce(d.sub(ev.value(lhs[i, j]), ev.value(rhs[i, j])))
                except ZeroDivisionError:
                    return Verdict(ILL_FORMED, message=f"entry [{i + 1},{j + 1}] divides by an expression that is identically 0")
                if not difference.is_zero:
                    residuals.append((i, j, difference))
        if not residuals:
            return self._proved(unfolded=False)
        # Not zero with free atoms: a cheap counterexample search first, then the costlier
        # unfolding of atoms into their definitions (σ = 1/(1+e⁻ᶻ), …), which may prove it.
        refutation = self._search(lhs, rhs, residuals, attempts)
        if refutation.status == REFUTED:
            return refutation
        remaining = [(i, j, r) for i, j, r in ((i, j, self._unfold(r)) for i, j, r in residuals) if not r.is_zero]
        if not remaining:
            return self._proved(unfolded=True)
        return refutation

    def _unfold(self, value):
        """Substitute atoms that have a defining expression (id(z) = z, softmax = eᶻ/Σeᶻ, …)."""
        for _ in range(4):
            changed = False
            for index in sorted(generators_of(value.num)):
                rule, node = self.domain.atom_of_generator.get(index, (None, None))
                if rule is not None and rule.unfold is not None:
                    replacement = self.evaluation.value(rule.unfold(node))
                    value = self.domain.ring.substitute(value, index, replacement)
                    changed = True
            if not changed or value.is_zero:
                break
        return value

    def _proved(self, unfolded: bool) -> Verdict:
        keys = self.evaluation.rules_seen | self.evaluation.rules_differentiated
        lemmas = {key: prove_lemma(*key) for key in keys if needs_lemma(key[0])}
        unproved = sorted({row.name for (row, _), v in lemmas.items() if not v.proved})
        if unproved:
            return Verdict(UNDECIDED, method=EXACT_METHOD,
                           message=f"reduced to 0, but relies on the derivative rule of {', '.join(unproved)}, "
                                   f"which is not proved")
        rows = {row for row, _ in keys}
        notes = []
        kinks = sorted({row for row in rows if row.kink and row.derivative_of is None}, key=lambda r: r.name)
        if kinks:
            notes.append(f"{', '.join(r.name for r in kinks)}: holds wherever no pre-activation is exactly 0; "
                         f"the derivative at 0 is taken as {kinks[0].params[-1]} in both derivations")
        generic = sorted({row.name for row in rows if row.params[:1] == ("generic",) and row.derivative_of is None})
        if generic:
            notes.append(f"for every differentiable {', '.join(generic)}")
        method = EXACT_METHOD + (" (after unfolding atoms into their definitions)" if unfolded else "")
        return Verdict(PROVED, method=method, notes=notes)

    def _defined_at(self, point: dict, env_zero: dict, generic: dict) -> bool:
        """Whether the model's loss (hence its whole forward pass) has a value at ``point``: a
        refutation must be a point the model is defined at."""
        if self.net.J is None:
            return True
        try:
            values_at([self.net.J], {**env_zero, **point}, generic)
        except (ArithmeticError, Unsupported):
            return False
        return True

    def _search(self, lhs: Mat, rhs: Mat, residuals, attempts: int) -> Verdict:
        rng = random.Random(self.seed)
        env_zero = {eps: 0 for eps in self.net.perturbation}
        rows = {row for row, _ in self.evaluation.rules_seen | self.evaluation.rules_differentiated}
        agreed = 0
        for attempt in range(attempts):
            point = self.net.sample(rng)
            generic, shown = generic_choices(rng, rows)
            if not self._defined_at(point, env_zero, generic):
                continue  # the model itself is undefined there (a masked-out row, 0/0): not a witness
            for i, j, _ in residuals[:3]:
                try:
                    outcome = compare_at(lhs[i, j], rhs[i, j], point, env_zero, generic)
                except (ArithmeticError, Unsupported):
                    continue  # a kink, a zero denominator: try another point
                if outcome is None:
                    agreed += 1
                    continue
                left, right, arithmetic = outcome
                counterexample = {
                    "entry": f"[{i + 1},{j + 1}]",
                    "point": {str(s): str(v) for s, v in point.items()},
                    "lhs": left, "rhs": right, "arithmetic": arithmetic,
                }
                if shown:
                    counterexample["functions"] = shown
                note = self.net.witness_note()
                if note:
                    counterexample["note"] = note
                counterexample.update(compare_entries(lhs, rhs, {**env_zero, **point}, generic))
                factor = counterexample.get("factor")
                slip = factor_slip(Fraction(factor), getattr(self.net, "batch", 1)) if factor else None
                return Verdict(REFUTED, method="certified counterexample", counterexample=counterexample,
                               message=f"entry [{i + 1},{j + 1}] differs", slip=slip)
        total = sum(len(r.num) for _, _, r in residuals)
        message = f"{len(residuals)} entries not reduced to 0 ({total} terms)"
        if agreed:
            message += f"; the sides agree numerically at {agreed} sampled points (not a proof)"
        return Verdict(UNDECIDED, method=EXACT_METHOD, message=message)


def values_at(exprs, point: dict, generic: dict | None = None) -> tuple[list, bool]:
    """The values of ``exprs`` at an exact point (symbol → Fraction), in one evaluation:
    exact Fractions when no transcendental function occurs (second item True), else 256-bit
    mpmath intervals."""
    try:
        evaluation = Evaluation(ExactDomain(generic), {s: Fraction(v) for s, v in point.items()})
        return [evaluation.value(e) for e in exprs], True
    except rules.NotRational:
        pass
    with interval_precision():
        domain = IntervalDomain(generic)
        evaluation = Evaluation(domain, {s: domain.const(v) for s, v in point.items()})
        return [evaluation.value(e) for e in exprs], False


def compare_at(lhs, rhs, point, env_zero, generic):
    """Both sides at ``point``: (left, right, arithmetic) if certifiably different, else None."""
    (left, right), exact = values_at([lhs, rhs], {**env_zero, **point}, generic)
    if exact:
        return None if left == right else (str(left), str(right), "exact rational")
    if left.b < right.a or right.b < left.a:
        return _interval_text(left), _interval_text(right), "interval (256-bit, disjoint enclosures)"
    return None


SHOWN_ENTRIES = 12
_FACTORS = [Fraction(-1)] + [Fraction(sign * k) ** power for k in range(2, 65) for power in (1, -1)
                              for sign in (1, -1)]


def compare_entries(lhs: Mat, rhs: Mat, point: dict, generic=None) -> dict:
    """Both sides at a refuting point, entry by entry: how many entries there are, which differ
    (the first few), and ``factor`` c when left = c · right at every entry for a simple c
    (−1, ±k, ±1/k): the shortest description of a witness.  Interval values only suggest the
    factor (it is a hint, the refutation rests on the entry that certifiably differs)."""
    entries = [(i, j) for i in range(lhs.rows) for j in range(lhs.cols)]
    try:
        values, exact = values_at([lhs[e] for e in entries] + [rhs[e] for e in entries], point, generic)
    except (ArithmeticError, Unsupported):
        return {}
    left, right = values[:len(entries)], values[len(entries):]

    def apart(a, b) -> bool:
        return a != b if exact else (a.b < b.a or b.b < a.a)

    differing = [f"[{i + 1},{j + 1}]" for (i, j), a, b in zip(entries, left, right) if apart(a, b)]
    info = {"entries": len(entries), "shape": shape_text(lhs.shape), "differing": differing[:SHOWN_ENTRIES],
            "differing_count": len(differing)}
    if exact:
        ratios = {a / b for a, b in zip(left, right) if b != 0}
        consistent = len(ratios) == 1 and all(b != 0 or a == 0 for a, b in zip(left, right))
        factor = ratios.pop() if consistent else None
        factor = factor if factor in _FACTORS else None
    else:
        nonzero = any(not (0 in b) for b in right)
        factor = next((c for c in _FACTORS if nonzero and not any(apart(a, b * c.numerator / c.denominator)
                                                                  for a, b in zip(left, right))), None)
    if factor is not None:
        info["factor"] = str(factor)
    return info


def factor_slip(factor: Fraction, batch: int = 1) -> str:
    """The slip a constant factor between the sides suggests: a sign, a 1/m, a ½."""
    times = f"the left side is {factor} × the right side"
    size = abs(factor) if abs(factor) >= 1 else 1 / abs(factor)
    sign = "sign and " if factor < 0 and size != 1 else ""
    if size == 1:
        return "sign flipped: the two sides are exact negatives"
    if batch > 1 and size == batch:
        return f"{sign}1/m: {times} (m = {batch}: a 1/m missing on one side)"
    if size == 2:
        return f"{sign}factor 2: {times} (a ½ missing or doubled?)"
    return f"{sign}factor {size}: {times}"


def _as_matrix(value) -> Mat:
    if isinstance(value, Mat):
        return value
    return Mat([[value]])


# ------------------------------------------------------------------------- whole networks


QUANTITY_TEXT = {"z": "∂J/∂z", "W": "∂J/∂W", "b": "∂J/∂b"}


@dataclass
class QuantityResult:
    quantity: str
    layer: int
    verdict: Verdict

    def __repr__(self) -> str:
        return f"<QuantityResult {self.quantity}{self.layer}: {self.verdict.status}>"

    def to_dict(self) -> dict:
        return {"quantity": self.quantity, "layer": self.layer, **self.verdict.to_dict()}


@dataclass
class LemmaResult:
    name: str
    statement: str
    verdict: Verdict

    def __repr__(self) -> str:
        return f"<LemmaResult {self.name}: {self.verdict.status} — {_clip(self.statement, 60)}>"

    def to_dict(self) -> dict:
        return {"lemma": self.name, "statement": self.statement, **self.verdict.to_dict()}


@dataclass
class NetworkProof:
    spec: NetworkSpec
    lemmas: list
    results: list
    seconds: float
    general: object = None  # the general.GeneralProof instantiated, on the route "general, instantiated"

    @property
    def all_proved(self) -> bool:
        return all(r.verdict.proved for r in self.results) and all(l.verdict.proved for l in self.lemmas)

    @property
    def scope(self) -> str:
        """``instance`` (exact on the instance: layerwise or expanded) or ``general, instantiated``
        (an instance of the general proof)."""
        return INSTANTIATED if self.general is not None else "instance"

    def __repr__(self) -> str:
        proved = sum(r.verdict.proved for r in self.results)
        return (f"<NetworkProof {self.spec.describe()}: {proved} of {len(self.results)} gradients proved, "
                f"{sum(l.verdict.proved for l in self.lemmas)} of {len(self.lemmas)} lemmas, {self.seconds:.2f} s>")

    def to_dict(self) -> dict:
        spec = self.spec
        return {
            "network": {"widths": list(spec.widths), "hidden": spec.hidden if isinstance(spec.hidden, str) else list(spec.hidden),
                        "output": spec.output, "loss": spec.loss, "batch": spec.batch,
                        "reduction": spec.reduction, "layout": spec.layout, "l2": spec.l2},
            "lemmas": [l.to_dict() for l in self.lemmas],
            "results": [r.to_dict() for r in self.results],
            "scope": self.scope,
            "all_proved": self.all_proved,
            "seconds": round(self.seconds, 3),
        }


def lemma_rows(rows) -> list:
    """The rows whose derivative rules a derivation over ``rows`` relies on (with their derivative atoms)."""
    found: list = []

    def visit(row):
        if row in found or not needs_lemma(row):
            return
        found.append(row)
        if row.derivative_rule is not None:
            for atom in row.derivative(sympy.Symbol("x")).atoms(rules.Atom):
                visit(atom.rule)

    for row in rows:
        visit(row)
    return found


def lemmas_for(spec: NetworkSpec) -> list[tuple]:
    """The (rule, width) lemmas a network's derivations rely on: its activations and their derivatives."""
    return [(row, spec.widths[-1] if row.vector else None) for row in lemma_rows(spec.activations)]


ROUTES = ("layerwise", "expand")


def network_lemmas(spec: NetworkSpec) -> list[LemmaResult]:
    """The proved lemmas (activation rules and their derivatives) either exact route relies on."""
    return [LemmaResult(row.name, lemma_statement(row, width), prove_lemma(row, width))
            for row, width in lemmas_for(spec)]


def prove_network(spec: NetworkSpec, *, timeout: float | None = DEFAULT_TIMEOUT, claims: dict | None = None,
                  progress=None, seed: int = 0, memory: int | None = None, route: str | None = None) -> NetworkProof:
    """Prove exactly that the backprop recurrences (or the given ``claims``) equal the direct
    gradients of this instance, under ``timeout`` seconds and ``memory`` bytes (default:
    ``budget.default_memory()``) per obligation.

    ``route="layerwise"`` (the default for the tool's own backprop, ``claims is None``) decides
    the local identities of :mod:`layerwise` — the output delta, each layer's recurrence step
    and its parameter gradients, in fresh symbols — which by the chain rule prove the instance;
    their cost grows with the network's size, not its expansion.  If one of them is not proved,
    the expansion decides instead (its refutations are points of the network).
    ``route="expand"`` (always, for given ``claims``) expands the network and decides each
    gradient; a network whose expansion cannot fit the memory budget is refused up front with
    every gradient undecided.  :func:`general.prove_instance` takes the instance from the
    general proof instead, when that covers it.
    """
    started = time.perf_counter()
    route = route or ("layerwise" if claims is None else "expand")
    if route not in ROUTES:
        raise ValueError(f"route must be one of {', '.join(ROUTES)}, not {route!r}")
    if route == "layerwise" and claims is not None:
        raise ValueError("the layerwise route proves the tool's own backprop: given claims are expanded")
    memory = budget.default_memory() if memory is None else memory
    if limits.symbolic_problem(spec.widths, spec.batch):
        Network(spec)  # past the limits of any expansion: the SpecError that says which
    fallback = None
    if route == "layerwise":
        verdicts, local = prove_layerwise(spec, timeout=timeout, memory=memory, seed=seed, progress=progress)
        if all(v.proved for v in verdicts.values()):
            results = [QuantityResult(QUANTITY_TEXT[quantity], k, verdicts[quantity, k])
                       for k in range(spec.depth, 0, -1) for quantity in QUANTITIES]
            return NetworkProof(spec, network_lemmas(spec), results, time.perf_counter() - started)
        name, verdict = next((n, v) for n, v in local if not v.proved)
        fallback = f"layerwise: {name} not proved ({verdict.status}); decided by the expansion"
    proof = _prove_expanded(spec, timeout, claims, progress, seed, memory)
    if fallback:
        for result in proof.results:
            result.verdict.notes.append(fallback)
    proof.seconds = time.perf_counter() - started
    return proof


def prove_layerwise(spec: NetworkSpec, *, timeout=None, memory=None, seed: int = 0, progress=None):
    """Decide every local identity: ``{(quantity, k): Verdict}`` for the instance's gradients,
    each proved exactly when every local identity it relies on is, and the local verdicts
    ``[(name, Verdict)]``."""
    local, found = layerwise.obligations(spec)
    decider = Decider(local, seed=seed)
    locals_ = []
    failed: dict = {}
    seconds: dict = {}
    notes: list = []
    for name, covers, truth, claim in found:
        if progress:
            progress(name)
        verdict = decider.decide(truth, claim, timeout=timeout, memory=memory)
        locals_.append((name, verdict))
        for key in covers:
            seconds[key] = seconds.get(key, 0.0) + verdict.seconds
            if not verdict.proved:
                failed.setdefault(key, (name, verdict))
        notes.extend(note for note in verdict.notes if note not in notes)
    results = {}
    for k in range(spec.depth, 0, -1):
        for quantity in ("z", "W", "b"):
            if (quantity, k) in failed:
                name, verdict = failed[quantity, k]
                results[quantity, k] = Verdict(UNDECIDED, "instance", layerwise.METHOD, seconds[quantity, k],
                                               message=f"local identity not proved: {name}: "
                                                       f"{verdict.status}, {verdict.message}")
            else:
                results[quantity, k] = Verdict(PROVED, "instance", layerwise.METHOD, seconds[quantity, k],
                                               notes=list(notes))
    return results, locals_


def _prove_expanded(spec, timeout, claims, progress, seed, memory) -> NetworkProof:
    """Expand the network and decide each gradient (the route ``expand`` of :func:`prove_network`)."""
    started = time.perf_counter()
    try:
        budget.refuse_unless_fits(spec.widths, spec.batch, memory)
    except budget.TooLarge as error:  # refused before anything is built: every gradient undecided
        results = [QuantityResult(QUANTITY_TEXT[quantity], k, Verdict(UNDECIDED, message=str(error)))
                   for k in range(spec.depth, 0, -1) for quantity in QUANTITIES]
        return NetworkProof(spec, [], results, time.perf_counter() - started)
    net = Network(spec)
    lemma_results = network_lemmas(spec)
    truth = direct(net)
    claimed = claims if claims is not None else backprop(net)
    decider = Decider(net, seed=seed)
    results = []
    for k in range(spec.depth, 0, -1):
        for quantity in QUANTITIES:
            if progress:
                progress(f"{QUANTITY_TEXT[quantity]}{k}")
            verdict = decider.decide(truth[quantity, k], claimed[quantity, k], timeout=timeout, memory=memory)
            results.append(QuantityResult(QUANTITY_TEXT[quantity], k, verdict))
    return NetworkProof(spec, lemma_results, results, time.perf_counter() - started)
