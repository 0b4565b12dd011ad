"""The backend protocol shared by the local (file://) and cloud (http(s)://) backends."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Protocol

from ..errors import EscError
from ..esc.diagnostics import Diagnostic
from ..esc.values import Value


@dataclass(frozen=True)
class OpenedEnvironment:
    """An opened (or checked) composition.

    ``value`` is the root object: a :class:`esc_pulumi.esc.Value` whose leaves carry
    ``secret``/``unknown`` flags. ``diagnostics`` holds warnings (errors raise instead).
    ``requests`` counts the HTTP requests it took (0 for local backends).

    ``detailed_model`` gives the API's whole ``Environment`` (see :meth:`model`) when the open
    asked for it (``detailed=True``): only then does a backend keep what it takes.
    """

    value: Value
    diagnostics: tuple[Diagnostic, ...] = ()
    requests: int = 0
    environments: tuple[str, ...] = field(default_factory=tuple)
    detailed_model: Callable[[bool], dict[str, Any]] | None = field(default=None, repr=False, compare=False)

    def model(self, redact: bool = True) -> dict[str, Any]:
        """The detailed environment: ``{exprs?, properties?, schema?, executionContext?}`` as
        :mod:`esc_pulumi.esc.model` spells it, without any secret's text unless ``redact`` is
        False (:func:`esc_pulumi.esc.model.redact_model`). A composition that is nothing but
        one import (``{"imports": ["proj/env"]}``, what ``esc-pulumi open REF`` opens) is shown
        as that environment, as the ESC API's open of it returns it; any other is its own
        anonymous root. :class:`EscError` when the open did not ask for it."""
        if self.detailed_model is None:
            raise EscError("this environment was opened without its detailed model: open it with detailed=True")
        return self.detailed_model(redact)


def single_import(definition: Mapping[str, Any]) -> str | None:
    """The environment a composition is nothing but (``{"imports": ["proj/env"]}``), if so:
    its detailed model is that environment's own (see :meth:`OpenedEnvironment.model`)."""
    imports = definition.get("imports")
    if set(definition) != {"imports"} or not isinstance(imports, list) or len(imports) != 1:
        return None
    return imports[0] if isinstance(imports[0], str) and imports[0] else None


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
        detailed: bool = False,
    ) -> OpenedEnvironment: ...
    # ``limits``: an :class:`esc_pulumi.esc.EvalLimits` for backends that evaluate themselves
    # (``None``: theirs, by default the engine's defaults); remote backends ignore it.
    # ``detailed``: keep what OpenedEnvironment.model needs.


def open_composition(
    backend: Backend,
    definition: Mapping[str, Any],
    *,
    organization: str | None,
    mode: Literal["open", "check"],
    limits: Any = None,
    detailed: bool = False,
) -> OpenedEnvironment:
    """``backend.open``, passing ``limits`` and ``detailed`` only when given: a Backend written
    before they existed still works (``load()`` and the CLI open through here)."""
    extra: dict[str, Any] = {"limits": limits} if limits is not None else {}
    if detailed:
        extra["detailed"] = True
    return backend.open(definition, organization=organization, mode=mode, **extra)
