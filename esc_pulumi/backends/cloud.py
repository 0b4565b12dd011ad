"""The ``http(s)://`` backend: Pulumi Cloud or any ESC-compatible server, through pulumi-esc-sdk.

The whole composition is opened at once, as the Pulumi CLI does: ``POST
/api/esc/environments/{org}/yaml/open?duration=2h0m0s`` with ``{imports: [...]}`` as body, then
``GET .../yaml/open/{id}``. Two HTTP requests whatever the number of environments. The SDK's
``EscClient`` has no anonymous open, so the calls go through its generated ``ApiClient``; and its
``values`` drop secret flags, so the opened ``properties`` are walked instead.

pulumi-esc-sdk (and pydantic under it) is imported only when a cloud backend opens something.

Example::

    backend = CloudBackend("http://127.0.0.1:8080", token=Token("t0k", "PULUMI_ACCESS_TOKEN"))
    opened = backend.open({"imports": ["myproj/dev"]}, organization="acme")
    opened.requests     # 2
"""
from __future__ import annotations

import json
import re
import sys
import threading
from dataclasses import dataclass
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit, urlunsplit

from ..errors import (
    AuthenticationError,
    BackendError,
    ConfigurationError,
    DefinitionError,
    EnvironmentNotFound,
    EscError,
    PermissionDenied,
)
from .credentials import Token, is_http_url
from .base import OpenedEnvironment, single_import

OPEN_DURATION = "2h0m0s"  # what the Pulumi CLI asks for
WAITING_NOTICE_AFTER = 5.0  # seconds before telling the user we are still waiting


class _Trace:
    """The minimal ``defn`` of a value opened remotely: where it was defined (``.range``)."""

    __slots__ = ("range", "path")

    def __init__(self, range: Any, path: str = "") -> None:
        self.range = range
        self.path = path


def esc_api_url(url: str) -> str:
    """``scheme://netloc/api/esc``, as the SDK's own client rewrites its host."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/api/esc", "", ""))


class CloudBackend:
    """An ESC REST service. ``token`` is the access token and where it came from."""

    def __init__(
        self, url: str, *, token: Token, timeout: float = 60.0, notice: Any = None
    ) -> None:
        if not is_http_url(url):
            raise ConfigurationError(f"not an ESC host: {url!r} (only http:// and https:// URLs are)")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        # Where "still waiting" goes: stderr by default (a callable taking the line).
        self._notice = notice
        self._client: Any = None

    def __repr__(self) -> str:  # never shows the token
        return f"CloudBackend({self.url!r}, token from {self.token.source})"

    # -- HTTP ----------------------------------------------------------------------------------

    def _api(self) -> Any:
        if self._client is None:
            from pulumi_esc_sdk import api_client, configuration

            cfg = configuration.Configuration(host=esc_api_url(self.url), access_token=self.token.value)
            # A refused connection should fail now, not after urllib3's default retries.
            cfg.retries = 1
            self._client = api_client.ApiClient(cfg)
        return self._client

    def _call(
        self, method: str, path: str, *, org: str, query=None, body: str | dict | None = None, raw: bool = False,
        content_type: str = "application/x-yaml", action: str = "open environments",
    ) -> Any:
        """One HTTP request; returns the decoded JSON body (the bytes with ``raw``) or raises
        the right EscError (``action`` is what a 403 says the token may not do). A ``body`` is
        sent as it is (YAML text) or, a dict, encoded by the SDK as ``content_type`` says."""
        from pulumi_esc_sdk.exceptions import ApiException
        import urllib3

        client = self._api()
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        params = client.param_serialize(
            method=method,
            resource_path=path,
            path_params={"orgName": org},
            query_params=list(query or []),
            header_params=headers,
            body=body,
            auth_settings=["Authorization"],
        )
        timer = threading.Timer(WAITING_NOTICE_AFTER, self._waiting)
        timer.daemon = True
        timer.start()
        try:
            response = client.call_api(*params, _request_timeout=self.timeout)
            response.read()
        except ApiException as e:  # TLS failures and the like
            raise BackendError(f"the ESC service at {self.url} failed: {e.reason or e.status}") from None
        except urllib3.exceptions.HTTPError as e:
            raise BackendError(self._unreachable(e)) from None
        finally:
            timer.cancel()
        status = response.status
        data = response.data or b""
        if 200 <= status < 300:
            if raw:
                return data
            try:
                return json.loads(data or b"{}")
            except ValueError:
                raise BackendError(f"the ESC service at {self.url} answered {method} {path} with invalid JSON") from None
        self._fail(status, data, org, action)

    def _waiting(self) -> None:
        line = (
            f"esc_pulumi: still waiting for the ESC service at {self.url} "
            f"(giving up after {self.timeout:g} s; ESC_PULUMI_TIMEOUT sets the limit)"
        )
        if self._notice is not None:
            self._notice(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def _unreachable(self, e: Exception) -> str:
        """Plain words for a transport failure, with the URL and what to do."""
        import urllib3

        reason = getattr(e, "reason", None) or e
        if isinstance(e, urllib3.exceptions.ReadTimeoutError) or isinstance(
            reason, urllib3.exceptions.ReadTimeoutError
        ):
            return (
                f"the ESC service at {self.url} accepted the connection but did not answer within "
                f"{self.timeout:g} s: check that the URL is an ESC service, or set ESC_PULUMI_TIMEOUT "
                "to wait longer"
            )
        # NewConnectionError subclasses ConnectTimeoutError in urllib3: test it first.
        if isinstance(reason, urllib3.exceptions.NameResolutionError):
            return f"cannot connect to the ESC service at {self.url}: the host name does not resolve"
        if isinstance(reason, urllib3.exceptions.NewConnectionError):
            return f"cannot connect to the ESC service at {self.url}: connection refused (is the URL right and the service up?)"
        if isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
            return f"cannot connect to the ESC service at {self.url}: no answer within {self.timeout:g} s (is the host right?)"
        if isinstance(reason, urllib3.exceptions.SSLError):
            return f"cannot connect to the ESC service at {self.url}: TLS failed ({type(reason).__name__})"
        return f"cannot reach the ESC service at {self.url} ({type(reason).__name__}): is the URL right and the service up?"

    def _fail(self, status: int, data: bytes, org: str, action: str = "open environments") -> None:
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        message = doc.get("message") if isinstance(doc, dict) else None
        if isinstance(doc, dict) and isinstance(doc.get("diagnostics"), list) and doc["diagnostics"]:
            diags = _diagnostics(doc["diagnostics"])
            missing = [d for d in diags if _looks_missing(d.summary)]
            if missing and len(missing) == len(diags):
                raise EnvironmentNotFound("; ".join(self._missing(d.summary, org) for d in missing))
            raise DefinitionError(f"the environments of organization {org!r} have errors:", diags)
        if status == 401:
            raise AuthenticationError(
                f"the ESC service at {self.url} refused the access token (401); the token came from "
                f"{self.token.source}: set PULUMI_ACCESS_TOKEN or run `pulumi login`"
            )
        if status == 403:
            raise PermissionDenied(
                f"the access token (from {self.token.source}) may not {action} of "
                f"organization {org!r} at {self.url} (403)"
            )
        if status == 404:
            raise EnvironmentNotFound(
                f"not found at {self.url} (organization {org!r}): {message or 'an environment does not exist'}"
            )
        raise BackendError(f"the ESC service at {self.url} answered HTTP {status}: {message or 'no message'}")

    def _missing(self, summary: str, org: str) -> str:
        """Which environment, revision or tag is missing (a second request tells which, as the
        file:// backend says it), instead of the service's ``<yaml>:1:14: unknown environment``."""
        from ..refs import EnvironmentRef

        m = _UNKNOWN_ENV.search(summary)
        where = f"at {self.url} (organization {org!r})"
        if m is None:
            return f"{summary} {where}"
        name = m.group(1)
        try:
            ref = EnvironmentRef.parse(name)
        except Exception:
            return f"environment {name!r} not found {where}"
        base = f"{ref.project}/{ref.name}"
        if ref.version is None:
            return f"environment {base!r} not found {where}"
        from urllib.parse import quote

        try:
            self._call(
                "GET",
                "/environments/{orgName}/" + quote(ref.project, safe="") + "/" + quote(ref.name, safe=""),
                org=org,
                raw=True,  # a definition is YAML: only whether it exists matters
            )
        except EnvironmentNotFound:
            return f"environment {base!r} not found {where}"
        except Exception:
            return f"environment {base!r} or its version {ref.version!r} not found {where}"
        kind = "revision" if ref.version.isdigit() else "tag"
        return f"environment {base!r} has no {kind} {ref.version!r} {where}"

    # -- Backend protocol ----------------------------------------------------------------------

    def open(
        self,
        definition: Mapping[str, Any],
        *,
        organization: str | None = None,
        mode: Literal["open", "check"] = "open",
        limits: Any = None,
        detailed: bool = False,
    ) -> OpenedEnvironment:
        """Open (2 requests) or check (1 request) the anonymous composition ``definition``.

        ``limits`` is accepted for the :class:`Backend` protocol and ignored: the server
        evaluates, under its own limits. ``detailed`` keeps the service's whole Environment for
        :meth:`OpenedEnvironment.model`; a composition of one import is then opened as that
        environment (``POST .../{project}/{env}/open``, as ``esc env open`` does), so that the
        expressions are its own. A check's model is the one the service returns: redacted."""
        if not organization:
            raise ConfigurationError(
                f"no ESC organization for {self.url}: set ESC_PULUMI_ORGANIZATION or the stack config "
                "key esc:organization"
            )
        if not self.token.value:
            # Fail before any request: an unauthenticated call would only earn a 401.
            raise AuthenticationError(
                f"no access token for {self.url}: looked at {self.token.source}; set "
                "PULUMI_ACCESS_TOKEN or run `pulumi login`"
            )
        body: str | None = json.dumps(dict(definition))  # JSON is YAML
        if mode == "check":
            env = self._call("POST", "/environments/{orgName}/yaml/check", org=organization, body=body)
            requests = 1
        else:
            from urllib.parse import quote

            single = single_import(definition) if detailed else None
            open_path, read_path = "/environments/{orgName}/yaml/open", "/environments/{orgName}/yaml/open/"
            if single is not None:
                from ..refs import EnvironmentRef

                ref = EnvironmentRef.parse(single)
                named = f"/environments/{{orgName}}/{quote(ref.project, safe='')}/{quote(ref.name, safe='')}"
                pinned = ref.version and ref.version != "latest"
                open_path = f"{named}/versions/{quote(ref.version, safe='')}/open" if pinned else f"{named}/open"
                read_path, body = f"{named}/open/", None
            opened = self._call(
                "POST",
                open_path,
                org=organization,
                query=[("duration", OPEN_DURATION)],
                body=body,
            )
            diags = _diagnostics((opened.get("diagnostics") or {}).get("diagnostics") or []) if isinstance(
                opened.get("diagnostics"), dict
            ) else _diagnostics(opened.get("diagnostics") or [])
            if any(d.is_error for d in diags):
                raise DefinitionError(f"the environments of organization {organization!r} have errors:", diags)
            session = opened.get("id")
            if not isinstance(session, str) or not session:
                raise BackendError(f"the ESC service at {self.url} did not return an open session id")
            env = self._call("GET", read_path + quote(session, safe=""), org=organization)
            requests = 2
        if not isinstance(env, dict):
            raise BackendError(f"the ESC service at {self.url} returned an unexpected environment")
        value = properties_to_value(env.get("properties") or {})
        env_diags = env.get("diagnostics")
        if isinstance(env_diags, dict):
            env_diags = env_diags.get("diagnostics")
        diags = _diagnostics(env_diags or [])
        if any(d.is_error for d in diags):
            raise DefinitionError(f"the environments of organization {organization!r} have errors:", diags)
        imports = definition.get("imports") or []
        names = tuple(i if isinstance(i, str) else next(iter(i)) for i in imports if isinstance(i, (str, dict)) and i)
        return OpenedEnvironment(value=value, diagnostics=tuple(diags), requests=requests, environments=names,
                                 detailed_model=_model_of(env) if detailed else None)


    def rotate(self, name: str, paths: "list[str] | tuple[str, ...]" = (), *, organization: str | None = None,
               limits: Any = None) -> "RemoteRotation":
        """Ask the service to rotate environment ``name`` (``project/env``): every ``fn::rotate``
        of its definition, or those at ``paths`` (relative to ``values``). The service records
        the new states as a new revision and audits it; nothing is saved when a rotator fails
        (raised as :class:`DefinitionError` with the diagnostics). ``limits`` is ignored: the
        service evaluates under its own.

        Example::

            done = CloudBackend(url, token=token).rotate("app/db", ["password"], organization="acme")
            done.rotated, done.revision      # ('password',), 4
        """
        from urllib.parse import quote

        from ..refs import EnvironmentRef

        if not organization:
            raise ConfigurationError(f"no ESC organization for {self.url}: set ESC_PULUMI_ORGANIZATION")
        ref = EnvironmentRef.parse(name)
        if ref.version and ref.version != "latest":
            raise EscError(f"cannot rotate {name!r}: a pinned revision or tag is a snapshot; "
                           f"rotate {ref.project}/{ref.name} itself")
        path = f"/environments/{{orgName}}/{quote(ref.project, safe='')}/{quote(ref.name, safe='')}/rotate"
        done = self._call("POST", path, org=organization, body={"paths": list(paths)},
                          content_type="application/json", action="rotate environments")
        if not isinstance(done, dict) or not isinstance(done.get("postRotationRevision"), int):
            raise BackendError(f"the ESC service at {self.url} returned an unexpected rotation result")
        rotated = tuple(str(p) for p in done.get("rotated") or ())
        return RemoteRotation(tuple(_diagnostics(done.get("diagnostics") or [])), rotated,
                              int(done.get("preRotationRevision") or 0), done["postRotationRevision"])


def _model_of(env: Mapping[str, Any]) -> Any:
    """:meth:`OpenedEnvironment.model` of an Environment the service sent: spelt as the engine
    spells it, redacted on request by the engine's rule (which reads only the model)."""
    from ..esc.model import redact_model
    from ..esc.model_form import from_api

    model = from_api({k: env[k] for k in ("exprs", "properties", "schema", "executionContext") if k in env})

    def get(redact: bool) -> dict[str, Any]:
        return redact_model(model) if redact else model

    return get


@dataclass(frozen=True)
class RemoteRotation:
    """What the service says of a rotation: its diagnostics, the property paths rotated, and
    the revisions before and after."""

    diagnostics: tuple[Any, ...]
    rotated: tuple[str, ...]
    previous_revision: int
    revision: int


_UNKNOWN_ENV = re.compile(r'unknown environment "([^"]+)"')


def _looks_missing(summary: str) -> bool:
    s = summary.lower()
    return "not found" in s or "unknown environment" in s or "does not exist" in s


def _diagnostics(items: list) -> list:
    """The service's ``[{range?, summary, path?}]`` as engine diagnostics (all errors)."""
    from ..esc import Diagnostic, Pos, Range, Severity

    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        rng = None
        r = item.get("range")
        if isinstance(r, dict):
            b, e = r.get("begin") or {}, r.get("end") or {}
            rng = Range(
                str(r.get("environment", "")),
                Pos(int(b.get("line", 0)), int(b.get("column", 0)), int(b.get("byte", 0))),
                Pos(int(e.get("line", 0)), int(e.get("column", 0)), int(e.get("byte", 0))),
            )
        severity = Severity.WARNING if item.get("severity") in ("warning", 2) else Severity.ERROR
        out.append(Diagnostic(severity, str(item.get("summary", "")), rng, str(item.get("path", ""))))
    return out


def properties_to_value(properties: Mapping[str, Any]) -> Any:
    """The opened ``properties`` (maps/lists of ``{value, secret, unknown, trace}``) as a
    :class:`esc_pulumi.esc.Value` object, keeping every secret/unknown flag and the defining
    environment of each value (``value.defn.range.environment``)."""
    from ..esc import Pos, Range, Value

    def convert(node: Any) -> Value:
        if not isinstance(node, dict):
            return Value(node)
        raw = node.get("value")
        if isinstance(raw, dict):
            r: Any = {k: convert(v) for k, v in raw.items()}
        elif isinstance(raw, list):
            r = [convert(v) for v in raw]
        else:
            r = raw
        defn = None
        trace = node.get("trace")
        d = trace.get("def") if isinstance(trace, dict) else None
        if isinstance(d, dict) and d.get("environment"):
            b = d.get("begin") or {}
            e = d.get("end") or {}
            defn = _Trace(
                Range(
                    str(d["environment"]),
                    Pos(int(b.get("line", 0)), int(b.get("column", 0)), int(b.get("byte", 0))),
                    Pos(int(e.get("line", 0)), int(e.get("column", 0)), int(e.get("byte", 0))),
                )
            )
        return Value(r, bool(node.get("secret")), bool(node.get("unknown")), defn=defn)  # type: ignore[arg-type]

    return Value({k: convert(v) for k, v in properties.items()})
