"""The detailed model of an evaluated environment: the API's ``Environment`` (spec sections 8
and 10) with ``exprs`` (the root definition's expression tree with ranges, schemas, builtin
names and what each accessor reached), ``properties`` (the detailed values with their traces),
``schema`` (the environment's inferred JSON schema) and ``executionContext``.

Built only on request (:meth:`.eval.Evaluation.detailed`) from what the evaluation kept: the
value of every expression it evaluated and the values imported beneath them. Every walk is
iterative: definitions may nest deeper than Python's recursion limit.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Collection, Mapping

from . import ast as A
from . import schema as S
from ._gc import collector_paused
from .diagnostics import Pos, Range
from .values import SECRET_TEXT, Value
from .views import detailed, range_json

from .eval import Placeholder

if TYPE_CHECKING:  # pragma: no cover
    from .eval import _EnvEval

__all__ = ["environment_model", "redact_model", "secret_texts", "value_schema"]

_ZERO = Pos(0, 0, 0)


def _zero(environment: str) -> Range:
    return Range(environment, _ZERO, _ZERO)


# -- schemas ------------------------------------------------------------------------------------


def value_schema(v: Value, memo: dict[int, tuple[Value, S.Schema]] | None = None) -> S.Schema:
    """The schema the reference infers for a value: the one it carries (an unknown's, or a
    builtin's result type such as ``fn::join``'s string), else consts for scalars, closed
    tuples for arrays and records requiring every key for objects.

    ``memo`` (by identity) shares the work between values that share parts, as references'
    values do; it holds the values too, so that no identity is reused while it lives."""
    if memo is None:
        memo = {}
    out: list[Any] = [None]
    # (value, container, slot) to fill, or a finishing marker (builder, container, slot).
    stack: list[tuple[Any, Any, Any, bool]] = [(v, out, 0, False)]
    while stack:
        x, parent, key, finishing = stack.pop()
        if finishing:
            value, build = x
            parent[key] = sch = build()
            memo[id(value)] = (value, sch)
            continue
        hit = memo.get(id(x))
        if hit is not None:
            parent[key] = hit[1]
            continue
        if x.schema is not None:
            parent[key] = x.schema
            continue
        if x.unknown:
            parent[key] = S.ALWAYS
            continue
        r = x.repr
        if type(r) is dict and r:
            keys = sorted(r)
            children: list[Any] = [None] * len(keys)
            stack.append(((x, _record_builder(keys, children)), parent, key, True))
            stack.extend((r[k], children, i, False) for i, k in enumerate(keys))
        elif type(r) is list and r:
            items: list[Any] = [None] * len(r)
            stack.append(((x, _tuple_builder(items)), parent, key, True))
            stack.extend((c, items, i, False) for i, c in enumerate(r))
        elif x.secret and type(x.defn) is not A.StringExpr:
            # A secret that is not the definition's own text (decrypted, from a provider,
            # derived): its type only, never its value as a const.
            parent[key] = _type_only(x)
        else:
            parent[key] = sch = S.of_value(x)
            memo[id(x)] = (x, sch)
    return out[0]


def schema_json(sch: S.Schema, memo: dict[int, tuple[S.Schema, Any]]) -> Any:
    """``sch.to_json()``, sharing the JSON of schemas met before (references share their
    values' schemas): the output is only read and serialised, never changed in place."""
    hit = memo.get(id(sch))
    if hit is not None:
        return hit[1]
    pending: list[tuple[Any, Any, S.Schema]] = []
    out = sch._shallow_json(pending)
    memo[id(sch)] = (sch, out)
    while pending:
        container, key, child = pending.pop()
        hit = memo.get(id(child))
        if hit is not None:
            container[key] = hit[1]
            continue
        container[key] = j = child._shallow_json(pending)
        memo[id(child)] = (child, j)
    return out


def _type_only(v: Value) -> S.Schema:
    r = v.repr
    if isinstance(r, str):
        return S.string()
    if isinstance(r, bool):
        return S.boolean()
    if isinstance(r, (int, float)):
        return S.number()
    return S.of_value(v)  # null, or an empty container: nothing of a secret in it


def _record_builder(keys: list[str], children: list[Any]):
    return lambda: _record(keys, children)


def _record(keys: list[str], children: list[S.Schema]) -> S.Schema:
    return S._new({"properties": dict(zip(keys, children)), "type": "object", "required": tuple(keys)})


def _tuple_builder(items: list[Any]):
    return lambda: S._new({"prefix_items": tuple(items), "items": S.NEVER, "type": "array"})


# -- the model ----------------------------------------------------------------------------------


class _Model:
    def __init__(self, root: "_EnvEval") -> None:
        self.root = root
        shared = root.shared
        # Every environment evaluated (the root, its imports, inline references), by the
        # expressions they own: an expression's value and base are looked up in its own.
        self.envs = list(shared.evaluations)
        self.owner: dict[int, "_EnvEval"] = {}
        self.values: dict[int, Value] = {}  # id(env) -> its evaluated root value
        for env in self.envs:
            if env.decl.values is not None:
                self.owner[id(env.decl.values)] = env
        self.schemas: dict[int, tuple[Value, S.Schema]] = {}  # see value_schema
        self.schema_jsons: dict[int, tuple[S.Schema, Any]] = {}  # see schema_json

    def env_of(self, x: A.Expr) -> "_EnvEval | None":
        for env in self.envs:
            if x in env.memo or x in env.bases:
                return env
        return None

    def rng(self, r: Range) -> dict[str, Any]:
        return range_json(r)

    def schema_of(self, x: A.Expr, env: "_EnvEval | None") -> S.Schema:
        if env is not None:
            v = env.memo.get(x) or env.shown.get(x)
            if v is not None:
                return value_schema(v, self.schemas)
        return _static_schema(x, env, self.schemas)

    def base_of(self, x: A.Expr, env: "_EnvEval | None") -> Value | None:
        if env is None:
            return None
        b = env.bases.get(x)
        if b is None:
            v = env.memo.get(x)
            if v is not None:
                b = v.base
        return b

    def exprs(self, values: A.ObjectExpr, env: "_EnvEval") -> dict[str, Any]:
        out: dict[str, Any] = {}
        # (expr, env, container, slot, bare): a bare node is a builtin's argument that the
        # builtin takes apart (fn::join's list, fn::secret's object): the reference shows it
        # without a schema or key ranges.
        # The last item: the base beneath the expression as its parent's base has it (for
        # expressions that were not evaluated, such as those laid over a final value).
        stack: list[tuple[A.Expr, Any, Any, Any, bool, Value | None]] = []
        root_base = env.bases.get(values)
        for k, c in zip(values.keys, values.values):
            stack.append((c, env, out, k, False, _child(root_base, k)))
        while stack:
            x, e, parent, slot, bare, inherited = stack.pop()
            node: dict[str, Any] = {"range": self.rng(x.range)}
            parent[slot] = node
            b = self.base_of(x, e) or inherited
            if b is not None and isinstance(b.defn, A.Expr):
                be = self.env_of(b.defn)
                stack.append((b.defn, be, node, "base", False, None))
            elif b is not None and isinstance(b.defn, Placeholder):
                node["base"] = self.placeholder(b.defn, x.range.environment)
            if not bare:
                node["schema"] = schema_json(self.schema_of(x, e), self.schema_jsons)
            t = type(x)
            if t is A.StringExpr or t is A.NumberExpr or t is A.BoolExpr:
                node["literal"] = x.value  # type: ignore[attr-defined]
            elif t is A.NullExpr:
                pass
            elif t is A.SymbolExpr:
                node["symbol"] = self.accessors(x, x.access, e)  # type: ignore[attr-defined]
            elif t is A.InterpolateExpr:
                parts = []
                for p in x.parts:  # type: ignore[attr-defined]
                    part: dict[str, Any] = {}
                    if p.text:
                        part["text"] = p.text
                    if p.access is not None:
                        part["value"] = self.accessors(x, p.access, e)
                    if part:
                        parts.append(part)
                node["interpolate"] = parts
            elif t is A.ArrayExpr:
                if x.elements:  # type: ignore[attr-defined]
                    lst: list[Any] = [None] * len(x.elements)  # type: ignore[attr-defined]
                    node["list"] = lst
                    for i, c in enumerate(x.elements):  # type: ignore[attr-defined]
                        stack.append((c, e, lst, i, False, None))
            elif t is A.ObjectExpr:
                if x.keys:  # type: ignore[attr-defined]
                    if not bare:
                        entries = _entry_keys(x)
                        node["keyRanges"] = {k: self.rng(kn.range) for k, kn in entries.items()}
                    obj: dict[str, Any] = {}
                    node["object"] = obj
                    for k, c in zip(x.keys, x.values):  # type: ignore[attr-defined]
                        obj[k] = None
                        stack.append((c, e, obj, k, False, _child(b, k)))
            elif isinstance(x, A.BuiltinExpr):
                bnode: dict[str, Any] = {
                    "name": x.name,
                    "nameRange": self.rng(x.name_node.range),
                    "argSchema": _arg_schema(x, self.root).to_json(),
                }
                node["builtin"] = bnode
                fields = _CALL_FIELDS.get(x.name[: x.name.find("::", 4)] if x.name.count("::") > 1 else x.name)
                if fields is not None and not (x.name.startswith("fn::open::")):
                    # fn::open and fn::rotate: the reference rebuilds the argument from its
                    # fields, with an empty range of no environment.
                    if x.name.startswith("fn::rotate::"):
                        fields = ("inputs", "state")
                    obj = {}
                    bnode["arg"] = {"range": _NOWHERE, "object": obj}
                    args = x.args if type(x.args) is A.ObjectExpr else None
                    for k in fields:
                        c = args.get(k) if args is not None else None  # type: ignore[union-attr]
                        if c is not None and (k != "provider" or type(c) is A.StringExpr):
                            obj[k] = None
                            stack.append((c, e, obj, k, False, None))
                        else:  # absent or not usable: what the reference puts in its place
                            obj[k] = {
                                "range": self.rng(_zero(x.range.environment)),
                                "schema": _NULL_JSON if k == "state" else True,
                            }
                    continue
                bare = x.name in _TAKEN_APART or (type(x) is A.SecretExpr and x.ciphertext is not None)
                stack.append((x.args, e, bnode, "arg", bare, None))
        return out

    def placeholder(self, p: Placeholder, environment: str) -> dict[str, Any]:
        """A placeholder base as the reference shows it in ``exprs``: an access into the
        unknown value, at the first placeholder's key, of schema ``false``."""
        zero = self.rng(_zero(environment))
        return {
            "range": self.rng(p.top),
            "schema": False,
            "access": {"receiver": self.rng(p.receiver), "accessors": [{"key": k, "range": zero} for k in p.keys]},
        }

    def accessors(self, x: A.Expr, access: A.PropertyAccess, env: "_EnvEval | None") -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        # An expression that was not evaluated (a rotateOnly input outside rotation) reached
        # nothing: the reference leaves its accessors' values empty, of no environment.
        evaluated = env is not None and x in env.memo
        reached = self.reached(x, access, env) if evaluated else None
        for i, a in enumerate(access.accessors):
            item: dict[str, Any] = {}
            if isinstance(a, A.interp.PropertySubscript) and type(a.index) is int:
                item["index"] = a.index
            else:
                item["key"] = a.key
            item["range"] = self.rng(_sub_range(x, a.start, a.end))
            item["value"] = self.rng(reached[i]) if reached is not None else _NOWHERE
            out.append(item)
        return out

    def reached(self, x: A.Expr, access: A.PropertyAccess, env: "_EnvEval | None") -> list[Range]:
        """The definition range of what each accessor reached: past an unknown or a failure,
        the referencing expression's own (the reference's placeholder for it)."""
        accs = access.accessors
        out: list[Range] = []
        if env is None:
            return [x.range] * len(accs)
        zero = _zero(self.root.decl.name if env.is_root else env.name)
        first = accs[0].key
        cur: Value | None
        start = 0
        if first == "imports":
            out.append(zero)
            cur = env.imports.get(accs[1].key) if len(accs) > 1 and type(accs[1].key) is str else None
            if cur is not None:
                out.append(zero)
            start = 2
        elif first == "context":
            out.append(zero)
            cur = env.context_value
            start = 1
        elif first == "environments":
            # The reference places the project and name on the reference itself and the
            # environment's root nowhere in it.
            cur = None
            if len(accs) >= 3 and type(accs[1].key) is str and type(accs[2].key) is str:
                out.extend((x.range, x.range, zero))
                cur = env.shared.cache.get(f"{accs[1].key}/{accs[2].key}")
                start = 3
        else:
            cur = env.result
        if cur is not None:
            for a in accs[start:]:
                if cur.unknown:
                    break
                r = cur.repr
                k = a.key
                if type(r) is dict and type(k) is str and k in r:
                    cur = r[k]
                elif type(r) is list and type(k) is int and 0 <= k < len(r):
                    cur = r[k]
                else:
                    break
                d = cur.defn
                out.append(d.range if d is not None else zero)
        out.extend([x.range] * (len(accs) - len(out)))
        return out


def _sub_range(x: A.Expr, start: int, end: int) -> Range:
    """An accessor's range inside its string: offsets from the string's first character, the
    bytes derived as the parser derives them (none on a line that no newline ends). Only a
    single-line plain scalar is mapped; in any other the reference places accessors nowhere."""
    base = x.range
    if not A.is_mappable(x.node):
        return _zero(base.environment)
    r = A.offset_range(base, start, end)
    b = base.begin
    if b.byte == 0 and (b.line, b.column) != (1, 1):
        return Range(r.environment, Pos(r.begin.line, r.begin.column, 0), Pos(r.end.line, r.end.column, 0))
    return r


_NOWHERE = {"begin": {"line": 0, "column": 0, "byte": 0}, "end": {"line": 0, "column": 0, "byte": 0}}
_CALL_FIELDS = {"fn::open": ("inputs", "provider"), "fn::rotate": ("inputs", "provider", "state")}
_TAKEN_APART = frozenset(["fn::join", "fn::split"])
_NULL_JSON = {"type": "null"}


def _child(base: Value | None, key: str) -> Value | None:
    if base is None or base.unknown or type(base.repr) is not dict:
        return None
    return base.repr.get(key)


def _entry_keys(x: A.ObjectExpr) -> dict[str, Any]:
    """The key node of each of an object expression's keys (the first occurrence's)."""
    node = x.node
    out: dict[str, Any] = {}
    wanted = set(x.keys)
    for entry in getattr(node, "entries", ()):
        k = entry.key.value
        if k in wanted and k not in out:
            out[k] = entry.key
    return out


def _static_schema(x: A.Expr, env: "_EnvEval | None", memo: dict[int, tuple[Value, S.Schema]]) -> S.Schema:
    """The schema of an expression that was not evaluated on its own (literals, and the
    containers a builtin read directly), from its text."""
    out: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, bool]] = [(x, out, 0, False)]
    while stack:
        e, parent, key, finishing = stack.pop()
        if finishing:
            parent[key] = e()
            continue
        if env is not None and e is not x:
            v = env.memo.get(e) or env.shown.get(e)
            if v is not None:
                parent[key] = value_schema(v, memo)
                continue
        t = type(e)
        if t is A.StringExpr or t is A.NumberExpr or t is A.BoolExpr:
            parent[key] = S.of_value(Value(e.value))
        elif t is A.NullExpr:
            parent[key] = S.of_value(Value(None))
        elif t is A.ArrayExpr and e.elements:
            items: list[Any] = [None] * len(e.elements)
            stack.append((_tuple_builder(items), parent, key, True))
            stack.extend((c, items, i, False) for i, c in enumerate(e.elements))
        elif t is A.ArrayExpr:
            parent[key] = S._new({"items": S.NEVER, "type": "array"})
        elif t is A.ObjectExpr and e.keys:
            keys = sorted(e.keys)
            children: list[Any] = [None] * len(keys)
            stack.append((_record_builder(keys, children), parent, key, True))
            stack.extend((e.get(k), children, i, False) for i, k in enumerate(keys))
        elif t is A.ObjectExpr:
            parent[key] = S._new({"type": "object"})
        elif t is A.InterpolateExpr:
            parent[key] = S.string()
        else:
            parent[key] = S.ALWAYS
    return out[0]


def _arg_schema(x: A.BuiltinExpr, root: "_EnvEval") -> S.Schema:
    from .eval import builtin_arg_schema

    return builtin_arg_schema(x, root.shared.providers)


# The parts of a detailed environment, in the order the reference writes them.
MODEL_PARTS = ("exprs", "properties", "schema", "executionContext")


def environment_model(value: Value, root: "_EnvEval | None", *, redact: bool = False,
                      parts: Collection[str] = MODEL_PARTS) -> dict[str, Any]:
    """The detailed environment of an evaluation (see the module's text); with ``redact``,
    as :func:`redact_model` shows it; only its ``parts`` (of :data:`MODEL_PARTS`)."""
    if root is None:  # the evaluation was refused (a limit): nothing but an empty object
        return {}
    name = root.decl.name
    wanted = parts
    if redact:  # redaction pairs each expression with the property it defined: build them all
        parts = MODEL_PARTS
    with collector_paused():
        m = _Model(root)
        out: dict[str, Any] = {}
        values = root.decl.values
        if values is not None and values.keys and "exprs" in parts:
            out["exprs"] = m.exprs(values, root)
        if type(value.repr) is dict and value.repr and "properties" in parts:
            out["properties"] = detailed(value, name)["value"]
        if "schema" in parts:
            out["schema"] = schema_json(value_schema(value, m.schemas), m.schema_jsons)
        if "executionContext" in parts:
            ctx = root.context_value
            out["executionContext"] = {
                "properties": detailed(ctx, name)["value"],
                "schema": value_schema(ctx).to_json(),
            }
        if not redact:
            return out
        return {k: v for k, v in redact_model(out).items() if k in wanted}


# -- redaction ----------------------------------------------------------------------------------
#
# The one rule by which a detailed model is shown without its secrets, wherever the model came
# from (this engine, or a server over HTTP): it reads nothing but the model itself.

_PROVIDER_CALLS = ("fn::open", "fn::rotate")


def redact_model(model: Mapping[str, Any]) -> dict[str, Any]:
    """``model`` without the text of any secret (a new model; ``model`` is left as it is).

    - Properties: a secret value (or a secret base) shows as ``"[secret]"`` with its base
      left out, as :func:`.views.detailed` redacts.
    - Expressions: each is paired with the value it defined (a property with its expression,
      object and list parts with theirs, a base with the base of the value). An expression is
      hidden when it lies inside a ``fn::secret``, or its value holds a secret (a builtin call,
      an interpolation or a literal: its text is in that value; a provider may echo its inputs,
      a ``fn::toJSON`` spells its argument), or it is a provider call whose output is not
      known (a check runs no provider; an output that would be secret may echo the inputs);
      everything inside a hidden expression is hidden too. A hidden expression
      shows its literal and interpolation texts as ``"[secret]"`` and its schema without
      ``const``, ``enum``, ``default`` or ``examples``.
    - Everywhere else, a literal that spells one of the secret texts (:func:`secret_texts`)
      shows as ``"[secret]"``, and no schema keeps a ``const``, ``enum``, ``default`` or
      ``examples`` holding one (a ``fn::secret`` literal's schema is its value as a const).

    Works on the model as the engine builds it and as the API sends it (:mod:`.model_form`).
    Iterative: models nest deeper than Python's recursion limit.
    """
    properties = model.get("properties")
    hidden = _hidden_exprs(model.get("exprs"), properties)
    texts = secret_texts(model, hidden)
    out: dict[str, Any] = {}
    for key, part in model.items():
        if key == "properties":
            out[key] = _redact_values(part)
        elif key == "exprs":
            out[key] = _redact_exprs(part, hidden, texts)
        elif key == "schema":
            out[key] = _redact_schema(part, texts)
        elif key == "executionContext" and isinstance(part, dict):
            ctx = dict(part)
            if "properties" in ctx:
                ctx["properties"] = _redact_values(ctx["properties"])
            if "schema" in ctx:
                ctx["schema"] = _redact_schema(ctx["schema"], texts)
            out[key] = ctx
        else:
            out[key] = part
    return out


def secret_texts(model: Mapping[str, Any], hidden: set[int] | None = None) -> set[str]:
    """The plaintexts a redacted ``model`` must not show: every string inside a secret value
    of its properties (bases included) and every literal or interpolation text of a hidden
    expression (ids of expression nodes; by default those :func:`redact_model` hides).
    Empty strings are no text."""
    if hidden is None:
        hidden = _hidden_exprs(model.get("exprs"), model.get("properties"))
    found: set[str] = set()
    values: list[tuple[Any, bool]] = [(v, False) for v in _values_of(model.get("properties"))]
    while values:
        node, secret = values.pop()
        if not isinstance(node, dict):
            continue
        secret = secret or node.get("secret") is True
        v = node.get("value")
        if isinstance(v, dict):
            values.extend((c, secret) for c in v.values())
        elif isinstance(v, list):
            values.extend((c, secret) for c in v)
        elif secret and isinstance(v, str) and v and not node.get("unknown"):
            found.add(v)
        base = _base_of(node)
        if base is not None:
            values.append((base, False))
    stack: list[Any] = list(_values_of(model.get("exprs")))
    while stack:
        e = stack.pop()
        if not isinstance(e, dict):
            continue
        if id(e) in hidden:
            lit = e.get("literal")
            if isinstance(lit, str) and lit:
                found.add(lit)
            for part in e.get("interpolate") or ():
                if isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"]:
                    found.add(part["text"])
        stack.extend(_sub_exprs(e))
    return found


def _values_of(x: Any) -> list[Any]:
    return list(x.values()) if isinstance(x, dict) else []


def _base_of(value: Any) -> Any:
    trace = value.get("trace") if isinstance(value, dict) else None
    base = trace.get("base") if isinstance(trace, dict) else None
    return base if isinstance(base, dict) else None


def _sub_exprs(e: dict[str, Any]) -> list[Any]:
    """Every expression directly below ``e``: its parts, its builtin's argument, its base."""
    out: list[Any] = []
    if isinstance(e.get("list"), list):
        out.extend(e["list"])
    if isinstance(e.get("object"), dict):
        out.extend(e["object"].values())
    b = e.get("builtin")
    if isinstance(b, dict) and isinstance(b.get("arg"), dict):
        out.append(b["arg"])
    if isinstance(e.get("base"), dict):
        out.append(e["base"])
    return out


def _holds_secret(values: Any) -> dict[int, bool]:
    """id(Value node) -> whether it or any part of it (bases apart) is secret, for every node
    of a map of detailed Values and of their bases."""
    out: dict[int, bool] = {}
    # Post-order: (node, children done?)
    stack: list[tuple[Any, bool]] = [(v, False) for v in _values_of(values)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, dict) or (not done and id(node) in out):
            continue
        v = node.get("value")
        parts = list(v.values()) if isinstance(v, dict) else v if isinstance(v, list) else []
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in parts if isinstance(c, dict))
            base = _base_of(node)
            if base is not None:
                stack.append((base, False))
            continue
        out[id(node)] = node.get("secret") is True or any(out.get(id(c), False) for c in parts)
    return out


def _hidden_exprs(exprs: Any, properties: Any) -> set[int]:
    """The ids of the expression nodes :func:`redact_model` hides (see there)."""
    if not isinstance(exprs, dict):
        return set()
    holds = _holds_secret(properties)
    props = properties if isinstance(properties, dict) else {}
    hidden: set[int] = set()
    # (expression, the value it defined or None, inside a hidden expression)
    stack: list[tuple[Any, Any, bool]] = [(e, props.get(k), False) for k, e in exprs.items()]
    while stack:
        e, v, inside = stack.pop()
        if not isinstance(e, dict):
            continue
        b = e.get("builtin") if isinstance(e.get("builtin"), dict) else None
        name = b.get("name") if b is not None else None
        is_call = isinstance(name, str) and name.startswith(_PROVIDER_CALLS)
        container = "object" in e or "list" in e or (b is None and "literal" not in e and "interpolate" not in e
                                                       and "symbol" not in e)
        secret_value = v is not None and holds.get(id(v), False)
        # A provider call whose output is not known (not run: check mode; or not paired with a
        # value here) might have been secret, echoing its inputs: hidden.
        unknown_call = is_call and (not isinstance(v, dict) or v.get("unknown") is True)
        hide = inside or (secret_value and not container) or unknown_call
        if hide:
            hidden.add(id(e))
        if isinstance(e.get("base"), dict):
            stack.append((e["base"], _base_of(v), False))
        parts = v.get("value") if isinstance(v, dict) else None
        if isinstance(e.get("object"), dict):
            for k, c in e["object"].items():
                stack.append((c, parts.get(k) if isinstance(parts, dict) else None, hide))
        if isinstance(e.get("list"), list):
            for i, c in enumerate(e["list"]):
                part = parts[i] if isinstance(parts, list) and i < len(parts) else None
                stack.append((c, part, hide))
        if b is not None and isinstance(b.get("arg"), dict):
            stack.append((b["arg"], None, hide or name == "fn::secret"))
    return hidden


def _redact_values(values: Any) -> Any:
    """A map of detailed Values with every secret one shown as ``"[secret]"``."""
    if not isinstance(values, dict):
        return values
    out: dict[str, Any] = {}
    stack: list[tuple[Any, Any, Any]] = [(c, out, k) for k, c in values.items()]
    while stack:
        node, parent, slot = stack.pop()
        if not isinstance(node, dict):
            parent[slot] = node
            continue
        trace = node.get("trace")
        if node.get("secret") is True:
            shown: dict[str, Any] = {"value": SECRET_TEXT, "secret": True}
            if node.get("unknown"):
                shown["unknown"] = True
            shown["trace"] = {"def": trace.get("def")} if isinstance(trace, dict) else trace
            parent[slot] = shown
            continue
        copy = dict(node)
        parent[slot] = copy
        v = node.get("value")
        if isinstance(v, dict):
            d: dict[str, Any] = {}
            copy["value"] = d
            for k, c in v.items():
                d[k] = None
                stack.append((c, d, k))
        elif isinstance(v, list):
            lst: list[Any] = [None] * len(v)
            copy["value"] = lst
            stack.extend((c, lst, i) for i, c in enumerate(v))
        if isinstance(trace, dict):
            t = dict(trace)
            copy["trace"] = t
            if "base" in t:
                stack.append((t["base"], t, "base"))
    return out


def _redact_exprs(exprs: Any, hidden: set[int], texts: set[str]) -> Any:
    if not isinstance(exprs, dict):
        return exprs
    out: dict[str, Any] = {}
    stack: list[tuple[Any, Any, Any]] = [(e, out, k) for k, e in exprs.items()]
    while stack:
        e, parent, slot = stack.pop()
        if not isinstance(e, dict):
            parent[slot] = e
            continue
        copy = dict(e)
        parent[slot] = copy
        hide = id(e) in hidden
        if "literal" in e and (hide or (isinstance(e["literal"], str) and e["literal"] in texts)):
            copy["literal"] = SECRET_TEXT
        if "schema" in e:
            copy["schema"] = _redact_schema(e["schema"], texts, every_value=hide)
        if hide and isinstance(e.get("interpolate"), list):
            copy["interpolate"] = [
                {**p, "text": SECRET_TEXT} if isinstance(p, dict) and "text" in p else p for p in e["interpolate"]
            ]
        if isinstance(e.get("base"), dict):
            stack.append((e["base"], copy, "base"))
        if isinstance(e.get("list"), list):
            lst: list[Any] = [None] * len(e["list"])
            copy["list"] = lst
            stack.extend((c, lst, i) for i, c in enumerate(e["list"]))
        if isinstance(e.get("object"), dict):
            obj: dict[str, Any] = {}
            copy["object"] = obj
            for k, c in e["object"].items():
                obj[k] = None
                stack.append((c, obj, k))
        b = e.get("builtin")
        if isinstance(b, dict):
            bcopy = dict(b)
            copy["builtin"] = bcopy
            if "argSchema" in b:
                bcopy["argSchema"] = _redact_schema(b["argSchema"], texts)
            if "arg" in b:
                stack.append((b["arg"], bcopy, "arg"))
    return out


_VALUE_KEYWORDS = frozenset(("const", "enum", "default", "examples"))


def _redact_schema(schema: Any, texts: set[str], every_value: bool = False) -> Any:
    """``schema`` without the keywords (:data:`_VALUE_KEYWORDS`) whose values hold one of the
    ``texts``, or, ``every_value``, without any of them (a new schema; the original when
    nothing goes)."""
    if not isinstance(schema, (dict, list)):
        return schema
    if not every_value and (not texts or not _holds_any(schema, texts)):
        return schema
    out: list[Any] = [None]
    # (schema or map of schemas, container, slot, is a map of names to schemas)
    stack: list[tuple[Any, Any, Any, bool]] = [(schema, out, 0, False)]
    while stack:
        x, parent, slot, names = stack.pop()
        if isinstance(x, dict):
            d: dict[str, Any] = {}
            parent[slot] = d
            for k, c in x.items():
                if names:
                    d[k] = None
                    stack.append((c, d, k, False))
                elif k in _VALUE_KEYWORDS:
                    if not (every_value or _holds_any(c, texts)):
                        d[k] = c
                elif k in _SCHEMA_MAPS or k in _SCHEMA_LISTS or k in _SCHEMA_ONE:
                    d[k] = None
                    stack.append((c, d, k, k in _SCHEMA_MAPS))
                else:
                    d[k] = c
        elif isinstance(x, list):  # a list of schemas
            lst: list[Any] = [None] * len(x)
            parent[slot] = lst
            stack.extend((c, lst, i, False) for i, c in enumerate(x))
        else:
            parent[slot] = x
    return out[0]


_SCHEMA_MAPS = frozenset(("$defs", "properties"))
_SCHEMA_LISTS = frozenset(("allOf", "anyOf", "oneOf", "prefixItems"))
_SCHEMA_ONE = frozenset(("items", "additionalProperties"))


def _holds_any(x: Any, texts: set[str]) -> bool:
    stack = [x]
    while stack:
        y = stack.pop()
        if isinstance(y, str):
            if y in texts:
                return True
        elif isinstance(y, dict):
            stack.extend(y.keys())
            stack.extend(y.values())
        elif isinstance(y, list):
            stack.extend(y)
    return False
