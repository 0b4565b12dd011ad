"""The CLI's side of a run: the config it would hand a program (:func:`cli_config`) and the
language host starting the program against the fake engine (:func:`run_program`).

Example::

    config, secret_keys = cli_config("examples/local", "dev")
    run = run_program("examples/local", "dev", config=config, secret_keys=secret_keys)
    run.check().outputs["appName"]     # 'webapp'
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Iterable, Mapping

from ..errors import ConfigurationError
from .results import ProgramRun, StackOutputs

if TYPE_CHECKING:  # pragma: no cover
    from .engine import FakeEngine

# Where esc_pulumi itself is imported from. The program's process starts with a few lines that
# make it import the very same code (a checkout that is not installed included) and, like the
# language host's exec script, do not put the project's folder on sys.path before the SDK is
# imported (python -c would: '' comes first) — runpy adds it when it runs the program.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_BOOTSTRAP = (
    "import sys\n"
    f"root = {_PACKAGE_ROOT!r}\n"
    "if sys.path and sys.path[0] == '':\n"
    "    del sys.path[0]\n"
    "if root not in sys.path:\n"
    "    sys.path.insert(0, root)\n"
    "from esc_pulumi.testing._exec import main\n"
    "sys.exit(main())\n"
)


def _diy_backend_name() -> str:
    # What a DIY state backend calls itself in the CLI's messages: the machine's host name.
    return socket.gethostname() or "diy"


def cli_config(
    project_dir: str | os.PathLike[str],
    stack: str,
    *,
    cloud: bool = False,
    environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """The ``PULUMI_CONFIG`` map and ``PULUMI_CONFIG_SECRET_KEYS`` list the Pulumi CLI would pass
    the program of ``project_dir``'s stack: the stack file's config over the project defaults —
    and, with ``cloud=True`` (a Pulumi Cloud backend), the stack's ``environment:`` opened and
    merged in between, as the CLI does. On a DIY backend (``cloud=False``) a stack file with
    ``environment:`` is refused with the CLI's error. ``esc:*`` keys are plain stack config to the
    CLI and are passed like any other; stack ``{secure:}`` values this library cannot decrypt are
    left out. ``environ`` replaces ``os.environ`` for the settings (``ESC_PULUMI_BACKEND``, ...).

    Example::

        config, secret_keys = cli_config("examples/local", "dev")
        config["webapp:logLevel"]       # 'debug' (the stack file's)
        config["esc:backend"]           # 'file://envs'
        secret_keys                     # []
    """
    from ..backends.base import open_composition
    from ..workspace.mapping import compute_config, stack_decrypter
    from ..workspace.plan import make_plan

    plan = make_plan(stack, project_dir, environ=environ)
    opened = None
    if plan.list_source == "environment":
        if not cloud:
            raise ConfigurationError(
                f"backend {_diy_backend_name()} does not support environments; "
                "Pulumi ESC environments require the Pulumi Cloud backend"
            )
        if plan.composition is not None:
            opened = open_composition(
                plan.backend, plan.composition, organization=plan.organization, mode="open"
            )
    env = environ if environ is not None else os.environ
    # The CLI decrypts the stack's {secure:} values; so does this, with the passphrase secrets
    # manager when PULUMI_CONFIG_PASSPHRASE[_FILE] is set (other values are left out).
    result = compute_config(plan, opened, decrypt=stack_decrypter(plan, env))
    return result.values(), sorted(result.secret_keys)


def _program_location(project_file: Path) -> tuple[Path, Path]:
    """(PROGRAM, working directory) from the project's ``main:`` — the project folder when
    unset; a folder named by ``main:`` is both; a file runs with its folder as the cwd."""
    from ..workspace.project import load_document

    root = project_file.parent
    doc = load_document(project_file)
    main = doc.get("main") if isinstance(doc, dict) else None
    if not main:
        return root, root
    if not isinstance(main, str):
        raise ConfigurationError(f"{project_file}: 'main' must be a path")
    target = (root / main).resolve()
    if target.is_dir():
        return target, target
    if target.is_file():
        return target, target.parent
    raise ConfigurationError(f"{project_file}: main: {main!r} does not exist ({target})")


def _child_environment(
    env: Mapping[str, str] | None, config: Mapping[str, str], secret_keys: list[str]
) -> dict[str, str]:
    child = dict(os.environ)
    child.update(env or {})
    # Exactly what the language host passes: PULUMI_CONFIG only when there is config,
    # PULUMI_CONFIG_SECRET_KEYS always — never what the caller's own process happens to hold.
    child.pop("PULUMI_CONFIG", None)
    if config:
        child["PULUMI_CONFIG"] = json.dumps(dict(config))
    child["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secret_keys)
    return child


def run_program(
    project_dir: str | os.PathLike[str],
    stack: str = "dev",
    *,
    config: Mapping[str, str] | None = None,
    secret_keys: Iterable[str] = (),
    preview: bool = False,
    env: Mapping[str, str] | None = None,
    organization: str = "organization",
    parallel: int = 4,
    timeout: float = 120,
    engine: FakeEngine | None = None,
) -> ProgramRun:
    """Run the Pulumi Python program of ``project_dir`` the way ``pulumi up`` (``preview=True``:
    ``pulumi preview``) runs it, against a fake engine, and return what it registered.

    The program runs in a new Python process (``sys.executable``) started with the language
    host's arguments and environment: ``config`` as ``PULUMI_CONFIG`` (``ns:key`` → string;
    see :func:`cli_config` for what the CLI would pass) and ``secret_keys`` as
    ``PULUMI_CONFIG_SECRET_KEYS``; its cwd is the project folder (or its ``main:``). ``env`` is
    added to this process's environment for it. ``organization`` is what
    ``pulumi.get_organization()`` says (a DIY backend's is ``"organization"``). ``engine``
    reuses a started :class:`FakeEngine`; otherwise one is started for this run. A program that
    fails gives a run with a non-zero ``exit_code`` and its error in ``stderr``
    (``run.check()`` raises it); a program still running after ``timeout`` seconds is killed
    and :class:`TimeoutError` raised.

    Example::

        run = run_program(project, "dev", config={"myproj:name": "x"}, secret_keys=["myproj:token"])
        run.check()
        run.resource("bucket").secret_paths     # ('token',)
        run.outputs.secret                      # frozenset({'token'})
    """
    from ..workspace.project import project_file_in, read_project
    from .engine import Deployment, FakeEngine

    root = Path(project_dir).resolve()
    project_file = project_file_in(root)
    if project_file is None:
        raise ConfigurationError(f"no Pulumi.yaml in {root}: run_program needs the project's folder")
    project = read_project(project_file)
    program, pwd = _program_location(project_file)

    config = dict(config or {})
    for key, value in config.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"config maps keys to strings, as PULUMI_CONFIG does: {key!r} is not str -> str")
    if isinstance(secret_keys, str):
        raise TypeError("secret_keys is a list of keys, not one string")
    keys = list(dict.fromkeys(secret_keys))

    deployment = Deployment(
        project=project.name,
        stack=stack,
        organization=organization,
        dry_run=preview,
        parallel=parallel,
        config=MappingProxyType(config),
        secret_keys=tuple(keys),
    )
    own = engine is None
    fake = (engine or FakeEngine()).start()
    try:
        with fake.deployment(deployment):
            address = fake.address
            argv = [
                sys.executable, "-c", _BOOTSTRAP,
                "--monitor", address,
                "--engine", address,
                "--project", project.name,
                "--root_directory", str(root),
                "--stack", stack,
                "--pwd", str(pwd),
                "--dry_run", "true" if preview else "false",
                "--parallel", str(parallel),
                "--organization", organization,
                str(program),
            ]  # fmt: skip
            started = time.perf_counter()
            try:
                done = subprocess.run(
                    argv,
                    cwd=pwd,
                    env=_child_environment(env, config, keys),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    encoding="utf-8",
                    errors="replace",
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired as e:
                err = e.stderr.decode("utf-8", "replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
                for key in keys:  # an exception message is no place for the secrets it was given
                    if len(config.get(key, "")) >= 3:
                        err = err.replace(config[key], "[secret]")
                raise TimeoutError(
                    f"program {project.name}/{stack} still running after {timeout:g} s (killed); "
                    f"its stderr:\n{err.strip()[-2000:]}"
                ) from None
            duration = time.perf_counter() - started
            recording = fake.recording()
    finally:
        if own:
            fake.stop()

    stack_resource = recording.stack
    outputs_wire = (stack_resource.outputs_wire if stack_resource is not None else None) or {}
    return ProgramRun(
        project=project.name,
        stack=stack,
        preview=preview,
        exit_code=done.returncode,
        stdout=done.stdout,
        stderr=done.stderr,
        resources=tuple(r for r in recording.resources if r is not stack_resource),
        stack_resource=stack_resource,
        outputs=StackOutputs(MappingProxyType(dict(outputs_wire))),
        logs=recording.logs,
        invokes=recording.invokes,
        config=MappingProxyType(config),
        secret_keys=frozenset(keys),
        duration=duration,
    )
