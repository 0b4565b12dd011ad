"""The ESC REST API as a Starlette application, evaluated by the embedded engine.

Endpoints (all under ``/api/esc``; JSON or YAML bodies as the ESC API has them):

- ``GET  /ping`` (no token: the framework's floor for benchmarks and health checks)
- ``GET|POST /environments/{org}`` list (``continuationToken``), create
- ``POST /environments/{org}/yaml/check``, ``POST /environments/{org}/yaml/open``,
  ``GET /environments/{org}/yaml/open/{id}`` (anonymous definitions, as the Pulumi CLI uses them)
- ``GET|HEAD|PATCH|DELETE /environments/{org}/{project}/{env}`` definition, ETag, update, delete
- ``POST .../clone``, ``GET .../decrypt``, ``POST .../open``, ``GET .../open/{id}`` (and
  ``.../open//{id}?property=path``)
- ``GET .../versions``, ``GET .../versions/{version}``, ``POST .../versions/{version}/open``
- ``GET|POST .../versions/tags``, ``GET|PATCH|DELETE .../versions/tags/{tag}``
- ``GET|POST .../tags``, ``GET|PATCH|DELETE .../tags/{tag}``

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
import dataclasses
import hashlib
import json
import logging
import os
import pickle
import re
import time
import traceback
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..secrets.crypto import AesGcmCipher, create_key_file, read_key_file
from ..secrets.definitions import encrypt_secrets
from ..errors import EscError, InvalidReference
from ..esc import ANONYMOUS, EvalLimits, LoadedEnvironment, LoadError, ProviderRegistry, Value, evaluate, load_definition
from ..esc.budget import LimitDiagnostic
from ..esc.diagnostics import Diagnostic, error as error_diagnostic
from ..esc.interpolation import parse_path
from ..esc.values import value_at
from ..esc.views import detailed, diagnostic_json
from ..refs import EnvironmentRef
from . import auth
from .durations import DurationError, parse_duration
from .pool import EvalPool, PoolBusy, PoolError, PoolTimeout
from .transfer import pack_value, unpack_value
from .encoding import dumps
from .sessions import Evaluation, Session, SessionGone, Sessions
from .store import (
    AuditEntry,
    Conflict,
    EnvironmentInfo,
    NotFound,
    SQLiteStore,
    Store,
    TokenRecord,
    decode_page_token,
    encode_page_token,
    now_iso,
)

__all__ = ["ServerConfig", "EscServer", "create_app", "load_server_key"]

log = logging.getLogger("esc_pulumi.server")
access_log = logging.getLogger("esc_pulumi.server.access")

PREFIX = "/api/esc"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}\Z")
_ORG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")
_RESERVED_ENV_NAMES = {".", "..", "open", "yaml"}
_RESERVED_PROJECT_NAMES = {".", "..", "yaml"}
YAML_TYPE = "application/x-yaml"
JSON_TYPE = "application/json"
DEFAULT_DURATION = 3600.0
MAX_DURATION = 30 * 24 * 3600.0


@dataclass
class ServerConfig:
    """How a server runs. ``cipher`` None: the key comes from :func:`load_server_key`."""

    data_dir: Path
    cipher: AesGcmCipher | None = None
    key_file: Path | None = None
    page_size: int = 100
    max_body: int = 1 << 20
    max_sessions: int = 10_000
    providers: ProviderRegistry | None = None
    audit_flush_seconds: float = 0.2
    # The evaluation budget of every check and open (sizes and work; see esc.EvalLimits).
    eval_limits: EvalLimits = field(default_factory=EvalLimits)
    # Seconds one evaluation may take: the engine stops itself then (a diagnostic), and a worker
    # still busy a little later is killed. Either way the request gets a 422.
    eval_timeout: float = 10.0
    # Worker processes evaluating at once; 0 evaluates on threads of this process (for a
    # ``cipher`` or ``providers`` that cannot be sent to another process; only the engine's
    # cooperative deadline bounds the time then).
    eval_workers: int = 2
    # Requests that may wait for a worker; beyond that the server answers 503.
    eval_queue: int = 64


def load_server_key(data_dir: Path, key_file: Path | None = None, environ: dict[str, str] | None = None) -> AesGcmCipher:
    """The server cipher: ``key_file``, else ``ESC_PULUMI_SERVER_KEY_FILE``, else
    ``<data>/server.key``; the file is created with a fresh random key when absent."""
    env = os.environ if environ is None else environ
    path = key_file or (Path(env["ESC_PULUMI_SERVER_KEY_FILE"]) if env.get("ESC_PULUMI_SERVER_KEY_FILE") else None)
    path = path or (Path(data_dir) / "server.key")
    if not path.exists():
        try:
            return AesGcmCipher(create_key_file(path))
        except FileExistsError:  # another process created it first
            pass
    return AesGcmCipher(read_key_file(path))


class ApiError(Exception):
    """An error answered as ``{"code": status, "message": ...}`` (plus ``diagnostics``)."""

    def __init__(self, status: int, message: str, diagnostics: list[Diagnostic] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.diagnostics = diagnostics


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(obj), status_code=status, media_type=JSON_TYPE, headers=headers)


def error_response(status: int, message: str, diagnostics: list[Diagnostic] | None = None) -> Response:
    body: dict[str, Any] = {"code": status, "message": message}
    if diagnostics is not None:
        body["diagnostics"] = [diagnostic_json(d) for d in diagnostics]
    return json_response(body, status)


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
        return LoadedEnvironment(text="", decl=decl, diagnostics=diags, decrypter=self.server.cipher.decrypt)


class EscServer:
    """The server's state: store, cipher, caches, open sessions, buffered audit of opens."""

    def __init__(self, config: ServerConfig, store: Store | None = None) -> None:
        self.config = config
        self.store: Store = store or SQLiteStore(Path(config.data_dir) / "esc.db")
        self.cipher = config.cipher or load_server_key(Path(config.data_dir), config.key_file)
        self.providers = config.providers or ProviderRegistry()
        # The engine's deadline is the request's time limit; the pool kills a worker a little
        # after it, so the engine's diagnostic (with its range) normally arrives first.
        limits = config.eval_limits
        if limits.timeout is None or limits.timeout > config.eval_timeout:
            limits = dataclasses.replace(limits, timeout=config.eval_timeout)
        self.limits = limits
        # Revisions never change, so a parsed declaration is cached for good (bounded LRU).
        self._decls: OrderedDict[tuple[int, int], tuple[Any, tuple[Diagnostic, ...]]] = OrderedDict()
        self._dynamic: dict[tuple[int, int], bool] = {}
        self._evaluations: OrderedDict[tuple[Any, ...], Evaluation] = OrderedDict()
        self._tokens: dict[str, TokenRecord] = {}
        self.sessions = Sessions(config.max_sessions)
        self._audit_buffer: list[AuditEntry] = []
        self._audit_handle: asyncio.TimerHandle | None = None

    # -- caches --------------------------------------------------------------------------------

    def declaration(self, env_id: int, number: int, name: str) -> tuple[Any, tuple[Diagnostic, ...]]:
        key = (env_id, number)
        hit = self._decls.get(key)
        if hit is not None:
            self._decls.move_to_end(key)
            return hit
        rev = self.store.get_revision_by_id(env_id, number)  # type: ignore[attr-defined]
        if rev is None:
            raise LoadError(f"revision {number} not found")
        decl, diags = load_definition(rev.yaml, name)
        hit = (decl, tuple(diags))
        self._decls[key] = hit
        self._dynamic[key] = _is_dynamic(rev.yaml)
        if len(self._decls) > 2048:
            old, _ = self._decls.popitem(last=False)
            self._dynamic.pop(old, None)
        return hit

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

    def authenticate(self, request: Request, org: str, action: str) -> TokenRecord:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() not in ("token", "bearer") or not token:
            raise ApiError(401, "unauthorized: send 'Authorization: token <token>' (create one with "
                                "'esc-pulumi serve token create')")
        h = auth.hash_token(token)
        record = self._tokens.get(h)
        if record is None:
            record = self.store.find_token(h)
            if record is None:
                raise ApiError(401, "unauthorized: the token is not valid")
            self._tokens[h] = record
        if record.org != org:
            raise ApiError(403, f"forbidden: the token is not valid for organization {org!r}")
        if not auth.allows(record.role, action):
            raise ApiError(403, f"forbidden: the {record.role} role may not {action} "
                                f"(needs {auth.role_needed(action)})")
        return record

    # -- audit -----------------------------------------------------------------------------------

    def audit_soon(self, entry: AuditEntry) -> None:
        """Buffer an open's audit entry: one fsync per batch instead of one per open."""
        self._audit_buffer.append(entry)
        if self._audit_handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush_audit()
                return
            self._audit_handle = loop.call_later(self.config.audit_flush_seconds, self.flush_audit)

    def flush_audit(self) -> None:
        self._audit_handle = None
        entries, self._audit_buffer = self._audit_buffer, []
        if entries:
            try:
                self.store.append_audit(entries)
            except Exception:  # never lose the server over the audit log; say so loudly
                log.exception("could not write %d audit entries", len(entries))

    # -- sessions --------------------------------------------------------------------------------

    def new_session(self, org: str, target: tuple[str, str] | None, environment: str, evaluation: Evaluation,
                    duration: float) -> Session:
        return self.sessions.new(org, target, environment, evaluation, duration)

    def get_session(self, org: str, target: tuple[str, str] | None, sid: str) -> Session:
        try:
            return self.sessions.get(org, target, sid)
        except SessionGone as e:
            raise ApiError(404, str(e)) from None

    # -- evaluation ------------------------------------------------------------------------------

    def evaluate(self, org: str, decl: Any, mode: str, actor: TokenRecord) -> tuple[Value, list[Diagnostic]]:
        value, diags, _, _ = self._evaluate(org, decl, mode, actor)
        return value, diags

    def _evaluate(self, org: str, decl: Any, mode: str, actor: TokenRecord
                  ) -> tuple[Value, list[Diagnostic], _OrgLoader, bool]:
        loader = _OrgLoader(self, org)
        if decl is None:  # an empty definition
            return Value({}), [], loader, False
        context = {"pulumi": {"user": {"login": actor.name}, "organization": {"login": org}}}
        value, diags = evaluate(
            decl,
            mode=mode,  # type: ignore[arg-type]
            loader=loader,
            providers=self.providers,
            decrypter=self.cipher.decrypt,
            context=context,
            limits=self.limits,
        )
        return value, diags, loader, loader.dynamic

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
            self._evaluations.move_to_end(full_key)
            return hit
        return None

    def remember_open(self, org: str, key: tuple[Any, ...] | None, actor: TokenRecord, result: Evaluation,
                      dynamic: bool) -> None:
        if key is None or dynamic or _errors(result.diagnostics):
            return
        self._evaluations[(org, actor.name, *key)] = result
        if len(self._evaluations) > 256:
            self._evaluations.popitem(last=False)

    def _still_valid(self, org: str, ev: Evaluation) -> bool:
        for name, env_id, number in ev.deps:
            try:
                ref = EnvironmentRef.parse(name)
                if self.store.resolve_version(org, ref.project, ref.name, ref.version) != (env_id, number):
                    return False
            except (NotFound, InvalidReference):
                return False
        return True


# -- request helpers ----------------------------------------------------------------------------


def _check_org(org: str) -> None:
    if not _ORG.match(org):
        raise ApiError(400, f"invalid organization name {org!r}")


def _check_names(project: str, name: str) -> None:
    if not _NAME.match(project) or project in _RESERVED_PROJECT_NAMES:
        raise ApiError(400, f"invalid project name {project!r}: use letters, digits, '-', '_' and '.'")
    if not _NAME.match(name) or name in _RESERVED_ENV_NAMES:
        raise ApiError(400, f"invalid environment name {name!r}: use letters, digits, '-', '_' and '.'")


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


async def _json_object(request: Request, limit: int) -> dict[str, Any]:
    raw = await _body(request, limit)
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


def _duration(request: Request) -> float:
    raw = request.query_params.get("duration")
    if raw is None or raw == "":
        return DEFAULT_DURATION
    try:
        seconds = parse_duration(raw)
    except DurationError as e:
        raise ApiError(400, str(e)) from None
    if not 0 < seconds <= MAX_DURATION:
        raise ApiError(400, f"duration must be positive and at most {int(MAX_DURATION // 3600)}h")
    return seconds


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


def job_check(server: "EscServer", org: str, actor: TokenRecord, text: str
              ) -> tuple[int, bytes | None, list[Diagnostic]]:
    """``yaml/check``: (status, body, diagnostics); status 422 (no body) over a limit."""
    decl, diags = load_definition(text, ANONYMOUS)
    value = Value({})
    if not _errors(diags) and decl is not None:
        value, more = server.evaluate(org, decl, "check", actor)
        diags = diags + more
    if _limited(diags):
        return 422, None, diags
    body = {"properties": _properties(value, ANONYMOUS), "diagnostics": [diagnostic_json(d) for d in diags]}
    return (400 if _errors(diags) else 200), dumps(body), diags


def job_validate(server: "EscServer", org: str, actor: TokenRecord, text: str, env_name: str) -> list[Diagnostic]:
    """The check before a save: the definition's diagnostics."""
    decl, diags = load_definition(text, env_name)
    if not _errors(diags) and decl is not None:
        _, more = server.evaluate(org, decl, "check", actor)
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
    value, more, loader, dynamic = server._evaluate(org, decl, "open", actor)
    if _errors(more):
        return OpenOutcome(diags, more)
    body = dumps({"properties": _properties(value, environment)})
    return OpenOutcome(diags, more, pack_value(value), tuple(loader.resolved), dynamic, body)


def _session_view(value: Value, environment: str) -> bytes:
    return dumps(detailed(value, environment))


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
    pool = EvalPool(EscServer, config, workers=workers,
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
            except EscError as e:
                return error_response(400, str(e))
            except UnicodeError:  # e.g. a lone surrogate from a JSON escape: not storable text
                return error_response(400, "the request holds text that is not valid Unicode")
            except Exception as e:  # noqa: BLE001 - answer 500, log where (never the message: it may hold data)
                log.error("internal error on %s %s: %s\n%s", request.method, request.url.path, type(e).__name__,
                          "".join(traceback.format_tb(e.__traceback__)))
                return error_response(500, "internal server error")
        wrapped.__name__ = fn.__name__
        return wrapped

    def env_params(request: Request) -> tuple[str, str, str]:
        p = request.path_params
        return p["org"], p["project"], p["env"]

    # -- health ----------------------------------------------------------------------------------

    async def ping(request: Request) -> Response:
        return json_response({"status": "ok"})

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
        actor = server.authenticate(request, org, "read")
        text = await _yaml_text(request, limit)
        status, body, diags = await run_job(job_check, org, actor, text)
        if status == 422:
            raise _limit_error(diags)
        return Response(body, status_code=status, media_type=JSON_TYPE)

    async def _open(request: Request, org: str, actor: TokenRecord, source: tuple[Any, ...],
                    target: tuple[str, str] | None, environment: str, detail: str,
                    key: tuple[Any, ...] | None) -> Response:
        duration = _duration(request)
        evaluation = server.cached_open(org, key, actor)
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
            evaluation = Evaluation(value, out.diagnostics, out.deps, out.body)
            server.remember_open(org, key, actor, evaluation, out.dynamic)
        more = evaluation.diagnostics
        session = server.new_session(org, target, environment, evaluation, duration)
        what = f"{target[0]}/{target[1]}" if target else "<yaml>"
        server.audit_soon(AuditEntry(now_iso(), org, actor.name, "environment.open", what, detail))
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
            ev.body = await asyncio.to_thread(lambda: dumps({"properties": _properties(ev.value, session.environment)}))
        return Response(ev.body, media_type=JSON_TYPE)

    @endpoint
    async def read_yaml_session(request: Request) -> Response:
        org = request.path_params["org"]
        server.authenticate(request, org, "open")
        session = server.get_session(org, None, request.path_params["sid"])
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
        stored = encrypt_secrets(text, server.cipher.encrypt)
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
        server.store.clone_environment(
            org, project, name, dest_project, dest_name, actor.name,  # type: ignore[arg-type]
            history=flags["preserveHistory"], env_tags=flags["preserveEnvironmentTags"],
            revision_tags=flags["preserveRevisionTags"],
        )
        return Response(status_code=204)

    @endpoint
    async def decrypt(request: Request) -> Response:
        from ..secrets.definitions import decrypt_secrets

        org, project, name = env_params(request)
        actor = server.authenticate(request, org, "decrypt")
        rev = server.store.get_revision(org, project, name, "latest")
        text = decrypt_secrets(rev.yaml, server.cipher.decrypt)
        server.audit_soon(AuditEntry(now_iso(), org, actor.name, "environment.decrypt", f"{project}/{name}",
                                     f"revision {rev.number}"))
        return Response(text, media_type=YAML_TYPE)

    async def _open_stored(request: Request, version: str | None) -> Response:
        org, project, name = env_params(request)
        actor = server.authenticate(request, org, "open")
        env_id, number = server.store.resolve_version(org, project, name, version)
        env_name = f"{project}/{name}"
        key = None if server.revision_is_dynamic(env_id, number) else ("rev", env_id, number)
        return await _open(request, org, actor, ("rev", env_id, number, env_name), (project, name), env_name,
                           f"revision {number}", key)

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
        session = server.get_session(org, (project, name), request.path_params["sid"])
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
        if not _NAME.match(tag):  # type: ignore[arg-type]
            raise ApiError(400, f"invalid tag name {tag!r}: use letters, digits, '-', '_' and '.'")
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

    # -- routing ----------------------------------------------------------------------------------

    E = PREFIX + "/environments/{org}"
    P = E + "/{project}/{env}"
    routes = [
        Route(PREFIX + "/ping", ping, methods=["GET"]),
        Route(E, org_environments, methods=["GET", "POST"]),
        Route(E + "/yaml/check", check_yaml, methods=["POST"]),
        Route(E + "/yaml/open", open_yaml, methods=["POST"]),
        Route(E + "/yaml/open/{sid}", read_yaml_session, methods=["GET"]),
        Route(E + "/yaml/open//{sid}", read_yaml_session, methods=["GET"]),
        Route(P, environment, methods=["GET", "HEAD", "PATCH", "DELETE"]),
        Route(P + "/clone", clone, methods=["POST"]),
        Route(P + "/decrypt", decrypt, methods=["GET"]),
        Route(P + "/open", open_env, methods=["POST"]),
        Route(P + "/open/{sid}", read_session, methods=["GET"]),
        Route(P + "/open//{sid}", read_session, methods=["GET"]),
        Route(P + "/tags", env_tags, methods=["GET", "POST"]),
        Route(P + "/tags/{tag}", env_tag, methods=["GET", "PATCH", "DELETE"]),
        Route(P + "/versions", revisions, methods=["GET"]),
        Route(P + "/versions/tags", revision_tags, methods=["GET", "POST"]),
        Route(P + "/versions/tags/{tag}", revision_tag, methods=["GET", "PATCH", "DELETE"]),
        Route(P + "/versions/{version}", revision, methods=["GET"]),
        Route(P + "/versions/{version}/open", open_env_at_version, methods=["POST"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(exc.status_code, exc.detail or "error")

    async def internal_error(request: Request, exc: Exception) -> Response:
        # The traceback names code, not data; the message of the exception could hold anything.
        log.error("internal error on %s %s: %s\n%s", request.method, request.url.path, type(exc).__name__,
                  "".join(traceback.format_tb(exc.__traceback__)))
        return error_response(500, "internal server error")

    @asynccontextmanager
    async def lifespan(app: Starlette):
        pool.start()
        try:
            yield
        finally:
            server.flush_audit()
            await pool.close()

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        lifespan=lifespan,
    )
    app.state.server = server
    app.state.pool = pool
    return AccessLog(app)  # type: ignore[return-value]


class AccessLog:
    """ASGI middleware: one log line per request (method, path, status, milliseconds), never a
    body or a query string (a property path is the client's business)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = getattr(app, "state", None)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            access_log.info("%s %s %d %.1fms", scope["method"], scope["path"], status[0],
                            (time.perf_counter() - start) * 1000)
