"""LaTeX: the printer, calculational proofs checked line by line, documents that really compile.

Compiling needs pdflatex and pdftotext.  CI installs them (.ci/run) and sets
SYMBACKPROP_REQUIRE_PDFLATEX=1, which turns their absence into a failure; elsewhere those tests skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sympy

from symbackprop import NetworkSpec, Verdict, prove_network, rules
from symbackprop.derivation import load, verify
from symbackprop.derivation.language import ClaimError
from symbackprop.evaluate import Partial
from symbackprop.latex import (PdfError, calculation_latex, compile_pdf, derivation_document, latex,
                               network_calculations, network_document, text)
from symbackprop.latex.calculation import Entrywise, check_network_calculations, recurrences
from symbackprop.latex.claims import ClaimPrinter, formula_latex

ROOT = Path(__file__).resolve().parent.parent
DERIVATIONS = ROOT / "derivations"


def require_pdflatex():
    missing = [tool for tool in ("pdflatex", "pdftotext", "pdfinfo") if shutil.which(tool) is None]
    if missing:
        message = f"{', '.join(missing)} not installed (Debian: texlive-latex-base, poppler-utils)"
        if os.environ.get("SYMBACKPROP_REQUIRE_PDFLATEX"):
            pytest.fail(message + ", but SYMBACKPROP_REQUIRE_PDFLATEX is set: CI must compile the documents")
        pytest.skip(message)


def pdf_text(pdf: Path) -> str:
    """The PDF's text with line breaks (and words hyphenated across them) joined."""
    raw = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(raw.replace("-\n", "").split())


def pdf_pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[1] for line in info.splitlines() if line.startswith("Pages:")))


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=env)


def test_ci_fails_rather_than_skips_without_pdflatex(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    monkeypatch.setenv("SYMBACKPROP_REQUIRE_PDFLATEX", "1")
    with pytest.raises(pytest.fail.Exception, match="CI must compile"):
        require_pdflatex()
    monkeypatch.delenv("SYMBACKPROP_REQUIRE_PDFLATEX")
    with pytest.raises(pytest.skip.Exception):
        require_pdflatex()


# ------------------------------------------------------------------------------ the printer


def test_atoms_print_with_their_rows_latex_name():
    z, w = sympy.symbols("z w")
    assert latex(rules.SIGMOID.atom(z)) == r"\sigma(z)"
    assert latex(rules.TANH.atom(z) ** 2) == r"\tanh(z)^{2}"
    assert latex(rules.SOFTMAX.atom(1, z, w)) == r"\operatorname{softmax}_{2}(z, w)"
    for row in rules.ACTIVATIONS.values():
        if not row.vector:
            assert latex(row.atom(z)).startswith(row.latex)
    # the closed forms the documents use, functions before sums
    assert latex(rules.SIGMOID.derivative(z)) == r"\sigma(z) (1 - \sigma(z))"


def test_partials_and_network_symbols():
    J = sympy.Symbol("J")
    assert latex(Partial(J, sympy.Symbol("W1[2,3]"), J)) == r"\frac{\partial J}{\partial W^{(1)}_{2,3}}"
    # ∂J/∂z is taken through z's perturbation ε, and printed as ∂J/∂z
    assert latex(Partial(J, sympy.Symbol("εz1[2]"), J)) == r"\frac{\partial J}{\partial z^{(1)}_{2}}"
    assert latex(sympy.Symbol("x[1,2]")) == "x_{1,2}"
    assert latex(sympy.Symbol("ŷ")) == r"\hat{y}"


def test_recurrences_print_as_the_documents_write_them():
    rec = recurrences(NetworkSpec(widths=(3, 4, 2)))
    assert latex(rec.delta[2]) == r"(a^{(2)} - y) \odot (\sigma(z^{(2)}) \odot (1 - \sigma(z^{(2)})))"
    assert latex(rec.delta[1]) == r"((W^{(2)})^{\top} \delta^{(2)}) \odot (\sigma(z^{(1)}) \odot (1 - \sigma(z^{(1)})))"
    assert latex(rec.weight[1]) == r"\delta^{(1)} x^{\top}"
    assert latex(rec.bias[2]) == r"\delta^{(2)}"
    rows = recurrences(NetworkSpec(widths=(3, 4, 2), batch=2, layout="rows", l2=True))
    assert latex(rows.delta[2]).startswith(r"\frac{1}{m} (")
    assert latex(rows.delta[1]).startswith(r"(\delta^{(2)} W^{(2)}) \odot")
    assert latex(rows.weight[2]) == r"(\delta^{(2)})^{\top} a^{(1)} + \lambda W^{(2)}"
    assert latex(rows.bias[1]) == r"(\delta^{(1)})^{\top} \mathbf{1}_{m}"


def test_text_escapes_specials_and_maps_unicode_to_ascii_latex():
    out = text("∂C/∂W² = δ² [a¹]ᵀ_{2×1} 100% & $x ŷ 𝓛 ℓ ⊙")
    assert out.isascii()
    for fragment in (r"\partial", r"\delta", r"\%", r"\&", r"\$", r"\_", r"\{", r"\^{y}", r"\mathcal{L}", r"\ell",
                     r"\odot", r"\times"):
        assert fragment in out
    for path in sorted(DERIVATIONS.glob("*.toml")):
        for claim in load(path).claims:
            assert text(claim.text).isascii(), claim.text


def test_claim_formulas_print_in_the_documents_symbols():
    derivation = load(DERIVATIONS / "002_backprop_in_neural_networks.toml")
    printer = ClaimPrinter(derivation)
    assert printer.formula("W[2].T @ delta[2] ∘ sigma'(z[1])") == \
        r"((W^{(2)})^{\top} \delta^{(2)}) \odot \sigma'(z^{(1)})"
    assert printer.formula("grad(C, W[2])") == r"\frac{\partial C}{\partial W^{(2)}}"
    assert printer.formula("(a[2] - t) * sigma'(z[2])") == r"(a^{(2)} - t) \odot \sigma'(z^{(2)})"
    assert formula_latex("(1/N) * (a - y)") == r"\frac{1}{N} (a - y)"  # a scalar factor: no ⊙
    assert formula_latex("eps[q] * W[q, i] * (i == j)") == r"\varepsilon_{q} W_{q,i} [i = j]"
    with pytest.raises(ClaimError):
        formula_latex("__import__('os').system('true')")


# ------------------------------------------------------------------- calculational proofs


@pytest.mark.parametrize("spec", [
    NetworkSpec(widths=(3, 4, 2)),
    NetworkSpec(widths=(3, 4, 2), hidden="relu", output="softmax", loss="cross_entropy", batch=2),
    NetworkSpec(widths=(2, 3, 1), hidden="tanh", output="sigmoid", loss="bce", batch=2, layout="rows", l2=True),
    NetworkSpec(widths=(2, 3, 2, 2), hidden="generic", output="softmax", loss="half_sse", batch=2),
    NetworkSpec(widths=(2, 3, 2), hidden="silu", output="identity", loss="mse", reduction="sum"),
], ids=["sigmoid", "relu-softmax-ce", "tanh-bce-rows-l2", "generic-softmax-sse", "silu-identity-mse"])
def test_every_line_of_every_calculation_is_proved(spec):
    rec, calculations = network_calculations(spec)
    check_network_calculations(spec, calculations)
    assert len(calculations) == 3 * spec.depth
    for calculation in calculations:
        assert calculation.proved, [(s.reason, s.verdict.status, s.verdict.message) for s in calculation.steps]
        assert len(calculation.steps) >= 2  # a chain, not a single jump
    # each ends in the recurrence derive.backprop computes
    ends = {c.key: latex(c.steps[-1].statement) for c in calculations}
    assert ends["z", 1] == r"\delta^{(1)}"
    assert ends["W", 1] == latex(rec.weight[1])


def test_a_broken_line_is_reported_failing_not_printed_as_proven():
    spec = NetworkSpec(widths=(3, 4, 2))
    proof = prove_network(spec)
    _, calculations = network_calculations(spec)
    hidden = next(c for c in calculations if c.key == ("z", 1))
    lemma_line = next(i for i, s in enumerate(hidden.steps) if s.reason.startswith("Lemma"))
    x = sympy.Symbol("x")
    closed = next(e for e in hidden.steps[lemma_line].statement.atoms(Entrywise) if e.body.has(rules.SIGMOID.atom(x)))
    wrong_rule = Entrywise(rules.SIGMOID.atom(x) * (1 + rules.SIGMOID.atom(x)), x, closed.matrix)  # σ(1+σ)
    hidden.steps[lemma_line].statement = hidden.steps[lemma_line].statement.xreplace({closed: wrong_rule})

    document = network_document(proof, calculations)

    broken = hidden.steps[lemma_line]
    assert broken.verdict.status == "refuted" and broken.verdict.counterexample
    assert not hidden.proved and not document.proved
    assert all(c.proved for c in calculations if c is not hidden)
    assert hidden.failures[0][0] == lemma_line + 1
    tex = document.text
    assert r"\textbf{FAILED}: refuted" in tex and r"\neq{}&" in tex
    assert "Hence $\\partial J/\\partial z^{(1)}" not in tex
    assert "\\textbf{Not proved}}: $\\partial J/\\partial z^{(1)} = \\delta^{(1)}$ does not follow" in tex


def test_steps_from_other_proofs_render_through_the_same_function():
    """A proof object that is a list of (statement, justification[, verdict]) renders as-is."""
    n = sympy.Symbol("n")
    tex = calculation_latex(n * (n + 1), [(n ** 2 + n, "distributivity", Verdict("proved")),
                                          (n ** 2 + 2 * n, "a slip", Verdict("refuted", message="differs")),
                                          (n * (n + 2), "factor")])
    assert r"\checkmark" in tex and r"\neq{}&" in tex and "not machine-checked" in tex
    assert r"\textbf{FAILED}: refuted --- differs" in tex


# -------------------------------------------------------------------------- documents, PDFs


def test_prove_writes_a_short_pdf_with_every_step_checked(tmp_path):
    require_pdflatex()
    tex = tmp_path / "proof.tex"
    result = run_cli("prove", "--widths", "3,4,2", "--hidden", "sigmoid", "--output-activation", "sigmoid",
                     "--loss", "half_sse", "--latex", str(tex), "--pdf", "--exact")
    assert result.returncode == 0, result.stderr
    assert tex.read_text(encoding="ascii").isascii()
    pdf = tex.with_suffix(".pdf")
    assert pdf_pages(pdf) <= 4
    content = pdf_text(pdf)
    for fragment in ("The network", "Lemmas", "Calculational proofs", "chain rule", "Lemma 1",
                     "every line proved equal to the one before", "All 6 gradients proved"):
        assert fragment in content, fragment
    assert content.count("Hence") == 6 and "FAILED" not in content
    assert not list(tmp_path.glob("*.aux")) and not list(tmp_path.glob("*.log"))  # build files stay out


def test_prove_general_adds_the_every_width_every_depth_proof(tmp_path):
    require_pdflatex()
    tex = tmp_path / "general.tex"
    result = run_cli("prove", "--widths", "3,4,2", "--hidden", "relu", "--output-activation", "softmax",
                     "--loss", "cross_entropy", "--general", "--latex", str(tex), "--pdf")
    assert result.returncode == 0, result.stderr
    assert tex.read_text(encoding="ascii").isascii()
    content = pdf_text(tex.with_suffix(".pdf"))
    for fragment in ("For every width and every depth", "hidden step", "softmax Jacobian", "Base case",
                     "Conclusion", "by P (k)", "every depth L"):
        assert fragment in content, fragment
    assert "a lemma above is not proved" not in content and "FAILED" not in content


def test_the_general_proof_prints_through_the_one_printer():
    """Each construct the every-width proof uses, as LaTeX: names with primes and subscripts,
    activations by their rows' names, entries of subscripted matrices, 1-based sums, the
    documents' term order, broadcast biases with their transpose, prose with its formulas."""
    from symbackprop import prove_general
    from symbackprop.general import Applied, Equation, Prose

    m, n = sympy.Symbol("m", integer=True, positive=True), sympy.Symbol("n", integer=True, positive=True)
    b, a, y = sympy.MatrixSymbol("b_k", n, 1), sympy.MatrixSymbol("a_L", n, m), sympy.MatrixSymbol("y", n, m)
    q, i = sympy.symbols("q i", integer=True)
    assert latex(sympy.Symbol("g_k′")) == "g_{k}'"                      # not g_{k'}
    assert latex(sympy.Symbol("(Σ_e ℓ)")) == r"(\Sigma_{e} \ell )"
    assert latex(Applied.of(rules.SIGMOID, a)) == r"\sigma(a_{L})"           # not math-italic "sigmoid"
    assert latex(Applied.of(rules.SOFTMAX, a)) == r"\operatorname{softmax}(a_{L})"
    assert latex(Applied.of(rules.IDENTITY.derivative, a)) == r"\operatorname{id}'(a_{L})"
    assert latex(b * sympy.OneMatrix(1, m)) == r"b_{k} \mathbf{1}_{m}^{\top}"   # the bias keeps its transpose
    assert latex(sympy.IndexedBase("W_{k+1}")[q, i]) == r"(W_{k+1})_{q,i}"       # not W_{k+1 q,i}
    assert latex(a - y) == "a_{L} - y" and latex(sympy.Symbol("k") + 1) == "k + 1"
    assert latex(sympy.KroneckerDelta(i, q)) == "[i = q]"
    assert latex(sympy.Symbol("m") ** -1 * sympy.Sum(sympy.Symbol("x"), (q, 1, m))) == r"\frac{1}{m} \sum_{q=1}^{m} x"
    prose = Prose("by ", sympy.Symbol("δ_L"), ", with ", Equation(sympy.Symbol("φ"), sympy.Symbol("φ_{k+1}")))
    assert prose == "by δ_L, with φ = φ_{k+1}"                            # plain text for the terminal
    assert text(prose) == r"by $\delta_{L}$, with $\varphi = \varphi_{k+1}$"
    general = prove_general(NetworkSpec(widths=(3, 4, 2), hidden="relu", output="softmax", loss="cross_entropy"))
    statements = {lemma.name: latex(lemma.statement) for lemma in general.lemmas}
    assert statements["softmax Jacobian"] == r"\frac{\partial \hat{y}_{i}}{\partial z_{j}} = \hat{y}_{i} ([i = j] - \hat{y}_{j})"
    assert r"\sum_{q=1}^{n_{k+1}}" in statements["hidden step"] and r"(W_{k+1})_{q,i}" in statements["hidden step"]
    assert statements["output: softmax + cross_entropy"].endswith("- y_{i,j}")
    for statement in statements.values():
        assert "=0}" not in statement and "-1 + n" not in statement, statement


GENERAL_PAIRINGS = {  # flags → what the PDF's definitions show for z_k and a_L (spaces removed)
    "relu-softmax-cross_entropy": (["--hidden", "relu", "--output", "softmax", "--loss", "cross_entropy"],
                                   "zk=Wkak−1+bk1⊤m;", "aL=softmax(zL);"),
    "sigmoid-sigmoid-bce-rows-l2": (["--hidden", "sigmoid", "--output", "sigmoid", "--loss", "bce", "--layout", "rows",
                                     "--l2"], "zk=ak−1(Wk)⊤+1m(bk)⊤;", "aL=σ(zL);"),
    "generic-identity-mse-sum": (["--hidden", "generic", "--output", "identity", "--loss", "mse", "--reduction", "sum"],
                                 "zk=Wkak−1+bk1⊤m;", "aL=id(zL);"),
}


@pytest.mark.parametrize("pairing", list(GENERAL_PAIRINGS))
def test_the_general_proof_pdf_reads_as_mathematics(tmp_path, pairing):
    """The every-width proof's PDF, read back: no LaTeX source shown as text, the bias broadcast
    with its transpose, activations by name, sums from 1, entries of subscripted matrices
    bracketed, terms in the documents' order."""
    require_pdflatex()
    flags, affine, output = GENERAL_PAIRINGS[pairing]
    tex = tmp_path / "general.tex"
    result = run_cli("prove", "--widths", "3,4,2", *flags, "--general", "--latex", str(tex), "--pdf")
    assert result.returncode == 0, result.stderr
    source = tex.read_text(encoding="ascii")
    general = pdf_text(tex.with_suffix(".pdf")).split("For every width and every depth", 1)[1]
    squeezed = general.replace(" ", "")
    for leaked in ("{k+1}", "{k-1}", "z {", "\\", "_"):          # justifications printed as LaTeX source
        assert leaked not in general, leaked
    assert "throughzk+1=" in squeezed                              # ... as mathematics
    assert affine in squeezed                                      # b 1ᵀ, not b 1 (or 1 bᵀ in rows)
    assert output in squeezed                                      # σ, softmax, id: not math-italic names
    assert "sof tmax" not in general and not any(f"{name}{prime}(" in squeezed for name in ("sigmoid", "identity")
                                                 for prime in ("", "′"))
    assert "q=0" not in squeezed and "−1+n" not in squeezed and "q=1" in squeezed   # sums from 1
    assert "(zk)i,j" in squeezed and "zki,j" not in squeezed       # (z_k)_{i,j}, not z_{k i,j}
    assert "=−y" not in squeezed and "aL−y" in squeezed            # a − y, not SymPy's −y + a
    assert "P(k+1)" in squeezed and "P(1+k)" not in squeezed
    assert r"g_{k}'" in source and r"g_{k'}" not in source         # the prime on g_k, not on its subscript
    assert "a lemma above is not proved" not in general and "FAILED" not in general


def test_a_general_lemma_that_fails_shows_its_residual():
    import sympy

    from symbackprop import NetworkSpec, prove_general
    from symbackprop.general import Recurrences
    from symbackprop.latex.documents import general_latex

    spec = NetworkSpec(widths=(3, 4, 2), hidden="sigmoid", output="sigmoid", loss="half_sse", batch=2)
    wrong = prove_general(spec, Recurrences(reduction_factor=lambda reduction, m: sympy.Integer(1)))
    tex = general_latex(wrong)
    assert tex.isascii()
    assert "residual" in tex and r"\textbf{not proved}" in tex


def test_a_general_argument_that_cannot_be_stated_still_compiles(tmp_path):
    """No empty list for pdflatex to reject: the notes say why there is no argument."""
    from symbackprop import prove_general
    from symbackprop.general import Recurrences
    from symbackprop.latex.documents import document, general_latex

    def broken(*args, **kwargs):
        raise RuntimeError("broken rule")

    proof = prove_general(NetworkSpec(widths=(2, 2)), Recurrences(output_delta=broken))
    assert not proof.induction.base
    tex = general_latex(proof)
    assert r"\begin{enumerate}" not in tex and "broken rule" in tex
    require_pdflatex()
    path = tmp_path / "unstated.tex"
    path.write_text(document("unstated", tex), encoding="ascii")
    assert "could not be stated" in pdf_text(compile_pdf(path))


def test_verify_writes_a_pdf_of_all_five_documents_with_their_errata(tmp_path):
    require_pdflatex()
    tex = tmp_path / "derivations.tex"
    result = run_cli("verify", str(DERIVATIONS), "--latex", str(tex), "--pdf")
    assert result.returncode == 0, result.stderr
    content = pdf_text(tex.with_suffix(".pdf"))
    for path in sorted(DERIVATIONS.glob("*.toml")):
        assert " ".join(load(path).title.split()[:2]) in content
    # errata: refuted claims with their counterexample, ill-formed ones with the message, corrections
    assert content.count("Counterexample") >= 2 and "exact rational" in content
    assert "delta[3] is not defined (defined: delta[1], delta[2])" in content
    assert "Correction" in content and "Verdict on the correction: proved" in content
    assert "every verdict as expected" in content


def test_a_file_with_errors_is_printed_too(tmp_path):
    require_pdflatex()
    broken = tmp_path / "broken.toml"
    broken.write_text('title = "Odd & 100% {broken}"\n[network]\nwidths = [2, 2]\noutput = "sigmoid"\nloss = "half_sse"\n'
                      '[[claim]]\nid = "X"\ntext = "∂C/∂W ≟ δ_{1}^T"\nlhs = "grad(C, W[1])"\nrhs = "nope[1]"\n',
                      encoding="utf-8")
    report = verify(broken)
    path = tmp_path / "broken.tex"
    path.write_text(derivation_document(report.files), encoding="ascii")
    content = pdf_text(compile_pdf(path))
    assert "Odd & 100% {broken}" in content and "ill-formed" in content


def test_pdflatex_errors_are_one_line(tmp_path):
    require_pdflatex()
    bad = tmp_path / "bad.tex"
    bad.write_text("\\documentclass{article}\\begin{document}\\undefinedmacro\\end{document}\n")
    with pytest.raises(PdfError) as error:
        compile_pdf(bad)
    assert "Undefined control sequence" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("args,fragment", [
    (["prove", "--widths", "3,4", "--pdf"], "--pdf needs --latex FILE"),
    (["prove", "--widths", "3,4", "--latex", "/no/such/dir/p.tex"], "no such directory"),
    (["verify", "derivations/002_backprop_in_neural_networks.toml", "--pdf"], "--pdf needs --latex FILE"),
])
def test_latex_argument_errors_are_one_line(args, fragment):
    result = run_cli(*args)
    assert result.returncode == 2 and fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_pdflatex_is_one_line_before_any_work(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    result = run_cli("prove", "--widths", "3,4", "--latex", str(tmp_path / "p.tex"), "--pdf",
                     env={**os.environ, "PATH": str(empty)})
    assert result.returncode == 2
    assert "needs pdflatex, which is not installed" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


# ---------------------------------------------------------------------------------- Jupyter


def test_notebook_displays():
    proof = prove_network(NetworkSpec(widths=(2, 2)))
    shown = proof._repr_latex_()
    assert shown.startswith("$$\\begin{array}") and r"\partial J/\partial W^{(1)}" in shown and "proved" in shown
    assert proof.results[0].verdict._repr_latex_() == \
        r"$\textbf{proved}\ \text{ (instance; exact, layerwise (chain rule over local identities))}$"
    report = verify(DERIVATIONS / "002_backprop_in_neural_networks.toml")
    ill_formed = sum(r.verdict.status == "ill-formed" for r in report.results)
    assert ill_formed >= 4 and report._repr_latex_().count(r"\textbf{ill-formed}") == ill_formed
    c3 = next(r for r in report.results if r.claim.id == "C3")
    assert c3._repr_latex_().startswith(r"$$\text{C3}") and r"[δ³]_\{2×1\}" in c3._repr_latex_()
