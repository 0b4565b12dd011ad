"""The ``esc-pulumi`` command. Subcommands live in their own modules, each with a
``register(subparsers)`` function that adds its parser and sets ``func`` (returning an exit code).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Sequence

from ..errors import EscError

# Modules contributing subcommands, in help order.
COMMAND_MODULES = (
    "esc_pulumi.cli.config",
    "esc_pulumi.cli.open",
    "esc_pulumi.cli.run",
    "esc_pulumi.cli.check",
    "esc_pulumi.cli.env",
    "esc_pulumi.cli.serve",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="esc-pulumi",
        description="Pulumi ESC environments for Pulumi programs: config, open, run, check, env, serve.",
    )
    parser.add_argument("--version", action=_Version, help="print the esc-pulumi version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def version() -> str:
    """The installed package's version, the one ``esc-pulumi --version`` prints."""
    import importlib.metadata  # here, not at the top: it costs every other command its import time

    try:
        return importlib.metadata.version("esc_pulumi")
    except importlib.metadata.PackageNotFoundError:
        # Run from a source tree that was never installed: no metadata to read.
        return "unknown"


class _Version(argparse.Action):
    """``--version``: ``esc-pulumi <version>`` on stdout and exit 0, as ``pulumi version`` and
    ``esc version`` print theirs.

    Not argparse's ``action="version"``: that wants the text when the parser is built, and
    reading the package metadata on every start would slow every command for the one that asks.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"esc-pulumi {version()}")
        parser.exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(build_parser(), argv)


def dispatch(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command: an EscError is one line on stderr, exit 1."""
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except EscError as e:
        print(f"esc-pulumi: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 1)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
