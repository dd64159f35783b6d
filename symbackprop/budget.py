"""Time budgets that really interrupt symbolic work.

SymPy's ``simplify`` or ``cancel`` can run for minutes and never check a clock.  In the main
thread a budget arms ``SIGALRM`` (an interval timer that fires again until the budget is left,
in case some library swallows the first signal); elsewhere it falls back to the cooperative
:func:`check` that the evaluator calls at every node.  Running out raises :class:`OutOfTime`,
a ``BaseException`` so that SymPy's many ``except Exception`` clauses cannot swallow it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time


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
