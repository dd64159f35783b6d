"""Times of the layer library's proofs: per row, the every-size proof and the instance proofs, and
the instance-proof time against the size of the summed dimension.

Each row runs in a fresh interpreter (nothing cached).  The reference, measured in the same child
right after, is the naive route on the row's first instance: SymPy's ``diff`` of L = Σ y ⊙ dy, then
``cancel(together(direct − closed form))`` entry by entry, under a budget of 20 s.  Pin to one core
on a shared machine:

    taskset -c 0 python benchmarks/bench_layers.py [--sweep-only | --rows-only]

Target: every every-size proof under 2 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROW = """
import json, sys, time
import sympy
from symbackprop import budget
from symbackprop.layer_proofs import LayerInstance, prove_general, prove_instance
from symbackprop.layers import layer
row = layer(sys.argv[1])
started = time.perf_counter()
general = prove_general(row, timeout=60)
general_seconds = time.perf_counter() - started
instances = []
for sizes in row.sizes:
    result = prove_instance(row, sizes, timeout=60)
    instances.append([result.seconds, result.proved])
instance = LayerInstance(row, row.sizes[0])  # the naive reference
claimed = instance.closed_forms()
started = time.perf_counter()
naive = "ok"
try:
    with budget.budget(20):
        for tensor in row.inputs(row.sizes[0]):
            value = instance.values[tensor.name]
            for theta, entry in zip(value, claimed[tensor.name]):
                if sympy.cancel(sympy.together(sympy.diff(instance.J, theta) - entry)) != 0:
                    naive = "not 0"
except budget.OutOfTime:
    naive = "timeout"
reference = time.perf_counter() - started
print(json.dumps({"general": None if general is None else [general_seconds, general.proved,
                  {k: s for k, (s, _) in general.verdicts.items()}],
                  "instances": instances, "reference": [reference, naive]}))
"""

SWEEP = """
import json, sys, time
from symbackprop.layer_proofs import prove_instance
from symbackprop.layers import layer
row = layer(sys.argv[1])
base, name = json.loads(sys.argv[2]), sys.argv[3]
out = []
for n in json.loads(sys.argv[4]):
    sizes = {**base, name: n}
    result = prove_instance(row, sizes, timeout=60)
    out.append([n, result.seconds, result.proved, [v.status for v in result.verdicts.values()]])
print(json.dumps(out))
"""

SWEEPS = [
    ("batchnorm", {"N": 2, "D": 2}, "N", [2, 4, 8, 16, 32]),
    ("layernorm", {"N": 2, "D": 2}, "D", [2, 4, 8, 16, 32]),
    ("attention", {"n": 2, "m": 2, "d": 2, "e": 2}, "m", [2, 4, 8, 16]),
    ("conv1d", {"L": 4, "K": 3}, "L", [4, 8, 16, 32, 64]),
    ("rnn", {"T": 2, "H": 2, "D": 2}, "T", [2, 4, 8, 16]),
    ("lstm", {"H": 1, "D": 1}, "H", [1, 2, 4, 8]),
]


def child(code: str, *args: str) -> object:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=900)
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def rows() -> None:
    from symbackprop.layers import LAYERS

    print(f"{'row':18} {'every size':>12} {'instances (s)':>20} {'naive ref (s)':>16} {'ratio':>7}")
    for name in LAYERS:
        report = child(ROW, name)
        general = report["general"]
        shown = "—" if general is None else f"{general[0]:.2f} {'proved' if general[1] else 'partial'}"
        instance_seconds = [s for s, _ in report["instances"]]
        total = sum(instance_seconds)
        reference, naive = report["reference"]
        ratio = f"{reference / total:.0f}×" if total > 0 else "—"
        ref = f"{reference:.2f}" + ("" if naive == "ok" else f" ({naive})")
        print(f"{name:18} {shown:>12} {' '.join(f'{s:.3f}' for s in instance_seconds):>20} {ref:>16} {ratio:>7}",
              flush=True)


def sweeps() -> None:
    for name, base, dimension, values in SWEEPS:
        report = child(SWEEP, name, json.dumps(base), dimension, json.dumps(values))
        cells = "  ".join(f"{dimension}={n}: {s:.2f}{'' if ok else ' (' + ','.join(st) + ')'}" for n, s, ok, st in report)
        print(f"{name:10} {json.dumps(base)}  {cells}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep-only", action="store_true")
    parser.add_argument("--rows-only", action="store_true")
    args = parser.parse_args()
    if not args.sweep_only:
        rows()
    if not args.rows_only:
        print()
        sweeps()


if __name__ == "__main__":
    main()
