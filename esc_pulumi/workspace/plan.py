"""What ``load()`` (and ``esc-pulumi config/open/run``) will do: the project, the stack, the
environment list, the backend and the organisation — resolved, before anything is opened.

Example::

    plan = make_plan("dev", Path("examples/local"))
    plan.environments      # ('myproj/base', 'myproj/dev')
    plan.composition       # {'imports': ['myproj/base', 'myproj/dev']}
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..backends import Backend, backend_from_url
from ..errors import ConfigurationError
from ..esc._fast import Record
from ..refs import EnvironmentRef
from .settings import KEY_ENVIRONMENTS, LIBRARY, Words, backend_url, execution_context, organization as resolve_organization
from .project import Project, find_project, project_file_in, read_project, read_stack, selected_stack

# Set by `esc-pulumi run` for its child: the wrapper already opened and applied this plan
# (its value is the plan's applied_marker), so a load() inside must not open it again.
APPLIED_VAR = "ESC_PULUMI_APPLIED"

# What pulumi.runtime.settings holds outside a run: placeholders, not real names.
_PLACEHOLDERS = {"project", "stack", "root_directory", None, ""}


class RunInfo(Record):
    """What the Pulumi runtime of this process says (all ``None`` when pulumi is not imported).

    ``real_cli`` is true when the program runs under the Pulumi CLI's engine (a gRPC monitor),
    false under ``set_mocks`` or outside a run.
    """

    __slots__ = ("project", "stack", "root_directory", "real_cli")
    _defaults = {"project": None, "stack": None, "root_directory": None, "real_cli": False}
    project: str | None
    stack: str | None
    root_directory: str | None
    real_cli: bool


def run_info() -> RunInfo:
    """Read the Pulumi runtime settings without importing pulumi if the program did not."""
    if "pulumi" not in sys.modules:
        return RunInfo()
    from pulumi.runtime import settings
    from pulumi.runtime.mocks import MockMonitor

    def real(v: Any) -> str | None:
        return v if isinstance(v, str) and v not in _PLACEHOLDERS else None

    monitor = settings.get_monitor()
    mocked = isinstance(monitor, MockMonitor)
    return RunInfo(
        project=real(settings.get_project()),
        stack=real(settings.get_stack()),
        root_directory=real(settings.get_root_directory()),
        real_cli=monitor is not None and not mocked,
    )


class LoadPlan(Record):
    """Everything resolved for one load. ``composition`` is the anonymous definition to open
    (``None`` when there are no environments); ``list_source`` says where the list came from:
    ``"argument"``, ``"environment"`` (the stack file's ``environment:``) or
    ``"esc:environments"``. ``applied_by_cli``: the Pulumi CLI already applied
    ``environment:`` to this run, so it must not be opened again."""

    __slots__ = ("project_dir", "project", "stack", "organization", "backend", "composition",
                 "environments", "list_source", "stack_config", "project_defaults", "applied_by_cli",
                 "project_file", "stack_file", "stack_file_exists", "backend_source", "run",
                 "stack_document", "project_spec")
    _defaults = {"applied_by_cli": False, "project_file": None, "stack_file": None,
                 "stack_file_exists": False, "backend_source": "", "project_spec": None}
    _factories = {"run": RunInfo, "stack_document": dict}
    _uncompared = frozenset({"stack_document", "project_spec"})
    # The repr leaves out what may hold plaintext: the stack's config as the CLI delivered it
    # (decrypted secrets), inline definitions, the stack document.
    _unshown = frozenset({"stack_config", "composition", "stack_document", "project_spec"})
    project_dir: Path
    project: str
    stack: str
    organization: str | None
    backend: Backend
    composition: dict | None
    environments: tuple[str, ...]
    list_source: str
    stack_config: dict[str, Any]
    project_defaults: dict[str, Any]
    applied_by_cli: bool
    project_file: Path | None
    stack_file: Path | None
    stack_file_exists: bool
    backend_source: str
    run: RunInfo
    # The stack file as typed data (its encryptionsalt / secretsprovider decide decryption).
    stack_document: dict[str, Any]
    # The project file as read (its typed declarations are validated after the merge).
    project_spec: Project | None

    def key(self) -> tuple:
        """Identifies what would be opened: two plans with the same key open the same thing."""
        return (
            str(self.project_dir),
            self.project,
            self.stack,
            self.organization,
            getattr(self.backend, "url", repr(self.backend)),
            json.dumps(self.composition, sort_keys=True, default=str),
            self.applied_by_cli,
        )


def _names(value: Any, where: str) -> list[str]:
    """A list of environment names from config: a YAML list, a JSON list, or 'a, b'."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise ConfigurationError(f"{where}: not a JSON list of environment names") from None
        else:
            value = [v for v in text.replace(",", " ").split() if v]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"{where}: expected a list of environment names")
    for name in value:
        EnvironmentRef.parse(name)  # InvalidReference names the bad one
    return list(value)


def _import_names(imports: Any, where: str) -> list[str]:
    """Names in an ``imports:`` list: ``- env`` or ``- env: {merge: false}``."""
    if imports is None:
        return []
    if not isinstance(imports, list):
        raise ConfigurationError(f"{where}: 'imports' must be a list")
    out = []
    for item in imports:
        if isinstance(item, str):
            name = item
        elif isinstance(item, dict) and len(item) == 1:
            name = next(iter(item))
        else:
            raise ConfigurationError(f"{where}: invalid import {item!r}")
        EnvironmentRef.parse(name)
        out.append(name)
    return out


def _check_arguments(**arguments: Any) -> None:
    """Arguments of the wrong type fail here, by name, before anything is read or opened."""
    for name, value in arguments.items():
        if value is None or isinstance(value, str):
            continue
        if name == "project_dir" and isinstance(value, os.PathLike):
            continue
        if name == "backend" and callable(getattr(value, "open", None)):
            continue
        wanted = {
            "backend": "a URL string or a Backend (an object with open())",
            "project_dir": "a path",
        }.get(name, "a string")
        raise ConfigurationError(f"load({name}=...): expected {wanted}, not {type(value).__name__}")


def make_plan(
    stack: str | None = None,
    project_dir: str | os.PathLike[str] | None = None,
    *,
    environments: Sequence[str] | None = None,
    organization: str | None = None,
    backend: "str | Backend | None" = None,
    environ: Mapping[str, str] | None = None,
    words: Words = LIBRARY,
) -> LoadPlan:
    """Resolve project, stack, environment list, backend and organisation (nothing is opened).

    Inside a Pulumi run the project folder and stack come from the runtime; otherwise the project
    is found upward from the cwd (or ``project_dir``) and the stack taken from ``stack=`` or
    ``PULUMI_STACK``.

    Example::

        plan = make_plan("dev", "examples/local")
        plan.list_source    # 'esc:environments'
    """
    env = environ if environ is not None else os.environ
    _check_arguments(stack=stack, organization=organization, backend=backend, project_dir=project_dir)
    run = run_info()

    # The project folder: argument, the runtime's root directory (a placeholder under mocks),
    # else upward from the cwd (the program's cwd is the project root under `pulumi up`).
    if project_dir is not None:
        project_path = find_project(Path(project_dir), words.project_dir)
    elif run.root_directory and project_file_in(Path(run.root_directory)):
        project_path = project_file_in(Path(run.root_directory))  # type: ignore[assignment]
    else:
        project_path = find_project(Path.cwd(), words.project_dir)
    project = read_project(project_path)

    stack_name = stack or run.stack or selected_stack(project, env)
    if not stack_name:
        raise ConfigurationError(
            f"no stack selected for project {project.name!r}: pass {words.stack}, set PULUMI_STACK, "
            "select one with `pulumi stack select`, or run under `pulumi up`"
        )
    stack_file = read_stack(project, stack_name)
    if not stack_file.exists and environments is None:
        # The CLI reads a missing stack file as empty config; here it almost always means a
        # mistyped stack name, and there would be nothing to load anyway.
        raise ConfigurationError(
            f"stack file {stack_file.path} not found (project {project.name!r}, stack {stack_name!r}): "
            f"check the stack name, or pass {words.environments}"
        )
    config = stack_file.config
    where = str(stack_file.path)

    has_env = stack_file.environment is not None
    has_key = KEY_ENVIRONMENTS in config
    if has_env and has_key:
        raise ConfigurationError(
            f"{where}: both 'environment:' and the config key {KEY_ENVIRONMENTS} list environments; "
            "keep one of them"
        )

    composition: dict | None
    if environments is not None:
        if isinstance(environments, str):
            environments = [environments]
        names = _names(list(environments), words.environments)
        source = "argument"
        composition = {"imports": names} if names else None
    elif has_env:
        source = "environment"
        raw = stack_file.environment
        if isinstance(raw, list):
            names = _names(raw, f"{where}: environment")
            composition = {"imports": names} if names else None
        else:
            unknown = set(raw) - {"imports", "values"}
            if unknown:
                raise ConfigurationError(
                    f"{where}: environment: may hold only 'imports' and 'values', not {sorted(unknown)}"
                )
            names = _import_names(raw.get("imports"), f"{where}: environment")
            composition = dict(raw) if (names or raw.get("values")) else None
    elif has_key:
        source = KEY_ENVIRONMENTS
        names = _names(config[KEY_ENVIRONMENTS], f"{where}: {KEY_ENVIRONMENTS}")
        composition = {"imports": names} if names else None
    else:
        source, names, composition = "argument", [], None

    org = resolve_organization(organization, environ=env, stack_config=config)

    if backend is not None and not isinstance(backend, str):
        backend_obj: Backend = backend
        backend_source = words.backend
    else:
        url, backend_source = backend_url(
            backend, environ=env, stack_config=config, project_backend=project.backend_url
        )
        backend_obj = backend_from_url(
            url, project_dir=project.dir, context=execution_context(org, env), environ=env
        )

    plan = LoadPlan(
        project_dir=project.dir,
        project=project.name,
        stack=stack_name,
        organization=org,
        backend=backend_obj,
        composition=composition,
        environments=tuple(names),
        list_source=source,
        stack_config=dict(config),
        project_defaults=dict(project.defaults),
        # Under the real CLI, `environment:` was opened by the CLI itself (DIY backends refuse
        # such stacks before the program starts), so its config is already in the run.
        applied_by_cli=source == "environment" and run.real_cli,
        project_file=project.path,
        stack_file=stack_file.path,
        stack_file_exists=stack_file.exists,
        backend_source=backend_source,
        run=run,
        stack_document=dict(stack_file.document),
        project_spec=project,
    )
    if composition is not None and env.get(APPLIED_VAR) == applied_marker(plan):
        plan = plan.replace(applied_by_cli=True)
    return plan


def applied_marker(plan: LoadPlan) -> str:
    """What identifies a plan's opening across processes: ``esc-pulumi run`` sets
    :data:`APPLIED_VAR` to it for the child, whose ``load()`` of the same plan then opens
    nothing (and a load of anything else opens as usual)."""
    import hashlib

    # Normalised: the wrapper and the program may see the folder through another path and
    # the stack by its short or its full name.
    identity = [
        str(Path(plan.project_dir).resolve()),
        plan.project,
        plan.stack.rsplit("/", 1)[-1],
        plan.organization,
        getattr(plan.backend, "url", ""),
        plan.composition,
    ]
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:32]
