"""Rotation: ``fn::rotate`` calls made to produce their next state, and the patches that say
where each new state goes in the definition.

:func:`rotate` evaluates an environment in ``rotate`` mode (spec section 4): every
``fn::rotate`` of the root environment (or only those at ``paths``) calls its rotator with its
evaluated inputs, ``rotateOnly`` ones included, and its current state; the new state is
recorded as a :class:`Patch` and the call opens with it, so the returned value is the
environment as it will be once the patches are written back. Imported environments are
evaluated as in ``open`` mode: they are never rotated from here.

A rotator that fails gives a diagnostic on its call, an unknown value and no patch.

Example::

    decl, diags = load_definition(text, "dev")
    result = rotate(decl, providers=registry, paths=["db.password"])
    for p in result.patches:
        p.doc_path            # 'values.db.password["fn::rotate::pg"].state'
    # write them back with esc_pulumi.secrets.definitions.apply_state_patches
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from .diagnostics import Diagnostic, Range
from .nodes import child_path
from .values import Value

if TYPE_CHECKING:  # pragma: no cover
    from . import ast as A
    from .budget import EvalLimits
    from .envelope import Decrypter
    from .eval import EnvironmentLoader
    from .providers import ProviderRegistry

__all__ = ["Patch", "Rotation", "format_rotate_path", "parse_rotate_path", "patch_json", "rotate", "rotate_sites"]

Keys = tuple  # of str (object keys) and int (array indices)


@dataclass(frozen=True, eq=False)
class Patch:
    """A new rotation state: where it goes in the definition and its value.

    ``keys`` is the document path of the ``state`` to replace (``("values", "db",
    "fn::rotate::pg", "state")``; it may not exist yet: a call without state gets one),
    ``doc_path`` the same path written as ESC writes paths, ``path`` the property path of the
    rotated value (``("db",)``). ``replacement`` keeps the secret flags of the new state.
    """

    keys: Keys
    doc_path: str
    path: Keys
    replacement: Value

    def __repr__(self) -> str:
        # The new state is often a credential: never shown, even when not marked secret.
        return f"Patch({self.doc_path!r})"


@dataclass(frozen=True, eq=False)
class Rotation:
    """What :func:`rotate` returns: the environment evaluated with the new states, the
    diagnostics, and one patch per rotated call, in evaluation order."""

    value: Value
    diagnostics: list[Diagnostic]
    patches: list[Patch]
    evaluation: Any = field(default=None, repr=False)  # the eval.Evaluation, for detailed()

    def detailed(self, *, redact: bool = False) -> dict[str, Any]:
        """The rotated environment's full model (see :meth:`.eval.Evaluation.detailed`)."""
        return self.evaluation.detailed(redact=redact)

    @property
    def failed(self) -> bool:
        """Whether any diagnostic is an error (then nothing should be written back)."""
        return any(d.is_error for d in self.diagnostics)

    def __repr__(self) -> str:
        return f"Rotation(patches={self.patches!r}, diagnostics={len(self.diagnostics)})"


def parse_rotate_path(path: str | Sequence[Any]) -> Keys:
    """The keys of a rotate path, relative to ``values`` (``db.password``,
    ``examples["subscript-path"][0]``), as ``esc-pulumi open PATH`` reads paths; a sequence
    of keys is taken as is. Raises :class:`ValueError` for a malformed path.

    Example::

        parse_rotate_path('a.b[0]["c d"]')    # ('a', 'b', 0, 'c d')
    """
    if not isinstance(path, str):
        keys = tuple(path)
        if not all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in keys):
            raise ValueError(f"a rotate path is a string or a sequence of keys and indices, not {path!r}")
        return keys
    from .interpolation import parse_path

    accessors, errors = parse_path(path)
    if errors:
        raise ValueError(f"invalid rotate path {path!r}: {errors[0].summary}")
    if not accessors:
        raise ValueError("a rotate path must not be empty")
    return tuple(a.key for a in accessors)


def format_rotate_path(keys: Keys) -> str:
    """Keys written as a rotate path, as ESC writes paths (the inverse of
    :func:`parse_rotate_path` for the paths it writes).

    Example::

        format_rotate_path(("a", "b-c", 0))    # 'a["b-c"][0]'
    """
    out = ""
    for k in keys:
        out = child_path(out, k)
    return out


def rotate_sites(decl: "A.EnvironmentDecl") -> dict[Keys, "A.RotateExpr"]:
    """Every ``fn::rotate`` call of a definition by its property path (relative to ``values``),
    in document order; calls nested in another call's argument (``fn::open::x: {a:
    {fn::rotate...}}``) have the builtin's name in their path, as ESC paths do.

    Example::

        rotate_sites(decl)    # {('db', 'password'): RotateExpr(...), ...}
    """
    from . import ast as A

    out: dict[Keys, A.RotateExpr] = {}
    if decl.values is None:
        return out
    # Explicit stack (documents may nest deeper than the recursion limit); children pushed in
    # reverse so that they come out in document order.
    stack: list[tuple[A.Expr, Keys]] = [(decl.values, ())]
    while stack:
        x, keys = stack.pop()
        t = type(x)
        if t is A.ObjectExpr:
            stack.extend((c, keys + (k,)) for k, c in reversed(list(zip(x.keys, x.values))))
        elif t is A.ArrayExpr:
            stack.extend((c, keys + (i,)) for i, c in reversed(list(enumerate(x.elements))))
        elif isinstance(x, A.BuiltinExpr):
            if t is A.RotateExpr:
                out[keys] = x  # type: ignore[assignment]
            stack.append((x.args, keys + (x.name,)))
    return out


def make_patch(x: "A.RotateExpr", path: Keys, replacement: Value) -> Patch:
    """The patch that replaces (or adds) the ``state`` of call ``x`` at property ``path``."""
    return Patch(("values",) + path + (x.name, "state"), child_path(x.args.path, "state"), path, replacement)


_ZERO = {"begin": {"line": 0, "column": 0, "byte": 0}, "end": {"line": 0, "column": 0, "byte": 0}}


def _range_json(r: Range | None) -> dict[str, Any]:
    if r is None:
        return _ZERO
    out: dict[str, Any] = {"environment": r.environment} if r.environment else {}
    out["begin"] = {"line": r.begin.line, "column": r.begin.column, "byte": r.begin.byte}
    out["end"] = {"line": r.end.line, "column": r.end.column, "byte": r.end.byte}
    return out


def patch_json(p: Patch, *, redact: bool = True) -> dict[str, Any]:
    """A patch as the reference's golden data has it: ``{"DocPath", "Replacement"}``, the
    replacement in the API's ``Value`` model, each node traced to the expression it came from
    (a node the rotator made itself has the zero range, as the reference's ``NewValue``).
    Secrets show as ``[secret]`` unless ``redact=False``.

    Example::

        patch_json(p)   # {'DocPath': 'values.a["fn::rotate::swap"].state', 'Replacement': {...}}
    """
    root: list[Any] = [None]
    stack: list[tuple[Value, Any, Any]] = [(p.replacement, root, 0)]
    while stack:
        v, parent, key = stack.pop()
        node: dict[str, Any] = {}
        parent[key] = node
        if redact and v.secret:
            node["value"] = "[secret]"
        elif not v.unknown:
            r = v.repr
            if type(r) is dict:
                d: dict[str, Any] = {}
                node["value"] = d
                stack.extend((c, d, k) for k, c in r.items())
            elif type(r) is list:
                lst: list[Any] = [None] * len(r)
                node["value"] = lst
                stack.extend((c, lst, i) for i, c in enumerate(r))
            elif r is not None:
                node["value"] = r
        if v.secret:
            node["secret"] = True
        if v.unknown:
            node["unknown"] = True
        node["trace"] = {"def": _range_json(v.defn.range if v.defn is not None else None)}
    return {"DocPath": p.doc_path, "Replacement": root[0]}


def rotate(
    decl: "A.EnvironmentDecl",
    *,
    paths: Iterable[str | Sequence[Any]] | None = None,
    loader: "EnvironmentLoader | None" = None,
    providers: "ProviderRegistry | None" = None,
    decrypter: "Decrypter | None" = None,
    context: Mapping[str, Any] | None = None,
    limits: "EvalLimits | None" = None,
) -> Rotation:
    """Rotate an environment: ``evaluate(mode="rotate")`` with its patches collected.

    ``paths`` (relative to ``values``: ``db.password``) selects the calls to rotate; ``None``
    or empty rotates every ``fn::rotate`` of ``decl``. A path that names no call selects
    nothing (see :func:`rotate_sites` to check paths first).

    Example::

        result = rotate(decl, providers=registry)
        if not result.failed:
            text = apply_state_patches(text, result.patches)
    """
    from .eval import evaluate_environment

    patches: list[Patch] = []
    ev = evaluate_environment(
        decl,
        mode="rotate",
        loader=loader,
        providers=providers,
        decrypter=decrypter,
        context=context,
        limits=limits,
        rotate_paths=paths,
        patches=patches,
    )
    return Rotation(ev.value, ev.diagnostics, patches, ev)
