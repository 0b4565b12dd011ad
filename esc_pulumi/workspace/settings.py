"""Settings, highest first: ``load()`` arguments, environment variables (``ESC_PULUMI_BACKEND``,
``ESC_PULUMI_ORGANIZATION``), stack config keys (``esc:backend``, ``esc:organization``,
``esc:environments``), defaults (``https://api.pulumi.com`` or an http(s) ``PULUMI_BACKEND_URL``;
the organisation from ``pulumi.get_organization()`` when it is a real one).

Also the Pulumi CLI credentials file, read for the token of an ESC host.

Example::

    backend_url(None, environ={"ESC_PULUMI_BACKEND": "file://envs"}, stack_config={})
    # ('file://envs', 'ESC_PULUMI_BACKEND')
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigurationError

DEFAULT_BACKEND = "https://api.pulumi.com"
BACKEND_VAR = "ESC_PULUMI_BACKEND"
ORGANIZATION_VAR = "ESC_PULUMI_ORGANIZATION"
KEY_ENVIRONMENTS = "esc:environments"
KEY_BACKEND = "esc:backend"
KEY_ORGANIZATION = "esc:organization"
# What pulumi.get_organization() returns outside a run and on DIY backends: not a real org.
PLACEHOLDER_ORGANIZATION = "organization"


def is_http_url(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def backend_url(
    argument: str | None, *, environ: Mapping[str, str], stack_config: Mapping[str, Any]
) -> tuple[str, str]:
    """The backend URL and where it came from (for error messages)."""
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
    state = environ.get("PULUMI_BACKEND_URL", "")
    if is_http_url(state):
        return state.rstrip("/"), "PULUMI_BACKEND_URL"
    return DEFAULT_BACKEND, "the default"


def organization(
    argument: str | None, *, environ: Mapping[str, str], stack_config: Mapping[str, Any]
) -> str | None:
    """The ESC organisation, or ``None`` when nothing names a real one."""
    if argument:
        return argument
    if environ.get(ORGANIZATION_VAR):
        return environ[ORGANIZATION_VAR]
    value = stack_config.get(KEY_ORGANIZATION)
    if value is not None:
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"stack config {KEY_ORGANIZATION} must be a string")
        return value
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


def credentials_path(environ: Mapping[str, str]) -> Path:
    """Where the Pulumi CLI keeps its tokens."""
    if environ.get("PULUMI_CREDENTIALS_PATH"):
        return Path(environ["PULUMI_CREDENTIALS_PATH"]) / "credentials.json"
    if environ.get("PULUMI_HOME"):
        return Path(environ["PULUMI_HOME"]) / "credentials.json"
    return Path.home() / ".pulumi" / "credentials.json"


@dataclass(frozen=True)
class Token:
    """An access token and where it came from. ``repr`` never shows the token."""

    value: str | None
    source: str

    def __repr__(self) -> str:
        return f"Token(source={self.source!r}, set={self.value is not None})"


def access_token(url: str, environ: Mapping[str, str]) -> Token:
    """``PULUMI_ACCESS_TOKEN``, else the credentials file's token for exactly this URL.

    The file's ``current`` entry is not used: on DIY setups it is a file:// or s3:// URL.
    """
    if environ.get("PULUMI_ACCESS_TOKEN"):
        return Token(environ["PULUMI_ACCESS_TOKEN"], "PULUMI_ACCESS_TOKEN")
    path = credentials_path(environ)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Token(None, f"PULUMI_ACCESS_TOKEN (unset) or {path} (missing)")
    except (OSError, ValueError) as e:
        # Reported when a token is needed, not here: a local backend never needs one.
        return Token(None, f"PULUMI_ACCESS_TOKEN (unset) or {path} (unreadable: {type(e).__name__})")
    tokens = data.get("accessTokens") if isinstance(data, dict) else None
    if isinstance(tokens, dict):
        for candidate in (url, url.rstrip("/"), url.rstrip("/") + "/"):
            token = tokens.get(candidate)
            if isinstance(token, str) and token:
                return Token(token, f"{path} (token for {url})")
    return Token(None, f"PULUMI_ACCESS_TOKEN (unset) or {path} (no token for {url})")
