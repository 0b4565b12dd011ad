"""Views of evaluation results: plain JSON (revealed or redacted), the detailed Value model of
the ESC API (section 8 of the spec) and diagnostics as the API sends them.

The views expand the values that references share; they stay bounded because evaluation
refuses a result whose expanded size exceeds its :class:`~esc_pulumi.esc.EvalLimits` (see
:mod:`.budget`)."""
from __future__ import annotations

from typing import Any

from ._gc import collector_paused
from .diagnostics import Diagnostic, Pos, Range
from .values import SECRET_TEXT, Value, to_plain

__all__ = ["to_plain", "range_json", "detailed", "diagnostic_json", "NO_RANGE"]

NO_RANGE = Range("", Pos(0, 0, 0), Pos(0, 0, 0))


def _pos(p: Pos) -> dict[str, int]:
    return {"line": p.line, "column": p.column, "byte": p.byte}


def range_json(r: Range) -> dict[str, Any]:
    return {"environment": r.environment, "begin": _pos(r.begin), "end": _pos(r.end)}


def detailed(v: Value, environment: str = "", *, redact: bool = False, root: bool = False) -> dict[str, Any]:
    """The API's ``Value``: ``{value?, secret?, unknown?, trace: {def, base?}}``, recursively,
    keys in the order of the reference's Go struct.

    Values without a definition of their own (provider outputs, context) borrow their parent's,
    since clients require ``trace.def.environment``. With ``redact`` a secret's value is
    ``"[secret]"`` (and its base is left out). With ``root``, ``v`` is a whole environment: its
    own trace is the zero range, as the reference's ``NewValue(properties)`` has it.
    """
    fallback = NO_RANGE if not environment else Range(environment, NO_RANGE.begin, NO_RANGE.end)
    # Values shared by references share their definitions: one range and one JSON range per
    # definition, not a new Range and three dicts per node (``Expr.range`` is computed on each
    # access). The output is only read and serialised, never mutated in place, so sharing the
    # dicts is safe. Keyed by identity; the memo holds the definition, so no identity is reused.
    defs: dict[int, tuple[Any, Range, dict[str, Any]]] = {}
    json_of: dict[int, dict[str, Any]] = {id(NO_RANGE): range_json(NO_RANGE)}
    with collector_paused():  # many small dicts and no cycles (see _gc)
        return _detailed(v, fallback, redact, root, defs, json_of)


def _detailed(v: Value, fallback: Range, redact: bool, root: bool, defs: dict[int, tuple[Any, Range, dict[str, Any]]],
              json_of: dict[int, dict[str, Any]]) -> dict[str, Any]:
    out: list[Any] = [None]
    stack: list[tuple[Value, Any, Any, Range, bool]] = [(v, out, 0, fallback, root)]
    while stack:
        x, parent, key, inherited, is_root = stack.pop()
        defn = x.defn
        if defn is not None and not is_root:
            hit = defs.get(id(defn))
            if hit is None:
                r0 = defn.range
                hit = defs[id(defn)] = (defn, r0, range_json(r0))
                json_of[id(r0)] = hit[2]
            rng = hit[1]
        else:
            rng = inherited
        child_range = fallback if is_root else rng
        node: dict[str, Any] = {}
        parent[key] = node
        hidden = redact and x.secret
        if hidden:
            node["value"] = SECRET_TEXT
        elif x.unknown:
            if type(x.repr) is str:  # an unknown interpolation: "[unknown]"
                node["value"] = x.repr
        else:
            r = x.repr
            if type(r) is dict:
                d: dict[str, Any] = {}
                node["value"] = d
                for k, c in r.items():
                    stack.append((c, d, k, child_range, False))
            elif type(r) is list:
                lst: list[Any] = [None] * len(r)
                node["value"] = lst
                for i, c in enumerate(r):
                    stack.append((c, lst, i, child_range, False))
            elif r is not None:
                node["value"] = r
        if x.secret:
            node["secret"] = True
        if x.unknown:
            node["unknown"] = True
        shown = NO_RANGE if is_root else rng
        rj = json_of.get(id(shown))
        if rj is None:  # the fallback range
            rj = json_of[id(shown)] = range_json(shown)
        trace: dict[str, Any] = {"def": rj}
        node["trace"] = trace
        if x.base is not None and not is_root and not hidden:
            stack.append((x.base, trace, "base", rng, False))
    return out[0]


def diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    """A diagnostic as the ESC API sends it: ``{range?, summary, path?}``."""
    out: dict[str, Any] = {"summary": d.summary}
    if d.range is not None:
        out["range"] = range_json(d.range)
    if d.path:
        out["path"] = d.path
    return out
