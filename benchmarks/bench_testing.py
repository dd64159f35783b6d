"""How tight the tolerance of ``symbackprop.testing`` is, and what a checked example costs.

Accuracy: a correct hand-written backprop (tests/gallery.py ``correct``) evaluated in float32 and
float64 on random networks (depth 1–3, widths 1–4, every activation and loss), well-scaled and
saturated.  Per regime: the largest |yours − proven| / tolerance over all entries (must stay
below 1: no spurious failure; the closer to 1, the tighter), and the median tolerance / |value|
over entries at least 1 % of their gradient's largest (how small a slip can be and still show).

Speed: ``check_backprop`` on 200 examples, against the same user function called on the same
examples alone (the reference measured in the same run).

    taskset -c 0 python benchmarks/bench_testing.py
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from symbackprop.network import NetworkSpec  # noqa: E402
from symbackprop.numeric import gradients  # noqa: E402
from symbackprop.rounding import tolerances  # noqa: E402
from symbackprop.testing import check_backprop, networks, sample_problem  # noqa: E402
from tests.gallery import correct  # noqa: E402

OUTPUTS = {"half_sse": ("sigmoid", "tanh", "identity", "softmax", "relu"), "mse": ("tanh", "sigmoid"),
           "cross_entropy": ("softmax",), "bce": ("sigmoid",)}
HIDDEN = ("sigmoid", "tanh", "relu", "softplus", "silu", "leaky_relu", "identity")


def random_networks(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        depth = int(rng.integers(1, 4))
        loss = str(rng.choice(list(OUTPUTS)))
        yield NetworkSpec(tuple(int(w) for w in rng.integers(1, 5, depth + 1)), hidden=str(rng.choice(HIDDEN)),
                          output=str(rng.choice(OUTPUTS[loss])), loss=loss, batch=int(rng.integers(1, 4)))


def accuracy(dtype: str, saturated: bool, count: int = 300) -> tuple:
    worst, fractions = 0.0, []
    for i, spec in enumerate(random_networks(count)):
        problem = sample_problem(spec, i, dtype=dtype, saturated=saturated)
        if problem is None:
            continue
        _, mine = correct(*problem[1:4], spec)
        truth = gradients(spec, *problem[1:4])
        allowed = tolerances(spec, *problem[1:4], None, dtype)
        for name, value in truth.items():
            error = np.abs(np.reshape(mine[name], value.shape) - value)
            worst = max(worst, float(np.max(np.where(error > 0, error / np.where(allowed[name] > 0, allowed[name], 1), 0))))
            big = np.abs(value) >= 1e-2 * np.abs(value).max()
            if big.any():
                fractions.extend((allowed[name][big] / np.abs(value[big])).tolist())
    return worst, float(np.median(fractions))


def speed(examples: int = 200) -> tuple:
    calls = []

    def timed(params, X, Y, network):
        started = time.perf_counter()
        result = correct(params, X, Y, network)
        calls.append(time.perf_counter() - started)
        return result

    started = time.perf_counter()
    check_backprop(timed, networks(), max_examples=examples, reduction="network", seed=0)
    return time.perf_counter() - started, sum(calls), len(calls)


def main() -> None:
    warnings.simplefilter("ignore", RuntimeWarning)  # saturated sigmoids overflow e^{−z} in the user's code
    print(f"{'dtype':8} {'regime':12} {'max error/tolerance':>20} {'median tolerance/|value|':>25}")
    for dtype in ("float32", "float64"):
        for saturated in (False, True):
            worst, median = accuracy(dtype, saturated)
            print(f"{dtype:8} {'saturated' if saturated else 'well-scaled':12} {worst:>20.3g} {median:>25.3g}")
    total, user, count = speed()
    print(f"\ncheck_backprop: {count} examples in {total:.2f} s ({1e3 * total / count:.2f} ms each); "
          f"the user's function alone {1e3 * user / count:.3f} ms each: ratio {total / user:.0f}×")


if __name__ == "__main__":
    main()
