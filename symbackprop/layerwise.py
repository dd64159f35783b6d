"""Exact instance proofs layer by layer: local identities in fresh symbols, joined by the chain rule.

Expanding the whole loss costs about (c·n)^L monomials.  The textbook recurrences, however, are
built from one step per layer, and each step is a claim about that layer alone.  With fresh
symbols for every entry of a layer's pre-activation Z_k, of the δ arriving from above (D), of
a_{k-1} and of the layer's parameters, the decider checks exactly:

(a) output:      δ_L(Z_L, Y)          = ∂J/∂Z_L     of J written as a function of Z_L and Y;
(b) recurrence:  δ_k(D, Z_k, W_{k+1}) = Σ_j D_j ∂Z_{k+1,j}/∂Z_k,   Z_{k+1} = W_{k+1} g_k(Z_k) + b_{k+1};
(c) parameters:  ∂J/∂W_k(D, a_{k-1}), ∂J/∂b_k(D) = Σ D ∂Z_k/∂W_k, Σ D ∂Z_k/∂b_k
                 (+ the penalty's own derivative),   Z_k = W_k a_{k-1} + b_k.

J depends on Z_k only through Z_{k+1}, on Z_L only through the loss, and on W_k, b_k only
through Z_k and the penalty.  So, by the multivariate chain rule and induction from L down,
(a)–(c) holding for *every* value of the fresh symbols imply that backprop's gradients equal the
true ones at every point of the instance: the proof of the instance.  The δ's and gradients are
computed by the very step functions of :func:`derive.backprop` (``output_step``,
``hidden_delta``, ``layer_gradients``) applied to the fresh matrices, so what is checked is what
backprop computes.  Each obligation is as large as one layer: the cost grows with the network's
size, not its expansion.

A local identity that is not proved says nothing about the instance by itself (a witness at fresh
values need not be a point of the network), so :func:`prove.prove_network` then falls back to
the expansion, whose refutations are points of the network.
"""

from __future__ import annotations

import sympy
from sympy import Integer

from .derive import hidden_delta, layer_gradients, output_step, penalty_factor
from .evaluate import Partial
from .matrices import Explicit, Mat
from .model import DOMAINS, Instance
from .network import NetworkSpec, objective, penalty_term, reduction_factor

METHOD = "exact, layerwise (chain rule over local identities)"


class LocalInstance(Instance):
    """The fresh symbols of the local obligations of one network spec (one instance, shared
    by every obligation so that the decider's memo is shared)."""

    def __init__(self, spec: NetworkSpec):
        super().__init__()
        self.spec = spec
        self.alg = Explicit(spec.layout)
        self.batch = spec.batch
        self.loss_symbol = sympy.Symbol("S")

    def block(self, name: str, width: int, domain: str = "real") -> Mat:
        """A width × m block of fresh symbols (m × width with examples as rows)."""
        m = self.spec.batch
        if self.spec.layout == "columns":
            return self.variable_matrix(name, width, m, domain)
        return self.variable_matrix(name, m, width, domain)

    def perturbations(self, name: str, like: Mat) -> Mat:
        return Mat.build(like.rows, like.cols, lambda i, j: self._epsilon(f"ε{name}[{i + 1},{j + 1}]"))

    def targets(self, width: int) -> Mat:
        """Free targets, except that one-hot/soft targets sum to 1 (the last is 1 − Σ others), as
        in the network."""
        Y = self.block("y", width, "unit")
        if not self.spec.loss_rule.simplex_targets:
            return Y
        if self.spec.layout == "columns":
            last = [1 - sympy.Add(*[Y[i, e] for i in range(width - 1)]) for e in range(Y.cols)]
            return Mat([list(Y.entries[i]) for i in range(width - 1)] + [last])
        return Mat([list(row[:-1]) + [1 - sympy.Add(*row[:-1])] for row in Y.entries])

    def sample(self, rng) -> dict:
        point = super().sample(rng)
        if self.spec.loss_rule.simplex_targets:
            for symbol, domain in self.variables:
                if domain is DOMAINS["unit"]:
                    point[symbol] /= self.spec.widths[-1]
        return point

    def describe(self) -> str:
        return f"local identities of {self.spec.describe()}"


def _add(a: Mat, b: Mat) -> Mat:
    return Mat([[x + y for x, y in zip(ra, rb)] for ra, rb in zip(a.entries, b.entries)])


def _pairing(alg, D: Mat, Z: Mat):
    """Σ D ⊙ Z: the scalar whose partials are the vector–Jacobian products Σ_j D_j ∂Z_j/∂(·)."""
    return alg.total(alg.hadamard(D, Z))


def obligations(spec: NetworkSpec) -> tuple[LocalInstance, list]:
    """The local identities (name, covers, truth, claim) of the instance, ``covers`` the gradients
    — (quantity, k) — whose proof relies on it."""
    local = LocalInstance(spec)
    alg, L, n, m = local.alg, spec.depth, spec.widths, spec.batch
    g = spec.activation
    penalty = local.variable("λ", "positive") if spec.l2 else None
    ones = alg.ones(m, 1)
    all_below = lambda k: [(q, j) for j in range(1, k + 1) for q in ("z", "W", "b")]
    found = []

    # (a) the output delta against ∂J/∂Z_L, J as a function of a fresh Z_L (penalty aside: it
    # does not depend on Z_L).
    Z = local.block(f"Z{L}", n[L])
    E = local.perturbations(f"Z{L}", Z)
    Y = local.targets(n[L])
    Zp = _add(Z, E)
    A = alg.softmax(Zp, g(L).atom) if g(L).vector else alg.apply(g(L).atom, Zp)
    J = objective(spec, alg, A, Y, {}, reduction_factor(spec.reduction, m))
    truth = E.map(lambda eps: Partial(J, eps, local.loss_symbol))
    A0 = alg.softmax(Z, g(L).atom) if g(L).vector else alg.apply(g(L).atom, Z)
    claim = output_step(spec, alg, A0, Y, Z, reduction_factor(spec.reduction, m))
    found.append((f"output delta δ{L} = ∂J/∂Z{L}", all_below(L), truth, claim))

    # (b) the recurrence at every hidden layer.
    for k in range(L - 1, 0, -1):
        D = local.block(f"D{k + 1}", n[k + 1])
        Z = local.block(f"Z{k}", n[k])
        E = local.perturbations(f"Z{k}", Z)
        W = local.variable_matrix(f"W{k + 1}", n[k + 1], n[k])
        b = local.variable_matrix(f"b{k + 1}", n[k + 1], 1)
        Zp = _add(Z, E)
        A = alg.softmax(Zp, g(k).atom) if g(k).vector else alg.apply(g(k).atom, Zp)
        S = _pairing(alg, D, alg.affine(W, A, b))
        truth = E.map(lambda eps, S=S: Partial(S, eps, local.loss_symbol))
        claim = hidden_delta(alg, W, D, g(k).derivative, Z)
        found.append((f"recurrence δ{k} = Σ δ{k + 1}·∂Z{k + 1}/∂Z{k}", all_below(k), truth, claim))

    # (c) the parameter gradients of every layer, with the penalty's share.
    factor = penalty_factor(spec, penalty, Integer(m))
    for k in range(L, 0, -1):
        D = local.block(f"D{k}", n[k])
        A = local.block(f"a{k - 1}", n[k - 1])
        W = local.variable_matrix(f"W{k}", n[k], n[k - 1])
        b = local.variable_matrix(f"b{k}", n[k], 1)
        S = _pairing(alg, D, alg.affine(W, A, b))
        if penalty is not None:
            S = S + penalty_term(spec, alg, [W, b] if spec.l2_biases else [W], penalty, Integer(m))
        dW, db = layer_gradients(spec, alg, D, A, W, b, factor, ones)
        for quantity, wrt, claim in (("W", W, dW), ("b", b, db)):
            truth = wrt.map(lambda theta, S=S: Partial(S, theta, local.loss_symbol))
            found.append((f"∂J/∂{quantity}{k} = Σ δ{k}·∂Z{k}/∂{quantity}{k}", [(quantity, k)], truth, claim))
    return local, found
