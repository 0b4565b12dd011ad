"""JSON response bodies: compact, UTF-8, NaN and infinities as ``null``, at any depth.

The C encoder is the fast path; a document it refuses — a NaN or an infinity (from YAML's
``.nan``/``.inf``; JSON has no spelling for them), or nesting past Python's recursion limit (a
deep definition's detailed view nests two levels per level) — is written by an iterative
encoder instead, so no response body depends on the recursion limit.

Example::

    dumps({"a": [1, float("nan")]})   # b'{"a":[1,null]}'
"""
from __future__ import annotations

import json
import math
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from ..esc.values import int_text

__all__ = ["dumps"]


def dumps(obj: Any) -> bytes:
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (ValueError, RecursionError):
        return _dumps_iteratively(obj).encode("utf-8")




def _dumps_iteratively(obj: Any) -> str:
    out: list[str] = []
    # Items to write, last first; a str item in `pending` is literal text (",", ":", "]", "}").
    pending: list[Any] = [(obj,)]
    while pending:
        item = pending.pop()
        if type(item) is str:
            out.append(item)
            continue
        (v,) = item
        if isinstance(v, dict):
            out.append("{")
            entries = list(v.items())
            pending.append("}")
            for i in range(len(entries) - 1, -1, -1):
                k, c = entries[i]
                pending.append((c,))
                pending.append(encode_basestring(str(k)) + ":")
                if i:
                    pending.append(",")
        elif isinstance(v, (list, tuple)):
            out.append("[")
            pending.append("]")
            for i in range(len(v) - 1, -1, -1):
                pending.append((v[i],))
                if i:
                    pending.append(",")
        elif isinstance(v, str):
            out.append(encode_basestring(v))
        elif v is None or v is True or v is False:
            out.append("null" if v is None else "true" if v else "false")
        elif isinstance(v, float):
            out.append(float.__repr__(v) if math.isfinite(v) else "null")
        elif isinstance(v, int):
            out.append(int_text(v))
        else:
            raise TypeError(f"Object of type {type(v).__name__} is not JSON serializable")
    return "".join(out)
