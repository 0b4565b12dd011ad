"""Every case of the ESC golden suite, tiers 1 (values) and 2 (diagnostics), and rotation
(rotateDiags, rotateJson, rotatePatches) for the cases whose overrides ask for it."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from .run_case import run_case

GOLDEN = Path(__file__).resolve().parents[2] / ".." / "shared" / "esc-golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) if GOLDEN.is_dir() else []

VALUE_KEYS = ("checkJson", "evalJsonRedacted", "evalJSONRevealed", "rotateJson")
DIAG_KEYS = ("loadDiags", "checkDiags", "evalDiags", "rotateDiags")


def _diag_multiset(ds: list[dict] | None) -> Counter:
    out: Counter = Counter()
    for d in ds or []:
        s = d.get("Subject")
        where = (s["Filename"], s["Start"]["Line"], s["Start"]["Column"]) if s else None
        out[(d["Severity"], d["Summary"], d.get("Path", ""), where)] += 1
    return out


def _patches(ps: list[dict] | None) -> list[dict]:
    """Patches with each trace reduced to where its definition begins: the engine's range ends
    are its parser's, not yet the reference's computed ones (tier 3, spec section 10)."""

    def node(v: dict) -> dict:
        out = {k: v[k] for k in ("secret", "unknown") if k in v}
        if "value" in v:
            x = v["value"]
            if isinstance(x, dict):
                out["value"] = {k: node(c) for k, c in x.items()}
            elif isinstance(x, list):
                out["value"] = [node(c) for c in x]
            else:
                out["value"] = x
        d = v["trace"]["def"]
        out["def"] = (d.get("environment", ""), d["begin"]["line"], d["begin"]["column"], d["begin"]["byte"])
        return out

    return [{"DocPath": p["DocPath"], "Replacement": node(p["Replacement"])} for p in ps or []]


def _untraced(v: object) -> object:
    """A detailed tree without its traces (their ranges are tier 3's work)."""
    if isinstance(v, dict):
        return {k: _untraced(c) for k, c in v.items() if k != "trace"}
    if isinstance(v, list):
        return [_untraced(c) for c in v]
    return v


def test_suite_is_present() -> None:
    assert len(CASES) >= 30, f"golden suite not found at {GOLDEN}"


@pytest.mark.parametrize("case", CASES)
def test_golden_case(case: str) -> None:
    expected = json.loads((GOLDEN / case / "expected.json").read_text())
    got = run_case(GOLDEN / case)
    for key in DIAG_KEYS:
        assert _diag_multiset(got.get(key)) == _diag_multiset(expected.get(key)), key
    for key in VALUE_KEYS:
        if key in expected:
            assert got.get(key) == expected[key], key
        else:
            assert key not in got, key
    assert _patches(got.get("rotatePatches")) == _patches(expected.get("rotatePatches")), "rotatePatches"
    if "rotate" in expected:
        want = _untraced(expected["rotate"].get("properties", {}))
        assert _untraced(got["rotate"].get("properties", {})) == want, "rotate"
