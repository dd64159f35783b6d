"""The layer library: every row's backward pass proved; real slips refuted with witnesses that this
file re-evaluates on its own, in floating point (its own NumPy forward passes, central differences)."""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pytest

from symbackprop import layers as L
from symbackprop.layer_proofs import prove_general, prove_instance, prove_layer
from symbackprop.numeric import NumpyAlgebra

# ------------------------------------------------------------ reference forward passes (NumPy)


def _softmax_rows(s):
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _norm(v, axis):
    x = v["x"]
    xhat = (x - x.mean(axis=axis, keepdims=True)) / np.sqrt(x.var(axis=axis, keepdims=True) + v["eps"][0, 0])
    return v["gamma"] * xhat + v["beta"]


def _attention(v):
    s = v["Q"] @ v["K"].T / np.sqrt(v["Q"].shape[1])
    if "mask" in v:
        e = v["mask"] * np.exp(s)
        return (e / e.sum(axis=1, keepdims=True)) @ v["V"]
    return _softmax_rows(s) @ v["V"]


def _conv1d(v, s=1):
    x, w = v["x"][:, 0], v["w"][:, 0]
    out = (len(x) - len(w)) // s + 1
    return np.array([[sum(w[k] * x[s * i + k] for k in range(len(w))) + v["b"][0, 0]] for i in range(out)])


def _conv2d(v, s=1):
    x, w = v["x"], v["w"]
    oh, ow = (x.shape[0] - w.shape[0]) // s + 1, (x.shape[1] - w.shape[1]) // s + 1
    return np.array([[np.sum(w * x[s * i:s * i + w.shape[0], s * j:s * j + w.shape[1]]) + v["b"][0, 0]
                      for j in range(ow)] for i in range(oh)])


def _rnn(v):
    h, out = v["h0"], []
    for t in range(v["X"].shape[1]):
        h = np.tanh(v["W"] @ h + v["U"] @ v["X"][:, t:t + 1] + v["b"])
        out.append(h)
    return np.hstack(out)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _lstm(v):
    H = v["h"].shape[0]
    a = v["W"] @ np.vstack([v["x"], v["h"]]) + v["b"]
    i, f, o, g = _sigmoid(a[:H]), _sigmoid(a[H:2 * H]), _sigmoid(a[2 * H:3 * H]), np.tanh(a[3 * H:])
    c = f * v["c"] + i * g
    return np.vstack([o * np.tanh(c), c])


def _gelu(v):
    x = v["x"]
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


REFERENCE = {
    "batchnorm": lambda v: _norm(v, 0),
    "layernorm": lambda v: _norm(v, 1),
    "attention": _attention,
    "masked_attention": _attention,
    "conv1d": _conv1d,
    "conv1d_stride2": lambda v: _conv1d(v, 2),
    "conv2d": _conv2d,
    "conv2d_stride2": lambda v: _conv2d(v, 2),
    "meanpool": lambda v: v["x"].reshape(v["x"].shape[0] // 2, 2, v["x"].shape[1] // 2, 2).mean(axis=(1, 3)),
    "maxpool": lambda v: v["x"].reshape(-1, 2).max(axis=1, keepdims=True),
    "rnn": _rnn,
    "lstm": _lstm,
    "residual": lambda v: v["x"] + v["W2"] @ np.tanh(v["W1"] @ v["x"] + v["b1"]) + v["b2"],
    "embedding": lambda v: v["E"][list(v["tokens"])],
    "dropout": lambda v: v["x"] * v["mask"] / v["keep"][0, 0],
    "gelu": _gelu,
    "softmax": lambda v: _softmax_rows(v["x"]),
    "log_softmax": lambda v: np.log(_softmax_rows(v["x"])),
}


# --------------------------------------------------------------------------- the real slips


def _replace(row, **changes):
    """The row's backward with some gradients replaced by slips ``(alg, v, dy, right) -> value``."""
    def backward(alg, v, dy):
        right = row.backward(alg, v, dy)
        return {**right, **{name: slip(alg, v, dy, right) for name, slip in changes.items()}}

    return backward


def _bn_parts(alg, v, axis=0):
    xhat, inv = L._normalised(alg, v["x"], v["eps"], axis)
    return xhat, inv


def _bn_no_mean_variance(alg, v, dy, right):  # dx = γ·dy/√(σ²+ε): x̂'s dependence on μ, σ² forgotten
    return alg.hadamard(alg.hadamard(v["gamma"], _bn_parts(alg, v)[1]), dy)


def _bn_over_n_wrong_term(alg, v, dy, right):  # γ/√(σ²+ε)·(dy − Σdy/N − x̂Σ(dy⊙x̂)): 1/N on one term only
    xhat, inv = _bn_parts(alg, v)
    n = alg.shape(v["x"])[0]
    inner = alg.sub(alg.sub(dy, alg.scale(L._inverse_count(n), alg.sum_axis(dy, 0))),
                    alg.hadamard(xhat, alg.sum_axis(alg.hadamard(dy, xhat), 0)))
    return alg.hadamard(alg.hadamard(v["gamma"], inv), inner)


def _bn_no_variance_term(alg, v, dy, right):  # the mean's term kept, the variance's dropped
    xhat, inv = _bn_parts(alg, v)
    n = alg.shape(v["x"])[0]
    return alg.hadamard(alg.hadamard(v["gamma"], inv), alg.sub(dy, alg.scale(L._inverse_count(n), alg.sum_axis(dy, 0))))


def _bn_dgamma_raw_x(alg, v, dy, right):  # dγ = Σ dy⊙x: the unnormalised input
    return alg.sum_axis(alg.hadamard(dy, v["x"]), 0)


def _ln_batch_axis(alg, v, dy, right):  # layernorm's dx with batchnorm's sums (over the batch)
    xhat, inv = _bn_parts(alg, v, 1)
    n = alg.shape(v["x"])[0]
    g = alg.hadamard(dy, v["gamma"])
    inner = alg.sub(alg.sub(alg.scale(n, g), alg.sum_axis(g, 0)), alg.hadamard(xhat, alg.sum_axis(alg.hadamard(g, xhat), 0)))
    return alg.scale(L._inverse_count(n), alg.hadamard(inv, inner))


def _ln_gamma_outside(alg, v, dy, right):  # γ pulled out of the feature sums (it varies along them)
    xhat, inv = _bn_parts(alg, v, 1)
    d = alg.shape(v["x"])[1]
    inner = alg.sub(alg.sub(alg.scale(d, dy), alg.sum_axis(dy, 1)), alg.hadamard(xhat, alg.sum_axis(alg.hadamard(dy, xhat), 1)))
    return alg.scale(L._inverse_count(d), alg.hadamard(inv, alg.hadamard(v["gamma"], inner)))


def _ln_pointwise(alg, v, dy, right):
    return alg.hadamard(_bn_parts(alg, v, 1)[1], alg.hadamard(v["gamma"], dy))


def _attention_parts(alg, v, dy, jacobian):
    P = L._attention_weights(alg, v)
    c = L._attention_scale(alg, v)
    dP = alg.matmul(dy, alg.T(v["V"]))
    return P, c, jacobian(P, dP)


def _attention_dq(jacobian, scaled=True):
    def slip(alg, v, dy, right):
        P, c, dS = _attention_parts(alg, v, dy, lambda P, dP: jacobian(alg, P, dP))
        return alg.scale(c if scaled else 1, alg.matmul(dS, v["K"]))
    return slip


def _no_jacobian(alg, P, dP):  # dS = dP: the softmax treated as the identity
    return dP


def _diagonal_jacobian(alg, P, dP):  # dS = P⊙dP: only diag(P), not −P Pᵀ
    return alg.hadamard(P, dP)


def _true_jacobian(alg, P, dP):
    return alg.hadamard(P, alg.sub(dP, alg.sum_axis(alg.hadamard(dP, P), 1)))


def _conv1d_dx(offset):
    def slip(alg, v, dy, right):
        x, w = v["x"], v["w"]
        K, Lx = alg.shape(w)[0], alg.shape(x)[0]
        return alg.build(Lx, 1, lambda j, _: alg.index_sum(
            lambda k: alg.entry(w, k, 0) * alg.padded_entry(dy, offset(j, k, K), 0), K))
    return slip


def _conv1d_dw_flipped(alg, v, dy, right):  # dw[k] = Σ_i dy[i]·x[i + K−1−k]: kernel flipped in dw too
    x, w = v["x"], v["w"]
    K, out = alg.shape(w)[0], alg.shape(dy)[0]
    return alg.build(K, 1, lambda k, _: alg.index_sum(lambda i: alg.entry(dy, i, 0) * alg.entry(x, i + K - 1 - k, 0), out))


def _stride_dx(stride_in_dy):
    def slip(alg, v, dy, right):
        x, w = v["x"], v["w"]
        K, Lx = alg.shape(w)[0], alg.shape(x)[0]
        return alg.build(Lx, 1, lambda j, _: alg.index_sum(
            lambda k: alg.entry(w, k, 0) * alg.padded_entry(dy, stride_in_dy(j - k), 0), K))
    return slip


def _stride_dw_unit(alg, v, dy, right):  # dw[k] = Σ_i dy[i]·x[i + k]: the stride forgotten
    x, w = v["x"], v["w"]
    K, out = alg.shape(w)[0], alg.shape(dy)[0]
    return alg.build(K, 1, lambda k, _: alg.index_sum(lambda i: alg.entry(dy, i, 0) * alg.entry(x, i + k, 0), out))


def _conv2d_dx(shift):
    def slip(alg, v, dy, right):
        x, w = v["x"], v["w"]
        (H, W), (kh, kw) = alg.shape(x), alg.shape(w)
        return alg.build(H, W, lambda a, c: alg.index_sum(lambda p: alg.index_sum(
            lambda q: alg.entry(w, p, q) * alg.padded_entry(dy, *shift(a, c, p, q, kh, kw)), kw), kh))
    return slip


def _conv2d_dw_swapped(alg, v, dy, right):  # dw[p,q] = Σ dy[i,j]·x[i+q, j+p]: kernel indices swapped
    x, w = v["x"], v["w"]
    (kh, kw), (oh, ow) = alg.shape(w), alg.shape(dy)
    return alg.build(kh, kw, lambda p, q: alg.index_sum(lambda i: alg.index_sum(
        lambda j: alg.entry(dy, i, j) * alg.padded_entry(x, i + q, j + p), ow), oh))


def _meanpool(scale, corner_only=False):
    def slip(alg, v, dy, right):
        H, W = alg.shape(v["x"])
        return alg.build(H, W, lambda a, c: 0 if corner_only and (a % 2 or c % 2)
                         else scale * alg.entry(dy, a // 2, c // 2))
    return slip


def _maxpool(weight):
    def slip(alg, v, dy, right):
        x = v["x"]
        Lx = alg.shape(x)[0]
        gaps = alg.build(Lx // 2, 1, lambda i, _: alg.entry(x, 2 * i, 0) - alg.entry(x, 2 * i + 1, 0))
        steps = alg.apply(L.ACTIVATIONS["relu"].derivative_rule, gaps)
        return alg.build(Lx, 1, lambda j, _: alg.entry(dy, j // 2, 0) * weight(alg.entry(steps, j // 2, 0), j % 2 == 0))
    return slip


def _rnn_slip(kind):
    """BPTT slips: the gradient of W from the last step only, δ without the recurrent term,
    tanh′ written 1 − h, and h_t in place of h_{t−1}."""
    def backward(alg, v, dy):
        states = L._rnn_states(alg, v)
        T = len(states)
        previous = [v["h0"]] + states[:-1]
        deltas, carry = [None] * T, None
        for t in reversed(range(T)):
            g = L._column(alg, dy, t)
            if carry is not None and kind != "truncated":
                g = alg.add(g, carry)
            h = states[t]
            prime = alg.sub(alg.full(1, h), h if kind == "tanh_prime" else alg.hadamard(h, h))
            deltas[t] = alg.hadamard(g, prime)
            carry = alg.matmul(alg.T(v["W"]), deltas[t])
        uses = [T - 1] if kind == "last_step" else range(T)
        after = states if kind == "h_t" else previous
        dW = None
        for t in uses:
            term = alg.outer(deltas[t], after[t])
            dW = term if dW is None else alg.add(dW, term)
        return {"W": dW}
    return backward


def _lstm_slip(kind):
    def backward(alg, v, dy):
        H = alg.shape(v["h"])[0]
        z, i, f, o, g, c_new, t = L._lstm_gates(alg, v)
        dh, dc = alg.block(dy, (0, H), (0, 1)), alg.block(dy, (H, 2 * H), (0, 1))
        one = alg.full(1, t)
        through = alg.sub(one, alg.hadamard(t, t)) if kind != "no_tanh_prime" else one
        dct = alg.add(dc, alg.hadamard(alg.hadamard(dh, o), through))
        sig = (lambda s: alg.sub(one, s)) if kind == "sigmoid_prime" else (lambda s: alg.hadamard(s, alg.sub(one, s)))
        parts = [alg.hadamard(alg.hadamard(dct, g), alg.hadamard(i, alg.sub(one, i))),
                 alg.hadamard(alg.hadamard(dct, c_new if kind == "forget_new_c" else v["c"]), alg.hadamard(f, alg.sub(one, f))),
                 alg.hadamard(alg.hadamard(dh, t), sig(o)),
                 alg.hadamard(alg.hadamard(dct, i), alg.sub(one, alg.hadamard(g, g)))]
        da = parts[0]
        for p in parts[1:]:
            da = alg.concat(da, p, 0)
        return {"b": da, "c": dct if kind == "dc_no_f" else alg.hadamard(dct, f)}
    return backward


def _embedding(kind):
    def slip(alg, v, dy, right):
        E, tokens = v["E"], v["tokens"]
        V, D = alg.shape(E)
        if kind == "last_only":  # the last occurrence overwrites instead of accumulating
            last = {tok: n for n, tok in enumerate(tokens)}
            return alg.build(V, D, lambda j, d: alg.entry(dy, last[j], d) if j in last else 0)
        if kind == "mean":
            counts = {tok: tokens.count(tok) for tok in tokens}
            return alg.build(V, D, lambda j, d: sum(alg.entry(dy, n, d) for n, tok in enumerate(tokens) if tok == j)
                             / counts[j] if j in counts else 0)
        return alg.build(V, D, lambda j, d: sum(alg.entry(dy, n, d) for n, tok in enumerate(tokens) if tok == j + 1))
    return slip


def _gelu_slip(kind):
    import sympy

    def derivative(x):
        t = L.TANH.atom(L._gelu_inner(x))
        k = sympy.sqrt(2 / sympy.pi)
        if kind == "first_term":
            return (1 + t) / 2
        if kind == "cubic":
            return (1 + t) / 2 + x * (1 - t ** 2) * k * (1 + L.GELU_C * x ** 2) / 2
        return (1 + t) / 2 + x * (1 - t) * k * (1 + 3 * L.GELU_C * x ** 2) / 2

    return lambda alg, v, dy, right: alg.hadamard(dy, alg.apply(derivative, v["x"]))


def _softmax_y(alg, v):
    return alg.softmax_axis(v["x"], 1)


SLIPS = {
    "batchnorm": {"no mean/variance terms": {"x": _bn_no_mean_variance},
                  "1/N on the wrong term": {"x": _bn_over_n_wrong_term},
                  "no variance term": {"x": _bn_no_variance_term},
                  "dγ from raw x": {"gamma": _bn_dgamma_raw_x}},
    "layernorm": {"sums over the batch": {"x": _ln_batch_axis}, "γ outside the sums": {"x": _ln_gamma_outside},
                  "pointwise": {"x": _ln_pointwise}},
    "attention": {"no softmax Jacobian": {"Q": _attention_dq(_no_jacobian)},
                  "diagonal Jacobian only": {"Q": _attention_dq(_diagonal_jacobian)},
                  "1/√d forgotten": {"Q": _attention_dq(_true_jacobian, scaled=False)}},
    "masked_attention": {"no softmax Jacobian": {"Q": _attention_dq(_no_jacobian)},
                         "diagonal Jacobian only": {"Q": _attention_dq(_diagonal_jacobian)},
                         "1/√d forgotten": {"Q": _attention_dq(_true_jacobian, scaled=False)}},
    "conv1d": {"unflipped kernel": {"x": _conv1d_dx(lambda j, k, K: j + k)},
               "offset by one": {"x": _conv1d_dx(lambda j, k, K: j - k + 1)},
               "flipped twice": {"x": _conv1d_dx(lambda j, k, K: j - (K - 1 - k))},
               "dw flipped": {"w": _conv1d_dw_flipped}},
    "conv1d_stride2": {"stride ignored in dx": {"x": _stride_dx(lambda u: u)},
                       "floor division in dx": {"x": _stride_dx(lambda u: u // 2)},
                       "stride ignored in dw": {"w": _stride_dw_unit}},
    "conv2d": {"unflipped kernel": {"x": _conv2d_dx(lambda a, c, p, q, kh, kw: (a + p, c + q))},
               "flipped in one axis": {"x": _conv2d_dx(lambda a, c, p, q, kh, kw: (a - p, c + q - kw + 1))},
               "dw indices swapped": {"w": _conv2d_dw_swapped}},
    "conv2d_stride2": {"stride ignored in dx": {"x": _conv2d_dx(lambda a, c, p, q, kh, kw: (a - p, c - q))},
                       "floor division in dx": {"x": _conv2d_dx(lambda a, c, p, q, kh, kw: ((a - p) // 2, (c - q) // 2))},
                       "unflipped kernel": {"x": _conv2d_dx(lambda a, c, p, q, kh, kw: ((a + p) / 2, (c + q) / 2))}},
    "meanpool": {"no 1/p²": {"x": _meanpool(1)}, "1/p instead of 1/p²": {"x": _meanpool(Fraction(1, 2))},
                 "only the window's corner": {"x": _meanpool(Fraction(1, 4), corner_only=True)}},
    "maxpool": {"to both entries": {"x": _maxpool(lambda h, first: 1)},
                "to the argmin": {"x": _maxpool(lambda h, first: 1 - h if first else h)},
                "halved to both": {"x": _maxpool(lambda h, first: Fraction(1, 2))}},
    "rnn": {"dW from the last step only (no sum over time)": _rnn_slip("last_step"),
            "δ without the recurrent term (truncated)": _rnn_slip("truncated"),
            "tanh′ written 1 − h": _rnn_slip("tanh_prime"),
            "h_t in place of h_{t−1}": _rnn_slip("h_t")},
    "lstm": {"forget gate times c′ not c": _lstm_slip("forget_new_c"), "no tanh′ on c′": _lstm_slip("no_tanh_prime"),
             "σ′ written 1 − σ for the output gate": _lstm_slip("sigmoid_prime"), "dc without ⊙f": _lstm_slip("dc_no_f")},
    "residual": {"no skip in dx": {"x": lambda alg, v, dy, r: alg.sub(r["x"], dy)},
                 "tanh′ written 1 − a": {"W1": lambda alg, v, dy, r: alg.matmul(alg.hadamard(
                     alg.matmul(alg.T(v["W2"]), dy), alg.sub(alg.full(1, L._residual_hidden(alg, v)), L._residual_hidden(alg, v))),
                     alg.T(v["x"]))},
                 "activation derivative forgotten": {"W1": lambda alg, v, dy, r: alg.matmul(
                     alg.matmul(alg.T(v["W2"]), dy), alg.T(v["x"]))}},
    "embedding": {"last occurrence only": {"E": _embedding("last_only")}, "mean over occurrences": {"E": _embedding("mean")},
                  "tokens off by one": {"E": _embedding("shifted")},
                  "positions for token ids": {"E": lambda alg, v, dy, r: alg.build(
                      *alg.shape(v["E"]), lambda j, d: alg.entry(dy, j, d))}},
    "dropout": {"no 1/q": {"x": lambda alg, v, dy, r: alg.hadamard(dy, v["mask"])},
                "times q": {"x": lambda alg, v, dy, r: alg.scale(L._one(alg, v["keep"]), alg.hadamard(dy, v["mask"]))},
                "mask forgotten": {"x": lambda alg, v, dy, r: alg.scale(1 / L._one(alg, v["keep"]), dy)}},
    "gelu": {"first term only": {"x": _gelu_slip("first_term")}, "3 of the cubic dropped": {"x": _gelu_slip("cubic")},
             "sech² written 1 − t": {"x": _gelu_slip("sech")}},
    "softmax": {"diagonal Jacobian only": {"x": lambda alg, v, dy, r: alg.hadamard(_softmax_y(alg, v), dy)},
                "y ⊙ forgotten": {"x": lambda alg, v, dy, r: alg.sub(dy, alg.sum_axis(alg.hadamard(dy, _softmax_y(alg, v)), 1))},
                "rowsum without y": {"x": lambda alg, v, dy, r: alg.hadamard(_softmax_y(alg, v), alg.sub(dy, alg.sum_axis(dy, 1)))}},
    "log_softmax": {"normaliser forgotten": {"x": lambda alg, v, dy, r: dy},
                    "rowsum(dy) forgotten": {"x": lambda alg, v, dy, r: alg.sub(dy, _softmax_y(alg, v))},
                    "diagonal only": {"x": lambda alg, v, dy, r: alg.hadamard(dy, alg.sub(alg.full(1, dy), _softmax_y(alg, v)))}},
}


def _as_backward(row, slip):
    return _replace(row, **slip) if isinstance(slip, dict) else slip


# ------------------------------------------------------------------ re-evaluating witnesses


def _arrays(row, sizes, point):
    """The witness point as float arrays shaped like the row's tensors and dy."""
    values = {t.name: np.full((t.rows, t.cols), 0.5) for t in row.tensors(sizes)}
    if row.constants is not None:
        values.update(row.constants(sizes))
    y = REFERENCE[row.name](values)
    values["dy"] = np.zeros(np.shape(y))
    for key, text in point.items():
        match = re.fullmatch(r"(\w+)(?:\[(\d+)(?:,(\d+))?\])?", key)
        name, a, b = match.groups()
        array = values[name]
        if a is None:
            array[0, 0] = float(Fraction(text))
        elif b is not None:
            array[int(a) - 1, int(b) - 1] = float(Fraction(text))
        elif array.shape[1] == 1:
            array[int(a) - 1, 0] = float(Fraction(text))
        else:
            array[0, int(a) - 1] = float(Fraction(text))
    return values


def _central_difference(row, values, name, index, h=1e-6):
    def loss(shift):
        moved = {**values, name: values[name].copy()}
        moved[name][index] += shift
        return float(np.sum(REFERENCE[row.name](moved) * values["dy"]))

    return (loss(h) - loss(-h)) / (2 * h)


def _assert_witness(row, sizes, name, verdict, backward):
    point = verdict.counterexample["point"]
    i, j = (int(k) - 1 for k in re.findall(r"\d+", verdict.counterexample["entry"]))
    values = _arrays(row, sizes, point)
    numeric = {k: v for k, v in values.items() if k != "dy"}
    alg = NumpyAlgebra("rows")
    true = _central_difference(row, values, name, (i, j))
    claimed = np.asarray(backward(alg, numeric, values["dy"])[name], dtype=float).reshape(values[name].shape)[i, j]
    proved = np.asarray(row.backward(alg, numeric, values["dy"])[name], dtype=float).reshape(values[name].shape)[i, j]
    error = abs(proved - true)  # the central difference's own error, measured on the proved formula
    assert error < 1e-6 * max(1, abs(true))
    assert abs(claimed - true) > 100 * error + 1e-8, (row.name, name, claimed, true)


# ----------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", list(L.LAYERS))
def test_every_row_proved_at_each_of_its_sizes(name):
    proof = prove_layer(name, timeout=30)
    assert proof.status == "proved", proof.lines()
    assert len({tuple(sorted(s.items())) for s in L.LAYERS[name].sizes}) >= 2
    assert proof.scope.startswith("at sizes")


@pytest.mark.parametrize("name", list(L.LAYERS))
def test_every_row_agrees_with_an_independent_numpy_forward(name):
    row = L.LAYERS[name]
    sizes = row.sizes[0]
    rng = np.random.default_rng(1)
    values = {}
    for t in row.tensors(sizes):
        a = rng.uniform(-1, 1, (t.rows, t.cols))
        values[t.name] = np.abs(a) + 0.5 if t.domain == "positive" else (a > -0.3).astype(float) if t.domain == "binary" else a
    if row.constants is not None:
        values.update(row.constants(sizes))
    alg = NumpyAlgebra("rows")
    y = row.forward(alg, values)
    assert np.allclose(y, REFERENCE[name](values))
    values["dy"] = rng.uniform(-1, 1, np.shape(y))
    grads = row.backward(alg, {k: v for k, v in values.items() if k != "dy"}, values["dy"])
    for t in row.inputs(sizes):
        for index in np.ndindex(values[t.name].shape):
            assert abs(np.asarray(grads[t.name])[index] - _central_difference(row, values, t.name, index)) < 1e-5


def test_every_row_has_three_slips():
    assert set(SLIPS) == set(L.LAYERS)
    assert all(len(slips) >= 3 for slips in SLIPS.values())


@pytest.mark.parametrize("name,slip", [(n, s) for n, slips in SLIPS.items() for s in slips])
def test_slips_are_refuted_with_a_witness_that_re_evaluates(name, slip):
    row = L.LAYERS[name]
    backward = _as_backward(row, SLIPS[name][slip])
    sizes = row.sizes[0]
    result = prove_instance(row, sizes, backward=backward, timeout=30)
    refuted = {k: v for k, v in result.verdicts.items() if v.status == "refuted"}
    assert refuted, {k: (v.status, v.message) for k, v in result.verdicts.items()}
    for gradient, verdict in refuted.items():
        _assert_witness(row, sizes, gradient, verdict, backward)


GENERAL = ["batchnorm", "layernorm", "softmax", "log_softmax", "attention", "masked_attention", "rnn", "dropout", "gelu",
           "conv1d", "conv2d", "lstm", "residual", "conv1d_stride2", "conv2d_stride2", "embedding",
           "meanpool", "maxpool"]


@pytest.mark.parametrize("name", GENERAL)
def test_every_size_proofs(name):
    result = prove_general(name, timeout=60)
    assert result.proved, result.verdicts
    assert prove_layer(name, general=True).scope.startswith("for every size")


@pytest.mark.parametrize("name,slip", [("batchnorm", "no mean/variance terms"), ("batchnorm", "1/N on the wrong term"),
                                       ("layernorm", "γ outside the sums"), ("log_softmax", "rowsum(dy) forgotten"),
                                       ("conv1d", "unflipped kernel"), ("conv1d", "offset by one"),
                                       ("conv1d", "flipped twice"), ("conv1d", "dw flipped"),
                                       ("conv2d", "unflipped kernel"), ("conv2d", "flipped in one axis"),
                                       ("conv1d_stride2", "stride ignored in dx"), ("conv1d_stride2", "stride ignored in dw"),
                                       ("conv2d_stride2", "stride ignored in dx")])
def test_every_size_proofs_do_not_accept_slips(name, slip):
    row = L.LAYERS[name]
    result = prove_general(row, backward=_as_backward(row, SLIPS[name][slip]), timeout=60)
    assert not result.proved


def _embedding_general(kind):
    """Embedding slips with the tokens an arbitrary symbolic sequence t[n] (one-hot entries δ(t[n], j))."""
    import sympy

    def backward(alg, v, dy):
        E, tokens = v["E"], v["tokens"]
        V, D = alg.shape(E)
        onehot = L._onehot(alg, tokens, V)
        if kind == "shifted":  # tokens off by one
            n_tokens = L._rows(alg, tokens)
            shifted = alg.build(n_tokens, V, lambda n, j: sympy.KroneckerDelta(alg.entry(tokens, n, 0), j + 1))
            return {"E": alg.matmul(alg.T(shifted), dy)}
        summed = alg.matmul(alg.T(onehot), dy)
        if kind == "mean":  # repeated tokens averaged, not summed
            counts = alg.matmul(alg.T(onehot), alg.ones(L._rows(alg, tokens), 1))
            return {"E": alg.build(V, D, lambda j, d: alg.entry(summed, j, d) / alg.entry(counts, j, 0))}
        if kind == "positions":  # row j of dy, as if token ids were positions
            return {"E": alg.build(V, D, lambda j, d: alg.entry(dy, j, d))}
        return {"E": summed}
    return backward


def test_embedding_every_size_proof_takes_the_tokens_symbolic():
    """dE[j, :] = Σ_n δ(t[n], j)·dy[n, :] for every V, D, N and every token sequence t."""
    result = prove_general("embedding")
    assert result.proved and set(map(str, result.sizes.values())) == {"V", "D", "N"}
    assert prove_general("embedding", backward=_embedding_general("true")).proved
    for kind in ("shifted", "mean", "positions"):
        general = prove_general("embedding", backward=_embedding_general(kind))
        assert not general.proved and general.lemmas[0].residual != "0", kind


def _meanpool_general(kind):
    """Mean-pooling backward passes for a window p that may be a symbol (the every-size proof's)."""
    import sympy

    def backward(alg, v, dy):
        x, p = v["x"], v.get("pool", 2)
        H, W = alg.shape(x)
        scale = {"true": 1 / (p * p), "no 1/p²": 1, "1/p": 1 / p}.get(kind, 1 / (p * p))

        def entry(a, c):
            if kind == "corner":  # the whole mean to each window's top-left entry only
                return sympy.KroneckerDelta(a % p, 0) * sympy.KroneckerDelta(c % p, 0) * alg.entry(dy, a // p, c // p)
            if kind == "transposed window":  # dy[⌊c/p⌋, ⌊a/p⌋]
                return scale * alg.entry(dy, c // p, a // p)
            return scale * alg.entry(dy, a // p, c // p)
        return {"x": alg.build(H, W, entry)}
    return backward


def test_meanpool_every_size_proof_for_every_window():
    """dx[p·I+U, p·J+V] = dy[I, J]/p² for every window p and output OH × OW (the row's p = 2 included)."""
    result = prove_general("meanpool")
    assert result.proved and {str(k) for k in result.sizes} >= {"p", "OH", "OW"}
    assert prove_general("meanpool", backward=_meanpool_general("true")).proved
    for kind in ("no 1/p²", "1/p", "corner"):
        general = prove_general("meanpool", backward=_meanpool_general(kind))
        assert not general.proved and general.lemmas[0].residual != "0", kind
        # the same slip at the row's own p = 2 is refuted, with a witness this file re-evaluates
        row = L.LAYERS["meanpool"]
        instance = prove_instance(row, row.sizes[0], backward=_meanpool_general(kind))
        assert instance.verdicts["x"].status == "refuted", kind
        _assert_witness(row, row.sizes[0], "x", instance.verdicts["x"], _meanpool_general(kind))
    square = {"H": 4, "W": 4}
    assert not prove_general("meanpool", backward=_meanpool_general("transposed window")).proved
    assert prove_instance("meanpool", square, backward=_meanpool_general("transposed window")).verdicts["x"].status \
        == "refuted"


def test_maxpool_every_size_proof_states_its_assumption():
    result = prove_general("maxpool")
    assert result.proved and [l.name for l in result.lemmas] == ["∂L/∂x[2I+0]", "∂L/∂x[2I+1]", "selection"]
    assert "no ties" in result.argument[0]
    for slip in SLIPS["maxpool"].values():  # to both entries, to the argmin, halved to both
        general = prove_general("maxpool", backward=_as_backward(L.LAYERS["maxpool"], slip))
        assert not general.proved


def test_window_arithmetic_is_decided_only_where_the_ranges_imply_it():
    import sympy
    from sympy import KroneckerDelta, Sum

    from symbackprop import indexed

    p, O = indexed.size("p"), indexed.size("O")
    I, U, i, a = (indexed.index(n) for n in "IUia")
    y = sympy.IndexedBase("y")
    ranges = {I: (0, O - 1), U: (0, p - 1)}
    window = Sum(Sum(KroneckerDelta(p * i + a, p * I + U) * y[i, a], (a, 0, p - 1)), (i, 0, O - 1))
    assert indexed.collapse(window, ranges) == y[I, U]
    assert indexed.collapse(sympy.floor((p * I + U) / p), ranges) == I
    assert indexed.collapse(sympy.Mod(p * I + U, p), ranges) == U
    # an offset that may reach p: p·i + a = p·I + U no longer forces i = I, and nothing is rewritten
    wide = Sum(KroneckerDelta(p * i + a, p * I + U), (a, 0, p))
    assert indexed.collapse(wide, ranges).has(sympy.Piecewise)
    assert indexed.collapse(sympy.floor((p * I + U) / p), {I: (0, O - 1), U: (0, p)}) != I
    assert indexed.collapse(KroneckerDelta(p * i + a, p * I + U), {}).has(KroneckerDelta)
    # the collapsed forms agree with the sums evaluated term by term, at every point of small ranges
    rng = np.random.default_rng(0)
    table = sympy.Matrix(rng.integers(-9, 9, (4, 4)))
    mixed = Sum(Sum(KroneckerDelta(p * i + a, p * I + U) * y[i, a] * (a + 1) - sympy.floor((p * i + a) / p)
                    * KroneckerDelta(i, I), (a, 0, p - 1)), (i, 0, O - 1))
    for expr in (window, mixed):
        collapsed = indexed.collapse(expr, ranges)
        for pv, ov in ((1, 3), (2, 2), (3, 1), (4, 1)):
            for Iv in range(ov):
                for Uv in range(pv):
                    point = {p: pv, O: ov, I: Iv, U: Uv}
                    direct = expr.xreplace(point).doit().replace(lambda e: isinstance(e, sympy.Indexed),
                                                                 lambda e: table[e.indices])
                    mine = collapsed.xreplace(point).replace(lambda e: isinstance(e, sympy.Indexed),
                                                             lambda e: table[e.indices])
                    assert sympy.simplify(direct - mine) == 0, (expr, point)


def test_every_row_has_an_every_size_proof():
    assert set(GENERAL) == set(L.LAYERS)


def test_composed_every_size_proofs_rest_on_the_steps_the_row_calls(monkeypatch):
    """The attention and BPTT proofs prove the steps the row's backward is made of: a slip in a
    step leaves its lemma unproved (and the row's instances refuted)."""
    monkeypatch.setattr(L, "softmax_rows_step", lambda alg, P, G: alg.hadamard(P, G))
    assert not prove_general("attention").proved
    assert prove_instance("attention").verdicts["Q"].status == "refuted"
    monkeypatch.undo()

    def cell(alg, W, U, h_prev, x, h, g):  # tanh′ written 1 − h
        delta = alg.hadamard(g, alg.sub(alg.full(1, h), h))
        return {"delta": delta, "h_prev": alg.matmul(alg.T(W), delta), "W": alg.outer(delta, h_prev),
                "U": alg.outer(delta, x), "b": delta, "x": alg.matmul(alg.T(U), delta)}

    monkeypatch.setattr(L, "rnn_cell_step", cell)
    assert prove_general("lstm").proved
    right = L.lstm_gate_step

    def gates(alg, i, f, o, g, c, t, dh, dc):  # the forget gate's derivative taken at c′, not c
        return right(alg, i, f, o, g, alg.add(alg.hadamard(f, c), alg.hadamard(i, g)), t, dh, dc)[0], \
            right(alg, i, f, o, g, c, t, dh, dc)[1]

    monkeypatch.setattr(L, "lstm_gate_step", gates)
    lstm = prove_general("lstm")
    assert not lstm.proved and [l.name for l in lstm.lemmas if l.status != "proved"] == ["gates: ∂L/∂a_f"]
    assert prove_instance("lstm").verdicts["W"].status == "refuted"
    general = prove_general("rnn")
    assert not general.proved and {l.name for l in general.lemmas if l.status != "proved"} >= {"cell: state", "cell: W"}
    assert prove_instance("rnn").verdicts["W"].status == "refuted"


def test_a_slip_in_a_composed_step_is_not_proved_for_every_size(monkeypatch):
    monkeypatch.setattr(L, "tanh_step", lambda alg, a, G: alg.hadamard(G, alg.sub(alg.full(1, a), a)))
    general = prove_general("residual")
    assert [l.name for l in general.lemmas if l.status != "proved"] == ["tanh"]
    assert general.verdicts["W2"][0] == "proved" and general.verdicts["x"][0] == "undecided"
    proof = prove_layer("residual", general=True)
    assert proof.status == "refuted"  # the instances refute the row's backward built on the slip


def test_a_row_without_an_every_size_proof_says_where_it_is_proved():
    import dataclasses

    proof = prove_layer(dataclasses.replace(L.LAYERS["maxpool"], general_sizes=None), general=True)
    assert proof.general is None and proof.scope == "at sizes L = 4; L = 2; L = 6"
    assert "general" not in proof.scope and "every" not in proof.scope


def test_the_identities_the_layers_need_are_decided():
    """x^(−1/2)·x^(−1) = x^(−3/2) (batchnorm's variance term) and log∘softmax = z − log Σe^z."""
    import sympy

    from symbackprop.matrices import Mat
    from symbackprop.model import Instance
    from symbackprop.prove import Decider

    net = Instance()
    x, y = net.variable("x", "positive"), net.variable("y")
    decider = Decider(net)
    half, three_halves = sympy.Rational(-1, 2), sympy.Rational(-3, 2)
    v = x ** 2 + y ** 2 + 1
    true = [(sympy.Pow(v, half, evaluate=False) * sympy.Pow(v, -1, evaluate=False), v ** three_halves),
            (sympy.log(sympy.exp(x) / (sympy.exp(x) + sympy.exp(y))), x - sympy.log(sympy.exp(x) + sympy.exp(y)))]
    for lhs, rhs in true:
        assert decider.decide(Mat([[lhs]]), Mat([[rhs]])).proved
    assert decider.decide(Mat([[v ** three_halves]]), Mat([[v ** half]])).status == "refuted"


def test_unknown_layer_names_the_closest():
    with pytest.raises(KeyError, match="did you mean batchnorm"):
        L.layer("batchnrom")


def test_cli_prove_layer(capsys):
    from symbackprop.cli import main

    assert main(["prove", "--layer", "batchnorm", "--general"]) == 0
    out = capsys.readouterr().out
    assert "proved for every size of N, D" in out
    assert main(["prove", "--layer", "batchnrom"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean batchnorm" in err


def test_cli_prove_layer_json_and_latex(capsys, tmp_path, monkeypatch):
    import json

    from symbackprop.cli import main

    assert main(["prove", "--layer", "conv1d", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "proved" and len(report["instances"]) == 3
    tex = tmp_path / "rnn.tex"
    assert main(["prove", "--layer", "rnn", "--latex", str(tex)]) == 0
    assert r"\begin{document}" in tex.read_text()
    import dataclasses

    assert main(["prove", "--layer", "maxpool", "--general"]) == 0
    without = dataclasses.replace(L.LAYERS["maxpool"], general_sizes=None)
    monkeypatch.setitem(L.LAYERS, "maxpool", without)
    assert main(["prove", "--layer", "maxpool", "--general"]) == 1  # no every-size proof: not claimed


# ------------------------------------------------------------------ rows in [model] files

LAYER_MODEL = """
title = "batch normalization from the layer library"
[model]
sizes = { N = 3, D = 2 }
upstream = { y = "dy" }
[model.inputs]
x = "N x D"
[model.parameters]
gamma = "1 x D"
beta = "1 x D"
eps = { shape = "scalar", values = "positive" }
[model.forward]
y = "batchnorm(x, gamma, beta, eps)"
xhat = "(x - mean(x, axis=0)) / sqrt(var(x, axis=0) + eps)"
[[claim]]
id = "dx"
lhs = "grad(loss, x)"
rhs = "(1/N) * gamma * (var(x, axis=0) + eps)**(-1/2) * (N * dy - sum(dy, axis=0) - xhat * sum(dy * xhat, axis=0))"
[[claim]]
id = "dgamma"
lhs = "grad(loss, gamma)"
rhs = "sum(dy * xhat, axis=0)"
[[claim]]
id = "forward"
lhs = "y"
rhs = "gamma * xhat + beta"
[[claim]]
id = "arity"
lhs = "batchnorm(x, gamma)"
rhs = "x"
expect = "ill-formed"
[[claim]]
id = "shape"
lhs = "batchnorm(x, x, beta, eps)"
rhs = "x"
expect = "ill-formed"
"""


def test_rows_are_functions_of_model_files(tmp_path):
    from symbackprop.derivation import Checker, load

    path = tmp_path / "bn.toml"
    path.write_text(LAYER_MODEL, encoding="utf-8")
    results = {r.claim.id: r for r in Checker(load(path), timeout=60).check().results}
    assert [results[k].verdict.status for k in ("dx", "dgamma", "forward")] == ["proved"] * 3
    assert "takes 4 arguments" in results["arity"].verdict.message
    assert results["shape"].verdict.status == "ill-formed"
    assert "gamma is 3×2, the row needs 1×2" in results["shape"].verdict.message


def test_layer_proof_compiles_to_a_pdf(tmp_path, capsys):
    from symbackprop.cli import main

    from .test_latex import pdf_text, require_pdflatex

    require_pdflatex()
    tex = tmp_path / "bn.tex"
    assert main(["prove", "--layer", "batchnorm", "--general", "--latex", str(tex), "--pdf"]) == 0
    text = pdf_text(tex.with_suffix(".pdf"))
    assert "Layer backward pass proved: batchnorm" in text
    assert "Conclusion proved: for every size of N, D" in text and "∂L/∂gamma" in text


def test_a_condition_on_a_summation_index_stays_inside_its_sum():
    import sympy

    from symbackprop import indexed

    n, q = indexed.size("n"), indexed.index("q")
    a = sympy.IndexedBase("a")
    guarded = sympy.Sum(sympy.Piecewise((a[q], q >= 1), (0, True)), (q, 0, n - 1))
    folded = indexed._fold(2 * guarded)
    assert not (folded.free_symbols & {q})  # q is still bound
    assert not indexed.decide_zero(guarded - sympy.Sum(a[q], (q, 0, n - 1)), {})[0]
    shifted = sympy.Sum(sympy.KroneckerDelta(q + 1, indexed.index("j")) * a[q], (q, 0, n - 1))
    collapsed = indexed.collapse(shifted, {indexed.index("j"): (1, n)})
    assert collapsed == a[indexed.index("j") - 1]  # δ(q + 1, j) collapses at q = j − 1, inside the range


def test_a_models_backprop_goes_through_a_row_by_its_proved_backward(tmp_path):
    from symbackprop.derivation import load
    from symbackprop.derivation.backward import prove_model

    path = tmp_path / "bn.toml"
    path.write_text("""
title = "a batchnorm layer then tanh"
[model]
sizes = { N = 3, D = 2 }
loss = "L"
[model.inputs]
x = "N x D"
[model.parameters]
gamma = "1 x D"
beta = "1 x D"
eps = { shape = "scalar", values = "positive" }
W = "D x D"
[model.forward]
y = "batchnorm(x @ W, gamma, beta, eps)"
L = "sum(tanh(y) * tanh(y))"
""", encoding="utf-8")
    proof = prove_model(load(path))
    assert proof.all_proved and len(proof.results) >= 10
