"""Derivation files: a document's gradient formulas in its own notation, checked claim by claim."""

from .check import Checker, ClaimResult, FileReport, summarize
from .language import ClaimError
from .loader import Derivation, FileError, expand_paths, load

__all__ = ["Checker", "ClaimResult", "FileReport", "summarize", "ClaimError", "Derivation", "FileError",
           "expand_paths", "load", "verify"]


def verify(path, timeout: float | None = 60.0) -> FileReport:
    """Check one derivation file: ``verify("derivations/002_backprop.toml").results``."""
    return Checker(load(path), timeout=timeout).check()
