"""LaTeX documents: a network's proof (setup, lemmas, calculational proofs) and a derivation
file's check (each claim as printed, its reading, verdict, counterexample, correction).

The documents use only packages of Debian's texlive-latex-base (amsmath, amssymb, geometry,
array, longtable, color) and are plain ASCII: see ``printer.text``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import sympy
from sympy import Derivative

from .. import __version__, rules
from ..derivation.language import ClaimError, parse, parse_range
from ..prove import PROVED, QUANTITY_TEXT, REFUTED, UNDECIDED, NetworkProof, Verdict, lemmas_for
from .calculation import (LOSS, Calculation, Step, check_network_calculations, network_calculations,
                          recurrences)
from .claims import ClaimPrinter
from .printer import PartialMatrix, latex, layer_name, text

PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[a4paper,margin=2cm]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{array,longtable}
\usepackage{color}
\definecolor{proved}{rgb}{0,0.45,0.1}
\definecolor{failed}{rgb}{0.75,0,0}
\definecolor{undecided}{rgb}{0.6,0.4,0}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.6ex}
\newcommand{\hint}[1]{\parbox[t]{0.8\linewidth}{\small\raggedright\{\,#1\,\}}}
"""

_COLOURS = {PROVED: "proved", REFUTED: "failed", "ill-formed": "failed", UNDECIDED: "undecided"}


def document(title: str, body: str) -> str:
    """A complete LaTeX document (``title`` is LaTeX)."""
    return (PREAMBLE + "\\title{" + title + "}\n\\author{symbackprop " + __version__ + "}\n\\date{}\n"
            "\\begin{document}\n\\maketitle\n" + body + "\n\\end{document}\n")


def status_latex(status: str) -> str:
    """A verdict word, coloured: proved, refuted, ill-formed, undecided."""
    return rf"\textcolor{{{_COLOURS.get(status, 'failed')}}}{{\textbf{{{text(status)}}}}}"


def value_latex(value) -> str:
    """A value from a verdict: an exact fraction (with its decimal), or an interval ``m ± r``."""
    value = str(value)
    match = re.fullmatch(r"\s*(-?[\d.]+(?:e-?\d+)?)\s*±\s*([\d.]+)(?:e(-?\d+))?\s*", value)
    if match:
        radius = match.group(2) + (rf"\cdot 10^{{{int(match.group(3))}}}" if match.group(3) else "")
        return rf"${match.group(1)} \pm {radius}$"
    try:
        exact = Fraction(value)
    except (ValueError, ZeroDivisionError):
        return text(value)
    if exact.denominator == 1:
        return f"${exact.numerator}$"
    shown = rf"${'-' if exact < 0 else ''}\frac{{{abs(exact.numerator)}}}{{{exact.denominator}}}$"
    if len(value) > 12:
        shown += rf" ($\approx {float(exact):.6g}$)"
    return shown


def _point_symbol(name: str) -> str:
    return latex(sympy.Symbol(name))


def counterexample_latex(counterexample: dict) -> str:
    """The witness of a refutation: the point (every input, parameter and target), the entry
    and both sides' values there, and how they were computed."""
    lines = []
    where = [f"on {text(counterexample['instance'])}"] if counterexample.get("instance") else []
    known = {"entry", "point", "lhs", "rhs", "arithmetic", "functions", "note", "instance", "sizes", "indices"}
    where += [rf"${latex(sympy.Symbol(key))} = {text(value)}$" for key, value in counterexample.items()
              if key not in known]
    entry = counterexample.get("entry")
    lines.append(r"\textbf{Counterexample}" + (" " + ", ".join(where) if where else "") + ".")
    point = list(counterexample.get("point", {}).items())
    if point:
        columns = 4
        cells = [rf"${_point_symbol(n)} = {_fraction_inline(v)}$" for n, v in point]
        cells += [""] * (-len(cells) % columns)
        rows = [" & ".join(cells[i:i + columns]) + r" \\" for i in range(0, len(cells), columns)]
        lines.append("{\\small\\begin{longtable}{@{}" + ">{\\raggedright\\arraybackslash}p{0.235\\linewidth}" * columns
                     + "@{}}\n" + "\n".join(rows) + "\n\\end{longtable}}")
    for function, definition in counterexample.get("functions", {}).items():
        lines.append(rf"with ${latex(sympy.Symbol(function))}(x) = {_polynomial(definition)}$;")
    at = f"entry {text(entry)}: " if entry else ""
    lines.append(rf"{at}left side $=$ {value_latex(counterexample['lhs'])}, right side $=$ "
                 rf"{value_latex(counterexample['rhs'])} ({text(counterexample.get('arithmetic', ''))}).")
    if counterexample.get("note"):
        lines.append(f"({text(counterexample['note'])})")
    return "\n\n".join(lines)


def _fraction_inline(value: str) -> str:
    try:
        exact = Fraction(value)
    except (ValueError, ZeroDivisionError):
        return text(value)
    return str(exact.numerator) if exact.denominator == 1 else f"{exact.numerator}/{exact.denominator}"


def _polynomial(source: str) -> str:
    """The prover's stand-in for a generic function (Python syntax, e.g. ``x**3/3 - x``)."""
    try:
        return ClaimPrinter().formula(source)
    except ClaimError:
        return rf"\text{{{text(source)}}}"


def verdict_latex(verdict: Verdict) -> str:
    """A verdict as a paragraph: status, scope, method or message, notes, counterexample."""
    parts = [status_latex(verdict.status) + f" ({text(verdict.scope)})"]
    detail = verdict.method if verdict.proved else verdict.message
    if detail:
        parts.append("--- " + text(detail))
    out = " ".join(parts) + "."
    for note in verdict.notes:
        out += f"\n\nNote: {text(note)}."
    if verdict.counterexample:
        out += "\n\n" + counterexample_latex(verdict.counterexample)
    return out


# ---------------------------------------------------------------- calculational proofs


def _relation(verdict: Verdict | None) -> str:
    if verdict is None or verdict.proved:
        return "="
    return r"\neq" if verdict.status == REFUTED else r"\overset{?}{=}"


def calculation_latex(start, steps) -> str:
    """A chain ``start = s_1 = s_2 = …`` in the calculational format: each expression on its own
    line, between them the relation and, in braces, the reason.

    ``steps`` are :class:`~symbackprop.latex.calculation.Step` or ``(statement, reason[, verdict])``
    tuples; statements are anything :func:`~symbackprop.latex.latex` prints (SymPy expressions,
    matrix-level nodes).  A step whose verdict is ``proved`` gets a check mark; one that failed
    is printed with ≠ (refuted) or ?= (otherwise) and its verdict, never as proven; a step
    without a verdict is printed as not machine-checked.
    """
    lines = [r"\begin{align*}", rf"&{latex(start)}\\"]
    for step in steps:
        if not isinstance(step, Step):
            step = Step(*step)
        verdict = step.verdict
        if verdict is None:
            mark = r"\quad(\textit{not machine-checked})"
        elif verdict.proved:
            mark = r"\quad$\checkmark$"
        else:
            mark = (rf"\quad\textcolor{{failed}}{{\textbf{{FAILED}}: {text(verdict.status)}"
                    rf"{' --- ' + text(verdict.message) if verdict.message else ''}}}")
            counterexample = verdict.counterexample
            if counterexample:
                mark += (rf" \textcolor{{failed}}{{(left {value_latex(counterexample['lhs'])}, right "
                         rf"{value_latex(counterexample['rhs'])})}}")
        lines.append(rf"{_relation(verdict)}{{}}&\quad\hint{{{step.reason}{mark}}}\\")
        lines.append(rf"&{latex(step.statement)}\\")
    lines[-1] = lines[-1][:-2]
    lines.append(r"\end{align*}")
    return "\n".join(lines)


def _conclusion(calculation: Calculation) -> str:
    last = calculation.steps[-1].statement
    statement = rf"${latex(calculation.start, fold=True)} = {latex(last, fold=True)}$"
    if calculation.proved:
        seconds = sum(step.verdict.seconds for step in calculation.steps)
        return rf"Hence {statement}: every line proved equal to the one before ({seconds:.2f}\,s). \hfill$\checkmark$"
    failed = ", ".join(f"line {n} ({text(step.verdict.status)})" for n, step in calculation.failures)
    unchecked = [] if calculation.checked else ["some lines were not checked"]
    reasons = ", ".join([failed] if failed else [] + unchecked)
    return rf"\textcolor{{failed}}{{\textbf{{Not proved}}}}: {statement} does not follow --- {reasons}."


# ------------------------------------------------------------------------ networks


@dataclass
class NetworkDocument:
    """The LaTeX of a network's proof and the calculations it prints (with their verdicts)."""

    text: str
    calculations: list = field(default_factory=list)

    @property
    def proved(self) -> bool:
        """Every line of every calculation proved."""
        return all(c.proved for c in self.calculations)

    def write(self, path) -> Path:
        return write(self.text, path)


def write(tex: str, path) -> Path:
    path = Path(path)
    path.write_text(tex, encoding="ascii")
    return path


def _quantity_latex(quantity: str, layer: int) -> str:
    """``∂J/∂W`` and 2 (a ``prove.QuantityResult``) as ∂J/∂W^{(2)}, in math mode."""
    stem = {v: k for k, v in QUANTITY_TEXT.items()}.get(quantity, quantity)
    return rf"$\partial J/\partial {layer_name(stem, layer)}$"


def _lemma_statement(row: rules.Activation, width, statement: str) -> str:
    x = sympy.Symbol("x")
    if row.vector:
        s = row.latex
        return (rf"$\frac{{\partial\, {s}_i(z)}}{{\partial z_j}} = {s}_i(z)\,([i = j] - {s}_j(z))$ for "
                rf"$z \in \mathbb{{R}}^{{{width}}}$, where ${s}_i(z) = e^{{z_i}} / \sum_j e^{{z_j}}$")
    if row.definition is None or row.derivative_rule is None:
        return text(statement)
    out = rf"${latex(Derivative(row.atom(x), x))} = {latex(row.derivative(x))}$"
    out += rf", where ${latex(row.atom(x))} = {latex(row.definition(x))}$"
    if row.kink:
        out += r", for $x \neq 0$"
    return out


def _setup(spec, rec) -> str:
    net, alg, L, n = rec.network, rec.network.alg, spec.depth, spec.widths
    columns = spec.layout == "columns"
    lines = [r"\section*{The network}",
             rf"{text(spec.describe())}: widths $n_0, \dots, n_{{{L}}} = {', '.join(map(str, n))}$, "
             rf"batch $m = {spec.batch}$, examples as {'columns' if columns else 'rows'} of the data matrices; "
             r"functions of matrices act entry by entry and $\odot$ is the entrywise product.",
             r"\begin{align*}"]
    rows = []
    for k in range(1, L + 1):
        row = spec.activation(k)
        Z, A = net.Z[k], net.A[k]
        activation = alg.softmax(Z, None) if row.vector else alg.apply(row.atom, Z)
        shape = rf"{latex(net.W[k])} \in \mathbb{{R}}^{{{n[k]}\times {n[k - 1]}}},\ {latex(Z)}, {latex(A)} \in " \
                rf"\mathbb{{R}}^{{{Z.shape[0]}\times {Z.shape[1]}}}"
        rows.append(rf"{latex(Z)} &= {latex(alg.affine(net.W[k], net.A[k - 1], net.b[k]))}, & {latex(A)} &= "
                    rf"{latex(activation)}, && {shape}")
    X = net.A[0]
    c = net.reduction_factor
    penalty = r" + \frac{\lambda}{2}\sum_{k=1}^{L} \lVert W^{(k)}\rVert^2" if spec.l2 else ""
    scale = latex(c) + " " if c != 1 else ""
    rows.append(rf"J &= {scale}\sum_{{e=1}}^{{m}} \ell\big({latex(net.A[L])}_e, y_e\big){penalty}, & "
                rf"\ell(a, y) &= {spec.loss_rule.latex}, && {latex(X)} \in \mathbb{{R}}^{{{X.shape[0]}\times "
                rf"{X.shape[1]}}},\ y \in \mathbb{{R}}^{{{net.Y.shape[0]}\times {net.Y.shape[1]}}}")
    lines.append("\\\\\n".join(rows))
    lines.append(r"\end{align*}")
    if spec.loss_rule.simplex_targets:
        lines.append(r"The targets of each example are one-hot or soft: they sum to 1.")
    x = sympy.Symbol("x")
    definitions = []
    for row in dict.fromkeys(spec.activations):
        if row.vector:
            definitions.append(rf"${row.latex}(z)_i = e^{{z_i}} / \sum_j e^{{z_j}}$")
        elif row.definition is not None:
            definitions.append(rf"${latex(row.atom(x))} = {latex(row.definition(x))}$")
        else:
            definitions.append(rf"${latex(row.atom(x))}$ is any differentiable function")
    lines.append("Activations: " + "; ".join(definitions) + ".")
    lines.append(r"\paragraph{The claim.} The backprop recurrences, as \texttt{derive.backprop} computes them:")
    lines.append(r"\begin{align*}")
    recurrence_rows = []
    for k in range(L, 0, -1):
        recurrence_rows.append(rf"{latex(net.delta(k))} &= {latex(rec.delta[k])}")
    for k in range(L, 0, -1):
        recurrence_rows.append(rf"{latex(PartialMatrix(LOSS, net.W[k]))} &= {latex(rec.weight[k])}, & "
                               rf"{latex(PartialMatrix(LOSS, net.b[k]))} &= {latex(rec.bias[k])}")
    lines.append("\\\\\n".join(recurrence_rows))
    lines.append(r"\end{align*}")
    lines.append(r"where $\partial J/\partial X$ is the true gradient, the matrix of partial derivatives of $J$ "
                 r"with respect to the entries of $X$; and $\partial J/\partial z^{(k)}$ is $\delta^{(k)}$.")
    return "\n".join(lines)


def _lemmas(proof: NetworkProof) -> str:
    if not proof.lemmas:
        return ""
    lines = [r"\section*{Lemmas}",
             "Each derivative rule the recurrences use is proved against the function's definition "
             "before anything relying on it counts as proved.",
             r"\begin{longtable}{@{}r>{\raggedright\arraybackslash}p{0.56\linewidth}"
             r">{\raggedright\arraybackslash}p{0.3\linewidth}@{}}"]
    for number, ((row, width), lemma) in enumerate(zip(lemmas_for(proof.spec), proof.lemmas), start=1):
        v = lemma.verdict
        lines.append(rf"{number} & {_lemma_statement(row, width, lemma.statement)} & {status_latex(v.status)} "
                     rf"({text(v.scope)}): {text(v.method or v.message)}, {v.seconds:.2f}\,s \\")
    lines.append(r"\end{longtable}")
    return "\n".join(lines)


def _calculations(spec, calculations: list) -> str:
    lines = [r"\section*{Calculational proofs}",
             rf"Each line is decided equal to the line above it by the prover, entry by entry on the explicit "
             rf"instance ({text(spec.describe())}); $\checkmark$ marks a proved step. "
             r"$\partial a^{(k)}/\partial z^{(k)}$ is the entrywise derivative of $a^{(k)} = g(z^{(k)})$."]
    methods = sorted({s.verdict.method for c in calculations for s in c.steps if s.proved and s.verdict.method})
    if methods:
        lines[-1] += " Method: " + "; ".join(text(m) for m in methods) + "."
    for calculation in calculations:
        lines.append(rf"\paragraph{{{calculation.title}}}")
        lines.append(calculation_latex(calculation.start, calculation.steps))
        lines.append(_conclusion(calculation))
    notes = sorted({note for c in calculations for s in c.steps if s.proved for note in s.verdict.notes})
    lines += [f"\n\nNote: {text(note)}." for note in notes]
    return "\n".join(lines)


def _summary(proof: NetworkProof) -> str:
    lines = [r"\section*{Summary: the recurrences against the true gradient}",
             r"\begin{longtable}{@{}llll>{\raggedright\arraybackslash}p{0.42\linewidth}r@{}}",
             r"quantity & layer & verdict & scope & method & seconds\\ \hline"]
    for r in proof.results:
        v = r.verdict
        lines.append(rf"{_quantity_latex(r.quantity, r.layer)} & {r.layer} & {status_latex(v.status)} & "
                     rf"{text(v.scope)} & {text(v.method or v.message)} & {v.seconds:.2f}\\")
    lines.append(r"\end{longtable}")
    for r in proof.results:
        if not r.verdict.proved:
            lines.append(f"{_quantity_latex(r.quantity, r.layer)}: {verdict_latex(r.verdict)}")
    notes = sorted({note for r in proof.results for note in r.verdict.notes})
    lines += [f"Note: {text(note)}." for note in notes]
    proved = sum(r.verdict.proved for r in proof.results)
    total = len(proof.results)
    lines.append(("All" if proof.all_proved else f"{proved} of") +
                 f" {total} gradients proved equal to the backprop recurrences (scope: {text(proof.scope)}; "
                 f"{proof.seconds:.2f}\\,s).")
    return "\n\n".join(lines)


def _equation(equation) -> str:
    return f"${latex(equation)}$"


def general_latex(general) -> str:
    """The every-width, every-depth proof (``general.GeneralProof``): its lemmas over symbolic
    sizes, then the induction over depth, step by step with the lemmas each step uses."""
    lines = [r"\section*{For every width and every depth}",
             rf"Setting: {text(general.setting.describe())}. Each lemma is an identity between entries of "
             r"matrices of symbolic size, decided exactly for every size at once; a lemma that is not "
             r"proved shows its residual.",
             r"\begin{longtable}{@{}r>{\raggedright\arraybackslash}p{0.62\linewidth}"
             r">{\raggedright\arraybackslash}p{0.26\linewidth}@{}}"]
    for number, lemma in enumerate(general.lemmas, start=1):
        v = lemma.verdict
        lines.append(rf"{number} & \textbf{{{text(lemma.name)}}}: {_equation(lemma.statement)} & "
                     rf"{status_latex(v.status)} ({text(v.scope)}): {text(v.method or '')}, {v.seconds:.2f}\,s \\")
        if not v.proved:
            residual = rf"; residual ${latex(lemma.residual)}$" if lemma.residual is not None else ""
            lines.append(rf" & \multicolumn{{2}}{{p{{0.88\linewidth}}}}{{{text(v.message)}{residual}}} \\")
    lines.append(r"\end{longtable}")
    induction = general.induction
    if induction.definitions:
        lines.append(r"\paragraph{Definitions.} " + "; ".join(_equation(d) for d in induction.definitions) + ".")
    lines.append(rf"\paragraph{{Claim.}} $P(k)$, $1 \le k \le L$: {_equation(induction.claim)}.")
    for title, steps in ((r"Base case $k = L$.", induction.base),
                         (r"Step: $P(k+1) \Rightarrow P(k)$ for $1 \le k < L$.", induction.step),
                         (r"Parameters, every $1 \le k \le L$, from $P(k)$.", induction.parameters)):
        if not steps:  # an argument that could not be stated (its notes say why)
            continue
        lines.append(rf"\paragraph{{{title}}}")
        lines.append(r"\begin{enumerate}")
        lines += [rf"\item {_equation(step.statement)} \\ \hint{{{text(step.justification)}}}" for step in steps]
        lines.append(r"\end{enumerate}")
    verdict = status_latex(PROVED) if induction.proved else r"\textcolor{failed}{\textbf{not proved}} (a lemma above is not proved)"
    lines.append(rf"\paragraph{{Conclusion}} ({verdict}), {text(induction.scope)}:")
    if induction.conclusion:
        lines.append(r"\begin{align*}" + r"\\".join(rf"&{latex(c)}" for c in induction.conclusion) + r"\end{align*}")
    lines += [f"Note: {text(note)}." for note in induction.notes]
    return "\n\n".join(lines)


def network_document(proof: NetworkProof, calculations: list | None = None, *,
                     timeout: float | None = 60.0, general=None) -> NetworkDocument:
    """The proof of a network as LaTeX: the network and its recurrences, the lemmas, a
    calculational proof per quantity and layer (each line checked by the prover), a summary,
    and the every-width, every-depth proof when ``general`` (a ``general.GeneralProof``) is given.

    ``calculations`` default to ``network_calculations(proof.spec)``; any not yet checked are
    checked here, on the network's instance.
    """
    spec = proof.spec
    if proof.general is not None:
        return _instantiated_document(proof, calculations, timeout=timeout)
    rec = recurrences(spec)
    if calculations is None:
        _, calculations = network_calculations(spec)
    unchecked = [c for c in calculations if not c.checked]
    if unchecked:
        check_network_calculations(spec, unchecked, timeout=timeout)
    parts = (_setup(spec, rec), _lemmas(proof), _calculations(spec, calculations), _summary(proof),
             general_latex(general) if general is not None else "")
    body = "\n\n".join(part for part in parts if part)
    title = rf"Backpropagation proved: {text(spec.describe())}"
    return NetworkDocument(document(title, body), calculations)


CALCULATIONS_UP_TO = 20 << 20  # the estimated expansion under which an instantiated proof still prints them


def _instantiated_document(proof: NetworkProof, calculations, *, timeout) -> NetworkDocument:
    """An instance of the general proof: the network, the summary (scope general, instantiated)
    and the general proof itself; the calculational proofs on the explicit instance only when
    it is small enough to expand quickly."""
    from ..budget import expansion_estimate

    spec = proof.spec
    small = expansion_estimate(spec.widths, spec.batch) <= CALCULATIONS_UP_TO
    parts = []
    if small:
        if calculations is None:
            _, calculations = network_calculations(spec)
        unchecked = [c for c in calculations if not c.checked]
        if unchecked:
            check_network_calculations(spec, unchecked, timeout=timeout)
        parts += [_setup(spec, recurrences(spec)), _calculations(spec, calculations)]
    else:
        calculations = []
        L, n = spec.depth, spec.widths
        parts.append(r"\section*{The network}" + "\n" +
                     rf"{text(spec.describe())}: widths $n_0, \dots, n_{{{L}}} = {', '.join(map(str, n))}$, "
                     rf"batch $m = {spec.batch}$. Every gradient follows from the proof for every width and every "
                     r"depth below, at these sizes; the network is not expanded.")
    parts += [_summary(proof), general_latex(proof.general)]
    title = rf"Backpropagation proved: {text(spec.describe())}"
    return NetworkDocument(document(title, "\n\n".join(p for p in parts if p)), calculations)


def layer_document(proof) -> str:
    """A layer row's proof (``layer_proofs.LayerProof``): the forward definition, the closed-form
    backward pass, each gradient's verdict at each instance size, and the every-size proof."""
    row = proof.row
    lines = [r"\section*{The layer}", rf"{text(row.title)}. Forward: {text(row.forward_text)}.",
             r"Statement: with the upstream gradient $dy = \partial L/\partial y$ an input and "
             r"$L = \sum y \odot dy$, each closed form below equals the derivative of $L$ by direct differentiation.",
             r"\begin{itemize}"]
    lines += [rf"\item {text(formula)}" for formula in row.backward_text.values()]
    lines.append(r"\end{itemize}")
    lines.append(r"\section*{Instances}")
    for result in proof.instances:
        lines.append(rf"\paragraph{{{text(', '.join(f'{k} = {v}' for k, v in result.sizes.items()))}}}")
        lines += [rf"$\partial L/\partial {latex(sympy.Symbol(name))}$: {verdict_latex(v)}"
                  for name, v in result.verdicts.items()]
    general = proof.general
    if general is not None:
        lines.append(r"\section*{For every size}")
        lines.append(rf"Sizes {', '.join(f'${latex(s)}$' for s in general.sizes.values() if isinstance(s, sympy.Symbol))} are symbols; "
                     r"each entry identity is decided exactly for every size at once.")
        lines.append(r"\begin{enumerate}")
        for lemma in general.lemmas:
            shown = "" if lemma.status == PROVED else rf" --- residual: {text(lemma.residual[:400])}"
            lines.append(rf"\item \textbf{{{text(lemma.name)}}}: {text(lemma.statement)} --- "
                         rf"{status_latex(lemma.status)} ({lemma.seconds:.2f}\,s){shown}.")
        lines.append(r"\end{enumerate}")
        lines += [text(line) for line in general.argument]
        if general.message:
            lines.append(text(general.message) + ".")
    lines.append(rf"\paragraph{{Conclusion}} {status_latex(proof.status)}: {text(proof.scope)}.")
    return document(rf"Layer backward pass proved: {text(row.name)}", "\n\n".join(lines))


# --------------------------------------------------------------------- derivation files


def _formula(printer: ClaimPrinter, lhs: str, rhs: str) -> str:
    try:
        return rf"\[ {printer.formula(lhs)} = {printer.formula(rhs)} \]"
    except ClaimError:
        return rf"\texttt{{{text(lhs)} = {text(rhs)}}}"


def _range(printer: ClaimPrinter, source: str | None) -> str:
    if not source:
        return ""
    try:
        variable, low, high = parse_range(source)
    except ClaimError:
        return f" for {text(source)}"
    return rf" for ${printer.symbol(variable)} = {printer.visit(low)}, \dots, {printer.visit(high)}$"


def _claim_latex(result, printer: ClaimPrinter) -> str:
    claim, v = result.claim, result.verdict
    expected = "as expected" if result.expected else \
        rf"\textcolor{{failed}}{{\textbf{{UNEXPECTED}}}} (expected {text(claim.expect)})"
    lines = [rf"\subsection*{{{text(claim.id)} \hfill {status_latex(v.status)} "
             rf"{{\normalsize\normalfont ({expected})}}}}",
             rf"As printed: \texttt{{{text(claim.text)}}}",
             r"Read as" + _range(printer, claim.range) + ":" + _formula(printer, claim.lhs, claim.rhs),
             "Verdict: " + verdict_latex(v)]
    if result.slip:
        lines.append(f"Likely slip: {text(result.slip)}.")
    if result.correction:
        c = result.correction
        lines.append(r"\textbf{Correction}" + ":" + _formula(printer, c["lhs"], c["rhs"]))
        correction = Verdict(c["verdict"], message=c.get("message") or "", counterexample=c.get("counterexample"))
        lines.append("Verdict on the correction: " + verdict_latex(correction))
    if claim.note:
        lines.append(f"Note: {text(claim.note)}")
    return "\n\n".join(lines)


def _symbols(derivation, printer: ClaimPrinter) -> str:
    items = []
    for name_, binding in derivation.bindings.items():
        shift = f" (document layer = network layer {'+' if binding.shift > 0 else '-'} {abs(binding.shift)})" \
            if binding.shift else ""
        items.append(rf"${printer.symbol(name_)}$: {text(binding.quantity)}{shift}")
    return "Symbols: " + "; ".join(items) + "." if items else ""


def _model(model, printer: ClaimPrinter) -> str:
    """A [model]: its sizes, its declared tensors with their shapes and domains, its forward pass."""
    sizes = ", ".join(rf"${printer.symbol(k)} = {v}$" for k, v in model.sizes.items())
    declared = []
    for d in model.declarations:
        shape = r" \times ".join(printer.visit(p) for p in d.shape) if d.shape else r"1 \times 1"
        target = printer.visit(parse(d.text)) if d.text else printer.symbol(d.name)
        domain = "" if d.values == "real" else f", {text(d.values)}"
        family = ""
        if d.family is not None:
            variable, low, high = d.family
            family = rf" for ${printer.symbol(variable)} = {printer.visit(low)}, \dots, {printer.visit(high)}$"
        declared.append(rf"${target}$ (${shape}${domain}){family}")
    parts = [f"Model with sizes {sizes}." if sizes else "Model."]
    for role in ("inputs", "parameters", "targets"):
        items = [item for item, d in zip(declared, model.declarations) if d.role == role]
        if items:
            parts.append(f"{role.capitalize()}: " + "; ".join(items) + ".")
    forward = _definitions_table([f.definition for f in model.forward], printer, "Forward pass")
    if forward:
        parts.append(forward)
    if model.upstream:
        parts.append("Loss: " + ", ".join(rf"$\sum {printer.symbol(o)} \odot {printer.symbol(u)}$ (the upstream "
                                          rf"gradient ${printer.symbol(u)}$ of ${printer.symbol(o)}$ given)"
                                          for o, u in model.upstream.items()) + ".")
    elif model.loss:
        parts.append(rf"Loss: ${printer.formula(model.loss)}$.")
    return "\n\n".join(parts)


def _definitions(derivation, printer: ClaimPrinter) -> str:
    return _definitions_table(derivation.definitions, printer, "Definitions")


def _definitions_table(definitions, printer: ClaimPrinter, heading: str) -> str:
    if not definitions:
        return ""
    rows = []
    for d in definitions:
        target = printer.symbol(d.name)
        if d.layer is not None:
            target = layer_name(target, printer.visit(d.layer).replace(" ", ""))
        if d.indices:
            target = f"{{{target}}}_{{{','.join(printer.symbol(i) for i in d.indices)}}}"
        where = ""
        if d.range is not None:
            variable, low, high = d.range
            where = (rf"\quad\text{{for }} {printer.symbol(variable)} = {printer.visit(low)}, \dots, "
                     rf"{printer.visit(high)}")
        rows.append(rf"{target} &:= {printer.visit(d.expr)}{where}")
    return f"{heading}:\n\\begin{{align*}}\n" + "\\\\\n".join(rows) + "\n\\end{align*}"


def _file_latex(report) -> str:
    d = report.derivation
    printer = ClaimPrinter(d)
    heading = text(d.title or d.path)
    lines = [rf"\section{{{heading}}}"]
    meta = [f"\\texttt{{{text(d.path)}}}"] + ([rf"\textit{{{text(d.source)}}}"] if d.source else [])
    lines.append(" --- ".join(meta))
    if d.model is not None:
        lines.append(_model(d.model, printer))
    else:
        lines.append(f"Network: {text(d.spec.describe())}; summation convention: "
                     f"{'Einstein (a repeated index is summed)' if d.einstein else 'none'}.")
    instances = []
    for result in report.results:
        for item in result.instances:
            if item not in instances:
                instances.append(item)
    if instances:
        lines.append("Checked on: " + "; ".join(text(i) for i in instances) + ".")
    lines += [part for part in (_symbols(d, printer) if d.model is None else "", _definitions(d, printer)) if part]
    for error in d.errors:
        lines.append(rf"\textcolor{{failed}}{{File problem}}: {text(error)}")
    rows = [rf"{text(r.claim.id)} & {status_latex(r.verdict.status)} & "
            rf"{'' if r.correction is None else status_latex(r.correction['verdict'])} & "
            rf"{'as expected' if r.expected else 'UNEXPECTED'} & {r.verdict.seconds:.2f}\\"
            for r in report.results]
    lines.append(r"\begin{longtable}{@{}lllll@{}}" + "\n" + r"claim & verdict & correction & & seconds\\ \hline"
                 + "\n" + "\n".join(rows) + "\n" + r"\end{longtable}")
    lines += [_claim_latex(result, printer) for result in report.results]
    return "\n\n".join(lines)


def derivation_document(reports: list) -> str:
    """The check of one or more derivation files (``derivation.FileReport``) as a LaTeX document."""
    from ..derivation import summarize

    summary = summarize(reports)
    counts = ", ".join(f"{summary[k]} {k}" for k in (PROVED, REFUTED, "ill-formed", UNDECIDED))
    total = sum(summary[k] for k in (PROVED, REFUTED, "ill-formed", UNDECIDED))
    verdict = "every verdict as expected" if summary["unexpected"] == 0 else f"{summary['unexpected']} UNEXPECTED"
    intro = (f"{len(reports)} derivation file{'s' if len(reports) != 1 else ''}, {total} claims: {counts} --- "
             f"{verdict}. A claim is proved only from an exact symbolic zero on every instance checked; a "
             "refuted claim comes with a point (exact rational inputs, parameters and targets) where its two "
             "sides differ, which anyone can re-evaluate.")
    title = text(reports[0].derivation.title) if len(reports) == 1 and reports[0].derivation.title \
        else "Derivations checked"
    return document(title, intro + "\n\n" + "\n\n".join(_file_latex(r) for r in reports))
