"""Checking files and folders of derivations at once, as ``symbackprop verify`` does.

One file's failure never costs the others theirs: a file that cannot be read or has broken
entries is an error line in :attr:`Report.errors` while every other file is still checked.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import budget, limits
from .check import Checker, FileReport, summarize
from .loader import Derivation, FileError, expand_paths, load

STDIN = "-"
STDIN_LIMIT = limits.MAX_FILE_BYTES  # the same cap as a derivation file on disk


@dataclass(repr=False)
class Report:
    """The reports of every file checked, and the problems with the files themselves (one line each)."""

    files: list = field(default_factory=list)  # FileReport
    errors: list = field(default_factory=list)  # str

    @property
    def results(self) -> list:
        """Every claim's result, file after file."""
        return [result for report in self.files for result in report.results]

    @property
    def summary(self) -> dict:
        return summarize(self.files)

    @property
    def seconds(self) -> float:
        return sum(report.seconds for report in self.files)

    @property
    def as_expected(self) -> bool:
        """Every file read and every verdict the claim's expected one."""
        return not self.errors and self.summary["unexpected"] == 0

    def to_dict(self) -> dict:
        """The JSON report of ``symbackprop verify --json`` (docs/report.md)."""
        document = {"files": [report.to_dict() for report in self.files], "summary": self.summary}
        if self.errors:
            document["errors"] = list(self.errors)
        return document

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in self.summary.items() if n and status != "unexpected")
        unexpected = self.summary["unexpected"]
        return (f"<Report: {len(self.files)} file{'s' if len(self.files) != 1 else ''}, {counts or 'no claims'}"
                f"{f'; {unexpected} unexpected' if unexpected else ''}"
                f"{f'; {len(self.errors)} file errors' if self.errors else ''}>")


def _read_stdin(stream=None) -> str:
    stream = stream if stream is not None else sys.stdin
    raw = stream.buffer.read(STDIN_LIMIT + 1) if hasattr(stream, "buffer") else stream.read(STDIN_LIMIT + 1)
    if len(raw) > STDIN_LIMIT:
        raise FileError(f"<stdin>: a derivation file has at most {STDIN_LIMIT} bytes; standard input gave more")
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise FileError(f"<stdin>: not UTF-8 text ({error.reason} at byte {error.start})") from None
    return raw


def cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def verify(paths, timeout: float | None = 60.0, *, progress=None, stdin=None, jobs: int | None = 1,
           memory: int | None = None) -> Report:
    """Check derivation files as the command line does: ``paths`` is a file, a folder (every
    ``*.toml`` in it), ``"-"`` (standard input, or the text stream ``stdin``), a loaded
    :class:`Derivation`, or a list of these.

    ``verify("derivations/").results`` are the claims' results; ``.errors`` the files' problems.
    Each claim is decided under ``timeout`` seconds and ``memory`` bytes (default: the default
    budget shared by the workers).  ``jobs`` > 1 (None: :func:`cores`) checks the files in that
    many worker processes; the report is the serial one, in the files' order.
    """
    paths = [paths] if isinstance(paths, (str, Path, Derivation)) else list(paths)
    jobs = cores() if jobs is None else max(1, int(jobs))
    report = Report()
    derivations = []
    for given in paths:
        if isinstance(given, Derivation):  # already loaded (a draft read from a document)
            report.errors += given.errors
            derivations.append(given)
            continue
        try:
            found = [STDIN] if str(given) == STDIN else expand_paths([str(given)])
        except FileError as error:
            report.errors.append(str(error))
            continue
        for path in found:
            try:
                derivation = load("<stdin>", text=_read_stdin(stdin)) if path == STDIN else load(path)
            except FileError as error:
                report.errors.append(str(error))
                continue
            report.errors += derivation.errors
            derivations.append(derivation)
    jobs = min(jobs, len(derivations))
    if memory is None:
        memory = budget.default_memory() // max(jobs, 1)
    if jobs <= 1:
        report.files = [_check_file(d, timeout, memory, progress) for d in derivations]
    else:
        report.files = _check_in_parallel(derivations, timeout, memory, jobs, progress)
    return report


def _check_file(derivation, timeout, memory, progress=None) -> FileReport:
    return Checker(derivation, timeout=timeout, memory=memory).check(progress=progress)


# ---- the process pool.  Workers inherit the loaded derivations (fork).  A file's claims go to one
# worker, in order, with one Checker: they share its networks and memoised values exactly as in the
# serial run (which notes a proof carries depends on what the shared evaluation has seen), so the
# report is the serial one.  Files are spread over the workers, largest first.
_pool_derivations: list = []


def _pool_check(task):
    index, timeout, memory = task
    derivation = _pool_derivations[index]
    report = _check_file(derivation, timeout, memory)
    return report.results, report.seconds


def _check_in_parallel(derivations, timeout, memory, jobs, progress) -> list:
    import concurrent.futures
    import multiprocessing

    global _pool_derivations
    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # pragma: no cover - no fork (not POSIX): the serial run
        return [_check_file(d, timeout, memory, progress) for d in derivations]
    _pool_derivations = derivations
    order = sorted(range(len(derivations)), key=lambda i: -len(derivations[i].claims))
    reports: dict = {}
    try:
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {pool.submit(_pool_check, (i, timeout, memory)): i for i in order}
            for future in concurrent.futures.as_completed(futures):
                i = futures[future]
                d = derivations[i]
                try:
                    results, seconds = future.result()
                except Exception as error:  # a worker that died (killed, out of memory): that file's claims
                    results, seconds = [_lost(claim, error) for claim in d.claims], 0.0
                reports[i] = FileReport(d, results, seconds)
                if progress:
                    progress(f"{d.path}: done")
    finally:
        _pool_derivations = []
    return [reports[i] for i in range(len(derivations))]


def _lost(claim, error):
    from ..prove import UNDECIDED, Verdict
    from .check import ClaimResult

    text = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    return ClaimResult(claim, Verdict(UNDECIDED, message=f"could not be checked: the worker process failed "
                                                          f"({type(error).__name__}: {text})"))
