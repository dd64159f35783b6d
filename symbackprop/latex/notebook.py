"""Jupyter display: proofs, verdicts and verify reports show as LaTeX (MathJax) in a notebook.

The ``_repr_latex_`` methods are attached here, by the output layer, so that the core modules
(``prove``, ``derivation``) never import their outputs.  ``import symbackprop`` attaches them.
"""

from __future__ import annotations

from ..derivation.check import ClaimResult, FileReport
from ..derivation.report import Report
from ..general import GeneralProof, Lemma
from ..prove import QUANTITY_TEXT, LemmaResult, NetworkProof, QuantityResult, Verdict
from .printer import layer_name


def mathjax_text(value) -> str:
    """Prose inside MathJax's ``\\text{}``: braces and dollars escaped, unicode kept."""
    escaped = str(value).replace("\\", "/").replace("{", r"\{").replace("}", r"\}").replace("$", r"\$")
    return rf"\text{{{escaped}}}"


def _status(status: str) -> str:
    return rf"\textbf{{{status}}}"


def verdict_repr(verdict: Verdict) -> str:
    detail = verdict.method if verdict.proved else verdict.message
    extra = f" ({verdict.scope}{'; ' + detail if detail else ''})"
    return f"${_status(verdict.status)}\\ {mathjax_text(extra)}$"


def _array(header: list, rows: list) -> str:
    spec = "l" * len(header)
    lines = [" & ".join(header) + r" \\ \hline"] + [" & ".join(row) + r" \\" for row in rows]
    return rf"$$\begin{{array}}{{{spec}}}" + "\n".join(lines) + r"\end{array}$$"


def _quantity(result: QuantityResult) -> str:
    stems = {text: letter for letter, text in QUANTITY_TEXT.items()}
    return rf"\partial J/\partial {layer_name(stems.get(result.quantity, result.quantity), result.layer)}"


def quantity_result_repr(result: QuantityResult) -> str:
    return f"${_quantity(result)}\quad {verdict_repr(result.verdict).strip('$')}$"


def lemma_result_repr(lemma: LemmaResult) -> str:
    return f"${mathjax_text(f'lemma {lemma.name}: {lemma.statement}')}\quad {verdict_repr(lemma.verdict).strip('$')}$"


def general_lemma_repr(lemma: Lemma) -> str:
    return f"${mathjax_text(f'{lemma.name}: {lemma.statement}')}\quad {verdict_repr(lemma.verdict).strip('$')}$"


def general_proof_repr(proof: GeneralProof) -> str:
    rows = [[mathjax_text(lemma.name), _status(lemma.verdict.status), mathjax_text(str(lemma.statement)),
             f"{lemma.verdict.seconds:.2f}"] for lemma in proof.lemmas]
    rows += [[mathjax_text("conclusion"), _status("proved" if proof.induction.proved else "not proved"),
              mathjax_text(str(equation)), ""] for equation in proof.induction.conclusion]
    header = [mathjax_text(proof.setting.describe()), r"\text{verdict}", r"\text{statement}", r"\text{seconds}"]
    return _array(header, rows)


def network_proof_repr(proof: NetworkProof) -> str:
    rows = [[_quantity(r), _status(r.verdict.status), mathjax_text(r.verdict.method or r.verdict.message),
             f"{r.verdict.seconds:.2f}"] for r in proof.results]
    rows += [[mathjax_text(f"lemma {lemma.name}"), _status(lemma.verdict.status), mathjax_text(lemma.statement),
              f"{lemma.verdict.seconds:.2f}"] for lemma in proof.lemmas]
    header = [mathjax_text(proof.spec.describe()), r"\text{verdict}", r"\text{method}", r"\text{seconds}"]
    return _array(header, rows)


def claim_result_repr(result: ClaimResult) -> str:
    expected = "as expected" if result.expected else f"UNEXPECTED: expected {result.claim.expect}"
    line = rf"\text{{{result.claim.id}}}\quad {mathjax_text(result.claim.text)}\quad {_status(result.verdict.status)}" \
           rf"\ {mathjax_text('(' + expected + ')')}"
    if result.correction:
        line += rf"\quad \text{{correction: }}{_status(result.correction['verdict'])}"
    return f"$${line}$$"


def file_report_repr(report: FileReport) -> str:
    rows = [[mathjax_text(r.claim.id), mathjax_text(r.claim.text), _status(r.verdict.status),
             mathjax_text("" if r.correction is None else f"correction {r.correction['verdict']}"),
             mathjax_text("as expected" if r.expected else "UNEXPECTED")] for r in report.results]
    title = report.derivation.title or report.derivation.path
    return _array([mathjax_text(title), r"\text{as printed}", r"\text{verdict}", "", ""], rows)


def report_repr(report: Report) -> str:
    return "\n".join(file_report_repr(file) for file in report.files) or mathjax_text(repr(report))


def register() -> None:
    Verdict._repr_latex_ = verdict_repr
    NetworkProof._repr_latex_ = network_proof_repr
    ClaimResult._repr_latex_ = claim_result_repr
    FileReport._repr_latex_ = file_report_repr
    Report._repr_latex_ = report_repr
    QuantityResult._repr_latex_ = quantity_result_repr
    LemmaResult._repr_latex_ = lemma_result_repr
    Lemma._repr_latex_ = general_lemma_repr
    GeneralProof._repr_latex_ = general_proof_repr
