"""Each layer row's backward pass proved as a lemma against direct differentiation.

The statement: with the upstream gradient dy (shaped like the output y) an input and the loss
L = Σ y ⊙ dy, the row's closed form for every input equals ∂L/∂input.  (Any loss downstream of y
gives ∂L/∂y = dy at the point, so this is the lemma a layer-backward derivation states.)

* **Instances** (:func:`prove_instance`): every entry, exactly, at each of the row's distinct
  sizes — the ring decider of ``prove`` (a certified counterexample refutes).
* **Every size** (:func:`prove_general`): where the row names the dimension its backward sums
  over, its formulas are read in ``indexed.Sized`` with that dimension (and the others) a symbol,
  and ``indexed.decide_zero`` decides the entry difference for every size — as ``prove --general``
  does for dense networks.  A row without such a proof says "proved at sizes …", never "general".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import sympy

from . import budget
from .evaluate import Partial
from .layers import LAYERS, Layer, layer
from .matrices import Explicit, Mat
from .model import Instance
from .prove import PROVED, REFUTED, UNDECIDED, Decider, Verdict

DEFAULT_TIMEOUT = 30.0


class LayerInstance(Instance):
    """One row at concrete sizes: its tensors as symbols, dy, and L = Σ y ⊙ dy."""

    def __init__(self, row: Layer, sizes: dict):
        super().__init__()
        self.row, self.sizes = row, dict(sizes)
        self.alg = Explicit("rows")
        self.values: dict = {}
        for tensor in row.tensors(sizes):
            self.values[tensor.name] = self.variable_matrix(tensor.name, tensor.rows, tensor.cols, tensor.domain)
        if row.constants is not None:
            self.values.update(row.constants(sizes))
        self.y = _matrix(row.forward(self.alg, self.values))
        self.dy = self.variable_matrix("dy", self.y.rows, self.y.cols)
        self.J = sympy.Add(*[a * b for a, b in zip(self.y, self.dy)])

    def direct(self, name: str) -> Mat:
        """∂L/∂name by direct differentiation (evaluated by the decider on the DAG)."""
        label = sympy.Symbol("L")
        return self.values[name].map(lambda theta: Partial(self.J, theta, label))

    def closed_forms(self, backward=None) -> dict:
        backward = backward or self.row.backward
        return {name: _matrix(value) for name, value in backward(self.alg, self.values, self.dy).items()}

    def describe(self) -> str:
        return f"{self.row.name} at {sizes_text(self.sizes)}"


def _matrix(value) -> Mat:
    return value if isinstance(value, Mat) else Mat([[value]])


def sizes_text(sizes: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in sizes.items())


@dataclass
class InstanceResult:
    sizes: dict
    verdicts: dict  # input name -> Verdict
    seconds: float = 0.0

    @property
    def proved(self) -> bool:
        return all(v.proved for v in self.verdicts.values())

    def to_dict(self) -> dict:
        return {"sizes": self.sizes, "seconds": round(self.seconds, 4),
                "gradients": {k: v.to_dict() for k, v in self.verdicts.items()}}


def prove_instance(row: Layer | str, sizes: dict | None = None, *, backward=None,
                   timeout: float | None = DEFAULT_TIMEOUT, seed: int = 0) -> InstanceResult:
    """Decide every closed form of ``row`` (or a claimed ``backward`` in its place) at ``sizes``."""
    row = layer(row) if isinstance(row, str) else row
    sizes = dict(sizes or row.sizes[0])
    started = time.perf_counter()
    instance = LayerInstance(row, sizes)
    decider = Decider(instance, seed=seed)
    verdicts = {}
    try:
        with budget.budget(timeout):
            claimed = instance.closed_forms(backward)
            for tensor in row.inputs(sizes):
                if tensor.name not in claimed:
                    continue
                verdicts[tensor.name] = decider.decide(instance.direct(tensor.name), claimed[tensor.name],
                                                       timeout=budget.remaining())
    except budget.OutOfTime:
        for tensor in row.inputs(sizes):
            verdicts.setdefault(tensor.name, Verdict(UNDECIDED, message=f"ran out of the {timeout:g} s budget"))
    for verdict in verdicts.values():
        verdict.scope = f"instance ({sizes_text(sizes)})"
    return InstanceResult(sizes, verdicts, time.perf_counter() - started)


# ----------------------------------------------------------------------------- every size


@dataclass
class GeneralResult:
    status: str  # proved | undecided | refuted
    sizes: dict  # the symbolic sizes
    verdicts: dict  # input name -> (status, residual text)
    seconds: float = 0.0
    message: str = ""

    @property
    def proved(self) -> bool:
        return self.status == PROVED

    def to_dict(self) -> dict:
        return {"status": self.status, "sizes": {k: str(v) for k, v in self.sizes.items()},
                "seconds": round(self.seconds, 4), "message": self.message,
                "gradients": {k: {"status": s, "residual": r} for k, (s, r) in self.verdicts.items()}}


def prove_general(row: Layer | str, *, backward=None, timeout: float | None = DEFAULT_TIMEOUT) -> GeneralResult | None:
    """The row's closed forms for every size of its dimensions (None: the row has no such proof)."""
    from . import indexed

    row = layer(row) if isinstance(row, str) else row
    if row.general_sizes is None:
        return None
    sizes = row.general_sizes()
    started = time.perf_counter()
    alg = indexed.Sized("rows")
    values = {}
    for tensor in row.tensors(sizes):
        if tensor.rows == 1 and tensor.cols == 1:
            symbol = sympy.Symbol(tensor.name, positive=tensor.domain == "positive")
            values[tensor.name] = indexed.SizedMat(1, 1, lambda i, j, s=symbol: s)
        elif tensor.rows == 1:
            base = sympy.IndexedBase(tensor.name)
            values[tensor.name] = indexed.SizedMat(1, tensor.cols, lambda i, j, b=base: b[j])
        else:
            values[tensor.name] = indexed.entries(tensor.name, tensor.rows, tensor.cols)
    y = row.forward(alg, values)
    dy = indexed.entries("dy", y.rows, y.cols)
    J = alg.total(alg.hadamard(y, dy))
    claimed = (backward or row.backward)(alg, values, dy)
    i, j = indexed.index("i"), indexed.index("j")
    verdicts, status, message = {}, PROVED, ""
    try:
        with budget.budget(timeout):
            for tensor in row.inputs(sizes):
                if tensor.name not in claimed:
                    continue
                value, gradient = values[tensor.name], claimed[tensor.name]
                ranges = {}
                rows_one, cols_one = value.rows == 1, value.cols == 1
                a = sympy.Integer(0) if rows_one else i
                b = sympy.Integer(0) if cols_one else j
                if not rows_one:
                    ranges[i] = (0, value.rows - 1)
                if not cols_one:
                    ranges[j] = (0, value.cols - 1)
                direct = sympy.diff(J, value(a, b))
                ok, residual = indexed.decide_zero(direct - indexed.SizedMat.__call__(gradient, a, b)
                                                   if isinstance(gradient, indexed.SizedMat) else direct - gradient,
                                                   ranges)
                verdicts[tensor.name] = (PROVED if ok else UNDECIDED, "0" if ok else str(residual))
                if not ok:
                    status = UNDECIDED
    except budget.OutOfTime:
        status, message = UNDECIDED, f"ran out of the {timeout:g} s budget"
    return GeneralResult(status, sizes, verdicts, time.perf_counter() - started, message)


# --------------------------------------------------------------------------------- a layer


@dataclass
class LayerProof:
    row: Layer
    instances: list = field(default_factory=list)
    general: GeneralResult | None = None
    seconds: float = 0.0

    @property
    def proved(self) -> bool:
        """Proved at every instance size (and for every size, when that proof was asked for)."""
        return all(r.proved for r in self.instances) and (self.general is None or self.general.proved)

    @property
    def scope(self) -> str:
        """"general (every N)" only from an every-size proof; else the sizes it was proved at."""
        if self.general is not None and self.general.proved:
            return f"for every size of {', '.join(str(s) for s in self.general.sizes.values())}"
        proved = [sizes_text(r.sizes) for r in self.instances if r.proved]
        return "at sizes " + "; ".join(proved) if proved else "at no size"

    @property
    def status(self) -> str:
        verdicts = [v for r in self.instances for v in r.verdicts.values()]
        if any(v.status == REFUTED for v in verdicts):
            return REFUTED
        if verdicts and all(v.proved for v in verdicts):
            return PROVED  # in the scope :attr:`scope` states
        return UNDECIDED

    def to_dict(self) -> dict:
        return {"layer": self.row.name, "title": self.row.title, "status": self.status, "scope": self.scope,
                "forward": self.row.forward_text, "backward": self.row.backward_text,
                "summed": self.row.summed, "seconds": round(self.seconds, 4),
                "instances": [r.to_dict() for r in self.instances],
                "general": self.general.to_dict() if self.general is not None else None}

    def lines(self) -> list[str]:
        out = [f"layer {self.row.name}: {self.row.title}", f"  forward: {self.row.forward_text}"]
        for name, text in self.row.backward_text.items():
            out.append(f"  backward {name}: {text}")
        for r in self.instances:
            marks = ", ".join(f"{k} {v.status}" for k, v in r.verdicts.items())
            out.append(f"  at {sizes_text(r.sizes)}: {marks} ({r.seconds:.2f} s)")
            for k, v in r.verdicts.items():
                if not v.proved and v.message:
                    out.append(f"    {k}: {v.message}")
        if self.general is not None:
            g = self.general
            marks = ", ".join(f"{k} {s}" for k, (s, _) in g.verdicts.items())
            out.append(f"  every size ({', '.join(map(str, g.sizes.values()))}): {g.status} — {marks} ({g.seconds:.2f} s)"
                       + (f"; {g.message}" if g.message else ""))
        out.append(f"{self.status} {self.scope}" if self.status != PROVED or self.general is None
                   or self.general.proved else f"{self.status} {self.scope}; for every size: {self.general.status}")
        return out


def prove_layer(row: Layer | str, *, general: bool = False, timeout: float | None = DEFAULT_TIMEOUT) -> LayerProof:
    row = layer(row) if isinstance(row, str) else row
    started = time.perf_counter()
    proof = LayerProof(row)
    for sizes in row.sizes:
        proof.instances.append(prove_instance(row, sizes, timeout=timeout))
    if general:
        proof.general = prove_general(row, timeout=timeout)
    proof.seconds = time.perf_counter() - started
    return proof


def all_layers() -> list[str]:
    return list(LAYERS)
