"""Evaluation of environment declarations: imports, merging, references and builtins.

Evaluation is a trampoline: every step that needs another expression's value *yields* that
expression and is resumed with its value, so neither deep documents nor long reference
chains grow the Python stack. Per-evaluation state (memoised values, bases from imports,
cycle marks) lives in the evaluator objects, never in the parsed declarations, so one parsed
declaration can be evaluated any number of times, concurrently.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Collection, Generator, Iterable, Literal, Mapping, Protocol, Sequence

from . import ast as A
from ._fast import Record
from ._gc import collector_paused
from .budget import Budget, EvalLimits, LimitExceeded, count_plain, limit_diagnostic
from . import schema as S
from .diagnostics import Diagnostic, Range, error, has_errors, warning
from .loading import load_definition
from .envelope import Decrypter, EnvelopeError, unseal
from .suggest import closest
from .providers import Provider, ProviderRegistry, Rotator
from .values import (
    SECRET_TEXT,
    UNKNOWN_TEXT,
    JSONNumber,
    Value,
    contains_secret,
    contains_unknown,
    from_plain,
    go_json,
    scalar_text,
    to_plain,
    to_string,
)

if TYPE_CHECKING:  # pragma: no cover
    # .rotation is imported where a rotation needs it: plain evaluations (every load()) do not.
    from .rotation import Keys, Patch

Mode = Literal["check", "open", "rotate"]


class LoadError(Exception):
    """An environment loader could not supply a definition; the message becomes a diagnostic."""


class LoadedEnvironment(Record):
    """A definition supplied by a loader: its text (or an already parsed declaration)."""

    __slots__ = ("text", "decrypter", "decl", "diagnostics")
    _defaults = {"text": None, "decrypter": None, "decl": None, "diagnostics": ()}
    text: str | bytes | None
    decrypter: Decrypter | None
    decl: A.EnvironmentDecl | None
    diagnostics: tuple[Diagnostic, ...]


class EnvironmentLoader(Protocol):
    """Name (``env``, ``project/env``, ``project/env@rev``) → definition. Raise :class:`LoadError`."""

    def load(self, name: str) -> LoadedEnvironment: ...


ANONYMOUS = "<yaml>"


class _Shared:
    """State shared by the root evaluation and every imported environment's evaluation."""

    __slots__ = ("mode", "show_secrets", "loader", "providers", "context", "root_name", "budget", "diags",
                 "cache", "importing", "rotate_paths", "patches", "open_schemas", "evaluations")

    def __init__(self, mode: Mode, show_secrets: bool, loader: EnvironmentLoader | None, providers: ProviderRegistry,
                 context: Mapping[str, Any], root_name: str, budget: Budget, rotate_paths: frozenset[Keys] | None) -> None:
        self.mode = mode
        self.show_secrets = show_secrets
        self.loader = loader
        self.providers = providers
        self.context = context
        self.root_name = root_name
        self.budget = budget
        self.diags: list[Diagnostic] = []
        self.cache: dict[str, Value | None] = {}
        self.importing: list[str] = []
        # Rotate mode: the calls to rotate (property paths; None: all) and the new states so far.
        self.rotate_paths = rotate_paths
        self.patches: list[Patch] = []
        # id(rotator) -> its input schema without the rotateOnly inputs (see _open_input_schema).
        self.open_schemas: dict[int, S.Schema] = {}
        # Every environment evaluation (root first), for the detailed model (see .model).
        self.evaluations: list[_EnvEval] = []


def evaluate(
    decl: A.EnvironmentDecl,
    *,
    mode: Mode = "open",
    loader: EnvironmentLoader | None = None,
    providers: ProviderRegistry | None = None,
    decrypter: Decrypter | None = None,
    context: Mapping[str, Any] | None = None,
    show_secrets: bool = False,
    limits: EvalLimits | None = None,
    rotate_paths: Iterable[str | Sequence[Any]] | None = None,
    patches: list[Patch] | None = None,
) -> tuple[Value, list[Diagnostic]]:
    """Evaluate a declaration; returns the root value (an object) and the diagnostics.

    ``mode="check"`` runs no provider and decrypts no ciphertext (unless ``show_secrets``);
    ``mode="open"`` runs everything. ``mode="rotate"`` is ``open`` in which every
    ``fn::rotate`` of ``decl`` (or only those at ``rotate_paths``, property paths relative to
    ``values``; ``None`` or empty: all) is rotated first and opens with its new state; the
    new states are appended to ``patches`` (see :mod:`.rotation`, whose :func:`~.rotation.rotate`
    wraps this). ``limits`` bounds the size of the values and the work (:class:`EvalLimits`;
    its defaults when ``None``): over a limit the result is an empty object, no patch is
    returned and the diagnostics end with a :class:`LimitDiagnostic`.

    Example::

        decl, diags = load_definition("values: {a: hello, b: '${a} world'}", "dev")
        value, diags = evaluate(decl, mode="open")
        to_plain(value)   # {'a': 'hello', 'b': 'hello world'}
    """
    ev = evaluate_environment(
        decl, mode=mode, loader=loader, providers=providers, decrypter=decrypter, context=context,
        show_secrets=show_secrets, limits=limits, rotate_paths=rotate_paths, patches=patches,
    )
    return ev.value, ev.diagnostics


class Evaluation:
    """One evaluation's result: the root value, the diagnostics and, built only when asked
    for (:meth:`detailed`), the full model of the API's ``Environment``: ``exprs``,
    ``properties``, ``schema`` and ``executionContext`` (spec sections 8 and 10).

    It keeps the evaluation's per-expression state alive; plain callers use :func:`evaluate`,
    which drops it."""

    __slots__ = ("value", "diagnostics", "_root", "_shared")

    def __init__(self, value: Value, diagnostics: list[Diagnostic], root: "_EnvEval | None", shared: _Shared) -> None:
        self.value = value
        self.diagnostics = diagnostics
        self._root = root
        self._shared = shared

    def detailed(self, *, redact: bool = False, environment: str | None = None,
                 parts: Collection[str] | None = None) -> dict[str, Any]:
        """The detailed environment: ``{exprs?, properties?, schema, executionContext}``, with
        ``redact`` without any secret's text (:func:`.model.redact_model`); only ``parts`` of
        it when given (e.g. ``("exprs", "schema")``: what is not built is not paid for).

        ``environment`` names an environment the root imports (as the import is written): the
        model is then that environment's own. Under an anonymous root (a composition such as
        ``{"imports": ["proj/env"]}``) it is the model opening that environment alone gives:
        an import is evaluated on its own, and below an anonymous root its context names it
        as the root environment. :class:`KeyError` if the root imported no such environment
        (or it failed to load)."""
        from .model import MODEL_PARTS, environment_model

        which = MODEL_PARTS if parts is None else parts
        if environment is None:
            return environment_model(self.value, self._root, redact=redact, parts=which)
        if self._root is None:  # refused over a limit: nothing to show
            return {}
        if environment in self._root.imports:
            for env in self._shared.evaluations:
                if not env.is_root and env.name == environment and env.result is not None:
                    return environment_model(env.result, env, redact=redact, parts=which)
        raise KeyError(environment)

    def __repr__(self) -> str:
        return f"Evaluation(diagnostics={len(self.diagnostics)})"

    def __del__(self) -> None:
        # Each environment's evaluation and the state they share refer to each other (a
        # cycle), and the collector is paused while evaluating: without this, the values of
        # a dropped evaluation (up to the budget's limits) would stay until the collector ran,
        # and a server refusing bombs back to back would hold hundreds of MB of them.
        _release(self._shared)


def _release(shared: _Shared) -> None:
    """Break the cycle between ``shared`` and its environments' evaluations, so that their
    values are freed as soon as nothing else holds them."""
    shared.evaluations.clear()
    shared.cache.clear()


def evaluate_environment(
    decl: A.EnvironmentDecl,
    *,
    mode: Mode = "open",
    loader: EnvironmentLoader | None = None,
    providers: ProviderRegistry | None = None,
    decrypter: Decrypter | None = None,
    context: Mapping[str, Any] | None = None,
    show_secrets: bool = False,
    limits: EvalLimits | None = None,
    rotate_paths: Iterable[str | Sequence[Any]] | None = None,
    patches: list[Patch] | None = None,
) -> Evaluation:
    """:func:`evaluate`, keeping what :meth:`Evaluation.detailed` needs."""
    selected: frozenset[Keys] | None = None
    if rotate_paths is not None:
        if mode != "rotate":
            raise ValueError("rotate_paths is for mode='rotate'")
        # Parsed before anything runs: a bad path must not leave half a rotation behind.
        from .rotation import parse_rotate_path

        selected = frozenset(parse_rotate_path(p) for p in rotate_paths) or None
    shared = _Shared(
        mode=mode,
        show_secrets=show_secrets,
        loader=loader,
        providers=providers if providers is not None else ProviderRegistry(),
        context=dict(context or {}),
        root_name=decl.name,
        budget=Budget(limits),
        rotate_paths=selected,
    )
    root: _EnvEval | None = _EnvEval(shared, decl, decl.name, decrypter, is_root=True)
    with collector_paused():
        try:
            value = root.run()
            # The views of the result (JSON, detailed) expand what references share: refuse
            # it now if that would be too large, so that no view can blow up later.
            shared.budget.measure(value, decl.values, root=True)
        except LimitExceeded as e:
            shared.diags.append(limit_diagnostic(e))
            value = Value({})
            root = None  # nothing of the evaluation is shown
            shared.patches.clear()  # the rotation did not finish: nothing to write back
            _release(shared)  # the values that crossed the limit go now, not at the next collection
    if patches is not None:
        patches.extend(shared.patches)
    return Evaluation(value, shared.diags, root, shared)


class Placeholder:
    """The definition of the placeholder base of a property declared over an unknown base:
    the property's key (``range``), the unknown value it stands in (``receiver``: its range)
    and the keys that lead there from the first placeholder (whose key range is ``top``)."""

    __slots__ = ("range", "path", "receiver", "keys", "top")

    def __init__(self, range: Range, path: str, receiver: Range, keys: tuple[str, ...], top: Range) -> None:
        self.range = range
        self.path = path
        self.receiver = receiver
        self.keys = keys
        self.top = top

    @staticmethod
    def under(unknown: Value, parent: A.ObjectExpr, key: str) -> "Placeholder":
        node = next((e.key for e in getattr(parent.node, "entries", ()) if e.key.value == key), None)
        rng = node.range if node is not None else parent.range
        d = unknown.defn
        path = A.child_path(parent.path, key)
        if isinstance(d, Placeholder):
            return Placeholder(rng, path, d.receiver, d.keys + (key,), d.top)
        receiver = d.range if d is not None else parent.range
        return Placeholder(rng, path, receiver, (key,), rng)


# Requests a generator can yield to the driver.
Step = Generator[A.Expr, Value, Value]


class _EnvEval:
    """The evaluation of one environment (the root or an import)."""

    def __init__(
        self, shared: _Shared, decl: A.EnvironmentDecl, name: str, decrypter: Decrypter | None, is_root: bool
    ) -> None:
        self.shared = shared
        self.decl = decl
        self.name = name
        self.decrypter = decrypter
        self.is_root = is_root
        self.memo: dict[A.Expr, Value] = {}
        self.active: set[A.Expr] = set()
        self.bases: dict[A.Expr, Value | None] = {}
        self.imports: dict[str, Value] = {}
        root = shared.root_name if shared.root_name != ANONYMOUS else name
        ctx = dict(shared.context)
        ctx["currentEnvironment"] = {"name": name}
        ctx["rootEnvironment"] = {"name": root}
        self.context_value = from_plain(ctx)
        # What providers and rotators are given: the caller's execution context with this
        # environment's names, as ``${context...}`` sees it (read-only: shared by every call).
        self.provider_context: Mapping[str, Any] = MappingProxyType(ctx)
        self.base: Value | None = None
        self.result: Value | None = None  # this environment's value, once evaluated
        # Values the detailed model shows for expressions not evaluated on their own.
        self.shown: dict[A.Expr, Value] = {}
        shared.evaluations.append(self)
        # Rotate mode, root only: each fn::rotate call's property path (see _rotating).
        self._rotate_sites: dict[A.RotateExpr, Keys] | None = None

    # -- driver ----------------------------------------------------------------------------

    def run(self) -> Value:
        """Evaluate this environment and, first, its imports, theirs, and so on.

        An import chain may be thousands of environments long: each environment's evaluation
        is a generator that yields the imports it needs, driven here from an explicit stack,
        so the chain's length never reaches Python's recursion limit.
        """
        stack: list[Generator[_EnvEval, Value, Value]] = [self._steps()]
        send: Value | None = None
        failure: BaseException | None = None
        while True:
            top = stack[-1]
            try:
                if failure is not None:
                    exc, failure = failure, None
                    child = top.throw(exc)
                else:
                    child = top.send(send)  # type: ignore[arg-type]
            except StopIteration as stop:
                stack.pop()
                if not stack:
                    return stop.value
                send = stop.value
                continue
            except BaseException as exc:  # noqa: BLE001 - passed on to the importing environment
                stack.pop()
                if not stack:
                    raise
                failure = exc
                continue
            stack.append(child._steps())
            send = None

    def _steps(self) -> Generator["_EnvEval", Value, Value]:
        self.shared.diags.extend(self.decl.eval_diagnostics)
        yield from self._evaluate_imports()
        values = self.decl.values
        if values is None:
            self.result = self.base if self.base is not None else Value({})
        else:
            self.bases[values] = self.base
            self.result = self._drive(values)
        return self.result

    def _drive(self, expr: A.Expr) -> Value:
        """Evaluate ``expr`` without recursion: a stack of suspended evaluations."""
        memo, active, bases = self.memo, self.active, self.bases
        budget = self.shared.budget
        gens: list[Step] = []
        exprs: list[A.Expr] = []
        try:
            return self._loop(expr, memo, active, bases, budget, gens, exprs)
        except LimitExceeded as e:
            if e.expr is None:  # the expression being evaluated crossed the limit
                e.expr = exprs[-1] if exprs else expr
            raise

    def _loop(self, expr: A.Expr, memo: dict, active: set, bases: dict, budget: Budget,
              gens: list[Step], exprs: list[A.Expr]) -> Value:
        request: A.Expr | None = expr
        send: Value | None = None
        # One step of work per expression evaluated, counted locally and handed to the budget
        # in batches (the budget's own call costs more than the step).
        steps = 0
        while True:
            if request is not None:
                v = memo.get(request)
                if v is None and type(request) in _LITERALS and bases.get(request) is None:
                    v = _literal(request)
                if v is None:
                    if request in active:
                        v = self._cycle(request)
                    else:
                        steps += 1
                        if steps >= 256:
                            budget.step(steps, request)
                            steps = 0
                        active.add(request)
                        gens.append(self._eval(request))
                        exprs.append(request)
                        send = None
                        request = None
                        continue
                send, request = v, None
            gen = gens[-1]
            try:
                request = gen.send(send)  # type: ignore[arg-type]
            except StopIteration as stop:
                gens.pop()
                done = exprs.pop()
                active.discard(done)
                memo[done] = stop.value
                if not gens:
                    budget.step(steps, done)
                    return stop.value
                send = stop.value

    def _cycle(self, x: A.Expr) -> Value:
        path = x.path[len("values."):] if x.path.startswith("values.") else x.path
        if x.path.startswith("values["):
            path = x.path[len("values"):]
        self.error(x, f"cyclic reference to {path}")
        return Value(None, unknown=True, defn=x)

    # -- diagnostics ------------------------------------------------------------------------

    def error(self, x: A.Expr | None, summary: str, rng: Range | None = None, path: str | None = None) -> None:
        self.shared.diags.append(
            error(summary, rng if rng is not None else (x.range if x else None), path if path is not None else (x.path if x else ""))
        )

    def _schema_errors(self, errors: Iterable[S.SchemaError], fallback: A.Expr, secret_schema: bool = False) -> bool:
        """Report schema violations; with ``secret_schema`` (a ``fn::validate`` schema holding a
        secret) the messages quote nothing of the schema (``e.redacted``)."""
        found = False
        for e in errors:
            found = True
            x = getattr(e.value, "defn", None) or fallback
            self.error(x, e.redacted if secret_schema and e.redacted is not None else e.message)
        return found

    # -- imports ----------------------------------------------------------------------------

    def _evaluate_imports(self) -> Generator["_EnvEval", Value, None]:
        # Each merged import is laid over the ones before it. Once the accumulated top-level
        # object is a fresh dict of our own, it grows in place instead of being copied per import.
        merged: dict[str, Value] | None = None
        for imp in self.decl.imports:
            v = yield from self._import(imp.name, imp.range, imp.path)
            if v is None:
                continue
            self.imports[imp.name] = v
            if not imp.merge:
                continue
            before = self.base
            if before is None:
                self.base = v  # shared with the import cache: never grown in place
            elif merged is not None and type(v.repr) is dict and not v.unknown:
                for k, c in v.repr.items():
                    b = merged.get(k)
                    merged[k] = c if b is None else self._merge(c, b)
            else:
                self.base = self._merge(v, before)
                r = self.base.repr
                fresh = type(r) is dict and r is not v.repr and r is not before.repr
                merged = r if fresh else None

    def _import(self, name: str, rng: Range, path: str) -> Generator["_EnvEval", Value, Value | None]:
        """The value of import ``name``; a first import is yielded to :meth:`run` to evaluate."""
        shared = self.shared
        if name in shared.importing:
            shared.diags.append(error(f"cyclic import of {name}", rng, path))
            return None
        if name in shared.cache:
            return shared.cache[name]
        if shared.loader is None:
            shared.diags.append(error(f"cannot import {name}: no environment loader", rng, path))
            return None
        try:
            loaded = shared.loader.load(name)
        except LoadError as e:
            shared.diags.append(error(str(e), rng, path))
            return None
        decl = loaded.decl
        diags = list(loaded.diagnostics)
        if decl is None:
            decl, diags = load_definition(loaded.text or "", name)
        shared.diags.extend(diags)
        if has_errors(diags):
            shared.cache[name] = None
            return None
        if decl is None:  # an empty definition
            decl = A.EnvironmentDecl(name, (), None)
        shared.importing.append(name)
        try:
            value = yield _EnvEval(shared, decl, name, loaded.decrypter, is_root=False)
        finally:
            shared.importing.pop()
        shared.cache[name] = value
        return value

    def _import_now(self, name: str, rng: Range, path: str) -> Value | None:
        """:meth:`_import` for a reference met while evaluating (``${environments.p.e}``): the
        environment is evaluated on the spot (its own import chain still without recursion)."""
        gen = self._import(name, rng, path)
        try:
            child = next(gen)
        except StopIteration as stop:
            return stop.value
        try:
            value = child.run()
        except BaseException as exc:
            gen.throw(exc)  # lets _import unwind (its finally), then re-raises
            raise
        try:
            gen.send(value)
        except StopIteration as stop:
            return stop.value
        raise AssertionError("_import yields at most once")  # pragma: no cover

    # -- merging ----------------------------------------------------------------------------

    def _merge(self, over: Value, base: Value) -> Value:
        """Lay ``over`` on ``base``: objects merge key by key, everything else replaces.

        The trace follows the reference (spec section 10): ``base`` goes at the end of
        ``over``'s chain of bases (an environment imported directly and through another
        import appears twice), and each of ``over``'s own properties is merged with
        ``base``'s. Imported values are shared, not copied as the reference copies them, so
        no identity shortcut applies here."""
        if base.final:
            if over.defn is not None:
                self.shared.diags.append(warning("cannot override final value", over.defn.range, over.defn.path))
            return base
        chain = over.base
        new_base = base if chain is None else self._merge(chain, base)
        if over.unknown or base.unknown or type(over.repr) is not dict or type(base.repr) is not dict:
            return over.with_(base=new_base)
        # Keys: over's (its own and those of its chain, now merged over base) and base's.
        nb = new_base.repr if type(new_base.repr) is dict and not new_base.unknown else base.repr
        merged = dict(nb)
        for k, c in over.own_items():
            b = base.repr.get(k)
            merged[k] = c if b is None else self._merge(c, b)
        if over.own is not None:  # keys over inherited from its own chain: as merged there
            for k, c in over.repr.items():
                if k not in over.own and k not in merged:
                    merged[k] = c
        own = over.own if over.own is not None else frozenset(over.repr)
        return over.with_(repr=merged, own=own, base=new_base)

    def _base_of(self, parent: A.ObjectExpr, key: str, child: A.Expr) -> Value | None:
        """The imported value under ``parent.key``, recorded for ``child`` (its definition)."""
        if child in self.bases:
            return self.bases[child]
        pb = self.bases.get(parent)
        b = None
        if pb is not None and not pb.unknown and type(pb.repr) is dict:
            b = pb.repr.get(key)
        elif pb is not None and pb.unknown:
            # Declared over an unknown base: the reference puts a placeholder beneath it
            # (spec section 10), defined by the property's key.
            b = Value(None, unknown=True, defn=Placeholder.under(pb, parent, key))
        self.bases[child] = b
        return b

    # -- expressions ------------------------------------------------------------------------

    def _eval(self, x: A.Expr) -> Step:
        base = self.bases.get(x)
        if base is not None and base.final:
            self.shared.diags.append(warning("cannot override final value", x.range, x.path))
            return base
            yield  # pragma: no cover - makes this a generator
        t = type(x)
        if t is A.ObjectExpr:
            return (yield from self._object(x, base))
        if t is A.StringExpr:
            v = Value(x.value, defn=x)
        elif t is A.NumberExpr:
            v = Value(x.value, defn=x)
        elif t is A.BoolExpr:
            v = Value(x.value, defn=x)
        elif t is A.NullExpr:
            v = Value(None, defn=x)
        elif t is A.ArrayExpr:
            items = []
            for e in x.elements:
                items.append((yield e))
            v = Value(items, defn=x)
        elif t is A.SymbolExpr:
            v = (yield from self._resolve(x, x.access)).with_(defn=x)
        elif t is A.InterpolateExpr:
            v = yield from self._interpolate(x)
        else:
            v = yield from self._builtin(x)
        if base is not None:
            v = self._merge(v, base)
        return v

    def _object(self, x: A.ObjectExpr, base: Value | None) -> Step:
        props: dict[str, Value] = {}
        plain_base = base is None or (not base.unknown and type(base.repr) is not dict)
        # Properties are evaluated in sorted key order, as the reference does: it decides
        # which expression of a reference cycle gets the diagnostic.
        for k, c in sorted(zip(x.keys, x.values), key=_first):
            if plain_base and type(c) in _LITERALS:
                # A literal with nothing imported beneath it: no need for a round trip through
                # the driver (the common case, and most of a large document).
                props[k] = _literal(c)
                continue
            self._base_of(x, k, c)
            props[k] = yield c
        if base is not None and not base.unknown and type(base.repr) is dict:
            merged = dict(base.repr)
            merged.update(props)
            return Value(merged, defn=x, base=base, own=frozenset(props))
        return Value(props, defn=x, base=base)

    def _interpolate(self, x: A.InterpolateExpr) -> Step:
        out: list[str] = []
        unknown = secret = False
        size = 0  # the result's length, checked before it is built
        for part in x.parts:
            out.append(part.text)
            access = part.access
            if access is not None:
                v = yield from self._resolve(x, access)
                if type(v.repr) is str and not v.unknown:  # the common case, without the walk
                    out.append(v.repr)
                    size += len(v.repr)
                    secret = secret or v.secret
                    continue
                self.shared.budget.expand(v, x)
                s, u, sec = to_string(v)
                out.append(s)
                size += len(s)
                unknown, secret = unknown or u, secret or sec
        if unknown:  # the reference shows an unknown interpolation as just "[unknown]"
            return Value(UNKNOWN_TEXT, secret, True, defn=x, schema=_S_STRING)
        if size:
            self.shared.budget.text(size, x)
        return Value("".join(out), secret, defn=x, schema=_S_STRING)

    # -- property access --------------------------------------------------------------------

    def _resolve(self, x: A.Expr, access: A.PropertyAccess) -> Step:
        accessors = access.accessors
        bases = self.bases
        first = accessors[0].key
        cur_expr: A.Expr | None = None
        cur: Value | None = None
        # Whether the walk has passed through a secret value: from there on, keys, lengths and
        # everything else about the receiver are secret-derived and no diagnostic may quote them.
        secret = False
        start = 1
        if first == "imports":
            cur = Value(dict(self.imports))
        elif first == "context":
            cur = self.context_value
        elif first == "environments":
            if len(accessors) < 3 or not all(isinstance(a.key, str) for a in accessors[1:3]):
                return Value(None, unknown=True, defn=x)
            name = f"{accessors[1].key}/{accessors[2].key}"
            before = len(self.shared.diags)
            cur = self._import_now(name, x.range, x.path)
            if cur is None:
                if len(self.shared.diags) == before:
                    self.error(x, f"cannot open environment {name}")
                return Value(None, unknown=True, defn=x)
            start = 3
        else:
            start = 0
            if self.decl.values is not None:
                cur_expr = self.decl.values
            else:
                cur = self.base if self.base is not None else Value({})
        for i in range(start, len(accessors)):
            key = accessors[i].key
            if cur_expr is not None:
                t = type(cur_expr)
                if t is A.ObjectExpr:
                    if type(key) is int:
                        return self._access_error(x, "cannot access an object property using an integer index", access, i)
                    j = cur_expr.index.get(key)
                    if j is not None:
                        child = cur_expr.values[j]
                        if child not in bases and bases.get(cur_expr) is not None:
                            self._base_of(cur_expr, key, child)
                        cur_expr = child
                        continue
                    base = bases.get(cur_expr)
                    if base is not None and base.unknown:
                        return Value(None, unknown=True, defn=x)
                    if base is not None and type(base.repr) is dict and key in base.repr:
                        cur, cur_expr = base.repr[key], None
                        continue
                    # The definition's own keys are its text; a secret base's keys are not.
                    keys = list(cur_expr.keys)
                    if base is not None and type(base.repr) is dict and not (secret or base.secret):
                        keys += list(base.repr)
                    return self._access_error(x, _unknown_property(key, keys), access, i)
                if t is A.ArrayExpr:
                    if type(key) is not int:
                        return self._access_error(x, "cannot access an array element using a property name", access, i)
                    problem = _index_problem(key, len(cur_expr.elements), False)  # a literal array
                    if problem:
                        return self._access_error(x, problem, access, i)
                    cur_expr = cur_expr.elements[key]
                    continue
                cur = yield cur_expr
                cur_expr = None
            assert cur is not None
            secret = secret or cur.secret
            if cur.unknown:
                nxt = self._unknown_access(x, cur, key, access, i)
                if nxt is None:
                    return Value(None, unknown=True, defn=x)
                cur = nxt
                continue
            r = cur.repr
            if type(r) is dict:
                if type(key) is int:
                    return self._access_error(x, "cannot access an object property using an integer index", access, i)
                c = r.get(key)
                if c is None:
                    # No "did you mean": the keys of a secret object are secret-derived.
                    return self._access_error(x, _unknown_property(key, [] if secret else list(r)), access, i)
                cur = c
            elif type(r) is list:
                if type(key) is not int:
                    return self._access_error(x, "cannot access an array element using a property name", access, i)
                problem = _index_problem(key, len(r), secret)
                if problem:
                    return self._access_error(x, problem, access, i)
                cur = r[key]
            else:
                return self._access_error(x, "receiver must be an array or an object", access, i)
        if cur_expr is not None:
            if type(cur_expr) in _LITERALS and self.bases.get(cur_expr) is None:
                return _literal(cur_expr)  # no need to suspend for a plain literal
            cur = yield cur_expr
        assert cur is not None
        return cur

    def _access_error(self, x: A.Expr, summary: str, access: A.PropertyAccess, i: int) -> Value:
        self.error(x, summary, _accessor_range(x, access, i))
        return Value(None, unknown=True, defn=x)

    def _unknown_access(self, x: A.Expr, v: Value, key: str | int, access: A.PropertyAccess, i: int) -> Value | None:
        """Step into an unknown value using what its schema says; ``None`` after an error."""
        sch = v.schema
        if sch is None:
            return Value(None, v.secret, True)
        rng = _accessor_range(x, access, i)
        types = sch.types()
        if type(key) is int:
            if "array" in types:
                return Value(None, v.secret, True, schema=sch.item(key))
            if "object" in types:
                self.error(x, "cannot access an object property using an integer index", rng)
                return None
        else:
            if "object" in types:
                return Value(None, v.secret, True, schema=sch.property(key))
            if "array" in types:
                self.error(x, "cannot access an array element using a property name", rng)
                return None
        if types:
            self.error(x, "receiver must be an array or an object", rng)
        return None

    # -- builtins ---------------------------------------------------------------------------

    def _builtin(self, x: A.BuiltinExpr) -> Step:
        t = type(x)
        if t is A.SecretExpr:
            return self._secret(x)
        if t is A.OpenExpr:
            return (yield from self._open(x))
        if t is A.RotateExpr:
            return (yield from self._rotate(x))
        if t is A.JoinExpr:
            return (yield from self._join(x))
        if t is A.SplitExpr:
            return (yield from self._split(x))
        if t is A.ValidateExpr:
            return (yield from self._validate(x))
        arg = yield x.args
        fn = _UNARY[x.name]
        sch = fn.schema
        if sch is not None and self._schema_errors(S.validate(arg, sch), x.args):
            return Value(None, unknown=True, defn=x, schema=_result_schema(x))
        if x.name == "fn::final":
            return arg.with_(final=True, defn=x)
        budget = self.shared.budget
        budget.expand(arg, x)  # the walks below and the builtin itself expand the argument
        if contains_unknown(arg):
            return Value(None, contains_secret(arg), True, defn=x, schema=_result_schema(x))
        secret = contains_secret(arg)
        try:
            result = fn.apply(arg, budget, x)
        except _BuiltinError as e:
            # A secret argument's error says what went wrong, never where or with what.
            self.error(x, e.redacted if secret and e.redacted is not None else str(e))
            return Value(None, secret, True, defn=x, schema=_result_schema(x))
        if isinstance(result, Value):
            if secret:
                budget.expand(result, x)  # marking copies the whole value
                return _mark_secret(result)
            return result
        if type(result) is str:
            budget.text(len(result), x)
            return Value(result, secret, defn=x, schema=_S_STRING)
        return Value(result, secret, defn=x)

    def _secret(self, x: A.SecretExpr) -> Value:
        if x.ciphertext is None:  # the string literal's own value and range, made secret
            return Value(x.plaintext or "", True, defn=x.args)
        try:
            payload = unseal(x.ciphertext)
        except EnvelopeError as e:
            self.error(x, f"invalid ciphertext: {e}")
            return Value(None, True, True, defn=x, schema=_S_STRING)
        if self.shared.mode == "check" and not self.shared.show_secrets:
            return Value(None, True, True, defn=x, schema=_S_STRING)
        if self.decrypter is None:
            self.error(x, "decrypting: no decrypter is configured for this environment")
            return Value(None, True, True, defn=x, schema=_S_STRING)
        try:
            plaintext = self.decrypter(payload).decode("utf-8")
        except Exception as e:  # a decrypter's failure of any kind is a diagnostic
            self.error(x, f"decrypting: {e}")
            return Value(None, True, True, defn=x, schema=_S_STRING)
        return Value(plaintext, True, defn=x, schema=_S_STRING)

    def _open(self, x: A.OpenExpr) -> Step:
        inputs = (yield x.inputs) if x.inputs is not None else None
        if x.provider is None or inputs is None:
            return Value(None, unknown=True, defn=x)
        provider = self.shared.providers.provider(x.provider)
        if provider is None:
            self.error(x, f'unknown provider "{x.provider}"')
            return Value(None, unknown=True, defn=x)
        return self._call_provider(x, provider, provider.open, inputs, provider.input_schema, x.inputs)

    def _rotate(self, x: A.RotateExpr) -> Step:
        shared = self.shared
        rotator = shared.providers.rotator(x.provider) if x.provider is not None else None
        path = self._rotating(x)
        # rotateOnly inputs (managing credentials, say) are evaluated only where they are
        # needed: to rotate, and to check the root environment (so that whoever manages it
        # learns they cannot reach them). An imported rotated secret must open for users who
        # cannot reach its managing credentials (golden inline-reference-rotateOnly).
        every_input = path is not None or (shared.mode == "check" and self.is_root)
        skip = rotator.rotate_only if rotator is not None and not every_input else frozenset()
        inputs: Value | None = None
        reported = len(shared.diags)
        if x.inputs is not None and (every_input or rotator is not None):
            inputs = yield from self._rotate_inputs(x.inputs, skip)
        state = (yield x.state) if x.state is not None else Value(None, defn=x)
        # Arguments whose evaluation failed: the rotator is not consulted (as for invalid ones).
        failed = has_errors(shared.diags[reported:])
        if x.provider is None or x.inputs is None:
            return Value(None, unknown=True, defn=x, schema=rotator.output_schema if rotator is not None else None)
        if rotator is None:
            self.error(x, f'unknown rotator "{x.provider}"')
            return Value(None, unknown=True, defn=x)
        assert inputs is not None
        # Unknown for want of its inputs or state (an import's skipped rotateOnly inputs
        # included), the value is what the rotator would open: its output schema, as for
        # fn::open. Unknown because it was not consulted (check mode, invalid arguments, a
        # failed rotation or open), it is the state that would have been opened: the state
        # schema. The reference's echo shows both: its state requires only current, what it
        # opens has current and previous (golden rotate-state, inline-reference-rotateOnly).
        unknown = Value(None, unknown=True, schema=rotator.state_schema, defn=x)
        opens_unknown = Value(None, unknown=True, schema=rotator.output_schema, defn=x)
        input_schema = self._open_input_schema(rotator) if skip else rotator.input_schema
        bad = self._schema_errors(S.validate(inputs, input_schema), x.inputs)
        # The state is optional: absent or null is always fine, as the reference's
        # oneOf(state schema, null) has it (and its diagnostics when neither matches).
        if state.repr is not None or state.unknown:
            state_schema = S.one_of(rotator.state_schema, S.null())
            bad = self._schema_errors(S.validate(state, state_schema), x.state or x) or bad
        if bad or failed:
            return unknown
        if shared.mode == "check":
            return opens_unknown if skip else unknown
        if contains_unknown(inputs) or contains_unknown(state):
            return opens_unknown
        budget = shared.budget
        budget.expand(inputs, x)  # a rotator may well print or copy its inputs and state
        budget.expand(state, x)
        if path is not None:
            try:
                new_state = rotator.rotate(inputs, state, self.provider_context)
            except Exception as e:  # any rotator failure is a diagnostic: no patch, no crash
                self.error(x, str(e) or type(e).__name__)
                return unknown
            # Not validated against the state schema: the reference writes what the rotator
            # returns (echo's first rotation has previous: null, golden rotate-state).
            state = from_plain(new_state, rotator.secret)
            budget.expand(state, x)
            from .rotation import make_patch

            shared.patches.append(make_patch(x, path, state))
        if rotator.rotate_only:
            inputs = _without_keys(inputs, rotator.rotate_only)
        try:
            out = rotator.open_state(inputs, state, self.provider_context)
        except Exception as e:  # as for fn::open: a diagnostic on the call, never a crash
            self.error(x, str(e) or type(e).__name__)
            return unknown
        return _provider_output(out, rotator.secret, x)

    def _rotating(self, x: A.RotateExpr) -> Keys | None:
        """The property path of ``x`` when this evaluation rotates it, else ``None``."""
        shared = self.shared
        if shared.mode != "rotate" or not self.is_root:
            return None  # imports are never rotated from here
        if self._rotate_sites is None:
            from .rotation import rotate_sites

            self._rotate_sites = {e: keys for keys, e in rotate_sites(self.decl).items()}
        path = self._rotate_sites.get(x)
        if path is None or (shared.rotate_paths is not None and path not in shared.rotate_paths):
            return None
        return path

    def _rotate_inputs(self, inputs: A.Expr, skip: frozenset[str]) -> Step:
        """The inputs of a rotator without the ``skip`` ones, which are not even evaluated."""
        if not skip:
            return (yield inputs)
        if type(inputs) is A.ObjectExpr:
            props: dict[str, Value] = {}
            for k, c in sorted(zip(inputs.keys, inputs.values), key=_first):
                if k not in skip:
                    props[k] = yield c
            # The detailed model shows the inputs with the skipped ones as unknowns.
            self.shown[inputs] = Value(
                {k: props.get(k) or Value(None, unknown=True, defn=c) for k, c in zip(inputs.keys, inputs.values)},
                defn=inputs,
            )
            return Value(props, defn=inputs)
        # Not an object literal (a reference, say): nothing to leave out before evaluating.
        return _without_keys((yield inputs), skip)

    def _open_input_schema(self, rotator: Rotator) -> S.Schema:
        """``rotator``'s input schema without its rotateOnly inputs: what inputs are checked
        against when those are not evaluated."""
        cached = self.shared.open_schemas.get(id(rotator))
        if cached is None:
            cached = self.shared.open_schemas[id(rotator)] = _without_properties(
                rotator.input_schema, rotator.rotate_only
            )
        return cached

    def _call_provider(
        self,
        x: A.BuiltinExpr,
        provider: Provider,
        call: Callable[[Value, Mapping[str, Any]], Any],
        arg: Value,
        arg_schema: S.Schema,
        arg_expr: A.Expr,
    ) -> Value:
        """Check ``arg`` against its schema and, in open mode with everything known, call the
        provider; otherwise (or when it fails) the result is unknown with its output schema."""
        unknown = Value(None, unknown=True, schema=provider.output_schema, defn=x)
        if self._schema_errors(S.validate(arg, arg_schema), arg_expr):
            return unknown
        if self.shared.mode == "check":
            return unknown
        self.shared.budget.expand(arg, x)  # a provider may well print or copy its inputs
        if contains_unknown(arg):
            return unknown
        try:
            out = call(arg, self.provider_context)
        except Exception as e:  # any provider failure is a diagnostic, never a crash
            self.error(x, _masked(str(e) or type(e).__name__, arg))
            return unknown
        return _provider_output(out, provider.secret, x)

    def _join(self, x: A.JoinExpr) -> Step:
        if x.delimiter is None or x.values is None:
            return Value(None, unknown=True, defn=x, schema=_result_schema(x))
        delim = yield x.delimiter
        items = yield x.values
        budget = self.shared.budget
        budget.expand(items, x)
        bad = self._schema_errors(S.validate(delim, S.string()), x.delimiter)
        bad = self._schema_errors(S.validate(items, _STRING_ARRAY), x.values) or bad
        secret = contains_secret(delim) or contains_secret(items)
        if bad or contains_unknown(delim) or contains_unknown(items):
            return Value(None, secret, True, defn=x, schema=_result_schema(x))
        parts = items.repr
        budget.text(sum(len(i.repr) for i in parts) + len(delim.repr) * max(0, len(parts) - 1), x)
        return Value(delim.repr.join(i.repr for i in parts), secret, defn=x, schema=_S_STRING)

    def _split(self, x: A.SplitExpr) -> Step:
        if x.delimiter is None or x.string is None:
            return Value(None, unknown=True, defn=x, schema=_result_schema(x))
        delim = yield x.delimiter
        s = yield x.string
        bad = self._schema_errors(S.validate(delim, S.string()), x.delimiter)
        bad = self._schema_errors(S.validate(s, S.string()), x.string) or bad
        secret = contains_secret(delim) or contains_secret(s)
        if bad or delim.unknown or s.unknown:
            return Value(None, secret, True, defn=x, schema=_result_schema(x))
        # As many values as pieces: count them before building them.
        self.shared.budget.nodes(len(s.repr) if delim.repr == "" else s.repr.count(delim.repr) + 1, x)
        parts = list(s.repr) if delim.repr == "" else s.repr.split(delim.repr)
        return Value([Value(p, secret, defn=x) for p in parts], secret, defn=x, schema=_STRING_ARRAY)

    def _validate(self, x: A.ValidateExpr) -> Step:
        if x.schema is None or x.value is None:
            return Value(None, unknown=True, defn=x)
        sv = yield x.schema
        v = yield x.value
        budget = self.shared.budget
        budget.expand(sv, x.schema)
        budget.expand(v, x.value)  # validation walks the value
        if contains_unknown(sv):
            return v.with_(defn=x)
        # A schema holding a secret anywhere (a const, an enum, keys from fn::fromJSON of a
        # secret...) is never quoted: not in its own errors, not in the violations it finds.
        secret_schema = contains_secret(sv)
        try:
            sch = S.Schema.from_json(to_plain(sv))
        except Exception as e:
            self.error(x.schema, f"invalid schema: {SECRET_TEXT if secret_schema else e}")
            return Value(None, unknown=True, defn=x)
        if self._schema_errors(S.validate(v, sch), x.value, secret_schema):
            return Value(None, contains_secret(v), True, defn=x)
        return v.with_(defn=x)


def _first(pair: tuple[str, A.Expr]) -> str:
    return pair[0]


_LITERALS = frozenset([A.StringExpr, A.NumberExpr, A.BoolExpr, A.NullExpr])


def _literal(x: A.Expr) -> Value:
    """The value of a literal expression (one of ``_LITERALS``)."""
    return Value(None if type(x) is A.NullExpr else x.value, defn=x)  # type: ignore[attr-defined]


# -- builtin helpers ------------------------------------------------------------------------


class _BuiltinError(Exception):
    """A builtin's failure. ``redacted``: the message without anything taken from the argument
    (used when the argument is secret); ``None`` when the message quotes nothing of it."""

    def __init__(self, message: str, redacted: str | None = None) -> None:
        super().__init__(message)
        self.redacted = redacted


def _masked(message: str, arg: Value) -> str:
    """``message`` (a provider's error text) with every secret text of ``arg`` of 3 or more
    characters replaced by ``[secret]``: providers echo their inputs in errors. Shorter ones
    cannot be told from ordinary words (the same floor as ``esc-pulumi run``'s masking)."""
    if not contains_secret(arg):
        return message
    texts: set[str] = set()
    stack: list[tuple[Value, bool]] = [(arg, False)]
    while stack:
        v, inherited = stack.pop()
        sec = inherited or bool(v.secret)
        r = v.repr
        if type(r) is dict:
            stack.extend((c, sec) for c in r.values())
            if sec:
                texts.update(r)  # a secret object's keys are secret-derived too
        elif type(r) is list:
            stack.extend((c, sec) for c in r)
        elif sec and not v.unknown and r is not None:
            texts.add(scalar_text(r))
    for t in sorted((t for t in texts if len(t) >= 3), key=len, reverse=True):
        message = message.replace(t, SECRET_TEXT)
    return message


def _mark_secret(v: Value) -> Value:
    return from_plain(v, secret=True)


def _provider_output(out: Any, secret: bool, x: A.Expr) -> Value:
    """A provider's output rebuilt from plain data (spec section 10): every node is defined by
    the call ``x`` (echoed inputs keep neither their ranges nor their bases), and secret when
    the output marked it so, when it was secret itself, or when a container above it is."""
    sealed = from_plain(out, secret)
    root: list[Value] = [None]  # type: ignore[list-item]
    stack: list[tuple[Value, Any, Any]] = [(sealed, root, 0)]
    while stack:
        v, parent, key = stack.pop()
        r = v.repr
        if not v.unknown and type(r) is dict:
            d: dict[str, Value] = dict.fromkeys(r)  # type: ignore[arg-type]  # keeps key order
            stack.extend((c, d, k) for k, c in r.items())
            r = d
        elif not v.unknown and type(r) is list:
            lst: list[Value] = [None] * len(r)  # type: ignore[list-item]
            stack.extend((c, lst, i) for i, c in enumerate(r))
            r = lst
        parent[key] = Value(r, v.secret, v.unknown, final=v.final, schema=v.schema if v.unknown else None, defn=x)
    return root[0]


def _with_defn(v: Value, x: A.Expr) -> Value:
    return v.with_(defn=x) if v.defn is None else v


def _without_keys(v: Value, keys: frozenset[str]) -> Value:
    """An object value without ``keys`` (any other value as it is)."""
    if v.unknown or type(v.repr) is not dict or not keys.intersection(v.repr):
        return v
    return v.with_(repr={k: c for k, c in v.repr.items() if k not in keys}, own=None)


def _without_properties(schema: S.Schema, names: frozenset[str]) -> S.Schema:
    """An object schema without the properties ``names`` (nor their ``required`` entries)."""
    j = schema.to_json()
    if not isinstance(j, dict):
        return schema
    j = dict(j)
    if isinstance(j.get("properties"), dict):
        j["properties"] = {k: v for k, v in j["properties"].items() if k not in names}
    if isinstance(j.get("required"), list):
        j["required"] = [k for k in j["required"] if k not in names]
    j.pop("rotateOnly", None)
    return S.Schema.from_json(j)


class _Unary(Record):
    __slots__ = ("schema", "apply")
    schema: S.Schema | None
    apply: Callable[[Value, Budget, A.Expr], Any]  # the budget bounds what the builtin builds


def _concat(v: Value, budget: Budget, x: A.Expr) -> Any:
    # The result is the builtin's; its elements keep their own definitions.
    return Value([item for arr in v.repr for item in arr.repr], defn=x, schema=_S_ANY_ARRAY)


def _to_json(v: Value, budget: Budget, x: A.Expr) -> str:
    # The text has at least a character per value besides its strings: refuse it unbuilt.
    nodes, chars = budget.measure(v)
    budget.fits(nodes + chars)
    return go_json(to_plain(v))


def _from_json(v: Value, budget: Budget, x: A.Expr) -> Any:
    text = v.repr
    try:
        data, _ = json.JSONDecoder(parse_float=JSONNumber).raw_decode(text.lstrip(" \t\r\n"))
    except json.JSONDecodeError as e:
        msg = e.msg.lower()
        # json's messages carry no text of the input, but the pure-Python scanner's "invalid
        # \\escape: 'x'" quotes a character: a secret's error keeps only the first part.
        raise _BuiltinError(f"decoding JSON string: {msg}", f"decoding JSON string: {msg.split(':', 1)[0]}") from None
    budget.nodes(count_plain(data, budget.limits.max_nodes))  # before building a value per item
    return from_plain(data, v.secret, defn=x)  # every node is the builtin's


def _to_base64(v: Value, budget: Budget, x: A.Expr) -> str:
    return base64.b64encode(v.repr.encode("utf-8")).decode("ascii")


_NOT_B64 = re.compile(r"[^A-Za-z0-9+/=]")


def _from_base64(v: Value, budget: Budget, x: A.Expr) -> str:
    text = v.repr.replace("\r", "").replace("\n", "")
    # A regular expression, not a loop per character: the text may be megabytes long.
    bad_char = _NOT_B64.search(text)
    if bad_char is not None:
        raise _BuiltinError(
            f"decoding base64 string: illegal base64 data at input byte {bad_char.start()}",
            f"decoding base64 string: illegal base64 data at input byte {SECRET_TEXT}",
        )
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pos = text.find("=")
        n = pos if pos >= 0 else (len(text) // 4) * 4
        raise _BuiltinError(
            f"decoding base64 string: illegal base64 data at input byte {n}",
            f"decoding base64 string: illegal base64 data at input byte {SECRET_TEXT}",
        ) from None
    return raw.decode("utf-8", errors="replace")


def _to_string(v: Value, budget: Budget, x: A.Expr) -> str:
    return to_string(v)[0]


_STRING_ARRAY = S.array(S.string())
_UNARY: dict[str, _Unary] = {
    "fn::concat": _Unary(S.array(S.array()), _concat),
    "fn::toJSON": _Unary(None, _to_json),
    "fn::fromJSON": _Unary(S.string(), _from_json),
    "fn::toBase64": _Unary(S.string(), _to_base64),
    "fn::fromBase64": _Unary(S.string(), _from_base64),
    "fn::toString": _Unary(None, _to_string),
    "fn::final": _Unary(None, lambda v, budget, x: v),
}


def builtin_arg_schema(x: A.BuiltinExpr, providers: ProviderRegistry) -> S.Schema:
    """The schema a builtin call's argument is checked against, as the detailed model shows
    it (``argSchema``)."""
    name = x.name
    fixed = _ARG_SCHEMAS.get(name)
    if fixed is not None:
        return fixed
    if type(x) is A.OpenExpr:
        p = providers.provider(x.provider) if x.provider is not None else None
        inputs = p.input_schema if p is not None else S.ALWAYS
        if name.startswith("fn::open::"):
            return inputs
        return S.record({"inputs": inputs, "provider": S.string()}, required=["inputs", "provider"])
    if type(x) is A.RotateExpr:
        r = providers.rotator(x.provider) if x.provider is not None else None
        inputs = r.input_schema if r is not None else S.ALWAYS
        state = S.one_of(r.state_schema, S.null()) if r is not None else S.ALWAYS
        if name.startswith("fn::rotate::"):
            return S.record({"inputs": inputs, "state": state}, required=["inputs", "state"])
        return S.record(
            {"inputs": inputs, "provider": S.string(), "state": state}, required=["inputs", "provider", "state"]
        )
    return S.ALWAYS


_S_STRING = S.string()
_S_ANY_ARRAY = S.array()
# What builtins give, for the detailed model's schemas (also when a call fails: unknown).
_RESULT_SCHEMAS: dict[str, S.Schema] = {
    "fn::concat": _S_ANY_ARRAY,
    "fn::join": _S_STRING,
    "fn::split": _STRING_ARRAY,
    "fn::toJSON": _S_STRING,
    "fn::toBase64": _S_STRING,
    "fn::fromBase64": _S_STRING,
    "fn::toString": _S_STRING,
}


def _result_schema(x: A.BuiltinExpr) -> S.Schema | None:
    return _RESULT_SCHEMAS.get(x.name)
_ARG_SCHEMAS: dict[str, S.Schema] = {
    "fn::concat": S.array(S.array()),
    "fn::join": S.tuple_(S.string(), _STRING_ARRAY),
    "fn::split": S.tuple_(S.string(), S.string()),
    "fn::fromJSON": S.string(),
    "fn::toBase64": S.string(),
    "fn::fromBase64": S.string(),
}


def _accessor_range(x: A.Expr, access: A.PropertyAccess, i: int) -> Range:
    """Where a problem with accessor ``i`` is reported: the accessor's own range, the root's
    included (spec section 10)."""
    if not A.is_mappable(x.node):
        return x.range  # positions inside a quoted or multi-line scalar: the whole of it
    a = access.accessors[i]
    start, end = a.start, a.end
    if i == 0 and start == end:
        # An empty root: ``${}`` is placed on its '}', a bare ``${`` at its (zero-width) end.
        end = start + 1 if access.end > start else start
    return A.offset_range(x.range, start, end)


def _index_problem(index: int, length: int, secret: bool) -> str | None:
    """What is wrong with ``index`` into an array of ``length``; a secret array's length is
    secret-derived, so it is not quoted (the index is the definition's own text)."""
    if index < 0:
        return "array indices must not be negative"
    if index >= length:
        return f"array index {index} out-of-bounds for array of length {SECRET_TEXT if secret else length}"
    return None


def _unknown_property(key: str, candidates: list[str]) -> str:
    near = closest(key, candidates)
    return f'unknown property "{key}"' + (f'; did you mean "{near}"?' if near else "")
