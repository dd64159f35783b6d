"""Derivation files: a document's gradient formulas in its own notation, checked claim by claim."""

from .check import Checker, ClaimResult, FileReport, summarize
from .language import ClaimError
from .loader import Derivation, FileError, expand_paths, load
from .report import Report, verify

__all__ = ["Checker", "ClaimResult", "FileReport", "summarize", "ClaimError", "Derivation", "FileError",
           "expand_paths", "load", "verify", "Report"]
