"""The layer library: every layer is one row, like the activations and losses of ``rules``.

A row holds the layer's **forward definition** and the **closed-form backward pass** the
literature uses (batchnorm's dx = (1/N)·γ·(σ²+ε)^(−1/2)·(N·dy − Σdy − x̂·Σ(dy⊙x̂)), BPTT's sums
over time, the flipped kernel of a convolution …), both written once against the matrix algebra
(``algebra``), so every interpretation reads them: exact instances (``matrices.Explicit``), sizes as
symbols (``indexed.Sized``), float arrays (``numeric.NumpyAlgebra``).

Conventions.  A row's tensors are declared by :meth:`Layer.tensors` from the row's sizes: each
has a shape, a *role* — ``input`` (differentiated), ``fixed`` (a mask, the tokens: not
differentiated) — and a domain (``model.DOMAINS``: real, positive, binary).  Scalars are 1 × 1.
``forward(alg, v)`` maps the tensors ``v`` (a dict) to the output y; ``backward(alg, v, dy)`` maps
them and the upstream gradient dy = ∂L/∂y (shaped like y) to ``{name: ∂L/∂name}`` for every
input.  A backward formula is a *claim* until ``layer_proofs`` proves it against direct
differentiation of L = Σ y ⊙ dy.

Examples are rows (N × D) for the normalisations; sequences are rows for attention (one token
per row); a signal is a column for conv1d; an RNN's inputs are the columns x_1 … x_T of X.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy

from .rules import ACTIVATIONS, SIGMOID, TANH


@dataclass(frozen=True)
class Tensor:
    name: str
    rows: object
    cols: object
    role: str = "input"  # input (differentiated) | fixed (mask, tokens)
    domain: str = "real"


@dataclass(frozen=True, eq=False)
class Layer:
    """One row of the layer library (see the module docstring)."""

    name: str
    title: str
    tensors: Callable  # sizes -> [Tensor]
    forward: Callable  # (alg, v) -> y
    backward: Callable  # (alg, v, dy) -> {name: gradient}
    forward_text: str
    backward_text: dict  # name -> the closed form as the literature writes it
    sizes: tuple  # distinct instance sizes, the first the default
    summed: str = ""  # the dimension its backward sums over (proved for every size when possible)
    general_sizes: Callable | None = None  # symbols -> sizes for an every-size proof (None: none)
    plan: str = "direct"  # how ``layer_proofs`` proves it for every size: a key of ``layer_proofs.PLANS``
    source: str = ""  # where the closed form is published
    constants: Callable | None = None  # sizes -> {name: fixed value} (tokens), not symbols
    symbolic_constants: Callable | None = None  # symbolic sizes -> {name: value} for the every-size proof

    def inputs(self, sizes: dict) -> list[Tensor]:
        return [t for t in self.tensors(sizes) if t.role == "input"]

    def __repr__(self):
        return f"<layer {self.name}>"


def _one(alg, value):
    """A 1 × 1 value as a scalar (the algebras broadcast scalars, not 1 × 1 matrices)."""
    return alg.entry(value, 0, 0)


def _rows(alg, a):
    return alg.shape(a)[0]


def _cols(alg, a):
    return alg.shape(a)[1]


def _column(alg, a, t):
    return alg.block(a, (0, _rows(alg, a)), (t, t + 1))


def _columns(alg, parts):
    result = parts[0]
    for part in parts[1:]:
        result = alg.concat(result, part, 1)
    return result


def _inverse_count(n):
    return sympy.Rational(1, n) if isinstance(n, int) else 1 / sympy.sympify(n)


# ----------------------------------------------------------------------------- normalisations


def _normalised(alg, x, eps, axis):
    """x̂ = (x − μ)·(σ² + ε)^(−1/2) along ``axis``, and (σ² + ε)^(−1/2)."""
    inv_std = alg.power(alg.add(alg.var_axis(x, axis), _one(alg, eps)), sympy.Rational(-1, 2))
    return alg.hadamard(alg.sub(x, alg.mean_axis(x, axis)), inv_std), inv_std


def _scaled_normalised(axis):
    """The forward pass of a normalisation layer: γ ⊙ x̂ + β, x̂ normalised along ``axis``."""
    def forward(alg, v):
        xhat, _ = _normalised(alg, v["x"], v["eps"], axis)
        return alg.add(alg.hadamard(v["gamma"], xhat), v["beta"])
    return forward


_batchnorm_forward = _scaled_normalised(0)  # over the batch
_layernorm_forward = _scaled_normalised(1)  # over each example's features


def _batchnorm_backward(alg, v, dy):
    """dx = (1/N)·γ·(σ²+ε)^(−1/2)·(N·dy − Σ_n dy − x̂·Σ_n(dy⊙x̂)); dγ = Σ_n dy⊙x̂; dβ = Σ_n dy."""
    x = v["x"]
    n = _rows(alg, x)
    xhat, inv_std = _normalised(alg, x, v["eps"], 0)
    dgamma = alg.sum_axis(alg.hadamard(dy, xhat), 0)
    inner = alg.sub(alg.sub(alg.scale(n, dy), alg.sum_axis(dy, 0)), alg.hadamard(xhat, dgamma))
    dx = alg.scale(_inverse_count(n), alg.hadamard(alg.hadamard(v["gamma"], inv_std), inner))
    return {"x": dx, "gamma": dgamma, "beta": alg.sum_axis(dy, 0), "eps": _eps_gradient(alg, v, dy, xhat, inv_std)}


def _eps_gradient(alg, v, dy, xhat, inv_std):
    """dε = −½·Σ dy⊙γ⊙x̂⊙(σ²+ε)^(−1): x̂ = (x − μ)(σ²+ε)^(−1/2) depends on ε through the power."""
    weighted = alg.hadamard(alg.hadamard(dy, v["gamma"]), alg.hadamard(xhat, alg.hadamard(inv_std, inv_std)))
    return alg.build(1, 1, lambda i, j: sympy.Rational(-1, 2) * alg.total(weighted))


def _norm_tensors(sizes):
    n, d = sizes["N"], sizes["D"]
    return [Tensor("x", n, d), Tensor("gamma", 1, d), Tensor("beta", 1, d), Tensor("eps", 1, 1, domain="positive")]


def _layernorm_backward(alg, v, dy):
    """g = dy⊙γ; dx = (1/D)·(σ²+ε)^(−1/2)·(D·g − Σ_d g − x̂·Σ_d(g⊙x̂)); dγ = Σ_n dy⊙x̂; dβ = Σ_n dy."""
    x = v["x"]
    d = _cols(alg, x)
    xhat, inv_std = _normalised(alg, x, v["eps"], 1)
    g = alg.hadamard(dy, v["gamma"])
    inner = alg.sub(alg.sub(alg.scale(d, g), alg.sum_axis(g, 1)), alg.hadamard(xhat, alg.sum_axis(alg.hadamard(g, xhat), 1)))
    dx = alg.scale(_inverse_count(d), alg.hadamard(inv_std, inner))
    return {"x": dx, "gamma": alg.sum_axis(alg.hadamard(dy, xhat), 0), "beta": alg.sum_axis(dy, 0),
            "eps": _eps_gradient(alg, v, dy, xhat, inv_std)}


# ---------------------------------------------------------------------------------- attention


def _attention_tensors(masked):
    def tensors(sizes):
        n, m, d, e = sizes["n"], sizes["m"], sizes["d"], sizes["e"]
        found = [Tensor("Q", n, d), Tensor("K", m, d), Tensor("V", m, e)]
        if masked:
            found.append(Tensor("mask", n, m, role="fixed", domain="binary"))
        return found

    return tensors


def _attention_scale(alg, v):
    d = _cols(alg, v["Q"])
    return 1 / sympy.sqrt(d)


def _attention_weights(alg, v):
    """P = softmax(QKᵀ/√d) along each row; with a 0/1 mask, P = M⊙e^S / Σ(M⊙e^S) (−∞ scores)."""
    scores = alg.scale(_attention_scale(alg, v), alg.matmul(v["Q"], alg.T(v["K"])))
    if "mask" not in v:
        return alg.softmax_axis(scores, 1)
    weights = alg.hadamard(v["mask"], alg.exp(scores))
    return alg.divide(weights, alg.sum_axis(weights, 1))


def _attention_forward(alg, v):
    return alg.matmul(_attention_weights(alg, v), v["V"])


def attention_value_step(alg, P, V, dy):
    """Y = P V: ∂L/∂P = dY Vᵀ and ∂L/∂V = Pᵀ dY."""
    return alg.matmul(dy, alg.T(V)), alg.matmul(alg.T(P), dy)


def softmax_rows_step(alg, P, G):
    """P = softmax(S) along each row (masked or not), G = ∂L/∂P: ∂L/∂S = P⊙(G − rowsum(G⊙P))."""
    return alg.hadamard(P, alg.sub(G, alg.sum_axis(alg.hadamard(G, P), 1)))


def attention_score_step(alg, Q, K, c, G):
    """S = c·Q Kᵀ, G = ∂L/∂S: ∂L/∂Q = c·G K and ∂L/∂K = c·Gᵀ Q."""
    return alg.scale(c, alg.matmul(G, K)), alg.scale(c, alg.matmul(alg.T(G), Q))


def _attention_backward(alg, v, dy):
    """dV = Pᵀ dY; dP = dY Vᵀ; dS = P⊙(dP − rowsum(dP⊙P)); dQ = dS K/√d; dK = dSᵀ Q/√d."""
    P = _attention_weights(alg, v)
    dP, dV = attention_value_step(alg, P, v["V"], dy)
    dQ, dK = attention_score_step(alg, v["Q"], v["K"], _attention_scale(alg, v), softmax_rows_step(alg, P, dP))
    return {"Q": dQ, "K": dK, "V": dV}


# ------------------------------------------------------------------------------- convolutions


def _out(length, kernel, stride):
    return (length - kernel) // stride + 1 if isinstance(length, int) else (length - kernel) / stride + 1


def _conv1d_tensors(sizes):
    return [Tensor("x", sizes["L"], 1), Tensor("w", sizes["K"], 1), Tensor("b", 1, 1)]


def _conv1d_forward(alg, v):
    """y[i] = Σ_k w[k]·x[s·i + k] + b (cross-correlation, valid padding, stride s)."""
    x, w = v["x"], v["w"]
    K, s = _rows(alg, w), v.get("stride", 1)
    b = _one(alg, v["b"])
    out = _out(_rows(alg, x), K, s)
    return alg.build(out, 1, lambda i, _: alg.index_sum(lambda k: alg.entry(w, k, 0) * alg.entry(x, s * i + k, 0), K) + b)


def _conv1d_backward(alg, v, dy):
    """dx[j] = Σ_i dy[i]·w[j − s·i] (the transposed convolution; for stride 1 the full convolution of
    dy with w, i.e. the flipped kernel run over the zero-padded dy); dw[k] = Σ_i dy[i]·x[s·i + k];
    db = Σ_i dy[i]."""
    x, w = v["x"], v["w"]
    K, L, s = _rows(alg, w), _rows(alg, x), v.get("stride", 1)
    out = _rows(alg, dy)
    # the transposed convolution: dx[j] = Σ_i dy[i]·w[j − s·i] (w zero outside)
    dx = alg.build(L, 1, lambda j, _: alg.index_sum(lambda i: alg.entry(dy, i, 0) * alg.padded_entry(w, j - s * i, 0), out))
    dw = alg.build(K, 1, lambda k, _: alg.index_sum(lambda i: alg.entry(dy, i, 0) * alg.entry(x, s * i + k, 0), out))
    return {"x": dx, "w": dw, "b": alg.build(1, 1, lambda i, j: alg.index_sum(lambda t: alg.entry(dy, t, 0), out))}


def _conv2d_tensors(sizes):
    return [Tensor("x", sizes["H"], sizes["W"]), Tensor("w", sizes["kh"], sizes["kw"]), Tensor("b", 1, 1)]


def _conv2d_forward(alg, v):
    """y[i, j] = Σ_{p,q} w[p, q]·x[s·i + p, s·j + q] + b."""
    x, w = v["x"], v["w"]
    (H, W), (kh, kw), s = alg.shape(x), alg.shape(w), v.get("stride", 1)
    b = _one(alg, v["b"])
    return alg.build(_out(H, kh, s), _out(W, kw, s), lambda i, j: alg.index_sum(lambda p: alg.index_sum(
        lambda q: alg.entry(w, p, q) * alg.entry(x, s * i + p, s * j + q), kw), kh) + b)


def _conv2d_backward(alg, v, dy):
    """dx[a, c] = Σ_{i,j} dy[i, j]·w[a − s·i, c − s·j] (the transposed convolution; for stride 1 the
    full convolution of dy with w: the flipped kernel over the zero-padded dy);
    dw[p, q] = Σ_{i,j} dy[i, j]·x[s·i + p, s·j + q]; db = Σ dy."""
    x, w = v["x"], v["w"]
    (H, W), (kh, kw), s = alg.shape(x), alg.shape(w), v.get("stride", 1)
    oh, ow = alg.shape(dy)

    # the transposed convolution: dx[a, c] = Σ_{i,j} dy[i, j]·w[a − s·i, c − s·j] (w zero outside)
    dx = alg.build(H, W, lambda a, c: alg.index_sum(lambda i: alg.index_sum(
        lambda j: alg.entry(dy, i, j) * alg.padded_entry(w, a - s * i, c - s * j), ow), oh))
    dw = alg.build(kh, kw, lambda p, q: alg.index_sum(lambda i: alg.index_sum(
        lambda j: alg.entry(dy, i, j) * alg.entry(x, s * i + p, s * j + q), ow), oh))
    return {"x": dx, "w": dw, "b": alg.build(1, 1, lambda i, j: alg.total(dy))}


# ------------------------------------------------------------------------------------ pooling


def _meanpool_forward(alg, v):
    """y[i, j] = (1/p²)·Σ_{a,c < p} x[p·i + a, p·j + c] (p × p windows, stride p)."""
    x, p = v["x"], v["pool"]
    H, W = alg.shape(x)
    return alg.build(H // p, W // p, lambda i, j: _inverse_count(p * p) * alg.index_sum(
        lambda a: alg.index_sum(lambda c: alg.entry(x, p * i + a, p * j + c), p), p))


def _meanpool_backward(alg, v, dy):
    """dx[a, c] = dy[⌊a/p⌋, ⌊c/p⌋]/p²: each window's gradient spread evenly over it."""
    x, p = v["x"], v["pool"]
    H, W = alg.shape(x)
    return {"x": alg.build(H, W, lambda a, c: _inverse_count(p * p) * alg.entry(dy, a // p, c // p))}


def _maxpool_sizes():
    """Symbolic output size O; the input is L = 2·O."""
    from .indexed import size

    o = size("O")
    return {"O": o, "L": 2 * o}


def _pool_sizes():
    """Symbolic window p and output sizes OH, OW; the input is H = p·OH by W = p·OW."""
    from .indexed import size

    p, oh, ow = size("p"), size("OH"), size("OW")
    return {"p": p, "OH": oh, "OW": ow, "H": p * oh, "W": p * ow}


def _maxpool_forward(alg, v):
    """y[i] = max(x[2i], x[2i+1]) (windows of 2 along a column, stride 2)."""
    x = v["x"]
    L = _rows(alg, x)
    pairs = alg.build(L // 2, 1, lambda i, _: alg.entry(x, 2 * i, 0))
    others = alg.build(L // 2, 1, lambda i, _: alg.entry(x, 2 * i + 1, 0))
    return alg.maximum(pairs, others)


def _maxpool_backward(alg, v, dy):
    """The gradient goes to the window's argmax: dx[2i] = dy[i]·H(x[2i] − x[2i+1]),
    dx[2i+1] = dy[i]·(1 − H(x[2i] − x[2i+1])) (almost everywhere: off ties)."""
    x = v["x"]
    L = _rows(alg, x)
    gaps = alg.build(L // 2, 1, lambda i, _: alg.entry(x, 2 * i, 0) - alg.entry(x, 2 * i + 1, 0))
    # H, the derivative atom of max(a, b) = b + relu(a − b)
    steps = alg.apply(ACTIVATIONS["relu"].derivative_rule, gaps)

    def entry(j, _):
        i, first = j // 2, j % 2 == 0
        h = alg.entry(steps, i, 0)
        return alg.entry(dy, i, 0) * (h if first else 1 - h)

    return {"x": alg.build(L, 1, entry)}


# ------------------------------------------------------------------------------- recurrences


def _rnn_tensors(sizes):
    T, H, D = sizes["T"], sizes["H"], sizes["D"]
    return [Tensor("X", D, T), Tensor("h0", H, 1), Tensor("W", H, H), Tensor("U", H, D), Tensor("b", H, 1)]


def _rnn_states(alg, v):
    """h_t = tanh(W h_{t−1} + U x_t + b) for t = 1 … T."""
    h, states = v["h0"], []
    for t in range(_cols(alg, v["X"])):
        pre = alg.add(alg.add(alg.matmul(v["W"], h), alg.matmul(v["U"], _column(alg, v["X"], t))), v["b"])
        h = alg.apply(TANH.atom, pre)
        states.append(h)
    return states


def _rnn_forward(alg, v):
    """The hidden states side by side: [h_1 … h_T] (H × T)."""
    return _columns(alg, _rnn_states(alg, v))


def rnn_cell_step(alg, W, U, h_prev, x, h, g):
    """One cell h = tanh(W h_prev + U x + b) with g = ∂L/∂h (total): δ = g⊙(1 − h²), and this
    use's contributions Wᵀδ to ∂L/∂h_prev, δ h_prevᵀ to dW, δ xᵀ to dU, δ to db, Uᵀδ to ∂L/∂x."""
    delta = alg.hadamard(g, alg.sub(alg.full(1, h), alg.hadamard(h, h)))
    return {"delta": delta, "h_prev": alg.matmul(alg.T(W), delta), "W": alg.outer(delta, h_prev),
            "U": alg.outer(delta, x), "b": delta, "x": alg.matmul(alg.T(U), delta)}


def _rnn_backward(alg, v, dy):
    """BPTT: g_T = dh_T, g_t = dh_t + Wᵀ δ_{t+1}; δ_t = g_t ⊙ (1 − h_t²); dW = Σ_t δ_t h_{t−1}ᵀ,
    dU = Σ_t δ_t x_tᵀ, db = Σ_t δ_t, dh₀ = Wᵀ δ_1, dx_t = Uᵀ δ_t."""
    states = _rnn_states(alg, v)
    T = len(states)
    previous = [v["h0"]] + states[:-1]
    steps = [None] * T
    carry = None
    for t in reversed(range(T)):
        g = _column(alg, dy, t) if carry is None else alg.add(_column(alg, dy, t), carry)
        steps[t] = rnn_cell_step(alg, v["W"], v["U"], previous[t], _column(alg, v["X"], t), states[t], g)
        carry = steps[t]["h_prev"]

    def total(name):
        result = steps[0][name]
        for step in steps[1:]:
            result = alg.add(result, step[name])
        return result

    return {"W": total("W"), "U": total("U"), "b": total("b"), "h0": carry,
            "X": _columns(alg, [step["x"] for step in steps])}


def _lstm_tensors(sizes):
    H, D = sizes["H"], sizes["D"]
    return [Tensor("x", D, 1), Tensor("h", H, 1), Tensor("c", H, 1), Tensor("W", 4 * H, D + H), Tensor("b", 4 * H, 1)]


def lstm_cell(alg, pre, c):
    """The cell from its four pre-activation blocks (i, f, o, g): gates σ, candidate tanh,
    c′ = f⊙c + i⊙g, h′ = o⊙tanh(c′).  Returns (i, f, o, g, c′, tanh c′)."""
    i, f, o = (alg.apply(SIGMOID.atom, p) for p in pre[:3])
    g = alg.apply(TANH.atom, pre[3])
    c_new = alg.add(alg.hadamard(f, c), alg.hadamard(i, g))
    return i, f, o, g, c_new, alg.apply(TANH.atom, c_new)


def lstm_gate_step(alg, i, f, o, g, c, t, dh, dc):
    """Given dh′ = ∂L/∂h′ and dc′ = ∂L/∂c′ (t = tanh c′): dc′_total = dc′ + dh′⊙o⊙(1 − t²);
    the pre-activation gradients [di⊙i(1−i), df⊙f(1−f), do⊙o(1−o), dg⊙(1−g²)] with di = dc′_total⊙g,
    df = dc′_total⊙c, do = dh′⊙t, dg = dc′_total⊙i; and ∂L/∂c = dc′_total⊙f."""
    one = alg.full(1, t)
    dct = alg.add(dc, alg.hadamard(alg.hadamard(dh, o), alg.sub(one, alg.hadamard(t, t))))
    parts = [alg.hadamard(alg.hadamard(dct, g), alg.hadamard(i, alg.sub(one, i))),
             alg.hadamard(alg.hadamard(dct, c), alg.hadamard(f, alg.sub(one, f))),
             alg.hadamard(alg.hadamard(dh, t), alg.hadamard(o, alg.sub(one, o))),
             alg.hadamard(alg.hadamard(dct, i), alg.sub(one, alg.hadamard(g, g)))]
    return parts, alg.hadamard(dct, f)


def affine_step(alg, W, z, G):
    """a = W z + b, G = ∂L/∂a: ∂L/∂W = G zᵀ, ∂L/∂b = G, ∂L/∂z = Wᵀ G."""
    return alg.outer(G, z), G, alg.matmul(alg.T(W), G)


def _lstm_gates(alg, v):
    """a = W [x; h] + b split into the blocks of i, f, o (σ) and g (tanh), then the cell."""
    H = _rows(alg, v["h"])
    z = alg.concat(v["x"], v["h"], 0)
    a = alg.add(alg.matmul(v["W"], z), v["b"])
    return (z, *lstm_cell(alg, [alg.block(a, (k * H, (k + 1) * H), (0, 1)) for k in range(4)], v["c"]))


def _lstm_forward(alg, v):
    """c′ = f⊙c + i⊙g, h′ = o⊙tanh(c′); the output is [h′; c′] (2H × 1)."""
    _, _, _, o, _, c_new, t = _lstm_gates(alg, v)
    return alg.concat(alg.hadamard(o, t), c_new, 0)


def _lstm_backward(alg, v, dy):
    """dc′_total = dc′ + dh′⊙o⊙(1 − tanh²c′); do = dh′⊙tanh c′; di = dc′_total⊙g; df = dc′_total⊙c;
    dg = dc′_total⊙i; da = [di⊙i(1−i); df⊙f(1−f); do⊙o(1−o); dg⊙(1−g²)]; dW = da [x; h]ᵀ, db = da,
    [dx; dh] = Wᵀ da, dc = dc′_total⊙f."""
    H, D = _rows(alg, v["h"]), _rows(alg, v["x"])
    z, i, f, o, g, c_new, t = _lstm_gates(alg, v)
    parts, dc_prev = lstm_gate_step(alg, i, f, o, g, v["c"], t, alg.block(dy, (0, H), (0, 1)), alg.block(dy, (H, 2 * H), (0, 1)))
    da = parts[0]
    for p in parts[1:]:
        da = alg.concat(da, p, 0)
    dW, db, dz = affine_step(alg, v["W"], z, da)
    return {"x": alg.block(dz, (0, D), (0, 1)), "h": alg.block(dz, (D, D + H), (0, 1)), "c": dc_prev, "W": dW, "b": db}


# ------------------------------------------------------------------------- the smaller rows


def _residual_tensors(sizes):
    D, H, N = sizes["D"], sizes["H"], sizes["N"]
    return [Tensor("x", D, N), Tensor("W1", H, D), Tensor("b1", H, 1), Tensor("W2", D, H), Tensor("b2", D, 1)]


def _residual_hidden(alg, v):
    return alg.apply(TANH.atom, alg.add(alg.matmul(v["W1"], v["x"]), v["b1"]))


def _residual_forward(alg, v):
    """y = x + W₂ tanh(W₁ x + b₁) + b₂ (examples as columns)."""
    return alg.add(alg.add(v["x"], alg.matmul(v["W2"], _residual_hidden(alg, v))), v["b2"])


def tanh_step(alg, a, G):
    """a = tanh(u) elementwise, G = ∂L/∂a: ∂L/∂u = G ⊙ (1 − a²)."""
    return alg.hadamard(G, alg.sub(alg.full(1, a), alg.hadamard(a, a)))


def dense_step(alg, W, X, G):
    """U = W X + b 1ᵀ (examples as columns), G = ∂L/∂U: ∂L/∂W = G Xᵀ, ∂L/∂b = G 1 (row sums),
    ∂L/∂X = Wᵀ G."""
    return alg.matmul(G, alg.T(X)), alg.sum_axis(G, 1), alg.matmul(alg.T(W), G)


def _residual_backward(alg, v, dy):
    """δ = (W₂ᵀ dy)⊙(1 − a²); dx = dy + W₁ᵀ δ (the skip adds dy); dW₂ = dy aᵀ, db₂ = Σ dy, dW₁ = δ xᵀ, db₁ = Σ δ."""
    a = _residual_hidden(alg, v)
    dW2, db2, da = dense_step(alg, v["W2"], a, dy)
    dW1, db1, dx_branch = dense_step(alg, v["W1"], v["x"], tanh_step(alg, a, da))
    return {"x": alg.add(dy, dx_branch), "W2": dW2, "b2": db2, "W1": dW1, "b1": db1}


def _embedding_tensors(sizes):
    return [Tensor("E", sizes["V"], sizes["D"])]


def _embedding_tokens(sizes):
    """Fixed token ids (0-based) with repeats, so that a gradient that does not accumulate shows."""
    V, N = sizes["V"], sizes["N"]
    return {"tokens": tuple((3 * k + 1) % V if k % 3 else 0 for k in range(N))}


def _onehot(alg, tokens, V):
    """Row n is the indicator of token tokens[n]: fixed ids (a tuple), or a column of symbolic ids
    t[n] for the every-size proof, where entry (n, j) is δ(t[n], j)."""
    if isinstance(tokens, tuple):
        return alg.build(len(tokens), V, lambda n, j: sympy.Integer(1 if tokens[n] == j else 0))
    return alg.build(_rows(alg, tokens), V, lambda n, j: sympy.KroneckerDelta(alg.entry(tokens, n, 0), j))


def _symbolic_tokens(sizes):
    """The tokens as an arbitrary integer sequence t[0], …, t[N−1] (ids outside 0 … V−1 give zero
    rows, in the forward pass and in dE alike, so the lemma needs no assumption on them)."""
    from .indexed import SizedMat

    t = sympy.IndexedBase("t", integer=True)
    return {"tokens": SizedMat(sizes["N"], 1, lambda n, _: t[n])}


def _embedding_forward(alg, v):
    """y = onehot(tokens) E: row n is E[tokens[n]]."""
    return alg.matmul(_onehot(alg, v["tokens"], _rows(alg, v["E"])), v["E"])


def _embedding_backward(alg, v, dy):
    """dE = onehot(tokens)ᵀ dy: row j sums dy over the positions holding token j."""
    return {"E": alg.matmul(alg.T(_onehot(alg, v["tokens"], _rows(alg, v["E"]))), dy)}


def _dropout_tensors(sizes):
    n, d = sizes["N"], sizes["D"]
    return [Tensor("x", n, d), Tensor("mask", n, d, domain="binary"), Tensor("keep", 1, 1, domain="positive")]


def _dropout_forward(alg, v):
    """y = x ⊙ m / q (inverted dropout: m a fixed 0/1 mask, q the keep probability)."""
    return alg.scale(1 / _one(alg, v["keep"]), alg.hadamard(v["x"], v["mask"]))


def _dropout_backward(alg, v, dy):
    """dx = dy ⊙ m / q (and, for a model that differentiates them, dm = dy ⊙ x / q, dq = −Σ dy⊙x⊙m / q²)."""
    q = _one(alg, v["keep"])
    return {"x": alg.scale(1 / q, alg.hadamard(dy, v["mask"])), "mask": alg.scale(1 / q, alg.hadamard(dy, v["x"])),
            "keep": alg.build(1, 1, lambda i, j: -alg.total(alg.hadamard(dy, alg.hadamard(v["x"], v["mask"]))) / (q * q))}


GELU_C = sympy.Rational(44715, 1000000)


def _gelu_inner(x):
    return sympy.sqrt(2 / sympy.pi) * (x + GELU_C * x ** 3)


def _gelu_forward(alg, v):
    """GELU(x) ≈ ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), elementwise."""
    return alg.apply(lambda x: x * (1 + TANH.atom(_gelu_inner(x))) / 2, v["x"])


def _gelu_derivative(x):
    t = TANH.atom(_gelu_inner(x))
    return (1 + t) / 2 + x * (1 - t ** 2) * sympy.sqrt(2 / sympy.pi) * (1 + 3 * GELU_C * x ** 2) / 2


def _gelu_backward(alg, v, dy):
    """dx = dy ⊙ [½(1 + t) + ½·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²)], t = tanh(√(2/π)(x + 0.044715x³))."""
    return {"x": alg.hadamard(dy, alg.apply(_gelu_derivative, v["x"]))}


def _x_tensor(sizes):
    return [Tensor("x", sizes["N"], sizes["D"])]


def _softmax_forward(alg, v):
    """y = softmax(x) along each row."""
    return alg.softmax_axis(v["x"], 1)


def _softmax_backward(alg, v, dy):
    """dx = y ⊙ (dy − rowsum(dy ⊙ y)): the Jacobian diag(y) − y yᵀ applied row by row."""
    y = alg.softmax_axis(v["x"], 1)
    return {"x": alg.hadamard(y, alg.sub(dy, alg.sum_axis(alg.hadamard(dy, y), 1)))}


def _log_softmax_forward(alg, v):
    """y = log softmax(x) along each row."""
    return alg.log(alg.softmax_axis(v["x"], 1))


def _log_softmax_backward(alg, v, dy):
    """dx = dy − softmax(x) ⊙ rowsum(dy)."""
    return {"x": alg.sub(dy, alg.hadamard(alg.softmax_axis(v["x"], 1), alg.sum_axis(dy, 1)))}


def _with_stride(forward_or_backward, stride):
    if forward_or_backward.__code__.co_argcount == 2:
        return lambda alg, v: forward_or_backward(alg, {**v, "stride": stride})
    return lambda alg, v, dy: forward_or_backward(alg, {**v, "stride": stride}, dy)


def _with(forward_or_backward, **defaults):
    """The row's fixed parameters (a pooling window) as defaults a symbolic proof may replace."""
    if forward_or_backward.__code__.co_argcount == 2:
        return lambda alg, v: forward_or_backward(alg, {**defaults, **v})
    return lambda alg, v, dy: forward_or_backward(alg, {**defaults, **v}, dy)


def _strided(lengths: dict, stride: int = 2) -> dict:
    """Symbolic sizes of a stride-s row: each input length s·(O − 1) + K for symbolic output length O
    and kernel size K (every valid pair of lengths), plus O and K themselves."""
    from .indexed import size

    sizes = {}
    for length, (out, kernel) in lengths.items():
        o, k = size(out), size(kernel)
        sizes.update({out: o, kernel: k, length: stride * (o - 1) + k})
    return sizes


def _symbolic(*names):
    from .indexed import size

    return lambda: {name: size(name) for name in names}


_NORM_TEXT = {"gamma": "dγ = Σ_n dy ⊙ x̂", "beta": "dβ = Σ_n dy", "eps": "dε = −½·Σ dy⊙γ⊙x̂/(σ²+ε)"}

LAYERS: dict[str, Layer] = {row.name: row for row in (
    Layer("batchnorm", "batch normalisation (training mode)", _norm_tensors, _batchnorm_forward, _batchnorm_backward,
          "y = γ ⊙ (x − μ)/√(σ² + ε) + β, μ, σ² over the batch (axis 0)",
          {"x": "dx = (1/N)·γ·(σ²+ε)^(−1/2)·(N·dy − Σ_n dy − x̂·Σ_n(dy⊙x̂))", **_NORM_TEXT},
          ({"N": 3, "D": 2}, {"N": 2, "D": 1}, {"N": 4, "D": 1}), summed="N",
          general_sizes=_symbolic("N", "D"), source="Ioffe & Szegedy 2015; Kratzert 2016"),
    Layer("layernorm", "layer normalisation", _norm_tensors, _layernorm_forward, _layernorm_backward,
          "y = γ ⊙ (x − μ)/√(σ² + ε) + β, μ, σ² over each example's features (axis 1)",
          {"x": "dx = (1/D)·(σ²+ε)^(−1/2)·(D·g − Σ_d g − x̂·Σ_d(g⊙x̂)), g = dy⊙γ", **_NORM_TEXT},
          ({"N": 2, "D": 3}, {"N": 1, "D": 2}, {"N": 1, "D": 4}), summed="D",
          general_sizes=_symbolic("N", "D"), source="Ba, Kiros & Hinton 2016"),
    Layer("attention", "scaled dot-product attention (single head)", _attention_tensors(False),
          _attention_forward, _attention_backward, "Y = softmax(QKᵀ/√d) V, softmax along each row",
          {"V": "dV = Pᵀ dY", "Q": "dQ = dS K/√d, dS = P⊙(dY Vᵀ − rowsum(dY Vᵀ ⊙ P))", "K": "dK = dSᵀ Q/√d"},
          ({"n": 2, "m": 3, "d": 2, "e": 2}, {"n": 2, "m": 2, "d": 1, "e": 1}, {"n": 1, "m": 3, "d": 2, "e": 1}),
          summed="m", general_sizes=_symbolic("n", "m", "d", "e"), plan="attention", source="Vaswani et al. 2017"),
    Layer("masked_attention", "scaled dot-product attention with a 0/1 mask (causal, padding)",
          _attention_tensors(True), _attention_forward, _attention_backward,
          "Y = P V, P = M⊙exp(QKᵀ/√d) / rowsum(M⊙exp(QKᵀ/√d)) (a masked score is −∞)",
          {"V": "dV = Pᵀ dY", "Q": "dQ = dS K/√d, dS = P⊙(dY Vᵀ − rowsum(dY Vᵀ ⊙ P))", "K": "dK = dSᵀ Q/√d"},
          ({"n": 2, "m": 3, "d": 2, "e": 1}, {"n": 2, "m": 2, "d": 1, "e": 1}), summed="m",
          general_sizes=_symbolic("n", "m", "d", "e"), plan="attention"),
    Layer("conv1d", "1-D convolution (cross-correlation), valid padding, stride 1", _conv1d_tensors,
          _conv1d_forward, _conv1d_backward, "y[i] = Σ_k w[k]·x[i+k] + b",
          {"x": "dx[j] = Σ_i dy[i]·w[j−i] (the full convolution of dy with w: the flipped kernel over the zero-padded dy)",
           "w": "dw[k] = Σ_i dy[i]·x[i+k]", "b": "db = Σ_i dy[i]"},
          ({"L": 4, "K": 2}, {"L": 5, "K": 3}, {"L": 3, "K": 1}), summed="L, K", general_sizes=_symbolic("L", "K")),
    Layer("conv1d_stride2", "1-D convolution, valid padding, stride 2", _conv1d_tensors,
          _with_stride(_conv1d_forward, 2), _with_stride(_conv1d_backward, 2), "y[i] = Σ_k w[k]·x[2i+k] + b",
          {"x": "dx[j] = Σ_i dy[i]·w[j−2i] (the transposed convolution)", "w": "dw[k] = Σ_i dy[i]·x[2i+k]",
           "b": "db = Σ_i dy[i]"},
          ({"L": 5, "K": 2}, {"L": 6, "K": 3}, {"L": 7, "K": 3}), summed="L, K",
          general_sizes=lambda: _strided({"L": ("O", "K")})),
    Layer("conv2d", "2-D convolution (cross-correlation), valid padding, stride 1", _conv2d_tensors,
          _conv2d_forward, _conv2d_backward, "y[i,j] = Σ_{p,q} w[p,q]·x[i+p, j+q] + b",
          {"x": "dx[a,c] = Σ_{i,j} dy[i,j]·w[a−i, c−j] (the full convolution of dy with w)",
           "w": "dw[p,q] = Σ_{i,j} dy[i,j]·x[i+p, j+q]", "b": "db = Σ dy"},
          ({"H": 3, "W": 3, "kh": 2, "kw": 2}, {"H": 3, "W": 4, "kh": 2, "kw": 3}, {"H": 2, "W": 3, "kh": 1, "kw": 2}), general_sizes=_symbolic("H", "W", "kh", "kw")),
    Layer("conv2d_stride2", "2-D convolution, valid padding, stride 2", _conv2d_tensors,
          _with_stride(_conv2d_forward, 2), _with_stride(_conv2d_backward, 2),
          "y[i,j] = Σ_{p,q} w[p,q]·x[2i+p, 2j+q] + b",
          {"x": "dx[a,c] = Σ_{i,j} dy[i,j]·w[a−2i, c−2j] (the transposed convolution)",
           "w": "dw[p,q] = Σ_{i,j} dy[i,j]·x[2i+p, 2j+q]", "b": "db = Σ dy"},
          ({"H": 4, "W": 4, "kh": 2, "kw": 2}, {"H": 5, "W": 4, "kh": 3, "kw": 2}),
          general_sizes=lambda: _strided({"H": ("OH", "kh"), "W": ("OW", "kw")})),
    Layer("meanpool", "mean pooling over 2 × 2 windows, stride 2", lambda s: [Tensor("x", s["H"], s["W"])],
          _with(_meanpool_forward, pool=2), _with(_meanpool_backward, pool=2),
          "y[i,j] = ¼·Σ_{a,c<2} x[2i+a, 2j+c]", {"x": "dx[a,c] = ¼·dy[⌊a/2⌋, ⌊c/2⌋]"},
          ({"H": 2, "W": 4}, {"H": 4, "W": 4}, {"H": 4, "W": 2}), summed="p",
          general_sizes=_pool_sizes, symbolic_constants=lambda sizes: {"pool": sizes["p"]}, plan="meanpool"),
    Layer("maxpool", "max pooling over windows of 2, stride 2", lambda s: [Tensor("x", s["L"], 1)],
          _maxpool_forward, _maxpool_backward, "y[i] = max(x[2i], x[2i+1])",
          {"x": "dx = dy routed to each window's argmax (off ties)"}, ({"L": 4}, {"L": 2}, {"L": 6}),
          general_sizes=_maxpool_sizes, plan="maxpool"),
    Layer("rnn", "RNN (tanh cell) unrolled over T steps, backpropagation through time", _rnn_tensors,
          _rnn_forward, _rnn_backward, "h_t = tanh(W h_{t−1} + U x_t + b), t = 1 … T; y = [h_1 … h_T]",
          {"W": "dW = Σ_t δ_t h_{t−1}ᵀ, δ_t = (dh_t + Wᵀ δ_{t+1}) ⊙ (1 − h_t²)", "U": "dU = Σ_t δ_t x_tᵀ",
           "b": "db = Σ_t δ_t", "h0": "dh₀ = Wᵀ δ_1", "X": "dx_t = Uᵀ δ_t"},
          ({"T": 3, "H": 2, "D": 1}, {"T": 3, "H": 1, "D": 1}, {"T": 4, "H": 1, "D": 2}), summed="T",
          general_sizes=_symbolic("T", "H", "D"), plan="bptt"),
    Layer("lstm", "LSTM cell (gates i, f, o; candidate g)", _lstm_tensors, _lstm_forward, _lstm_backward,
          "[i; f; o; g] = [σ; σ; σ; tanh](W [x; h] + b); c′ = f⊙c + i⊙g; h′ = o⊙tanh c′; y = [h′; c′]",
          {"W": "dW = da [x; h]ᵀ", "b": "db = da", "x": "[dx; dh] = Wᵀ da", "h": "[dx; dh] = Wᵀ da",
           "c": "dc = (dc′ + dh′⊙o⊙(1 − tanh²c′))⊙f"},
          ({"H": 2, "D": 1}, {"H": 1, "D": 1}, {"H": 1, "D": 2}), general_sizes=_symbolic("H", "D"), plan="lstm"),
    Layer("residual", "residual block y = x + F(x), F a tanh layer", _residual_tensors, _residual_forward,
          _residual_backward, "y = x + W₂ tanh(W₁ x + b₁) + b₂",
          {"x": "dx = dy + W₁ᵀ((W₂ᵀ dy)⊙(1 − a²))", "W2": "dW₂ = dy aᵀ", "b2": "db₂ = Σ dy",
           "W1": "dW₁ = δ xᵀ", "b1": "db₁ = Σ δ"},
          ({"D": 2, "H": 2, "N": 2}, {"D": 2, "H": 1, "N": 1}, {"D": 1, "H": 2, "N": 2}), general_sizes=_symbolic("D", "H", "N"),
          plan="residual"),
    Layer("embedding", "embedding lookup (tokens fixed, with repeats)", _embedding_tensors,
          _embedding_forward, _embedding_backward, "y = onehot(tokens) E", {"E": "dE = onehot(tokens)ᵀ dy"},
          ({"V": 3, "D": 2, "N": 4}, {"V": 4, "D": 1, "N": 5}, {"V": 2, "D": 2, "N": 3}), summed="N",
          constants=_embedding_tokens, general_sizes=_symbolic("V", "D", "N"), symbolic_constants=_symbolic_tokens,
          plan="embedding"),
    Layer("dropout", "dropout with a fixed mask (inverted: scaled by 1/q)", _dropout_tensors, _dropout_forward,
          _dropout_backward, "y = x ⊙ m / q", {"x": "dx = dy ⊙ m / q"},
          ({"N": 2, "D": 2}, {"N": 1, "D": 3}, {"N": 3, "D": 1}), general_sizes=_symbolic("N", "D")),
    Layer("gelu", "GELU, tanh form", _x_tensor, _gelu_forward, _gelu_backward,
          "y = ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))",
          {"x": "dx = dy ⊙ [½(1+t) + ½·x·(1−t²)·√(2/π)·(1 + 0.134145·x²)]"},
          ({"N": 2, "D": 2}, {"N": 2, "D": 1}, {"N": 1, "D": 3}), general_sizes=_symbolic("N", "D")),
    Layer("softmax", "softmax along each row", _x_tensor, _softmax_forward, _softmax_backward,
          "y = softmax(x) along axis 1", {"x": "dx = y ⊙ (dy − rowsum(dy ⊙ y))"},
          ({"N": 2, "D": 3}, {"N": 2, "D": 2}, {"N": 1, "D": 4}), summed="D", general_sizes=_symbolic("N", "D")),
    Layer("log_softmax", "log-softmax along each row", _x_tensor, _log_softmax_forward, _log_softmax_backward,
          "y = log softmax(x) along axis 1", {"x": "dx = dy − softmax(x) ⊙ rowsum(dy)"},
          ({"N": 2, "D": 3}, {"N": 2, "D": 2}, {"N": 1, "D": 4}), summed="D", general_sizes=_symbolic("N", "D")),
)}


def layer(name: str) -> Layer:
    """The row called ``name``; an unknown name is a one-line error with the closest names."""
    try:
        return LAYERS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, LAYERS, n=3, cutoff=0.5)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise KeyError(f"unknown layer {name!r}{hint}; layers: {', '.join(LAYERS)}") from None


#: The rows a ``[model]`` definition or a claim may call, with their arguments in order:
#: ``y = batchnorm(x, gamma, beta, eps)`` is the row's forward definition (examples as rows).
FUNCTIONS: dict[str, tuple] = {
    "batchnorm": ("x", "gamma", "beta", "eps"),
    "layernorm": ("x", "gamma", "beta", "eps"),
    "attention": ("Q", "K", "V"),
    "masked_attention": ("Q", "K", "V", "mask"),
    "conv1d": ("x", "w", "b"),
    "conv1d_stride2": ("x", "w", "b"),
    "conv2d": ("x", "w", "b"),
    "conv2d_stride2": ("x", "w", "b"),
    "meanpool": ("x",),
    "maxpool": ("x",),
    "residual": ("x", "W1", "b1", "W2", "b2"),
    "dropout": ("x", "mask", "keep"),
    "gelu": ("x",),
}


def call(name: str, alg, arguments: list):
    """The row ``name``'s forward pass applied to ``arguments`` (in :data:`FUNCTIONS` order), after
    checking each argument's shape against the row's declaration; a mismatch is a ValueError
    naming the argument."""
    row, names = LAYERS[name], FUNCTIONS[name]
    values = dict(zip(names, arguments))
    shapes = {n: tuple(alg.shape(v)) for n, v in values.items()}
    sizes = _infer_sizes(row, shapes)
    for tensor in row.tensors(sizes):
        if tensor.name in shapes and shapes[tensor.name] != (tensor.rows, tensor.cols):
            raise ValueError(f"{name}: {tensor.name} is {shapes[tensor.name][0]}×{shapes[tensor.name][1]}, "
                             f"the row needs {tensor.rows}×{tensor.cols}")
    return row.forward(alg, values)


def _infer_sizes(row, shapes: dict) -> dict:
    """The row's sizes read off the arguments' shapes (each size from the first tensor naming it)."""
    probe = row.tensors({k: sympy.Symbol(k) for k in _size_names(row)})
    sizes = {}
    for tensor in probe:
        if tensor.name not in shapes:
            continue
        for declared, actual in zip((tensor.rows, tensor.cols), shapes[tensor.name]):
            declared = sympy.sympify(declared)
            if declared.is_Symbol and declared.name not in sizes:
                sizes[declared.name] = int(actual)
            elif not declared.is_number and not declared.is_Symbol:  # 4H, D + H: solve for the one unknown
                unknown = [s for s in declared.free_symbols if s.name not in sizes]
                if len(unknown) == 1:
                    solution = sympy.solve(sympy.Eq(declared, actual), unknown[0])
                    if solution and sympy.sympify(solution[0]).is_integer:
                        sizes[unknown[0].name] = int(solution[0])
    return {k: sizes.get(k, 1) for k in _size_names(row)}


def _size_names(row) -> list:
    return sorted(row.sizes[0])
