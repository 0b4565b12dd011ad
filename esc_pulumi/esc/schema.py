"""Types of values: the JSON-Schema subset of the ESC reference (pulumi/esc ``schema`` package).

A :class:`Schema` is used three ways:

1. to type-check builtin arguments and provider inputs (:func:`validate`);
2. to describe unknown values: a provider output in check mode is unknown but carries the
   provider's output schema, and :meth:`Schema.property` / :meth:`Schema.item` /
   :meth:`Schema.types` let the evaluator step into it;
3. in the detailed JSON output (:meth:`Schema.to_json`, :func:`of_value`).

Validation of a *known* value checks the value itself and reports each problem at the
innermost value at fault. Validation of an *unknown* value compares the schema it carries with
the expected one and reports what the reference engine reports in check mode: mismatched
``type``, failed ``anyOf``/``oneOf`` (always "at least one subschema must match": exactly-one
cannot be decided without the value), and properties that ``required``/``dependentRequired``
demand but the value's schema does not guarantee (``"bar: missing required property"``,
prefixed with the path inside the unknown value). Value constraints (``const``, ``enum``,
bounds, lengths, patterns, counts) are not compared for unknown values, as in the reference.

A ``false`` (never) schema reports nothing when it is validated against, which is what the
reference does: a tuple given one element too many (``items: false`` after ``prefixItems``)
passes, both for known values and for unknown ones. See :data:`NEVER_MESSAGE`.

Example::

    from esc_pulumi.esc import schema as S

    s = S.record({"foo": S.string()})
    s.to_json()     # {'properties': {'foo': {'type': 'string'}}, 'type': 'object', 'required': ['foo']}
    [e.message for e in S.validate(value, s)]   # e.g. ['missing required properties: foo']

Walking nested data never recurses in Python: known values, :func:`of_value`,
:meth:`Schema.from_json` and :meth:`Schema.to_json` use explicit work stacks, so documents
1,000 levels deep are fine. Python recursion is only used across ``anyOf``/``oneOf``/``allOf``
branches (bounded by the nesting of the schema, with a hard cap for recursive ``$ref``s).
"""
from __future__ import annotations

import copy
import json
import math
import numbers
import re
from typing import TYPE_CHECKING, Any, Iterable, Protocol

from ._fast import Record
from .values import go_json, go_quote

if TYPE_CHECKING:  # pragma: no cover
    # Imported where used: ``fractions`` and ``decimal`` cost ~3 ms at every program start, and
    # only multipleOf checks and a few number formats need them.
    from fractions import Fraction

__all__ = [
    "ALWAYS",
    "MISSING",
    "NEVER",
    "NEVER_MESSAGE",
    "Schema",
    "SchemaError",
    "ValueLike",
    "any_of",
    "array",
    "boolean",
    "map_of",
    "null",
    "number",
    "of_value",
    "one_of",
    "record",
    "string",
    "tuple_",
    "validate",
]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""The value of :attr:`Schema.const` when the schema has no ``const`` keyword."""

NEVER_MESSAGE: str | None = None  # e.g. "no value is allowed"
"""What a value checked against a ``false`` schema reports: nothing, like the reference
(a tuple with too many elements, a property outside ``additionalProperties: false`` and the
``never`` property of the ``schema`` test provider pass silently). Kept in one place in case
a reference case ever shows a message; it is read once, when this module builds
:data:`NEVER`, so change it here (not at run time)."""

ALL_TYPES = frozenset(("null", "boolean", "number", "string", "array", "object"))
_NO_TYPES: frozenset[str] = frozenset()
_MAX_REF_HOPS = 64  # consecutive $ref/allOf hops without descending into data
_MAX_BRANCH_DEPTH = 64  # nested anyOf/oneOf/allOf sub-validations


class ValueLike(Protocol):
    """What :func:`validate` and :func:`of_value` need from a value (the evaluator's ``Value``).

    ``repr`` is ``None | bool | int | float | str | list[ValueLike] | dict[str, ValueLike]``;
    ``unknown`` says the value is not known (``repr`` is then meaningless) and ``schema``
    describes an unknown value (``None``: anything).
    """

    repr: Any
    unknown: bool
    schema: "Schema | None"


SECRET = "[secret]"  # what a redacted message shows instead of the schema's data


class SchemaError(Record):
    """One schema violation: ``message`` is the exact diagnostic summary, ``value`` the
    innermost value at fault (the diagnostic goes at that value's definition).

    ``redacted`` is the same message quoting nothing taken from the schema (its consts, enums,
    patterns, bounds, property names, types: each becomes ``[secret]``), for a schema that holds
    a secret (``fn::validate`` with a schema built from one); ``None`` when ``message`` quotes
    nothing of the schema. Not part of equality: it is a rendering of the same violation.
    """

    __slots__ = ("value", "message", "redacted")
    _defaults = {"redacted": None}
    _uncompared = frozenset({"redacted"})
    value: Any
    message: str
    redacted: str | None


def _at(path: str, message: str) -> str:
    """``path: message`` (``path`` a place inside the schema), or the message alone at its root."""
    return f"{path}: {message}" if path else message


# -- the schema ------------------------------------------------------------------------------

# JSON keyword -> attribute, in the order the reference marshals them (Go struct order).
_ORDER = (
    ("$ref", "ref"),
    ("$defs", "defs"),
    ("allOf", "all_of"),
    ("anyOf", "any_of"),
    ("oneOf", "one_of"),
    ("prefixItems", "prefix_items"),
    ("items", "items"),
    ("properties", "properties"),
    ("additionalProperties", "additional_properties"),
    ("type", "type"),
    ("const", "const"),
    ("enum", "enum"),
    ("multipleOf", "multiple_of"),
    ("maximum", "maximum"),
    ("exclusiveMaximum", "exclusive_maximum"),
    ("minimum", "minimum"),
    ("exclusiveMinimum", "exclusive_minimum"),
    ("maxLength", "max_length"),
    ("minLength", "min_length"),
    ("pattern", "pattern"),
    ("maxItems", "max_items"),
    ("minItems", "min_items"),
    ("uniqueItems", None),
    ("maxProperties", "max_properties"),
    ("minProperties", "min_properties"),
    ("required", "required"),
    ("dependentRequired", "dependent_required"),
    ("rotateOnly", None),
    ("title", None),
    ("description", None),
    ("default", None),
    ("deprecated", None),
    ("readOnly", None),
    ("writeOnly", None),
    ("examples", None),
    ("secret", None),
)
_ANNOTATIONS = tuple(k for k, a in _ORDER if a is None)
_ANNOTATION_SET = frozenset(_ANNOTATIONS)
_NUMERIC = ("multiple_of", "maximum", "exclusive_maximum", "minimum", "exclusive_minimum")
_COUNTS = ("max_length", "min_length", "max_items", "min_items", "max_properties", "min_properties")
_KEY_TO_ATTR = {k: a for k, a in _ORDER if a is not None}
# Attributes whose presence constrains a value (items/additionalProperties count only when
# they are not no-ops; see _finish).
_CONSTRAINTS = (
    "ref", "all_of", "any_of", "one_of", "prefix_items", "properties", "enum",
    "pattern", "required", "dependent_required",
) + _NUMERIC + _COUNTS


class Schema:
    """An immutable JSON schema (the subset pulumi/esc supports).

    Build one with :meth:`from_json` or the constructors of this module (:func:`string`,
    :func:`record`, ...). Keywords are readable as attributes (``type``, ``properties``,
    ``required``...; ``None`` when absent, ``const`` is :data:`MISSING` when absent);
    annotations and unsupported keywords with :meth:`get`. :data:`ALWAYS` is ``true``
    (anything), :data:`NEVER` is ``false`` (nothing).
    """

    # Defaults live on the class; an instance's __dict__ only holds what it sets.
    always = False
    never = False
    ref: str | None = None
    defs: "dict[str, Schema] | None" = None
    all_of: "tuple[Schema, ...] | None" = None
    any_of: "tuple[Schema, ...] | None" = None
    one_of: "tuple[Schema, ...] | None" = None
    prefix_items: "tuple[Schema, ...] | None" = None
    items: "Schema | None" = None
    properties: "dict[str, Schema] | None" = None
    additional_properties: "Schema | None" = None
    type: "str | tuple[str, ...]" = ""
    const: Any = MISSING
    enum: tuple | None = None
    multiple_of: int | float | None = None
    maximum: int | float | None = None
    exclusive_maximum: int | float | None = None
    minimum: int | float | None = None
    exclusive_minimum: int | float | None = None
    max_length: int | None = None
    min_length: int | None = None
    pattern: str | None = None
    max_items: int | None = None
    min_items: int | None = None
    max_properties: int | None = None
    min_properties: int | None = None
    required: tuple[str, ...] | None = None
    dependent_required: "dict[str, tuple[str, ...]] | None" = None
    annotations: dict[str, Any] | None = None  # title, description, default, secret, ...
    extra: dict[str, Any] | None = None  # keywords this module does not know, kept verbatim

    _doc: "_Doc | None" = None
    _noop = False  # validating against this schema can never report anything
    _simple: str | None = None  # the schema is just {"type": <this>}

    __hash__ = None  # type: ignore[assignment]

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Schema is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Schema is immutable")

    # -- construction ----------------------------------------------------------------------

    @staticmethod
    def from_json(obj: "bool | dict[str, Any]") -> "Schema":
        """Parse a JSON schema (``True`` = :data:`ALWAYS`, ``False`` = :data:`NEVER`).

        ``$ref``s (``#/$defs/x`` and other local JSON pointers) resolve against ``obj``.
        Raises ``ValueError`` for a malformed schema.
        """
        return _from_json(obj, None)

    def to_json(self) -> "bool | dict[str, Any]":
        """The JSON form, keys in the reference's order; ``type`` is always present, as the
        reference prints it (``""`` for a schema without one, e.g. an ``anyOf``)."""
        if self.always:
            return True
        if self.never:
            return False
        pending: list[tuple[Any, Any, Schema]] = []
        out = self._shallow_json(pending)
        while pending:
            container, key, child = pending.pop()
            container[key] = child._shallow_json(pending)
        return out

    def _shallow_json(self, pending: list) -> "bool | dict[str, Any]":
        if self.always:
            return True
        if self.never:
            return False
        d = self.__dict__
        out: dict[str, Any] = {}
        for key, attr in _ORDER:
            if attr is None:
                ann = self.annotations
                if ann is not None and key in ann:
                    out[key] = _copy_json(ann[key])
                continue
            if attr == "type":
                t = self.type
                out["type"] = list(t) if isinstance(t, tuple) else t
                continue
            if attr not in d:
                continue
            v = d[attr]
            if attr in ("defs", "properties"):
                m: dict[str, Any] = {}
                for k, child in v.items():
                    m[k] = None
                    pending.append((m, k, child))
                out[key] = m
            elif attr in ("all_of", "any_of", "one_of", "prefix_items"):
                lst: list[Any] = [None] * len(v)
                for i, child in enumerate(v):
                    pending.append((lst, i, child))
                out[key] = lst
            elif attr in ("items", "additional_properties"):
                out[key] = None
                pending.append((out, key, v))
            elif attr == "required" or attr == "enum":
                out[key] = [_copy_json(x) for x in v]
            elif attr == "dependent_required":
                out[key] = {k: list(x) for k, x in v.items()}
            elif attr == "const":
                out[key] = _copy_json(v)
            else:
                out[key] = v
        if self.extra:
            for k, v in self.extra.items():
                out[k] = _copy_json(v)
        return out

    # -- queries ---------------------------------------------------------------------------

    def get(self, keyword: str, default: Any = None) -> Any:
        """The raw JSON value of an annotation or unsupported keyword (``title``,
        ``description``, ``default``, ``deprecated``, ``secret``, ``rotateOnly``...)."""
        ann = self.annotations
        if ann is not None and keyword in ann:
            return ann[keyword]
        ext = self.extra
        if ext is not None and keyword in ext:
            return ext[keyword]
        return default

    def types(self) -> frozenset[str]:
        """The JSON types a value of this schema can have (all six for :data:`ALWAYS`, none
        for :data:`NEVER`)."""
        t = self.__dict__.get("_types")
        if t is None:
            t = _types(self, 0)
            self.__dict__["_types"] = t
        return t

    def property(self, name: str) -> "Schema":
        """The schema of ``obj.name`` for a value ``obj`` of this schema: :data:`ALWAYS` when
        unconstrained, :data:`NEVER` when the value cannot be an object or cannot have it."""
        return _property(self, name, 0)

    def item(self, index: int) -> "Schema":
        """The schema of ``arr[index]`` (``prefixItems``, then ``items``)."""
        return _item(self, index, 0)

    def ref_target(self) -> "Schema | None":
        """The target of this schema's ``$ref`` (``None`` if it has none or it is unresolvable)."""
        if self.ref is None:
            return None
        return self._target()

    def _target(self) -> "Schema | None":
        d = self.__dict__
        t = d.get("_ref_target", MISSING)
        if t is MISSING:
            t = _resolve_ref(self._doc, self.ref)
            d["_ref_target"] = t
        return t

    def _regex(self) -> "re.Pattern[str] | None":
        d = self.__dict__
        rx = d.get("_rx", MISSING)
        if rx is MISSING:
            rx = _compile_pattern(self.pattern)
            d["_rx"] = rx
        return rx

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Schema):
            return NotImplemented
        if self.always or other.always or self.never or other.never:
            return self.always == other.always and self.never == other.never
        return self.to_json() == other.to_json()

    def __repr__(self) -> str:
        text = json.dumps(self.to_json())
        if len(text) > 200:
            text = text[:197] + "..."
        return f"Schema({text})"

    def __copy__(self) -> "Schema":
        return self

    def __deepcopy__(self, memo: dict) -> "Schema":
        return self


class _Doc:
    """The document a parsed schema came from: its ``$ref``s resolve against ``root``."""

    __slots__ = ("root", "raw", "cache")

    def __init__(self, raw: Any) -> None:
        self.root: Schema | None = None
        self.raw = raw
        self.cache: dict[str, Schema | None] = {}


def _new(fields: dict[str, Any]) -> Schema:
    s = object.__new__(Schema)
    s.__dict__.update(fields)
    return s


def _finish(s: Schema) -> None:
    """Compute the validation shortcuts from which keywords are present."""
    d = s.__dict__
    if d.get("always") or d.get("never"):
        d["_noop"] = True if d.get("always") else NEVER_MESSAGE is None
        return
    constrained = any(a in d for a in _CONSTRAINTS) or "const" in d
    for a in ("items", "additional_properties"):
        sub = d.get(a)
        if sub is not None and not sub._noop:
            constrained = True
    t = d.get("type", "")
    if not constrained:
        if not t:
            d["_noop"] = True
        elif t in ALL_TYPES:
            d["_simple"] = t


def _from_json(obj: Any, doc: "_Doc | None") -> Schema:
    if obj is True:
        return ALWAYS
    if obj is False:
        return NEVER
    if not isinstance(obj, dict):
        raise ValueError(f"a schema must be a boolean or an object, not {_json_type_name(obj)}")
    if doc is None:
        doc = _Doc(obj)
    root = object.__new__(Schema)
    if doc.root is None:
        doc.root = root
    pending: list[tuple[dict, Schema]] = [(obj, root)]
    while pending:
        j, target = pending.pop()
        _parse_into(j, target, doc, pending)
    return root


def _child(j: Any, doc: _Doc, pending: list, where: str) -> Schema:
    if j is True:
        return ALWAYS
    if j is False:
        return NEVER
    if not isinstance(j, dict):
        raise ValueError(f"{where}: a schema must be a boolean or an object, not {_json_type_name(j)}")
    s = object.__new__(Schema)
    pending.append((j, s))
    return s


def _parse_into(j: dict, target: Schema, doc: _Doc, pending: list) -> None:
    f: dict[str, Any] = {"_doc": doc}
    ann: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, v in j.items():
        attr = _KEY_TO_ATTR.get(key)
        if attr is None:
            if key in _ANNOTATION_SET:
                ann[key] = v
            else:
                extra[key] = v
            continue
        if attr == "ref":
            if not isinstance(v, str):
                raise ValueError("$ref must be a string")
            f[attr] = v
        elif attr in ("defs", "properties"):
            if not isinstance(v, dict):
                raise ValueError(f"{key} must be an object")
            f[attr] = {k: _child(x, doc, pending, f"{key}.{k}") for k, x in v.items()}
        elif attr in ("all_of", "any_of", "one_of", "prefix_items"):
            if not isinstance(v, list):
                raise ValueError(f"{key} must be an array")
            f[attr] = tuple(_child(x, doc, pending, f"{key}[{i}]") for i, x in enumerate(v))
        elif attr in ("items", "additional_properties"):
            if attr == "items" and isinstance(v, list):  # draft-07 tuple form
                f["prefix_items"] = tuple(_child(x, doc, pending, f"items[{i}]") for i, x in enumerate(v))
                continue
            f[attr] = _child(v, doc, pending, key)
        elif attr == "type":
            if isinstance(v, str):
                f[attr] = v
            elif isinstance(v, list) and all(isinstance(x, str) for x in v):
                f[attr] = tuple(v)
            else:
                raise ValueError("type must be a string or an array of strings")
        elif attr == "const":
            f[attr] = v
        elif attr == "enum":
            if not isinstance(v, list):
                raise ValueError("enum must be an array")
            f[attr] = tuple(v)
        elif attr in _NUMERIC:
            if type(v) is bool or not isinstance(v, (int, float)):
                raise ValueError(f"{key} must be a number")
            f[attr] = v
        elif attr in _COUNTS:
            if type(v) is bool or not isinstance(v, (int, float)) or v < 0 or v != int(v):
                raise ValueError(f"{key} must be a non-negative integer")
            f[attr] = v
        elif attr == "pattern":
            if not isinstance(v, str):
                raise ValueError("pattern must be a string")
            f[attr] = v
        elif attr == "required":
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ValueError("required must be an array of strings")
            f[attr] = tuple(v)
        elif attr == "dependent_required":
            if not isinstance(v, dict) or not all(
                isinstance(x, list) and all(isinstance(y, str) for y in x) for x in v.values()
            ):
                raise ValueError("dependentRequired must be an object of string arrays")
            f[attr] = {k: tuple(x) for k, x in v.items()}
    if ann:
        f["annotations"] = ann
    if extra:
        f["extra"] = extra
    target.__dict__.update(f)
    _finish(target)


# -- constructors ------------------------------------------------------------------------------


def _make(**fields: Any) -> Schema:
    s = _new(fields)
    _finish(s)
    return s


ALWAYS: Schema = _make(always=True)
NEVER: Schema = _make(never=True)
_STRING = _make(type="string")
_NUMBER = _make(type="number")
_BOOLEAN = _make(type="boolean")
_NULL = _make(type="null")
_ARRAY = _make(items=ALWAYS, type="array")
_OBJECT = _make(type="object")


def string() -> Schema:
    """``{"type": "string"}``"""
    return _STRING


def number() -> Schema:
    """``{"type": "number"}``"""
    return _NUMBER


def boolean() -> Schema:
    """``{"type": "boolean"}``"""
    return _BOOLEAN


def null() -> Schema:
    """``{"type": "null"}``"""
    return _NULL


def array(items: Schema = ALWAYS) -> Schema:
    """``{"items": items, "type": "array"}``"""
    if items is ALWAYS:
        return _ARRAY
    return _make(items=items, type="array")


def tuple_(*prefix: Schema) -> Schema:
    """``{"prefixItems": [...], "items": false, "type": "array"}``"""
    if prefix:
        return _make(prefix_items=tuple(prefix), items=NEVER, type="array")
    return _make(items=NEVER, type="array")


def record(
    properties: dict[str, Schema],
    required: list[str] | None = None,
    additional: Schema | None = None,
) -> Schema:
    """``{"properties": ..., "type": "object", "required": [...]}``.

    ``required=None`` requires every property (sorted), like the reference's ``Record``;
    pass ``[]`` for none.
    """
    fields: dict[str, Any] = {"type": "object"}
    if properties:
        fields["properties"] = dict(properties)
    if additional is not None:
        fields["additional_properties"] = additional
    req = sorted(properties) if required is None else list(required)
    if req:
        fields["required"] = tuple(req)
    return _make(**fields)


def map_of(additional: Schema) -> Schema:
    """``{"additionalProperties": additional, "type": "object"}``"""
    return _make(additional_properties=additional, type="object")


def any_of(*s: Schema) -> Schema:
    """``{"anyOf": [...], "type": ""}``"""
    return _make(any_of=tuple(s))


def one_of(*s: Schema) -> Schema:
    """``{"oneOf": [...], "type": ""}``"""
    return _make(one_of=tuple(s))


def _union(schemas: Iterable[Schema]) -> Schema:
    out: list[Schema] = []
    for s in schemas:
        if s.always:
            return ALWAYS
        if s.never or any(s is o for o in out):
            continue
        out.append(s)
    if not out:
        return NEVER
    if len(out) == 1:
        return out[0]
    return any_of(*out)


def of_value(v: ValueLike) -> Schema:
    """The schema the reference gives a known value: scalars with ``const`` (``null`` just
    ``{"type": "null"}``), arrays as closed tuples, objects as records requiring every key.
    Unknown values (also nested ones) give the schema they carry."""
    leaf = _leaf_schema(v)
    if leaf is not None:
        return leaf
    # Post-order walk with an explicit stack: [value, children iterator, collected, keys].
    stack: list[list[Any]] = [_of_frame(v)]
    result: Schema | None = None
    while stack:
        frame = stack[-1]
        child = next(frame[1], MISSING)
        if child is MISSING:
            stack.pop()
            s = _build_container(frame)
            if stack:
                stack[-1][2].append(s)
            else:
                result = s
            continue
        ls = _leaf_schema(child)
        if ls is not None:
            frame[2].append(ls)
        else:
            stack.append(_of_frame(child))
    assert result is not None
    return result


def _leaf_schema(v: Any) -> Schema | None:
    if v.unknown:
        s = v.schema
        return ALWAYS if s is None else s
    r = v.repr
    tr = type(r)
    if tr is str:
        return _new({"type": "string", "const": r})
    if tr is bool:
        return _new({"type": "boolean", "const": r})
    if tr is int or tr is float:
        return _new({"type": "number", "const": r})
    if r is None:
        return _NULL
    if tr is list or tr is dict:
        if not r:
            return _new({"items": NEVER, "type": "array"}) if tr is list else _OBJECT
        return None
    t = _slow_type_name(r)
    if t == "string":
        return _new({"type": "string", "const": str(r)})
    if t == "number":
        return _new({"type": "number", "const": r})
    if t == "array" and not r:
        return _new({"items": NEVER, "type": "array"})
    if t == "object" and not r:
        return _OBJECT
    if t in ("array", "object"):
        return None
    return ALWAYS


def _of_frame(v: Any) -> list[Any]:
    r = v.repr
    if isinstance(r, dict):
        keys = sorted(r)
        return [v, (r[k] for k in keys), [], keys]
    return [v, iter(r), [], None]


def _build_container(frame: list[Any]) -> Schema:
    keys = frame[3]
    children = frame[2]
    if keys is None:
        return _new({"prefix_items": tuple(children), "items": NEVER, "type": "array"})
    return _new({"properties": dict(zip(keys, children)), "type": "object", "required": tuple(keys)})


# -- structural queries ------------------------------------------------------------------------


def _own_types(s: Schema) -> set[str]:
    res = set(ALL_TYPES)
    t = s.type
    if t:
        names = (t,) if isinstance(t, str) else t
        res &= {"number" if n == "integer" else n for n in names}
    if s.const is not MISSING:
        res &= {_json_type_name(s.const)}
    if s.enum is not None:
        res &= {_json_type_name(x) for x in s.enum}
    return res


def _types(s: Schema, depth: int) -> frozenset[str]:
    if s.always:
        return ALL_TYPES
    if s.never:
        return _NO_TYPES
    if depth > _MAX_BRANCH_DEPTH:
        return ALL_TYPES
    res = _own_types(s)
    if s.ref is not None:
        tgt = s._target()
        if tgt is not None:
            res &= _types(tgt, depth + 1)
    if s.all_of:
        for sub in s.all_of:
            res &= _types(sub, depth + 1)
    for alts in (s.any_of, s.one_of):
        if alts is not None:
            u: set[str] = set()
            for sub in alts:
                u |= _types(sub, depth + 1)
            res &= u
    return frozenset(res)


def _combine(own: Schema, others: list[Schema]) -> Schema:
    """The most specific of several schemas that all apply (no real intersection)."""
    for o in others:
        if o.never:
            return NEVER
    if not own.always:
        return own
    for o in others:
        if not o.always:
            return o
    return ALWAYS


def _property(s: Schema, name: str, depth: int) -> Schema:
    if s.always:
        return ALWAYS
    if s.never or "object" not in s.types():
        return NEVER
    if depth > _MAX_BRANCH_DEPTH:
        return ALWAYS
    props = s.properties
    if props is not None and name in props:
        own = props[name]
    elif s.additional_properties is not None:
        own = s.additional_properties
    else:
        own = ALWAYS
    others: list[Schema] = []
    if s.ref is not None:
        tgt = s._target()
        if tgt is not None:
            others.append(_property(tgt, name, depth + 1))
    if s.all_of:
        others.extend(_property(sub, name, depth + 1) for sub in s.all_of)
    for alts in (s.any_of, s.one_of):
        if alts:
            others.append(_union(_property(a, name, depth + 1) for a in alts if "object" in a.types()))
    return _combine(own, others) if others else own


def _item(s: Schema, index: int, depth: int) -> Schema:
    if s.always:
        return ALWAYS
    if s.never or index < 0 or "array" not in s.types():
        return NEVER
    if depth > _MAX_BRANCH_DEPTH:
        return ALWAYS
    prefix = s.prefix_items
    if prefix is not None and index < len(prefix):
        own = prefix[index]
    elif s.items is not None:
        own = s.items
    else:
        own = ALWAYS
    others: list[Schema] = []
    if s.ref is not None:
        tgt = s._target()
        if tgt is not None:
            others.append(_item(tgt, index, depth + 1))
    if s.all_of:
        others.extend(_item(sub, index, depth + 1) for sub in s.all_of)
    for alts in (s.any_of, s.one_of):
        if alts:
            others.append(_union(_item(a, index, depth + 1) for a in alts if "array" in a.types()))
    return _combine(own, others) if others else own


def _unescape_pointer(seg: str) -> str:
    from urllib.parse import unquote

    return unquote(seg).replace("~1", "/").replace("~0", "~")


def _resolve_ref(doc: _Doc | None, ref: str | None) -> Schema | None:
    if doc is None or doc.root is None or ref is None or not ref.startswith("#"):
        return None
    if ref in doc.cache:
        return doc.cache[ref]
    doc.cache[ref] = None  # guards against a $ref to itself while resolving
    pointer = ref[1:]
    result: Schema | None = None
    if pointer == "" or pointer.startswith("/"):
        segs = [_unescape_pointer(x) for x in pointer.split("/")[1:]] if pointer else []
        cur: Any = doc.root
        raw = False
        i = 0
        try:
            while i < len(segs) and cur is not None:
                seg = segs[i]
                i += 1
                if raw:
                    cur = cur[int(seg)] if isinstance(cur, list) else cur[seg]
                    continue
                attr = _KEY_TO_ATTR.get(seg)
                d = cur.__dict__
                if attr in ("defs", "properties"):
                    cur = d[attr][segs[i]]
                    i += 1
                elif attr in ("all_of", "any_of", "one_of", "prefix_items"):
                    cur = d[attr][int(segs[i])]
                    i += 1
                elif attr in ("items", "additional_properties"):
                    cur = d[attr]
                elif cur.extra is not None and seg in cur.extra:
                    cur = cur.extra[seg]
                    raw = True
                else:
                    cur = None
            if raw:
                cur = _from_json(cur, doc)
            result = cur
        except (KeyError, IndexError, ValueError, TypeError):
            result = None
    doc.cache[ref] = result
    return result


# -- validation ---------------------------------------------------------------------------------

_TYPE_NAMES: dict[type, str] = {
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
    type(None): "null",
    list: "array",
    dict: "object",
}


def _slow_type_name(r: Any) -> str:
    if r is None:
        return "null"
    if isinstance(r, bool):
        return "boolean"
    if isinstance(r, numbers.Number):
        return "number"
    if isinstance(r, str):
        return "string"
    if isinstance(r, (list, tuple)):
        return "array"
    if isinstance(r, dict):
        return "object"
    return "unknown"


def _json_type_name(r: Any) -> str:
    return _TYPE_NAMES.get(type(r)) or _slow_type_name(r)


def validate(value: ValueLike, schema: Schema) -> list[SchemaError]:
    """Check ``value`` against ``schema``; the violations, each at the innermost value at fault.

    Known values are checked themselves (recursing into lists and dicts); unknown values by
    comparing the schema they carry with ``schema`` (see the module docstring).
    """
    if schema is None or schema._noop:
        return []
    if not value.unknown:
        st = schema._simple
        if st is not None and _TYPE_NAMES.get(type(value.repr)) == st:
            return []
    errs: list[SchemaError] = []
    _validate(value, schema, errs, 0)
    return errs


def _validate(value: Any, schema: Schema, errs: list[SchemaError], depth: int) -> None:
    stack: list[tuple[Any, Schema, int]] = [(value, schema, 0)]
    push = stack.append
    pop = stack.pop
    type_names = _TYPE_NAMES
    while stack:
        v, s, hops = pop()
        if s._noop:
            continue
        if s.never:  # only reached when NEVER_MESSAGE is set
            errs.append(SchemaError(v, NEVER_MESSAGE or ""))
            continue
        if v.unknown:
            _compat(v.schema or ALWAYS, s, v, "", errs, depth)
            continue
        r = v.repr
        t = type_names.get(type(r)) or _slow_type_name(r)
        st = s._simple
        if st is not None:
            if st != t:
                errs.append(SchemaError(v, f"expected {st}, got {t}", f"expected {SECRET}, got {t}"))
            continue

        # Applicators on the same value.
        if s.ref is not None:
            tgt = s._target()
            if tgt is not None and hops < _MAX_REF_HOPS:
                push((v, tgt, hops + 1))
        if s.all_of is not None and hops < _MAX_REF_HOPS:
            for sub in s.all_of:
                push((v, sub, hops + 1))
        if s.any_of is not None:
            _any_of(v, s.any_of, errs, depth)
        if s.one_of is not None:
            _one_of(v, s.one_of, errs, depth)

        # Keywords about the value itself.
        et = s.type
        if et and not _type_matches(t, r, et):
            errs.append(SchemaError(v, f"expected {_type_label(et)}, got {t}", f"expected {SECRET}, got {t}"))
        if s.const is not MISSING and not _equals(v, s.const):
            errs.append(SchemaError(v, "expected " + go_json(s.const), f"expected {SECRET}"))
        if s.enum is not None and not any(_equals(v, e) for e in s.enum):
            errs.append(SchemaError(v, "expected one of " + go_json(list(s.enum)), f"expected one of {SECRET}"))

        if t == "number":
            _check_number(v, r, s, errs)
        elif t == "string":
            if s.min_length is not None and len(r) < s.min_length:
                errs.append(SchemaError(v, f"expected a string of at least length {_fmt_num(s.min_length)}",
                                        f"expected a string of at least length {SECRET}"))
            if s.max_length is not None and len(r) > s.max_length:
                errs.append(SchemaError(v, f"expected a string of at most length {_fmt_num(s.max_length)}",
                                        f"expected a string of at most length {SECRET}"))
            if s.pattern is not None:
                rx = s._regex()
                if rx is not None and rx.search(r) is None:
                    errs.append(SchemaError(v, f"string must match the pattern {go_quote(s.pattern)}",
                                            f"string must match the pattern {SECRET}"))
        elif t == "array":
            n = len(r)
            if s.min_items is not None and n < s.min_items:
                errs.append(SchemaError(v, f"expected an array with at least {_fmt_num(s.min_items)} items",
                                        f"expected an array with at least {SECRET} items"))
            if s.max_items is not None and n > s.max_items:
                errs.append(SchemaError(v, f"expected an array with at most {_fmt_num(s.max_items)} items",
                                        f"expected an array with at most {SECRET} items"))
            prefix = s.prefix_items
            start = 0
            if prefix:
                start = min(n, len(prefix))
                for i in range(start):
                    sub = prefix[i]
                    if not sub._noop:
                        push((r[i], sub, 0))
            it = s.items
            if it is not None and not it._noop and start < n:
                ist = it._simple
                for i in range(start, n):
                    e = r[i]
                    if ist is not None and not e.unknown:
                        er = e.repr
                        et2 = type_names.get(type(er)) or _slow_type_name(er)
                        if et2 != ist:
                            errs.append(SchemaError(e, f"expected {ist}, got {et2}", f"expected {SECRET}, got {et2}"))
                    else:
                        push((e, it, 0))
        elif t == "object":
            n = len(r)
            if s.min_properties is not None and n < s.min_properties:
                errs.append(SchemaError(v, f"expected an object with at least {_fmt_num(s.min_properties)} properties",
                                        f"expected an object with at least {SECRET} properties"))
            if s.max_properties is not None and n > s.max_properties:
                errs.append(SchemaError(v, f"expected an object with at most {_fmt_num(s.max_properties)} properties",
                                        f"expected an object with at most {SECRET} properties"))
            if s.required:
                missing = [k for k in s.required if k not in r]
                if missing:
                    errs.append(SchemaError(v, "missing required properties: " + ", ".join(missing),
                                            f"missing required properties: {SECRET}"))
            if s.dependent_required:
                for k, deps in s.dependent_required.items():
                    if k in r:
                        missing = [d for d in deps if d not in r]
                        if missing:
                            errs.append(SchemaError(v, "missing required properties: " + ", ".join(missing),
                                                    f"missing required properties: {SECRET}"))
            props = s.properties
            ap = s.additional_properties
            if ap is not None and ap._noop:
                ap = None
            if props or ap is not None:
                for k, e in r.items():
                    sub = props.get(k) if props else None
                    if sub is None:
                        sub = ap
                    if sub is not None and not sub._noop:
                        push((e, sub, 0))


def _any_of(v: Any, alts: tuple[Schema, ...], errs: list[SchemaError], depth: int) -> None:
    if depth >= _MAX_BRANCH_DEPTH:
        return
    collected: list[SchemaError] = []
    for sub in alts:
        e: list[SchemaError] = []
        _validate(v, sub, e, depth + 1)
        if not e:
            return
        collected.extend(e)
    errs.extend(collected)
    errs.append(SchemaError(v, "at least one subschema must match"))


def _one_of(v: Any, alts: tuple[Schema, ...], errs: list[SchemaError], depth: int) -> None:
    if depth >= _MAX_BRANCH_DEPTH:
        return
    collected: list[SchemaError] = []
    matched = 0
    for sub in alts:
        e: list[SchemaError] = []
        _validate(v, sub, e, depth + 1)
        if e:
            collected.extend(e)
        else:
            matched += 1
    if matched != 1:
        errs.extend(collected)
        errs.append(SchemaError(v, "exactly one subschema must match"))


def _type_matches(t: str, r: Any, expected: "str | tuple[str, ...]") -> bool:
    names = (expected,) if isinstance(expected, str) else expected
    for n in names:
        if n == t:
            return True
        if n == "integer" and t == "number" and _is_integral(r):
            return True
        if n not in ALL_TYPES and n != "integer":
            return True  # an unknown type name constrains nothing
    return False


def _type_label(expected: "str | tuple[str, ...]") -> str:
    return expected if isinstance(expected, str) else " or ".join(expected)


def _is_integral(r: Any) -> bool:
    try:
        return math.isfinite(r) and r == int(r)
    except (TypeError, ValueError, OverflowError):
        return False


def _check_number(v: Any, r: Any, s: Schema, errs: list[SchemaError]) -> None:
    m = s.multiple_of
    if m is not None and not _is_multiple(r, m):
        errs.append(SchemaError(v, f"expected a multiple of {_fmt_num(m)}", f"expected a multiple of {SECRET}"))
    x = s.minimum
    if x is not None and r < x:
        errs.append(SchemaError(v, f"expected a number greater than or equal to {_fmt_num(x)}",
                                f"expected a number greater than or equal to {SECRET}"))
    x = s.exclusive_minimum
    if x is not None and r <= x:
        errs.append(SchemaError(v, f"expected a number greater than {_fmt_num(x)}",
                                f"expected a number greater than {SECRET}"))
    x = s.maximum
    if x is not None and r > x:
        # Sic: the reference has no space before the number.
        errs.append(SchemaError(v, f"expected a number less than or equal to{_fmt_num(x)}",
                                f"expected a number less than or equal to {SECRET}"))
    x = s.exclusive_maximum
    if x is not None and r >= x:
        errs.append(SchemaError(v, f"expected a number less than {_fmt_num(x)}",
                                f"expected a number less than {SECRET}"))


def _fraction(x: Any) -> Fraction | None:
    from fractions import Fraction

    if isinstance(x, int):
        return Fraction(x)
    try:
        if isinstance(x, float):
            if not math.isfinite(x):
                return None
            return Fraction(repr(x))  # the decimal text: 0.3 is a multiple of 0.1
        return Fraction(str(x))
    except (ValueError, TypeError):
        return None


def _is_multiple(r: Any, m: Any) -> bool:
    fr, fm = _fraction(r), _fraction(m)
    if fr is None or fm is None or fm == 0:
        return True
    return (fr / fm).denominator == 1


def _compile_pattern(p: str | None) -> "re.Pattern[str] | None":
    if p is None:
        return None
    # Go RE2 → Python: \z is \Z.
    py = re.sub(r"(?<!\\)((?:\\\\)*)\\z", r"\1\\Z", p)
    try:
        return re.compile(py)
    except re.error:
        return None


def _equals(v: Any, c: Any) -> bool:
    """Whether the value ``v`` (a ValueLike tree) equals the JSON value ``c``. A nested
    unknown could be anything, so it is taken to be equal."""
    stack = [(v, c)]
    while stack:
        x, y = stack.pop()
        if x.unknown:
            continue
        r = x.repr
        tr = _json_type_name(r)
        ty = _json_type_name(y)
        if tr != ty:
            return False
        if tr == "array":
            if len(r) != len(y):
                return False
            stack.extend(zip(r, y))
        elif tr == "object":
            if len(r) != len(y):
                return False
            for k, e in r.items():
                if k not in y:
                    return False
                stack.append((e, y[k]))
        elif r != y:
            return False
    return True


# -- unknown values: schema against schema ------------------------------------------------------


def _definite_type(s: Schema) -> str | None:
    t = s.type
    if isinstance(t, str) and t in ALL_TYPES or t == "integer":
        return t
    if s.const is not MISSING:
        return _json_type_name(s.const)
    return None


def _compat_type(vt: str, et: "str | tuple[str, ...]") -> bool:
    names = (et,) if isinstance(et, str) else et
    for n in names:
        if n == vt or (n == "number" and vt == "integer") or (n == "integer" and vt == "number"):
            return True
        if n not in ALL_TYPES and n != "integer":
            return True
    return False


def _join_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENT.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _compat(
    vs: Schema, es: Schema, x: Any, path: str, errs: list[SchemaError], depth: int,
) -> None:
    """Report what can be told about an unknown value ``x`` of schema ``vs`` against ``es``."""
    # Frames: (value's schema, expected schema, path inside the value, $ref hops, ancestors).
    stack: list[tuple[Schema, Schema, str, int, frozenset]] = [(vs, es, path, 0, frozenset())]
    while stack:
        V, E, p, hops, anc = stack.pop()
        if E._noop:
            continue
        n = 0
        while V.ref is not None and n < _MAX_REF_HOPS:
            tgt = V._target()
            V = ALWAYS if tgt is None else tgt
            n += 1
        if V.always or V.never or V._noop:
            continue
        if E.never:  # only reached when NEVER_MESSAGE is set
            errs.append(SchemaError(x, _at(p, NEVER_MESSAGE or ""), _at(p and SECRET, NEVER_MESSAGE or "")))
            continue
        key = (id(V), id(E))
        if key in anc:
            continue
        anc = anc | {key}
        valts = V.any_of or V.one_of
        if valts:
            # The value has one of several shapes: fine if any of them fits.
            if depth >= _MAX_BRANCH_DEPTH:
                continue
            collected: list[SchemaError] = []
            for a in valts:
                e: list[SchemaError] = []
                _compat(a, E, x, p, e, depth + 1)
                if not e:
                    break
                collected.extend(e)
            else:
                seen: set[str] = set()
                for err in collected:
                    if err.message not in seen:
                        seen.add(err.message)
                        errs.append(err)
            continue
        pre = f"{p}: " if p else ""
        if E.ref is not None:
            tgt = E._target()
            if tgt is not None and hops < _MAX_REF_HOPS:
                stack.append((V, tgt, p, hops + 1, anc))
        if E.all_of is not None and hops < _MAX_REF_HOPS:
            for sub in E.all_of:
                stack.append((V, sub, p, hops + 1, anc))
        for alts in (E.any_of, E.one_of):
            if alts is None or depth >= _MAX_BRANCH_DEPTH:
                continue
            collected = []
            for sub in alts:
                e = []
                _compat(V, sub, x, p, e, depth + 1)
                if not e:
                    break
                collected.extend(e)
            else:
                # Exactly-one cannot be decided without the value: "at least one" for oneOf too.
                errs.extend(collected)
                errs.append(SchemaError(x, pre + "at least one subschema must match",
                                        _at(p and SECRET, "at least one subschema must match")))
        vt = _definite_type(V)
        if vt is None:
            continue
        et = E.type
        if et and not _compat_type(vt, et):
            errs.append(SchemaError(x, f"{pre}expected {_type_label(et)}, got {vt}",
                                    _at(p and SECRET, f"expected {SECRET}, got {vt}")))
            continue
        if vt == "object":
            vreq = V.required or ()
            if E.required:
                for r in E.required:
                    if r not in vreq:
                        errs.append(SchemaError(x, f"{_join_path(p, r)}: missing required property",
                                                f"{SECRET}: missing required property"))
            if E.dependent_required:
                for k, deps in E.dependent_required.items():
                    if k in vreq:
                        for d in deps:
                            if d not in vreq:
                                errs.append(SchemaError(x, f"{_join_path(p, d)}: missing required property",
                                                        f"{SECRET}: missing required property"))
            if E.properties:
                for name, sub in E.properties.items():
                    if not sub._noop:
                        stack.append((V.property(name), sub, _join_path(p, name), 0, anc))
        elif vt == "array" and E.prefix_items:
            for i, sub in enumerate(E.prefix_items):
                if not sub._noop:
                    stack.append((V.item(i), sub, _join_path(p, i), 0, anc))


# -- formatting -------------------------------------------------------------------------------


def _copy_json(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        return copy.deepcopy(v)
    return v


def _go_float(f: float) -> str:
    """A float as Go's encoding/json prints it."""
    if not math.isfinite(f):
        return "NaN" if f != f else ("+Inf" if f > 0 else "-Inf")
    a = abs(f)
    if a < 1e21 and f == int(f):
        return ("-0" if math.copysign(1.0, f) < 0 and f == 0 else str(int(f)))
    if a != 0 and (a < 1e-6 or a >= 1e21):
        # Go cleans up e-09 to e-9 (but keeps e+21).
        return re.sub(r"e-0([0-9])$", r"e-\1", repr(f))
    from decimal import Decimal

    return format(Decimal(repr(f)), "f")


def _fmt_num(n: Any) -> str:
    if type(n) is bool:
        return "true" if n else "false"
    if isinstance(n, int):
        return str(n)
    if isinstance(n, float):
        return _go_float(n)
    return str(n)




