"""``esc-pulumi check [REF|FILE...]``: diagnostics as ``file:line:col: error: message``.

Checking a stack (no REF or FILE) also checks its config as ``pulumi up`` will: the
``pulumiConfig`` keys of its environments (a key the CLI refuses or two keys naming one are
errors, odd forms such as ``:k`` warnings), the merged config against the project's typed
``config:`` declarations (the CLI's messages), and, on a DIY state backend, the declared keys
that only ESC supplies (plain ``pulumi up`` validates before the program runs, without ESC)::

    $ esc-pulumi check --stack dev
    Pulumi.dev.yaml: error: Stack 'dev' with configuration key 'replicas' must be of type 'integer'
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DefinitionError, EscError
from .common import guarded
from .limits import limit_options, limits_from
from .targets import (
    config_validation_option,
    diag_line,
    sorted_diagnostics as _sorted,
    open_target,
    resolve_target,
    stack_options,
    stack_plan,
    start_dir,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..backends.base import OpenedEnvironment
    from ..esc import Diagnostic, EvalLimits, Value
    from ..workspace.plan import LoadPlan
    from ..workspace.validation import ConfigProblem

__all__ = ["register", "cmd_check", "check_file"]


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``check`` to the ``esc-pulumi`` parser."""
    p = subparsers.add_parser(
        "check",
        help="check environment definitions and print their diagnostics",
        description="Check environments (REF) or local definition files (FILE; imports resolve "
        "to the definitions beside it) without opening providers; print "
        "file:line:col: error: message lines; exit 1 on errors. Without REF or FILE, check the "
        "stack: its environments, their pulumiConfig keys, and its config against the typed "
        "config: declarations of Pulumi.yaml, as pulumi up will.",
    )
    p.add_argument("targets", nargs="*", metavar="REF|FILE")
    stack_options(p)
    limit_options(p)
    config_validation_option(p)
    p.set_defaults(func=guarded(cmd_check))


def _is_file_target(target: str) -> bool:
    return os.path.isfile(target) or target.endswith((".yaml", ".yml", ".json"))


def cmd_check(args: argparse.Namespace) -> int:
    lines: list[str] = []
    errors = 0
    targets: list[str] = list(args.targets)
    refs = [t for t in targets if not _is_file_target(t)]
    files = [t for t in targets if _is_file_target(t)]
    for f in files:
        diags = check_file(f, limits_from(args))
        errors += sum(1 for d in diags if d.is_error)
        lines.extend(diag_line(d, fallback=f) for d in diags)
        lines.extend(unbound_lines(Path(f), f))
    if refs or not targets:
        target = resolve_target(args, refs)
        # The stack itself (no REF): its plan, for the config checks below.
        plan = None if refs else stack_plan(args.stack or os.environ.get("PULUMI_STACK"), start_dir(args))
        skip = bool(getattr(args, "skip_config_validation", False))
        opened: "OpenedEnvironment | None" = None
        opened_ok = True
        if target.composition is None:
            what = "nothing to check" if plan is None or skip else "checking its config only"
            print(f"{target.label} lists no environments: {what}", file=sys.stderr)
        else:
            try:
                opened = open_target(target, "check", limits_from(args))
                diags = list(opened.diagnostics)
            except DefinitionError as e:
                opened_ok = False
                diags = list(e.diagnostics) or []
                if not diags:
                    lines.append(f"error: {str(e).splitlines()[0]}")
                    errors += 1
            errors += sum(1 for d in diags if d.is_error)
            lines.extend(diag_line(d) for d in _sorted(diags))
            if opened is not None:
                lines.extend(projection_lines(opened.value))
                lines.extend(_local_unbound_lines(target.backend, opened.environments))
        # Broken definitions first: config computed from them would only repeat their errors.
        if plan is not None and opened_ok:
            more, more_errors = config_lines(plan, opened, validate=not skip)
            lines.extend(more)
            errors += more_errors
    for line in lines:
        print(line)
    sys.stdout.flush()
    return 1 if errors else 0


def unbound_lines(path: Path, shown: str, name: str | None = None) -> list[str]:
    """A warning for each ciphertext of the file ``path`` (shown as ``shown``) that is not bound
    to its environment (``name``; by default the one its place in a file:// folder gives it)."""
    from ..backends.local import env_name_of_file
    from ..secrets.definitions import unbound_secrets

    try:
        found = unbound_secrets(path.read_bytes())
    except (OSError, EscError):  # unreadable or broken: the check itself reports it
        return []
    env = name or env_name_of_file(path)
    return [
        f"{shown}:{r.begin.line}:{r.begin.column}: warning: the secret at {where} was encrypted by an "
        f"earlier version, without a binding to its environment, so it would decrypt anywhere the key "
        f"is: run `esc-pulumi env encrypt {shown}` to re-encrypt it bound to {env}"
        for where, r in found
    ]


def _local_unbound_lines(backend: Any, names: "tuple[str, ...]") -> list[str]:
    from ..backends.local import LocalBackend, env_name_of_ref

    if not isinstance(backend, LocalBackend):
        return []
    lines: list[str] = []
    for name in names:
        try:
            path = backend.path_of(name)
        except EscError:
            continue
        lines.extend(unbound_lines(path, backend.display(path), env_name_of_ref(name)))
    return lines


def projection_lines(value: "Value") -> list[str]:
    """Warnings for what ESC (and so the Pulumi CLI) silently ignores when it projects an
    environment: an ``environmentVariables`` or ``files`` that is not an object, and entries
    that are objects or arrays (only scalars become variables and files)."""
    from ..runtime.projection import ENVIRONMENT_VARIABLES, FILES

    out: list[str] = []
    root = value.repr if isinstance(value.repr, dict) and not value.unknown else {}
    for section, what in ((ENVIRONMENT_VARIABLES, "environment variables"), (FILES, "files")):
        holder = root.get(section)
        if holder is None or holder.unknown:
            continue
        if not isinstance(holder.repr, dict):
            out.append(
                f"{_where(holder)}warning: {section} must be an object of names to values; as it is, "
                f"it is ignored and no {what} are set"
            )
            continue
        for name, v in holder.repr.items():
            if not v.unknown and isinstance(v.repr, (dict, list)):
                kind = "an object" if isinstance(v.repr, dict) else "an array"
                out.append(f"{_where(v)}warning: {section}.{name} is {kind}: it is ignored (only strings, numbers and booleans are projected)")
    return out


def _where(v: "Value") -> str:
    rng = getattr(getattr(v, "defn", None), "range", None)
    if rng is None:
        return ""
    return f"{rng.environment}:{rng.begin.line}:{rng.begin.column}: "


def config_lines(
    plan: "LoadPlan", opened: "OpenedEnvironment | None", *, validate: bool = True
) -> tuple[list[str], int]:
    """The stack's config problems as ``where: severity: message`` lines, and the error count.

    ``where`` is the file to fix: the stack file (its values, missing values), the environment
    definition with the value's line:column, or the project file (declarations, the DIY
    warning). ``validate=False`` (``--skip-config-validation``) keeps only the ``pulumiConfig``
    key checks.

    Example::

        config_lines(plan, opened)
        # (["Pulumi.dev.yaml: error: Stack 'dev' is missing configuration value 'replicas' (...)"], 1)
    """
    from ..errors import MappingError
    from ..workspace.mapping import compute_config, esc_values
    from ..workspace.validation import diy_warning, is_diy_backend, state_backend
    from ..workspace.validation import validate as validate_config

    warnings: list[str] = []
    try:
        values = esc_values(opened, plan.project, warnings)
    except MappingError as e:
        # Without a mapping there is no config to validate: this is the one error to fix.
        return [_message_line(str(e), "error")], 1
    lines = [_message_line(w, "warning") for w in warnings]
    if not validate:
        return lines, 0
    assert plan.project_file is not None and plan.project_spec is not None  # make_plan reads both
    project = plan.project_spec
    entries = compute_config(plan, opened).entries
    problems = validate_config(project, plan.stack, entries)
    url, _ = state_backend(plan.project_file)
    # Unknown state backend: a file:// ESC store means a team without Pulumi Cloud, so DIY.
    diy = is_diy_backend(url) if url else getattr(plan.backend, "url", "").startswith("file://")
    if diy:
        warning = diy_warning(project, plan.stack, entries, backend=url or "")
        if warning is not None:
            problems.append(warning)
    for p in problems:
        text = p.message + (f" ({p.hint})" if p.hint else "")
        lines.append(f"{_problem_where(p, plan, values)}: {p.severity}: {text}")
    return lines, sum(1 for p in problems if p.is_error)


def _message_line(message: str, severity: str) -> str:
    """``environment X: msg`` (a MappingError or mapping warning) as ``environment X: severity: msg``."""
    head, sep, rest = message.partition(": ")
    if sep and head.startswith("environment"):
        return f"{head}: {severity}: {rest}"
    return f"{severity}: {message}"


def _problem_where(p: "ConfigProblem", plan: "LoadPlan", values: "dict[str, Value]") -> str:
    from ..esc import ANONYMOUS
    from ..workspace.validation import SOURCE_PROJECT

    stack_file = _display(plan.stack_file) if plan.stack_file else "stack file"
    if p.source == SOURCE_PROJECT:
        return _display(plan.project_file) if plan.project_file else "Pulumi.yaml"
    if not p.source.startswith("environment"):
        return stack_file  # the stack's own values, and missing ones (the stack lacks them)
    rng = getattr(values[p.key].defn, "range", None) if p.key in values else None
    if rng is None:
        return p.source
    if rng.environment == ANONYMOUS:
        return stack_file  # the inline values of the stack file's environment: mapping
    env = rng.environment
    path_of = getattr(plan.backend, "path_of", None)
    if path_of is not None:
        try:
            env = _display(path_of(env))
        except EscError:
            pass
    return f"{env}:{rng.begin.line}:{rng.begin.column}"


class _FolderLoader:
    """Imports of a local definition: the definitions beside it (``name`` → ``DIR/name.yaml``),
    or, when the file sits in a ``file://`` store's project folder, the store's layout
    (``proj/env`` → ``DIR/../proj/env.yaml``, a bare ``env`` → ``DIR/../default/env.yaml``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.paths: dict[str, str] = {}

    def candidates(self, name: str) -> list[Path]:
        base = name.split("@", 1)[0]
        out = [self.folder / f"{base}.yaml", self.folder / f"{base}.yml"]
        store = self.folder.parent
        if "/" in base:
            out.append(store / f"{base}.yaml")
        else:
            out.append(store / "default" / f"{base}.yaml")
        return out

    def load(self, name: str) -> Any:
        from ..errors import InvalidReference
        from ..esc import LoadedEnvironment, LoadError
        from ..refs import EnvironmentRef

        try:
            EnvironmentRef.parse(name)  # ESC names only: no '..' walking out of the folder
        except InvalidReference as e:
            raise LoadError(str(e)) from None
        tried = self.candidates(name)
        roots = (self.folder.resolve(), self.folder.parent.resolve())
        for path in tried:
            if path.is_file():
                real = path.resolve()
                if not any(real.is_relative_to(root) for root in roots):
                    raise LoadError(f"{_display(path)} leads outside {_display(self.folder.parent)}: not read")
                try:
                    text = path.read_bytes()
                except OSError as e:
                    raise LoadError(f"cannot read {_display(path)}: {e.strerror or e}") from None
                self.paths[name] = _display(path)
                return LoadedEnvironment(text=text)
        raise LoadError(f"environment {name!r} not found: no file {_display(tried[0])}")


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def check_file(file: str, limits: "EvalLimits | None" = None) -> list["Diagnostic"]:
    """Diagnostics of a local definition evaluated in check mode, sorted, each naming its file."""
    from ..esc import ProviderRegistry, evaluate, load_definition

    path = Path(file)
    if not path.is_file():
        raise EscError(f"{file}: no such file")
    text = path.read_bytes()
    decl, diags = load_definition(text, file)
    if decl is not None:
        from ..workspace.settings import execution_context, organization

        loader = _FolderLoader(path.parent)
        # The same context a REF gets: ESC_PULUMI_USER, ESC_PULUMI_ORGANIZATION.
        context = execution_context(organization(None, environ=os.environ, stack_config={}), os.environ)
        _, more = evaluate(
            decl, mode="check", loader=loader, providers=ProviderRegistry(), limits=limits, context=context
        )
        diags = diags + more

        def located(d: "Diagnostic") -> "Diagnostic":
            if d.range is not None and d.range.environment in loader.paths:
                return d.replace(range=d.range.replace(environment=loader.paths[d.range.environment]))
            return d

        diags = [located(d) for d in diags]
    return _sorted(diags)
