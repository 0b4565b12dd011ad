"""The ``esc-pulumi`` command. Subcommands live in their own modules, each with a
``register(subparsers)`` function that adds its parser and sets ``func`` (returning an exit code).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


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
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
