"""Input size limits, in one place: checked before any work starts, each named in its message.

A limit keeps hostile or mistaken input (a 10⁹-example batch, a formula nested 500 deep, an
endless file) from ending in a traceback, a MemoryError or a run past the time budget.  The
loader, the claim language, :class:`~symbackprop.network.NetworkSpec`, the symbolic instance and
the command line all read these constants; nothing else states a limit.
"""

from __future__ import annotations

import os
import stat

# ---- files
MAX_FILE_BYTES = 1 << 20  # a derivation file: 1 MiB (the five documents are 3–12 KB)
MAX_DATA_BYTES = 256 << 20  # a CSV data file for ``train``: 256 MiB

# ---- networks (every use: proofs, kernels, training)
MAX_DEPTH = 100  # layers
MAX_WIDTH = 100_000  # units in one layer
MAX_BATCH = 10_000_000  # examples

# ---- the explicit symbolic instance (``prove``, ``verify``): every entry a SymPy symbol, and the
# cost of the exact proof grows like the expansion of the loss (measured: depth 16 of width 1 takes
# 3 s, depth 20 takes 98 s and 3.8 GB)
MAX_SYMBOLIC_DEPTH = 16
MAX_SYMBOLIC_ENTRIES = 20_000  # weights, biases, inputs and targets together

# ---- formulas (the claim language)
MAX_FORMULA_CHARS = 4_000
MAX_NESTING = 100  # levels of a formula's syntax tree (a sum of k terms nests k levels)
MAX_NUMBER_DIGITS = 100  # a number written in a formula
MAX_EXPONENT = 64  # |p| in x ** p for a number p
MAX_ENTRIES = 10_000  # entries one side of a claim spells out (free and summed index letters)
MAX_RANGE = MAX_DEPTH + 1  # values of a layer range "l in a..b"
MAX_INDEX_SUM = 10_000  # terms of one index sum, sum(body, k in 1..K)

# ---- a [model] (derivation files that write the model as definitions)
MAX_MODEL_ENTRIES = 4000  # free symbols of one instance
MAX_MODEL_SIZE = 64  # any named size
MAX_MODEL_MEMBERS = 200  # members of one family
MAX_LABELINGS = 6  # label assignments checked per instance, for claims that use the label

# ---- the command line
MAX_SECONDS = 1_000_000.0  # a --timeout
MAX_SEED = 2**63 - 1


class LimitError(ValueError):
    """An input past one of the limits; the message is one line naming the limit."""


def network_problem(widths: tuple, batch: int) -> str | None:
    """Why a network is too large for any use, or None."""
    depth = len(widths) - 1
    if depth > MAX_DEPTH:
        return f"at most {MAX_DEPTH} layers, not {depth}"
    widest = max(widths)
    if widest > MAX_WIDTH:
        return f"at most {MAX_WIDTH} units per layer, not {widest}"
    if batch > MAX_BATCH:
        return f"a batch of at most {MAX_BATCH} examples, not {batch}"
    return None


def symbolic_problem(widths: tuple, batch: int) -> str | None:
    """Why a network is too large to expand into explicit symbols (an exact instance proof), or None."""
    depth = len(widths) - 1
    if depth > MAX_SYMBOLIC_DEPTH:
        return f"an exact instance proof expands at most {MAX_SYMBOLIC_DEPTH} layers, not {depth}"
    entries = sum(widths[k] * (widths[k - 1] + 1) for k in range(1, depth + 1)) + batch * (widths[0] + widths[-1])
    if entries > MAX_SYMBOLIC_ENTRIES:
        return (f"an exact instance proof expands at most {MAX_SYMBOLIC_ENTRIES} weights, biases, inputs and "
                f"targets, not {entries}")
    return None


def read_text(path, cap: int = MAX_FILE_BYTES, what: str = "file") -> str:
    """A regular file's text, refusing FIFOs, devices and anything over ``cap`` bytes before reading
    it whole.  Raises :class:`LimitError` (those refusals), OSError and UnicodeDecodeError."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer (regular files ignore the flag)
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(descriptor, "rb") as handle:  # buffered: read(n) reads until n bytes or the end
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else \
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"
            raise LimitError(f"is {kind}, not a {what}")
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise LimitError(f"a {what} has at most {cap} bytes; this one is larger")
    if 0 in data:
        raise LimitError(f"is binary (a NUL byte at byte {data.index(0)}), not a {what}")
    return data.decode("utf-8")
