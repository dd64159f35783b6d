"""Derivation files (TOML, SPEC §5): read, validated key by key, errors that say where."""

from __future__ import annotations

import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .. import limits
from ..network import NetworkSpec, SpecError
from .tex import TexError, spellings, translate, translate_expression
from .language import QUANTITIES, Binding, ClaimError, parse, parse_definition, parse_range
from .model import ModelError, ModelSpec, bindings_of, parse_model
from .model import build as build_model

VERDICTS = ("proved", "refuted", "ill-formed", "undecided")
TOP_KEYS = ("title", "source", "summation", "instances", "network", "model", "symbols", "tex", "define", "claim",
            "notes", "derivative_layout")
NETWORK_KEYS = ("widths", "hidden", "output", "loss", "batch", "reduction", "layout", "l2", "relu_at_zero",
                "leaky_slope")
REQUIRED_NETWORK_KEYS = ("widths", "hidden", "output", "loss")  # hidden: unless there is no hidden layer
CLAIM_KEYS = ("id", "text", "tex", "lhs", "rhs", "for", "expect", "correction", "correction_lhs", "note", "network",
              "instances")
INSTANCES = ("document", "all")  # only the document's network; also the tool's, whatever the claim names
DEFINE_KEYS = ("expr", "tex", "for")
SYMBOL_KEYS = ("quantity", "shift")


class FileError(Exception):
    """A problem with the file itself (not with one claim's mathematics)."""


@dataclass
class Claim:
    id: str
    text: str
    lhs: str
    rhs: str
    range: str | None = None
    expect: str = "proved"
    correction: str | None = None
    correction_lhs: str | None = None  # when the erratum is on the left side too
    note: str | None = None
    network: dict = field(default_factory=dict)
    instances: str | None = None  # "document" or "all"; None: the file's choice, else the checker's
    error: str | None = None  # set when the claim's entry in the file is itself broken
    shape: tuple | None = None  # (rows, cols) formulas: the LaTeX's shape annotation of the right side
    offset: int | None = None  # a tex claim: where its link starts in the tex (a chain's links differ)
    line: int | None = None  # where the claim is in the document, when known (a draft read from it)


@dataclass
class Derivation:
    path: str
    title: str = ""
    source: str = ""
    network: dict = field(default_factory=dict)
    spec: NetworkSpec | None = None  # a [network] file's dense network
    model: ModelSpec | None = None  # a [model] file's definitions
    bindings: dict = field(default_factory=dict)
    definitions: list = field(default_factory=list)
    broken_definitions: dict = field(default_factory=dict)  # name -> message
    claims: list = field(default_factory=list)
    einstein: bool = False
    instances: str | None = None  # for every claim without its own: "document" or "all"
    tex_names: dict = field(default_factory=dict)  # [tex]: how the document prints a name -> the name
    derivative_layout: str | None = None  # how its tex prints ∂a/∂b: "denominator" is jacobian(a, b).T
    errors: list = field(default_factory=list)  # file-level problems, one line each
    origins: dict = field(default_factory=dict, repr=False)  # (table, key) -> "FILE:line" of that entry
    extraction: dict | None = None  # for a draft read from a document: its guesses and unreadable formulas

    def at(self, table: str | None = None, key=None) -> str:
        """Where the entry ``[table] key`` comes from, as error messages name it: its origin when the
        derivation was merged from several sources (``mine.toml:3``, ``post.md:12``), else the file."""
        return self.origins.get((table, key), self.path)

    def __repr__(self) -> str:
        return (f"<Derivation {self.path}: {len(self.claims)} claims, {len(self.bindings)} symbols, "
                f"{len(self.definitions)} definitions{f', {len(self.errors)} errors' if self.errors else ''}>")


def _unknown(keys, allowed, where) -> list[str]:
    return [f"{where}: unknown key {key!r} (allowed: {', '.join(allowed)})" for key in keys if key not in allowed]


def load(path: str | Path, text: str | None = None, *, data: dict | None = None,
         origins: dict | None = None) -> Derivation:
    """Read a derivation file (or parse ``text``, or take the already parsed ``data``, named ``path``).
    Raises FileError only when nothing in it can be checked — and nothing else: one file's failure
    never costs the other files theirs.

    ``origins`` maps an entry to where it was written, for messages: ``(table, key)`` →
    ``"FILE:line"`` with table ``None`` for a top-level key, ``"claim"`` with the claim's 1-based
    position, or a table's name (``"symbols"``, ``"network"``, …) with the entry's key (``None``: the
    table itself).  An entry without one is named by ``path``."""
    shown = str(path)
    try:
        return _load(Path(path), shown, text, data, origins or {})
    except FileError:
        raise
    except Exception as error:  # a bug, not the file's fault: still one line, naming the file
        raise FileError(f"{shown}: could not be read ({type(error).__name__}: {_first_line(error)})") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else "no message"


def _load(path: Path, shown: str, text: str | None = None, data: dict | None = None,
          origins: dict | None = None) -> Derivation:
    d = Derivation(path=shown, origins=dict(origins or {}))
    if data is None:
        data = _parse(path, shown, text)
    _read(d, data)
    return d


def _read_text(path: Path, shown: str, what: str) -> str:
    """The file's text, or a FileError naming the file and what went wrong."""
    try:
        return limits.read_text(path, limits.MAX_FILE_BYTES, what)
    except FileNotFoundError:
        raise FileError(f"{shown}: no such file") from None
    except limits.LimitError as error:
        raise FileError(f"{shown}: {error}") from None
    except UnicodeDecodeError as error:
        raise FileError(f"{shown}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise FileError(f"{shown}: cannot read: {error.strerror}") from None


def _parse(path: Path, shown: str, text: str | None) -> dict:
    if text is None:
        text = _read_text(path, shown, "derivation file")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise FileError(f"{shown}: malformed TOML: {error}") from None
    except RecursionError:
        raise FileError(f"{shown}: malformed TOML: nested too deeply") from None


def _read(d: Derivation, data: dict) -> None:
    shown = d.path
    d.errors += [message for key in data for message in _unknown([key], TOP_KEYS, d.at(None, key))]
    d.title = str(data.get("title", ""))
    d.source = str(data.get("source", ""))
    summation = data.get("summation")
    if summation not in (None, "einstein"):
        d.errors.append(f"{d.at(None, 'summation')}: summation must be \"einstein\" (or absent), not {summation!r}")
    d.einstein = summation == "einstein"
    layout = data.get("derivative_layout")
    if layout not in (None, "numerator", "denominator"):
        d.errors.append(f"{d.at(None, 'derivative_layout')}: derivative_layout must be \"numerator\" or "
                        f"\"denominator\", not {layout!r}")
    else:
        d.derivative_layout = layout
    d.instances = _instances(data.get("instances"), d.at(None, "instances"), d.errors)
    if "model" in data:
        if "network" in data:
            raise FileError(f"{shown}: give either [network] (a dense network) or [model] (definitions), not both")
        if "symbols" in data:
            raise FileError(f"{shown}: a [model] names its own quantities; [symbols] maps a [network]'s")
        try:
            d.model = parse_model(data["model"], d.at("model"))
            build_model(d.model, d.model.sizes)  # at the document's sizes: every definition must evaluate
        except (ModelError, ClaimError) as error:
            message = str(error)
            raise FileError(message if message.startswith(d.at("model")) else f"{d.at('model')}: {message}") from None
        d.bindings = bindings_of(d.model)
    else:
        _load_network(d, data.get("network"), shown)
    _load_symbols(d, data.get("symbols", {}), shown)
    _load_tex_names(d, data.get("tex", {}), shown)
    _load_definitions(d, data.get("define", {}), shown)
    _load_claims(d, data.get("claim", []), shown)


def _instances(value, where: str, errors: list) -> str | None:
    if value is None or value in INSTANCES:
        return value
    errors.append(f"{where}: instances must be \"document\" (only the document's network) or \"all\" (also "
                  f"networks the tool chooses), not {value!r}")
    return None


def _load_network(d: Derivation, network, shown):
    shown = d.at("network")
    if not isinstance(network, dict):
        raise FileError(f"{shown}: missing [network] table (widths, hidden, output, loss, …)")
    d.errors += [message for key in network
                 for message in _unknown([key], NETWORK_KEYS, f"{d.at('network', key)}: [network]")]
    d.network = {k: v for k, v in network.items() if k in NETWORK_KEYS}
    for key in REQUIRED_NETWORK_KEYS:
        hidden_layers = isinstance(d.network.get("widths"), list) and len(d.network["widths"]) > 2
        if key not in d.network and (key != "hidden" or hidden_layers):
            example = {"widths": "widths = [n_0, …, n_L]", "hidden": 'hidden = "sigmoid" (the hidden layers\' '
                       "activation)", "output": 'output = "sigmoid"', "loss": 'loss = "half_sse"'}[key]
            raise FileError(f"{shown}: [network] needs {key}, as in {example}; nothing is assumed")
    try:
        d.spec = NetworkSpec(**d.network)
    except (SpecError, TypeError) as error:
        raise FileError(f"{shown}: [network]: {error}") from None
    too_large = limits.symbolic_problem(d.spec.widths, d.spec.batch)
    if too_large:
        raise FileError(f"{shown}: [network]: too large to check: {too_large}")


def _load_symbols(d: Derivation, symbols, shown):
    if not isinstance(symbols, dict):
        d.errors.append(f"{d.at('symbols')}: [symbols] must be a table of name = \"quantity\"")
        return
    for name, value in symbols.items():
        where = f"{d.at('symbols', name)}: [symbols] {name}"
        normalised = unicodedata.normalize("NFKC", name)
        if normalised != name:
            d.errors.append(f"{where}: Python reads this name as {normalised!r}; use that spelling")
            continue
        if not name.isidentifier() or name.startswith("_"):
            d.errors.append(f"{where}: not a usable name (letters, digits and _, not starting with _)")
            continue
        shift = 0
        if isinstance(value, dict):
            d.errors += _unknown(value, SYMBOL_KEYS, where)
            shift = value.get("shift", 0)
            value = value.get("quantity")
            if not isinstance(shift, int) or isinstance(shift, bool):
                d.errors.append(f"{where}: shift must be an integer, not {shift!r}")
                continue
        if value not in QUANTITIES:
            d.errors.append(f"{where}: unknown quantity {value!r} (quantities: {', '.join(QUANTITIES)})")
            continue
        d.bindings[name] = Binding(name, value, shift)


def _load_tex_names(d: Derivation, names, shown):
    """``[tex]``: ``"\\mathcal{L}(\\theta)" = "Lθ"`` — the LaTeX of ``tex`` formulas reads that
    spelling as the name (which [symbols] or [define] gives a meaning)."""
    if not isinstance(names, dict):
        d.errors.append(f"{d.at('tex')}: [tex] must be a table of \"printed LaTeX\" = \"name\"")
        return
    for printed, name in names.items():
        where = f"{d.at('tex', printed)}: [tex] {printed!r}"
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            d.errors.append(f"{where}: must name a claim-language name (letters, digits and _), not {name!r}")
            continue
        try:
            spellings({printed: name})
        except TexError as error:
            d.errors.append(f"{where}: {error.message.split(': ', 1)[-1]}")
            continue
        d.tex_names[printed] = name


def _load_definitions(d: Derivation, define, shown):
    if not isinstance(define, dict):
        d.errors.append(f"{d.at('define')}: [define] must be a table of \"name[l]\" = \"formula\"")
        return
    for target, value in define.items():
        where = f"{d.at('define', target)}: [define] {target}"
        range_text = None
        if isinstance(value, dict):
            d.errors += _unknown(value, DEFINE_KEYS, where)
            range_text, tex = value.get("for"), value.get("tex")
            value = value.get("expr")
            if tex is not None and value is not None:
                d.errors.append(f"{where}: give expr or tex, not both")
                continue
            if tex is not None:
                try:
                    value = _define_tex(d, target, tex)
                except TexError as error:
                    d.errors.append(f"{where}: tex: {error}")
                    d.broken_definitions[target.split("[")[0].strip()] = f"tex: {error}"
                    continue
        if not isinstance(value, str):
            d.errors.append(f"{where}: the definition must be a formula string")
            continue
        try:
            definition = parse_definition(target, value, range_text, d.bindings)
        except ClaimError as error:
            d.errors.append(f"{where}: {error}")
            d.broken_definitions[target.split("[")[0].strip()] = str(error)
            continue
        if definition.name in d.bindings:
            what = "a name of the [model]" if d.model is not None else \
                f"a symbol for {d.bindings[definition.name].quantity}"
            d.errors.append(f"{where}: {definition.name} is already {what}")
            continue
        d.definitions.append(definition)


def _define_tex(d: Derivation, target: str, tex) -> str:
    """The formula of a definition written in LaTeX: ``tex`` is its right side, or ``name = right side``."""
    if not isinstance(tex, str):
        raise TexError("tex must be a string", 0)
    symbols = {name: getattr(b, "quantity", b) for name, b in d.bindings.items()}
    defined = [df.name for df in d.definitions] + [target.split("[")[0].strip()]
    try:
        links = translate(tex, symbols, defined, d.tex_names, d.derivative_layout)
    except TexError as error:
        if not error.message.startswith("no '='"):
            raise
        return translate_expression(tex, symbols, defined, d.tex_names, d.derivative_layout).rhs  # the right side alone
    if len(links) != 1:
        raise TexError("a definition is one formula, not a chain", links[1].start, tex)
    return links[0].rhs


def _expand_tex(d: Derivation, claims, shown):
    """(number, entry) pairs; an entry written as ``tex`` becomes one entry per link of its chain,
    with ids C3a, C3b, ... when the chain has several links."""
    for number, entry in enumerate(claims, start=1):
        if not isinstance(entry, dict) or "tex" not in entry:
            yield number, entry
            continue
        claim_id = str(entry.get("id", f"C{number}"))
        rest = {k: v for k, v in entry.items() if k != "tex"}
        rest.setdefault("text", str(entry["tex"]))
        symbols = {name: getattr(b, "quantity", b) for name, b in d.bindings.items()}
        try:
            if not isinstance(entry["tex"], str):
                raise TexError("tex must be a string", 0)
            links = translate(entry["tex"], symbols, [df.name for df in d.definitions], d.tex_names,
                              d.derivative_layout)
        except TexError as error:
            yield number, {**rest, "id": claim_id, "lhs": "", "rhs": "", " tex error": f"tex: {error}"}
            continue
        for k, link in enumerate(links):
            suffix = chr(ord("a") + k) if len(links) > 1 else ""
            note = "; ".join(filter(None, [rest.get("note"), *link.notes])) or None
            quantified = {"for": link.for_range} if link.for_range and "for" not in rest else {}
            yield number, {**rest, **quantified, "id": claim_id + suffix, "lhs": link.lhs, "rhs": link.rhs,
                           "note": note, " shape": link.shape, " offset": link.start}


def _load_claims(d: Derivation, claims, shown):
    if not isinstance(claims, list):
        d.errors.append(f"{d.at('claim')}: claims are [[claim]] tables")
        return
    seen = set()
    for number, entry in _expand_tex(d, claims, shown):
        claim_id = str(entry.get("id", f"C{number}")) if isinstance(entry, dict) else f"C{number}"
        where = f"{d.at('claim', number)}: claim {claim_id}"
        if not isinstance(entry, dict):
            d.errors.append(f"{where}: must be a table")
            continue
        problems = _unknown(entry, CLAIM_KEYS + (" tex error", " shape", " offset"), where)
        if " tex error" in entry:
            problems.append(f"{where}: {entry[' tex error']}")
        for size in entry.get(" shape") or ():
            try:
                parse(size)
            except ClaimError as error:
                problems.append(f"{where}: tex: the shape annotation: {error}")
        if claim_id in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(claim_id)
        for key in ("lhs", "rhs"):
            if not isinstance(entry.get(key), str):
                problems.append(f"{where}: needs {key} = \"formula\"")
        expect = entry.get("expect", "proved")
        if expect not in VERDICTS:
            problems.append(f"{where}: expect must be one of {', '.join(VERDICTS)}, not {expect!r}")
        overrides = entry.get("network", {})
        if not isinstance(overrides, dict):
            problems.append(f"{where}: network must be a table of [network] keys to override")
            overrides = {}
        problems += _unknown(overrides, NETWORK_KEYS, f"{where}: network")
        if entry.get("correction_lhs") is not None and entry.get("correction") is None:
            problems.append(f"{where}: correction_lhs needs a correction (the corrected right side)")
        for key in ("correction", "correction_lhs"):
            if entry.get(key) is not None and not isinstance(entry[key], str):
                problems.append(f"{where}: needs {key} = \"formula\", not {entry[key]!r}")
        if entry.get("for") is not None:
            try:
                parse_range(entry["for"])
            except ClaimError as error:
                problems.append(f"{where}: for: {error}")
        instances = _instances(entry.get("instances"), where, problems)
        claim = Claim(id=claim_id, text=str(entry.get("text", entry.get("lhs", ""))), lhs=entry.get("lhs", ""),
                      rhs=entry.get("rhs", ""), range=entry.get("for"), expect=expect,
                      correction=entry.get("correction"), correction_lhs=entry.get("correction_lhs"),
                      note=entry.get("note"), network=overrides, instances=instances,
                      error="; ".join(p.split(": ", 2)[-1] for p in problems) or None, shape=entry.get(" shape"), offset=entry.get(" offset"))
        d.errors += problems
        d.claims.append(claim)


def read_overrides(path: str | Path) -> tuple[dict, dict]:
    """A file of tables to merge into another derivation (``verify DOC --symbols FILE``): its data
    and the origin ``"FILE:line"`` of each entry, in the form :func:`load` takes as ``origins``."""
    shown = str(path)
    text = _read_text(Path(path), shown, "symbols file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        import re

        at = re.search(r"\(at line (\d+), column (\d+)\)$", str(error))
        message = str(error)[:at.start()].rstrip() if at else str(error)
        raise FileError(f"{shown}:{at.group(1)}:{at.group(2)}: malformed TOML: {message}" if at
                        else f"{shown}: malformed TOML: {message}") from None
    except RecursionError:
        raise FileError(f"{shown}: malformed TOML: nested too deeply") from None
    return data, entry_origins(text, shown)


def merge(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` merged in: a table key by key, the override's entry winning; any
    other top-level value replaced.  The claims stay ``base``'s; a ``[model]`` in ``overrides``
    replaces ``base``'s ``[network]`` and ``[symbols]``."""
    merged = dict(base)
    if "model" in overrides:
        merged.pop("network", None)
        merged.pop("symbols", None)
    for key, value in overrides.items():
        if key == "claim":
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""


def entry_origins(text: str, shown: str) -> dict:
    """``(table, key)`` → ``"FILE:line"`` for each table header and each key of a TOML text (array
    tables ``[[claim]]`` by their 1-based position); only where an entry starts, for messages."""
    import re

    origins: dict = {}
    table, counts, quote = None, {}, None
    for number, line in enumerate(text.splitlines(), start=1):
        if quote:  # inside a multi-line string
            if line.count(quote) % 2:
                quote = None
            continue
        stripped = line.strip()
        header = re.fullmatch(r"\[\[\s*(" + _KEY + r")\s*\]\](?:\s*#.*)?|\[\s*(" + _KEY + r")\s*\](?:\s*#.*)?", stripped)
        if header:
            if header.group(1):
                table = _unquote(header.group(1))
                counts[table] = counts.get(table, 0) + 1
                origins.setdefault((table, counts[table]), f"{shown}:{number}")
            else:
                table = _unquote(header.group(2))
                origins.setdefault((table, None), f"{shown}:{number}")
            continue
        key = re.match(r"(" + _KEY + r")\s*=", stripped)
        if key and table not in counts:
            origins.setdefault((table, _unquote(key.group(1))), f"{shown}:{number}")
        for mark in ('"""', "'''"):
            if line.count(mark) % 2:
                quote = mark
    return origins


def _unquote(key: str) -> str:
    if key.startswith("'"):
        return key[1:-1]
    if key.startswith('"'):
        return tomllib.loads(f"k = {key}")["k"]
    return key


def expand_paths(paths: list[str]) -> list[Path]:
    """Files as given; a folder means every ``*.toml`` in it, sorted."""
    result = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = sorted(path.glob("*.toml"))
            if not found:
                raise FileError(f"{text}: no *.toml derivation files in this folder")
            result += found
        else:
            result.append(path)
    return result


__all__ = ["Claim", "Derivation", "FileError", "load", "read_overrides", "merge", "expand_paths",
           "parse", "VERDICTS"]
