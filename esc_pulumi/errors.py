"""The errors esc_pulumi raises. Every one is an :class:`EscError`; messages say what failed,
where (``env:line:col`` for definition problems) and what to do — and never hold a secret."""
from __future__ import annotations

from typing import Sequence

from .esc.diagnostics import Diagnostic


class EscError(Exception):
    """Base class of every error raised by esc_pulumi."""


class ConfigurationError(EscError):
    """A missing or malformed project/stack file, or settings that contradict each other."""


class InvalidReference(EscError):
    """A malformed environment reference (``project/env@version``)."""


class EnvironmentNotFound(EscError):
    """An environment (or one of its revisions or tags) does not exist."""


class DefinitionError(EscError):
    """An environment definition has errors; ``diagnostics`` holds them all."""

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        self.diagnostics = tuple(diagnostics)
        lines = [message] + [f"  {_where(d)}{d.summary}" for d in self.diagnostics if d.is_error]
        super().__init__("\n".join(lines))


class MappingError(EscError):
    """``pulumiConfig`` holds something that cannot become Pulumi config (a bad key, say)."""


class BackendError(EscError):
    """The ESC service could not be reached or answered something unexpected."""


class AuthenticationError(BackendError):
    """The ESC service refused the token (HTTP 401)."""


class PermissionDenied(BackendError):
    """The token is valid but may not do this (HTTP 403)."""


class DecryptionError(EscError):
    """A ciphertext could not be decrypted: wrong passphrase or key, or corrupted data."""


def _where(d: Diagnostic) -> str:
    if d.range is None:
        return ""
    return f"{d.range.environment}:{d.range.begin.line}:{d.range.begin.column}: "


class EscWarning(UserWarning):
    """Something the Pulumi CLI accepts but that is probably a mistake (an odd config key form)."""
