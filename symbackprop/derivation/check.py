"""Checking a derivation file claim by claim, on the document's network and on extra instances.

The document's own network may hide a slip: with equal widths a missing transpose still
type-checks, with one example a missing 1/m is invisible, with two layers a recurrence over
hidden layers is never exercised.  So each claim is also checked on instances the tool chooses:
pairwise distinct widths, depth ≥ 3 for claims that range over layers, and, when the document
averages over a batch, a different batch size.  A claim is proved only if it is proved on every
instance; the report names them.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import random
import time
from dataclasses import dataclass, field

from fractions import Fraction

import numpy as np

from .. import budget, limits
from ..diagnose import diagnose
from ..evaluate import Unsupported
from ..matrices import Mat
from ..network import Network, NetworkSpec, SpecError
from ..prove import ILL_FORMED, INSTANTIATED, PROVED, REFUTED, UNDECIDED, Decider, Verdict, values_at
from . import model as build_model
from .language import LAYERED, ClaimError, Env, Scope, evaluate, is_range, parse, parse_range, show
from .loader import Claim, Derivation
from .notation import in_document, slip_notation

SEVERITY = {ILL_FORMED: 3, REFUTED: 2, UNDECIDED: 1, PROVED: 0}
WIDTH_POOL = (3, 5, 4, 2, 6, 7, 8, 9)


@dataclass
class Instance:
    spec: NetworkSpec
    labels: tuple | None
    reason: str
    chosen_by_tool: bool = False  # False: the document's own network (or the claim's override of it)

    @property
    def key(self):
        return (self.spec, self.labels)

    def describe(self) -> str:
        """Everything a verdict depends on, e.g. ``3-4-2 sigmoid/sigmoid, half_sse, batch 1 (mean),
        examples as columns (the document's network)``."""
        return f"{self._settings()} ({self.reason}{'; chosen by the tool' if self.chosen_by_tool else ''})"

    def where(self) -> str:
        if self.chosen_by_tool:
            return f"on a network the tool chose, not the document's: {self._settings()} ({self.reason})"
        return f"on {self.describe()}"

    def _settings(self) -> str:
        spec = self.spec
        hidden = spec.hidden if isinstance(spec.hidden, str) else ",".join(spec.hidden)
        activations = f"{hidden}/{spec.output}" if spec.depth > 1 else spec.output
        text = (f"{'-'.join(map(str, spec.widths))} {activations}, {spec.loss}, batch {spec.batch} "
                f"({spec.reduction}), examples as {spec.layout}")
        if spec.l2:
            text += ", L2 penalty"
        if any(row.name == "relu" for row in spec.activations) and spec.relu_at_zero != 0:
            text += f", relu'(0) = {spec.relu_at_zero}"
        if self.labels is not None:
            text += f", label {'/'.join(str(c + 1) for c in self.labels)}"
        return text

    def to_dict(self) -> dict:
        return {"instance": self.describe(), "chosen_by": "tool" if self.chosen_by_tool else "document"}


@dataclass
class ClaimResult:
    claim: Claim
    verdict: Verdict
    instances: list = field(default_factory=list)  # descriptions of the instances checked
    correction: dict | None = None
    decided_on: dict | None = None  # the instance a verdict other than proved comes from (Instance.to_dict)

    @property
    def slip(self) -> str | None:
        return self.verdict.slip

    def __repr__(self) -> str:
        expected = "" if self.expected else f", UNEXPECTED (expected {self.claim.expect})"
        return f"<ClaimResult {self.claim.id}: {self.verdict.status}{expected}>"

    @property
    def expected(self) -> bool:
        ok = self.verdict.status == self.claim.expect
        if self.correction is not None:
            ok = ok and self.correction["verdict"] == PROVED
        return ok

    def to_dict(self) -> dict:
        v = self.verdict
        return {"id": self.claim.id, "text": self.claim.text, "line": self.claim.line,
                "lhs": self.claim.lhs, "rhs": self.claim.rhs,
                "verdict": v.status, "expect": self.claim.expect, "scope": v.scope,
                "seconds": round(v.seconds, 4), "message": v.message, "counterexample": v.counterexample,
                "correction": self.correction, "method": v.method, "notes": v.notes,
                "instances": self.instances, "decided_on": self.decided_on, "likely_slip": self.slip}


@dataclass
class FileReport:
    derivation: Derivation
    results: list
    seconds: float

    def __repr__(self) -> str:
        counts = summarize([self])
        shown = ", ".join(f"{n} {status}" for status, n in counts.items() if n and status != "unexpected")
        unexpected = f"; {counts['unexpected']} unexpected" if counts["unexpected"] else ""
        return f"<FileReport {self.derivation.path}: {shown or 'no claims'}{unexpected}>"

    def to_dict(self) -> dict:
        d = self.derivation
        document = {"path": d.path, "title": d.title, "source": d.source, "errors": d.errors,
                    "claims": [r.to_dict() for r in self.results], "seconds": round(self.seconds, 3)}
        if d.extraction is not None:
            document["extraction"] = d.extraction
        return document


# -------------------------------------------------------------------------------- instances


def _distinct_widths(depth: int, base: tuple, offset: int) -> tuple:
    """Pairwise distinct widths for ``depth`` layers, differing from ``base``; a single output
    unit (binary classification) stays single."""
    keep_single_output = base[-1] == 1
    pool = [w for w in WIDTH_POOL if not (keep_single_output and w == 1)]
    for shift in range(offset, offset + len(pool)):
        rotated = pool[shift % len(pool):] + pool[:shift % len(pool)]
        widths = tuple(rotated[: depth + 1])
        if keep_single_output:
            widths = widths[:-1] + (1,)
        if widths != tuple(base) and (widths[-1] >= 2 or keep_single_output):
            return widths
    return tuple(base)  # pragma: no cover


@dataclass
class Uses:
    """What a claim touches, through the definitions it uses: it decides the instances checked."""

    over_layers: bool = False  # a layer range or the depth L: a deeper network exercises it
    label: bool = False  # the sparse label: every label value is checked
    sizes_named: str | None = None  # e.g. "W[1][1, 2] names an entry by number": meaningful at these sizes only
    layer_named: str | None = None  # e.g. "a[2] names a layer by number": meaningful at this depth only


def _numeric(node) -> bool:
    """An index written as a number (2, 1 + 1), not with a letter or a symbol (i, L, n[1])."""
    return not any(isinstance(sub, ast.Name) for sub in ast.walk(node))


def _uses(claim_nodes, derivation: Derivation, claim_range: str | None = None) -> Uses:
    """Walk the claim and, transitively, the definitions it uses."""
    names = {q: {n for n, b in derivation.bindings.items() if b.quantity == q} for q in ("depth", "label")}
    by_name = {}
    for definition in derivation.definitions:
        by_name.setdefault(definition.name, []).append(definition)
    layered = {n for n, b in derivation.bindings.items() if b.quantity in LAYERED} | \
        {d.name for d in derivation.definitions if d.layer is not None}
    uses = Uses(over_layers=claim_range is not None)
    ranges = [parse_range(claim_range)] if claim_range is not None else []
    seen, queue = set(), list(claim_nodes)
    while queue:
        node = queue.pop(0)  # the claim's sides first, then its definitions: the reasons name what it shows
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                uses.over_layers |= sub.id in names["depth"]
                uses.label |= sub.id in names["label"]
                if sub.id in by_name and sub.id not in seen:
                    seen.add(sub.id)
                    for definition in by_name[sub.id]:
                        uses.over_layers |= definition.range is not None
                        ranges += [definition.range] if definition.range is not None else []
                        if definition.layer is not None and _numeric(definition.layer):
                            uses.layer_named = uses.layer_named or f"{sub.id}[{show(definition.layer)}] is defined " \
                                                                   "for a layer given by number"
                        queue.append(definition.expr)
            elif isinstance(sub, ast.Subscript):
                layer = isinstance(sub.value, ast.Name) and sub.value.id in layered
                elements = sub.slice.elts if isinstance(sub.slice, ast.Tuple) else [sub.slice]
                if layer and _numeric(sub.slice):
                    uses.layer_named = uses.layer_named or f"{show(sub)} names a layer by number"
                elif not layer and any(not isinstance(e, ast.Slice) and _numeric(e) for e in elements):
                    uses.sizes_named = uses.sizes_named or f"{show(sub)} names an entry by number"
            elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id == "ones" \
                    and sub.args and _numeric(sub.args[0]):
                uses.sizes_named = uses.sizes_named or f"{show(sub)} gives a size by number"
            elif is_range(sub):  # an index sum's k in a..b (a | b once parsed)
                span = sub.comparators[0]
                if _numeric(span.left) and _numeric(span.right):
                    uses.sizes_named = uses.sizes_named or (f"the index sum over {sub.left.id} in "
                                                            f"{show(span.left)}..{show(span.right)} is by number")
            elif isinstance(sub, ast.Compare):
                sides = [sub.left, *sub.comparators]
                if any(_numeric(side) for side in sides) and not all(_numeric(side) for side in sides):
                    uses.sizes_named = uses.sizes_named or f"{show(sub)} compares an index with a number"
    for _, low, high in ranges:
        if _numeric(low) and _numeric(high):
            uses.layer_named = uses.layer_named or f"the range {show(low)}..{show(high)} gives its layers by number"
    return uses


def instances_for(derivation: Derivation, claim: Claim, claim_nodes) -> tuple[list[Instance], str | None]:
    """The instances a claim is checked on, and why only the document's when that is so.

    A claim that names entries or sizes by number (z[1][1] = W[1][1, 1] x[1] + W[1][1, 2] x[2] + b[1][1])
    means something only at the document's sizes; one that names a layer by number, only at its
    depth: elsewhere it would be "refuted" though the document is right.  ``instances =
    "document"`` or ``"all"`` (per claim, or for the whole file) overrides the choice.
    """
    base = dataclasses.replace(derivation.spec, **claim.network) if claim.network else derivation.spec
    uses = _uses(claim_nodes, derivation, claim.range)
    mode = claim.instances or derivation.instances
    chosen = [Instance(base, None, "the document's network")]
    only_document = None
    if mode == "document":
        only_document = "instances = \"document\""
    elif mode is None and uses.sizes_named:
        only_document = uses.sizes_named
    if only_document is None:
        batch = base.batch + 1 if base.batch > 1 else 1
        same_depth = _distinct_widths(base.depth, base.widths, 0)
        if same_depth != base.widths or batch != base.batch:
            chosen.append(Instance(dataclasses.replace(base, widths=same_depth, batch=batch), None,
                                   "distinct widths" + (f", batch {batch}" if batch != base.batch else ""), True))
        deeper = uses.over_layers and isinstance(base.hidden, str) and (mode == "all" or not uses.layer_named)
        if deeper:
            depth = max(base.depth + 1, 3)
            chosen.append(Instance(dataclasses.replace(base, widths=_distinct_widths(depth, base.widths, 2),
                                                       batch=batch), None, f"depth {depth}", True))
    if uses.label:
        labelled = []
        for instance in chosen:
            classes = instance.spec.widths[-1]
            combos = itertools.islice(itertools.product(range(classes), repeat=instance.spec.batch),
                                      limits.MAX_LABELINGS)
            labelled += [dataclasses.replace(instance, labels=combo) for combo in combos]
        chosen = labelled
    return chosen, _only_document(only_document, mode) if only_document else None


@dataclass
class ModelCase:
    """A [model] at chosen sizes; ``seed`` draws its integer index inputs (token ids, labels)."""

    sizes: dict
    seed: int
    reason: str
    chosen_by_tool: bool = False  # False: the document's sizes

    @property
    def key(self):
        return (tuple(sorted(self.sizes.items())), self.seed)

    def describe(self, built=None) -> str:
        return f"{self._settings(built)} ({self.reason}{'; chosen by the tool' if self.chosen_by_tool else ''})"

    def where(self, built=None) -> str:
        if self.chosen_by_tool:
            return f"on sizes the tool chose, not the document's: {self._settings(built)} ({self.reason})"
        return f"on {self.describe(built)}"

    def _settings(self, built=None) -> str:
        text = ", ".join(f"{k}={v}" for k, v in self.sizes.items()) or "the model"
        if built is not None and built.index_values:
            text += "; " + ", ".join(f"{k} = {v}" for k, v in built.index_values.items())
        return text

    def to_dict(self) -> dict:
        return {"instance": self.describe(), "chosen_by": "tool" if self.chosen_by_tool else "document"}


def model_cases(derivation: Derivation) -> list:
    """The document's sizes, and pairwise distinct ones (a recurrence's length at least 3); with
    integer index inputs, two draws of them on each."""
    model = derivation.model
    draws = (0, 1) if model.index_inputs() else (0,)
    chosen = [ModelCase(dict(model.sizes), seed, "the document's sizes" + (f", draw {seed + 1}" if seed else ""))
              for seed in draws]
    other = build_model.distinct_sizes(model)
    if other is not None:
        chosen += [ModelCase(other, seed, "distinct sizes" + (f", draw {seed + 1}" if seed else ""), True)
                   for seed in draws]
    return chosen


def model_cases_for(derivation: Derivation, claim: Claim, claim_nodes) -> tuple[list, str | None]:
    """As for networks: a claim that names an entry or a member by number (or instances =
    "document") is checked at the document's sizes only."""
    chosen = model_cases(derivation)
    mode = claim.instances or derivation.instances
    uses = _uses(claim_nodes, derivation, claim.range)
    named = uses.sizes_named or uses.layer_named
    if mode == "document" or (mode is None and named):
        reason = "instances = \"document\"" if mode == "document" else named
        return [case for case in chosen if not case.chosen_by_tool], _only_document(reason, mode)
    return chosen, None


def _only_document(reason: str, mode: str | None) -> str:
    return (f"checked on the document's instance only: {reason}" +
            ("" if mode == "document" else " (instances = \"all\" checks the tool's instances too)"))


# ----------------------------------------------------------------------------------- checking


class Checker:
    """Checks one derivation; networks, deciders and scopes are shared by all its claims."""

    def __init__(self, derivation: Derivation, timeout: float | None = 60.0, memory: int | None = None):
        self.derivation = derivation
        self.timeout = timeout
        self.memory = memory
        self._instances: dict = {}
        self._references: dict = {}

    def _context(self, instance):
        context = self._instances.get(instance.key)
        if context is None:
            if isinstance(instance, ModelCase):
                try:
                    net = build_model.build(self.derivation.model, instance.sizes, random.Random(instance.seed))
                except (build_model.ModelError, ClaimError) as error:
                    raise ClaimError(f"the model cannot be built {instance.where()}: {error}") from None
            else:
                net = Network(instance.spec, labels=instance.labels)
            scope = Scope(self.derivation.bindings, self.derivation.definitions, net,
                          einstein=self.derivation.einstein)
            context = self._instances[instance.key] = (scope, Decider(net))
        return context

    def check(self, progress=None) -> FileReport:
        started = time.perf_counter()
        results = []
        for claim in self.derivation.claims:
            if progress:
                progress(f"{self.derivation.path}: {claim.id}")
            results.append(self.check_claim(claim))
        return FileReport(self.derivation, results, time.perf_counter() - started)

    def check_claim(self, claim: Claim) -> ClaimResult:
        """The claim's verdict (and its correction's).  Never raises: an unexpected error in one
        claim is that claim's ``undecided``, with a one-line message, and the others are checked."""
        started = time.perf_counter()
        if claim.error:
            verdict = Verdict(ILL_FORMED, message=claim.error)
            return ClaimResult(claim, verdict)
        verdict, described, decided_on = self._decide_safely(claim, claim.lhs, claim.rhs)
        verdict.seconds = time.perf_counter() - started
        result = ClaimResult(claim, verdict, described, decided_on=decided_on)
        if claim.correction:
            lhs = claim.correction_lhs or claim.lhs
            corrected, _, corrected_on = self._decide_safely(claim, lhs, claim.correction)
            result.correction = {"lhs": lhs, "rhs": claim.correction, "verdict": corrected.status,
                                 "message": corrected.message, "counterexample": corrected.counterexample,
                                 "decided_on": corrected_on}
        return result

    def _decide_safely(self, claim: Claim, lhs_text: str, rhs_text: str) -> tuple[Verdict, list, dict | None]:
        try:
            return self._decide(claim, lhs_text, rhs_text)
        except Exception as error:  # a bug or a resource limit, not the claim's verdict: say so, in one line
            text = (str(error).strip().splitlines() or ["no message"])[0][:200]
            return Verdict(UNDECIDED, message=f"could not be checked: {type(error).__name__}: {text} "
                                              "(an internal error, not a verdict on the claim)"), [], None

    def _decide(self, claim: Claim, lhs_text: str, rhs_text: str) -> tuple[Verdict, list, dict | None]:
        """The worst verdict over the instances, their descriptions, and the instance it comes from."""
        try:
            lhs, rhs = parse(lhs_text), parse(rhs_text)
            range_ = parse_range(claim.range) if claim.range else None
            broken = self._broken_definition(lhs, rhs)
            if broken:
                return Verdict(ILL_FORMED, message=broken), [], None
            if self.derivation.model is not None:
                chosen, only_document = model_cases_for(self.derivation, claim, [lhs, rhs])
            else:
                chosen, only_document = instances_for(self.derivation, claim, [lhs, rhs])
        except ClaimError as error:
            return Verdict(ILL_FORMED, message=str(error)), [], None
        except SpecError as error:
            return Verdict(ILL_FORMED, message=f"network override: {error}"), [], None
        worst, worst_on, described, decided_any = Verdict(PROVED, method=""), None, [], False
        methods, notes, scopes = set(), {only_document} - {None}, set()
        instance = chosen[0]
        try:
            with budget.budget(self.timeout):
                for instance in chosen:
                    described.append(instance.describe())
                    verdict = self._decide_on(instance, claim, lhs, rhs, range_,
                                              claim.shape if rhs_text == claim.rhs else None)
                    if verdict is None:
                        continue
                    decided_any = True
                    methods.add(verdict.method)
                    scopes.add(verdict.scope)
                    notes.update(verdict.notes)
                    if SEVERITY[verdict.status] > SEVERITY[worst.status]:
                        worst, worst_on = verdict, instance
                    if verdict.status in (ILL_FORMED, REFUTED):
                        break
        except budget.OutOfTime:
            worst, worst_on = Verdict(UNDECIDED, message=f"ran out of the {self.timeout:g} s budget — "
                                                         f"{instance.where()}"), instance
        if not decided_any and worst.status == PROVED:
            worst = Verdict(ILL_FORMED, message=f"the range {claim.range} is empty on every network checked")
        if worst.status == PROVED:
            worst.method = "; ".join(sorted(m for m in methods if m))
            if scopes == {INSTANTIATED}:  # on every instance an instance of the general proof
                worst.scope = INSTANTIATED
        worst.notes = sorted(notes)
        return worst, described, worst_on.to_dict() if worst_on is not None else None

    def _decide_on(self, instance, claim: Claim, lhs, rhs, range_, shape=None) -> Verdict | None:
        try:
            scope, decider = self._context(instance)
        except ClaimError as error:
            return Verdict(ILL_FORMED, message=str(error))
        except SpecError as error:
            return Verdict(ILL_FORMED, message=f"{error} — {instance.where()}")
        where = instance.where(scope.net) if isinstance(instance, ModelCase) else instance.where()
        try:
            if range_ is None:
                layer_values = [None]
            else:
                variable, low, high = range_
                low, high = scope.integer(low, Env()), scope.integer(high, Env())
                if high - low + 1 > limits.MAX_RANGE:
                    raise ClaimError(f"the range {claim.range} covers {high - low + 1} layers; at most "
                                     f"{limits.MAX_RANGE}")
                layer_values = list(range(low, high + 1))
                if not layer_values:
                    return None
        except ClaimError as error:
            return Verdict(ILL_FORMED, message=f"{error} — {where}")
        worst = None
        for layer in layer_values:
            env = Env({range_[0]: layer}) if range_ is not None else Env()
            at = f"{range_[0]} = {layer}, " if range_ is not None else ""
            try:
                left, right = evaluate(scope, lhs, rhs, env)
            except ClaimError as error:
                return Verdict(ILL_FORMED, message=f"{error} — {at}{where}")
            except RecursionError:  # each formula is at most MAX_NESTING deep, but definitions nest too
                return Verdict(ILL_FORMED, message=f"the claim and the definitions it uses nest too deeply to "
                                                   f"evaluate — {at}{where}")
            mismatch = _shape_mismatch(scope, shape, right, env)
            if mismatch:
                return Verdict(ILL_FORMED, message=f"{mismatch} — {at}{where}")
            verdict = self._instantiated(scope.net, left, right) or \
                decider.decide(left, right, timeout=budget.remaining(), memory=self.memory)
            if verdict.status == REFUTED:
                verdict.slip = self._likely_slip(scope, lhs, right, env, verdict.counterexample) or verdict.slip
                in_document(verdict.counterexample, self.derivation.bindings, scope.net)
            if verdict.status != PROVED:
                verdict.message = f"{verdict.message} — {at}{where}"
                if verdict.counterexample is not None:
                    verdict.counterexample["instance"] = instance.describe(scope.net) \
                        if isinstance(instance, ModelCase) else instance.describe()
                    verdict.counterexample["chosen_by"] = "tool" if instance.chosen_by_tool else "document"
                    if isinstance(instance, ModelCase):
                        verdict.counterexample["sizes"] = dict(instance.sizes)
                        if scope.net.index_values:
                            verdict.counterexample["indices"] = dict(scope.net.index_values)
                    if range_ is not None:
                        verdict.counterexample[range_[0]] = layer
            if worst is None or SEVERITY[verdict.status] > SEVERITY[worst.status]:
                worst = verdict
            elif verdict.status == PROVED and verdict.scope != worst.scope:
                worst.scope = "instance"  # some layer was decided on the expansion: the weaker scope
            if verdict.status in (ILL_FORMED, REFUTED):
                break
        return worst

    def _references_of(self, net: Network):
        """(true gradients, backprop recurrences, general proof) of a network whose setting the
        general proof covers completely, else None; computed once per network."""
        key = id(net)
        if key not in self._references:
            from ..derive import backprop, direct
            from ..general import GeneralSetting, prove_general

            reference = None
            if isinstance(net, Network):
                general = prove_general(GeneralSetting.from_spec(net.spec), timeout=budget.remaining())
                if general.all_proved and general.induction.proved:
                    reference = direct(net), backprop(net), general
            self._references[key] = (net, reference)  # the net is kept so that its id stays its own
        return self._references[key][1]

    def _instantiated(self, net, left, right) -> Verdict | None:
        """``proved`` (scope general, instantiated) when one side *is* the true gradient ∂J/∂W_k,
        ∂J/∂b_k or ∂J/∂z_k of the network — the same loss J, the same variables — and the other *is*
        the recurrence ``derive.backprop`` computes for it, expression for expression (SymPy's
        structural equality: no algebra is done, so nothing is assumed), and the general proof of
        the network's setting is complete.  Anything else (None) is decided on the expansion."""
        if not (isinstance(left, Mat) and isinstance(right, Mat)) or left.shape != right.shape:
            return None
        reference = self._references_of(net)
        if reference is None:
            return None
        truth, recurrences, general = reference
        for (quantity, k), true in truth.items():
            if true.shape != left.shape:
                continue
            for gradient, claimed in ((left, right), (right, left)):
                if _same_gradient(gradient, true) and _same_entries(claimed, recurrences[quantity, k]):
                    layer = "base case k = L" if k == net.depth else "induction step"
                    return Verdict(PROVED, INSTANTIATED,
                                   f"instance of the general proof ({general.setting.describe()}): the claim is "
                                   f"the recurrence for ∂J/∂{quantity}_{k}, term for term ({layer})",
                                   notes=list(general.induction.notes))
        return None

    def _likely_slip(self, scope: Scope, lhs, claimed: Mat, env: Env, counterexample: dict) -> str | None:
        """For a refuted ∂J/∂W_k, ∂J/∂b_k or ∂J/∂z_k: the textbook slip that gives the claimed
        value at the counterexample (``diagnose`` reruns the proven recurrences with one thing
        changed).  Only a hint: the verdict rests on the counterexample."""
        target = self._gradient_target(scope, lhs, env)
        if target is None or not counterexample:
            return None
        quantity, layer = target
        net = scope.net
        by_name = {str(s): s for kind in net.parameters.values() for s in kind}
        point = {by_name[name]: Fraction(value) for name, value in counterexample["point"].items() if name in by_name}
        point.update({eps: Fraction(0) for eps in net.perturbation})
        layers = range(1, net.depth + 1)
        try:
            *per_layer, X, Y, claimed = _floats([*(net.W[k] for k in layers), *(net.b[k] for k in layers),
                                              net.X, net.Y, claimed], point)
            params = {f"W{k}": per_layer[k - 1] for k in layers}
            params.update({f"b{k}": per_layer[net.depth + k - 1].reshape(-1) for k in layers})
            penalty = float(point[net.penalty]) if net.penalty is not None else None
            return diagnose(net.spec, params, X, Y, quantity, layer, claimed, penalty,
                            slip_notation(self.derivation.bindings))
        except (ArithmeticError, Unsupported, KeyError, ValueError):
            return None

    def _gradient_target(self, scope: Scope, lhs, env: Env) -> tuple | None:
        """("W" | "b" | "z", network layer) when the left side is grad(loss, W[k] | b[k] | z[k])."""
        if not (isinstance(lhs, ast.Call) and isinstance(lhs.func, ast.Name) and lhs.func.id == "grad"
                and len(lhs.args) == 2):
            return None
        loss, wrt = lhs.args
        bindings = self.derivation.bindings
        if not (isinstance(loss, ast.Name) and getattr(bindings.get(loss.id), "quantity", None) == "loss"):
            return None
        if not (isinstance(wrt, ast.Subscript) and isinstance(wrt.value, ast.Name) and wrt.value.id in bindings):
            return None
        binding = bindings[wrt.value.id]
        kind = {"weight": "W", "bias": "b", "preactivation": "z"}.get(binding.quantity)
        if kind is None:
            return None
        try:
            return kind, scope.integer(wrt.slice, env) - binding.shift
        except ClaimError:
            return None

    def _broken_definition(self, *nodes) -> str | None:
        broken = self.derivation.broken_definitions
        for node in nodes:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and sub.id in broken:
                    return f"uses {sub.id}, whose definition is broken: {broken[sub.id]}"
        return None


def _shape_mismatch(scope: Scope, shape, right, env: Env) -> str | None:
    """Whether the right side's shape differs from the LaTeX's annotation [·]_{m×n} (None if it agrees)."""
    if not shape:
        return None
    try:
        rows, cols = (scope.integer(parse(size), env) for size in shape)
    except ClaimError as error:
        return f"the shape annotation {shape[0]}×{shape[1]}: {error}"
    actual = right.shape if isinstance(right, Mat) else (1, 1)
    if actual != (rows, cols):
        return (f"the right side is {actual[0]}×{actual[1]}, but its shape annotation says "
                f"{shape[0]}×{shape[1]} = {rows}×{cols}")
    return None


def _same_gradient(side: Mat, true: Mat) -> bool:
    """Every entry is ∂J/∂θ for the true gradient's J and θ (the label, a name, may differ)."""
    from ..evaluate import Partial

    return all(isinstance(a, Partial) and a.f == b.f and a.wrt == b.wrt
               for a, b in zip(side, true))


def _same_entries(side: Mat, recurrence: Mat) -> bool:
    return side.shape == recurrence.shape and side == recurrence


def _floats(matrices: list, point: dict) -> list:
    """Matrices' values at an exact point, as float64 arrays (one evaluation for all of them)."""
    values, exact = values_at([e for m in matrices for e in m], point)
    values = iter(float(v) if exact else float(v.mid) for v in values)
    return [np.array([[next(values) for _ in range(m.cols)] for _ in range(m.rows)]) for m in matrices]


def summarize(reports: list[FileReport]) -> dict:
    summary = {PROVED: 0, REFUTED: 0, ILL_FORMED: 0, UNDECIDED: 0, "unexpected": 0}
    for report in reports:
        for result in report.results:
            summary[result.verdict.status] += 1
            summary["unexpected"] += not result.expected
    return summary
