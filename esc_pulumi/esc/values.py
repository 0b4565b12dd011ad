"""Evaluated values: data with secret/unknown/final flags, and their plain-data conversions.

A :class:`Value` is never mutated once built, so values can be shared between expressions,
imports and threads. Containers do not inherit the flags of their contents (section 6 of the
spec); anything derived from a value containing a secret is secret.
"""
from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Iterable, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from .ast import Expr
    from .schema import Schema


class Value:
    """One evaluated value.

    ``repr`` is ``None``, ``bool``, ``int``, ``float``, ``str``, ``list[Value]`` or
    ``dict[str, Value]`` (objects include the keys merged in from imports; ``own`` then lists
    the keys the defining expression wrote itself). ``defn`` is the expression that produced
    the value and ``base`` the imported value it was laid over; both feed ``trace`` output.
    ``schema`` describes an unknown value (a provider output in check mode, say).

    Example::

        v = Value("hunter2", secret=True)
        to_plain(v, redact=True)   # '[secret]'
    """

    __slots__ = ("repr", "secret", "unknown", "final", "schema", "defn", "base", "own")

    def __init__(
        self,
        repr: Any = None,
        secret: bool = False,
        unknown: bool = False,
        *,
        final: bool = False,
        schema: "Schema | None" = None,
        defn: "Expr | None" = None,
        base: "Value | None" = None,
        own: "frozenset[str] | None" = None,
    ) -> None:
        self.repr = repr
        self.secret = secret
        self.unknown = unknown
        self.final = final
        self.schema = schema
        self.defn = defn
        self.base = base
        self.own = own

    def __repr__(self) -> str:
        # Never show a secret's plaintext.
        if self.unknown:
            body = "[unknown]"
        elif self.secret:
            body = "[secret]"
        elif isinstance(self.repr, dict):
            body = "{" + ", ".join(f"{k!r}: {v!r}" for k, v in self.repr.items()) + "}"
        else:
            body = repr(self.repr)
        return f"Value({body})"

    def with_(self, **changes: Any) -> "Value":
        """A shallow copy with some attributes replaced."""
        v = Value.__new__(Value)
        v.repr = self.repr
        v.secret = self.secret
        v.unknown = self.unknown
        v.final = self.final
        v.schema = self.schema
        v.defn = self.defn
        v.base = self.base
        v.own = self.own
        for name, value in changes.items():
            setattr(v, name, value)
        return v

    def own_items(self) -> Iterator[tuple[str, "Value"]]:
        """The object entries the defining expression wrote itself (not merged from imports)."""
        assert isinstance(self.repr, dict)
        if self.own is None:
            return iter(self.repr.items())
        return ((k, v) for k, v in self.repr.items() if k in self.own)


def walk(v: Value) -> Iterator[Value]:
    """Every value inside ``v`` (``v`` included), iteratively: documents may nest deeply."""
    stack = [v]
    while stack:
        x = stack.pop()
        yield x
        r = x.repr
        if not x.unknown:
            if type(r) is list:
                stack.extend(r)
            elif type(r) is dict:
                stack.extend(r.values())


def value_at(v: Value, keys: "Iterable[str | int]") -> Value | None:
    """The value under a path of object keys and array indices; ``None`` where there is none
    (a missing key, an index out of range, or an unknown on the way)."""
    for key in keys:
        r = v.repr
        if v.unknown:
            return None
        if type(r) is dict and type(key) is str and key in r:
            v = r[key]
        elif type(r) is list and type(key) is int and 0 <= key < len(r):
            v = r[key]
        else:
            return None
    return v


def contains_secret(v: Value) -> bool:
    return any(x.secret for x in walk(v))


def contains_unknown(v: Value) -> bool:
    return any(x.unknown for x in walk(v))


SECRET_TEXT = "[secret]"
UNKNOWN_TEXT = "[unknown]"


def to_plain(v: Value, redact: bool = False) -> Any:
    """The plain JSON-able data of a value.

    With ``redact``, secrets of any shape become ``"[secret]"``; unknowns are always
    ``"[unknown]"`` (a secret is checked before an unknown).
    """
    out: list[Any] = [None]
    # Containers still to fill, each with its (slot, value) pairs. Scalars are placed as they
    # are met, without a work item of their own: a work item per value made this walk a few
    # times slower, and its short-lived tuples set off garbage collections over the whole heap.
    todo: list[tuple[Any, Iterable[tuple[Any, Value]]]] = [(out, ((0, v),))]
    while todo:
        parent, items = todo.pop()
        for key, x in items:
            if redact and x.secret:
                parent[key] = SECRET_TEXT
            elif x.unknown:
                parent[key] = UNKNOWN_TEXT
            else:
                r = x.repr
                t = type(r)
                if t is dict:
                    # Keys in the value's order, whatever order the slots are filled in.
                    d: dict[str, Any] = dict.fromkeys(r)
                    parent[key] = d
                    todo.append((d, r.items()))
                elif t is list:
                    lst: list[Any] = [None] * len(r)
                    parent[key] = lst
                    todo.append((lst, enumerate(r)))
                else:
                    parent[key] = r
    return out[0]


def from_plain(data: Any, secret: bool = False, defn: "Expr | None" = None) -> Value:
    """Build a value tree from plain data (which may hold :class:`Value` trees, such as a
    provider's echoed inputs); ``secret`` marks every value in it secret.

    This is where the secrecy rule of provider outputs and secret derivations lives: a secret
    value makes every value inside it secret, deeply (spec sections 5 and 10). It applies to
    ``secret`` and to any secret container met inside the data, so that a reference to a part
    of it (``${out.field}``), which copies that part's own flag, can never reveal plaintext.
    """
    root: list[Value] = [None]  # type: ignore[list-item]
    stack: list[tuple[Any, Any, Any, bool]] = [(data, root, 0, secret)]
    while stack:
        x, parent, key, sec = stack.pop()
        if isinstance(x, Value):
            parent[key] = _seal(x, sec)
            continue
        t = type(x)
        if t is dict:
            # Keys in the data's order (children are filled in as they pop, in reverse): a
            # rotator's new state is written back to its definition in this order.
            d: dict[str, Value] = dict.fromkeys(str(k) for k in x)  # type: ignore[arg-type]
            parent[key] = Value(d, sec, defn=defn)
            for k, c in x.items():
                stack.append((c, d, str(k), sec))
        elif t is list or t is tuple:
            lst: list[Value] = [None] * len(x)  # type: ignore[list-item]
            parent[key] = Value(lst, sec, defn=defn)
            for i, c in enumerate(x):
                stack.append((c, lst, i, sec))
        else:
            parent[key] = Value(x, sec, defn=defn)
    return root[0]


def _seal(v: Value, secret: bool) -> Value:
    """``v`` (made secret if ``secret``) with every value under a secret one secret too.

    Values are immutable and shared, so nodes that must change are copied; a subtree that
    already obeys the rule is reused as is (the common case: no secret, or a deep one).
    """
    if not secret and not any(x.secret for x in walk(v)):
        return v
    if (secret or v.secret) and all(x.secret for x in walk(v)):
        return v if v.secret else v.with_(secret=True)
    root: list[Value] = [None]  # type: ignore[list-item]
    stack: list[tuple[Value, Any, Any, bool]] = [(v, root, 0, secret)]
    while stack:
        x, parent, key, inherited = stack.pop()
        sec = inherited or x.secret
        r = x.repr
        t = type(r)
        if x.unknown or (t is not dict and t is not list):
            parent[key] = x.with_(secret=True) if sec and not x.secret else x
            continue
        if t is dict:
            d: dict[str, Value] = dict.fromkeys(r)  # type: ignore[arg-type]  # keeps key order
            for k, c in r.items():
                stack.append((c, d, k, sec))
            parent[key] = x.with_(repr=d, secret=sec)
        else:
            lst: list[Value] = [None] * len(r)  # type: ignore[list-item]
            for i, c in enumerate(r):
                stack.append((c, lst, i, sec))
            parent[key] = x.with_(repr=lst, secret=sec)
    return root[0]


# -- Go-compatible text forms ------------------------------------------------------------------


class JSONNumber(float):
    """A number decoded by ``fn::fromJSON``: it keeps its JSON text (``1.50`` prints as ``1.50``)."""

    __slots__ = ("text",)

    def __new__(cls, text: str) -> "JSONNumber":
        n = super().__new__(cls, text)
        n.text = text
        return n


def int_text(n: int) -> str:
    """An integer in decimal, however long: Python's ``str`` refuses more than 4300 digits
    (``sys.get_int_max_str_digits``, a process-wide guard this library leaves alone), while the
    engine keeps integers of any length (``0x`` followed by 4000 ``f``)."""
    try:
        return int.__repr__(n)
    except ValueError:
        import decimal  # imported here: ~1 ms at every program start, for rare texts

        return str(decimal.Decimal(n))  # exact: an int converts to Decimal without that limit


def format_number(n: int | float) -> str:
    """Number text as the reference prints it: integers in decimal, floats as Go's shortest ``%g``."""
    text = getattr(n, "text", None)
    if text is not None:
        return text
    if type(n) is int:
        return int_text(n)
    f = float(n)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    digits, exp = _shortest_digits(f)
    sign = "-" if f < 0 else ""
    # Go's strconv 'g' with the shortest precision switches to an exponent at -4 and 6.
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{digits}"
    if len(digits) <= exp + 1:
        return f"{sign}{digits}{'0' * (exp + 1 - len(digits))}"
    return f"{sign}{digits[:exp + 1]}.{digits[exp + 1:]}"


def _shortest_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of ``abs(f)`` and the exponent of the first digit."""
    from decimal import Decimal  # imported here: ~1 ms at every program start, for floats only

    t = Decimal(repr(abs(f))).as_tuple()
    digits = "".join(map(str, t.digits)).lstrip("0")
    exp = t.exponent + len(t.digits) - 1 - (len(t.digits) - len("".join(map(str, t.digits)).lstrip("0")))
    return digits.rstrip("0") or "0", exp


def go_quote(s: str) -> str:
    """Go's ``strconv.Quote``: escapes quotes, backslashes and non-printable characters."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch.isprintable() and o != 0xFFFD or ch == " ":
            out.append(ch)
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\v":
            out.append("\\v")
        elif o < 0x80:
            out.append(f"\\x{o:02x}")
        elif o == 0xFFFD:
            out.append(ch)
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


class GoStruct:
    """A Go struct for :func:`go_json`: its fields keep their declaration order (maps sort)."""

    __slots__ = ("fields",)

    def __init__(self, fields: list[tuple[str, Any]]) -> None:
        self.fields = fields


def go_json_string(s: str) -> str:
    """A JSON string as Go writes it: ``<``, ``>``, ``&``, U+2028/2029 escaped, UTF-8 kept."""
    return (
        json.dumps(s, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _go_json_scalar(x: Any) -> str:
    if x is None:
        return "null"
    if x is True:
        return "true"
    if x is False:
        return "false"
    if isinstance(x, str):
        return go_json_string(x)
    if isinstance(x, (int, float)):
        return format_number(x)
    raise TypeError(f"cannot write a {type(x).__name__} as JSON")


def go_json(data: Any, indent: str | None = None) -> str:
    """``data`` as Go's encoding/json writes it: map keys sorted, :class:`GoStruct` fields in
    order, Go string escaping, numbers in their Go text. ``indent`` as ``SetIndent("", indent)``;
    compact without it. No final newline. Iterative: data may nest deeper than the recursion limit.

    Example::

        go_json({"b": "<x>", "a": [1, 2.5]})   # '{"a":[1,2.5],"b":"\\u003cx\\u003e"}'
    """
    out: list[str] = []
    colon = ": " if indent is not None else ":"
    stack: list[tuple[bool, Any]] = [(False, (data, 0))]
    while stack:
        is_text, item = stack.pop()
        if is_text:
            out.append(item)
            continue
        x, level = item
        is_struct = isinstance(x, GoStruct)
        if is_struct or isinstance(x, dict):
            pairs = x.fields if is_struct else sorted(x.items())
            opening, closing = "{", "}"
        elif isinstance(x, (list, tuple)):
            pairs = [(None, v) for v in x]
            opening, closing = "[", "]"
        else:
            out.append(_go_json_scalar(x))
            continue
        if not pairs:
            out.append(opening + closing)
            continue
        inner = "" if indent is None else "\n" + indent * (level + 1)
        work: list[tuple[bool, Any]] = []
        for i, (k, v) in enumerate(pairs):
            key = "" if k is None else go_json_string(str(k)) + colon
            work.append((True, (opening if i == 0 else ",") + inner + key))
            work.append((False, (v, level + 1)))
        work.append((True, ("" if indent is None else "\n" + indent * level) + closing))
        stack.extend(reversed(work))
    return "".join(out)


def to_string(v: Value, *, merged: bool = False, redact: bool = False) -> tuple[str, bool, bool]:
    """The ``fn::toString`` text of a value, with whether it is unknown and whether secret.

    Objects show only their own keys (not those merged from imports), as the reference does;
    ``merged`` shows them all and ``redact`` writes secrets as ``[secret]`` (the esc CLI's
    ``string`` output).
    """
    # Iterative post-order: each container's text is built from its children's texts.
    results: dict[int, tuple[str, bool, bool]] = {}
    stack: list[tuple[Value, bool]] = [(v, False)]
    while stack:
        x, done = stack.pop()
        if redact and x.secret:
            results[id(x)] = (SECRET_TEXT, x.unknown, True)
            continue
        if x.unknown:
            results[id(x)] = (UNKNOWN_TEXT, True, x.secret)
            continue
        r = x.repr
        t = type(r)
        if t is list or t is dict:
            items = None if t is list else (list(r.items()) if merged else list(x.own_items()))
            if not done:
                stack.append((x, True))
                stack.extend((c, False) for c in (r if items is None else (c for _, c in items)))
                continue
            unknown = secret = False
            parts = []
            if items is None:
                for c in r:
                    s, u, sec = results[id(c)]
                    parts.append(go_quote(s))
                    unknown, secret = unknown or u, secret or sec
            else:
                for k, c in sorted(items):
                    s, u, sec = results[id(c)]
                    parts.append(f"{go_quote(k)}={go_quote(s)}")
                    unknown, secret = unknown or u, secret or sec
            results[id(x)] = (",".join(parts), unknown, secret or x.secret)
        else:
            results[id(x)] = (scalar_text(r), False, x.secret)
    return results[id(v)]


def scalar_text(r: Any) -> str:
    if r is None:
        return ""
    if r is True:
        return "true"
    if r is False:
        return "false"
    if type(r) is str:
        return r
    return format_number(r)
