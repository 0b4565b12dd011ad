"""The language host's exec entry point: how ``pulumi up`` starts a Python program, written from
``spec/pulumi-integration.md`` ("The language host").

``pulumi-language-python`` starts a Python process with::

    --monitor ADDR --engine ADDR --project P --root_directory DIR --stack S --pwd DIR
    --dry_run true|false --parallel N --organization O PROGRAM

and ``PULUMI_CONFIG`` (a JSON map, when not empty) and ``PULUMI_CONFIG_SECRET_KEYS`` (a JSON
list, always) in its environment. This module does what that process does: loads the config
with the SDK's own functions, configures the runtime settings (which connect to the monitor and
the engine over gRPC), changes to ``--pwd`` and runs PROGRAM — a folder (its ``__main__.py``)
or a file — as ``__main__`` inside the root stack, on an event loop. A program that raises
exits non-zero with the error on stderr (and sent to the engine as an error, as the host
reports it to the CLI).

Example::

    python -m esc_pulumi.testing._exec --monitor 127.0.0.1:4000 --engine 127.0.0.1:4000 \\
        --project webapp --root_directory /src/webapp --stack dev --pwd /src/webapp \\
        --dry_run false --parallel 4 --organization organization /src/webapp
"""
from __future__ import annotations

import argparse
import asyncio
import os
import runpy
import sys
import traceback
from dataclasses import dataclass

# The exit status of a program that failed (any non-zero status fails `pulumi up`).
EXIT_PROGRAM_FAILED = 1


@dataclass(frozen=True)
class HostArgs:
    """The language host's arguments, parsed.

    Example::

        parse_args(["--project", "p", "--stack", "dev", ..., "/src/p"]).dry_run   # False
    """

    monitor: str
    engine: str
    project: str
    root_directory: str
    stack: str
    pwd: str
    dry_run: bool
    parallel: int
    organization: str
    program: str


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")
    return lowered == "true"


def parse_args(argv: list[str]) -> HostArgs:
    """Parse the host's command line (every option is required, as the host always passes them)."""
    parser = argparse.ArgumentParser(prog="esc_pulumi.testing._exec", description="Run a Pulumi Python program.")
    for name in ("monitor", "engine", "project", "root_directory", "stack", "pwd", "organization"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--dry_run", type=_bool, required=True)
    parser.add_argument("--parallel", type=int, required=True)
    parser.add_argument("program")
    ns = parser.parse_args(argv)
    return HostArgs(**vars(ns))


def _report(error: BaseException) -> None:
    """The program's error on stderr — and to the engine, where the CLI shows diagnostics."""
    from pulumi import log
    from pulumi.errors import RunError

    # A RunError is a message for the user, not a bug: no traceback (as the host does).
    if isinstance(error, RunError):
        text = str(error)
    else:
        text = "".join(traceback.format_exception(error))
    print(text, file=sys.stderr, end="" if text.endswith("\n") else "\n")
    try:
        log.error(f"an unhandled error occurred: program failed:\n{text}")
    except Exception:  # noqa: BLE001 — the engine may be gone; stderr already has it
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the program as the language host does; the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)

    # Imported only now: `--help` and argument errors need no SDK.
    from pulumi.runtime import config, settings
    from pulumi.runtime.stack import run_in_stack

    config.set_all_config(config.get_config_env(), config.get_config_secret_keys_env())
    settings.configure(
        settings.Settings(
            project=args.project,
            stack=args.stack,
            monitor=args.monitor,
            engine=args.engine,
            parallel=args.parallel,
            dry_run=args.dry_run,
            organization=args.organization,
            root_directory=args.root_directory,
        )
    )
    os.chdir(args.pwd)
    program = os.path.abspath(args.program)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        # run_path on a folder puts it first on sys.path and runs its __main__.py.
        loop.run_until_complete(run_in_stack(lambda: runpy.run_path(program, run_name="__main__")))
    except SystemExit as e:
        # sys.exit(0) in a program is a normal end; anything else is its failure.
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_PROGRAM_FAILED)
        if code != 0:
            _report(e)
        return code
    except BaseException as e:  # noqa: BLE001 — every failure of the program is reported
        _report(e)
        return EXIT_PROGRAM_FAILED
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
