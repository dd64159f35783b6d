"""One SGD step (forward, backward, update) of the generated kernels (train_step, and its NumPy-only
form: the one run without SciPy) against hand-written NumPy, PyTorch (CPU), JAX (jit, optional)
and the GEMM-only floor, examples as rows; and the exported
PyTorch / JAX modules (``--target torch|jax``: the proven backward) against their engines' own
autograd, each with the same update: "torch target" is J = module.loss(...); J.backward() against
torch.autograd of the same network, "jax target" is jax.grad of the custom_vjp loss under jit
against jax.grad of the network written in jax.numpy under jit.

Run pinned to one core:   taskset -c 0 python benchmarks/bench_kernels.py
Quicker, noisier:         taskset -c 0 python benchmarks/bench_kernels.py --rounds 5

Every implementation is timed in the same run, round-robin (one timing sample of each in turn,
in a fresh random order every round, so drifts in machine load hit all of them alike); a sample
is the mean of enough steps to last about a millisecond (one step for the big nets); the table
gives the median sample per step.  The floor is the 3L−1 matrix
products of a step (L forward, L−1 for the deltas, L weight gradients) into preallocated arrays:
no activation, loss, bias or update work at all.  Before timing, every implementation's step is
checked against the kernel's on the same parameters.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")  # one core: no BLAS thread pool fighting the pinning
# PyTorch's OpenMP workers otherwise spin after every operation and, pinned to the same core, steal
# milliseconds from whichever implementation runs next (measured: 1.7 ms steps became 5.8 ms)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from symbackprop import kernels  # noqa: E402
from symbackprop.network import NetworkSpec  # noqa: E402

NETS = [  # (name, widths, hidden, output, loss, batch)
    ("3-4-2 sigmoid half_sse", (3, 4, 2), "sigmoid", "sigmoid", "half_sse", 1),
    ("3-4-2 sigmoid half_sse", (3, 4, 2), "sigmoid", "sigmoid", "half_sse", 32),
    ("64-32-10 relu CE", (64, 32, 10), "relu", "softmax", "cross_entropy", 32),
    ("784-256-128-10 relu CE", (784, 256, 128, 10), "relu", "softmax", "cross_entropy", 128),
    ("1024-1024-1024-10 tanh CE", (1024, 1024, 1024, 10), "tanh", "softmax", "cross_entropy", 256),
]
LR = 0.01


# ------------------------------------------------------------------------ hand-written NumPy


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


HAND_ACTIVATIONS = {  # g(z), g'(z) from (z, a)
    "sigmoid": (sigmoid, lambda z, a: a * (1 - a)),
    "tanh": (np.tanh, lambda z, a: 1 - a * a),
    "relu": (lambda z: np.maximum(z, 0), lambda z, a: z > 0),
}


def hand_step_factory(hidden, output, loss):
    """The step as one writes it by hand in NumPy: clear, allocating, no tricks."""
    g, g_prime = HAND_ACTIVATIONS[hidden]

    def step(params, X, Y, lr):
        Ws, bs = params["W"], params["b"]
        L, m = len(Ws), X.shape[0]
        zs, activations = [], [X]
        for k in range(L):
            z = activations[-1] @ Ws[k].T + bs[k]
            zs.append(z)
            if k < L - 1:
                activations.append(g(z))
            elif output == "softmax":
                e = np.exp(z - z.max(axis=1, keepdims=True))
                activations.append(e / e.sum(axis=1, keepdims=True))
            else:
                activations.append(sigmoid(z))
        a = activations[-1]
        delta = (a - Y) / m if loss == "cross_entropy" else (a - Y) * a * (1 - a) / m
        for k in range(L - 1, -1, -1):
            grad_W = delta.T @ activations[k]
            grad_b = delta.sum(axis=0)
            if k > 0:
                delta = (delta @ Ws[k]) * g_prime(zs[k - 1], activations[k])
            Ws[k] -= lr * grad_W
            bs[k] -= lr * grad_b

    return step


# ----------------------------------------------------------------------------- GEMM floor


def floor_step_factory(widths, batch, dtype):
    L = len(widths) - 1
    rng = np.random.default_rng(0)
    W = [rng.normal(size=(widths[k + 1], widths[k])).astype(dtype) for k in range(L)]
    A = [np.ones((batch, w), dtype) for w in widths]
    D = [np.ones((batch, w), dtype) for w in widths]
    G = [np.empty_like(w) for w in W]

    def step(params, X, Y, lr):
        np.matmul(X, W[0].T, A[1])
        for k in range(1, L):
            np.matmul(A[k], W[k].T, A[k + 1])
        for k in range(L - 1, 0, -1):
            np.matmul(D[k + 1], W[k], D[k])
        np.matmul(D[1].T, X, G[0])
        for k in range(1, L):
            np.matmul(D[k + 1].T, A[k], G[k])

    return step


# -------------------------------------------------------------------------------- PyTorch


def torch_step_factory(torch, hidden, output, loss):
    g = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[hidden]

    def step(params, X, Y, lr):
        Ws, bs = params["W"], params["b"]
        a = X
        for k in range(len(Ws)):
            z = torch.addmm(bs[k], a, Ws[k].T)
            a = g(z) if k < len(Ws) - 1 else z
        m = X.shape[0]
        if loss == "cross_entropy":
            J = -(Y * torch.log_softmax(a, dim=1)).sum() / m
        else:
            J = 0.5 * ((torch.sigmoid(a) - Y) ** 2).sum() / m
        J.backward()
        with torch.no_grad():
            for p in Ws + bs:
                p.sub_(p.grad, alpha=lr)
                p.grad = None

    return step


# ------------------------------------------------------------------------------------ JAX


def jax_step_factory(jax, hidden, output, loss):
    jnp = jax.numpy
    g = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}[hidden]

    def objective(params, X, Y):
        a = X
        L = len(params["W"])
        for k in range(L):
            z = a @ params["W"][k].T + params["b"][k]
            a = g(z) if k < L - 1 else z
        m = X.shape[0]
        if loss == "cross_entropy":
            return -(Y * jax.nn.log_softmax(a, axis=1)).sum() / m
        return 0.5 * ((jax.nn.sigmoid(a) - Y) ** 2).sum() / m

    @jax.jit
    def update(params, X, Y, lr):
        grads = jax.grad(objective)(params, X, Y)
        return jax.tree_util.tree_map(lambda p, q: p - lr * q, params, grads)

    state = {}

    def step(params, X, Y, lr):
        params["state"] = update(params["state"], X, Y, lr)
        jax.block_until_ready(params["state"])

    return step, state


# ------------------------------------------------- the exported PyTorch and JAX modules


def torch_target_step_factory(torch, module):
    """The exported module as a user runs it: J = loss(...) (a torch.autograd.Function whose
    backward is the proven one), J.backward(), the same update as the PyTorch step."""

    def step(params, X, Y, lr):
        J = module.loss(params, X, Y)
        J.backward()
        with torch.no_grad():
            for p in params.values():
                p.sub_(p.grad, alpha=lr)
                p.grad = None

    return step


def jax_target_step_factory(jax, module):
    """jax.grad of the exported custom_vjp loss under jit, then the same update as the JAX step."""

    @jax.jit
    def update(params, X, Y, lr):
        grads = jax.grad(module.loss)(params, X, Y)
        return jax.tree_util.tree_map(lambda p, q: p - lr * q, params, grads)

    def step(params, X, Y, lr):
        params["state"] = update(params["state"], X, Y, lr)
        jax.block_until_ready(params["state"])

    return step


# ------------------------------------------------------------------------------ the bench


def problem(widths, batch, loss, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(batch, widths[0])).astype(dtype)
    if loss == "cross_entropy":
        Y = np.eye(widths[-1], dtype=dtype)[rng.integers(0, widths[-1], size=batch)]
    else:
        Y = rng.uniform(size=(batch, widths[-1])).astype(dtype)
    return X, Y


def flat_copy(params, L):
    return {"W": [params[f"W{k}"].copy() for k in range(1, L + 1)],
            "b": [params[f"b{k}"].copy() for k in range(1, L + 1)]}


def implementations(spec, dtype, X, Y, torch, jax):
    """name -> (step, params, X, Y, read back {"W1": …} as float64, reset to the start)."""
    L = spec.depth
    kernel = kernels.build(spec, dtype)
    start = kernel.init_params(0)
    result = {}
    params = kernel.init_params(0)

    def reset_kernel():
        params.flat[...] = start.flat

    result["kernel"] = (kernel.train_step, params, X, Y, lambda p=params: {n: np.array(v, float) for n, v in p.items()},
                        reset_kernel)
    numpy_only = getattr(kernel.module, "_train_step_numpy", None)  # the form run without SciPy
    if numpy_only is not None:
        other = kernel.init_params(0)

        def reset_other():
            other.flat[...] = start.flat

        result["kernel NumPy only"] = (numpy_only, other, X, Y, lambda p=other: {n: np.array(v, float) for n, v in p.items()},
                                       reset_other)
    hand = flat_copy(start, L)

    def reset_hand():
        for k in range(L):
            hand["W"][k][...] = start[f"W{k + 1}"]
            hand["b"][k][...] = start[f"b{k + 1}"]

    result["hand NumPy"] = (hand_step_factory(spec.hidden, spec.output, spec.loss), hand, X, Y,
                            lambda p=hand: _named(p["W"], p["b"]), reset_hand)
    if torch is not None:
        tdtype = torch.float64 if dtype == "float64" else torch.float32
        tp = {"W": [torch.tensor(w, dtype=tdtype, requires_grad=True) for w in hand["W"]],
              "b": [torch.tensor(b, dtype=tdtype, requires_grad=True) for b in hand["b"]]}
        def reset_torch():
            with torch.no_grad():
                for k in range(L):
                    tp["W"][k].copy_(torch.from_numpy(start[f"W{k + 1}"]))
                    tp["b"][k].copy_(torch.from_numpy(start[f"b{k + 1}"]))

        result["PyTorch"] = (torch_step_factory(torch, spec.hidden, spec.output, spec.loss), tp,
                             torch.tensor(X), torch.tensor(Y),
                             lambda p=tp: _named([w.detach().numpy() for w in p["W"]], [b.detach().numpy() for b in p["b"]]),
                             reset_torch)
    if torch is not None:
        module = kernels.build(spec, dtype, target="torch").module
        tdtype = torch.float64 if dtype == "float64" else torch.float32
        mine = {n: torch.tensor(start[n], dtype=tdtype, requires_grad=True) for n in module.NAMES}

        def reset_torch_target():
            with torch.no_grad():
                for n, p in mine.items():
                    p.copy_(torch.from_numpy(start[n]))

        result["torch target"] = (torch_target_step_factory(torch, module), mine, torch.tensor(X), torch.tensor(Y),
                                  lambda p=mine: {n: np.array(v.detach().numpy(), float) for n, v in p.items()},
                                  reset_torch_target)
    if jax is not None:
        module = kernels.build(spec, dtype, target="jax").module
        first = {n: jax.numpy.asarray(np.array(start[n])) for n in module.NAMES}
        state = {"state": first}
        result["jax target"] = (jax_target_step_factory(jax, module), state, jax.numpy.asarray(X), jax.numpy.asarray(Y),
                                lambda p=state: {n: np.array(v, float) for n, v in p["state"].items()},
                                lambda: state.__setitem__("state", first))
        step, _ = jax_step_factory(jax, spec.hidden, spec.output, spec.loss)
        initial = {"W": [jax.numpy.asarray(w) for w in hand["W"]], "b": [jax.numpy.asarray(b) for b in hand["b"]]}
        jp = {"state": initial}
        result["JAX jit"] = (step, jp, jax.numpy.asarray(X), jax.numpy.asarray(Y),
                             lambda p=jp: _named([np.asarray(w) for w in p["state"]["W"]],
                                                 [np.asarray(b) for b in p["state"]["b"]]),
                             lambda: jp.__setitem__("state", initial))
    result["GEMM floor"] = (floor_step_factory(spec.widths, X.shape[0], dtype), None, X, Y, None, lambda: None)
    return kernel, result


def _named(Ws, bs):
    named = {}
    for k, (w, b) in enumerate(zip(Ws, bs), start=1):
        named[f"W{k}"], named[f"b{k}"] = np.array(w, float), np.array(b, float)
    return named


def check_agreement(impls, dtype):
    """One step of each implementation from the same start gives the same parameters."""
    tolerance = 1e-9 if dtype == "float64" else 2e-3
    after = {}
    for name, (step, params, X, Y, read, reset) in impls.items():
        if read is None:
            continue
        step(params, X, Y, LR)
        after[name] = read()
        reset()
    reference = after["kernel"]
    for name, values in after.items():
        for key, value in values.items():
            scale = max(1.0, float(np.max(np.abs(reference[key]))))
            error = float(np.max(np.abs(value - reference[key])))
            if error > tolerance * scale:
                raise SystemExit(f"{name} disagrees with the kernel on {key} after one step: {error:.2e}")


def measure(impls, rounds, target_seconds=0.001, clock=time.perf_counter):
    """Round-robin: each round takes one sample (mean of n steps, about a millisecond) of every
    implementation, in a fresh random order: when another process shares the core, the kernel's
    scheduler hands out time slices of a few milliseconds, and a fixed order can fall into step
    with them and charge the same implementation every time.

    Parameters are reset to the same start before every sample (untimed), so that every sample
    times the same computation rather than a network trained ever further on one batch (where a
    saturating softmax could bring subnormal numbers and their slow arithmetic).

    ``clock`` is wall time by default; ``time.process_time`` (CPU time of all the process's
    threads) leaves out the time the process waits for the core while other processes run.
    """
    counts = {}
    for name, (step, params, X, Y, _, reset) in impls.items():
        step(params, X, Y, LR)  # warm up: buffers, jit compilation
        started = clock()
        n = 0
        while clock() - started < target_seconds / 4 or n < 1:
            step(params, X, Y, LR)
            n += 1
        per_step = (clock() - started) / n
        counts[name] = max(1, int(target_seconds / per_step))
        reset()
    samples = {name: [] for name in impls}
    shuffler = np.random.default_rng(0)
    for _ in range(rounds):
        for index in shuffler.permutation(len(impls)):
            name = list(impls)[index]
            step, params, X, Y, _, reset = impls[name]
            reset()
            n = counts[name]
            started = clock()
            for _ in range(n):
                step(params, X, Y, LR)
            samples[name].append((clock() - started) / n)
    return {name: statistics.median(values) for name, values in samples.items()}


def fmt(seconds):
    if seconds is None:
        return "-"
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=51, help="timing samples per implementation (median)")
    parser.add_argument("--dtype", choices=("float64", "float32", "both"), default="both")
    parser.add_argument("--clock", choices=("wall", "process"), default="wall",
                        help="wall time, or the process's CPU time (steadier on a shared machine)")
    parser.add_argument("--nets", default="", help="comma-separated indices into the list of nets (default all)")
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
        print("note: PyTorch not installed (pip install 'symbackprop[torch]'); its column is empty")
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
    except ImportError:
        jax = None
        print("note: JAX not installed (pip install 'symbackprop[jax]'); its columns are empty")
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    print(f"cores available to this process: {affinity} (pin with taskset -c 0); numpy {np.__version__}"
          + (f", torch {torch.__version__}" if torch else "") + (f", jax {jax.__version__}" if jax else ""))
    chosen = [NETS[int(i)] for i in args.nets.split(",")] if args.nets else NETS
    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)
    names = ["kernel", "kernel NumPy only", "hand NumPy", "PyTorch", "JAX jit", "GEMM floor"]
    engines = [("torch target", "PyTorch"), ("jax target", "JAX jit")]
    for dtype in dtypes:
        rows = []
        for label, widths, hidden, output, loss, batch in chosen:
            spec = NetworkSpec(widths=widths, hidden=hidden, output=output, loss=loss, layout="rows")
            X, Y = problem(widths, batch, loss, dtype)
            kernel, impls = implementations(spec, dtype, X, Y, torch, jax)
            check_agreement(impls, dtype)
            times = measure(impls, args.rounds, clock=time.perf_counter if args.clock == "wall" else time.process_time)
            own = times["kernel"]
            ratios = [f"{own / times[n]:.2f}" if n in times else "-" for n in names[1:]]
            ratios += [f"{times[a] / times[b]:.2f}" if a in times and b in times else "-" for a, b in engines]
            rows.append([label, str(batch), f"{kernel.seconds:.2f} s"] + [fmt(times.get(n)) for n in names]
                        + [fmt(times.get(a)) for a, _ in engines] + [f"{batch / own:,.0f}"] + ratios)
        headers = (["net", "B", "build"] + names + [a for a, _ in engines] + ["kernel samples/s"]
                   + [f"kernel/{n}" for n in names[1:]] + [f"{a}/{b}" for a, b in engines])
        print(f"\n{dtype}, median of {args.rounds} round-robin samples per step ({args.clock} clock)")
        widths_ = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
        print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths_)) + " |")
        print("|" + "|".join("-" * (w + 2) for w in widths_) + "|")
        for row in rows:
            print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths_)) + " |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
