"""Field-by-field comparison of a golden case's expected data with what the engine produced.

Used by ``test_golden.py`` and by hand: ``python -m tests.golden.compare [CASE...]`` prints, for
each case, every tier-3 section that differs and the first differing path in it.

Numbers compare by value (``1.0 == 1``, but ``True`` is not ``1``); diagnostics compare as
multisets of (severity, summary, path, subject) since the order within one position is free.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parents[2] / ".." / "shared" / "esc-golden"

DETAILED_KEYS = ("check", "eval", "rotate")
DETAILED_PARTS = ("properties", "exprs", "schema", "executionContext")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def first_difference(want: Any, got: Any, path: str = "") -> str | None:
    """The first path (``a.b[2]``) at which ``got`` differs from ``want``, with both values
    shortened; ``None`` when they are equal. Iterative: the trees may be deep."""
    stack: list[tuple[Any, Any, str]] = [(want, got, path)]
    while stack:
        w, g, p = stack.pop()
        if _is_number(w) and _is_number(g):
            if w != g:
                return _show(p, w, g)
            continue
        if type(w) is not type(g):
            return _show(p, w, g)
        if isinstance(w, dict):
            if set(w) != set(g):
                missing = sorted(set(w) - set(g))
                extra = sorted(set(g) - set(w))
                return f"{p or '<root>'}: keys missing {missing}, unexpected {extra}"
            for k in sorted(w, reverse=True):
                stack.append((w[k], g[k], f"{p}.{k}" if p else k))
        elif isinstance(w, list):
            if len(w) != len(g):
                return _show(p, w, g, f"length {len(w)} != {len(g)}")
            for i in range(len(w) - 1, -1, -1):
                stack.append((w[i], g[i], f"{p}[{i}]"))
        elif w != g:
            return _show(p, w, g)
    return None


def _show(path: str, want: Any, got: Any, note: str = "") -> str:
    def short(x: Any) -> str:
        s = json.dumps(x, sort_keys=True)
        return s if len(s) <= 300 else s[:300] + "..."

    return f"{path or '<root>'}: {note + ': ' if note else ''}want {short(want)}, got {short(got)}"


def diag_multiset(ds: list[dict] | None) -> Counter:
    out: Counter = Counter()
    for d in ds or []:
        s = d.get("Subject")
        where = json.dumps(s, sort_keys=True) if s else None
        out[(d["Severity"], d["Summary"], d.get("Path", ""), where)] += 1
    return out


def tier3_differences(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Every tier-3 difference of a case: the detailed environments part by part, the rotate
    diagnostics with their full ranges, and the patches."""
    out: list[str] = []
    for key in DETAILED_KEYS:
        if key not in expected:
            if key in got and key == "rotate":
                out.append(f"{key}: not expected")
            continue
        if key not in got:
            out.append(f"{key}: missing")
            continue
        want_env, got_env = expected[key], got[key]
        for part in DETAILED_PARTS:
            if part not in want_env and part not in got_env:
                continue
            if part not in want_env or part not in got_env:
                out.append(f"{key}.{part}: {'missing' if part not in got_env else 'not expected'}")
                continue
            d = first_difference(want_env[part], got_env[part], f"{key}.{part}")
            if d:
                out.append(d)
    for key in ("loadDiags", "checkDiags", "evalDiags", "rotateDiags"):
        w, g = diag_multiset(expected.get(key)), diag_multiset(got.get(key))
        if w != g:
            out.append(f"{key} (full ranges): missing {sorted(w - g)}, unexpected {sorted(g - w)}")
    if "rotatePatches" in expected or "rotatePatches" in got:
        d = first_difference(expected.get("rotatePatches") or [], got.get("rotatePatches") or [], "rotatePatches")
        if d:
            out.append(d)
    return out


def main(argv: list[str]) -> int:
    from .run_case import run_case

    cases = argv[1:] or sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
    full = 0
    for case in cases:
        expected = json.loads((GOLDEN / case / "expected.json").read_text())
        got = run_case(GOLDEN / case)
        diffs = tier3_differences(expected, got)
        if not diffs:
            full += 1
            continue
        print(f"== {case}")
        for d in diffs:
            print(f"   {d}")
    print(f"tier 3: {full}/{len(cases)} cases match fully")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
