"""The embedded ESC engine: the Pulumi ESC environment language, evaluated offline.

Stages, one module each: :mod:`.syntax` (YAML → nodes with positions), :mod:`.interpolation`
(the ``${...}`` grammar), :mod:`.ast` (nodes → expressions, load diagnostics), :mod:`.eval`
(imports, merging, references, builtins), :mod:`.schema` (types of values and arguments),
:mod:`.views` (JSON, detailed and diagnostic views), :mod:`.model` (the full detailed model of
an evaluation: ``exprs``, ``properties``, ``schema``, ``executionContext``, built only on request
through :func:`evaluate_environment`). Nothing here knows about Pulumi.

Example::

    from esc_pulumi import esc

    decl, diags = esc.load_definition("values:\\n  a: hello\\n  b: ${a} world\\n", "dev")
    value, diags = esc.evaluate(decl, mode="open")
    esc.to_plain(value)        # {'a': 'hello', 'b': 'hello world'}

    ev = esc.evaluate_environment(decl, mode="open")
    ev.detailed()["schema"]    # {'properties': {'a': {'type': 'string', 'const': 'hello'}, ...
"""
from typing import TYPE_CHECKING, Any

from .ast import EnvironmentDecl
from .budget import EvalLimits, LimitDiagnostic
from .diagnostics import Diagnostic, Pos, Range, Severity
from .envelope import Decrypter, EnvelopeError
from .eval import ANONYMOUS, EnvironmentLoader, Evaluation, LoadedEnvironment, LoadError, Mode, evaluate, evaluate_environment
from .loading import load_definition
from . import schema
from .providers import Provider, ProviderError, ProviderRegistry, Rotator
from .values import Value, to_plain

if TYPE_CHECKING:  # pragma: no cover
    from .rotation import Patch, Rotation, rotate

_ROTATION = frozenset({"Patch", "Rotation", "rotate"})


def __getattr__(name: str) -> Any:
    # Rotation is imported when first asked for: a plain evaluation (every load()) needs none of it.
    if name in _ROTATION:
        from . import rotation

        return getattr(rotation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ANONYMOUS",
    "Decrypter",
    "Diagnostic",
    "EnvelopeError",
    "EnvironmentDecl",
    "EnvironmentLoader",
    "EvalLimits",
    "Evaluation",
    "LimitDiagnostic",
    "LoadError",
    "LoadedEnvironment",
    "Mode",
    "Patch",
    "Pos",
    "Provider",
    "ProviderError",
    "ProviderRegistry",
    "Range",
    "Rotation",
    "Rotator",
    "Severity",
    "Value",
    "evaluate",
    "evaluate_environment",
    "rotate",
    "schema",
    "load_definition",
    "to_plain",
]
