"""Run a Pulumi Python project's program the way ``pulumi up`` runs it — offline, under mocks —
and print what the program received, secrets masked.

What the Pulumi language host does, step by step:

1. config from the stack file (and the project defaults) goes into ``PULUMI_CONFIG`` /
   ``PULUMI_CONFIG_SECRET_KEYS`` and is loaded with the SDK's own
   ``set_all_config(get_config_env(), get_config_secret_keys_env())``;
2. the program's cwd is the project folder;
3. the program runs inside ``pulumi.runtime.stack.run_in_stack`` — here under ``set_mocks``
   (which registers a root stack of its own: ``set_root_resource(None)`` clears it first).

Usage::

    python examples/run_program.py examples/local [--stack dev] [--show-secrets]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(HERE.parent))

# The secret marker of Pulumi's wire format (sdk/python/lib/pulumi/runtime/rpc.py).
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


@dataclass
class ProgramRun:
    """What a program run produced: stack outputs (value, secret?), resources registered with
    their inputs and which inputs were secret on the wire, and the runtime config afterwards."""

    project: str
    stack: str
    outputs: dict[str, tuple[Any, bool]] = field(default_factory=dict)
    resources: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    secret_keys: set[str] = field(default_factory=set)
    cli_config: dict[str, str] = field(default_factory=dict)
    load_result: Any = None
    second_load_same: bool = False
    environ: dict[str, str] = field(default_factory=dict)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def cli_config(project_dir: Path, stack: str) -> tuple[dict[str, str], list[str]]:
    """The ``PULUMI_CONFIG`` the CLI would pass: project defaults overlaid by the stack file.

    ``{secure: ...}`` values cannot be decrypted offline and are left out.
    """
    from esc_pulumi.workspace.project import contains_secure, find_project, read_project, read_stack

    project = read_project(find_project(project_dir))
    stack_file = read_stack(project, stack)
    config = {k: _text(v) for k, v in project.defaults.items()}
    for k, v in stack_file.config.items():
        if not contains_secure(v):
            config[k] = _text(v)
    return config, []


def _secret_paths(obj: Any, path: str = "") -> Iterator[str]:
    """Paths of secret-wrapped values in a serialized property map."""
    if isinstance(obj, dict):
        if obj.get(_SIG_KEY) == _SECRET_SIG:
            yield path or "<root>"
            return
        for k, v in obj.items():
            yield from _secret_paths(v, f"{path}.{k}" if path else k)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _secret_paths(v, f"{path}[{i}]")


@contextlib.contextmanager
def _in_project(project_dir: Path, restore: bool) -> Iterator[None]:
    """cwd = the project folder, as under `pulumi up`; with ``restore``, cwd, os.environ and
    sys.path are put back afterwards (tests run many programs in one process)."""
    from pulumi.runtime import config as rconfig, settings

    cwd, env, path = os.getcwd(), dict(os.environ), list(sys.path)
    names = ("project", "stack", "organization", "root_directory", "monitor", "engine", "dry_run")
    saved = {k: getattr(settings.SETTINGS, k) for k in names}
    config, secret_keys = rconfig.CONFIG.get(), rconfig._SECRET_KEYS.get()
    os.chdir(project_dir)
    sys.path.insert(0, str(project_dir))
    try:
        yield
    finally:
        if restore:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(env)
            sys.path[:] = path
            for k, v in saved.items():
                setattr(settings.SETTINGS, k, v)
            settings.set_root_resource(None)  # type: ignore[arg-type]
            rconfig.CONFIG.set(config)
            rconfig._SECRET_KEYS.set(secret_keys)


def run_program(project_dir: str | os.PathLike[str], stack: str = "dev", *, isolated: bool = True) -> ProgramRun:
    """Run the project's ``__main__.py`` as ``pulumi up`` would, under mocks."""
    import pulumi
    from google.protobuf import json_format
    from pulumi.runtime import config as rconfig, mocks, settings
    from pulumi.runtime.stack import run_in_stack

    from esc_pulumi.workspace.project import find_project, read_project

    project_dir = Path(project_dir).resolve()
    project = read_project(find_project(project_dir))
    run = ProgramRun(project=project.name, stack=stack)

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
            return f"{args.name}-id", args.inputs

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
            return {}, None

    class Monitor(mocks.MockMonitor):
        """Records each resource's inputs and which of them went over the wire as secrets."""

        def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC name)
            if request.type != "pulumi:pulumi:Stack":
                wire = json_format.MessageToDict(request.object)
                run.resources.append(
                    {
                        "type": request.type,
                        "name": request.name,
                        "inputs": _unwrap(wire),
                        "secret_inputs": sorted(_secret_paths(wire)),
                    }
                )
            return super().RegisterResource(request)

    config, secret_keys = cli_config(project_dir, stack)
    run.cli_config = dict(config)
    with _in_project(project_dir, isolated):
        # 1. What the language host hands the program, loaded with the SDK's own functions.
        os.environ["PULUMI_CONFIG"] = json.dumps(config)
        os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secret_keys)
        rconfig.set_all_config(rconfig.get_config_env(), rconfig.get_config_secret_keys_env())
        # 2. Mocks instead of the engine; set_mocks registers a root stack: clear it. One event
        #    loop for both (as the language host has): the mocks' stack schedules work on it.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        m = Mocks()
        pulumi.runtime.set_mocks(m, project=project.name, stack=stack, preview=False, monitor=Monitor(m))
        settings.set_root_resource(None)  # type: ignore[arg-type]

        async def program() -> None:
            runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")
            import esc_pulumi

            # The program already loaded: a second load() must return the same result, opening nothing.
            first = esc_pulumi.load()
            run.load_result = first
            run.second_load_same = esc_pulumi.load() is first
            root = settings.get_root_resource()
            for name, out in getattr(root, "outputs", {}).items():
                out = pulumi.Output.from_input(out)
                run.outputs[name] = (await out.future(), bool(await out.is_secret()))

        try:
            loop.run_until_complete(run_in_stack(program))
        finally:
            asyncio.set_event_loop(None)
            loop.close()
        run.config = dict(rconfig.CONFIG.get())
        run.secret_keys = set(rconfig._SECRET_KEYS.get())
        run.environ = dict(os.environ)
    return run


def _unwrap(obj: Any) -> Any:
    if isinstance(obj, dict):
        if obj.get(_SIG_KEY) == _SECRET_SIG:
            return _unwrap(obj.get("value"))
        return {k: _unwrap(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unwrap(v) for v in obj]
    return obj


def _mask_all(text: str, secrets: list[str]) -> str:
    for s in sorted(set(secrets), key=len, reverse=True):
        if len(s) >= 3:
            text = text.replace(s, "[secret]")
    return text


def report(run: ProgramRun, *, show_secrets: bool = False) -> str:
    """A short, telling summary of a run."""
    lr = run.load_result
    secrets = [str(run.config[k]) for k in run.secret_keys if k in run.config]
    secrets += [lr.environment_variables[k] for k in lr.secret_variables if k in lr.environment_variables]
    lines = [
        f"project {run.project}, stack {run.stack} — run as `pulumi up` runs it (PULUMI_CONFIG, run_in_stack, mocks)",
        f"PULUMI_CONFIG from the stack file: {len(run.cli_config)} keys; esc_pulumi.load() opened "
        f"{', '.join(lr.environments) or 'nothing'} via {lr.backend} ({lr.requests} HTTP requests); "
        f"a second load() {'returned the same result, opening nothing' if run.second_load_same else 'OPENED AGAIN'}",
        "",
        "config the program sees (secret keys marked *):",
    ]
    width = max((len(k) for k in lr.config), default=0)
    for key in sorted(lr.config):
        shown = lr.config[key] if show_secrets or key not in lr.secret_keys else "[secret]"
        star = "*" if key in lr.secret_keys else " "
        over = ", overrides ESC" if key in lr.overridden else ""
        lines.append(f"  {star} {key:<{width}} = {shown}   ({lr.sources.get(key, '?')}{over})")
    env = ", ".join(
        f"{k}={'[secret]' if k in lr.secret_variables and not show_secrets else v}"
        for k, v in sorted(lr.environment_variables.items())
    )
    lines.append(f"environment variables: {env or '-'}")
    for name, path in sorted(lr.files.items()):
        mode = oct(os.stat(path).st_mode & 0o777) if os.path.exists(path) else "removed"
        lines.append(f"file: {name} -> {path} (mode {mode})")
    lines.append("")
    lines.append("stack outputs:")
    for name, (value, secret) in sorted(run.outputs.items()):
        shown = "[secret]" if secret and not show_secrets else _text(value).replace("\n", "\\n")
        lines.append(f"  {name:<18} {shown}{'   (secret Output)' if secret else ''}")
    for r in run.resources:
        lines.append(
            f"resource {r['type']} {r['name']!r}: secret inputs on the wire: {', '.join(r['secret_inputs']) or 'none'}"
        )
    text = "\n".join(lines)
    return text if show_secrets else _mask_all(text, secrets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project_dir")
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--show-secrets", action="store_true")
    args = parser.parse_args(argv)
    from esc_pulumi.errors import EscError

    try:
        run = run_program(args.project_dir, args.stack, isolated=False)
    except EscError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(report(run, show_secrets=args.show_secrets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
