"""The three spellings of the detailed model (the API's ``Environment``, spec section 8).

- The *model* as :mod:`.model` builds it and the golden data hold it: Go's JSON of the
  reference's structs (ranges without an environment leave it out, an index accessor has no
  ``key``, a placeholder's ``access`` is one object).
- :func:`to_go`: the same data as Go's encoder writes it (:class:`~.values.GoStruct` fields in
  the structs' order, maps sorted), for ``esc-pulumi open --format detailed``.
- :func:`to_api` / :func:`from_api`: what goes over HTTP. The generated clients (the Python
  ``pulumi-esc-sdk``) follow the OpenAPI document rather than the Go structs: every ``Range``
  needs its ``environment``, every ``Accessor`` a ``key``, and ``Expr.access`` is a list.
  ``from_api`` undoes what ``to_api`` added.

One typed walk serves all three, so the spellings cannot drift apart; it is iterative, since
models nest deeper than Python's recursion limit.

Example::

    go_json(to_go(model), indent="  ")   # what the esc CLI would print for it
"""
from __future__ import annotations

from typing import Any, Callable

from .schema import _ORDER as _SCHEMA_KEYWORDS
from .values import GoStruct

__all__ = ["to_go", "to_api", "from_api", "json_size", "STRUCTS"]

# Kinds: a struct name (below), ("map", kind), ("list", kind), "Schema", "Values" (a Value's
# ``value``: a map or list of Values, or a scalar), or None (plain JSON, kept as it is).
Kind = Any

# Each struct's JSON fields in the order of the reference's Go declarations.
STRUCTS: dict[str, tuple[tuple[str, Kind], ...]] = {
    "Environment": (("exprs", ("map", "Expr")), ("properties", ("map", "Value")), ("schema", "Schema"),
                    ("executionContext", "Context")),
    "Context": (("properties", ("map", "Value")), ("schema", "Schema")),
    "Expr": (("range", "Range"), ("schema", "Schema"), ("base", "Expr"), ("keyRanges", ("map", "Range")),
             ("literal", None), ("interpolate", ("list", "Interpolation")), ("symbol", ("list", "PropertyAccessor")),
             ("access", "Access"), ("list", ("list", "Expr")), ("object", ("map", "Expr")), ("builtin", "Builtin")),
    "Builtin": (("name", None), ("nameRange", "Range"), ("argSchema", "Schema"), ("arg", "Expr")),
    "Interpolation": (("text", None), ("value", ("list", "PropertyAccessor"))),
    "PropertyAccessor": (("index", None), ("key", None), ("range", "Range"), ("value", "Range")),
    "Accessor": (("index", None), ("key", None), ("range", "Range")),
    "Access": (("receiver", "Range"), ("accessors", ("list", "Accessor"))),
    "Value": (("value", "Values"), ("secret", None), ("unknown", None), ("trace", "Trace")),
    "Trace": (("def", "Range"), ("base", "Value")),
    "Range": (("environment", None), ("begin", "Pos"), ("end", "Pos")),
    "Pos": (("line", None), ("column", None), ("byte", None)),
}
_FIELD_KINDS = {name: dict(fields) for name, fields in STRUCTS.items()}

# A JSON schema's keywords whose values are schemas, maps of schemas or lists of schemas.
_SCHEMA_CHILDREN: dict[str, Kind] = {
    "$defs": ("map", "Schema"),
    "properties": ("map", "Schema"),
    "items": "Schema",
    "additionalProperties": "Schema",
    "allOf": ("list", "Schema"),
    "anyOf": ("list", "Schema"),
    "oneOf": ("list", "Schema"),
    "prefixItems": ("list", "Schema"),
}

# A schema's keywords in the order the reference writes them (see .schema).
_SCHEMA_ORDER = tuple(k for k, _ in _SCHEMA_KEYWORDS)
_SCHEMA_RANK = frozenset(_SCHEMA_ORDER)

Fix = Callable[[str, dict[str, Any]], dict[str, Any]]
# (kind, field names) -> the new object and, per name, the (container, slot) its value goes to.
Build = Callable[[str, list[str]], tuple[Any, list[tuple[Any, Any]]]]


def _walk(model: Any, kind: Kind, fix: Fix, build: Build, schemas: bool = True) -> Any:
    """``model`` rebuilt: every struct's fields (``fix(kind, fields)`` first) made into
    ``build(kind, names)``, in the structs' order, unknown fields after; maps and lists copied;
    plain JSON shared (the result is only read and serialised), and so are schemas unless
    ``schemas`` (the model shares one schema between the values that share it: copying would
    write it out as often as it is used)."""
    out: list[Any] = [None]
    stack: list[tuple[Any, Kind, Any, Any]] = [(model, kind, out, 0)]
    while stack:
        x, k, parent, slot = stack.pop()
        if k is None or x is None or (k == "Schema" and not schemas):
            parent[slot] = x
        elif type(k) is tuple:
            if k[0] == "map" and isinstance(x, dict):
                d: dict[str, Any] = {}
                parent[slot] = d
                for key, c in x.items():
                    d[key] = None
                    stack.append((c, k[1], d, key))
            elif k[0] == "list" and isinstance(x, list):
                lst: list[Any] = [None] * len(x)
                parent[slot] = lst
                stack.extend((c, k[1], lst, i) for i, c in enumerate(x))
            else:  # not the shape the model has: passed on as it is
                parent[slot] = x
        elif k == "Values":
            if isinstance(x, dict):
                stack.append((x, ("map", "Value"), parent, slot))
            elif isinstance(x, list):
                stack.append((x, ("list", "Value"), parent, slot))
            else:
                parent[slot] = x
        elif not isinstance(x, dict):  # a boolean schema, or not the model's shape
            parent[slot] = x
        elif k == "Schema":
            names = [n for n in _SCHEMA_ORDER if n in x] + [n for n in x if n not in _SCHEMA_RANK]
            parent[slot], slots = build(k, names)
            for (p, s), name in zip(slots, names):
                stack.append((x[name], _SCHEMA_CHILDREN.get(name), p, s))
        else:
            x = fix(k, x)
            kinds = _FIELD_KINDS[k]
            names = [n for n, _ in STRUCTS[k] if n in x] + [n for n in x if n not in kinds]
            parent[slot], slots = build(k, names)
            for (p, s), name in zip(slots, names):
                stack.append((x[name], kinds.get(name), p, s))
    return out[0]


def _build_dict(kind: str, names: list[str]) -> tuple[Any, list[tuple[Any, Any]]]:
    d: dict[str, Any] = dict.fromkeys(names)
    return d, [(d, n) for n in names]


def _build_struct(kind: str, names: list[str]) -> tuple[Any, list[tuple[Any, Any]]]:
    fields = [[n, None] for n in names]
    return GoStruct(fields), [(f, 1) for f in fields]  # type: ignore[arg-type]


def _go_fix(kind: str, x: dict[str, Any]) -> dict[str, Any]:
    """What Go's ``omitempty`` leaves out (an empty range environment, an index accessor's
    empty key) and a placeholder's ``access`` as one object, also for models that came over
    HTTP."""
    if kind == "Range" and x.get("environment") == "":
        x = {k: v for k, v in x.items() if k != "environment"}
    elif kind in ("Accessor", "PropertyAccessor") and "index" in x and x.get("key") == "":
        x = {k: v for k, v in x.items() if k != "key"}
    elif kind == "Expr" and isinstance(x.get("access"), list):
        x = dict(x)
        x["access"] = x["access"][0] if x["access"] else None
        if x["access"] is None:
            del x["access"]
    return x


def _api_fix(kind: str, x: dict[str, Any]) -> dict[str, Any]:
    if kind == "Range" and "environment" not in x:
        x = {"environment": "", **x}
    elif kind in ("Accessor", "PropertyAccessor") and "key" not in x:
        x = {**x, "key": ""}
    elif kind == "Expr" and isinstance(x.get("access"), dict):
        x = {**x, "access": [x["access"]]}
    return x


def to_go(model: dict[str, Any], kind: str = "Environment") -> Any:
    """``model`` (or, with ``kind``, one of its parts: ``"Value"``...) as Go's encoder sees it:
    :class:`GoStruct` trees for :func:`~.values.go_json`."""
    return _walk(model, kind, _go_fix, _build_struct)


def to_api(model: dict[str, Any], kind: str = "Environment") -> dict[str, Any]:
    """``model`` as the API sends it: every range with its ``environment`` (``""`` for none),
    every accessor with a ``key`` (``""`` for an index), ``access`` as a list of one."""
    return _walk(model, kind, _api_fix, _build_dict, schemas=False)


def from_api(doc: dict[str, Any], kind: str = "Environment") -> dict[str, Any]:
    """An Environment received over HTTP, spelt as the model is: what :func:`to_api` added
    taken away again (``from_api(to_api(m)) == m`` for the engine's models)."""
    return _walk(doc, kind, _go_fix, _build_dict, schemas=False)


def json_size(data: Any) -> int:
    """About how many characters ``data`` takes as compact JSON, each shared part counted as
    often as it is written, in time linear in the distinct parts (a model shares its schemas:
    a deeply nested definition's JSON grows with the square of its depth, its model does not).
    For callers that must bound what they are about to write."""
    if not isinstance(data, (dict, list)):
        return _scalar_size(data)
    containers = (dict, list)
    sizes: dict[int, int] = {}
    keep: list[Any] = []  # the parts measured, alive while their ids are keys
    stack: list[Any] = [data]
    while stack:
        x = stack[-1]
        if id(x) in sizes:  # reached twice before it was measured
            stack.pop()
            continue
        is_dict = isinstance(x, dict)
        # Its parts first; a part-less container (most: positions, ranges) in one visit.
        pending = [v for v in (x.values() if is_dict else x) if isinstance(v, containers) and id(v) not in sizes]
        if pending:
            stack.extend(pending)
            continue
        n = 1 + max(len(x), 1)  # brackets and commas
        for v in (x.values() if is_dict else x):
            if type(v) is str:
                n += len(v) + 2
            elif isinstance(v, containers):
                n += sizes[id(v)]
            else:
                n += _scalar_size(v)
        if is_dict:
            n += sum(len(k) + 3 for k in x)  # keys, quoted, and their colons
        sizes[id(x)] = n
        keep.append(x)
        stack.pop()
    return sizes[id(data)]


def _scalar_size(x: Any) -> int:
    if isinstance(x, str):
        return len(x) + 2
    if x is None or isinstance(x, bool):
        return 5
    if isinstance(x, int):  # its digits, without writing them (a huge one would be refused)
        return x.bit_length() * 30103 // 100000 + 2
    return len(repr(x))
