"""Views of evaluation results: plain JSON (revealed or redacted), the detailed Value model of
the ESC API (section 8 of the spec) and diagnostics as the API sends them."""
from __future__ import annotations

from typing import Any

from .diagnostics import Diagnostic, Pos, Range
from .values import Value, to_plain

__all__ = ["to_plain", "range_json", "detailed", "diagnostic_json", "NO_RANGE"]

NO_RANGE = Range("", Pos(0, 0, 0), Pos(0, 0, 0))


def _pos(p: Pos) -> dict[str, int]:
    return {"line": p.line, "column": p.column, "byte": p.byte}


def range_json(r: Range) -> dict[str, Any]:
    return {"environment": r.environment, "begin": _pos(r.begin), "end": _pos(r.end)}


def detailed(v: Value, environment: str = "") -> dict[str, Any]:
    """The API's ``Value``: ``{value?, secret?, unknown?, trace: {def, base?}}``, recursively.

    Values without a definition of their own (provider outputs, context) borrow their parent's,
    since clients require ``trace.def.environment``.
    """
    fallback = NO_RANGE if not environment else Range(environment, NO_RANGE.begin, NO_RANGE.end)
    out: list[Any] = [None]
    stack: list[tuple[Value, Any, Any, Range]] = [(v, out, 0, fallback)]
    while stack:
        x, parent, key, inherited = stack.pop()
        rng = x.defn.range if x.defn is not None else inherited
        node: dict[str, Any] = {}
        parent[key] = node
        if x.unknown:
            node["unknown"] = True
        else:
            r = x.repr
            if type(r) is dict:
                d: dict[str, Any] = {}
                node["value"] = d
                for k, c in r.items():
                    stack.append((c, d, k, rng))
            elif type(r) is list:
                lst: list[Any] = [None] * len(r)
                node["value"] = lst
                for i, c in enumerate(r):
                    stack.append((c, lst, i, rng))
            elif r is not None:
                node["value"] = r
        if x.secret:
            node["secret"] = True
        trace: dict[str, Any] = {"def": range_json(rng)}
        node["trace"] = trace
        if x.base is not None:
            stack.append((x.base, trace, "base", rng))
    return out[0]


def diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    """A diagnostic as the ESC API sends it: ``{range?, summary, path?}``."""
    out: dict[str, Any] = {"summary": d.summary}
    if d.range is not None:
        out["range"] = range_json(d.range)
    if d.path:
        out["path"] = d.path
    return out
