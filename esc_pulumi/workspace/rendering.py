"""The Pulumi CLI's config text: how a typed value becomes the string a program reads.

One implementation, used for ESC values, stack and project files, the CLI verbs and the
``run`` wrapper's config file (``spec/pulumi-integration.md``, "Mapping"):

- strings as they are; ``true``/``false``; ``null``;
- numbers by the CLI's ``toPlaintext``: a number whose text is an int64 prints as that integer,
  anything else is read as a float64 and printed as Go's ``json.Marshal`` prints one (shortest
  round-trip digits; plain notation for 1e-6 ≤ |x| < 1e21, else ``1e+21`` / ``1.5e-7``);
- objects and arrays as compact JSON with sorted keys, Go's escaping and the same number rule.

Example::

    number_text(1e6)            # '1000000'
    number_text(1.5e-7)         # '1.5e-7'
    config_text({"b": 1.0, "a": "<x>"})   # '{"a":"\\u003cx\\u003e","b":1}'
"""
from __future__ import annotations

import math
import re
from typing import Any

from ..esc.values import go_json_string as _go_string  # Go's escaping: one implementation

_INT64 = re.compile(r"[-+]?[0-9]+\Z")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _as_int64(text: str) -> int | None:
    """``strconv.ParseInt(text, 10, 64)``, or None."""
    if not _INT64.match(text) or len(text) > 21:
        return None
    n = int(text)
    return n if _INT64_MIN <= n <= _INT64_MAX else None


def go_float_text(f: float) -> str:
    """A float64 as Go's ``encoding/json`` writes it (NaN and infinities, which Go refuses to
    marshal, keep their Go ``%v`` text)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    from decimal import Decimal  # imported here: ~1 ms at every program start, for floats only

    sign, digits, exponent = Decimal(repr(f)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0")
    # Decimal exponent of the first digit: digits d1.d2d3... × 10**point
    point = len(digits) + exponent - 1  # type: ignore[operator]
    minus = "-" if sign else ""
    if 1e-6 <= abs(f) < 1e21:
        if point < 0:
            return f"{minus}0.{'0' * (-point - 1)}{text}"
        if len(text) <= point + 1:
            return f"{minus}{text}{'0' * (point + 1 - len(text))}"
        return f"{minus}{text[:point + 1]}.{text[point + 1:]}"
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    # strconv's 'e' writes at least two exponent digits; json.Marshal trims "e-07" to "e-7".
    if point < 0:
        return f"{minus}{mantissa}e-{-point}"
    return f"{minus}{mantissa}e+{point:02d}"


def number_text(n: int | float) -> str:
    """The CLI's text of a number (int64 as is, everything else through float64).

    ``n`` may carry its source text (a number from ``fn::fromJSON``, ``.text``): that text
    decides whether it is an int64, as the CLI decides on the JSON it receives.
    """
    if isinstance(n, bool):
        return "true" if n else "false"
    text = getattr(n, "text", None)
    if text is not None:
        exact = _as_int64(text)
        if exact is not None:
            return str(exact)
        return go_float_text(float(n))
    if type(n) is int or isinstance(n, int):
        if _INT64_MIN <= n <= _INT64_MAX:
            return str(int(n))
        try:
            return go_float_text(float(n))
        except OverflowError:
            return "+Inf" if n > 0 else "-Inf"
    # The CLI reads the JSON text ESC wrote: a float that marshals as int64 digits (3.0 → "3",
    # -0.0 → "-0") is then an integer.
    text = go_float_text(float(n))
    exact = _as_int64(text)
    return text if exact is None else str(exact)


def json_text(data: Any) -> str:
    """Compact JSON as the CLI writes an object/array value: sorted keys, Go escaping, the
    CLI's number text. Iterative, so any depth."""
    out: list[str] = []
    todo: list[Any] = [data]
    _TEXT = object()
    while todo:
        x = todo.pop()
        if type(x) is tuple and len(x) == 2 and x[0] is _TEXT:
            out.append(x[1])
            continue
        if isinstance(x, dict):
            parts: list[Any] = [(_TEXT, "{")]
            for i, k in enumerate(sorted(x)):
                parts.append((_TEXT, ("," if i else "") + _go_string(str(k)) + ":"))
                parts.append(x[k])
            parts.append((_TEXT, "}"))
            todo.extend(reversed(parts))
        elif isinstance(x, (list, tuple)):
            parts = [(_TEXT, "[")]
            for i, v in enumerate(x):
                if i:
                    parts.append((_TEXT, ","))
                parts.append(v)
            parts.append((_TEXT, "]"))
            todo.extend(reversed(parts))
        elif x is None:
            out.append("null")
        elif x is True:
            out.append("true")
        elif x is False:
            out.append("false")
        elif isinstance(x, str):
            out.append(_go_string(x))
        elif isinstance(x, (int, float)):
            out.append(number_text(x))
        else:
            out.append(_go_string(str(x)))
    return "".join(out)


def config_text(data: Any) -> str:
    """The config string of plain typed data (see the module rules).

    Example::

        config_text(True)           # 'true'
        config_text(123456789.125)  # '123456789.125'
        config_text([1, "a"])       # '[1,"a"]'
    """
    if isinstance(data, str):
        return data
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "true" if data else "false"
    if isinstance(data, (int, float)):
        return number_text(data)
    if isinstance(data, (dict, list, tuple)):
        return json_text(data)
    return str(data)
