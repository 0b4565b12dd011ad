"""libyaml's nesting limit, lifted above the engine's own while the engine parses.

The engine's depth rule is yaml.v3's (at most 10000 nested flow collections and 10000 block
indentation levels), counted by :mod:`.syntax` itself so that it holds on every PyYAML release.
PyYAML 6.0.4 and later bundle a libyaml that stops at 1000 levels of each kind
(``exceeded maximum nesting depth``) and expose that limit as a setting of the whole process;
older releases have no limit. So while the engine parses, the C limit is raised above the
engine's, and it is put back when the last concurrent parse ends.

Why not raise it once for good: the limit protects other code in the process (PyYAML's C
composer recurses on depth), so it is lifted only while one of our parses runs. A thread that
parses with PyYAML at that very moment sees the higher limit too; that is the price of a
process-wide setting, and no parse of ours depends on the timing.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

try:
    from yaml import _yaml as _ext
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _ext = None

_get: Callable[[], int] | None = getattr(_ext, "_get_max_nest_level", None)
_set: Callable[[int], None] | None = getattr(_ext, "_set_max_nest_level", None)


class _Lease:
    """Counts the parses in flight; the first raises the limit, the last restores it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._saved = 0

    @contextmanager
    def lifted(self, at_least: int) -> Iterator[None]:
        if _get is None or _set is None:
            yield  # no limit to lift (PyYAML < 6.0.4, or no libyaml)
            return
        with self._lock:
            if self._holders == 0:
                self._saved = _get()
                if self._saved < at_least:
                    _set(at_least)
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._saved < at_least:
                    _set(self._saved)


_LEASE = _Lease()


def libyaml_nesting_lifted(at_least: int):
    """Context manager: libyaml accepts at least ``at_least`` nested levels meanwhile."""
    return _LEASE.lifted(at_least)
