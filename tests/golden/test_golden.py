"""Every case of the ESC golden suite, tiers 1 (values) and 2 (diagnostics)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from .run_case import run_case

GOLDEN = Path(__file__).resolve().parents[2] / ".." / "shared" / "esc-golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) if GOLDEN.is_dir() else []

VALUE_KEYS = ("checkJson", "evalJsonRedacted", "evalJSONRevealed")
DIAG_KEYS = ("loadDiags", "checkDiags", "evalDiags")


def _diag_multiset(ds: list[dict] | None) -> Counter:
    out: Counter = Counter()
    for d in ds or []:
        s = d.get("Subject")
        where = (s["Filename"], s["Start"]["Line"], s["Start"]["Column"]) if s else None
        out[(d["Severity"], d["Summary"], d.get("Path", ""), where)] += 1
    return out


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
