"""The command line: ``symbackprop prove | verify | …``.  The only module that knows them all.

Every error the user can cause is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction

from . import limits, rules
from .network import NetworkSpec, SpecError


class UsageError(Exception):
    """A bad argument or input; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


# ------------------------------------------------------------------------------ formatting


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def format_counterexample(counterexample: dict, indent: str = "    ", limit: int = 12) -> str:
    point = counterexample.get("point", {})
    shown = list(point.items())[:limit]
    text = ", ".join(f"{name}={value}" for name, value in shown)
    if len(point) > limit:
        text += f", … ({len(point) - limit} more in --json)"
    lines = [f"{indent}counterexample at {text}"]
    for name, definition in counterexample.get("functions", {}).items():
        lines.append(f"{indent}  with {name}(x) = {definition}")
    entry = counterexample.get("entry")
    where = f"entry {entry}: " if entry else ""
    lines.append(f"{indent}  {where}left side = {_readable(counterexample['lhs'])}, "
                 f"right side = {_readable(counterexample['rhs'])}  [{counterexample.get('arithmetic', '')}]")
    if counterexample.get("note"):
        lines.append(f"{indent}  ({counterexample['note']})")
    return "\n".join(lines)


def _readable(value: str) -> str:
    """A long exact fraction gets its decimal value alongside (the JSON keeps it exact)."""
    if "/" in value and "±" not in value and len(value) > 14:
        try:
            return f"{value} (≈ {float(Fraction(value)):.6g})"
        except (ValueError, ZeroDivisionError, OverflowError):
            return value
    return value


def _seconds(value: float) -> str:
    return f"{value:.2f}"


class Progress:
    """One updating status line on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.shown = False

    def __call__(self, message: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\033[K{message} …")
            sys.stderr.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


# ------------------------------------------------------------------------ LaTeX and PDF


def add_latex_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latex", metavar="FILE", help="also write the proof as a LaTeX document to FILE")
    parser.add_argument("--pdf", action="store_true",
                        help="compile the LaTeX document with pdflatex; the PDF lands next to FILE")


def check_latex_arguments(args) -> None:
    """Fail before the work, not after it: --pdf without a file or without pdflatex."""
    from pathlib import Path

    from .latex.pdf import INSTALL_HINT, pdflatex

    if args.pdf and not args.latex:
        raise UsageError(f"symbackprop {args.command}: --pdf needs --latex FILE (the PDF lands next to FILE)")
    written = [Path(args.latex), Path(args.latex).with_suffix(".pdf")] if args.latex else []
    for path in written[: 2 if args.pdf else 1]:
        if path.is_dir():
            raise UsageError(f"symbackprop {args.command}: cannot write {path}: it is a folder")
    if args.pdf and pdflatex() is None:
        raise UsageError(f"symbackprop {args.command}: --pdf needs pdflatex, which is not installed ({INSTALL_HINT})")
    if args.latex and not Path(args.latex).resolve().parent.is_dir():
        raise UsageError(f"symbackprop {args.command}: --latex {args.latex}: no such directory")


def write_latex(args, tex: str) -> None:
    from pathlib import Path

    from .latex import PdfError, compile_pdf, write

    try:
        path = write(tex, args.latex)
    except OSError as error:
        raise UsageError(f"symbackprop {args.command}: cannot write {args.latex}: {error.strerror}") from None
    written = [args.latex]
    if args.pdf:
        try:
            compile_pdf(path)
            written.append(str(Path(args.latex).with_suffix(".pdf")))
        except PdfError as error:
            raise UsageError(f"symbackprop {args.command}: {error}") from None
    print("wrote " + " and ".join(written), file=sys.stderr)


# ------------------------------------------------------------------------------- prove


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must be comma-separated integers like 3,4,2, not {text!r}")
    return widths


def _fraction(text: str) -> Fraction:
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number like 0 or 1/2, not {text!r}")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 < value <= limits.MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, at most {limits.MAX_SECONDS:g}, "
                                         f"not {text!r}")
    return value


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    elementwise = [name for name, row in rules.ACTIVATIONS.items() if not row.output_only]
    parser.add_argument("--widths", type=_widths, required=True, metavar="N0,N1,...,NL",
                        help="layer widths n_0..n_L, input first (e.g. 3,4,2)")
    parser.add_argument("--hidden", default="sigmoid", metavar="NAME",
                        help=f"activation of the hidden layers: {', '.join(elementwise)}, or generic "
                             "(an unspecified differentiable g); default sigmoid")
    parser.add_argument("--output", default="sigmoid", metavar="NAME",
                        help="activation of the output layer: any of the above or softmax; default sigmoid")
    parser.add_argument("--loss", default="half_sse", choices=list(rules.LOSSES),
                        help="per-example loss; default half_sse (½‖a−y‖²)")
    parser.add_argument("--batch", type=int, default=1, metavar="M", help="examples in the batch; default 1")
    parser.add_argument("--reduction", choices=("mean", "sum"), default="mean",
                        help="how the batch is reduced; default mean (the 1/m is part of the claim)")
    parser.add_argument("--layout", choices=("columns", "rows"), default="columns",
                        help="examples as columns (default, as in the documents) or as rows")
    parser.add_argument("--l2", action="store_true", help="add the penalty (λ/2)·Σ‖W_k‖² with a symbolic λ")
    parser.add_argument("--relu-at-zero", type=_fraction, default=Fraction(0), metavar="V",
                        help="value taken for ReLU′(0) in both derivations; default 0")


def spec_from_arguments(args) -> NetworkSpec:
    try:
        return NetworkSpec(widths=args.widths, hidden=args.hidden, output=args.output, loss=args.loss,
                           batch=args.batch, reduction=args.reduction, layout=args.layout, l2=args.l2,
                           relu_at_zero=args.relu_at_zero)
    except SpecError as error:
        raise UsageError(f"symbackprop: {error}") from None


def run_prove(args) -> int:
    from .prove import prove_network

    spec = spec_from_arguments(args)
    check_latex_arguments(args)
    progress = Progress()
    proof = prove_network(spec, timeout=args.timeout, progress=lambda item: progress(f"proving {item}"))
    general = None
    if args.general:
        from .general import prove_general

        progress("proving for every width and depth")
        general = prove_general(spec, timeout=args.timeout)
    progress.done()
    if args.json:
        report = proof.to_dict()
        if general is not None:
            report["general"] = general.to_dict()
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(render_network_proof(proof))
        if general is not None:
            print()
            print(render_general_proof(general))
    proved = proof.all_proved and (general is None or general.all_proved)
    if args.latex:
        from .latex import network_document

        progress("checking the calculational proofs")
        document = network_document(proof, timeout=args.timeout, general=general)
        progress.done()
        write_latex(args, document.text)
        proved = proved and document.proved
    return 0 if proved else 1


def render_network_proof(proof) -> str:
    lines = [f"network {proof.spec.describe()}", ""]
    lemma_rows = [[l.name, l.statement, l.verdict.status, l.verdict.method, _seconds(l.verdict.seconds)]
                  for l in proof.lemmas]
    if lemma_rows:
        lines += [format_table(["lemma", "statement", "verdict", "method", "seconds"], lemma_rows), ""]
    rows = [[r.quantity, str(r.layer), r.verdict.status, r.verdict.method or r.verdict.message,
             _seconds(r.verdict.seconds)] for r in proof.results]
    lines.append(format_table(["quantity", "layer", "verdict", "method", "seconds"], rows))
    for r in proof.results:
        v = r.verdict
        if not v.proved:
            lines.append(f"  {r.quantity}{r.layer}: {v.status} — {v.message}")
            if v.counterexample:
                lines.append(format_counterexample(v.counterexample))
    notes = sorted({note for r in proof.results for note in r.verdict.notes})
    if notes:
        lines.append("")
        lines += [f"note: {note}" for note in notes]
    proved = sum(r.verdict.proved for r in proof.results)
    lines.append("")
    summary = "all" if proof.all_proved else f"{proved} of"
    lines.append(f"{summary} {len(proof.results)} gradients proved equal to the backprop recurrences "
                 f"(scope: instance; {proof.seconds:.2f} s)")
    return "\n".join(lines)


# ------------------------------------------------------------------ prove --general


def render_general_proof(general) -> str:
    """The every-width, every-depth proof: its lemmas, then the induction over depth."""
    lines = [f"general: {general.setting.describe()}", ""]
    rows = [[l.name, l.verdict.status, l.verdict.scope, l.verdict.method or l.verdict.message,
             _seconds(l.verdict.seconds)] for l in general.lemmas]
    lines.append(format_table(["lemma", "verdict", "scope", "method", "seconds"], rows))
    for lemma in general.lemmas:
        v = lemma.verdict
        if not v.proved:
            lines.append(f"  {lemma.name}: {v.status} — {v.message}")
            lines.append(f"    statement: {lemma.statement}")
            if v.counterexample:
                where = {**v.counterexample.get("sizes", {}), **v.counterexample.get("indices", {})}
                lines.append(f"    at {', '.join(f'{k}={x}' for k, x in where.items())}:")
                lines.append(format_counterexample(v.counterexample, indent="    "))
    lines += ["", str(general.induction), ""]
    proved = sum(l.verdict.proved for l in general.lemmas)
    summary = "all" if general.all_proved else f"{proved} of"
    lines.append(f"{summary} {len(general.lemmas)} lemmas proved (scope: general; {general.seconds:.2f} s)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- verify


def run_verify(args) -> int:
    from .derivation import Checker, FileError, expand_paths, load, summarize

    try:
        paths = expand_paths(args.paths)
    except FileError as error:
        raise UsageError(f"symbackprop verify: {error}") from None
    check_latex_arguments(args)
    reports, file_errors = [], []
    progress = Progress()
    for path in paths:
        try:
            derivation = load(path)
        except FileError as error:
            file_errors.append(str(error))
            continue
        file_errors += derivation.errors
        reports.append(Checker(derivation, timeout=args.timeout).check(progress=lambda item: progress(f"checking {item}")))
    progress.done()
    summary = summarize(reports)
    if args.json:
        document = {"files": [r.to_dict() for r in reports], "summary": summary}
        if file_errors:
            document["errors"] = file_errors
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        for report in reports:
            print(render_file_report(report))
            print()
        print(render_summary(summary, len(reports)))
    if args.latex and reports:
        from .latex import derivation_document

        write_latex(args, derivation_document(reports))
    for error in file_errors:
        print(error, file=sys.stderr)
    if file_errors:
        return 2
    return 0 if summary["unexpected"] == 0 else 1


def render_file_report(report) -> str:
    d = report.derivation
    heading = f"{d.path} — {d.title}" if d.title else d.path
    lines = [heading + (f" ({d.source})" if d.source else "")]
    instances = []
    for result in report.results:
        for item in result.instances:
            if item not in instances:
                instances.append(item)
    if instances:
        lines.append("checked on: " + "; ".join(instances))
    rows = []
    for result in report.results:
        v = result.verdict
        expected = "" if result.expected else f"UNEXPECTED (expected {result.claim.expect})"
        rows.append([result.claim.id, _clip(result.claim.text, 58), v.status, v.scope, _seconds(v.seconds), expected])
    lines.append("")
    lines.append(format_table(["id", "claim (as printed)", "verdict", "scope", "seconds", ""], rows))
    for result in report.results:
        details = _claim_details(result)
        if details:
            lines.append(f"{result.claim.id}:")
            lines += details
    return "\n".join(lines)


def _claim_details(result) -> list[str]:
    v, lines = result.verdict, []
    if v.status != "proved":
        lines.append(f"    {v.status}: {v.message}")
    if v.counterexample:
        lines.append(format_counterexample(v.counterexample))
    if result.slip:
        lines.append(f"    likely slip: {result.slip}")
    if result.correction:
        c = result.correction
        lines.append(f"    correction: {c['lhs']} = {c['rhs']} — {c['verdict']}"
                     + (f" ({c['message']})" if c["verdict"] != "proved" and c.get("message") else ""))
    return lines


def render_summary(summary: dict, files: int) -> str:
    counts = ", ".join(f"{summary[k]} {k}" for k in ("proved", "refuted", "ill-formed", "undecided"))
    total = sum(summary[k] for k in ("proved", "refuted", "ill-formed", "undecided"))
    verdict = "every verdict as expected" if summary["unexpected"] == 0 else f"{summary['unexpected']} UNEXPECTED"
    return f"{files} file{'s' if files != 1 else ''}, {total} claims: {counts} — {verdict}"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# ------------------------------------------------------------------------ export and train


def _kernel_arguments(parser) -> None:
    add_network_arguments(parser)
    parser.set_defaults(layout="rows")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="floating-point type of the kernel's arrays; default float64")
    parser.add_argument("--l2-lambda", type=_penalty_weight, default=None, metavar="λ",
                        help="the L2 penalty's λ (with --l2); default 1e-4")


def _penalty(args, spec):
    """The L2 penalty's λ when the network has one (--l2), else None."""
    return (args.l2_lambda if args.l2_lambda is not None else 1e-4) if spec.l2 else None


def run_export(args) -> int:
    from .kernels import KernelError, generate, kernel_proofs

    spec = spec_from_arguments(args)
    penalty = _penalty(args, spec)
    progress = Progress()
    progress("proving the formulas the kernel computes")
    try:
        proofs = kernel_proofs(spec, timeout=args.timeout)
        source = generate(spec, args.dtype, penalty=penalty, proofs=proofs)
    except KernelError as error:
        raise UsageError(f"symbackprop: {error}") from None
    finally:
        progress.done()
    try:
        with open(args.path, "w", encoding="utf-8") as handle:
            handle.write(source)
    except OSError as error:
        raise UsageError(f"symbackprop: cannot write {args.path}: {error.strerror or error}") from None
    status = "every formula proved" if proofs.all_proved else "NOT every formula proved (see its docstring)"
    print(f"wrote {args.path}: {spec.describe().rsplit(', batch', 1)[0]}, {args.dtype}; {status} "
          f"({proofs.seconds:.2f} s)")
    return 0 if proofs.all_proved else 1


def run_train(args) -> int:
    from . import train
    from .kernels import KernelError, build

    spec = spec_from_arguments(args)
    if spec.layout != "rows":
        raise UsageError("symbackprop: train uses examples as rows (drop --layout columns)")
    n = spec.widths
    try:
        if args.data == "digits":
            if (n[0], n[-1]) != (64, 10):
                raise UsageError(f"symbackprop: digits has 64 features and 10 classes: use --widths 64,...,10, "
                                 f"not {','.join(map(str, n))}")
            data = train.load_digits(args.test_fraction, args.seed)
        else:
            data = train.load_csv(args.data, n[0], n[-1], args.test_fraction, args.seed,
                                  classification=spec.loss in ("cross_entropy", "bce"))
    except train.DataError as error:
        raise UsageError(f"symbackprop: {error}") from None
    try:
        kernel = build(spec, args.dtype, penalty=_penalty(args, spec))
    except KernelError as error:
        raise UsageError(f"symbackprop: {error}") from None
    print(f"training {spec.describe().rsplit(', batch', 1)[0]} on {data.name}: {len(data.X_train)} training and "
          f"{len(data.X_test)} test examples, batch {spec.batch}, lr {args.lr:g}, {args.dtype} "
          f"(kernel built in {kernel.seconds:.2f} s)")
    status = Progress()
    width = 24

    def progress(epoch, fraction):
        filled = int(fraction * width)
        status(f"epoch {epoch}/{args.epochs} [{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%}")

    result = train.train(kernel, data, epochs=args.epochs, lr=args.lr, batch=spec.batch, seed=args.seed,
                         progress=progress if status.enabled else None)
    status.done()

    def percent(value):
        return "-" if value is None else f"{100 * value:.2f}%"

    rows = [[str(e.epoch), f"{e.loss:.4f}", "-" if e.test_loss is None else f"{e.test_loss:.4f}",
             percent(e.train_accuracy), percent(e.test_accuracy), f"{e.seconds:.3f}"] for e in result.history]
    print(format_table(["epoch", "loss", "test loss", "train acc", "test acc", "seconds"], rows))
    if args.plot:
        try:
            train.plot(result.history, args.plot, title=spec.describe().rsplit(", batch", 1)[0])
        except train.DataError as error:
            raise UsageError(f"symbackprop: {error}") from None
        print(f"wrote {args.plot}")
    return 0


def _checked_number(convert, accept, expected: str):
    """An argparse type: ``convert`` the text and require ``accept(value)``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, not {text!r}")
        return value

    return parse


_positive_int = _checked_number(int, lambda v: v >= 1, "a positive integer")
_seed = _checked_number(int, lambda v: 0 <= v <= limits.MAX_SEED, f"an integer from 0 to {limits.MAX_SEED}")
_penalty_weight = _checked_number(float, lambda v: 0 <= v < float("inf"), "a finite number ≥ 0")
_positive_float = _checked_number(float, lambda v: 0 < v < float("inf"), "a positive number")
_fraction_below_one = _checked_number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def add_kernel_commands(commands) -> None:
    export = commands.add_parser(
        "export", help="write a standalone NumPy kernel for a network",
        description="Generate NumPy code (imports only NumPy) from the proven forward pass, loss and backprop "
                    "recurrences: init_params, forward, loss, loss_and_grads, train_step. The module's docstring "
                    "lists the formulas and their proof status. Examples are rows by default (X is m×n_0). "
                    "Exit 0 when every formula is proved, 1 otherwise.")
    _kernel_arguments(export)
    export.add_argument("-o", dest="path", required=True, metavar="FILE", help="the Python file to write")
    export.add_argument("--timeout", type=_positive_seconds, default=60.0, metavar="S",
                        help="time budget per proof obligation, in seconds (default 60)")
    export.set_defaults(run=run_export)

    trainer = commands.add_parser(
        "train", help="train a network with the generated kernels (mini-batch SGD)",
        description="Train with mini-batch SGD using the generated kernel; prints loss and accuracy per epoch. "
                    "--batch is the mini-batch size. A CSV file has one example per line: n_0 features, then "
                    "n_L targets or one integer class label.")
    _kernel_arguments(trainer)
    trainer.set_defaults(batch=32, hidden="relu", output="softmax", loss="cross_entropy")
    trainer.add_argument("--data", required=True, metavar="digits|FILE.csv",
                         help="scikit-learn's digits (pip install 'symbackprop[train]') or a CSV file")
    trainer.add_argument("--epochs", type=_positive_int, default=30, metavar="E", help="passes over the data; default 30")
    trainer.add_argument("--lr", type=_positive_float, default=0.1, help="learning rate; default 0.1")
    trainer.add_argument("--seed", type=_seed, default=0, help="seed of the initial weights and the shuffles")
    trainer.add_argument("--test-fraction", type=_fraction_below_one, default=0.2, metavar="F",
                         help="share of the examples held out for testing; default 0.2")
    trainer.add_argument("--plot", metavar="FILE.png", help="save the learning curve (needs matplotlib)")
    trainer.set_defaults(run=run_train)


# --------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="symbackprop",
                     description="Proves backpropagation: derives every gradient of a network twice "
                                 "(direct differentiation and the backprop recurrences) and proves them equal.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    prove = commands.add_parser("prove", help="prove the backprop recurrences for a network",
                                description="Prove that the backprop recurrences give ∂J/∂z_k, ∂J/∂W_k and "
                                            "∂J/∂b_k for every layer of the given network (exactly, on this "
                                            "instance). Exit 0 when everything is proved, 1 otherwise.")
    add_network_arguments(prove)
    prove.add_argument("--timeout", type=_positive_seconds, default=60.0, metavar="S",
                       help="time budget per gradient, in seconds; running out gives 'undecided' (default 60)")
    prove.add_argument("--json", action="store_true", help="print the report as JSON")
    prove.add_argument("--general", action="store_true",
                       help="also prove the recurrences for every width and every depth (symbolic sizes and "
                            "induction over layers); exit 0 only if both proofs succeed")
    add_latex_arguments(prove)
    prove.set_defaults(run=run_prove)

    verify = commands.add_parser("verify", help="check a document's gradient formulas (derivation files)",
                                 description="Check derivation files claim by claim: proved, refuted (with a "
                                             "counterexample), ill-formed or undecided. A folder means every "
                                             "*.toml in it. Exit 0 when every verdict is the claim's expected one, "
                                             "1 otherwise, 2 when a file itself is broken.")
    verify.add_argument("paths", nargs="+", metavar="PATH", help="derivation files or folders")
    verify.add_argument("--timeout", type=_positive_seconds, default=60.0, metavar="S",
                        help="time budget per claim, in seconds (default 60)")
    verify.add_argument("--json", action="store_true", help="print the report as JSON (SPEC §4)")
    add_latex_arguments(verify)
    verify.set_defaults(run=run_verify)
    add_kernel_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "run", None):
            parser.print_help()
            return 2
        return args.run(args)
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return 2
    except SpecError as error:  # a network past a limit, found where the work starts
        print(f"symbackprop: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("symbackprop: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
