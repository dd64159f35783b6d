"""The command line: ``symbackprop prove | verify | extract | export | train``.  The only module that knows them all.

Every error the user can cause is one line on stderr, ``symbackprop: …``, and exit code 2, never a
traceback.  Defaults live in one place (:data:`COMMAND_DEFAULTS` over ``NetworkSpec``'s own), and
the help prints the defaults the parser really uses.  Terminal layout is ``terminal``'s.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import re
import sys
from fractions import Fraction

from . import __version__, limits, rules
from .network import NetworkSpec, SpecError
from .prove import DEFAULT_TIMEOUT
from .terminal import Progress, Screen

PROG = "symbackprop"


class UsageError(Exception):
    """A bad argument or input; printed as one line after ``symbackprop: ``, exit code 2."""


def warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


class _Help(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with the default the parser uses (read from the action itself,
    so the help cannot disagree with it); descriptions and examples keep their line breaks."""

    def _get_help_string(self, action):
        text = action.help or ""
        shown = all(action.default is not v for v in (None, False, argparse.SUPPRESS)) and action.option_strings
        if shown and "%(default)" not in text and not isinstance(action, (argparse._StoreConstAction,
                                                                          argparse._CountAction)):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, not argparse's usage block
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match and match.group(1):
            choices = re.findall(r"'?([\w.-]+)'?", match.group(2))
            close = difflib.get_close_matches(match.group(1), choices, n=1, cutoff=0.6)
            if close:
                message += f"; did you mean '{close[0]}'?"
        where = self.prog.removeprefix(PROG).strip()
        raise UsageError(f"{where + ': ' if where else ''}{message} (see {self.prog} --help)")


def _command(commands, name: str, *, summary: str, description: str, examples: list[str]) -> _Parser:
    """A subcommand whose --help ends with examples."""
    epilog = "examples:\n" + "\n".join(f"  {example}" for example in examples)
    parser = commands.add_parser(name, help=summary, description=description, epilog=epilog)
    add_verbosity_arguments(parser)
    return parser


def add_verbosity_arguments(parser) -> None:
    """-q / -v, accepted before or after the subcommand."""
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="print only the summary line (and errors); no progress")
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="print every detail: each claim's method and notes, a counterexample's full point")


def quiet(args) -> bool:
    return getattr(args, "quiet", False)


def verbose(args) -> bool:
    return getattr(args, "verbose", False)


# ------------------------------------------------------------------------------ defaults


def _spec_defaults() -> dict:
    return {f.name: f.default for f in dataclasses.fields(NetworkSpec)
            if f.init and f.default is not dataclasses.MISSING}


# The one place where a command's defaults differ from NetworkSpec's; the parser and the help both
# read them from here (kernels take examples as rows, as NumPy and PyTorch do).
COMMAND_DEFAULTS = {
    "prove": {},
    "export": {"layout": "rows"},
    "train": {"layout": "rows", "hidden": "relu", "output": "softmax", "loss": "cross_entropy", "batch": 32},
}
L2_LAMBDA = 1e-4
TARGETS = ("numpy", "torch", "jax")  # kernel_targets.TARGETS, without importing the generator for --help
ENGINES = {"numpy": "NumPy", "torch": "PyTorch", "jax": "JAX"}


def network_defaults(command: str) -> dict:
    return {**_spec_defaults(), **COMMAND_DEFAULTS[command]}


def _layout_phrase(layout: str) -> str:
    return {"rows": "examples as rows (X is m×n_0)", "columns": "examples as columns (X is n_0×m)"}[layout]


# ------------------------------------------------------------------------ LaTeX and PDF


def add_latex_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latex", metavar="FILE", help="also write the proof as a LaTeX document to FILE "
                                                        "('-': to standard output, instead of the report)")
    parser.add_argument("--pdf", action="store_true",
                        help="compile the LaTeX document with pdflatex; the PDF lands next to FILE")


def check_latex_arguments(args) -> None:
    """Fail before the work, not after it: --pdf without a file or without pdflatex."""
    from pathlib import Path

    from .latex.pdf import INSTALL_HINT, pdflatex

    if args.pdf and not args.latex:
        raise UsageError(f"{args.command}: --pdf needs --latex FILE (the PDF lands next to FILE)")
    if args.latex == "-":
        if args.pdf:
            raise UsageError(f"{args.command}: --pdf needs --latex FILE, not standard output")
        if args.json:
            raise UsageError(f"{args.command}: --latex - and --json both write standard output; choose one")
        return
    if args.pdf and pdflatex() is None:
        raise UsageError(f"{args.command}: --pdf needs pdflatex, which is not installed ({INSTALL_HINT})")
    if args.latex and args.latex != "-":
        written = [Path(args.latex), Path(args.latex).with_suffix(".pdf")]
        for path in written[: 2 if args.pdf else 1]:
            if path.is_dir():
                raise UsageError(f"{args.command}: cannot write {path}: it is a folder")
    if args.latex and args.latex != "-" and not Path(args.latex).resolve().parent.is_dir():
        raise UsageError(f"{args.command}: --latex {args.latex}: no such directory")


def write_latex(args, tex: str) -> None:
    from pathlib import Path

    from .latex import PdfError, compile_pdf, write

    if args.latex == "-":
        sys.stdout.write(tex if tex.endswith("\n") else tex + "\n")
        return
    try:
        path = write(tex, args.latex)
    except OSError as error:
        raise UsageError(f"{args.command}: cannot write {args.latex}: {error.strerror}") from None
    written = [args.latex]
    if args.pdf:
        try:
            compile_pdf(path)
            written.append(str(Path(args.latex).with_suffix(".pdf")))
        except PdfError as error:
            raise UsageError(f"{args.command}: {error}") from None
    if not quiet(args):
        print("wrote " + " and ".join(written), file=sys.stderr)


def print_json(document: dict) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False))


# ------------------------------------------------------------------------------ formatting


def format_counterexample(counterexample: dict, indent: str = "    ", screen: Screen | None = None,
                          full: bool = False) -> str:
    """The witness, shortest form first: the two sides at the entry that differs, which entries
    differ, then the point (in the document's symbols when it has them) — in full only with
    ``full``, else as many values as fit one line."""
    screen = screen or Screen()
    lines = []
    entry = counterexample.get("entry")
    where = f"counterexample at entry {entry}: " if entry else "counterexample: "
    lines.append(screen.wrap(f"{where}left side = {_readable(counterexample['lhs'])}, right side = "
                             f"{_readable(counterexample['rhs'])}  [{counterexample.get('arithmetic', '')}]",
                             indent, indent + "    "))
    differing = counterexample.get("differing")
    if differing and counterexample.get("entries", 0) > 1:
        count = counterexample.get("differing_count", len(differing))
        shown = ", ".join(differing) + (", …" if count > len(differing) else "")
        lines.append(screen.wrap(f"differs in {count} of {counterexample['entries']} entries of the "
                                 f"{counterexample.get('shape', '')} sides: {shown}", indent + "  "))
    point = counterexample.get("document_point") or counterexample.get("point", {})
    values = [f"{name} = {value}" for name, value in point.items()]
    if values:
        label = f"{indent}  at "
        if full or len(values) <= 6:
            lines.append(screen.list(label.rstrip(), values, separator=", "))
        else:
            room = screen.width - len(label) - 40
            shown, used = [], 0
            for value in values:
                if used + len(value) + 2 > room and shown:
                    break
                shown.append(value)
                used += len(value) + 2
            lines.append(f"{label}{', '.join(shown)}, … ({len(values) - len(shown)} more: -v or --json)")
    functions = counterexample.get("document_functions") or counterexample.get("functions", {})
    for name, definition in functions.items():
        lines.append(f"{indent}  with {name}(x) = {definition}")
    if counterexample.get("note"):
        lines.append(screen.wrap(f"({counterexample['note']})", indent + "  "))
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


def _memory_size(text: str) -> int:
    from .budget import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_memory_argument(parser, per: str) -> None:
    from .budget import default_memory, size_text

    parser.add_argument("--memory", type=_memory_size, default=None, metavar="SIZE",
                        help=f"memory budget per {per}, e.g. 2G or 500M; running out gives 'undecided' "
                             f"(default: half the memory available, now {size_text(default_memory())})")


class _DeprecatedOutput(argparse.Action):
    """``--output NAME``, the old spelling of --output-activation (it collides with the universal
    ``-o/--output FILE``).  On ``export``, which writes a file, ``--output FILE`` is the file."""

    def __call__(self, parser, namespace, value, option_string=None):
        if hasattr(namespace, "path") and value not in rules.ACTIVATIONS and not value.startswith("generic"):
            namespace.path = value
            return
        warn("--output NAME (the output activation) is deprecated: use --output-activation NAME"
             + (" (and -o FILE for the file)" if hasattr(namespace, "path") else ""))
        namespace.output = value


def add_network_arguments(parser: argparse.ArgumentParser, command: str, *, widths_required: bool = True) -> None:
    defaults = network_defaults(command)
    elementwise = [name for name, row in rules.ACTIVATIONS.items() if not row.output_only]
    parser.add_argument("--widths", type=_widths, required=widths_required, metavar="N0,N1,...,NL",
                        help="layer widths n_0..n_L, input first (e.g. 3,4,2)")
    parser.add_argument("--hidden", default=defaults["hidden"], metavar="NAME",
                        help=f"activation of the hidden layers: {', '.join(elementwise)}, or generic "
                             "(an unspecified differentiable g)")
    parser.add_argument("--output-activation", "--out-act", dest="output", default=defaults["output"],
                        metavar="NAME", help="activation of the output layer: any of the above or softmax")
    parser.add_argument("--output", dest="output", action=_DeprecatedOutput, help=argparse.SUPPRESS)
    parser.add_argument("--loss", default=defaults["loss"], choices=list(rules.LOSSES),
                        help="per-example loss (half_sse is ½‖a−y‖²)")
    parser.add_argument("--batch", type=_positive_int, default=defaults["batch"], metavar="M",
                        help="examples in the batch" + (" (the mini-batch size)" if command == "train" else ""))
    parser.add_argument("--reduction", choices=("mean", "sum"), default=defaults["reduction"],
                        help="how the batch is reduced (with mean, the 1/m is part of the claim)")
    parser.add_argument("--layout", choices=("columns", "rows"), default=defaults["layout"],
                        help="examples as columns (X is n_0×m, as in the documents) or as rows (X is m×n_0)")
    parser.add_argument("--l2", action="store_true", help="add the penalty (λ/2)·Σ‖W_k‖²"
                        + (" with a symbolic λ" if command == "prove" else ""))
    parser.add_argument("--relu-at-zero", type=_fraction, default=defaults["relu_at_zero"], metavar="V",
                        help="value taken for ReLU′(0) in both derivations")


def spec_from_arguments(args) -> NetworkSpec:
    try:
        return NetworkSpec(widths=args.widths, hidden=args.hidden, output=args.output, loss=args.loss,
                           batch=args.batch, reduction=args.reduction, layout=args.layout, l2=args.l2,
                           relu_at_zero=args.relu_at_zero)
    except SpecError as error:
        raise UsageError(str(error)) from None


def run_prove(args) -> int:
    from .general import prove_instance

    if args.layer is not None:
        return run_prove_layer(args)
    if args.widths is None:
        if not args.general:
            raise UsageError("prove: the following arguments are required: --widths "
                             "(or --general alone, for every width; see symbackprop prove --help)")
        if args.latex:
            raise UsageError("prove: --latex needs --widths (the LaTeX proof works on an instance)")
    spec = spec_from_arguments(argparse.Namespace(**{**vars(args), "widths": args.widths or (2, 2, 2)}))
    check_latex_arguments(args)
    progress = Progress(None if not quiet(args) else False)
    proof = None
    if args.widths is not None:
        proof = prove_instance(spec, timeout=args.timeout, progress=lambda item: progress(f"proving {item}"),
                               exact=args.exact is not None, memory=args.memory,
                               route=args.exact)
    general = None
    if args.general:
        from .general import prove_general

        progress("proving for every width and depth")
        general = proof.general if proof is not None and proof.general is not None else \
            prove_general(spec, timeout=args.timeout)
    progress.done()
    proved = (proof is None or proof.all_proved) and (general is None or general.all_proved)
    if args.json:
        report = proof.to_dict() if proof is not None else {}
        if general is not None:
            report["general"] = general.to_dict()
        print_json(report)
    elif args.latex != "-":
        screen = Screen()
        parts = []
        if proof is not None:
            parts.append(render_network_proof(proof, screen, summary_only=quiet(args)))
        if general is not None:
            parts.append(render_general_proof(general, screen, summary_only=quiet(args)))
        print("\n\n".join(parts))
    if args.latex:
        from .latex import network_document

        progress("checking the calculational proofs")
        document = network_document(proof, timeout=args.timeout, general=general)
        progress.done()
        write_latex(args, document.text)
        proved = proved and document.proved
    return 0 if proved else 1


def run_prove_layer(args) -> int:
    """prove --layer NAME: one row of the layer library, at its sizes (and for every size)."""
    from .layer_proofs import prove_layer
    from .layers import layer

    if args.widths is not None:
        raise UsageError("prove: --layer and --widths cannot be combined (a layer has its own sizes)")
    try:
        row = layer(args.layer)
    except KeyError as error:
        raise UsageError(f"prove --layer: {error.args[0]}") from None
    check_latex_arguments(args)
    progress = Progress(None if not quiet(args) else False)
    progress(f"proving the layer {row.name}")
    proof = prove_layer(row, general=args.general, timeout=args.timeout)
    progress.done()
    proved = proof.status == "proved" and (not args.general or (proof.general is not None and proof.general.proved))
    if args.json:
        print_json(proof.to_dict())
    elif args.latex != "-":
        lines = proof.lines()
        if args.general and proof.general is None:
            lines.append(f"no every-size proof for {row.name}: {proof.scope}")
        screen = Screen()

        def wrapped(line):
            indent = line[: len(line) - len(line.lstrip())]
            return screen.wrap(line.lstrip(), indent, indent + "    ")

        print("\n".join(wrapped(line) for line in (lines[-1:] if quiet(args) else lines)))
    if args.latex:
        from .latex import layer_document

        write_latex(args, layer_document(proof))
    return 0 if proved else 1


def render_network_proof(proof, screen: Screen | None = None, summary_only: bool = False) -> str:
    screen = screen or Screen()
    proved = sum(r.verdict.proved for r in proof.results)
    summary = "all" if proof.all_proved else f"{proved} of"
    summary = (f"{summary} {len(proof.results)} gradients proved equal to the backprop recurrences "
               f"(scope: {proof.scope}; {proof.seconds:.2f} s)")
    if summary_only:
        return summary
    lines = [f"network {proof.spec.describe()}", ""]
    lemma_rows = [[l.name, l.statement, l.verdict.status, l.verdict.method, _seconds(l.verdict.seconds)]
                  for l in proof.lemmas]
    if lemma_rows:
        lines += [screen.table(["lemma", "statement", "verdict", "method", "seconds"], lemma_rows, elide=1,
                               right=(4,), styled=(2,)), ""]
    rows = [[r.quantity, str(r.layer), r.verdict.status, r.verdict.scope, r.verdict.method or r.verdict.message,
             _seconds(r.verdict.seconds)] for r in proof.results]
    lines.append(screen.table(["quantity", "layer", "verdict", "scope", "method", "seconds"], rows, elide=4,
                              right=(1, 5), styled=(2,)))
    for r in proof.results:
        v = r.verdict
        if not v.proved:
            lines.append(screen.wrap(f"{r.quantity}{r.layer}: {screen.styled(v.status)} — {v.message}", "  ", "    "))
            if v.counterexample:
                lines.append(format_counterexample(v.counterexample, screen=screen))
            if v.slip:
                lines.append(f"    likely slip: {v.slip}")
    notes = sorted({note for r in proof.results for note in r.verdict.notes})
    if notes:
        lines.append("")
        lines += [screen.wrap(f"note: {note}", "", "  ") for note in notes]
    lines += ["", summary]
    return "\n".join(lines)


# ------------------------------------------------------------------ prove --general


def render_general_proof(general, screen: Screen | None = None, summary_only: bool = False) -> str:
    """The every-width, every-depth proof: its lemmas, then the induction over depth."""
    screen = screen or Screen()
    proved = sum(l.verdict.proved for l in general.lemmas)
    summary = "all" if general.all_proved else f"{proved} of"
    summary = f"{summary} {len(general.lemmas)} lemmas proved (scope: general; {general.seconds:.2f} s)"
    if summary_only:
        return summary
    lines = [screen.wrap(f"general: {general.setting.describe()}"), ""]
    rows = [[l.name, l.verdict.status, l.verdict.scope, l.verdict.method or l.verdict.message,
             _seconds(l.verdict.seconds)] for l in general.lemmas]
    lines.append(screen.table(["lemma", "verdict", "scope", "method", "seconds"], rows, elide=3, right=(4,),
                              styled=(1,)))
    for lemma in general.lemmas:
        v = lemma.verdict
        if not v.proved:
            lines.append(screen.wrap(f"{lemma.name}: {screen.styled(v.status)} — {v.message}", "  ", "    "))
            lines.append(screen.wrap(f"statement: {lemma.statement}", "    ", "      "))
            if v.counterexample:
                where = {**v.counterexample.get("sizes", {}), **v.counterexample.get("indices", {})}
                lines.append(f"    at {', '.join(f'{k}={x}' for k, x in where.items())}:")
                lines.append(format_counterexample(v.counterexample, indent="    ", screen=screen))
    lines += ["", str(general.induction), "", summary]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ extract

DOCUMENT_SUFFIXES = (".md", ".markdown", ".html", ".htm", ".tex", ".txt")


def _draft(path: str):
    """The draft derivation file of a document; a document that cannot be read is a UsageError."""
    from .extract import ExtractError, draft

    try:
        return draft(path)
    except ExtractError as error:
        raise UsageError(str(error)) from None


def run_extract(args) -> int:
    result = _draft(args.document)
    if args.output in (None, "-"):
        sys.stdout.write(result.toml)
    else:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(result.toml)
        except OSError as error:
            raise UsageError(f"{args.output}: cannot write: {error.strerror}") from None
    if not quiet(args):
        if not result.claims:
            print(f"{args.document}: no formula about a gradient, a delta, a derivative or the forward pass found",
                  file=sys.stderr)
        print(f"{args.document}: {result.claims} claims drafted"
              + (f" into {args.output}" if args.output not in (None, "-") else ""), file=sys.stderr)
        _print_guesses(result, sys.stderr)
    return 0


def _print_guesses(result, file) -> None:
    """A draft's guesses, then the formulas the LaTeX reader stopped on (file:line:column: …)."""
    for guess in result.guesses:
        print(f"  guess: {guess}", file=file)
    for problem in result.unreadable:
        print(problem, file=file)


def _document(path: str, symbols_path: str | None = None):
    """A document's draft loaded from memory (:func:`extract.load_document`); a document that cannot
    be read, or has nothing to check, is a UsageError (a FileError is this document's problem only)."""
    from .extract import ExtractError, load_document

    try:
        derivation = load_document(path, symbols_path, warn=warn)
    except ExtractError as error:
        raise UsageError(str(error)) from None
    if not derivation.claims:
        raise UsageError(f"{path}: nothing to verify: no formula about a gradient, a delta, a derivative "
                         "or the forward pass found")
    return derivation


# ------------------------------------------------------------------------------- verify


def run_verify(args) -> int:
    from .derivation import verify
    from .derivation.loader import FileError

    check_latex_arguments(args)
    paths, problems = [], []
    for path in args.paths:
        if path != "-" and path.lower().endswith(DOCUMENT_SUFFIXES):
            try:
                derivation = _document(path, args.symbols)
            except (FileError, UsageError) as error:  # this document cannot be checked; the others still are
                problems.append(str(error))
                continue
            paths.append(derivation)
            if not quiet(args) and not args.json:
                extraction = derivation.extraction
                print(f"{path}: extracted {len(derivation.claims)} claims; guesses used:")
                for guess in extraction["guesses"]:
                    print(f"  guess: {guess}")
                if args.symbols:
                    merged = [f"{what} {', '.join(extraction[key])}" for what, key in
                              (("overrides", "overridden"), ("adds", "added")) if extraction[key]]
                    print(f"  {args.symbols}: {'; '.join(merged) or 'changes nothing'}")
                if extraction["unreadable"]:
                    count = len(extraction["unreadable"])
                    print(f"  {count} formula{'s' if count != 1 else ''} cannot be read (listed at the end)")
                print()
        elif args.symbols:
            raise UsageError(f"--symbols applies to documents (.md, .html, .tex, .txt), not to {path}")
        else:
            paths.append(path)
    progress = Progress(None if not quiet(args) else False)
    try:
        report = verify(paths, timeout=args.timeout, progress=lambda item: progress(f"checking {item}"),
                        jobs=args.jobs, memory=args.memory)
    finally:
        progress.done()
    report.errors[:0] = problems
    if args.json:
        print_json(report.to_dict())
    elif args.latex != "-":
        screen = Screen()
        if not quiet(args):
            for file_report in report.files:
                print(render_file_report(file_report, screen, details=verbose(args)))
                print()
        print(screen.wrap(render_summary(report.summary, len(report.files), len(report.errors)), "", "  "))
    if args.latex and report.files:
        from .latex import derivation_document

        write_latex(args, derivation_document(report.files))
    for error in report.errors:
        print(f"{PROG}: {error}", file=sys.stderr)
    if report.errors:
        return 2
    return 0 if report.summary["unexpected"] == 0 else 1


def render_file_report(report, screen: Screen | None = None, details: bool = False) -> str:
    screen = screen or Screen()
    d = report.derivation
    heading = f"{d.path} — {d.title}" if d.title else d.path
    lines = [screen.wrap(heading + (f" ({d.source})" if d.source else ""), "", "  ")]
    instances = []
    for result in report.results:
        for item in result.instances:
            if item not in instances:
                instances.append(item)
    if instances:
        lines.append(screen.list("checked on:", instances))
    rows = []
    for result in report.results:
        v = result.verdict
        expected = "" if result.expected else f"UNEXPECTED (expected {result.claim.expect})"
        rows.append([result.claim.id, " ".join(result.claim.text.split()), v.status, v.scope,
                     _seconds(v.seconds), expected])
    lines.append("")
    lines.append(screen.table(["id", "claim (as printed)", "verdict", "scope", "seconds", ""], rows, elide=1,
                              right=(4,), styled=(2, 5)))
    for result in report.results:
        claim_lines = _claim_details(result, screen, details)
        if claim_lines:
            where = f" ({d.path}:{result.claim.line})" if result.claim.line is not None else ""
            lines.append(f"{result.claim.id}{where}:")
            lines += claim_lines
    return "\n".join(lines)


def _claim_details(result, screen: Screen, details: bool = False) -> list[str]:
    v, lines = result.verdict, []
    if v.status != "proved":
        lines.append(screen.wrap(f"{screen.styled(v.status)}: {v.message}", "    ", "      "))
    elif details:
        lines.append(screen.wrap(f"proved: {v.method}", "    ", "      "))
        lines += [screen.wrap(f"note: {note}", "    ", "      ") for note in v.notes]
    if v.counterexample:
        lines.append(format_counterexample(v.counterexample, screen=screen, full=details))
    if result.slip:
        lines.append(screen.wrap(f"likely slip: {result.slip}", "    ", "      "))
    if result.correction:
        c = result.correction
        lines.append(screen.wrap(f"correction: {c['lhs']} = {c['rhs']} — {screen.styled(c['verdict'])}"
                                 + (f" ({c['message']})" if c["verdict"] != "proved" and c.get("message") else ""),
                                 "    ", "      "))
    return lines


def render_summary(summary: dict, files: int, unreadable: int = 0) -> str:
    counts = ", ".join(f"{summary[k]} {k}" for k in ("proved", "refuted", "ill-formed", "undecided"))
    total = sum(summary[k] for k in ("proved", "refuted", "ill-formed", "undecided"))
    outcomes = []
    if summary["unexpected"]:
        outcomes.append(f"{summary['unexpected']} UNEXPECTED")
    if unreadable:
        outcomes.append(f"{unreadable} problem{'s' if unreadable != 1 else ''} with the files (see above)"
                        if files else f"{unreadable} file problem{'s' if unreadable != 1 else ''}, nothing checked")
    verdict = "; ".join(outcomes) or "every verdict as expected"
    return f"{files} file{'s' if files != 1 else ''}, {total} claim{'s' if total != 1 else ''}: {counts} — {verdict}"


# ------------------------------------------------------------------------ export and train


def _kernel_arguments(parser, command: str) -> None:
    add_network_arguments(parser, command)
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="floating-point type of the kernel's arrays")
    parser.add_argument("--l2-lambda", type=_penalty_weight, default=L2_LAMBDA, metavar="λ",
                        help="the L2 penalty's λ (with --l2)")
    parser.add_argument("--target", choices=TARGETS, default="numpy",
                        help="the engine of the kernel: NumPy, PyTorch (torch.autograd.Function and nn.Module) "
                             "or JAX (jax.custom_vjp)" if command == "export" else
                             "train with the NumPy kernel or the exported PyTorch / JAX module")


def _penalty(args, spec):
    """The L2 penalty's λ when the network has one (--l2), else None."""
    return args.l2_lambda if spec.l2 else None


def _network_text(spec) -> str:
    return spec.describe().rsplit(", batch", 1)[0]


def run_export(args) -> int:
    from .kernels import KernelError, generate, kernel_proofs

    if not args.path:
        raise UsageError("export: the following arguments are required: -o/--output FILE "
                         "(see symbackprop export --help)")
    if args.numpy_only and args.target != "numpy":
        raise UsageError(f"export: --numpy-only is for --target numpy, not {args.target}")
    spec = spec_from_arguments(args)
    penalty = _penalty(args, spec)
    progress = Progress(None if not quiet(args) else False)
    progress("proving the formulas the kernel computes")
    try:
        proofs = kernel_proofs(spec, timeout=args.timeout)
        source = generate(spec, args.dtype, penalty=penalty, proofs=proofs, target=args.target,
                          blas=not args.numpy_only)
    except KernelError as error:
        raise UsageError(str(error)) from None
    finally:
        progress.done()
    try:
        with open(args.path, "w", encoding="utf-8") as handle:
            handle.write(source)
    except OSError as error:
        raise UsageError(f"cannot write {args.path}: {error.strerror or error}") from None
    if args.json:
        print_json({"path": args.path, "network": _network_text(spec), "target": args.target,
                    "layout": spec.layout, "dtype": args.dtype,
                    "l2_lambda": penalty, "all_proved": proofs.all_proved, "seconds": round(proofs.seconds, 3),
                    "lemmas": [l.to_dict() for l in proofs.network.lemmas + proofs.lemmas],
                    "recurrences": proofs.network.to_dict(), "sgd": [r.to_dict() for r in proofs.sgd]})
    else:
        status = "every formula proved" if proofs.all_proved else "NOT every formula proved (see its docstring)"
        engine = "" if args.target == "numpy" else f"{ENGINES[args.target]} module for "
        print(f"wrote {args.path}: {engine}{_network_text(spec)}, {_layout_phrase(spec.layout)}, {args.dtype}; "
              f"{status} ({proofs.seconds:.2f} s)")
    return 0 if proofs.all_proved else 1


TRAIN_COLUMNS = ["epoch", "loss", "test loss", "train acc", "test acc", "elapsed s"]


def _epoch_cells(e) -> list[str]:
    def percent(value):
        return "-" if value is None else f"{100 * value:.2f}%"

    return [f"{e.epoch}{'*' if e.partial else ''}", f"{e.loss:.4f}", "-" if e.test_loss is None else f"{e.test_loss:.4f}",
            percent(e.train_accuracy), percent(e.test_accuracy), f"{e.seconds:.3f}"]


def _epoch_line(cells: list[str]) -> str:
    """A row of the epoch table: fixed widths, so that each row prints the moment its epoch ends."""
    return "  ".join(cell.rjust(len(header) if i else 5) if i else cell.ljust(5)
                     for i, (cell, header) in enumerate(zip(cells, TRAIN_COLUMNS))).rstrip()


def run_train(args) -> int:
    from . import train
    from .kernels import KernelError, build

    spec = spec_from_arguments(args)
    if spec.layout != "rows":
        raise UsageError("train uses examples as rows (drop --layout columns)")
    try:
        train.require_engine(args.target)
    except train.DataError as error:
        raise UsageError(str(error)) from None
    if args.plot:
        try:
            train.plotting()
        except train.DataError as error:
            raise UsageError(str(error)) from None
    n = spec.widths
    try:
        if args.data == "digits":
            if (n[0], n[-1]) != (64, 10):
                raise UsageError(f"digits has 64 features and 10 classes: use --widths 64,...,10, "
                                 f"not {','.join(map(str, n))}")
            data = train.load_digits(args.test_fraction, args.seed)
        else:
            data = train.load_csv(args.data, n[0], n[-1], args.test_fraction, args.seed,
                                  classification=spec.loss in ("cross_entropy", "bce"))
    except train.DataError as error:
        raise UsageError(str(error)) from None
    try:
        kernel = build(spec, args.dtype, penalty=_penalty(args, spec), target=args.target)
    except KernelError as error:
        raise UsageError(str(error)) from None
    built = kernel.seconds
    if args.target != "numpy":
        kernel = train.engine_kernel(kernel)
    talk = not (args.json or quiet(args))
    if talk:
        engine = "" if args.target == "numpy" else f"{ENGINES[args.target]} "
        print(f"training {_network_text(spec)} on {data.name}: {len(data.X_train)} training and "
              f"{len(data.X_test)} test examples, batch {spec.batch}, lr {args.lr:g}, {args.dtype} "
              f"({engine}kernel built in {built:.2f} s)")
        print(_epoch_line(TRAIN_COLUMNS), flush=True)
    history = []

    def finished(epoch) -> None:
        history.append(epoch)
        if talk:
            print(_epoch_line(_epoch_cells(epoch)), flush=True)

    bar = None
    if sys.stderr.isatty() and not quiet(args):
        from .terminal import progress_bar

        bar = progress_bar()
    interrupted, result = False, None
    try:
        if bar is not None:
            bar.start()
            task = bar.add_task(f"epoch 1/{args.epochs}", total=args.epochs)

            def progress(epoch, fraction):
                bar.update(task, completed=epoch - 1 + fraction, description=f"epoch {epoch}/{args.epochs}")
        else:
            progress = None
        result = train.train(kernel, data, epochs=args.epochs, lr=args.lr, batch=spec.batch, seed=args.seed,
                             progress=progress, on_epoch=finished, timeout=args.timeout)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.stop()
    stopped = "interrupted" if interrupted else (result.stopped if result is not None else None)
    if args.json:
        print_json({"network": _network_text(spec), "data": data.name, "train_examples": len(data.X_train),
                    "test_examples": len(data.X_test), "batch": spec.batch, "lr": args.lr, "dtype": args.dtype,
                    "target": args.target,
                    "epochs": [dataclasses.asdict(e) for e in history], "stopped": stopped})
    elif stopped and not quiet(args):
        reason = "interrupted" if interrupted else f"stopped at the {args.timeout:g} s time limit"
        partial = " (* the last one partial)" if history and history[-1].partial else ""
        print(f"{reason} after {len(history)} of {args.epochs} epochs{partial}", file=sys.stderr)
    if quiet(args) and history and not args.json:
        print(_epoch_line(_epoch_cells(history[-1])))
    if args.plot and history:
        try:
            train.plot(history, args.plot, title=_network_text(spec))
        except train.DataError as error:
            raise UsageError(str(error)) from None
        if not quiet(args):
            print(f"wrote {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 130 if interrupted else 0


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
    layout = network_defaults("export")["layout"]
    export = _command(
        commands, "export", summary="write a standalone NumPy, PyTorch or JAX kernel for a network",
        description="Generate NumPy code (runs on NumPy alone; train_step uses SciPy's BLAS if installed, --numpy-only "
                    "not) from the proven forward pass, loss and backprop "
                    "recurrences:\ninit_params, forward, loss, loss_and_grads, train_step. The module's "
                    "docstring lists the formulas\nand their proof status. By default the kernel takes "
                    f"{_layout_phrase(layout)} (--layout).\n--target torch writes a torch.autograd.Function "
                    "(and an nn.Module) whose backward is the\nproven one; --target jax a jax.custom_vjp "
                    "function. Neither module imports SymPy or\nsymbackprop. "
                    "Exit 0 when every formula is proved, 1 otherwise.",
        examples=["symbackprop export --widths 64,32,10 --hidden relu --output-activation softmax "
                  "--loss cross_entropy -o kernel.py",
                  "symbackprop export --widths 784,256,10 --target torch -o proven_mlp.py",
                  "symbackprop export --widths 3,4,2 --layout columns --dtype float32 -o kernel.py --json"])
    _kernel_arguments(export, "export")
    export.add_argument("-o", dest="path", metavar="FILE",
                        help="the Python file to write (required; --output FILE works too)")
    export.add_argument("--timeout", type=_positive_seconds, default=DEFAULT_TIMEOUT, metavar="S",
                        help="time budget per proof obligation, in seconds")
    export.add_argument("--json", action="store_true", help="print the kernel's proof report as JSON")
    export.add_argument("--numpy-only", action="store_true",
                        help="a NumPy module that imports nothing else: train_step without the fused form that "
                             "uses SciPy's BLAS when installed (a few %% slower on big networks)")
    export.set_defaults(run=run_export)

    trainer = _command(
        commands, "train", summary="train a network with the generated kernels (mini-batch SGD)",
        description="Train with mini-batch SGD using the generated kernel; prints loss and accuracy as each "
                    "epoch ends\n(the elapsed column is cumulative training time). --batch is the mini-batch "
                    "size. A CSV file has\none example per line: n_0 features, then n_L targets or one integer "
                    "class label.\n--target torch|jax trains with the exported PyTorch / JAX module instead "
                    "of the NumPy kernel.",
        examples=["symbackprop train --widths 64,32,10 --data digits --epochs 30 --plot curve.png",
                  "symbackprop train --widths 64,32,10 --data digits --target torch --dtype float32",
                  "symbackprop train --widths 2,8,2 --data points.csv --lr 0.3 --timeout 60",
                  "symbackprop train --widths 3,1 --output-activation identity --loss half_sse --data y.csv --json"])
    _kernel_arguments(trainer, "train")
    trainer.add_argument("--data", required=True, metavar="digits|FILE.csv",
                         help="scikit-learn's digits (pip install 'symbackprop[train]') or a CSV file")
    trainer.add_argument("--epochs", type=_positive_int, default=30, metavar="E", help="passes over the data")
    trainer.add_argument("--lr", type=_positive_float, default=0.1, help="learning rate")
    trainer.add_argument("--seed", type=_seed, default=0, help="seed of the initial weights and the shuffles")
    trainer.add_argument("--test-fraction", type=_fraction_below_one, default=0.2, metavar="F",
                         help="share of the examples held out for testing")
    trainer.add_argument("--plot", metavar="FILE.png", help="save the learning curve (needs matplotlib)")
    trainer.add_argument("--timeout", type=_positive_seconds, default=None, metavar="S",
                         help="stop training after S seconds (the epochs so far are kept)")
    trainer.add_argument("--json", action="store_true", help="print the run (every epoch) as JSON at the end")
    trainer.set_defaults(run=run_train)


# --------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG,
                     description="Proves backpropagation: derives every gradient of a network twice "
                                 "(direct differentiation and the backprop recurrences)\nand proves them equal; "
                                 "checks documents' gradient formulas; exports NumPy kernels.",
                     epilog="examples:\n  symbackprop verify derivations/\n"
                            "  symbackprop prove --widths 3,4,2 --hidden relu --output-activation softmax "
                            "--loss cross_entropy\n  symbackprop COMMAND --help")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    add_verbosity_arguments(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    prove = _command(commands, "prove", summary="prove the backprop recurrences for a network",
                     description="Prove that the backprop recurrences give ∂J/∂z_k, ∂J/∂W_k and ∂J/∂b_k for "
                                 "every layer of the given\nnetwork (exactly, on this instance); with --general, "
                                 "for every width and depth (then --widths\nis optional). Exit 0 when everything "
                                 "is proved, 1 otherwise.",
                     examples=["symbackprop prove --widths 3,4,2 --hidden relu --output-activation softmax "
                               "--loss cross_entropy --batch 2",
                               "symbackprop prove --general --hidden tanh --output-activation sigmoid --loss bce",
                               "symbackprop prove --widths 3,4,2 --latex proof.tex --pdf"])
    add_network_arguments(prove, "prove", widths_required=False)
    prove.add_argument("--timeout", type=_positive_seconds, default=DEFAULT_TIMEOUT, metavar="S",
                       help="time budget per gradient, in seconds; running out gives 'undecided'")
    add_memory_argument(prove, "gradient")
    prove.add_argument("--exact", nargs="?", const="layerwise", choices=("layerwise", "expand"), default=None,
                       metavar="ROUTE",
                       help="decide every gradient exactly on this instance, even when the general proof covers it "
                            "(by default such a network is an instance of the general proof: scope 'general, "
                            "instantiated'); ROUTE 'layerwise' (the default) checks each layer's local identities "
                            "and joins them by the chain rule, 'expand' expands the whole network")
    prove.add_argument("--json", action="store_true", help="print the report as JSON (docs/report.md)")
    prove.add_argument("--general", action="store_true",
                       help="also prove the recurrences for every width and every depth (symbolic sizes and "
                            "induction over layers); exit 0 only if both proofs succeed")
    prove.add_argument("--layer", metavar="NAME",
                       help="prove one row of the layer library instead of a network (batchnorm, layernorm, "
                            "attention, conv1d, rnn, lstm, …) at its sizes; with --general, for every size "
                            "of the dimension it sums over")
    add_latex_arguments(prove)
    prove.set_defaults(run=run_prove)

    verify = _command(commands, "verify", summary="check derivation files, or a document's own formulas",
                      description="Check derivation files claim by claim: proved, refuted (with a counterexample), "
                                  "ill-formed or\nundecided. A folder means every *.toml in it; '-' reads one file "
                                  "from standard input.\n"
                                  "A document (.md, .markdown, .html, .htm, .tex, .txt) is drafted first, as by "
                                  "'symbackprop extract',\nand checked from memory: every message names the document "
                                  "and the formula's line, the guesses\nthe draft used are printed first (with "
                                  "--json: under \"extraction\", with the formulas that cannot be\nread), and "
                                  "--symbols FILE.toml overrides them.\n"
                                  "Exit 0 when every verdict is the claim's expected one, 1 otherwise, 2 when a file "
                                  "itself is broken\n(for a document: also when a formula cannot be read).",
                      examples=["symbackprop verify derivations/",
                                "symbackprop verify notes.toml --json",
                                "symbackprop verify - < notes.toml",
                                "symbackprop verify notes.toml --latex errata.tex --pdf",
                                "symbackprop verify post.md",
                                "symbackprop verify post.md --symbols mine.toml --json"])
    verify.add_argument("paths", nargs="+", metavar="PATH",
                        help="derivation files or folders, or - (stdin); a document (.md, .html, .tex, .txt) is "
                             "extracted first, as by 'symbackprop extract', and its guesses are printed")
    verify.add_argument("--symbols", metavar="FILE.toml",
                        help="for documents: FILE.toml's tables ([network], [symbols], [tex], [define], …) merged "
                             "over the draft's, key by key, FILE's entries winning; the claims stay the document's "
                             "(FILE's [[claim]] tables are not used); problems in FILE are named FILE:line")
    verify.add_argument("--timeout", type=_positive_seconds, default=DEFAULT_TIMEOUT, metavar="S",
                        help="time budget per claim, in seconds")
    add_memory_argument(verify, "claim")
    verify.add_argument("--jobs", "-j", type=_positive_int, default=None, metavar="N",
                        help="check the files in N worker processes, a file's claims in one (default: the number "
                             "of cores); the report is the same as with --jobs 1, in the files' order")
    verify.add_argument("--json", action="store_true", help="print the report as JSON (docs/report.md)")
    add_latex_arguments(verify)
    verify.set_defaults(run=run_verify)

    extract = _command(commands, "extract", summary="draft a derivation file from a document's LaTeX",
                       description="Find every formula of a Markdown, HTML, LaTeX or plain-text document ($…$, "
                                   "$$…$$, \\(…\\), \\[…\\],\nequation, align; in Markdown prose '$5' is a "
                                   "price, not math) and write a derivation file with one claim\nper formula about a "
                                   "gradient, a delta, a derivative or the forward pass: its tex (shape\nannotations "
                                   "[X]_{m\\times n} kept, to be checked), its printed text and its line; each row "
                                   "of an\nalign is a formula. A formula the LaTeX reader cannot read is printed "
                                   "with its line and column.\n\n"
                                   "The guesses, each marked '# guess:' in the draft and printed on standard error:\n"
                                   "  [network]  widths from shape annotations such as [W^1]_{4\\times 3} (else "
                                   "small ones), the\n             activations (\\sigma, \\tanh, ReLU, a "
                                   "softmax written out), the loss from its formula,\n             batch 1\n"
                                   "  [symbols]  W, b, z, a from the forward definitions, the loss's and the "
                                   "target's letters,\n             an index shift (x = a^{(1)}), a width symbol "
                                   "for the sizes of shape annotations\n"
                                   "  [define]   each \\equiv definition; other repairs are in the claim's note\n\n"
                                   "To override them, edit the draft, or leave the document as it is and run\n"
                                   "'symbackprop verify DOC --symbols mine.toml': mine.toml's [network], [symbols], "
                                   "[tex] and [define]\nare merged over the guesses key by key, yours winning; the "
                                   "claims stay the document's.",
                       examples=["symbackprop extract post.md -o draft.toml && symbackprop verify draft.toml",
                                 "symbackprop extract notes.tex",
                                 "symbackprop verify post.md --symbols mine.toml"])
    extract.add_argument("document", metavar="DOC", help="the document: .md, .html, .tex, or text with TeX delimiters")
    extract.add_argument("-o", "--output", metavar="FILE.toml",
                         help="write the draft to FILE.toml (default: standard output)")
    extract.set_defaults(run=run_extract)
    add_kernel_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "run", None):
            parser.print_usage(sys.stderr)
            print(f"{PROG}: a command is needed: {', '.join(_command_names(parser))} (see {PROG} --help)",
                  file=sys.stderr)
            return 2
        return args.run(args)
    except UsageError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    except SpecError as error:  # a network past a limit, found where the work starts
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


def _command_names(parser) -> list[str]:
    return [name for action in parser._subparsers._group_actions for name in action.choices]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
