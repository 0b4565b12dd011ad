"""The backend protocol shared by the local (file://) and cloud (http(s)://) backends."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Protocol

from ..esc.diagnostics import Diagnostic
from ..esc.values import Value


@dataclass(frozen=True)
class OpenedEnvironment:
    """An opened (or checked) composition.

    ``value`` is the root object: a :class:`esc_pulumi.esc.Value` whose leaves carry
    ``secret``/``unknown`` flags. ``diagnostics`` holds warnings (errors raise instead).
    ``requests`` counts the HTTP requests it took (0 for local backends).
    """

    value: Value
    diagnostics: tuple[Diagnostic, ...] = ()
    requests: int = 0
    environments: tuple[str, ...] = field(default_factory=tuple)


class Backend(Protocol):
    """Opens anonymous compositions.

    ``definition`` is the composition document, e.g. ``{"imports": ["dev", "proj/app@stable"]}``
    or the mapping form of a stack file's ``environment:``. Raises
    :class:`esc_pulumi.errors.EscError` subclasses: ``DefinitionError`` (with diagnostics, for
    definitions with errors), ``EnvironmentNotFound``, ``AuthenticationError``, ``BackendError``...
    """

    url: str

    def open(
        self,
        definition: Mapping[str, Any],
        *,
        organization: str | None = None,
        mode: Literal["open", "check"] = "open",
        limits: Any = None,
    ) -> OpenedEnvironment: ...
    # ``limits``: an :class:`esc_pulumi.esc.EvalLimits` for backends that evaluate themselves
    # (``None``: theirs, by default the engine's defaults); remote backends ignore it.


def open_composition(
    backend: Backend,
    definition: Mapping[str, Any],
    *,
    organization: str | None,
    mode: Literal["open", "check"],
    limits: Any = None,
) -> OpenedEnvironment:
    """``backend.open``, passing ``limits`` only when given: a Backend written before limits
    existed still works (``load()`` and the CLI open through here)."""
    extra = {"limits": limits} if limits is not None else {}
    return backend.open(definition, organization=organization, mode=mode, **extra)
