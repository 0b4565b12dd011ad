"""Where environments come from. Every backend opens an anonymous composition
``{"imports": [...], "values": {...}}`` and returns its value with secret/unknown flags.

Example::

    backend = backend_from_url("file://envs", project_dir=Path("examples/local"))
    opened = backend.open({"imports": ["dev"]})
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .base import Backend, OpenedEnvironment

if TYPE_CHECKING:  # pragma: no cover
    from .cloud import CloudBackend
    from .local import LocalBackend

__all__ = ["Backend", "OpenedEnvironment", "backend_from_url", "CloudBackend", "LocalBackend"]


TIMEOUT_VAR = "ESC_PULUMI_TIMEOUT"
DEFAULT_TIMEOUT = 60.0


def timeout_from(environ: Mapping[str, str]) -> float:
    """Seconds to wait for an ESC service: ``ESC_PULUMI_TIMEOUT``, else 60."""
    from ..errors import ConfigurationError

    text = environ.get(TIMEOUT_VAR, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 86400:
        raise ConfigurationError(f"{TIMEOUT_VAR}={text!r}: expected a number of seconds, e.g. 30")
    return seconds


def backend_from_url(
    url: str,
    *,
    project_dir: Path | None = None,
    context: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Backend:
    """The backend for ``url``.

    ``file://DIR`` → :class:`LocalBackend` (``DIR`` relative to ``project_dir``, else the cwd;
    ``file:///abs`` is absolute); ``http(s)://host`` → :class:`CloudBackend` with the token from
    ``PULUMI_ACCESS_TOKEN`` or the CLI credentials file for that URL. Anything else is a
    :class:`~esc_pulumi.errors.ConfigurationError`.

    Example::

        backend_from_url("file://envs", project_dir=Path("examples/local"))   # LocalBackend
        backend_from_url("http://127.0.0.1:8080")                              # CloudBackend
    """
    from ..errors import ConfigurationError
    from .credentials import access_token, is_http_url

    env = environ if environ is not None else os.environ
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"invalid ESC backend URL {url!r}")
    if url.startswith("file://"):
        from .local import LocalBackend

        rest = url[len("file://"):]
        if not rest:
            raise ConfigurationError("file:// backend URL without a folder: use file://DIR")
        folder = Path(rest).expanduser()
        if not folder.is_absolute():
            folder = (project_dir if project_dir is not None else Path.cwd()) / folder
        return LocalBackend(folder, context=context, environ=env, shown_root=rest)
    if is_http_url(url):
        from .cloud import CloudBackend

        return CloudBackend(
            url.rstrip("/"), token=access_token(url.rstrip("/"), env), timeout=timeout_from(env)
        )
    raise ConfigurationError(
        f"unsupported ESC backend URL {url!r}: use file://DIR for local definitions or "
        "https://host for an ESC service"
    )


def __getattr__(name: str) -> Any:
    # Lazy: the cloud backend's module is cheap, but keep `import esc_pulumi.backends` minimal.
    if name == "LocalBackend":
        from .local import LocalBackend

        return LocalBackend
    if name == "CloudBackend":
        from .cloud import CloudBackend

        return CloudBackend
    raise AttributeError(name)
