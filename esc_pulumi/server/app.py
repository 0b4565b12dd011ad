"""The ESC REST API as a Starlette application, evaluated by the embedded engine.

Endpoints (all under ``/api/esc``; JSON or YAML bodies as the ESC API has them):

- ``GET  /ping`` (no token: the framework's floor for benchmarks and health checks)
- ``GET|POST /environments/{org}`` list (``continuationToken``), create
- ``POST /environments/{org}/yaml/check`` (``?showSecrets=true``), ``POST /environments/{org}/yaml/open``,
  ``GET /environments/{org}/yaml/open/{id}`` (anonymous definitions, as the Pulumi CLI uses them)
- ``GET|HEAD|PATCH|DELETE /environments/{org}/{project}/{env}`` definition, ETag, update, delete
- ``POST .../clone``, ``GET .../decrypt``, ``POST .../rotate`` (:mod:`.rotation`), ``POST .../open``, ``GET .../open/{id}`` (and
  ``.../open//{id}?property=path``)
- ``GET .../versions``, ``GET .../versions/{version}``, ``POST .../versions/{version}/open``
- ``GET|POST .../versions/tags``, ``GET|PATCH|DELETE .../versions/tags/{tag}``
- ``GET|POST .../tags``, ``GET|PATCH|DELETE .../tags/{tag}``

``yaml/check`` and a whole-session read answer the API's ``Environment`` (``exprs``,
``properties``, ``schema``, ``executionContext``: the engine's detailed model); a check redacts
it by the model's own rule unless ``?showSecrets=true``; a session reveals what it opened.

With ``ServerConfig.issuer_url`` (``esc-pulumi serve --issuer-url``), the OIDC issuer's
``<issuer path>/.well-known/openid-configuration`` and ``.../jwks.json``, without a token
(:mod:`.oidc`).

and, outside ``/api/esc``, ``GET /healthz`` (the process is alive) and ``GET /readyz`` (the
database answers: 503 while it does not), for load balancers.

A store call that finds the database away (PostgreSQL stopped, the network cut) is answered
``503`` with ``Retry-After``; nothing was acknowledged, and the store's pool reconnects by itself.

Requests are handled on the event loop thread: SQLite calls are short, and one thread
serialises every read-check-write without further locking. Evaluations never run there: parsing
and evaluating a definition (check, open, the check before a save) happen in a bounded pool of
worker processes (:mod:`.pool`), under the engine's budget (``ServerConfig.eval_limits``) and a
time limit (``eval_timeout``) after which the worker is killed; views of opened sessions are
built on a helper thread (they are bounded by the budget). A request over a limit is answered
``422`` with the diagnostic (see :func:`_limit_error`).

Example::

    app = create_app(ServerConfig(data_dir=Path("data")))
    uvicorn.run(app, host="127.0.0.1", port=8080)
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import pickle
import time
import traceback
import weakref
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from ..secrets.crypto import AesGcmCipher
from ..secrets.definitions import encrypt_secrets, reseal_secrets
from .keys import OrgKeyring, migrate_ciphertexts
from ..errors import DecryptionError, EscError, InvalidReference
from ..refs import NameKind, name_problem
from ..esc import ANONYMOUS, EvalLimits, LoadedEnvironment, LoadError, ProviderRegistry, Value, evaluate_environment, load_definition
from ..esc.budget import LimitDiagnostic
from ..esc.diagnostics import Diagnostic, error as error_diagnostic
from ..esc.interpolation import parse_path
from ..esc.values import value_at
from ..esc.model_form import json_size, to_api
from ..esc.views import detailed, diagnostic_json
from ..refs import EnvironmentRef
from . import auth
from .accesslog import AccessLog, loggable_path, redacted_path
from .audit import AuditUnavailable, AuditWriter
from ..durations import DurationError, parse_duration
from .keys import key_source, open_key
from . import oidc
from .oidc import OidcIssuer
from .memory import map_large_blocks, trim_memory
from .heads import LatestHeads
from .pool import EvalPool, PoolBusy, PoolError, PoolTimeout, default_workers
from .session_store import MemorySessionStore, SessionStore, choose_session_store
from .shared_sessions import SessionRow, session_rows
from .rotation import RotateOutcome, job_rotate, rotate_paths
from .transfer import pack_value, unpack_value
from .encoding import dumps
from .sessions import (
    DEFAULT_DURATION,
    MAX_DURATION,
    Evaluation,
    Session,
    SessionGone,
    SessionLimits,
    SessionTooLarge,
    estimate_size,
)
from .store import (
    LATEST,
    AuditEntry,
    Conflict,
    EnvironmentInfo,
    NotFound,
    Invalid,
    Revision,
    SQLiteStore,
    Store,
    TokenRecord,
    Unavailable,
    decode_page_token,
    encode_page_token,
    now_iso,
    open_store,
    parse_iso,
)

__all__ = ["ServerConfig", "EscServer", "create_app", "load_server_key"]

log = logging.getLogger("esc_pulumi.server")
access_log = logging.getLogger("esc_pulumi.server.access")

PREFIX = "/api/esc"
YAML_TYPE = "application/x-yaml"
JSON_TYPE = "application/json"
MiB = 1 << 20


@dataclass
class ServerConfig:
    """How a server runs. ``cipher`` None: the key comes from :func:`load_server_key`
    (checked against the data: see :mod:`.keys`).

    Example::

        ServerConfig(data_dir=Path("esc-data"), session_memory=128 << 20, eval_workers=2)
    """

    data_dir: Path
    # A postgresql:// URL: the store several replicas share (the key file stays in data_dir
    # or key_file); None: SQLite in data_dir/esc.db.
    database: str | None = None
    cipher: AesGcmCipher | None = None
    key_file: Path | None = None
    page_size: int = 100
    max_body: int = 1 << 20
    # None: the default registry, whose aws-login takes its OIDC tokens from this server's
    # issuer (or fails, naming --issuer-url); an application's own registry is used as it is.
    providers: ProviderRegistry | None = None
    # The server's public URL as an OIDC issuer (``esc-pulumi serve --issuer-url``; see
    # :mod:`.oidc`), and its signing key file (None: ``<data>/oidc-signing.pem``).
    issuer_url: str | None = None
    oidc_key_file: Path | None = None
    # Open sessions hold plaintext in memory: their number, their estimated memory in all and
    # per organisation (None: all of it; the fair-share eviction still keeps organisations
    # apart), and their lifetime (the ``duration`` an open may ask for, and its default).
    max_sessions: int = 10_000
    session_memory: int = 256 * MiB
    session_org_memory: int | None = None
    default_duration: float = DEFAULT_DURATION
    max_duration: float = MAX_DURATION
    # Sessions in the database, readable by every server process on the store (several SQLite
    # servers on one folder: ``serve --shared-sessions``; launch.run_workers sets it for
    # ``--workers N``); PostgreSQL always shares them. False on SQLite: in this process's
    # memory only, an open writes no session row (see .session_store).
    shared_sessions: bool = False
    # Parsed definitions are cached per process (workers included) up to this much YAML text;
    # a parsed definition takes 30 to 100 times its text's size.
    decl_cache_bytes: int = 2 * MiB
    # The evaluation budget of every check and open (sizes and work; see esc.EvalLimits).
    eval_limits: EvalLimits = field(default_factory=EvalLimits)
    # Seconds one evaluation may take: the engine stops itself then (a diagnostic), and a worker
    # still busy a little later is killed. Either way the request gets a 422.
    eval_timeout: float = 10.0
    # Worker processes evaluating at once; 0 evaluates on threads of this process (for a
    # ``cipher`` or ``providers`` that cannot be sent to another process; only the engine's
    # cooperative deadline bounds the time then). Default: one fewer than the cores, at least
    # two (see .pool.default_workers: the workers keep off the request loops' core).
    eval_workers: int = field(default_factory=default_workers)
    # Requests that may wait for a worker; beyond that the server answers 503.
    eval_queue: int = 64


def load_server_key(data_dir: Path, key_file: Path | None = None, environ: dict[str, str] | None = None,
                    store: Store | None = None) -> AesGcmCipher:
    """The server cipher: ``key_file``, else ``ESC_PULUMI_SERVER_KEY_FILE``, else
    ``<data>/server.key``. Checked against the store's key check value (``EscError`` naming the
    source when it is another key); created with a fresh random key only when absent and the
    store holds no data yet."""
    source = key_source(Path(data_dir), key_file, environ)
    own = store is None
    st = store or open_store(Path(data_dir), None)
    try:
        return open_key(source, st, Path(data_dir))
    finally:
        if own:
            st.close()


class ApiError(Exception):
    """An error answered as ``{"code": status, "message": ...}`` (plus ``diagnostics``)."""

    def __init__(self, status: int, message: str, diagnostics: list[Diagnostic] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.diagnostics = diagnostics


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(obj), status_code=status, media_type=JSON_TYPE, headers=headers)


def error_response(status: int, message: str, diagnostics: list[Diagnostic] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"code": status, "message": message}
    if diagnostics is not None:
        body["diagnostics"] = [diagnostic_json(d) for d in diagnostics]
    return json_response(body, status, headers)


class _OrgLoader:
    """Resolves imports (``env``, ``proj/env``, ``@rev``/``@tag``) inside one organisation."""

    def __init__(self, server: "EscServer", org: str) -> None:
        self.server = server
        self.org = org
        self.resolved: list[tuple[str, int, int]] = []
        # Whether anything loaded runs providers or rotators: such results are never reused.
        self.dynamic = False

    def load(self, name: str) -> LoadedEnvironment:
        try:
            ref = EnvironmentRef.parse(name)
        except InvalidReference as e:
            raise LoadError(str(e)) from None
        try:
            env_id, number = self.server.store.resolve_version(self.org, ref.project, ref.name, ref.version)
        except NotFound:
            raise LoadError(f'unknown environment "{name}"') from None
        decl, diags = self.server.declaration(env_id, number, f"{ref.project}/{ref.name}")
        self.resolved.append((name, env_id, number))
        self.dynamic = self.dynamic or self.server.is_dynamic(env_id, number)
        decrypter = self.server.keyring.for_env(self.org, ref.project, ref.name).decrypt
        return LoadedEnvironment(text="", decl=decl, diagnostics=diags, decrypter=decrypter)


class EscServer:
    """The server's state: store, cipher, caches, open sessions, the audit writer.

    ``worker=True`` builds the state of an evaluation worker process: it reads the key the
    server already checked, and neither audits nor keeps sessions.
    """

    def __init__(self, config: ServerConfig, store: Store | None = None, worker: bool = False) -> None:
        self.config = config
        self.store: Store = store or open_store(Path(config.data_dir), config.database,
                                                **({"max_size": 2} if worker else {}))
        if config.cipher is not None:
            self.cipher = config.cipher
        elif worker:
            from ..secrets.crypto import read_key_file

            self.cipher = AesGcmCipher(read_key_file(key_source(Path(config.data_dir), config.key_file).path))
        else:
            self.cipher = load_server_key(Path(config.data_dir), config.key_file, store=self.store)
        # Secrets are encrypted with per-organisation data keys, bound to their environment.
        self.keyring = OrgKeyring(self.cipher, self.store)
        if not worker:
            count, backup = migrate_ciphertexts(self.store, self.keyring)
            if count:
                log.warning("re-encrypted the ciphertexts of %d revisions for their organisation and environment "
                            "(the store before that: %s)", count, backup)
        # Workers read the signing key the server made (or checked) before they started.
        self.issuer = (OidcIssuer.load(config.issuer_url, Path(config.data_dir), create=not worker,
                                       key_file=config.oidc_key_file) if config.issuer_url else None)
        self.providers = config.providers or self._default_providers()
        # The engine's deadline is the request's time limit; the pool kills a worker a little
        # after it, so the engine's diagnostic (with its range) normally arrives first.
        limits = config.eval_limits
        if limits.timeout is None or limits.timeout > config.eval_timeout:
            limits = limits.replace(timeout=config.eval_timeout)
        self.limits = limits
        # Revisions never change, so a parsed declaration is cached for good (LRU, bounded by
        # the YAML text it came from: a parsed definition is 30 to 100 times larger).
        self._decls: OrderedDict[tuple[int, int], tuple[Any, tuple[Diagnostic, ...], int]] = OrderedDict()
        self._decl_bytes = 0
        self._dynamic: dict[tuple[int, int], bool] = {}
        # Evaluations reused by later opens of the same revisions, for as long as a session holds
        # them: weak, so that the cache holds no memory beyond the sessions' budget.
        self._evaluations: weakref.WeakValueDictionary[tuple[Any, ...], Evaluation] = weakref.WeakValueDictionary()
        # (org, actor, project, name) -> the key in _evaluations of the last open of that stored
        # environment's latest revision: the next such open checks the root and its imports
        # with one query (see resolve_open). Only a hint: the evaluation may be gone.
        self._latest_opens: dict[tuple[str, str, str, str], tuple[Any, ...]] = {}
        self.heads = LatestHeads(self.store.latest_heads)  # opens' cache checks, read together
        # token hash -> (record, when it was read): re-read after auth.TOKEN_RECHECK_SECONDS so
        # that a revocation or a deleted row reaches a running server within a second.
        self._tokens: dict[str, tuple[TokenRecord, float]] = {}
        session_limits = SessionLimits(
            max_bytes=config.session_memory, max_org_bytes=config.session_org_memory,
            max_sessions=config.max_sessions, default_duration=config.default_duration,
            max_duration=config.max_duration)
        self.audit: AuditWriter | None = None
        # Where open sessions live: this process's memory, or the database for every process.
        self.sessions: SessionStore = MemorySessionStore(session_limits, self.audit_now)
        if not worker:
            self.sessions = choose_session_store(self.store, session_limits, self.cipher, self.audit_now,
                                                 shared=config.shared_sessions)
            # Its own connection: the commit's fsync never holds the one requests read through
            # (a PostgreSQL store lends each thread a connection of its pool). Shared sessions
            # ride its group commit, in the transaction of their open's entries.
            audit_store = SQLiteStore(self.store.path) if isinstance(self.store, SQLiteStore) else self.store
            self.audit = AuditWriter(audit_store,
                                     session_rows=session_rows(audit_store) if self.sessions.shared else None,
                                     session_limits=session_limits)

    def _default_providers(self) -> ProviderRegistry:
        """The registry every server has (the installed providers, by their entry points), its
        ``aws-login`` taking OIDC tokens from this server only: never from the server's own
        environment (``ESC_PULUMI_OIDC_TOKEN``), which every organisation would share."""
        from ..providers.aws import AwsLogin

        source = self.issuer.token_source if self.issuer is not None else oidc.no_issuer
        return ProviderRegistry({"aws-login": AwsLogin(token_source=source)})

    # -- caches --------------------------------------------------------------------------------

    def declaration(self, env_id: int, number: int, name: str) -> tuple[Any, tuple[Diagnostic, ...]]:
        key = (env_id, number)
        hit = self._decls.get(key)
        if hit is not None:
            self._decls.move_to_end(key)
            return hit[0], hit[1]
        rev = self.store.get_revision_by_id(env_id, number)  # type: ignore[attr-defined]
        if rev is None:
            raise LoadError(f"revision {number} not found")
        decl, diags = load_definition(rev.yaml, name)
        size = len(rev.yaml)
        self._dynamic[key] = _is_dynamic(rev.yaml)
        if size <= self.config.decl_cache_bytes:
            self._decls[key] = (decl, tuple(diags), size)
            self._decl_bytes += size
            while self._decl_bytes > self.config.decl_cache_bytes or len(self._decls) > 2048:
                old, (_, _, old_size) = self._decls.popitem(last=False)
                self._decl_bytes -= old_size
                self._dynamic.pop(old, None)
        return decl, tuple(diags)

    def is_dynamic(self, env_id: int, number: int) -> bool:
        return self._dynamic.get((env_id, number), True)

    def revision_is_dynamic(self, env_id: int, number: int) -> bool:
        """Whether a stored revision may run providers, without parsing it (that happens in a
        worker)."""
        key = (env_id, number)
        hit = self._dynamic.get(key)
        if hit is None:
            rev = self.store.get_revision_by_id(env_id, number)  # type: ignore[attr-defined]
            hit = True if rev is None else _is_dynamic(rev.yaml)
            if len(self._dynamic) > 4096:
                self._dynamic.clear()
            self._dynamic[key] = hit
        return hit

    # -- tokens ----------------------------------------------------------------------------------

    def _token(self, h: str) -> TokenRecord | None:
        now = time.monotonic()
        hit = self._tokens.get(h)
        if hit is not None and now - hit[1] < auth.TOKEN_RECHECK_SECONDS:
            return hit[0]
        record = self.store.find_token(h)
        if record is None:
            self._tokens.pop(h, None)
            return None
        if len(self._tokens) > 10_000:  # only valid tokens are kept, so this is a safety net
            self._tokens.clear()
        self._tokens[h] = (record, now)
        return record

    def authenticate(self, request: Request, org: str, action: str) -> TokenRecord:
        """The token's record if it may do ``action`` in ``org``; else an ApiError 401/403,
        audited (in the background: a flood of bad tokens must not slow the answers)."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() not in ("token", "bearer") or not token:
            self._deny(request, org, action, "anonymous", 401, "no token")
            raise ApiError(401, "unauthorized: send 'Authorization: token <token>' (create one with "
                                "'esc-pulumi serve token create')")
        h = auth.hash_token(token)
        record = self._token(h)
        if record is None:
            self._deny(request, org, action, f"unknown-token:{h[:8]}", 401, "unknown token")
            raise ApiError(401, "unauthorized: the token is not valid")
        if record.revoked:
            self._deny(request, org, action, record.name, 401, "revoked token")
            raise ApiError(401, "unauthorized: the token was revoked")
        if record.expires and parse_iso(record.expires) <= time.time():
            self._deny(request, org, action, record.name, 401, "expired token")
            raise ApiError(401, f"unauthorized: the token expired at {record.expires}: create a new one")
        if record.org != org:
            self._deny(request, org, action, record.name, 403, f"token of organization {record.org}")
            raise ApiError(403, f"forbidden: the token is not valid for organization {org!r}")
        if not auth.allows(record.role, action):
            self._deny(request, org, action, record.name, 403, f"{record.role} role")
            raise ApiError(403, f"forbidden: the {record.role} role may not {action} "
                                f"(needs {auth.role_needed(action)})")
        if self.audit is not None:
            self.audit.touch(h)
        return record

    # -- audit -----------------------------------------------------------------------------------

    def _deny(self, request: Request, org: str, action: str, actor: str, status: int, reason: str) -> None:
        if self.audit is None:
            return
        p = request.path_params
        target = f"{p['project']}/{p['env']}" if "project" in p and "env" in p else "-"
        detail = f"{status} {action}: {reason} ({request.method} {redacted_path(request.scope)})"
        # The names come from the request path: bounded here, escaped when printed.
        self.audit.write_soon(AuditEntry(now_iso(), org[:200], actor, "access.denied", target[:300], detail[:1000]))

    async def audit_now(self, entries: list[AuditEntry], sessions: list[tuple[SessionRow, bytes]] | None = None
                        ) -> None:
        """Write ``entries`` (and new ``sessions``) durably before the caller answers; 503 when
        the log cannot be written (an open that cannot be audited is not served)."""
        if self.audit is None:
            return
        try:
            await self.audit.write(entries, sessions or ())
        except AuditUnavailable:
            raise ApiError(503, "the audit log cannot be written: try again later") from None

    # -- sessions --------------------------------------------------------------------------------

    async def open_session(self, org: str, target: tuple[str, str] | None, environment: str,
                           evaluation: Evaluation, duration: float, entries: list[AuditEntry]) -> Session:
        """A new session where this server keeps them (:mod:`.session_store`: memory, or the
        database for every process), returned once the open's audit ``entries`` are durable."""
        return await self.sessions.open(org, target, environment, evaluation, duration, entries)

    async def get_session(self, org: str, target: tuple[str, str] | None, sid: str) -> Session:
        """The session ``sid`` of ``org`` and ``target`` (404 when it is gone: expired, evicted
        or never there; 422 when it is larger than this process may hold)."""
        try:
            return await self.sessions.get(org, target, sid)
        except SessionGone as e:
            raise ApiError(404, str(e)) from None
        except SessionTooLarge as e:
            raise ApiError(422, str(e)) from None

    # -- evaluation ------------------------------------------------------------------------------

    def evaluate(self, org: str, decl: Any, mode: str, actor: TokenRecord, env: tuple[str, str] | None = None
                 ) -> tuple[Value, list[Diagnostic]]:
        value, diags, _, _ = self._evaluate(org, decl, mode, actor, env)
        return value, diags

    def _evaluate(self, org: str, decl: Any, mode: str, actor: TokenRecord, env: tuple[str, str] | None = None
                  ) -> tuple[Value, list[Diagnostic], _OrgLoader, bool]:
        """``env``: the stored environment (project, name) ``decl`` is, whose ciphertexts it
        opens; None for an anonymous definition (which opens none of its own)."""
        ev, loader = self._evaluation(org, decl, mode, actor, env)
        if ev is None:  # an empty definition
            return Value({}), [], loader, False
        return ev.value, ev.diagnostics, loader, loader.dynamic

    def _evaluation(self, org: str, decl: Any, mode: str, actor: TokenRecord, env: tuple[str, str] | None = None,
                    show_secrets: bool = False) -> tuple[Any, _OrgLoader]:
        """The engine's evaluation (``None`` for an empty definition), from which the detailed
        Environment is built; ``show_secrets``: a check decrypts the ciphertexts too."""
        if decl is None:
            return None, _OrgLoader(self, org)
        args = self.engine_args(org, decl, actor, env)
        return evaluate_environment(decl, mode=mode, show_secrets=show_secrets, **args), args["loader"]  # type: ignore[arg-type]

    def engine_args(self, org: str, decl: Any, actor: TokenRecord, env: tuple[str, str] | None = None
                    ) -> dict[str, Any]:
        """What the engine gets to evaluate (or rotate) ``decl`` for ``actor`` in ``org``: the
        organisation's loader, the providers, the decrypter (of the stored environment ``env``,
        (project, name); None: an anonymous definition, which opens no ciphertext of its own),
        the context and the limits."""
        # The engine adds currentEnvironment and rootEnvironment (aws-login's OIDC subject).
        context = {"pulumi": {"user": {"login": actor.name}, "organization": {"login": org}}}
        decrypter = self.keyring.for_env(org, *env).decrypt if env is not None else self.keyring.for_inline(org)
        return dict(loader=_OrgLoader(self, org), providers=self.providers, decrypter=decrypter,
                    context=context, limits=self.limits)

    def cached_open(self, org: str, key: tuple[Any, ...] | None, actor: TokenRecord) -> Evaluation | None:
        """The evaluation of the same revisions, if it may be reused.

        ``key`` identifies the root (revision, or definition text); ``None`` never caches. Reuse
        needs: no provider or rotator anywhere (they may answer differently each time), the
        same actor (``context`` names it) and every import resolving to the same revision.
        """
        if key is None:
            return None
        full_key = (org, actor.name, *key)
        hit = self._evaluations.get(full_key)
        if hit is not None and self._still_valid(org, hit):
            return hit
        return None

    def remember_open(self, org: str, key: tuple[Any, ...] | None, actor: TokenRecord, result: Evaluation,
                      dynamic: bool) -> None:
        if key is None or dynamic or _errors(result.diagnostics):
            return
        self._evaluations[(org, actor.name, *key)] = result

    def resolve_open(self, org: str, project: str, name: str, version: str | None, actor: TokenRecord
                     ) -> tuple[int, int, tuple[Any, ...] | None, Evaluation | None]:
        """What an open of a stored environment needs before it evaluates, in one call (one
        thread hop on a database across the network): ``(env id, revision, cache key, the
        evaluation to reuse or None)``. The key is None for a revision that runs providers.
        An open of the latest revision that this actor opened before checks the root's head
        and its imports' with one query; otherwise the root is resolved, then the cache checked."""
        latest = version is None or version == LATEST
        if latest:
            hit = self._reuse_latest(org, project, name, actor)
            if hit is not None:
                return hit
        env_id, number = self.store.resolve_version(org, project, name, version)
        key = None if self.revision_is_dynamic(env_id, number) else ("rev", env_id, number)
        if latest and key is not None:
            if len(self._latest_opens) > 10_000:  # a safety net: one entry per environment and actor
                self._latest_opens.clear()
            self._latest_opens[(org, actor.name, project, name)] = (org, actor.name, *key)
        return env_id, number, key, self.cached_open(org, key, actor)

    async def resolve_open_async(self, org: str, project: str, name: str, version: str | None, actor: TokenRecord
                                 ) -> tuple[int, int, tuple[Any, ...] | None, Evaluation | None]:
        """:meth:`resolve_open` from the event loop. On a database across the network, the
        usual open (the latest revision, an evaluation of it held, no import pinned) checks its
        heads with those of the other opens arriving meanwhile (:class:`.heads.LatestHeads`:
        one query and one thread hop for them all) and needs nothing else; any other open
        takes :meth:`resolve_open` on a thread."""
        if not isinstance(self.store, SQLiteStore):
            if version is None or version == LATEST:
                held = self._latest_held(org, project, name, actor)
                if held is not None and not held.pinned:
                    hit = self._reuse_same(org, actor, held, await self.heads.get(held.head_keys(org, project, name)))
                    if hit is not None:
                        return hit
            return await asyncio.to_thread(self.resolve_open, org, project, name, version, actor)
        return self.resolve_open(org, project, name, version, actor)

    def _latest_held(self, org: str, project: str, name: str, actor: TokenRecord) -> "_Held | None":
        """The evaluation of the last revision of ``project/name`` this actor opened, if it is
        still held."""
        full_key = self._latest_opens.get((org, actor.name, project, name))
        ev = self._evaluations.get(full_key) if full_key is not None else None
        refs = self._dep_refs(ev) if ev is not None else None
        if ev is None or refs is None or full_key is None:
            return None
        return _Held(full_key, ev, *_split_refs(refs))

    def _reuse_same(self, org: str, actor: TokenRecord, held: "_Held", heads: list[Any]
                    ) -> tuple[int, int, tuple[Any, ...] | None, Evaluation | None] | None:
        """:meth:`resolve_open`'s answer from the heads of ``held``'s root and imports (in
        :meth:`_Held.head_keys` order) when the root is still at the held revision; None when
        it is not (or is gone): the store must say more."""
        root = heads[0]
        if root is None or (org, actor.name, "rev", *root) != held.full_key:
            return None
        ev = held.ev if self._closure_holds(org, held.latest, held.pinned, heads[1:]) else None
        return (*root, held.full_key[2:], ev)

    def _reuse_latest(self, org: str, project: str, name: str, actor: TokenRecord
                      ) -> tuple[int, int, tuple[Any, ...] | None, Evaluation | None] | None:
        """:meth:`resolve_open` for the latest revision, when an evaluation of the last one this
        actor opened is still held; None otherwise (or when the root is not found: the caller's
        resolve_version says so)."""
        held = self._latest_held(org, project, name, actor)
        if held is None:
            return None
        heads = self.store.latest_heads(held.head_keys(org, project, name))
        same = self._reuse_same(org, actor, held, heads)
        root = heads[0]
        if same is not None or root is None:
            return same
        key = ("rev", *root)  # a new revision: the usual way (rare)
        if self.revision_is_dynamic(*root):
            return (*root, None, None)
        self._latest_opens[(org, actor.name, project, name)] = (org, actor.name, *key)
        return (*root, key, self.cached_open(org, key, actor))

    def _dep_refs(self, ev: Evaluation) -> tuple[tuple[Any, tuple[int, int]], ...] | None:
        """``ev``'s imports parsed (once); None when one no longer parses."""
        if ev.dep_refs is None:
            try:
                ev.dep_refs = tuple((EnvironmentRef.parse(name), (env_id, number)) for name, env_id, number in ev.deps)
            except InvalidReference:
                return None
        return ev.dep_refs

    def _still_valid(self, org: str, ev: Evaluation) -> bool:
        """Whether every import of ``ev`` still resolves to the revision it read."""
        refs = self._dep_refs(ev)
        if refs is None:
            return False
        # The latest heads of the closure in one query (one round trip on a database across
        # the network); versions pinned by number or tag one by one.
        latest, pinned = _split_refs(refs)
        return self._closure_holds(org, latest, pinned,
                                   self.store.latest_heads([(org, r.project, r.name) for r, _ in latest]))

    def _closure_holds(self, org: str, latest: list[tuple[EnvironmentRef, tuple[int, int]]],
                       pinned: list[tuple[EnvironmentRef, tuple[int, int]]], heads: list[Any]) -> bool:
        """Whether ``heads`` (of ``latest``'s environments, in order) and the ``pinned``
        versions are still the revisions the evaluation read."""
        if any(g != want for g, (_, want) in zip(heads, latest)):
            return False
        for ref, want in pinned:
            try:
                if self.store.resolve_version(org, ref.project, ref.name, ref.version) != want:
                    return False
            except NotFound:
                return False
        return True

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, on a thread when the store is across the network (its round trips
        then overlap other requests), else here (SQLite's calls are shorter than a thread hop)."""
        if isinstance(self.store, SQLiteStore):
            return fn(*args)
        return await asyncio.to_thread(fn, *args)


@dataclass
class _Held:
    """An evaluation held for the latest revision of a stored environment: its cache key, and
    its imports at their latest and pinned (by number or tag)."""

    full_key: tuple[Any, ...]
    ev: Evaluation
    latest: list[tuple[Any, tuple[int, int]]]
    pinned: list[tuple[Any, tuple[int, int]]]

    def head_keys(self, org: str, project: str, name: str) -> list[tuple[str, str, str]]:
        """The environments whose heads decide whether it may be reused: the root, then the
        latest imports."""
        return [(org, project, name)] + [(org, r.project, r.name) for r, _ in self.latest]


def _split_refs(refs: tuple[tuple[Any, tuple[int, int]], ...]
                ) -> tuple[list[tuple[Any, tuple[int, int]]], list[tuple[Any, tuple[int, int]]]]:
    """Imports at their latest revision (checked together, one query), and those pinned by
    number or tag (one by one)."""
    latest: list[tuple[Any, tuple[int, int]]] = []
    pinned: list[tuple[Any, tuple[int, int]]] = []
    for ref, want in refs:
        (latest if ref.version in (None, LATEST) else pinned).append((ref, want))
    return latest, pinned


# -- request helpers ----------------------------------------------------------------------------


def _check_name(kind: "NameKind", name: object) -> None:
    """ESC's name rules (one implementation: esc_pulumi.refs), answered with a 400."""
    problem = name_problem(kind, name)
    if problem is not None:
        raise ApiError(400, problem)


def _check_org(org: str) -> None:
    _check_name("organization", org)


def _check_names(project: str, name: str) -> None:
    _check_name("project", project)
    _check_name("environment", name)


async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isascii() and length.isdigit() and int(length) > limit:
        raise ApiError(413, f"request body too large (limit {limit} bytes)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body too large (limit {limit} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


async def _yaml_text(request: Request, limit: int) -> str:
    raw = await _body(request, limit)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the definition is not UTF-8 text") from None


async def _json_object(request: Request, limit: int, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object body; with ``optional``, no body at all is ``{}``."""
    raw = await _body(request, limit)
    if optional and not raw.strip():
        return {}
    try:
        data = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return data


def _str_field(data: dict[str, Any], key: str, required: bool = True) -> str | None:
    v = data.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str):
        raise ApiError(400, f"'{key}' must be a string")
    return v


def _int_query(request: Request, key: str, default: int | None, lo: int = 0, hi: int = 1 << 31) -> int | None:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {key!r} must be an integer") from None
    if not lo <= v <= hi:
        raise ApiError(400, f"query parameter {key!r} must be between {lo} and {hi}")
    return v


def _bool_query(request: Request, key: str) -> bool:
    """A boolean query parameter (``true``/``false``, ``1``/``0``; absent: false)."""
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return False
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise ApiError(400, f"query parameter {key!r} must be true or false")


def _duration(request: Request, limits: SessionLimits) -> float:
    """The session's lifetime: ``?duration=`` (a Go duration), else the default."""
    raw = request.query_params.get("duration")
    if raw is None or raw == "":
        return limits.default_duration
    try:
        seconds = parse_duration(raw)
    except DurationError as e:
        raise ApiError(400, str(e)) from None
    if not 0 < seconds <= limits.max_duration:
        raise ApiError(400, f"duration must be positive and at most {_hours(limits.max_duration)}")
    return seconds


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g}h" if seconds >= 3600 else f"{seconds:g}s"


def _is_dynamic(text: str) -> bool:
    """Whether a definition may run providers or rotators (conservatively: mentions them)."""
    return "fn::open" in text or "fn::rotate" in text


def _errors(diags: list[Diagnostic] | tuple[Diagnostic, ...]) -> bool:
    return any(d.is_error for d in diags)


def _org_env_json(e: EnvironmentInfo) -> dict[str, Any]:
    return {"organization": e.org, "project": e.project, "name": e.name, "created": e.created, "modified": e.modified}


def _properties(value: Value, environment: str) -> dict[str, Any]:
    r = value.repr if isinstance(value.repr, dict) else {}
    return {k: detailed(v, environment) for k, v in r.items()}


_MODEL_PARTS = ("exprs", "schema", "executionContext")


def _model_parts(model: dict[str, Any], limits: EvalLimits) -> dict[str, bytes]:
    """A detailed model's parts other than the properties, each as its JSON in the API's
    spelling (what a session keeps beside its value: :attr:`.sessions.Evaluation.model`),
    within ``limits`` (:func:`_bounded_model`)."""
    api = _bounded_model(to_api({k: model[k] for k in _MODEL_PARTS if k in model}), limits)
    return {k: dumps(api[k]) for k in _MODEL_PARTS if k in api}


def _bounded_model(model: dict[str, Any], limits: EvalLimits) -> dict[str, Any]:
    """``model`` without ``exprs`` and ``schema`` when their JSON would be longer than the
    evaluation's ``max_bytes``: a deeply nested definition's expression tree and schema grow
    with the square of its depth (each level's schema holds every level below it), and no
    answer or session may grow past what the evaluation itself was allowed."""
    big = {k: model[k] for k in ("exprs", "schema") if k in model}
    if json_size(big) <= limits.max_bytes:
        return model
    return {k: v for k, v in model.items() if k not in big}


def _environment_body(value: Value, environment: str, model: dict[str, bytes] | None) -> bytes:
    """A whole-session read: the API's ``Environment``, the properties from the opened value
    and the model's other parts as the session keeps them (a session sealed before sessions
    kept them has properties only)."""
    model = model or {}
    parts = [b'"exprs":' + model["exprs"]] if "exprs" in model else []
    parts.append(b'"properties":' + dumps(_properties(value, environment)))
    parts.extend(b'"%s":%s' % (k.encode(), model[k]) for k in ("schema", "executionContext") if k in model)
    return b"{" + b",".join(parts) + b"}"


def _lookup(value: Value, path: str) -> Value:
    accessors, errors = parse_path(path)
    if errors:
        raise ApiError(400, f"invalid property path {path!r}: {errors[0].summary}")
    found = value_at(value, [a.key for a in accessors])
    if found is None:
        raise ApiError(404, f"property {path!r} not found")
    return found


# -- evaluation jobs (run in the worker processes of .pool, or on a thread with eval_workers=0) ----
#
# Each gets the worker's own EscServer (its store connection, cipher, parsed-definition cache)
# and returns plain data: diagnostics, rendered bodies, a packed value.


def _limited(diags: list[Diagnostic] | tuple[Diagnostic, ...]) -> bool:
    return any(isinstance(d, LimitDiagnostic) for d in diags)


def _limit_error(diags: list[Diagnostic]) -> ApiError:
    """422 Unprocessable Content: the request is well-formed and the definition valid, but the
    server will not carry out an evaluation that large or that long. Not 413: the request body
    is small (413 already means a body over ``max_body``). The body is the usual error
    (``code``, ``message``: the limit) with the limit's diagnostic, which has its range; it
    names the limit and never a value."""
    limit = next((d for d in diags if isinstance(d, LimitDiagnostic)), None)
    message = limit.summary if limit is not None else "evaluation exceeds its limits"
    return ApiError(422, message, [limit] if limit is not None else [error_diagnostic(message)])


def _seal_for(server: "EscServer", org: str, project: str, name: str, text: str) -> str:
    """``text`` to store as revision of ``org/project/name``: plaintext secrets encrypted for
    it, and every ciphertext it already holds checked to be this environment's (one copied from
    elsewhere is refused now, with its path, rather than failing every later open)."""
    from ..secrets.definitions import decrypt_secrets, uses_ciphertexts

    bound = server.keyring.for_env(org, project, name, create=True)
    if uses_ciphertexts(text):
        try:
            decrypt_secrets(text, bound.decrypt)
        except DecryptionError as e:
            raise ApiError(400, f"{e}; nothing was saved") from None
    return encrypt_secrets(text, bound.encrypt)


def job_check(server: "EscServer", org: str, actor: TokenRecord, text: str, show_secrets: bool = False
              ) -> tuple[int, bytes | None, list[Diagnostic], tuple[tuple[str, int, int], ...]]:
    """``yaml/check``: (status, body, diagnostics, the imports as resolved); status 422 (no
    body) over a limit. The body is the API's whole Environment (spec section 8: ``exprs``,
    ``properties``, ``schema``, ``executionContext``) with the diagnostics, redacted by the
    model's rule (:func:`~esc_pulumi.esc.model.redact_model`) unless ``show_secrets``, which
    also decrypts the ciphertexts."""
    decl, diags = load_definition(text, ANONYMOUS)
    model: dict[str, Any] = {}
    deps: tuple[tuple[str, int, int], ...] = ()
    if not _errors(diags) and decl is not None:
        ev, loader = server._evaluation(org, decl, "check", actor, show_secrets=show_secrets)
        deps = tuple(loader.resolved)
        if ev is not None:
            diags = diags + ev.diagnostics
            if not _limited(ev.diagnostics):
                model = _bounded_model(to_api(ev.detailed(redact=not show_secrets)), server.limits)
    if _limited(diags):
        return 422, None, diags, deps
    body: dict[str, Any] = {}
    if "exprs" in model:
        body["exprs"] = model["exprs"]
    body["properties"] = model.get("properties", {})
    for key in ("schema", "executionContext"):
        if key in model:
            body[key] = model[key]
    body["diagnostics"] = [diagnostic_json(d) for d in diags]
    return (400 if _errors(diags) else 200), dumps(body), diags, deps


def job_validate(server: "EscServer", org: str, actor: TokenRecord, text: str, env_name: str) -> list[Diagnostic]:
    """The check before a save: the definition's diagnostics."""
    decl, diags = load_definition(text, env_name)
    if not _errors(diags) and decl is not None:
        project, _, name = env_name.partition("/")
        _, more = server.evaluate(org, decl, "check", actor, (project, name))
        diags = diags + more
    return diags


@dataclass
class OpenOutcome:
    """What an open sends back: the definition's own diagnostics, the evaluation's, and on
    success the packed value, the imports as resolved, whether providers ran, and the body of
    a session read."""

    parse_diagnostics: list[Diagnostic]
    diagnostics: list[Diagnostic]
    value: Any = field(default=None, repr=False)
    deps: tuple[tuple[str, int, int], ...] = ()
    dynamic: bool = False
    body: bytes | None = field(default=None, repr=False)
    size: int = 0  # the estimated memory of the value once unpacked, with its body and model
    model: dict[str, bytes] | None = field(default=None, repr=False)  # see sessions.Evaluation.model


def job_open(server: "EscServer", org: str, actor: TokenRecord, source: tuple[Any, ...], environment: str
             ) -> OpenOutcome:
    """Open ``("yaml", text)`` or ``("rev", env_id, number, name)``."""
    if source[0] == "yaml":
        decl, parsed = load_definition(source[1], ANONYMOUS)
        diags = list(parsed)
    else:
        try:
            decl, parsed_t = server.declaration(source[1], source[2], source[3])
            diags = list(parsed_t)
        except LoadError as e:  # deleted meanwhile
            return OpenOutcome([error_diagnostic(str(e))], [])
    if _errors(diags):
        return OpenOutcome(diags, [])
    env = tuple(source[3].split("/", 1)) if source[0] == "rev" else None
    ev, loader = server._evaluation(org, decl, "open", actor, env)  # type: ignore[arg-type]
    value, more = (ev.value, ev.diagnostics) if ev is not None else (Value({}), [])
    if _errors(more):
        return OpenOutcome(diags, more)
    # The session's whole Environment, secrets revealed as its properties are (the opener may
    # read them): the parts beside the properties are kept as JSON with the session.
    model = _model_parts(ev.detailed(parts=_MODEL_PARTS), server.limits) if ev is not None else {}
    body = _environment_body(value, environment, model)
    packed = pack_value(value)
    text = sum(len(n[1]) for n in packed if n[0] == "s" and type(n[1]) is str)
    size = estimate_size(len(packed), text, len(body), sum(len(v) for v in model.values()))
    return OpenOutcome(diags, more, packed, tuple(loader.resolved), loader.dynamic, body, size, model)


def _session_view(value: Value, environment: str) -> bytes:
    return dumps(detailed(value, environment))


@functools.lru_cache(maxsize=4096)
def _canonical_name(name: str) -> str:
    """``project/name`` of an import as written (its version left out): what the log names."""
    try:
        ref = EnvironmentRef.parse(name)
    except InvalidReference:  # resolved, so it parsed once; never expected
        return name
    return f"{ref.project}/{ref.name}"


def _open_entries(org: str, actor: str, target: tuple[str, str] | None, detail: str,
                  deps: tuple[tuple[str, int, int], ...]) -> list[AuditEntry]:
    """The audit entries of one open: the environment opened (``<yaml>`` for an anonymous
    definition) and every environment of its import closure, each with the revision that was
    read, so that filtering the log by an environment finds the opens that revealed it."""
    now = now_iso()
    root = f"{target[0]}/{target[1]}" if target else "<yaml>"
    seen: set[tuple[int, int]] = set()
    imported: list[AuditEntry] = []
    for name, env_id, number in deps:
        if (env_id, number) in seen:
            continue
        seen.add((env_id, number))
        imported.append(AuditEntry(now, org, actor, "environment.open", _canonical_name(name),
                                   f"revision {number}, imported by {root}"))
    if not target and imported:
        detail = f"{detail}, {len(imported)} environment{'s' if len(imported) != 1 else ''} imported"
    return [AuditEntry(now, org, actor, "environment.open", root, detail), *imported]


def worker_state(config: ServerConfig) -> "EscServer":
    """The state of an evaluation worker (the pool's factory; module-level so it pickles)."""
    return EscServer(config, worker=True)


# -- the application ----------------------------------------------------------------------------


Handler = Callable[[Request], Awaitable[Response]]


def create_app(config: ServerConfig, store: Store | None = None) -> Starlette:
    """The Starlette application of a server (see the module docstring for the endpoints)."""
    server = EscServer(config, store)
    limit = config.max_body
    workers = config.eval_workers
    if workers > 0 and (store is not None or config.cipher is not None):
        # Workers open the store at data_dir and read the key file themselves.
        log.warning("evaluating on threads: a store or cipher object cannot be shared with worker processes")
        workers = 0
    if workers > 0:
        try:
            pickle.dumps(config)
        except Exception:  # providers that cannot cross a process boundary
            log.warning("evaluating on threads: the providers cannot be sent to worker processes")
            workers = 0
    pool = EvalPool(worker_state, config, workers=workers,
                    timeout=config.eval_timeout + max(1.0, config.eval_timeout / 2),
                    queue=config.eval_queue, local_state=server)

    async def run_job(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await pool.run(fn, *args)
        except PoolTimeout:
            message = f"evaluation exceeds the time limit of {config.eval_timeout:g} s"
            raise ApiError(422, message, [error_diagnostic(message)]) from None
        except PoolBusy:
            raise ApiError(503, "the server is busy evaluating other requests: try again later") from None
        except PoolError as e:
            log.error("evaluation failed in a worker: %s", e)
            raise ApiError(500, "internal server error") from None

    def endpoint(fn: Callable[[Request], Awaitable[Response]]) -> Handler:
        async def wrapped(request: Request) -> Response:
            try:
                return await fn(request)
            except ApiError as e:
                return error_response(e.status, e.message, e.diagnostics)
            except NotFound as e:
                return error_response(404, str(e))
            except Conflict as e:
                return error_response(409, str(e))
            except Unavailable as e:
                log.warning("database unavailable on %s %s: %s", request.method, loggable_path(request.scope), e)
                return error_response(503, f"the server's database is unavailable: {e}",
                                      headers={"Retry-After": "1"})
            except Invalid as e:
                return error_response(400, str(e))
            except EscError as e:
                return error_response(400, str(e))
            except UnicodeError:  # e.g. a lone surrogate from a JSON escape: not storable text
                return error_response(400, "the request holds text that is not valid Unicode")
            except ClientDisconnect:  # the client left (or was cut off for sending too slowly)
                return error_response(400, "the client disconnected")
            except Exception as e:  # noqa: BLE001 - answer 500, log where (never the message: it may hold data)
                log.error("internal error on %s %s: %s\n%s", request.method, loggable_path(request.scope),
                          type(e).__name__, "".join(traceback.format_tb(e.__traceback__)))
                return error_response(500, "internal server error")
        wrapped.__name__ = fn.__name__
        return wrapped

    def env_params(request: Request) -> tuple[str, str, str]:
        p = request.path_params
        return p["org"], p["project"], p["env"]

    # -- health ----------------------------------------------------------------------------------

    async def ping(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def healthz(request: Request) -> Response:
        # Alive: the process answers (a load balancer's liveness check; the database is /readyz's).
        return json_response({"status": "ok"})

    def _ping_store() -> None:
        ping_fn = getattr(server.store, "ping", None)
        if ping_fn is not None:
            ping_fn()
        else:
            server.store.get_meta("key_check")

    async def readyz(request: Request) -> Response:
        # Ready: the database answers now; a load balancer sends requests elsewhere until it does.
        try:
            await asyncio.to_thread(_ping_store)
        except Exception as e:  # noqa: BLE001 - any failure means "not ready"; the reason is logged
            reason = str(e) if isinstance(e, Unavailable) else type(e).__name__
            log.warning("not ready: the database does not answer: %s", reason)
            return json_response({"status": "unavailable", "message": f"the database does not answer: {reason}"},
                                 503, {"Retry-After": "1"})
        return json_response({"status": "ready"})

    # -- organisation -------------------------------------------------------------------------

    @endpoint
    async def org_environments(request: Request) -> Response:
        org = request.path_params["org"]
        if request.method == "GET":
            server.authenticate(request, org, "read")
            token = request.query_params.get("continuationToken")
            after = None
            if token:
                after = decode_page_token(token, 2)
                if after is None:
                    raise ApiError(400, "invalid continuationToken")
            envs = server.store.list_environments(org, after, config.page_size + 1)  # type: ignore[arg-type]
            more = len(envs) > config.page_size
            envs = envs[: config.page_size]
            body: dict[str, Any] = {"environments": [_org_env_json(e) for e in envs]}
            if more:
                body["nextToken"] = encode_page_token(envs[-1].project, envs[-1].name)
            return json_response(body)
        actor = server.authenticate(request, org, "write")
        _check_org(org)
        data = await _json_object(request, limit)
        project = _str_field(data, "project", required=False) or "default"
        name = _str_field(data, "name")
        _check_names(project, name)  # type: ignore[arg-type]
        server.store.create_environment(org, project, name, "", actor.name)  # type: ignore[arg-type]
        return Response(status_code=204)

    @endpoint
    async def check_yaml(request: Request) -> Response:
        org = request.path_params["org"]
        # ?showSecrets=true decrypts the ciphertexts of the definition and of every environment
        # it imports, as an open does: it needs what decrypting needs, and is audited as an open.
        show = _bool_query(request, "showSecrets")
        actor = server.authenticate(request, org, "decrypt" if show else "read")
        text = await _yaml_text(request, limit)
        status, body, diags, deps = await run_job(job_check, org, actor, text, show)
        if status == 422:
            raise _limit_error(diags)
        if show:
            await server.audit_now(_open_entries(org, actor.name, None, "check with showSecrets", deps))
        return Response(body, status_code=status, media_type=JSON_TYPE)

    async def _open(request: Request, org: str, actor: TokenRecord, source: tuple[Any, ...],
                    target: tuple[str, str] | None, environment: str, detail: str,
                    key: tuple[Any, ...] | None, cached: Evaluation | None | bool = False) -> Response:
        """``cached``: the evaluation to reuse, None for none, as the caller found it already
        (:meth:`EscServer.resolve_open`); False: look it up here."""
        duration = _duration(request, server.sessions.limits)
        evaluation = await server.call(server.cached_open, org, key, actor) if cached is False else cached
        if evaluation is None:
            out: OpenOutcome = await run_job(job_open, org, actor, source, environment)
            if _limited(out.parse_diagnostics) or _limited(out.diagnostics):
                raise _limit_error(out.parse_diagnostics + out.diagnostics)
            if _errors(out.parse_diagnostics):
                raise ApiError(400, "the environment has errors", out.parse_diagnostics)
            if _errors(out.diagnostics):
                raise ApiError(400, "the environment has errors", out.diagnostics)
            # Rebuilding the value is as large as the value (bounded by the budget): off the loop.
            value = await asyncio.to_thread(unpack_value, out.value)
            evaluation = Evaluation(value, out.diagnostics, out.deps, out.body, out.size, model=out.model)
            # What a shared session store keeps for other processes (encrypted); None in memory.
            evaluation.sealed = await server.sessions.seal(out.value, out.diagnostics, out.model)
            server.remember_open(org, key, actor, evaluation, out.dynamic)
        more = evaluation.diagnostics
        try:
            server.sessions.check_size(evaluation)  # refused before it is audited as an open
        except SessionTooLarge as e:
            raise ApiError(422, str(e)) from None
        # The entries are on disk with the session (one transaction): no open is served unaudited.
        session = await server.open_session(org, target, environment, evaluation, duration,
                                            _open_entries(org, actor.name, target, detail, evaluation.deps))
        body: dict[str, Any] = {"id": session.id}
        if more:
            body["diagnostics"] = {"diagnostics": [diagnostic_json(d) for d in more]}
        return json_response(body)

    @endpoint
    async def open_yaml(request: Request) -> Response:
        org = request.path_params["org"]
        actor = server.authenticate(request, org, "open")
        text = await _yaml_text(request, limit)
        key = None if _is_dynamic(text) else ("yaml", hashlib.sha256(text.encode("utf-8")).digest())
        return await _open(request, org, actor, ("yaml", text), None, ANONYMOUS, "anonymous definition", key)

    async def _session_body(session: Session, request: Request) -> Response:
        # Views are as large as the value (bounded by the budget): built off the loop.
        prop = request.query_params.get("property")
        if prop is not None and prop != "":
            v = _lookup(session.value, prop)
            return Response(await asyncio.to_thread(_session_view, v, session.environment), media_type=JSON_TYPE)
        ev = session.evaluation
        if ev.body is None:  # shared by every session of this evaluation
            ev.body = await asyncio.to_thread(_environment_body, ev.value, session.environment, ev.model)
        return Response(ev.body, media_type=JSON_TYPE)

    @endpoint
    async def read_yaml_session(request: Request) -> Response:
        org = request.path_params["org"]
        server.authenticate(request, org, "open")
        session = await server.get_session(org, None, request.path_params["sid"])
        return await _session_body(session, request)

    # -- one environment ----------------------------------------------------------------------

    @endpoint
    async def environment(request: Request) -> Response:
        org, project, name = env_params(request)
        if request.method in ("GET", "HEAD"):
            server.authenticate(request, org, "read")
            try:
                rev = server.store.get_revision(org, project, name, "latest")
            except NotFound:
                if request.method == "HEAD":
                    return Response(status_code=404)
                raise
            headers = {"ETag": rev.etag, "Pulumi-ESC-Revision": str(rev.number)}
            if request.method == "HEAD":
                return Response(status_code=200, headers=headers)
            return Response(rev.yaml, media_type=YAML_TYPE, headers=headers)
        if request.method == "DELETE":
            actor = server.authenticate(request, org, "delete")
            server.store.delete_environment(org, project, name, actor.name)
            return Response(status_code=204)
        # PATCH: a new revision
        actor = server.authenticate(request, org, "write")
        text = await _yaml_text(request, limit)
        server.store.get_environment(org, project, name)  # 404 before any work
        env_name = f"{project}/{name}"
        diags = await run_job(job_validate, org, actor, text, env_name)
        if _limited(diags):
            raise _limit_error(diags)
        if _errors(diags):
            raise ApiError(400, "the definition has errors; nothing was saved", diags)
        stored = _seal_for(server, org, project, name, text)
        rev = server.store.update_environment(org, project, name, stored, actor.name, request.headers.get("if-match"))
        body = {"diagnostics": [diagnostic_json(d) for d in diags]}
        return json_response(body, headers={"ETag": rev.etag, "Pulumi-ESC-Revision": str(rev.number)})

    @endpoint
    async def clone(request: Request) -> Response:
        org, project, name = env_params(request)
        actor = server.authenticate(request, org, "write")
        data = await _json_object(request, limit)
        dest_project = _str_field(data, "project", required=False) or project
        dest_name = _str_field(data, "name")
        _check_names(dest_project, dest_name)  # type: ignore[arg-type]
        flags = {}
        for key in ("preserveAccess", "preserveEnvironmentTags", "preserveHistory", "preserveRevisionTags"):
            v = data.get(key, False)
            if not isinstance(v, bool):
                raise ApiError(400, f"'{key}' must be a boolean")
            flags[key] = v
        # Ciphertexts are bound to their environment: the copy's are re-encrypted for it.
        source = server.keyring.for_env(org, project, name)
        dest = server.keyring.for_env(org, dest_project, dest_name, create=True)  # type: ignore[arg-type]
        try:
            server.store.clone_environment(
                org, project, name, dest_project, dest_name, actor.name,  # type: ignore[arg-type]
                history=flags["preserveHistory"], env_tags=flags["preserveEnvironmentTags"],
                revision_tags=flags["preserveRevisionTags"],
                reseal=lambda text: reseal_secrets(text, source.decrypt, dest.encrypt),
            )
        except DecryptionError as e:
            raise ApiError(400, f"cannot clone {project}/{name}: {e}; nothing was created") from None
        return Response(status_code=204)

    @endpoint
    async def decrypt(request: Request) -> Response:
        from ..secrets.definitions import decrypt_secrets

        org, project, name = env_params(request)
        actor = server.authenticate(request, org, "decrypt")
        rev = server.store.get_revision(org, project, name, "latest")
        try:
            text = decrypt_secrets(rev.yaml, server.keyring.for_env(org, project, name).decrypt)
        except DecryptionError as e:
            raise ApiError(400, str(e)) from None
        await server.audit_now([AuditEntry(now_iso(), org, actor.name, "environment.decrypt", f"{project}/{name}",
                                           f"revision {rev.number}")])
        return Response(text, media_type=YAML_TYPE)

    @endpoint
    async def rotate_env(request: Request) -> Response:
        org, project, name = env_params(request)
        # Rotating runs rotators with the environment's secrets and saves a new revision.
        actor = server.authenticate(request, org, "write")
        data = await _json_object(request, limit, optional=True)
        try:
            paths = rotate_paths(data)
        except ValueError as e:
            raise ApiError(400, str(e)) from None
        env_id, number = server.store.resolve_version(org, project, name, None)
        target = f"{project}/{name}"
        out: RotateOutcome = await run_job(job_rotate, org, actor, env_id, number, target, paths)
        if _limited(out.diagnostics):
            raise _limit_error(out.diagnostics)
        if out.failed or out.text is None:
            if out.rotated:
                # Rotators that ran may have changed credentials whose new states are lost.
                await server.audit_now([AuditEntry(
                    now_iso(), org, actor.name, "environment.rotate.failed", target,
                    f"revision {number}; rotators ran for {', '.join(out.rotated)}, their new states are discarded")])
            message = ("rotation failed; nothing was saved" if out.failed
                       else "nothing rotated: the selected calls could not run; nothing was saved")
            raise ApiError(400, message, out.diagnostics or [error_diagnostic(message)])
        try:
            rev = server.store.update_environment(org, project, name, out.text, actor.name,
                                                  Revision(env_id, number, "", "", "").etag)
        except Conflict:
            await server.audit_now([AuditEntry(
                now_iso(), org, actor.name, "environment.rotate.failed", target,
                f"revision {number} changed while rotating; rotators ran for {', '.join(out.rotated)}")])
            raise ApiError(409, f"environment {target} changed while rotating (it was at revision {number}): "
                                "nothing was saved; the rotators have run: rotate again to record new states") from None
        await server.audit_now([AuditEntry(now_iso(), org, actor.name, "environment.rotate", target,
                                           f"revision {number} -> {rev.number}: {', '.join(out.rotated)}")])
        body = {"preRotationRevision": number, "postRotationRevision": rev.number, "rotated": list(out.rotated),
                "diagnostics": [diagnostic_json(d) for d in out.diagnostics]}
        return json_response(body, headers={"ETag": rev.etag, "Pulumi-ESC-Revision": str(rev.number)})

    async def _open_stored(request: Request, version: str | None) -> Response:
        org, project, name = env_params(request)
        actor = server.authenticate(request, org, "open")
        # The root's revision and the evaluation to reuse in one call (and mostly one query).
        env_id, number, key, cached = await server.resolve_open_async(org, project, name, version, actor)
        env_name = f"{project}/{name}"
        return await _open(request, org, actor, ("rev", env_id, number, env_name), (project, name), env_name,
                           f"revision {number}", key, cached)

    @endpoint
    async def open_env(request: Request) -> Response:
        return await _open_stored(request, None)

    @endpoint
    async def open_env_at_version(request: Request) -> Response:
        return await _open_stored(request, request.path_params["version"])

    @endpoint
    async def read_session(request: Request) -> Response:
        org, project, name = env_params(request)
        server.authenticate(request, org, "open")
        session = await server.get_session(org, (project, name), request.path_params["sid"])
        return await _session_body(session, request)

    # -- revisions ------------------------------------------------------------------------------

    @endpoint
    async def revisions(request: Request) -> Response:
        org, project, name = env_params(request)
        server.authenticate(request, org, "read")
        before = _int_query(request, "before", None)
        count = _int_query(request, "count", 100, 1, 500)
        revs = server.store.list_revisions(org, project, name, before, count)  # type: ignore[arg-type]
        return json_response([
            {"number": r.number, "created": r.created, "creatorLogin": r.creator, "creatorName": r.creator,
             "tags": list(r.tags)}
            for r in revs
        ])

    @endpoint
    async def revision(request: Request) -> Response:
        org, project, name = env_params(request)
        server.authenticate(request, org, "read")
        rev = server.store.get_revision(org, project, name, request.path_params["version"])
        return Response(rev.yaml, media_type=YAML_TYPE,
                        headers={"ETag": rev.etag, "Pulumi-ESC-Revision": str(rev.number)})

    def _rev_tag_json(t: Any) -> dict[str, Any]:
        return {"name": t.name, "revision": t.revision, "created": t.created, "modified": t.modified,
                "editorLogin": t.editor, "editorName": t.editor}

    @endpoint
    async def revision_tags(request: Request) -> Response:
        org, project, name = env_params(request)
        if request.method == "GET":
            server.authenticate(request, org, "read")
            after = request.query_params.get("after") or None
            count = _int_query(request, "count", 100, 1, 500)
            tags = server.store.list_revision_tags(org, project, name, after, count + 1)  # type: ignore[operator]
            body: dict[str, Any] = {"tags": [_rev_tag_json(t) for t in tags[:count]]}
            if len(tags) > count:  # type: ignore[operator]
                body["nextToken"] = tags[count - 1].name  # type: ignore[operator]
            return json_response(body)
        actor = server.authenticate(request, org, "write")
        data = await _json_object(request, limit)
        tag = _str_field(data, "name")
        rev = data.get("revision")
        if not isinstance(rev, int) or isinstance(rev, bool) or not 0 < rev < 2**62:
            raise ApiError(400, "'revision' must be a positive integer")
        _check_name("tag", tag)
        server.store.set_revision_tag(org, project, name, tag, rev, actor.name, create=True)  # type: ignore[arg-type]
        return Response(status_code=204)

    @endpoint
    async def revision_tag(request: Request) -> Response:
        org, project, name = env_params(request)
        tag = request.path_params["tag"]
        if request.method == "GET":
            server.authenticate(request, org, "read")
            return json_response(_rev_tag_json(server.store.get_revision_tag(org, project, name, tag)))
        actor = server.authenticate(request, org, "write")
        if request.method == "DELETE":
            server.store.delete_revision_tag(org, project, name, tag, actor.name)
            return Response(status_code=204)
        data = await _json_object(request, limit)
        rev = data.get("revision")
        if not isinstance(rev, int) or isinstance(rev, bool) or not 0 < rev < 2**62:
            raise ApiError(400, "'revision' must be a positive integer")
        server.store.set_revision_tag(org, project, name, tag, rev, actor.name, create=False)
        return Response(status_code=204)

    # -- environment tags -------------------------------------------------------------------------

    def _env_tag_json(t: Any) -> dict[str, Any]:
        return {"name": t.name, "value": t.value, "created": t.created, "modified": t.modified,
                "editorLogin": t.editor, "editorName": t.editor}

    @endpoint
    async def env_tags(request: Request) -> Response:
        org, project, name = env_params(request)
        if request.method == "GET":
            server.authenticate(request, org, "read")
            after = request.query_params.get("after") or None
            count = _int_query(request, "count", 100, 1, 500)
            tags = server.store.list_env_tags(org, project, name, after, count + 1)  # type: ignore[operator]
            page = tags[:count]
            next_token = page[-1].name if len(tags) > count and page else ""  # type: ignore[operator]
            return json_response({"tags": {t.name: _env_tag_json(t) for t in page}, "nextToken": next_token})
        actor = server.authenticate(request, org, "write")
        data = await _json_object(request, limit)
        tag = _str_field(data, "name")
        value = _str_field(data, "value")
        if not tag:
            raise ApiError(400, "'name' must not be empty")
        t = server.store.create_env_tag(org, project, name, tag, value, actor.name)  # type: ignore[arg-type]
        return json_response(_env_tag_json(t))

    @endpoint
    async def env_tag(request: Request) -> Response:
        org, project, name = env_params(request)
        tag = request.path_params["tag"]
        if request.method == "GET":
            server.authenticate(request, org, "read")
            return json_response(_env_tag_json(server.store.get_env_tag(org, project, name, tag)))
        actor = server.authenticate(request, org, "write")
        if request.method == "DELETE":
            server.store.delete_env_tag(org, project, name, tag, actor.name)
            return Response(status_code=204)
        data = await _json_object(request, limit)
        current, new = data.get("currentTag"), data.get("newTag")
        if not isinstance(current, dict) or not isinstance(new, dict):
            raise ApiError(400, "'currentTag' and 'newTag' must be objects")
        cur_value = _str_field(current, "value")
        new_name = _str_field(new, "name")
        new_value = _str_field(new, "value")
        if not new_name:
            raise ApiError(400, "'newTag.name' must not be empty")
        t = server.store.update_env_tag(org, project, name, tag, cur_value, new_name, new_value, actor.name)  # type: ignore[arg-type]
        return json_response(_env_tag_json(t))

    # -- OIDC issuer (no token: relying parties such as AWS IAM fetch these) ----------------------

    oidc_cache = {"Cache-Control": "public, max-age=300"}

    async def oidc_discovery(request: Request) -> Response:
        assert server.issuer is not None
        return json_response(server.issuer.discovery(), headers=oidc_cache)

    async def oidc_jwks(request: Request) -> Response:
        assert server.issuer is not None
        return json_response(server.issuer.jwks(), headers=oidc_cache)

    # -- routing ----------------------------------------------------------------------------------

    E = PREFIX + "/environments/{org}"
    P = E + "/{project}/{env}"
    # Starlette tries the routes in this order, a regular expression each: the most frequent
    # requests (ping, open, session reads) come first. No route shadows another (a path one
    # answers matches no route before it with the same method; tests/server/test_http.py).
    routes = [
        Route(PREFIX + "/ping", ping, methods=["GET"]),
        Route(P + "/open", open_env, methods=["POST"]),
        Route(P + "/open/{sid}", read_session, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route(E, org_environments, methods=["GET", "POST"]),
        Route(E + "/yaml/check", check_yaml, methods=["POST"]),
        Route(E + "/yaml/open", open_yaml, methods=["POST"]),
        Route(E + "/yaml/open/{sid}", read_yaml_session, methods=["GET"]),
        Route(E + "/yaml/open//{sid}", read_yaml_session, methods=["GET"]),
        Route(P, environment, methods=["GET", "HEAD", "PATCH", "DELETE"]),
        Route(P + "/clone", clone, methods=["POST"]),
        Route(P + "/decrypt", decrypt, methods=["GET"]),
        Route(P + "/rotate", rotate_env, methods=["POST"]),
        Route(P + "/open//{sid}", read_session, methods=["GET"]),
        Route(P + "/tags", env_tags, methods=["GET", "POST"]),
        Route(P + "/tags/{tag}", env_tag, methods=["GET", "PATCH", "DELETE"]),
        Route(P + "/versions", revisions, methods=["GET"]),
        Route(P + "/versions/tags", revision_tags, methods=["GET", "POST"]),
        Route(P + "/versions/tags/{tag}", revision_tag, methods=["GET", "PATCH", "DELETE"]),
        Route(P + "/versions/{version}", revision, methods=["GET"]),
        Route(P + "/versions/{version}/open", open_env_at_version, methods=["POST"]),
    ]
    if server.issuer is not None:
        # Under the issuer URL's path, where discovery looks; and at the root as well, for a
        # proxy that maps that path onto this server's root.
        for base in dict.fromkeys((server.issuer.path, "")):
            routes += [Route(base + oidc.DISCOVERY, oidc_discovery, methods=["GET"]),
                       Route(base + oidc.JWKS, oidc_jwks, methods=["GET"])]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(exc.status_code, exc.detail or "error")

    async def internal_error(request: Request, exc: Exception) -> Response:
        # The traceback names code, not data; the message of the exception could hold anything.
        log.error("internal error on %s %s: %s\n%s", request.method, loggable_path(request.scope),
                  type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
        return error_response(500, "internal server error")

    async def sweep_sessions() -> None:
        # Expired sessions go within a second even when nobody opens or reads: they hold plaintext.
        while True:
            await asyncio.sleep(1.0)
            await server.sessions.sweep()
            memory = server.sessions.memory
            if memory.freed >= 8 * MiB:
                memory.freed = 0
                await asyncio.to_thread(trim_memory)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        map_large_blocks()  # a serving process's large blocks go back to the system when freed
        pool.start()
        if server.audit is not None:
            server.audit.start()
        sweeper = asyncio.create_task(sweep_sessions())
        try:
            yield
        finally:
            sweeper.cancel()
            await pool.close()
            if server.audit is not None:
                await asyncio.to_thread(server.audit.close)

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        lifespan=lifespan,
    )
    app.state.server = server
    app.state.pool = pool
    return AccessLog(app)  # type: ignore[return-value]

