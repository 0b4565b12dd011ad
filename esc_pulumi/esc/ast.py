"""Expressions: the syntax tree of a definition turned into ESC expressions.

Every load-time rule of the language lives here: the shape of the environment document,
imports, builtin calls and their argument shapes, interpolation parsing, reserved keys and
duplicate keys. Evaluation (:mod:`esc_pulumi.esc.eval`) only ever sees well-formed expressions;
what was wrong is reported as diagnostics and replaced by something evaluable.
"""
from __future__ import annotations

from . import interpolation as interp
from ._fast import Record, fast_constructor
from .diagnostics import Diagnostic, Pos, Range, error, warning
from .suggest import edit_distance
from .nodes import (
    ArrayNode,
    BoolNode,
    Node,
    NullNode,
    NumberNode,
    ObjectEntry,
    ObjectNode,
    StringNode,
    child_path,
)


class Expr(Record, eq=False):
    """An expression; ``range`` and ``path`` locate it in its environment's document.

    Expressions compare by identity: the evaluator keys its per-evaluation state on them.
    """

    __slots__ = ("node", "path")
    node: Node
    path: str

    @property
    def range(self) -> Range:
        return self.node.range

    def __repr__(self) -> str:
        # The path and node, never the values: see Node.__repr__.
        return f"{type(self).__qualname__}({self.path!r}, {self.node!r})"


class NullExpr(Expr):
    __slots__ = ()


class BoolExpr(Expr):
    __slots__ = ("value",)
    value: bool


class NumberExpr(Expr):
    __slots__ = ("value",)
    value: int | float


class StringExpr(Expr):
    __slots__ = ("value",)
    value: str


PropertyAccess = interp.PropertyAccess
"""A ``${...}``: accessors with code-point offsets into the string; see :func:`offset_range`."""


class SymbolExpr(Expr):
    """A string that is exactly one ``${...}``: evaluates to the referenced value, whatever its type."""

    __slots__ = ("access",)
    access: PropertyAccess


class InterpolateExpr(Expr):
    """A string template; always evaluates to a string."""

    __slots__ = ("parts",)
    parts: tuple[interp.TemplatePart, ...]


class ArrayExpr(Expr):
    __slots__ = ("elements",)
    elements: tuple[Expr, ...]


class ObjectExpr(Expr):
    """An object literal. Keys are unique (duplicates were reported and dropped at load)."""

    __slots__ = ("keys", "values", "index")
    keys: tuple[str, ...]
    values: tuple[Expr, ...]
    index: dict[str, int]

    def get(self, key: str) -> Expr | None:
        i = self.index.get(key)
        return None if i is None else self.values[i]


class BuiltinExpr(Expr):
    """A call ``{fn::name: args}``. ``name_node`` is the key, ``args`` the raw argument."""

    __slots__ = ("name", "name_node", "args")
    name: str
    name_node: StringNode
    args: Expr


class OpenExpr(BuiltinExpr):
    __slots__ = ("provider", "inputs")
    provider: str | None  # None when the call is malformed (already reported)
    inputs: Expr | None


class RotateExpr(BuiltinExpr):
    __slots__ = ("provider", "inputs", "state")
    provider: str | None
    inputs: Expr | None
    state: Expr | None


class SecretExpr(BuiltinExpr):
    """``fn::secret``: a plaintext, or a ciphertext envelope (base64 text) to decrypt."""

    __slots__ = ("plaintext", "ciphertext")
    plaintext: str | None
    ciphertext: str | None


class JoinExpr(BuiltinExpr):
    __slots__ = ("delimiter", "values")
    delimiter: Expr | None
    values: Expr | None


class SplitExpr(BuiltinExpr):
    __slots__ = ("delimiter", "string")
    delimiter: Expr | None
    string: Expr | None


class ValidateExpr(BuiltinExpr):
    __slots__ = ("schema", "value")
    schema: Expr | None
    value: Expr | None


class UnaryBuiltinExpr(BuiltinExpr):
    """Builtins whose whole argument is one value: concat, toJSON, fromJSON, toBase64,
    fromBase64, toString, final."""

    __slots__ = ()


class ImportDecl(Record):
    __slots__ = ("name", "range", "path", "merge")
    _defaults = {"merge": True}
    name: str
    range: Range
    path: str
    merge: bool


class EnvironmentDecl(Record):
    """A parsed environment definition: its imports and its ``values`` object."""

    __slots__ = ("name", "imports", "values", "description", "eval_diagnostics")
    _defaults = {"description": None, "eval_diagnostics": ()}
    name: str
    imports: tuple[ImportDecl, ...]
    values: ObjectExpr | None
    description: str | None
    # Duplicate and reserved keys: reported by each evaluation of the environment, not at
    # load (spec section 10), so that an import's appear under its name wherever it is used.
    eval_diagnostics: tuple[Diagnostic, ...]


# Expressions are built by the hundred thousand: skip the records' generic __init__.
_String = fast_constructor(StringExpr)
_Number = fast_constructor(NumberExpr)
_Bool = fast_constructor(BoolExpr)
_Null = fast_constructor(NullExpr)
_Symbol = fast_constructor(SymbolExpr)
_Interpolate = fast_constructor(InterpolateExpr)
_Array = fast_constructor(ArrayExpr)
_Object = fast_constructor(ObjectExpr)

_UNARY = frozenset(
    ["fn::concat", "fn::toJSON", "fn::fromJSON", "fn::toBase64", "fn::fromBase64", "fn::toString", "fn::final"]
)
BUILTINS = frozenset(
    ["fn::open", "fn::rotate", "fn::secret", "fn::join", "fn::split", "fn::validate"] + list(_UNARY)
)
RESERVED_KEYS = frozenset(["imports", "context", "environments"])
_TOP_LEVEL_FIELDS = ("description", "imports", "values")


def _is_builtin_name(key: str) -> bool:
    return key in BUILTINS or key.startswith("fn::open::") or key.startswith("fn::rotate::")


def is_mappable(node: Node) -> bool:
    """Whether positions inside a string node can be mapped from offsets into its text: only
    for a single-line plain scalar (the syntax layer marks the others, see ``nodes.Span``)."""
    return len(node.span) == 6


def offset_range(base: Range, start: int, end: int) -> Range:
    """A sub-range of a string node, by code-point offsets from its first character.

    Like the reference, this counts from the node's first character (a quote included) and
    does not follow escapes or line breaks inside the scalar.
    """
    b = base.begin
    return Range(
        base.environment,
        Pos(b.line, b.column + start, b.byte + start),
        Pos(b.line, b.column + end, b.byte + end),
    )


class _Parser:
    def __init__(self, name: str) -> None:
        self.name = name
        self.diags: list[Diagnostic] = []
        self.eval_diags: list[Diagnostic] = []

    # -- environment -----------------------------------------------------------------------

    def environment(self, root: Node | None) -> EnvironmentDecl | None:
        if root is None or isinstance(root, NullNode):
            return EnvironmentDecl(self.name, (), None)
        if not isinstance(root, ObjectNode):
            self.diags.append(error("environment must be an object", root.range, ""))
            return None
        fields: dict[str, ObjectEntry] = {}
        for entry in root.entries:
            key = entry.key.value
            lower = key.lower()
            if lower not in _TOP_LEVEL_FIELDS:
                self.diags.append(warning(_unknown_field_message(key), entry.key.range, key))
                continue
            if lower in fields:
                self.diags.append(warning(f'duplicate key "{key}"', entry.key.range, key))
            fields[lower] = entry
        description = None
        if "description" in fields:
            d = fields["description"]
            if isinstance(d.value, StringNode):
                description = d.value.value
            elif not isinstance(d.value, NullNode):
                self.diags.append(error("description must be a string", d.value.range, "description"))
        imports: tuple[ImportDecl, ...] = ()
        if "imports" in fields:
            imports = self.imports(fields["imports"].value)
        values = None
        if "values" in fields:
            v = fields["values"].value
            if isinstance(v, ObjectNode):
                values = self.values(v)
            elif not isinstance(v, NullNode):
                self.diags.append(error("values must be an object", v.range, "values"))
        return EnvironmentDecl(self.name, imports, values, description)

    def imports(self, node: Node) -> tuple[ImportDecl, ...]:
        if isinstance(node, NullNode):
            return ()
        if not isinstance(node, ArrayNode):
            self.diags.append(error("imports must be a list", node.range, "imports"))
            return ()
        out: list[ImportDecl] = []
        for i, item in enumerate(node.items):
            path = f"imports[{i}]"
            if isinstance(item, StringNode):
                out.append(ImportDecl(item.value, item.range, path))
            elif isinstance(item, ObjectNode):
                if len(item.entries) != 1:
                    self.diags.append(error("import must have a single key", item.range, path))
                    continue
                entry = item.entries[0]
                name = entry.key.value
                ipath = child_path(path, name)
                merge = True
                opts = entry.value
                if isinstance(opts, ObjectNode):
                    for o in opts.entries:
                        if o.key.value == "merge":
                            if isinstance(o.value, BoolNode):
                                merge = o.value.value
                            else:
                                self.diags.append(
                                    error("merge must be a boolean value", o.value.range, child_path(ipath, "merge"))
                                )
                                merge = False
                elif not isinstance(opts, NullNode):
                    self.diags.append(error("import must be an object", opts.range, ipath))
                    continue
                out.append(ImportDecl(name, entry.key.range, path, merge))
            else:
                self.diags.append(error("import must be a string or an object", item.range, path))
        return tuple(out)

    def values(self, node: ObjectNode) -> ObjectExpr:
        # The top-level values object is never a builtin call, and some keys are reserved.
        entries = []
        for entry in node.entries:
            key = entry.key.value
            if key in RESERVED_KEYS:
                self.eval_diags.append(error(f'"{key}" is a reserved key', entry.key.range, child_path("values", key)))
                continue
            if key.startswith("fn::"):
                self.diags.append(
                    error(
                        f'builtin function call "{key}" not allowed at the top level',
                        entry.key.range,
                        child_path("values", key),
                    )
                )
            entries.append(entry)
        entries = self._object_entries(entries, "values")
        children = [self.expr(e.value, child_path("values", e.key.value)) for e in entries]
        return _make_object(node, "values", entries, children)

    # -- expressions ----------------------------------------------------------------------

    def expr(self, node: Node, path: str) -> Expr:
        """Parse a node into an expression, iteratively (documents may nest thousands deep)."""
        t = type(node)
        if t is StringNode:  # most values: no need for the work stack
            return self.string(node, path)  # type: ignore[arg-type]
        # Work items: (node, path, slot) where slot is (list, index) to fill. Containers are
        # built after their children, so we push a 'finish' marker after the children.
        result: list[Expr] = [None]  # type: ignore[list-item]
        stack: list[tuple] = [(node, path, result, 0, False)]
        while stack:
            n, p, out, i, finishing = stack.pop()
            if finishing:
                out[i] = n()  # n is a closure building the container from filled children
                continue
            t = type(n)
            if t is StringNode:
                out[i] = self.string(n, p)
            elif t is NumberNode:
                out[i] = _Number(n, p, n.value)
            elif t is BoolNode:
                out[i] = _Bool(n, p, n.value)
            elif t is NullNode:
                out[i] = _Null(n, p)
            elif t is ArrayNode:
                children: list[Expr] = [None] * len(n.items)  # type: ignore[list-item]
                stack.append((_array_builder(n, p, children), p, out, i, True))
                for j in range(len(n.items) - 1, -1, -1):
                    stack.append((n.items[j], f"{p}[{j}]", children, j, False))
            else:  # ObjectNode
                builtin = self._builtin_key(n, p)
                if builtin is not None:
                    entry = n.entries[0]
                    cp = child_path(p, entry.key.value)
                    arg: list[Expr] = [None]  # type: ignore[list-item]
                    stack.append((self._builtin_builder(n, p, entry, arg), p, out, i, True))
                    stack.append((entry.value, cp, arg, 0, False))
                else:
                    entries = self._object_entries(n.entries, p)
                    children = [None] * len(entries)  # type: ignore[list-item]
                    stack.append((self._object_builder(n, p, entries, children), p, out, i, True))
                    for j in range(len(entries) - 1, -1, -1):
                        e = entries[j]
                        stack.append((e.value, child_path(p, e.key.value), children, j, False))
        return result[0]

    def _builtin_key(self, node: ObjectNode, path: str) -> str | None:
        entries = node.entries
        if len(entries) == 1:
            key = entries[0].key.value
            if _is_builtin_name(key):
                return key
            if key.startswith("fn::"):
                self.diags.append(
                    error("'fn::' is a reserved prefix", entries[0].key.range, child_path(path, key))
                )
            return None
        for e in entries:
            if e.key.value.startswith("fn::"):
                self.diags.append(
                    error(
                        f'illegal call to builtin function: "{e.key.value}" must be the only key '
                        "within its containing object",
                        e.key.range,
                        child_path(path, e.key.value),
                    )
                )
        return None

    def _dedupe(self, entries: list[ObjectEntry] | tuple[ObjectEntry, ...], path: str) -> list[ObjectEntry]:
        seen: set[str] = set()
        out: list[ObjectEntry] = []
        for e in entries:
            key = e.key.value
            if key in seen:
                self.eval_diags.append(error(f'duplicate key "{key}"', e.key.range, child_path(path, key)))
                continue
            seen.add(key)
            out.append(e)
        return out

    def _object_entries(self, given: list[ObjectEntry] | tuple[ObjectEntry, ...], path: str) -> list[ObjectEntry]:
        entries: list[ObjectEntry] = []
        for e in given:
            key = e.key.value
            if interp.has_interpolation(key):
                parts, _ = interp.parse_template(key)
                acc = next((pt.access for pt in parts if pt.access is not None), None)
                rng = offset_range(e.key.range, acc.start, acc.end) if acc else e.key.range
                self.diags.append(error("object keys must be strings", rng, child_path(path, key)))
                continue
            entries.append(e)
        return self._dedupe(entries, path)

    def _object_builder(self, node: ObjectNode, path: str, entries: list[ObjectEntry], children: list[Expr]):
        return lambda: _make_object(node, path, entries, children)

    def _builtin_builder(self, node: ObjectNode, path: str, entry: ObjectEntry, arg: list[Expr]):
        return lambda: self.builtin(node, path, entry, arg[0])

    # -- strings ----------------------------------------------------------------------------

    def string(self, node: StringNode, path: str) -> Expr:
        text = node.value
        if "$" not in text:
            return _String(node, path, text)
        # No has_interpolation() first: a text without an access (``$$`` escapes, lone ``$``)
        # comes back as literal parts, unescaped, and without errors.
        parts, errs = interp.parse_template(text)
        if errs:
            mappable = is_mappable(node)
            for e in errs:
                rng = offset_range(node.range, e.start, e.end) if mappable else node.range
                self.diags.append(error(e.summary, rng, path))
        if len(parts) == 1 and parts[0].text == "" and parts[0].access is not None:
            return _Symbol(node, path, parts[0].access)
        if all(pt.access is None for pt in parts):
            return _String(node, path, "".join(pt.text for pt in parts))
        return _Interpolate(node, path, parts)

    # -- builtins ---------------------------------------------------------------------------

    def builtin(self, node: ObjectNode, path: str, entry: ObjectEntry, args: Expr) -> Expr:
        name = entry.key.value
        nr = entry.key
        rng, p = node, path
        if name == "fn::open" or name.startswith("fn::open::"):
            provider, inputs = self._provider_args(name, "fn::open::", args, ("provider", "inputs"), "fn::open")[:2]
            return OpenExpr(rng, p, name, nr, args, provider, inputs)
        if name == "fn::rotate" or name.startswith("fn::rotate::"):
            provider, inputs, state = self._provider_args(
                name, "fn::rotate::", args, ("provider", "inputs", "state"), "fn::rotate"
            )
            return RotateExpr(rng, p, name, nr, args, provider, inputs, state)
        if name == "fn::secret":
            if isinstance(args, ObjectExpr) and args.keys == ("ciphertext",) and isinstance(args.values[0], StringExpr):
                return SecretExpr(rng, p, name, nr, args, None, args.values[0].value)
            if isinstance(args, StringExpr):
                return SecretExpr(rng, p, name, nr, args, args.value, None)
            self.diags.append(error("secret values must be string literals", args.range, args.path))
            # The value is secret "" defined nowhere in the environment (spec section 10).
            empty = _String(StringNode(self.name, (0, 0, 0, 0, 0, 0), ""), args.path, "")
            return SecretExpr(rng, p, name, nr, empty, "", None)
        if name in ("fn::join", "fn::split"):
            first = second = None
            if isinstance(args, ArrayExpr) and len(args.elements) == 2:
                first, second = args.elements
            else:
                self.diags.append(
                    error(f"the argument to {name} must be a two-valued list", args.range, args.path)
                )
            cls = JoinExpr if name == "fn::join" else SplitExpr
            return cls(rng, p, name, nr, args, first, second)
        if name == "fn::validate":
            schema = value = None
            if isinstance(args, ObjectExpr):
                schema, value = args.get("schema"), args.get("value")
            if schema is None or value is None:
                self.diags.append(
                    error("the argument to fn::validate must be an object containing 'schema' and 'value'",
                          args.range, args.path)
                )
            return ValidateExpr(rng, p, name, nr, args, schema, value)
        if name == "fn::concat" and _is_literal(args) and not isinstance(args, ArrayExpr):
            self.diags.append(error("the argument to fn::concat must be an array of arrays", args.range, args.path))
        return UnaryBuiltinExpr(rng, p, name, nr, args)

    def _provider_args(self, name: str, prefix: str, args: Expr, fields: tuple[str, ...], long_name: str):
        short = name.startswith(prefix)
        wanted = fields[1:] if short else fields
        if not isinstance(args, ObjectExpr):
            if short and fields == ("provider", "inputs"):
                return name[len(prefix):], args, None
            self.diags.append(
                error(
                    f"the argument to {long_name} must be an object containing "
                    + " and ".join(f"'{f}'" for f in wanted if f != "state"),
                    args.range,
                    args.path,
                )
            )
            return None, None, None
        if short and fields == ("provider", "inputs"):
            # fn::open::<name>: the whole argument is the inputs.
            return name[len(prefix):], args, None
        provider: str | None
        if short:
            provider = name[len(prefix):]
        else:
            pexpr = args.get("provider")
            provider = None
            if pexpr is None:
                self.diags.append(error("missing provider name ('provider')", args.range, args.path))
            elif not isinstance(pexpr, StringExpr):
                self.diags.append(error("provider name must be a string literal", pexpr.range, pexpr.path))
            else:
                provider = pexpr.value
        inputs = args.get("inputs")
        if inputs is None:
            self.diags.append(error("missing provider inputs ('inputs')", args.range, args.path))
        state = args.get("state") if "state" in fields else None
        return provider, inputs, state


def _is_literal(e: Expr) -> bool:
    return isinstance(e, (NullExpr, BoolExpr, NumberExpr, StringExpr, ArrayExpr, ObjectExpr))


def _make_object(node: ObjectNode, path: str, entries: list[ObjectEntry], children: list[Expr]) -> ObjectExpr:
    keys = tuple(e.key.value for e in entries)
    return _Object(
        node,
        path,
        keys,
        tuple(children),
        {k: i for i, k in enumerate(keys)},
    )


def _array_builder(node: ArrayNode, path: str, children: list[Expr]):
    return lambda: _Array(node, path, tuple(children))


def _unknown_field_message(key: str) -> str:
    norm = key.lower().replace("_", "")
    ordered = sorted(_TOP_LEVEL_FIELDS, key=lambda f: edit_distance(norm, f))
    existing = ", ".join(f"'{f}'" for f in ordered)
    return f"Field '{key}' does not exist on Object 'environment'. Existing fields are: {existing}"


def parse_environment(name: str, root: Node | None) -> tuple[EnvironmentDecl | None, list[Diagnostic]]:
    """Turn a parsed YAML document into an environment declaration plus its load diagnostics.

    Example::

        node, diags = syntax.parse_yaml("values: {a: 1}", "dev")
        decl, more = parse_environment("dev", node)
    """
    p = _Parser(name)
    decl = p.environment(root)
    if decl is not None and p.eval_diags:
        decl = EnvironmentDecl(decl.name, decl.imports, decl.values, decl.description, tuple(p.eval_diags))
    return decl, p.diags
