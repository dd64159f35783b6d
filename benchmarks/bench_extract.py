"""Extraction quality on the five seed documents, against their hand transcriptions.

For each seed ``tests/data/seeds/00N_*.txt`` and its hand transcription ``derivations/00N_*.toml``:
the draft of ``symbackprop extract`` (seconds per document), whether its guessed [network] and
[symbols] match the hand file's (scored on the draft made without help), and the fraction of the
hand file's claims that extraction finds and parses to a formula proved equal to the hand
transcription's.  For the claims the draft is made and read with the seed's small symbols file
``tests/data/seeds/00N.symbols.toml`` merged over its guesses, table by table and key by key, as
``verify DOC --symbols FILE`` does: [network], [symbols] and the [tex] spellings.
A hand claim counts as found when an extracted link has the same left side and a right side
either written identically or proved equal by ``verify`` (one claim "hand rhs = extracted rhs"
per candidate, under the hand file's network and definitions and the claim's own ``network``
override; for a claim expected proved or refuted — two readings of one printed formula are
equal or not whatever the formula's truth).  Links the hand file has no claim for are counted
as "extra".  Run:

    python benchmarks/bench_extract.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from symbackprop.derivation import verify  # noqa: E402
from symbackprop.derivation.tex import TexError, translate  # noqa: E402
from symbackprop.extract import draft  # noqa: E402

NETWORK_KEYS = ("widths", "hidden", "output", "loss")


def _norm(expr: str) -> str:
    return "".join(str(expr).split()).replace("(", "").replace(")", "")


def _toml(value) -> str:
    """A TOML value: strings, numbers and lists as JSON writes them, tables inline."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _header(hand: dict) -> list[str]:
    out = [f"title = {_toml(hand.get('title', ''))}"]
    if "summation" in hand:  # the hand formulas' implicit sums
        out.append(f"summation = {_toml(hand['summation'])}")
    for table in ("network", "symbols", "define"):
        if table in hand:
            out.append(f"[{table}]")
            out += [f"{_toml(k)} = {_toml(v)}" for k, v in hand[table].items()]
    return out


def _owners(edges: set, claims: list) -> dict:
    """The hand claims that distinct printed formulas account for: the links of one chain are
    equal to each other, so "found" alone lets one link count for several hand claims.  Hand
    claims with the same printed ``text`` (one formula's readings: per example and for the batch)
    are one group; each group gets at most one link and each link at most one group, the
    assignment that accounts for the most hand claims (a maximum-weight bipartite matching, the
    weight of a group and a link the group's members equal to that link).  Returns link → group."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    if not edges:
        return {}
    group_of = {n: _group(c, n) for n, c in enumerate(claims)}
    groups = sorted({group_of[n] for n, _ in edges})
    links = sorted({k for _, k in edges})
    weight = np.zeros((len(groups), len(links)))
    for n, k in edges:
        weight[groups.index(group_of[n]), links.index(k)] += 1
    rows, cols = linear_sum_assignment(weight, maximize=True)
    return {links[c]: groups[r] for r, c in zip(rows, cols) if weight[r, c]}


def _group(claim: dict, n: int) -> str:
    return " ".join(str(claim.get("text", n)).split())


def _matching(edges: set, claims: list) -> int:
    owner = _owners(edges, claims)
    return sum(1 for n, k in edges if owner.get(k) == _group(claims[n], n))


def measure(seed: Path, hand_path: Path, symbols_path: Path | None) -> dict:
    hand = tomllib.loads(hand_path.read_text(encoding="utf-8"))
    given = tomllib.loads(symbols_path.read_text(encoding="utf-8")) if symbols_path else {}
    start = time.perf_counter()
    guessed = tomllib.loads(draft(seed).toml)  # the guesses alone, scored against the hand file
    seconds = time.perf_counter() - start
    drafted = tomllib.loads(draft(seed, given=given).toml)  # the claims, read as verify --symbols does
    network_right = sum(guessed["network"].get(k) == hand.get("network", {}).get(k) for k in NETWORK_KEYS)
    hand_symbols = hand.get("symbols", {})
    symbols_right = sum(hand_symbols.get(k) == v for k, v in guessed.get("symbols", {}).items())
    symbols_wrong = len(guessed.get("symbols", {})) - symbols_right
    symbols = {**drafted.get("symbols", {}), **given.get("symbols", {})}
    names = {**drafted.get("tex", {}), **given.get("tex", {})}
    defined = list(hand.get("define", {})) + ["delta[0]"]
    links, sources, failed = [], [], []  # sources[k]: the drafted claim link k was read from
    for claim in drafted.get("claim", []):
        try:
            read = translate(claim["tex"], symbols, defined, names, drafted.get("derivative_layout"))
        except (TexError, ValueError) as error:
            failed.append((claim, error))
            continue
        links += read
        sources += [claim] * len(read)
    claims = [c for c in hand.get("claim", []) if "lhs" in c and "rhs" in c]
    edges, pairs, used = set(), [], set()  # (hand claim, link) written identically or proved equal
    for n, claim in enumerate(claims):
        for k, link in enumerate(links):
            if _norm(link.lhs) != _norm(claim["lhs"]):
                continue
            used.add(k)
            if _norm(link.rhs) == _norm(claim["rhs"]):
                edges.add((n, k))
            elif claim.get("expect", "proved") in ("proved", "refuted"):
                pairs.append((n, k, link))
    body = _header(hand)
    for n, k, link in pairs:
        # "hand rhs = extracted rhs" — except under Einstein summation, where every letter of a
        # claim's left side is free, so the hand right side's dummies would stop being summed there.
        # Such a pair keeps the hand claim's own left side L: "L = extracted" for a claim expected
        # proved (L = hand rhs holds), "L = (extracted) - (hand rhs) + L" for one expected refuted;
        # each term sums its own dummies and L's letters stay free, as in the hand file.
        lhs, rhs, left = claims[n]["rhs"], link.rhs, claims[n]["lhs"]
        if hand.get("summation") == "einstein":
            lhs, rhs = left, (rhs if claims[n].get("expect", "proved") == "proved"
                              else f"({rhs}) - ({claims[n]['rhs']}) + {left}")
        body += ["[[claim]]", f'id = "H{n}-E{k}"', f"lhs = {_toml(lhs)}", f"rhs = {_toml(rhs)}"]
        for key in ("for", "network", "instances"):
            if key in claims[n]:
                value = claims[n][key]
                body.append(f"{key} = {_toml(value)}")
    if pairs:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "pairs.toml"
            path.write_text("\n".join(body) + "\n", encoding="utf-8")
            report = verify(str(path), timeout=20)
            for r in report.results:
                if r.verdict.status == "proved":
                    n, k = r.claim.id.split("-")
                    edges.add((int(n[1:]), int(k[1:])))
    found = {n for n, _ in edges}
    extra = sum(1 for k in range(len(links)) if k not in used)
    return {"seed": seed.name[:3], "hand": len(claims), "found": len(found), "matched": _matching(edges, claims),
            "links": len(links),
            "unreadable": len(failed), "extra": extra, "network": f"{network_right}/{len(NETWORK_KEYS)}",
            "symbols": f"{symbols_right} right, {symbols_wrong} wrong", "seconds": seconds,
            "detail": {"claims": claims, "links": links, "sources": sources, "failed": failed, "edges": edges}}


def main() -> None:
    seeds = sorted((ROOT / "tests" / "data" / "seeds").glob("00[0-4]_*.txt"))
    rows = []
    for seed in seeds:
        (hand,) = (ROOT / "derivations").glob(seed.name[:3] + "_*.toml")
        given = seed.with_name(seed.name[:3] + ".symbols.toml")
        rows.append(measure(seed, hand, given if given.exists() else None))
    print(f"{'seed':5} {'hand claims':>11} {'found+equal':>11} {'fraction':>8} {'one link each':>13} {'links':>5} "
          f"{'unreadable':>10} {'extra':>5} {'network':>7}  {'symbols':18} {'s/doc':>6}")
    for r in rows:
        print(f"{r['seed']:5} {r['hand']:>11} {r['found']:>11} {r['found'] / max(r['hand'], 1):>8.0%} "
              f"{r['matched']:>7} {r['matched'] / max(r['hand'], 1):>5.0%} {r['links']:>5} "
              f"{r['unreadable']:>10} {r['extra']:>5} {r['network']:>7}  {r['symbols']:18} {r['seconds']:>6.2f}")
    hand, found, matched = (sum(r[key] for r in rows) for key in ("hand", "found", "matched"))
    print(f"all   {hand:>11} {found:>11} {found / max(hand, 1):>8.0%} {matched:>7} {matched / max(hand, 1):>5.0%}")


if __name__ == "__main__":
    main()
