"""Checking files and folders of derivations at once, as ``symbackprop verify`` does.

One file's failure never costs the others theirs: a file that cannot be read or has broken
entries is an error line in :attr:`Report.errors` while every other file is still checked.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import limits
from .check import Checker, FileReport, summarize
from .loader import FileError, expand_paths, load

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


def verify(paths, timeout: float | None = 60.0, *, progress=None, stdin=None) -> Report:
    """Check derivation files as the command line does: ``paths`` is a file, a folder (every
    ``*.toml`` in it), ``"-"`` (standard input, or the text stream ``stdin``) or a list of these.

    ``verify("derivations/").results`` are the claims' results; ``.errors`` the files' problems.
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    report = Report()
    for given in paths:
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
            report.files.append(Checker(derivation, timeout=timeout).check(progress=progress))
    return report
