"""``esc_pulumi.Config``: a drop-in :class:`pulumi.Config` that never hands out a secret as a
plain value, and ``provider_args()`` for explicit providers.

``pulumi.Config.get``/``require`` return the raw string even for secret keys (the SDK's warning
is disabled), so one forgotten ``_secret`` leaks a password into state in plain text. Here every
getter returns a secret :class:`pulumi.Output` when the key is secret.

Example::

    import esc_pulumi

    esc_pulumi.load()
    cfg = esc_pulumi.Config()
    cfg.require("dbPassword")        # Output (secret) — the key is secret
    cfg.require("region")            # 'eu-west-1' — a plain key stays a plain str
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable

import pulumi
from pulumi.config import ConfigTypeError
from pulumi.runtime import config as _rc

__all__ = ["Config", "provider_args"]


def _is_secret(full_key: str) -> bool:
    return _rc.is_config_secret(full_key)


class Config(pulumi.Config):
    """``pulumi.Config`` whose getters return secret Outputs for secret keys.

    Plain keys behave exactly as in ``pulumi.Config``. For secret keys ``get``, ``get_int``,
    ``get_bool``, ``get_float``, ``get_object`` and the ``require*`` variants return what their
    ``*_secret*`` counterparts return; a type error names the key but never shows the value.

    Example::

        cfg = esc_pulumi.Config("aws")
        cfg.require("secretKey")     # Output[str], secret
    """

    def _secretly(self, key: str, plain: Callable[..., Any], secret: Callable[..., Any], *args: Any) -> Any:
        full = self.full_key(key)
        if not _is_secret(full):
            return plain(key, *args)
        try:
            return secret(key, *args)
        except ConfigTypeError as e:
            # The SDK's error quotes the value, and so does what it chains (int()'s ValueError).
            # `raise ... from None` would only hide them: __context__ would still hold them, for
            # any traceback formatter, logger or error reporter that walks the chain. So only the
            # expected type is kept, and the new error is raised once this handler has ended.
            kind = str(getattr(e, "expect_type", "value"))
        raise SecretConfigTypeError(full, kind)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._secretly(key, super().get, super().get_secret, default)

    def get_bool(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._secretly(key, super().get_bool, super().get_secret_bool, default)

    def get_int(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._secretly(key, super().get_int, super().get_secret_int, default)

    def get_float(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._secretly(key, super().get_float, super().get_secret_float, default)

    def get_object(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._secretly(key, super().get_object, super().get_secret_object, default)

    def require(self, key: str) -> Any:  # type: ignore[override]
        return self._secretly(key, super().require, super().require_secret)

    def require_bool(self, key: str) -> Any:  # type: ignore[override]
        return self._secretly(key, super().require_bool, super().require_secret_bool)

    def require_int(self, key: str) -> Any:  # type: ignore[override]
        return self._secretly(key, super().require_int, super().require_secret_int)

    def require_float(self, key: str) -> Any:  # type: ignore[override]
        return self._secretly(key, super().require_float, super().require_secret_float)

    def require_object(self, key: str) -> Any:  # type: ignore[override]
        return self._secretly(key, super().require_object, super().require_secret_object)


class SecretConfigTypeError(ConfigTypeError):
    """A secret config value of the wrong type; the message does not show the value.

    Raised with no chain: ``__cause__`` and ``__context__`` are ``None`` (unless the caller was
    itself handling an exception of its own, which is then the context), so walking it never
    reaches the SDK's error, whose message and ``value`` hold the plaintext.
    """

    def __init__(self, key: str, kind: str) -> None:
        self.key = key
        self.value = "[secret]"
        self.expect_type = kind
        Exception.__init__(self, f"Configuration '{key}' value '[secret]' is not a valid '{kind}'")


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """``assumeRole`` → ``assume_role``; ``skipCredentialsValidation`` →
    ``skip_credentials_validation``; ``accessKeyID`` → ``access_key_id``."""
    return _CAMEL.sub("_", name).replace("-", "_").lower()


def provider_args(namespace: str) -> dict[str, Any]:
    """The ``<namespace>:*`` config keys as keyword arguments for an explicit provider.

    Keys become snake_case, JSON objects and arrays are decoded, secret keys become secret
    Outputs. Default providers take their config from the Pulumi engine and never see keys set
    from inside the program: pass these to an explicit provider instead.

    Example::

        import pulumi_aws as aws
        aws_provider = aws.Provider("aws", **esc_pulumi.provider_args("aws"))
    """
    prefix = f"{namespace}:"
    merged: dict[str, Any] = dict(_rc.get_config_env())  # PULUMI_CONFIG: lowest, as get_config reads it
    merged.update(_rc.CONFIG.get())
    out: dict[str, Any] = {}
    for key in sorted(merged):
        if not key.startswith(prefix):
            continue
        raw = merged[key]
        value: Any = raw
        if isinstance(raw, str) and raw[:1] in ("{", "["):
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
        out[snake_case(key[len(prefix):])] = pulumi.Output.secret(value) if _is_secret(key) else value
    return out
