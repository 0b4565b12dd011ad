"""Opened values sent from an evaluation worker to the server process.

A :class:`~esc_pulumi.esc.Value` tree is not pickled as it is: pickling recurses (a deeply
nested document would exceed the recursion limit) and it would drag the whole parsed
definition along through ``defn``. So the value is flattened into a list of nodes in
post-order (children before parents, each distinct value once, so values shared by references
stay shared), and each node keeps of its definition only what the server still needs: the
range its trace shows.

Example::

    packed = pack_value(value)            # in the worker
    value = unpack_value(packed)          # in the server: same views, same lookups
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..esc.diagnostics import Range
from ..esc.values import Value

__all__ = ["Trace", "pack_value", "unpack_value"]


@dataclass(frozen=True, slots=True)
class Trace:
    """What stands for a value's definition once it left the engine: the views read only its
    ``range``."""

    range: Range


# A node: (kind, data, secret, unknown, final, range, base index or -1, own keys or None);
# kind "l" (data: child indices), "d" (data: (key, child index) pairs) or "s" (data: the scalar).
Node = tuple[str, Any, bool, bool, bool, "Range | None", int, "tuple[str, ...] | None"]


def pack_value(v: Value) -> list[Node]:
    """``v`` as a flat list of nodes; the last one is ``v``."""
    index: dict[int, int] = {}
    nodes: list[Node] = []
    keep: list[Value] = []  # holds every value met, so that no identity is reused meanwhile
    stack: list[tuple[Value, bool]] = [(v, False)]
    while stack:
        x, done = stack.pop()
        if id(x) in index:
            continue
        r = x.repr
        t = type(r)
        if not done:
            stack.append((x, True))
            if t is list:
                stack.extend((c, False) for c in r if id(c) not in index)
            elif t is dict:
                stack.extend((c, False) for c in r.values() if id(c) not in index)
            if x.base is not None and id(x.base) not in index:
                stack.append((x.base, False))
            continue
        if t is list:
            kind, data = "l", [index[id(c)] for c in r]
        elif t is dict:
            kind, data = "d", [(k, index[id(c)]) for k, c in r.items()]
        else:
            kind, data = "s", r
        defn = x.defn
        rng = defn.range if defn is not None else None
        base = index[id(x.base)] if x.base is not None else -1
        own = tuple(x.own) if x.own is not None else None
        nodes.append((kind, data, x.secret, x.unknown, x.final, rng, base, own))
        index[id(x)] = len(nodes) - 1
        keep.append(x)
    return nodes


def unpack_value(nodes: list[Node]) -> Value:
    """The value :func:`pack_value` flattened (definitions become :class:`Trace`)."""
    values: list[Value] = []
    traces: dict[int, Trace] = {}
    for kind, data, secret, unknown, final, rng, base, own in nodes:
        if kind == "l":
            r: Any = [values[i] for i in data]
        elif kind == "d":
            r = {k: values[i] for k, i in data}
        else:
            r = data
        defn = None
        if rng is not None:
            defn = traces.get(id(rng))
            if defn is None:
                defn = traces[id(rng)] = Trace(rng)
        values.append(Value(
            r, secret, unknown, final=final, defn=defn,  # type: ignore[arg-type]
            base=values[base] if base >= 0 else None, own=frozenset(own) if own is not None else None,
        ))
    return values[-1]
