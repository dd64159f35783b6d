"""Proofs as LaTeX: one printer, calculational proofs checked line by line, documents, PDFs.

    printer.py      the LaTeX printer over every project object, and pdflatex-safe text
    calculation.py  chains of equalities at matrix level, each line decided by the prover
    claims.py       derivation-file formulas, printed in the document's own symbols
    documents.py    a network's proof and a derivation file's check as LaTeX documents
    pdf.py          pdflatex
    notebook.py     Jupyter display (``_repr_latex_``) of proofs, verdicts and verify reports
"""

from .calculation import Calculation, Step, check, network_calculations
from .documents import (NetworkDocument, calculation_latex, derivation_document, layer_document, network_document,
                        write)
from .pdf import PdfError, compile_pdf
from .notebook import register as _register_notebook_display
from .printer import ProofPrinter, latex, text

_register_notebook_display()

__all__ = ["ProofPrinter", "latex", "text", "Calculation", "Step", "check", "network_calculations",
           "NetworkDocument", "calculation_latex", "derivation_document", "layer_document", "network_document", "write",
           "PdfError", "compile_pdf"]
