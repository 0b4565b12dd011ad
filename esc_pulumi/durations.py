"""Go's ``time.ParseDuration`` syntax (``2h0m0s``, ``1.5h``, ``300ms``), as the ``duration``
query parameter of the open endpoints uses it.

Example::

    parse_duration("2h0m0s")   # 7200.0
    parse_duration("90s")      # 90.0
"""
from __future__ import annotations

import re

__all__ = ["parse_duration", "DurationError"]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class DurationError(ValueError):
    """Not a Go duration; the message says what is wrong."""


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string; :class:`DurationError` if it is not one."""
    s = text.strip()
    if not s:
        raise DurationError("empty duration")
    sign = 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    total, pos = 0.0, 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            raise DurationError(f"invalid duration {text!r}: expected <number><unit> with unit ns, us, ms, s, m or h")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total
