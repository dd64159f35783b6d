"""Time to prove every gradient (∂J/∂z_k, ∂J/∂W_k, ∂J/∂b_k for all k) of a network, exactly.

Sweeps depth (1–4, width 4, batch 2), width (2–8, depth 2, batch 2) and batch (1–3, depth 4,
width 4) for each pairing, and measures in the same run a reference: the naive route (SymPy's
``Expr.diff`` of the loss, then ``cancel`` of direct − recurrence, per entry) on small networks.

    taskset -c 0 python benchmarks/bench_prove.py            # every pairing
    taskset -c 0 python benchmarks/bench_prove.py --quick    # the issue's four pairings
    taskset -c 0 python benchmarks/bench_prove.py --scaling  # seconds and peak memory, exact vs instantiated

A cell is the wall time of ``prove_network`` by the expansion (lemmas included, cached after the
first network; ``--scaling`` adds the layerwise route);
"✗" marks a network with a gradient not proved within the budget.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sympy  # noqa: E402

from symbackprop import budget  # noqa: E402
from symbackprop.general import prove_instance  # noqa: E402
from symbackprop.derive import backprop  # noqa: E402
from symbackprop.network import Network, NetworkSpec  # noqa: E402
from symbackprop.prove import elementary, prove_network  # noqa: E402

ISSUE_PAIRINGS = [("sigmoid", "sigmoid", "half_sse"), ("relu", "softmax", "cross_entropy"),
                  ("tanh", "sigmoid", "bce"), ("sigmoid", "identity", "half_sse")]
OUTPUTS = [("sigmoid", "half_sse"), ("identity", "half_sse"), ("tanh", "mse"), ("sigmoid", "bce"),
           ("softmax", "cross_entropy"), ("softmax", "half_sse")]
HIDDEN = ["sigmoid", "tanh", "relu", "identity", "leaky_relu", "softplus", "silu"]


def timed_proof(widths, hidden, output, loss, batch, timeout):
    spec = NetworkSpec(widths=widths, hidden=hidden, output=output, loss=loss, batch=batch)
    started = time.perf_counter()
    proof = prove_network(spec, timeout=timeout, route="expand")
    seconds = time.perf_counter() - started
    return f"{seconds:.2f}" if proof.all_proved else f"✗{seconds:.0f}"


def naive_seconds(widths, hidden, output, loss, batch, timeout):
    """The route the notes measured as hopeless: Expr.diff on the loss, cancel per entry."""
    net = Network(NetworkSpec(widths=widths, hidden=hidden, output=output, loss=loss, batch=batch))
    zero = {eps: 0 for eps in net.perturbation}
    J = elementary(net.J).xreplace(zero)
    claims = backprop(net)
    started = time.perf_counter()
    try:
        with budget.budget(timeout):
            for k in range(1, net.depth + 1):
                for i, row in enumerate(net.W[k].entries):
                    for j, theta in enumerate(row):
                        difference = J.diff(theta) - elementary(claims["W", k][i, j]).xreplace(zero)
                        if sympy.cancel(difference.rewrite(sympy.exp)) != 0:
                            return "≠0"
    except budget.OutOfTime:
        return f">{timeout:.0f}"
    return f"{time.perf_counter() - started:.2f}"


def _child(connection, widths, hidden, output, loss, batch, exact, timeout, memory, route):
    spec = NetworkSpec(widths=widths, hidden=hidden, output=output, loss=loss, batch=batch)
    started = time.perf_counter()
    proof = prove_instance(spec, timeout=timeout, exact=exact, memory=memory, route=route)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    refused = all("memory budget" in r.verdict.message for r in proof.results) and not proof.lemmas
    connection.send((seconds, peak, proof.all_proved, "refused" if refused else proof.scope))


def measured(widths, hidden, output, loss, batch, exact, *, timeout=10.0, memory=2 << 30, cell=30.0,
             route=None) -> str:
    """``seconds/peak MB`` of one proof in a fresh child process (peak: its resident set, the
    interpreter and SymPy included); ✗ when not every gradient is proved, ✗>cell when cut off,
    ``refused`` when the estimate of the expansion exceeds the memory budget (nothing is built)."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(send, widths, hidden, output, loss, batch, exact, timeout, memory,
                                                             route))
    child.start()
    if not receive.poll(cell):
        child.kill()
        child.join()
        return f"✗>{cell:.0f}s"
    seconds, peak, proved, scope = receive.recv()
    child.join()
    if scope == "refused":
        return "refused"
    return f"{'' if proved else '✗'}{seconds:.2f}/{peak / 2**20:.0f}"


SCALING_PAIRINGS = [("relu", "softmax", "cross_entropy"), ("tanh", "sigmoid", "bce")]


def scaling(pairings, depths, widths_swept, cell):
    for name, exact, route in (("instantiated general proof", False, None), ("exact, layerwise", True, "layerwise"),
                               ("exact expansion", True, "expand")):
        rows = []
        for h, o, l in pairings:
            rows.append([f"{h}/{o} {l}"] + [measured((4,) * (d + 1), h, o, l, 2, exact, cell=cell, route=route) for d in depths])
        table(f"{name}: seconds/peak MB vs depth L (width 4, batch 2)", ["pairing"] + [f"L={d}" for d in depths],
              rows)
        rows = []
        for h, o, l in pairings:
            rows.append([f"{h}/{o} {l}"] + [measured((n, n, n), h, o, l, 2, exact, cell=cell, route=route) for n in widths_swept])
        table(f"{name}: seconds/peak MB vs width n (depth 2, batch 2)", ["pairing"] + [f"n={n}" for n in widths_swept],
              rows)


def table(title, headers, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    print(f"\n{title}")
    print("  ".join(str(h).ljust(w) for h, w in zip(headers, widths)))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the issue's four pairings")
    parser.add_argument("--timeout", type=float, default=60.0, help="budget per gradient (s)")
    parser.add_argument("--scaling", action="store_true",
                        help="only seconds and peak memory against depth 1-8 and width 2-64, exact vs instantiated")
    parser.add_argument("--cell", type=float, default=30.0, help="with --scaling: seconds before a cell is cut off")
    args = parser.parse_args()
    if args.scaling:
        depths, swept = (1, 2, 3, 4, 5, 6, 7, 8), (2, 4, 8, 16, 32, 64)
        scaling(SCALING_PAIRINGS if args.quick else ISSUE_PAIRINGS, depths, swept, args.cell)
        return
    pairings = ISSUE_PAIRINGS if args.quick else [(h, o, l) for h in HIDDEN for o, l in OUTPUTS]
    label = [f"{h}/{o} {l}" for h, o, l in pairings]

    prove_network(NetworkSpec(widths=(2, 2)), timeout=args.timeout)  # warm up imports and caches

    rows = []
    for name, (h, o, l) in zip(label, pairings):
        rows.append([name] + [timed_proof((4,) * (d + 1), h, o, l, 2, args.timeout) for d in (1, 2, 3, 4)])
    table("seconds vs depth L (width 4, batch 2)", ["pairing", "L=1", "L=2", "L=3", "L=4"], rows)

    rows = []
    for name, (h, o, l) in zip(label, pairings):
        rows.append([name] + [timed_proof((n, n, n), h, o, l, 2, args.timeout) for n in range(2, 9)])
    table("seconds vs width n (depth 2, batch 2)", ["pairing"] + [f"n={n}" for n in range(2, 9)], rows)

    rows = []
    for name, (h, o, l) in zip(label, pairings):
        rows.append([name] + [timed_proof((4,) * 5, h, o, l, m, args.timeout) for m in (1, 2, 3)])
    table("seconds vs batch m (depth 4, width 4) — the issue's target is < 2 s at m=2",
          ["pairing", "m=1", "m=2", "m=3"], rows)

    rows = []
    for widths in [(2, 2), (2, 2, 2), (3, 3, 2), (2, 2, 2, 2)]:
        h, o, l = ISSUE_PAIRINGS[0]
        ours = timed_proof(widths, h, o, l, 1, args.timeout)
        rows.append(["-".join(map(str, widths)), ours, naive_seconds(widths, h, o, l, 1, 30.0)])
    table("reference in the same run: sigmoid/sigmoid half_sse, batch 1, ∂J/∂W only for the naive route",
          ["widths", "symbackprop (all gradients)", "Expr.diff + cancel (budget 30 s)"], rows)


if __name__ == "__main__":
    main()
