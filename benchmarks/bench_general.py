"""Time of the every-width, every-depth proof (``prove --general``) for each pairing of the rules table.

Each pairing runs in a fresh interpreter, so nothing is cached (neither our lemmas nor SymPy's
caches): the time is what ``symbackprop prove ... --general`` spends on the general proof.
Pin to one core on a shared machine:

    taskset -c 0 python benchmarks/bench_general.py [--layout rows]

Prints a table: pairing, lemmas proved / total, seconds for the whole general proof, the
reference (the instance proof of the same pairing at widths 3-4-2, batch 2, measured right after
in the same interpreter) and the ratio, the slowest lemma and its seconds.  Target: under 2 s per
pairing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time
from symbackprop.network import NetworkSpec
from symbackprop.general import prove_general
from symbackprop.prove import prove_network
hidden, output, loss, layout = sys.argv[1:5]
spec = NetworkSpec(widths=(3, 4, 2), hidden=hidden, output=output, loss=loss, batch=2, layout=layout)
started = time.perf_counter()
proof = prove_general(spec, timeout=60)
seconds = time.perf_counter() - started
started = time.perf_counter()
instance = prove_network(spec, timeout=60)  # the reference: one small instance, same interpreter
reference = time.perf_counter() - started
assert instance.all_proved
slowest = max(proof.lemmas, key=lambda l: l.verdict.seconds)
print(json.dumps({"proved": sum(l.verdict.proved for l in proof.lemmas), "lemmas": len(proof.lemmas),
                  "seconds": seconds, "slowest": slowest.name, "slowest_seconds": slowest.verdict.seconds,
                  "reference": reference}))
"""


def pairings():
    """Every (hidden, output, loss) the table allows; hidden activations cycle so each appears."""
    sys.path.insert(0, str(ROOT))
    from symbackprop import rules

    hidden = [name for name, row in rules.ACTIVATIONS.items() if not row.output_only] + ["generic"]
    outputs = list(rules.ACTIVATIONS) + ["generic"]
    found = []
    for loss, row in rules.LOSSES.items():
        for output in row.outputs or outputs:
            found.append((hidden[len(found) % len(hidden)], output, loss))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", choices=("columns", "rows"), default="columns")
    args = parser.parse_args()
    rows, worst = [], 0.0
    for hidden, output, loss in pairings():
        result = subprocess.run([sys.executable, "-c", CHILD, hidden, output, loss, args.layout],
                                capture_output=True, text=True, cwd=ROOT, check=True)
        r = json.loads(result.stdout)
        worst = max(worst, r["seconds"])
        rows.append([f"{hidden} / {output} + {loss}", f"{r['proved']}/{r['lemmas']}", f"{r['seconds']:.2f}",
                     f"{r['reference']:.2f}", f"{r['seconds'] / r['reference']:.1f}", r["slowest"],
                     f"{r['slowest_seconds']:.2f}"])
    headers = ["hidden / output + loss", "proved", "general s", "instance 3-4-2 s", "ratio", "slowest lemma",
               "its s"]
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]
    print(f"| {' | '.join(h.ljust(w) for h, w in zip(headers, widths))} |")
    print(f"|{'|'.join('-' * (w + 2) for w in widths)}|")
    for row in rows:
        print(f"| {' | '.join(str(c).ljust(w) for c, w in zip(row, widths))} |")
    print(f"\n{len(rows)} pairings, layout {args.layout}; slowest pairing {worst:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
