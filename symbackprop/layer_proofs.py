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
class SizedLemma:
    """One identity between entries of matrices of symbolic size, decided for every size."""

    name: str
    statement: str
    gradients: tuple  # the row's gradients that rest on it
    status: str = UNDECIDED
    residual: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "statement": self.statement, "status": self.status,
                "residual": self.residual, "seconds": round(self.seconds, 4), "gradients": list(self.gradients)}


@dataclass
class GeneralResult:
    status: str  # proved | undecided
    sizes: dict  # the symbolic sizes
    lemmas: list
    argument: list = field(default_factory=list)  # how the lemmas give the row's formulas
    seconds: float = 0.0
    message: str = ""

    @property
    def proved(self) -> bool:
        return self.status == PROVED

    @property
    def verdicts(self) -> dict:
        """gradient -> (status, residuals of the lemmas it rests on that are not proved)."""
        out = {}
        for lemma in self.lemmas:
            for name in lemma.gradients:
                status, residual = out.get(name, (PROVED, ""))
                if lemma.status != PROVED:
                    status, residual = UNDECIDED, (residual + "; " if residual else "") + f"{lemma.name}: {lemma.residual}"
                out[name] = (status, residual or "0")
        return out

    def to_dict(self) -> dict:
        return {"status": self.status, "sizes": {k: str(v) for k, v in self.sizes.items()},
                "seconds": round(self.seconds, 4), "message": self.message, "argument": self.argument,
                "lemmas": [lemma.to_dict() for lemma in self.lemmas],
                "gradients": {k: {"status": s, "residual": r} for k, (s, r) in self.verdicts.items()}}


def _symbolic_tensor(tensor, indexed):
    if tensor.rows == 1 and tensor.cols == 1:
        symbol = sympy.Symbol(tensor.name, positive=tensor.domain == "positive")
        return indexed.SizedMat(1, 1, lambda i, j, s=symbol: s)
    if tensor.rows == 1:
        base = sympy.IndexedBase(tensor.name)
        return indexed.SizedMat(1, tensor.cols, lambda i, j, b=base: b[j])
    return indexed.entries(tensor.name, tensor.rows, tensor.cols)


def _decide_entries(lemma: SizedLemma, f, wrt, gradient) -> SizedLemma:
    """Decide ∂f/∂wrt[i, j] = gradient[i, j] for every size and every (i, j) in range."""
    from . import indexed

    started = time.perf_counter()
    i, j = indexed.index("i"), indexed.index("j")
    a = sympy.Integer(0) if wrt.rows == 1 else i
    b = sympy.Integer(0) if wrt.cols == 1 else j
    ranges = {}
    if wrt.rows != 1:
        ranges[i] = (0, wrt.rows - 1)
    if wrt.cols != 1:
        ranges[j] = (0, wrt.cols - 1)
    value = gradient(a, b) if isinstance(gradient, indexed.SizedMat) else gradient
    ok, residual = indexed.decide_zero(sympy.diff(f, wrt(a, b)) - value, ranges)
    lemma.status, lemma.residual = (PROVED, "0") if ok else (UNDECIDED, str(residual))
    lemma.seconds = time.perf_counter() - started
    return lemma


def _decide_at(lemma: SizedLemma, f, wrt, gradient, at: tuple, ranges: dict) -> SizedLemma:
    """Decide ∂f/∂wrt[a, b] = gradient[a, b] at the entries ``at`` = (a, b), written in free indices
    with ``ranges`` (a pooling window's entry p·I + U, 0 ≤ U ≤ p − 1), for every size."""
    from . import indexed

    started = time.perf_counter()
    a, b = at
    value = gradient(a, b) if isinstance(gradient, indexed.SizedMat) else gradient
    ok, residual = indexed.decide_zero(sympy.diff(f, wrt(a, b)) - value, ranges)
    lemma.status, lemma.residual = (PROVED, "0") if ok else (UNDECIDED, str(residual))
    lemma.seconds = time.perf_counter() - started
    return lemma


def _maxpool_plan(row, alg, values, backward):
    """Every entry of x is x[2·I + u] for one window I and u ∈ {0, 1}: two lemmas, for every O; and the
    selection lemma, for every window size p."""
    from . import indexed

    O = row.general_sizes()["O"]
    y = row.forward(alg, values)
    dy = indexed.entries("dy", y.rows, y.cols)
    J = alg.total(alg.hadamard(y, dy))
    claimed = backward(alg, values, dy)
    I = indexed.index("I")
    max_text = "y[i] = max(x[2i], x[2i+1]) = x[2i+1] + relu(x[2i] − x[2i+1]), H = relu′ (off ties: H is the step)"
    for u, shown in ((0, "dy[I]·H(x[2I] − x[2I+1])"), (1, "dy[I]·(1 − H(x[2I] − x[2I+1]))")):
        lemma = SizedLemma(f"∂L/∂x[2I+{u}]", f"{max_text} ⇒ ∂(Σ y ⊙ dy)/∂x[2I+{u}] = {shown}", ("x",))
        yield lambda lemma=lemma, u=u: _decide_at(lemma, J, values["x"], claimed["x"], (2 * I + u, 0), {I: (0, O - 1)})
    p, U = indexed.size("p"), indexed.index("U")
    x, s = indexed.entries("x", p * O, 1), indexed.entries("s", O, p)
    selected = alg.build(O, 1, lambda i, _: alg.index_sum(lambda v: s(i, v) * x(p * i + v, 0), p))
    G = indexed.entries("dy", O, 1)
    lemma = SizedLemma("selection", "windows of any size p: off ties each window's max is, near x, its selected "
                       "entry, y[i] = Σ_(v<p) s[i,v]·x[p·i+v] with s a fixed 0/1 selection ⇒ "
                       "∂(Σ y ⊙ dy)/∂x[p·I+U] = dy[I]·s[I,U], 0 ≤ U ≤ p − 1", ())
    yield lambda: _decide_at(lemma, alg.total(alg.hadamard(selected, G)), x,
                             alg.build(p * O, 1, lambda a, _: G(a // p, 0) * s(a // p, a % p)), (p * I + U, 0),
                             {I: (0, O - 1), U: (0, p - 1)})


MAXPOOL_ARGUMENT = [
    "Assumption: no ties (x[2i] ≠ x[2i+1]); there max is differentiable and relu′ = H is the step, 1 where "
    "x[2i] > x[2i+1], else 0. Every entry of x is x[2I] or x[2I+1] for one window I < O, so the two lemmas give "
    "the row's dx for every output size O (input 2·O).",
    "The selection lemma is the same gradient for windows of any size p: dy[i] goes to the entry s selects.",
]


def _meanpool_plan(row, alg, values, backward):
    """Every entry of x is x[p·I + U, p·J + V] for exactly one window (I, J) and offset (U, V)."""
    from . import indexed

    sizes = row.general_sizes()
    p, oh, ow = sizes["p"], sizes["OH"], sizes["OW"]
    y = row.forward(alg, values)
    dy = indexed.entries("dy", y.rows, y.cols)
    J = alg.total(alg.hadamard(y, dy))
    claimed = backward(alg, values, dy)
    I, U, Jw, V = (indexed.index(n) for n in ("I", "U", "J", "V"))
    ranges = {I: (0, oh - 1), U: (0, p - 1), Jw: (0, ow - 1), V: (0, p - 1)}
    lemma = SizedLemma("∂L/∂x", f"y[i,j] = (1/p²)·Σ_(a,c<p) x[p·i+a, p·j+c] ⇒ ∂(Σ y ⊙ dy)/∂x[p·I+U, p·J+V] = "
                       f"dy[I, J]/p² ({row.backward_text['x']} with window p), 0 ≤ U, V ≤ p − 1", ("x",))
    yield lambda: _decide_at(lemma, J, values["x"], claimed["x"], (p * I + U, p * Jw + V), ranges)


MEANPOOL_ARGUMENT = [
    "Every row index of x is p·I + U for exactly one window I < OH and offset 0 ≤ U ≤ p − 1 (likewise the "
    "columns), so the lemma covers every entry of x, for every window size p and output size OH × OW "
    "(the row's 2 × 2 windows are p = 2). The decider uses δ(p·i + a, p·I + U) = δ(i, I)·δ(a, U) and "
    "⌊(p·I + U)/p⌋ = I, identities for integers with 0 ≤ a, U ≤ p − 1.",
]


def _direct_plan(row, alg, values, backward):
    from . import indexed

    y = row.forward(alg, values)
    dy = indexed.entries("dy", y.rows, y.cols)
    J = alg.total(alg.hadamard(y, dy))
    claimed = backward(alg, values, dy)
    sizes = row.general_sizes()
    for tensor in row.inputs(sizes):
        if tensor.name in claimed:
            lemma = SizedLemma(f"∂L/∂{tensor.name}", f"∂(Σ y ⊙ dy)/∂{tensor.name} = {row.backward_text.get(tensor.name, '')}",
                               (tensor.name,))
            yield lambda lemma=lemma, t=tensor: _decide_entries(lemma, J, values[t.name], claimed[t.name])
    return


def _attention_plan(row, alg, values, backward):
    """Three lemmas, each for every size, composed by the chain rule (the row's backward calls
    exactly these three steps, ``layers.attention_*_step`` and ``layers.softmax_rows_step``)."""
    from . import indexed
    from .layers import attention_score_step, attention_value_step, softmax_rows_step

    n, m, d, e = (row.general_sizes()[k] for k in "nmde")
    P, S = indexed.entries("P", n, m), indexed.entries("S", n, m)
    V, dY = values["V"], indexed.entries("dY", n, e)
    J = alg.total(alg.hadamard(alg.matmul(P, V), dY))
    dP, dV = attention_value_step(alg, P, V, dY)
    yield lambda: _decide_entries(SizedLemma("values: ∂L/∂P", "Y = P V, L = Σ Y ⊙ dY ⇒ ∂L/∂P = dY Vᵀ", ("Q", "K")), J, P, dP)
    yield lambda: _decide_entries(SizedLemma("values: ∂L/∂V", "Y = P V, L = Σ Y ⊙ dY ⇒ ∂L/∂V = Pᵀ dY", ("V",)), J, V, dV)
    if "mask" in values:
        weights = alg.hadamard(values["mask"], alg.exp(S))
        probabilities = alg.divide(weights, alg.sum_axis(weights, 1))
        shown = "P = M⊙e^S / rowsum(M⊙e^S)"
    else:
        probabilities = alg.softmax_axis(S, 1)
        shown = "P = softmax(S) along each row"
    psi, G = indexed.arbitrary_function("ψ", "P", probabilities)
    yield lambda: _decide_entries(SizedLemma("softmax", f"{shown}, any differentiable ψ(P), G = ∂ψ/∂P ⇒ "
                                             "∂ψ/∂S = P⊙(G − rowsum(G⊙P))", ("Q", "K")),
                                  psi, S, softmax_rows_step(alg, probabilities, G))
    c = 1 / sympy.sqrt(d)
    scores = alg.scale(c, alg.matmul(values["Q"], alg.T(values["K"])))
    phi, H = indexed.arbitrary_function("φ", "S", scores)
    dQ, dK = attention_score_step(alg, values["Q"], values["K"], c, H)
    yield lambda: _decide_entries(SizedLemma("scores: ∂φ/∂Q", "S = QKᵀ/√d, any differentiable φ(S), G = ∂φ/∂S ⇒ "
                                             "∂φ/∂Q = G K/√d", ("Q",)), phi, values["Q"], dQ)
    yield lambda: _decide_entries(SizedLemma("scores: ∂φ/∂K", "S = QKᵀ/√d, any differentiable φ(S), G = ∂φ/∂S ⇒ "
                                             "∂φ/∂K = Gᵀ Q/√d", ("K",)), phi, values["K"], dK)


ATTENTION_ARGUMENT = [
    "L = Σ Y ⊙ dY is a differentiable function of P (lemma values), P of S (lemma softmax, with ψ = L as a "
    "function of P, so G = dY Vᵀ), and S of Q and K (lemma scores, with φ = L as a function of S, so "
    "G = P⊙(dP − rowsum(dP⊙P))): by the chain rule ∂L/∂Q and ∂L/∂K are the row's closed forms, for every n, m, d, e.",
    "The row's backward pass is this composition: it calls the three proved steps in this order.",
]


def _bptt_plan(row, alg, values, backward):
    """The cell lemmas for every H and D, with an arbitrary function φ of the new state standing for
    everything after it; the induction over time is :data:`BPTT_ARGUMENT`."""
    from . import indexed
    from .layers import rnn_cell_step
    from .rules import TANH

    H, D = row.general_sizes()["H"], row.general_sizes()["D"]
    W, U, b = values["W"], values["U"], values["b"]
    h_prev, x, dh = indexed.entries("h_prev", H, 1), indexed.entries("x", D, 1), indexed.entries("dh_prev", H, 1)
    h = alg.apply(TANH.atom, alg.add(alg.add(alg.matmul(W, h_prev), alg.matmul(U, x)), b))
    phi, G = indexed.arbitrary_function("φ", "h", h)
    step = rnn_cell_step(alg, W, U, h_prev, x, h, G)
    state = alg.total(alg.hadamard(h_prev, dh)) + phi
    cell = "h = tanh(W h_prev + U x + b), any differentiable φ(h), G = ∂φ/∂h, δ = G⊙(1 − h²) ⇒ "
    last = indexed.entries("h_T", H, 1)
    yield lambda: _decide_entries(SizedLemma("last step", "∂(Σ h_T ⊙ dh_T)/∂h_T = dh_T", ("W", "U", "b", "h0", "X")),
                                  alg.total(alg.hadamard(last, indexed.entries("dh_T", H, 1))), last,
                                  indexed.entries("dh_T", H, 1))
    yield lambda: _decide_entries(SizedLemma("cell: state", cell + "∂(Σ h_prev⊙dh_prev + φ(h))/∂h_prev = dh_prev + Wᵀδ",
                                             ("W", "U", "b", "h0", "X")), state, h_prev, alg.add(dh, step["h_prev"]))
    for name, wrt, shown in (("W", W, "δ h_prevᵀ"), ("U", U, "δ xᵀ"), ("b", b, "δ"), ("x", x, "Uᵀ δ")):
        gradient = {"x": "X"}.get(name, name)
        yield lambda name=name, wrt=wrt, shown=shown, gradient=gradient: _decide_entries(
            SizedLemma(f"cell: {name}", cell + f"∂φ/∂{name} (this step's use) = {shown}", (gradient,)), phi, wrt, step[name])


BPTT_ARGUMENT = [
    "Claim P(t), T ≥ t ≥ 1: ∂L/∂h_t (through every later step) = g_t, with g_T = dh_T and "
    "g_t = dh_t + Wᵀ δ_{t+1}, δ_t = g_t ⊙ (1 − h_t²).",
    "Base t = T: L depends on h_T only through Σ h_T ⊙ dh_T (lemma last step).",
    "Step P(t) ⇒ P(t−1): L is Σ h_{t−1} ⊙ dh_{t−1} plus a differentiable function φ of h_t whose gradient "
    "is g_t by P(t); lemma cell: state gives g_{t−1}.",
    "Parameters: W, U, b are used at every step; with one copy per step, ∂L/∂W = Σ_t ∂L/∂W_t (the chain "
    "rule for W ↦ (W, …, W)), and each term is δ_t h_{t−1}ᵀ by lemma cell: W with φ the part of L after "
    "h_t (likewise U, b; x_t is used once: Uᵀ δ_t). Hence the row's formulas for every T, H and D.",
    "The row's backward pass is this recursion: it calls the proved cell step (layers.rnn_cell_step) at "
    "t = T, …, 1 and sums each parameter's contributions.",
]

def _lstm_plan(row, alg, values, backward):
    """The gate lemma (every H) and the affine lemma (every shape of W), composed by the chain rule;
    the row's backward calls exactly ``layers.lstm_gate_step`` and ``layers.affine_step``."""
    from . import indexed
    from .layers import affine_step, lstm_cell, lstm_gate_step

    H = row.general_sizes()["H"]
    pre = [indexed.entries(name, H, 1) for name in ("a_i", "a_f", "a_o", "a_g")]
    c, dh, dc = indexed.entries("c", H, 1), indexed.entries("dh", H, 1), indexed.entries("dc", H, 1)
    i, f, o, g, c_new, t = lstm_cell(alg, pre, c)
    L = alg.total(alg.hadamard(alg.hadamard(o, t), dh)) + alg.total(alg.hadamard(c_new, dc))
    parts, dc_prev = lstm_gate_step(alg, i, f, o, g, c, t, dh, dc)
    cell = "c′ = σ(a_f)⊙c + σ(a_i)⊙tanh(a_g), h′ = σ(a_o)⊙tanh c′, L = Σ h′⊙dh′ + Σ c′⊙dc′ ⇒ "
    for k, name in enumerate(("i", "f", "o", "g")):
        yield lambda k=k, name=name: _decide_entries(
            SizedLemma(f"gates: ∂L/∂a_{name}", cell + f"∂L/∂a_{name} = block {k + 1} of da", ("x", "h", "W", "b")),
            L, pre[k], parts[k])
    yield lambda: _decide_entries(SizedLemma("gates: ∂L/∂c", cell + "∂L/∂c = dc′_total ⊙ f", ("c",)), L, c, dc_prev)
    R, C = indexed.size("R"), indexed.size("C")
    W, z, b = indexed.entries("W", R, C), indexed.entries("z", C, 1), indexed.entries("b", R, 1)
    phi, G = indexed.arbitrary_function("φ", "a", alg.add(alg.matmul(W, z), b))
    dW, db, dz = affine_step(alg, W, z, G)
    affine = "a = W z + b (W of any shape R × C), any differentiable φ(a), G = ∂φ/∂a ⇒ "
    yield lambda: _decide_entries(SizedLemma("affine: ∂φ/∂W", affine + "∂φ/∂W = G zᵀ", ("W",)), phi, W, dW)
    yield lambda: _decide_entries(SizedLemma("affine: ∂φ/∂b", affine + "∂φ/∂b = G", ("b",)), phi, b, db)
    yield lambda: _decide_entries(SizedLemma("affine: ∂φ/∂z", affine + "∂φ/∂z = Wᵀ G", ("x", "h")), phi, z, dz)


LSTM_ARGUMENT = [
    "L = Σ h′ ⊙ dh′ + Σ c′ ⊙ dc′ is a function of the four pre-activation blocks a_i, a_f, a_o, a_g and of c "
    "(lemmas gates, for every H), and a = W [x; h] + b stacks the blocks (lemma affine with R = 4H, C = D + H "
    "and φ = L as a function of a, so G = da, the four blocks stacked): by the chain rule dW = da [x; h]ᵀ, "
    "db = da, [dx; dh] = Wᵀ da, for every H and D.",
    "The row's backward pass is this composition: it calls the two proved steps; the rest is "
    "splitting and stacking blocks.",
]

def _residual_plan(row, alg, values, backward):
    """The skip, the dense step (any shapes) and the tanh step, composed by the chain rule; the
    row's backward calls exactly ``layers.dense_step`` (twice) and ``layers.tanh_step``."""
    from . import indexed
    from .layers import dense_step, tanh_step
    from .rules import TANH

    D, N = row.general_sizes()["D"], row.general_sizes()["N"]
    x, u, dy = values["x"], indexed.entries("u", D, N), indexed.entries("dy", D, N)
    skip = alg.total(alg.hadamard(alg.add(x, u), dy))
    yield lambda: _decide_entries(SizedLemma("skip: ∂L/∂x", "y = x + u, L = Σ y ⊙ dy ⇒ ∂L/∂x (the skip path) = dy",
                                             ("x",)), skip, x, dy)
    yield lambda: _decide_entries(SizedLemma("skip: ∂L/∂u", "y = x + u, L = Σ y ⊙ dy ⇒ ∂L/∂u = dy",
                                             ("x", "W1", "b1", "W2", "b2")), skip, u, dy)
    R, C, M = indexed.size("R"), indexed.size("C"), indexed.size("M")
    W, X, b = indexed.entries("W", R, C), indexed.entries("X", C, M), indexed.entries("b", R, 1)
    phi, G = indexed.arbitrary_function("φ", "U", alg.add(alg.matmul(W, X), b))
    dW, db, dX = dense_step(alg, W, X, G)
    dense = "U = W X + b 1ᵀ (any R × C, C × M), any differentiable φ(U), G = ∂φ/∂U ⇒ "
    yield lambda: _decide_entries(SizedLemma("dense: ∂φ/∂W", dense + "∂φ/∂W = G Xᵀ", ("W1", "W2")), phi, W, dW)
    yield lambda: _decide_entries(SizedLemma("dense: ∂φ/∂b", dense + "∂φ/∂b = G 1", ("b1", "b2")), phi, b, db)
    yield lambda: _decide_entries(SizedLemma("dense: ∂φ/∂X", dense + "∂φ/∂X = Wᵀ G", ("x", "W1", "b1")), phi, X, dX)
    U = indexed.entries("U", R, M)
    a = alg.apply(TANH.atom, U)
    psi, G2 = indexed.arbitrary_function("ψ", "a", a)
    yield lambda: _decide_entries(SizedLemma("tanh", "a = tanh(U), any differentiable ψ(a), G = ∂ψ/∂a ⇒ "
                                             "∂ψ/∂U = G ⊙ (1 − a²)", ("x", "W1", "b1")), psi, U, tanh_step(alg, a, G2))


RESIDUAL_ARGUMENT = [
    "L = Σ (x + u) ⊙ dy with u = W₂ a + b₂ 1ᵀ, a = tanh(W₁ x + b₁ 1ᵀ): ∂L/∂u = dy (lemma skip); the dense "
    "lemma with φ = L as a function of u gives dW₂, db₂ and ∂L/∂a = W₂ᵀ dy; the tanh lemma gives "
    "δ = (W₂ᵀ dy) ⊙ (1 − a²); the dense lemma again gives dW₁, db₁ and W₁ᵀ δ. x is used twice (the skip "
    "and the branch), so ∂L/∂x = dy + W₁ᵀ δ (the chain rule sums over uses). For every D, H, N.",
    "The row's backward pass is this composition: it calls the proved steps in this order.",
]

EMBEDDING_ARGUMENT = [
    "The tokens are an arbitrary integer sequence t[0], …, t[N−1] (repeats allowed), onehot(t)[n, j] = δ(t[n], j): "
    "the lemma holds for every V, D, N and every such sequence, so dE[j, :] = Σ_n δ(t[n], j)·dy[n, :] sums dy over "
    "every position holding token j. (An id outside 0 … V−1 gives a zero row in the forward pass and in dE alike.)",
]

PLANS = {"maxpool": (_maxpool_plan, MAXPOOL_ARGUMENT), "meanpool": (_meanpool_plan, MEANPOOL_ARGUMENT), "embedding": (_direct_plan, EMBEDDING_ARGUMENT), "lstm": (_lstm_plan, LSTM_ARGUMENT), "residual": (_residual_plan, RESIDUAL_ARGUMENT), "direct": (_direct_plan, []), "attention": (_attention_plan, ATTENTION_ARGUMENT), "bptt": (_bptt_plan, BPTT_ARGUMENT)}


#: The plans that decide a claimed backward pass in place of the row's own (the others prove the steps the
#: row's backward is made of).
CLAIMS = ("direct", "embedding", "meanpool", "maxpool")


def prove_general(row: Layer | str, *, backward=None, timeout: float | None = DEFAULT_TIMEOUT) -> GeneralResult | None:
    """The row's closed forms for every size of its dimensions (None: the row has no such proof).

    A claimed ``backward`` in place of the row's own is proved directly (the composed plans prove the
    steps the row's own backward is made of)."""
    from . import indexed

    row = layer(row) if isinstance(row, str) else row
    if row.general_sizes is None:
        return None
    sizes = row.general_sizes()
    started = time.perf_counter()
    alg = indexed.Sized("rows")
    values = {tensor.name: _symbolic_tensor(tensor, indexed) for tensor in row.tensors(sizes)}
    if row.symbolic_constants is not None:
        values.update(row.symbolic_constants(sizes))
    plan, argument = PLANS[row.plan if backward is None or row.plan in CLAIMS else "direct"]
    lemmas, message = [], ""
    try:
        with budget.budget(timeout):
            for obligation in plan(row, alg, values, backward or row.backward):
                lemmas.append(obligation())
    except budget.OutOfTime:
        message = f"ran out of the {timeout:g} s budget"
    status = PROVED if lemmas and not message and all(l.status == PROVED for l in lemmas) else UNDECIDED
    return GeneralResult(status, sizes, lemmas, list(argument), time.perf_counter() - started, message)


# --------------------------------------------------------------------------------- a layer


def _free_sizes(sizes: dict) -> str:
    """The independent symbolic sizes (p, OH, OW — not H = p·OH, which they determine)."""
    return ", ".join(str(v) for v in sizes.values() if isinstance(v, sympy.Symbol))


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
            return f"for every size of {_free_sizes(self.general.sizes)}"
        proved = [sizes_text(r.sizes) for r in self.instances if r.proved]
        scope = "at sizes " + "; ".join(proved) if proved else "at no size"
        if self.general is not None:
            every = [k for k, (s, _) in self.general.verdicts.items() if s == PROVED]
            if every:
                sizes = _free_sizes(self.general.sizes)
                scope += f"; ∂L/∂{', ∂L/∂'.join(every)} for every size of {sizes}"
        return scope

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
            out.append(f"  every size of {_free_sizes(g.sizes)}: {g.status} ({g.seconds:.2f} s)"
                       + (f"; {g.message}" if g.message else ""))
            for lemma in g.lemmas:
                out.append(f"    lemma {lemma.name}: {lemma.status} ({lemma.seconds:.2f} s) — {lemma.statement}")
                if lemma.status != PROVED:
                    out.append(f"      residual: {lemma.residual[:300]}")
            out += [f"    {line}" for line in g.argument]
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
