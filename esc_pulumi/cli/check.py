"""``esc-pulumi check [REF|FILE...]``: diagnostics as ``file:line:col: error: message``."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import DefinitionError, EscError
from .common import guarded
from .limits import limit_options, limits_from
from .targets import diag_line, open_target, resolve_target, stack_options

if TYPE_CHECKING:  # pragma: no cover
    from ..esc import Diagnostic, EvalLimits

__all__ = ["register", "cmd_check", "check_file"]


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``check`` to the ``esc-pulumi`` parser."""
    p = subparsers.add_parser(
        "check",
        help="check environment definitions and print their diagnostics",
        description="Check environments (REF) or local definition files (FILE; imports resolve "
        "to the definitions beside it) without opening providers; print "
        "file:line:col: error: message lines; exit 1 on errors.",
    )
    p.add_argument("targets", nargs="*", metavar="REF|FILE")
    stack_options(p)
    limit_options(p)
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
    if refs or not targets:
        target = resolve_target(args, refs)
        if target.composition is None:
            print(f"{target.label} lists no environments: nothing to check", file=sys.stderr)
        else:
            try:
                opened = open_target(target, "check", limits_from(args))
                diags = list(opened.diagnostics)
            except DefinitionError as e:
                diags = list(e.diagnostics) or []
                if not diags:
                    lines.append(f"error: {str(e).splitlines()[0]}")
                    errors += 1
            errors += sum(1 for d in diags if d.is_error)
            lines.extend(diag_line(d) for d in _sorted(diags))
    for line in lines:
        print(line)
    sys.stdout.flush()
    return 1 if errors else 0


def _sorted(diags: Iterable["Diagnostic"]) -> list["Diagnostic"]:
    def key(d: "Diagnostic") -> tuple:
        if d.range is None:
            return (0, "", 0, 0, d.summary)
        return (1, d.range.environment, d.range.begin.line, d.range.begin.column, d.summary)

    return sorted(diags, key=key)


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
        from ..esc import LoadedEnvironment, LoadError

        tried = self.candidates(name)
        for path in tried:
            if path.is_file():
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
    import dataclasses

    from ..esc import ProviderRegistry, evaluate, load_definition

    path = Path(file)
    if not path.is_file():
        raise EscError(f"{file}: no such file")
    text = path.read_bytes()
    decl, diags = load_definition(text, file)
    if decl is not None:
        loader = _FolderLoader(path.parent)
        _, more = evaluate(decl, mode="check", loader=loader, providers=ProviderRegistry(), limits=limits)
        diags = diags + more

        def located(d: "Diagnostic") -> "Diagnostic":
            if d.range is not None and d.range.environment in loader.paths:
                return dataclasses.replace(
                    d, range=dataclasses.replace(d.range, environment=loader.paths[d.range.environment])
                )
            return d

        diags = [located(d) for d in diags]
    return _sorted(diags)
