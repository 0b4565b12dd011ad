"""``esc-pulumi open [REF] [PATH] [--format F]``: an environment printed as the ``esc`` CLI prints it."""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..errors import DefinitionError, EscError
from .common import guarded
from .limits import limit_options, limits_from
from .targets import diag_line, open_target, print_definition_errors, resolve_target, sorted_diagnostics, stack_options

if TYPE_CHECKING:  # pragma: no cover
    from ..esc import Value

__all__ = ["register", "cmd_open", "path_keys", "select_path"]


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``open`` to the ``esc-pulumi`` parser."""
    p = subparsers.add_parser(
        "open",
        help="open an environment (or the stack's composition) and print it as the esc CLI does",
        description="Open one environment (REF: env, project/env, project/env@tag), or the stack's "
        "composition when no REF is given, and print it (optionally only PATH, e.g. "
        "environmentVariables.AWS_REGION). Secrets show as [secret] unless --show-secrets.",
    )
    p.add_argument("ref", nargs="?", metavar="REF", help="environment reference")
    p.add_argument("path", nargs="?", metavar="PATH", help="property path inside the environment")
    p.add_argument("--path", dest="path_option", metavar="PATH", help="property path (also with no REF)")
    p.add_argument(
        "-f", "--format", default="json", help="json (default), yaml, dotenv, shell, string or detailed"
    )
    p.add_argument("--show-secrets", action="store_true", help="print secret values in plaintext")
    stack_options(p)
    limit_options(p)
    p.set_defaults(func=guarded(cmd_open))


def path_keys(path_text: str) -> list[str | int]:
    """The keys of a property path (``a.b[0]["c d"]``), or an EscError saying what is wrong."""
    from ..esc.interpolation import parse_path

    accessors, errors = parse_path(path_text)
    if errors:
        raise EscError(f"invalid property path {path_text!r}: {errors[0].summary}")
    return [a.key for a in accessors]


def select_path(value: "Value", path_text: str | None) -> tuple["Value", bool]:
    """The value at ``path_text`` and whether it is the root; a missing path gives null, as
    ``esc open`` prints it."""
    from ..esc import Value
    from ..esc.values import value_at

    if not path_text:
        return value, True
    keys = path_keys(path_text)
    found = value_at(value, keys)
    return (found if found is not None else Value(None)), not keys


def cmd_open(args: argparse.Namespace) -> int:
    from .formats import FORMATS, render, render_model
    from ..esc.values import go_quote

    fmt = args.format
    # As esc does: a bad format or path fails before anything is opened.
    if fmt not in FORMATS:
        raise EscError(f"unknown output format {go_quote(fmt)}")
    if args.path and args.path_option:
        raise EscError("give the property path once (PATH or --path)")
    path = args.path or args.path_option
    if path:
        path_keys(path)  # as esc does: a bad path fails before anything is opened
    target = resolve_target(args, [args.ref] if args.ref else [])
    # The whole environment's detailed model (exprs, properties, schema, executionContext);
    # with a PATH, that property's Value model.
    whole_model = fmt == "detailed" and not path
    try:
        opened = open_target(target, "open", limits_from(args), detailed=whole_model)
    except DefinitionError as e:
        return print_definition_errors(e, severity=False)
    for d in sorted_diagnostics(opened.diagnostics):
        print(diag_line(d), file=sys.stderr)
    if fmt in ("dotenv", "shell"):
        value, is_root = opened.value, True  # projections always come from the whole environment
    else:
        value, is_root = select_path(opened.value, path)
    if is_root and isinstance(value.repr, dict) and not value.repr and not value.unknown:
        return 0  # an environment without values: esc open prints nothing, not {}
    if whole_model:
        text = render_model(value, opened.model(redact=not args.show_secrets), show_secrets=args.show_secrets)
    else:
        text = render(value, fmt, show_secrets=args.show_secrets, environment="", root=is_root)
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0
