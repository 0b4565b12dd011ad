"""Settings, highest first: ``load()`` arguments, environment variables (``ESC_PULUMI_BACKEND``,
``ESC_PULUMI_ORGANIZATION``), stack config keys (``esc:backend``, ``esc:organization``,
``esc:environments``), defaults (``https://api.pulumi.com`` or an http(s) ``PULUMI_BACKEND_URL``;
the organisation from ``pulumi.get_organization()`` when it is a real one).

Example::

    backend_url(None, environ={"ESC_PULUMI_BACKEND": "file://envs"}, stack_config={})
    # ('file://envs', 'ESC_PULUMI_BACKEND')
"""
from __future__ import annotations

import sys
from typing import Any, Mapping

from ..esc._fast import Record
from ..backends.credentials import credentials_path, is_http_url
from ..errors import ConfigurationError

DEFAULT_BACKEND = "https://api.pulumi.com"
BACKEND_VAR = "ESC_PULUMI_BACKEND"
ORGANIZATION_VAR = "ESC_PULUMI_ORGANIZATION"
KEY_ENVIRONMENTS = "esc:environments"
KEY_BACKEND = "esc:backend"
KEY_ORGANIZATION = "esc:organization"
# What pulumi.get_organization() returns outside a run and on DIY backends: not a real org.
PLACEHOLDER_ORGANIZATION = "organization"


class Words(Record):
    """How the interface in use names its settings, for advice in error messages: the library
    says ``load(stack=...)``, the command ``--stack``."""

    __slots__ = ("stack", "environments", "project_dir", "backend")
    stack: str
    environments: str
    project_dir: str
    backend: str


LIBRARY = Words("load(stack=...)", "load(environments=...)", "load(project_dir=...)", "load(backend=...)")
COMMAND = Words("--stack", "environment names (REF arguments)", "-C DIR", "ESC_PULUMI_BACKEND")


def backend_url(
    argument: str | None,
    *,
    environ: Mapping[str, str],
    stack_config: Mapping[str, Any],
    project_backend: str | None = None,
) -> tuple[str, str]:
    """The backend URL and where it came from (for error messages).

    Past the explicit settings, the ESC host follows where the Pulumi CLI keeps state when that
    is an http(s) service: ``PULUMI_BACKEND_URL``, the project's ``backend.url``, the
    credentials file's ``current`` (each only if http(s): a DIY ``file://``/``s3://`` state
    URL is never an ESC host)."""
    if argument:
        return argument, "load(backend=...)"
    if environ.get(BACKEND_VAR):
        return environ[BACKEND_VAR], BACKEND_VAR
    value = stack_config.get(KEY_BACKEND)
    if value is not None:
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"stack config {KEY_BACKEND} must be a URL string")
        return value, f"stack config {KEY_BACKEND}"
    # PULUMI_BACKEND_URL is the *state* backend; on DIY setups it is file:// or s3://, never
    # an ESC host, so only an http(s) value is taken.
    candidates = (
        (environ.get("PULUMI_BACKEND_URL", ""), "PULUMI_BACKEND_URL"),
        (project_backend or "", "the project's backend.url"),
        (current_login(environ), f"'current' in {credentials_path(environ)}"),
    )
    for url, source in candidates:
        if is_http_url(url):
            return url.rstrip("/"), source
    return DEFAULT_BACKEND, "the default"


def current_login(environ: Mapping[str, str]) -> str:
    """The credentials file's ``current`` backend URL ("" when unset or unreadable)."""
    import json

    try:
        data = json.loads(credentials_path(environ).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    current = data.get("current") if isinstance(data, dict) else None
    return current if isinstance(current, str) else ""


def organization(
    argument: str | None, *, environ: Mapping[str, str], stack_config: Mapping[str, Any]
) -> str | None:
    """The ESC organisation, or ``None`` when nothing names a real one. A name that is not an
    ESC organisation name is an error naming where it came from (it goes into URLs)."""
    from ..refs import name_problem

    def checked(name: str, source: str) -> str:
        problem = name_problem("organization", name)
        if problem is not None:
            raise ConfigurationError(f"{source}: {problem}")
        return name

    if argument:
        return checked(argument, "load(organization=...)")
    if environ.get(ORGANIZATION_VAR):
        return checked(environ[ORGANIZATION_VAR], ORGANIZATION_VAR)
    value = stack_config.get(KEY_ORGANIZATION)
    if value is not None:
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"stack config {KEY_ORGANIZATION} must be a string")
        return checked(value, f"stack config {KEY_ORGANIZATION}")
    return runtime_organization()


def runtime_organization() -> str | None:
    """``pulumi.get_organization()`` when a Pulumi run (or mocks) named a real one.

    Pulumi is only consulted if the program already imported it: the CLI and scripts stay cheap.
    """
    if "pulumi" not in sys.modules:
        return None
    from pulumi.runtime import settings

    org = settings.get_organization()
    return org if org and org != PLACEHOLDER_ORGANIZATION else None


USER_VAR = "ESC_PULUMI_USER"


def execution_context(organization: str | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``context.pulumi`` an offline evaluation gets: the organisation's login and the
    user's (``ESC_PULUMI_USER``), where known. Pulumi Cloud fills these in itself.

    Example::

        execution_context("acme", {"ESC_PULUMI_USER": "alice"})
        # {'pulumi': {'organization': {'login': 'acme'}, 'user': {'login': 'alice'}}}
    """
    pulumi: dict[str, Any] = {}
    if organization:
        pulumi["organization"] = {"login": organization}
    if environ.get(USER_VAR):
        pulumi["user"] = {"login": environ[USER_VAR]}
    return {"pulumi": pulumi} if pulumi else {}
