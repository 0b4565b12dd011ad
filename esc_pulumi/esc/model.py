"""The detailed model of an evaluated environment: the API's ``Environment`` (spec sections 8
and 10) with ``exprs`` (the root definition's expression tree with ranges, schemas, builtin
names and what each accessor reached), ``properties`` (the detailed values with their traces),
``schema`` (the environment's inferred JSON schema) and ``executionContext``.

Built only on request (:meth:`.eval.Evaluation.detailed`) from what the evaluation kept: the
value of every expression it evaluated and the values imported beneath them. Every walk is
iterative: definitions may nest deeper than Python's recursion limit.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import ast as A
from . import schema as S
from ._gc import collector_paused
from .diagnostics import Pos, Range
from .values import Value
from .views import detailed, range_json

if TYPE_CHECKING:  # pragma: no cover
    from .eval import _EnvEval

__all__ = ["environment_model", "value_schema"]

_ZERO = Pos(0, 0, 0)


def _zero(environment: str) -> Range:
    return Range(environment, _ZERO, _ZERO)


# -- schemas ------------------------------------------------------------------------------------


def value_schema(v: Value) -> S.Schema:
    """The schema the reference infers for a value: the one it carries (an unknown's, or a
    builtin's result type such as ``fn::join``'s string), else consts for scalars, closed
    tuples for arrays and records requiring every key for objects."""
    out: list[Any] = [None]
    # (value, container, slot) to fill, or a finishing marker (builder, container, slot).
    stack: list[tuple[Any, Any, Any, bool]] = [(v, out, 0, False)]
    while stack:
        x, parent, key, finishing = stack.pop()
        if finishing:
            parent[key] = x()
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
            stack.append((_record_builder(keys, children), parent, key, True))
            stack.extend((r[k], children, i, False) for i, k in enumerate(keys))
        elif type(r) is list and r:
            items: list[Any] = [None] * len(r)
            stack.append((_tuple_builder(items), parent, key, True))
            stack.extend((c, items, i, False) for i, c in enumerate(r))
        else:
            parent[key] = S.of_value(x)
    return out[0]


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
        self.json_ranges: dict[int, dict[str, Any]] = {}

    def env_of(self, x: A.Expr) -> "_EnvEval | None":
        for env in self.envs:
            if x in env.memo or x in env.bases:
                return env
        return None

    def rng(self, r: Range) -> dict[str, Any]:
        return range_json(r)

    def schema_of(self, x: A.Expr, env: "_EnvEval | None") -> S.Schema:
        if env is not None:
            v = env.memo.get(x)
            if v is not None:
                return value_schema(v)
        return _static_schema(x, env)

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
        # (expr, env, container, slot)
        stack: list[tuple[A.Expr, Any, Any, Any]] = []
        for k, c in zip(values.keys, values.values):
            stack.append((c, env, out, k))
        while stack:
            x, e, parent, slot = stack.pop()
            node: dict[str, Any] = {"range": self.rng(x.range)}
            parent[slot] = node
            b = self.base_of(x, e)
            if b is not None and isinstance(b.defn, A.Expr):
                be = self.env_of(b.defn)
                stack.append((b.defn, be, node, "base"))
            node["schema"] = self.schema_of(x, e).to_json()
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
                        stack.append((c, e, lst, i))
            elif t is A.ObjectExpr:
                if x.keys:  # type: ignore[attr-defined]
                    entries = _entry_keys(x)
                    node["keyRanges"] = {k: self.rng(kn.range) for k, kn in entries.items()}
                    obj: dict[str, Any] = {}
                    node["object"] = obj
                    for k, c in zip(x.keys, x.values):  # type: ignore[attr-defined]
                        obj[k] = None
                        stack.append((c, e, obj, k))
            elif isinstance(x, A.BuiltinExpr):
                bnode: dict[str, Any] = {
                    "name": x.name,
                    "nameRange": self.rng(x.name_node.range),
                    "argSchema": _arg_schema(x, self.root).to_json(),
                }
                node["builtin"] = bnode
                stack.append((x.args, e, bnode, "arg"))
        return out

    def accessors(self, x: A.Expr, access: A.PropertyAccess, env: "_EnvEval | None") -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        reached = self.reached(access, env)
        for i, a in enumerate(access.accessors):
            item: dict[str, Any] = {}
            if isinstance(a, A.interp.PropertySubscript) and type(a.index) is int:
                item["index"] = a.index
            else:
                item["key"] = a.key
            item["range"] = self.rng(A.offset_range(x.range, a.start, a.end))
            r = reached[i] if i < len(reached) else None
            if r is not None:
                item["value"] = self.rng(r)
            out.append(item)
        return out

    def reached(self, access: A.PropertyAccess, env: "_EnvEval | None") -> list[Range | None]:
        """The definition range of what each accessor reached (``None`` past a failure)."""
        if env is None:
            return []
        zero = _zero(self.root.decl.name if env.is_root else env.name)
        accs = access.accessors
        first = accs[0].key
        out: list[Range | None] = []
        cur: Value | None
        if first == "imports":
            out.append(zero)
            if len(accs) < 2:
                return out
            cur = env.imports.get(accs[1].key) if type(accs[1].key) is str else None
            if cur is None:
                return out
            out.append(zero)
            start = 2
        elif first == "context":
            return [zero] * len(accs)
        elif first == "environments":
            return []
        else:
            cur = env.result
            start = 0
        for a in accs[start:]:
            if cur is None or cur.unknown:
                break
            r = cur.repr
            k = a.key
            if type(r) is dict and type(k) is str and k in r:
                cur = r[k]
            elif type(r) is list and type(k) is int and 0 <= k < len(r):
                cur = r[k]
            else:
                break
            out.append(cur.defn.range if isinstance(cur.defn, A.Expr) else zero)
        return out


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


def _static_schema(x: A.Expr, env: "_EnvEval | None") -> S.Schema:
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
            v = env.memo.get(e)
            if v is not None:
                parent[key] = value_schema(v)
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


def environment_model(value: Value, root: "_EnvEval | None") -> dict[str, Any]:
    """The detailed environment of an evaluation (see the module's text)."""
    if root is None:  # the evaluation was refused (a limit): nothing but an empty object
        return {}
    name = root.decl.name
    with collector_paused():
        m = _Model(root)
        out: dict[str, Any] = {}
        values = root.decl.values
        if values is not None and values.keys:
            out["exprs"] = m.exprs(values, root)
        if type(value.repr) is dict and value.repr:
            out["properties"] = detailed(value, name)["value"]
        out["schema"] = value_schema(value).to_json()
        ctx = root.context_value
        out["executionContext"] = {
            "properties": detailed(ctx, name)["value"],
            "schema": value_schema(ctx).to_json(),
        }
    return out
