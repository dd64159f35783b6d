"""Time and memory budgets that really interrupt symbolic work.

SymPy's ``simplify`` or ``cancel`` can run for minutes and never check a clock.  In the main
thread a budget arms ``SIGALRM`` (an interval timer that fires again until the budget is left,
in case some library swallows the first signal); elsewhere it falls back to the cooperative
:func:`check` that the evaluator calls at every node.  Running out raises :class:`OutOfTime`,
a ``BaseException`` so that SymPy's many ``except Exception`` clauses cannot swallow it.

A memory budget caps the address space the process may add while the body runs
(``RLIMIT_AS``, restored afterwards): past it an allocation fails with ``MemoryError``, which the
caller turns into ``undecided`` — never an out-of-memory kill.  The default is a fraction of the
memory available when the program starts.  :func:`refuse_unless_fits` estimates an exact
expansion's size before any of it is built.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time

try:
    import resource
except ImportError:  # pragma: no cover - not on POSIX: no memory limit of its own
    resource = None


class OutOfTime(BaseException):
    """The budget of the current obligation is spent."""


_deadlines: list[float] = []
_LONGEST = 1e7  # seconds (115 days): setitimer overflows near 2**31 s


def check() -> None:
    """Raise :class:`OutOfTime` if the innermost budget is spent (cheap; call often)."""
    if _deadlines and time.monotonic() > _deadlines[-1]:
        raise OutOfTime()


def remaining() -> float | None:
    return max(0.0, _deadlines[-1] - time.monotonic()) if _deadlines else None


def _on_alarm(signum, frame):  # pragma: no cover - timing dependent
    if _deadlines and time.monotonic() >= _deadlines[-1] - 1e-3:
        raise OutOfTime()


@contextlib.contextmanager
def budget(seconds: float | None):
    """Run the body with at most ``seconds`` of wall time (None: no limit of its own)."""
    if seconds is None:
        yield
        return
    # past the timer's range (inf, 1e308) a budget is cut to _LONGEST; nan is no time at all
    deadline = time.monotonic() + min(max(seconds, 0.0), _LONGEST) if seconds == seconds else time.monotonic()
    if _deadlines:
        deadline = min(deadline, _deadlines[-1])
    _deadlines.append(deadline)
    use_signal = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    previous = None
    if use_signal:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), 1e-3), 0.05)
    try:
        yield
    finally:
        _deadlines.pop()
        if use_signal:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if _deadlines:  # re-arm the enclosing budget
                signal.setitimer(signal.ITIMER_REAL, max(_deadlines[-1] - time.monotonic(), 1e-3), 0.05)


# ------------------------------------------------------------------------------------ memory

DEFAULT_MEMORY_FRACTION = 0.5  # of MemAvailable when the program starts
_FALLBACK_MEMORY = 4 << 30
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class TooLarge(ValueError):
    """An exact expansion whose estimated size exceeds the memory budget; the message is one line
    naming the estimate, the budget and the alternative."""


def _meminfo(field: str) -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


_default_memory: int | None = None


def default_memory() -> int:
    """Half the memory available now (read once per process), or 4 GiB where that is unknown."""
    global _default_memory
    if _default_memory is None:
        available = _meminfo("MemAvailable")
        _default_memory = int(available * DEFAULT_MEMORY_FRACTION) if available else _FALLBACK_MEMORY
    return _default_memory


def parse_size(text: str) -> int:
    """``2G``, ``500M``, ``1.5G``, ``800000000`` → bytes (binary units); ValueError otherwise."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([KMGT]?)(?:I?B)?\s*", str(text), re.IGNORECASE)
    if not match:
        raise ValueError(f"expected a size like 2G or 500M, not {text!r}")
    value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if not 1 <= value < 1 << 60:
        raise ValueError(f"expected a size of at least 1 byte and under 1 EiB, not {text!r}")
    return int(value)


def size_text(size: int) -> str:
    """Bytes as people write them: ``2 GB``, ``500 MB``, ``1.5 GB`` (binary units)."""
    for unit, factor in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} B"


def _address_space() -> int | None:
    """The process's current virtual size in bytes (``/proc/self/statm``), or None."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


_memory_limits: list[int] = []


@contextlib.contextmanager
def memory_budget(size: int | None):
    """Run the body with at most ``size`` more bytes of address space (None: no limit of its own);
    running out raises ``MemoryError`` inside the body."""
    current = _address_space() if size is not None and resource is not None else None
    if current is None:
        yield
        return
    limit = current + size
    if _memory_limits:
        limit = min(limit, _memory_limits[-1])
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY:
        limit = min(limit, soft)
    _memory_limits.append(limit)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):  # pragma: no cover - a limit the system refuses: none of our own
        _memory_limits.pop()
        yield
        return
    try:
        yield
    finally:
        _memory_limits.pop()
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


BYTES_PER_TERM = 1000  # a low estimate: measured 2500–17000 bytes per (path × parameter) for tanh nets


def expansion_estimate(widths: tuple, batch: int) -> int:
    """A low estimate of the bytes the exact expansion of a network takes: the expanded gradient of
    an entry has about m·n_1⋯n_{L-1}·n_L terms (one per path through the network), and there
    is one such gradient per weight and bias."""
    paths = batch
    for width in widths[1:]:
        paths *= width
    parameters = sum(widths[k] * (widths[k - 1] + 1) for k in range(1, len(widths)))
    return paths * parameters * BYTES_PER_TERM


def refuse_unless_fits(widths: tuple, batch: int, memory: int) -> None:
    """Raise :class:`TooLarge` when even the low estimate of the expansion exceeds ``memory``."""
    needed = expansion_estimate(widths, batch)
    if needed > memory:
        shape = "-".join(map(str, widths)) if len(widths) <= 9 else f"of {len(widths) - 1} layers"
        raise TooLarge(f"the exact expansion of network {shape}, batch {batch} needs at least "
                       f"{size_text(needed)}, more than the {size_text(memory)} memory budget (--memory); "
                       f"its general proof covers every width and depth (drop --exact, or use --general)")
