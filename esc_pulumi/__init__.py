"""Pulumi ESC environments for Pulumi Python programs.

Example::

    import pulumi
    import esc_pulumi

    esc_pulumi.load()                                # stack file -> environments -> pulumi config
    cfg = pulumi.Config()
    db_password = cfg.require_secret("dbPassword")   # a secret Output

``import esc_pulumi`` is cheap: the engine, pulumi and pulumi-esc-sdk are imported only when
something needs them (``load()``, ``Config``, the cloud backend).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from .backends.base import Backend
    from .esc.budget import EvalLimits
    from .runtime.config import Config, provider_args
    from .errors import (
        AuthenticationError,
        BackendError,
        ConfigurationError,
        DecryptionError,
        DefinitionError,
        EnvironmentNotFound,
        EscError,
        EscWarning,
        InvalidReference,
        MappingError,
        PermissionDenied,
    )
    from .workspace.mapping import ConfigResult, Delivered
    from .workspace.plan import LoadPlan

_ERRORS = frozenset(
    {
        "AuthenticationError",
        "BackendError",
        "ConfigurationError",
        "DecryptionError",
        "DefinitionError",
        "EnvironmentNotFound",
        "EscError",
        "EscWarning",
        "InvalidReference",
        "MappingError",
        "PermissionDenied",
    }
)

__all__ = sorted(_ERRORS | {"Config", "LoadResult", "load", "provider_args"})


def __getattr__(name: str) -> Any:
    # Lazy attributes keep `import esc_pulumi` from importing the engine or pulumi (~0.4 s).
    if name in _ERRORS:
        from . import errors

        return getattr(errors, name)
    if name in ("Config", "provider_args"):
        from .runtime import config

        return getattr(config, name)
    raise AttributeError(f"module 'esc_pulumi' has no attribute {name!r}")


_MASK = "[secret]"


def _delivered(environ: Mapping[str, str]) -> "Delivered":
    """What the Pulumi CLI delivered to this run, as the language host passed it: the
    environment variables, not the SDK's config dict (which earlier loads may have changed)."""
    import json

    from .workspace.mapping import Delivered

    def parsed(name: str, default: str) -> Any:
        try:
            return json.loads(environ.get(name) or default)
        except ValueError:
            return json.loads(default)

    config = parsed("PULUMI_CONFIG", "{}")
    secret = parsed("PULUMI_CONFIG_SECRET_KEYS", "[]")
    return Delivered(
        {str(k): str(v) for k, v in config.items()} if isinstance(config, dict) else {},
        frozenset(map(str, secret)) if isinstance(secret, list) else frozenset(),
    )


def _warn(messages: Sequence[str]) -> None:
    """Warnings go to the engine's log inside a run (the CLI shows them), else to ``warnings``."""
    if not messages:
        return
    from . import errors
    from .workspace.plan import run_info

    if run_info().real_cli:
        import pulumi

        for m in messages:
            pulumi.log.warn(f"esc_pulumi: {m}")
    else:
        import warnings

        for m in messages:
            warnings.warn(m, errors.EscWarning, stacklevel=3)


class _Masked(Mapping[str, str]):
    """A read-only mapping whose repr shows secret values as ``[secret]``."""

    __slots__ = ("_data", "_secret")

    def __init__(self, data: Mapping[str, str], secret: frozenset[str]) -> None:
        self._data = dict(data)
        self._secret = secret

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr({k: (_MASK if k in self._secret else v) for k, v in self._data.items()})


@dataclass(frozen=True, repr=False)
class LoadResult:
    """What a :func:`load` opened and applied.

    ``environments``: the environments opened (in import order); ``config``: every config key
    applied (``ns:key`` → string); ``secret_keys``; ``sources``: where each key came from
    (``"stack file"``, ``"environment <name>"``, ``"project default"``);
    ``environment_variables`` and ``files`` (variable → temp file path); ``overridden``: keys
    whose ESC value the stack file overrode; ``applied``: false for ``load(apply=False)``;
    ``requests``: HTTP requests made (0 for local definitions or a repeated load);
    ``applied_by_cli``: the Pulumi CLI (or ``esc-pulumi run``) had already applied the
    environments, so nothing was opened; ``warnings``: what the CLI accepts but is probably a
    mistake (also sent to the engine's log inside a run, else to :mod:`warnings`).

    Its ``repr`` never shows a secret.

    Example::

        result = esc_pulumi.load(stack="dev")
        result                        # LoadResult(stack='dev', environments=(...), config={'myproj:dbPassword': '[secret]', ...})
        result.config["myproj:region"]
    """

    project: str
    stack: str
    environments: tuple[str, ...]
    config: Mapping[str, str]
    secret_keys: frozenset[str]
    sources: Mapping[str, str]
    environment_variables: Mapping[str, str]
    secret_variables: frozenset[str]
    files: Mapping[str, str]
    overridden: tuple[str, ...]
    applied: bool
    requests: int = 0
    applied_by_cli: bool = False
    backend: str = ""
    warnings: tuple[str, ...] = ()

    def masked_config(self) -> dict[str, str]:
        """``config`` with secret values shown as ``[secret]``."""
        return {k: (_MASK if k in self.secret_keys else v) for k, v in self.config.items()}

    def masked_environment_variables(self) -> dict[str, str]:
        """``environment_variables`` with secret values shown as ``[secret]``."""
        return {k: (_MASK if k in self.secret_variables else v) for k, v in self.environment_variables.items()}

    def __repr__(self) -> str:
        return (
            f"LoadResult(project={self.project!r}, stack={self.stack!r}, "
            f"environments={self.environments!r}, config={self.masked_config()!r}, "
            f"secret_keys={sorted(self.secret_keys)!r}, "
            f"environment_variables={self.masked_environment_variables()!r}, "
            f"files={sorted(self.files)!r}, overridden={self.overridden!r}, applied={self.applied!r})"
        )

    __str__ = __repr__


def load(
    stack: str | None = None,
    project_dir: str | os.PathLike[str] | None = None,
    *,
    environments: Sequence[str] | None = None,
    organization: str | None = None,
    backend: "str | Backend | None" = None,
    apply: bool = True,
    set_environment_variables: bool = True,
    write_files: bool = True,
    limits: "EvalLimits | None" = None,
    validate_config: bool = True,
) -> LoadResult:
    """Open the stack's ESC environments and put their ``pulumiConfig`` into Pulumi config.

    Inside a Pulumi run the project and stack come from the runtime; elsewhere the project is
    found upward from the cwd (or ``project_dir``) and the stack is ``stack=`` or
    ``PULUMI_STACK``. The environment list is ``environments=``, else the stack file's
    ``environment:``, else its config key ``esc:environments``. Secret values become secret
    config keys; ``environmentVariables`` go into ``os.environ`` and ``files`` into 0600 files
    in this process's private 0700 folder (removed at exit and on SIGTERM/SIGHUP, swept after a
    SIGKILL), named by their variables. All or nothing: on any
    :class:`EscError` nothing is applied. A second identical call opens nothing; a call that
    loads something else replaces the earlier load: the variables, files and config keys it set
    and the new one does not are taken back (once the new load has succeeded).
    ``limits`` (an :class:`esc_pulumi.esc.EvalLimits`) bounds the embedded engine's evaluation
    (``file://`` backends; a server applies its own); the engine's defaults when ``None``.
    ``validate_config``: check the merged config against the project's typed ``config:``
    declarations as the Pulumi CLI does (missing keys, wrong types, ``secret: true`` given in
    plaintext) and raise :class:`ConfigurationError` with the CLI's messages.

    Example::

        import esc_pulumi, pulumi

        esc_pulumi.load()
        pulumi.Config().require_secret("dbPassword")
    """
    from .backends.base import open_composition
    from .runtime import apply as runtime
    from .workspace.mapping import compute_config, stack_decrypter
    from .workspace.plan import make_plan

    plan = make_plan(
        stack, project_dir, environments=environments, organization=organization, backend=backend
    )
    memo_key = (plan.key(), set_environment_variables, write_files, limits, validate_config)
    replacing = None
    if apply:
        previous, replacing = runtime.memo_get(memo_key)
        if previous is not None:
            return previous

    opened = None
    if plan.composition is not None and not plan.applied_by_cli:
        opened = open_composition(
            plan.backend, plan.composition, organization=plan.organization, mode="open", limits=limits
        )
    environ = os.environ
    delivered = _delivered(environ) if plan.run.real_cli else None
    decrypt = None if delivered is not None else stack_decrypter(plan, environ)
    result = compute_config(plan, opened, delivered=delivered, decrypt=decrypt)
    if validate_config and plan.project_spec is not None:
        from .workspace.validation import HINT_LOAD, raise_for, validate

        raise_for(validate(plan.project_spec, plan.stack, result.entries), HINT_LOAD)
    _warn(result.warnings)
    applied = runtime.apply(
        result,
        opened,
        set_environment_variables=set_environment_variables,
        write_files=write_files,
        dry_run=not apply,
        replacing=replacing,
    )
    values = result.values()
    load_result = LoadResult(
        project=plan.project,
        stack=plan.stack,
        environments=plan.environments,
        config=_Masked(values, result.secret_keys),
        secret_keys=result.secret_keys,
        sources=MappingProxyType({k: e.source for k, e in result.entries.items()}),
        environment_variables=_Masked(applied.variables, applied.secret_variables),
        secret_variables=applied.secret_variables,
        files=MappingProxyType(dict(applied.files)),
        overridden=result.overridden,
        applied=apply,
        requests=opened.requests if opened is not None else 0,
        applied_by_cli=plan.applied_by_cli,
        backend=getattr(plan.backend, "url", ""),
        warnings=result.warnings,
    )
    if apply:
        runtime.memo_put(memo_key, load_result, applied)
    return load_result
