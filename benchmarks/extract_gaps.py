"""The hand claims of each seed that no printed formula accounts for, and what was read instead.

For every seed of ``bench_extract.py``: each hand claim of ``derivations/00N_*.toml`` that the
"one link each" count does not match, with the links extracted with its left side (and the line
and printed formula each came from) — the readings to look at when a hand claim is found but not
matched, or not found at all.  Formulas the reader could not read are listed last.  Run:

    python benchmarks/extract_gaps.py [000 002 …]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_extract import ROOT, _group, _norm, _owners, measure  # noqa: E402


def _line(claim: dict) -> str:
    """The drafted claim's source line, as its note and id give it (``line 38``, ``L38-6``)."""
    note = str(claim.get("note", "")).split(";")[0].strip()
    return note if note.startswith("line ") else str(claim.get("id", "?"))


def gaps(row: dict) -> list[str]:
    detail = row["detail"]
    claims, links, sources, edges = detail["claims"], detail["links"], detail["sources"], detail["edges"]
    owner = _owners(edges, claims)
    out = []
    for n, claim in enumerate(claims):
        if any(owner.get(k) == _group(claim, n) for m, k in edges if m == n):
            continue
        equal = sorted(k for m, k in edges if m == n)
        state = f"found (links {equal} taken by others)" if equal else "not found"
        out.append(f"  {claim.get('id', n)}: {claim['lhs']} = {claim['rhs']}   [{state}]")
        out.append(f"      printed: {claim.get('text', '')}")
        for k, link in enumerate(links):
            if _norm(link.lhs) == _norm(claim["lhs"]):
                source = sources[k]
                taken = f" (counted for {owner[k]!r})" if k in owner else ""
                out.append(f"      E{k} {_line(source)}: {link.lhs} = {link.rhs}{taken}")
                out.append(f"          from: {' '.join(str(source.get('tex', '')).split())[:160]}")
    for source, error in detail["failed"]:
        out.append(f"  unreadable, {_line(source)}: {error}")
    return out


def main() -> None:
    wanted = set(sys.argv[1:])
    for seed in sorted((ROOT / "tests" / "data" / "seeds").glob("00[0-4]_*.txt")):
        if wanted and seed.name[:3] not in wanted:
            continue
        (hand,) = (ROOT / "derivations").glob(seed.name[:3] + "_*.toml")
        given = seed.with_name(seed.name[:3] + ".symbols.toml")
        row = measure(seed, hand, given if given.exists() else None)
        print(f"seed {row['seed']}: one link each {row['matched']}/{row['hand']}")
        print("\n".join(gaps(row)))


if __name__ == "__main__":
    main()
