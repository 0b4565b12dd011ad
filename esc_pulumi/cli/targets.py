"""The environments a subcommand works on: named by REFs or by the stack, opened, their diagnostics printed."""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ..errors import ConfigurationError, DefinitionError, EscError

if TYPE_CHECKING:  # pragma: no cover
    from ..backends.base import Backend, OpenedEnvironment
    from ..esc import Diagnostic, EvalLimits

__all__ = [
    "Target",
    "config_validation_option",
    "diag_line",
    "open_target",
    "print_definition_errors",
    "resolve_target",
    "stack_options",
    "sorted_diagnostics",
    "stack_plan",
    "start_dir",
]


def stack_options(p: argparse.ArgumentParser) -> None:
    """``--stack`` and ``--cwd``, read by :func:`start_dir` and :func:`resolve_target`."""
    p.add_argument("-s", "--stack", help="the stack (default: PULUMI_STACK)")
    p.add_argument("-C", "--cwd", metavar="DIR", help="run as if started in DIR")


def config_validation_option(p: argparse.ArgumentParser) -> None:
    """``--skip-config-validation``, the Pulumi CLI's flag for the same thing: do not check the
    config against the project's typed ``config:`` declarations (``args.skip_config_validation``)."""
    p.add_argument(
        "--skip-config-validation",
        action="store_true",
        help="do not check the config against the typed config: declarations of Pulumi.yaml",
    )


@dataclass(frozen=True)
class Target:
    """What to open: the composition, through which backend, for which organisation."""

    backend: "Backend"
    organization: str | None
    composition: dict | None
    label: str


def start_dir(args: argparse.Namespace) -> Path:
    cwd = getattr(args, "cwd", None)
    if cwd:
        p = Path(cwd)
        if not p.is_dir():
            raise ConfigurationError(f"--cwd {cwd}: no such directory")
        return p
    return Path.cwd()


def _project_file(start: Path) -> Path | None:
    from ..workspace.project import find_project

    try:
        return find_project(start, "-C DIR")
    except ConfigurationError:
        return None


def resolve_target(args: argparse.Namespace, refs: Sequence[str]) -> Target:
    """The backend and composition for ``refs`` (or the stack's list when there are none).

    REFs inside a project with a stack use the stack's settings (``esc:backend``,
    ``esc:organization``); otherwise the settings from the environment (``ESC_PULUMI_BACKEND``,
    ``ESC_PULUMI_ORGANIZATION``, an http(s) ``PULUMI_BACKEND_URL``, Pulumi Cloud), e.g.
    ``ESC_PULUMI_BACKEND=file:///srv/envs esc-pulumi open myproj/dev --format dotenv``.
    """
    from ..refs import EnvironmentRef

    for ref in refs:
        if ref.startswith("-"):
            raise EscError(f"unexpected option {ref!r}: options go before the environment names")
    refs, named_org = _strip_organization(refs)
    for ref in refs:
        EnvironmentRef.parse(ref)  # InvalidReference names the bad one
    target = _resolve(args, refs)
    if named_org is None:
        return target
    if target.organization is None:
        raise ConfigurationError(
            f"the environments name organization {named_org!r}, but no organization is set here to "
            "check it against: set ESC_PULUMI_ORGANIZATION (or the stack's esc:organization), or "
            "name them as project/env"
        )
    if target.organization != named_org:
        raise ConfigurationError(
            f"the environments name organization {named_org!r}, but this target's organization is "
            f"{target.organization!r}: drop the organization from the names, or set "
            "ESC_PULUMI_ORGANIZATION (or the stack's esc:organization) to it"
        )
    return target


def _strip_organization(refs: Sequence[str]) -> tuple[list[str], str | None]:
    """``org/project/env[@v]`` (the esc CLI's form) → ``project/env[@v]`` and the organisation;
    every such name must give the same one."""
    out: list[str] = []
    orgs: set[str] = set()
    for ref in refs:
        body, at, version = ref.partition("@")
        parts = body.split("/")
        if len(parts) == 3 and all(parts):
            orgs.add(parts[0])
            out.append(f"{parts[1]}/{parts[2]}{at}{version}")
        else:
            out.append(ref)
    if len(orgs) > 1:
        raise ConfigurationError(
            f"the environments name different organizations ({', '.join(sorted(orgs))}): open one "
            "organization's environments at a time"
        )
    return out, (orgs.pop() if orgs else None)


def _resolve(args: argparse.Namespace, refs: Sequence[str]) -> Target:
    start = start_dir(args)
    project_file = _project_file(start)
    stack = getattr(args, "stack", None) or _selected(project_file)
    if refs:
        composition: dict | None = {"imports": list(refs)}
        label = ", ".join(refs)
        if project_file is not None and stack:
            plan = stack_plan(stack, start, environments=list(refs))
            return Target(plan.backend, plan.organization, composition, label)
        if project_file is not None and not os.environ.get("ESC_PULUMI_BACKEND"):
            # The stack may name the backend (esc:backend): guessing Pulumi Cloud would mislead.
            raise ConfigurationError(
                f"no stack selected in project {project_file.parent}: pass --stack or set "
                "PULUMI_STACK (or set ESC_PULUMI_BACKEND to open environments without a stack)"
            )
        return _standalone(project_file.parent if project_file else start, composition, label)
    if project_file is None:
        raise ConfigurationError(
            f"no Pulumi.yaml in {start.resolve()} or above: name the environments "
            "(esc-pulumi open myproj/dev, with ESC_PULUMI_BACKEND set) or run inside a Pulumi project"
        )
    plan = stack_plan(stack, start)
    return Target(plan.backend, plan.organization, plan.composition, f"stack {plan.stack}")


def _selected(project_file: Path | None) -> str | None:
    """``PULUMI_STACK``, else the stack ``pulumi stack select`` chose for the project."""
    if project_file is None:
        return os.environ.get("PULUMI_STACK") or None
    from ..workspace.project import read_project, selected_stack

    return selected_stack(read_project(project_file), os.environ)


def stack_plan(stack: str | None, start: Path, environments: list[str] | None = None) -> Any:
    from ..workspace.plan import make_plan

    if not stack:
        project_file = _project_file(start)
        stack = _selected(project_file)
    if not stack:
        where = f" in project {project_file.parent}" if project_file else ""
        raise ConfigurationError(
            f"no stack selected{where}: pass --stack, set PULUMI_STACK, or run `pulumi stack select`"
        )
    from ..workspace.settings import COMMAND

    return make_plan(stack, start, environments=environments, words=COMMAND)


def _standalone(base_dir: Path, composition: dict, label: str) -> Target:
    from ..backends import backend_from_url
    from ..workspace.settings import backend_url, execution_context, organization

    url, _ = backend_url(None, environ=os.environ, stack_config={})
    org = organization(None, environ=os.environ, stack_config={})
    backend = backend_from_url(url, project_dir=base_dir, context=execution_context(org, os.environ))
    return Target(backend, org, composition, label)


def open_target(target: Target, mode: str = "open", limits: "EvalLimits | None" = None, *,
                detailed: bool = False) -> "OpenedEnvironment":
    if target.composition is None:
        raise ConfigurationError(
            f"{target.label} lists no environments (environment: or esc:environments in the stack "
            "file): nothing to open; or name environments on the command line"
        )
    from ..backends.base import open_composition

    return open_composition(
        target.backend, target.composition, organization=target.organization, mode=mode, limits=limits,  # type: ignore[arg-type]
        detailed=detailed,
    )



def diag_line(d: "Diagnostic", *, severity: bool = True, fallback: str = "") -> str:
    """``env:line:col: error: message`` (``severity``) or ``env:line:col: message`` (as ``esc
    open`` prints them)."""
    level = ("error" if d.is_error else "warning") + ": " if severity else ""
    if d.range is None and d.location is not None:
        b = d.location.begin
        return f"{d.location.environment}:{b.line}:{b.column}: {level}{d.problem or d.summary}"
    if d.range is None:
        return f"{fallback}: {level}{d.summary}" if fallback else f"{level}{d.summary}"
    b = d.range.begin
    return f"{d.range.environment}:{b.line}:{b.column}: {level}{d.summary}"


def sorted_diagnostics(diags: "Iterable[Diagnostic]") -> "list[Diagnostic]":
    """Diagnostics in file, line, column order (those without a place first)."""

    def key(d: "Diagnostic") -> tuple:
        r = d.range or d.location
        if r is None:
            return (0, "", 0, 0, d.summary)
        return (1, r.environment, r.begin.line, r.begin.column, d.summary)

    return sorted(diags, key=key)


def print_definition_errors(e: DefinitionError, *, severity: bool = True) -> int:
    lines = [diag_line(d, severity=severity) for d in sorted_diagnostics(e.diagnostics)]
    if not lines:
        lines = [str(e).splitlines()[0]]
    for line in lines:
        print(line, file=sys.stderr)
    return 1
