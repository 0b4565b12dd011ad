"""Names close to a misspelt one, for "did you mean" hints."""
from __future__ import annotations

from typing import Iterable


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def closest(name: str, candidates: Iterable[str], max_distance: int = 2) -> str | None:
    """The candidate nearest to ``name`` (first in sorted order on ties), if near enough."""
    best, best_d = None, None
    for c in sorted(set(candidates)):
        d = edit_distance(name, c)
        if best_d is None or d < best_d:
            best, best_d = c, d
    if best is not None and best_d is not None and best_d <= max_distance and best_d < len(name):
        return best
    return None
