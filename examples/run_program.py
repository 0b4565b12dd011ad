"""Run a Pulumi Python project's program the way ``pulumi up`` runs it — offline, through
``esc_pulumi.testing`` — and print what the program received, secrets masked.

What happens, step by step (``esc_pulumi.testing.run_program``):

1. ``cli_config`` computes what the Pulumi CLI would pass for the stack on a DIY backend
   (project defaults and the stack file's config, ``esc:*`` keys included);
2. a fake engine (the resource monitor and engine gRPC services) listens on 127.0.0.1;
3. the program runs in a new Python process started as the language host starts it: its
   arguments, ``PULUMI_CONFIG`` / ``PULUMI_CONFIG_SECRET_KEYS``, the project folder as cwd,
   ``run_in_stack`` — the real SDK talking gRPC to the fake engine, which records every
   registration, stack output and log line in its wire form (secrets wrapped).

The program (``examples/local``) calls ``esc_pulumi.load()`` and exports what it received as
the stack output ``escLoad``; the report below is made from what the engine recorded.

Usage::

    python examples/run_program.py examples/local [--stack dev] [--preview] [--show-secrets]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(HERE.parent))

from esc_pulumi.testing import ProgramRun, cli_config, run_program  # noqa: E402
from esc_pulumi.testing._wire import is_secret_wrapper  # noqa: E402

SECRET = "[secret]"


def run(project_dir: str | Path, stack: str = "dev", *, preview: bool = False) -> ProgramRun:
    """The program of ``project_dir`` run as ``pulumi up`` (or ``pulumi preview``) would run it."""
    config, secret_keys = cli_config(project_dir, stack)
    return run_program(project_dir, stack, config=config, secret_keys=secret_keys, preview=preview)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def report(run: ProgramRun, *, show_secrets: bool = False) -> str:
    """A short, telling summary of a run (secrets masked unless ``show_secrets``)."""
    shown = run.outputs.plain() if show_secrets else run.outputs.masked()
    esc = shown.get("escLoad") or {}
    mode = "preview" if run.preview else "up"
    lines = [
        f"project {run.project}, stack {run.stack} — run as `pulumi {mode}` runs it "
        "(language host arguments, PULUMI_CONFIG, the SDK over gRPC to esc_pulumi.testing's fake engine)",
        f"PULUMI_CONFIG as the CLI passes it: {len(run.config)} keys ({len(run.secret_keys)} secret); "
        f"esc_pulumi.load() opened {', '.join(esc.get('environments', [])) or 'nothing'} "
        f"via {esc.get('backend', '?')} ({esc.get('requests', '?')} HTTP requests); a second load() "
        f"{'returned the same result, opening nothing' if esc.get('secondLoadSame') else 'OPENED AGAIN'}",
        "",
        "config the program sees (secret keys marked *):",
    ]
    config = esc.get("config", {})
    # Which keys are secret: those whose value reached the engine as a secret.
    wire_config = (run.outputs.wire.get("escLoad") or {}).get("config", {})
    secret_keys = {k for k, e in wire_config.items() if is_secret_wrapper(e.get("value"))}
    width = max((len(k) for k in config), default=0)
    for key in sorted(config):
        entry = config[key]
        star = "*" if key in secret_keys else " "
        over = ", overrides ESC" if entry.get("overridesEsc") else ""
        lines.append(f"  {star} {key:<{width}} = {_text(entry['value'])}   ({entry.get('source', '?')}{over})")
    variables = esc.get("environmentVariables", {})
    lines.append(
        "environment variables: " + (", ".join(f"{k}={_text(v)}" for k, v in sorted(variables.items())) or "-")
    )
    for name, f in sorted(esc.get("files", {}).items()):
        lines.append(f"file: {name} -> {f['path']} (mode {f['mode']}; removed when the program exits)")
    lines += ["", "stack outputs:"]
    for name, value in sorted(shown.items()):
        if name == "escLoad":
            continue
        note = "   (secret Output)" if name in run.outputs.secret else ""
        lines.append(f"  {name:<18} {_text(value).replace(chr(10), chr(92) + 'n')}{note}")
    for r in run.resources:
        lines.append(
            f"resource {r.type} {r.name!r}: secret inputs on the wire: {', '.join(r.secret_paths) or 'none'}"
        )
    for message in run.messages("info", "warning", "error"):
        lines.append(f"program log: {message}")
    text = "\n".join(lines)
    return text if show_secrets else run.mask_secrets(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project_dir")
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--preview", action="store_true", help="run as `pulumi preview` (dry run)")
    parser.add_argument("--show-secrets", action="store_true")
    args = parser.parse_args(argv)
    from esc_pulumi.errors import EscError

    try:
        result = run(args.project_dir, args.stack, preview=args.preview)
    except EscError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not result.ok:
        err = result.stderr if args.show_secrets else result.mask_secrets(result.stderr)
        print(f"the program failed (exit {result.exit_code}):\n{err.rstrip()}", file=sys.stderr)
        return 1
    print(report(result, show_secrets=args.show_secrets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
