"""Compiling a LaTeX file with pdflatex: the PDF lands next to the file, the build files do not."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

INSTALL_HINT = "on Debian: apt-get install texlive-latex-base"
TIMEOUT = 180.0


class PdfError(Exception):
    """pdflatex is missing or failed; the message is one line for the user."""


def pdflatex() -> str | None:
    """The pdflatex executable, or None when it is not installed."""
    return shutil.which("pdflatex")


def _first_error(log: str) -> str:
    """The first ``! …`` error of a pdflatex log, with its line number when the log gives one."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("!"):
            where = next((after.split(" ", 1)[0] for after in lines[i + 1:i + 12] if after.startswith("l.")), "")
            return line[1:].strip() + (f" (input line {where[2:]})" if where else "")
    return "see the log (no error line found)"


def compile_pdf(tex_path, *, timeout: float = TIMEOUT) -> Path:
    """Run pdflatex on ``tex_path`` (twice when it asks to rerun); returns the PDF's path."""
    tex_path = Path(tex_path).resolve()
    executable = pdflatex()
    if executable is None:
        raise PdfError(f"--pdf needs pdflatex, which is not installed ({INSTALL_HINT}); the LaTeX is in {tex_path}")
    with tempfile.TemporaryDirectory(prefix="symbackprop-latex-") as build:
        log_path = Path(build) / (tex_path.stem + ".log")
        for _ in range(2):
            try:
                run = subprocess.run([executable, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
                                      f"-output-directory={build}", str(tex_path)], cwd=build,
                                     stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise PdfError(f"pdflatex did not finish {tex_path.name} within {timeout:g} s") from None
            log = log_path.read_text(encoding="latin-1") if log_path.exists() else run.stdout.decode("latin-1")
            if run.returncode != 0:
                raise PdfError(f"pdflatex failed on {tex_path}: {_first_error(log)}")
            if "Rerun to get" not in log and "Rerun LaTeX" not in log:
                break
        pdf = tex_path.with_suffix(".pdf")
        try:
            shutil.copyfile(Path(build) / (tex_path.stem + ".pdf"), pdf)
        except OSError as error:
            raise PdfError(f"cannot write {pdf}: {error.strerror or error}") from None
    return pdf
