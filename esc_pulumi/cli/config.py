"""``esc-pulumi config``: the config a Pulumi program will see, with where each key comes from.

The merged config is checked against the project's typed ``config:`` declarations first, as
``pulumi up`` checks it, and a config the CLI would refuse is an error in the CLI's words
(``--skip-config-validation`` shows it anyway)::

    $ esc-pulumi config --stack dev
    esc-pulumi: Stack 'dev' is missing configuration value 'replicas' (set it in the stack file ...)
    to skip these checks, pass --skip-config-validation
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..errors import DefinitionError, EscError
from .common import guarded, table
from .limits import limit_options, limits_from
from .targets import (
    config_validation_option,
    print_definition_errors,
    stack_options,
    stack_plan,
    start_dir,
)

__all__ = ["register", "cmd_config"]


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``config`` to the ``esc-pulumi`` parser."""
    p = subparsers.add_parser(
        "config",
        help="show the config the Pulumi program will see, and where each key comes from",
        description="Show the config the Pulumi program will see: stack file > ESC environments > "
        "Pulumi.yaml defaults, with the source of each key. Secrets are masked unless --show-secrets. "
        "A config that the typed config: declarations of Pulumi.yaml refuse is an error, as in pulumi up.",
    )
    stack_options(p)
    limit_options(p)
    config_validation_option(p)
    p.add_argument("--show-secrets", action="store_true", help="print secret values in plaintext")
    p.add_argument("--json", action="store_true", help="print JSON: {key: {value, secret, source}}")
    p.set_defaults(func=guarded(cmd_config))


def cmd_config(args: argparse.Namespace) -> int:
    import json

    from ..backends.base import OpenedEnvironment, open_composition
    from ..esc import Value
    from ..workspace.mapping import compute_config

    start = start_dir(args)
    plan = stack_plan(args.stack, start)
    if plan.composition is not None:
        try:
            opened = open_composition(
                plan.backend, plan.composition, organization=plan.organization, mode="open", limits=limits_from(args)
            )
        except DefinitionError as e:
            print_definition_errors(e)
            raise EscError(f"the environments of stack {plan.stack!r} have errors (see above)") from None
    else:
        opened = OpenedEnvironment(Value({}))
    from ..workspace.mapping import stack_decrypter

    result = compute_config(plan, opened, decrypt=stack_decrypter(plan, os.environ))
    if not args.skip_config_validation:
        from ..workspace.validation import HINT_CLI, raise_for, validate

        assert plan.project_spec is not None  # make_plan always reads it
        raise_for(validate(plan.project_spec, plan.stack, result.entries), HINT_CLI)
    overridden = set(result.overridden)

    if args.json:
        out: dict[str, Any] = {}
        for key, e in result.entries.items():
            item: dict[str, Any] = {}
            if not e.secret or (args.show_secrets and not e.encrypted):
                item["value"] = e.value
            item["secret"] = e.secret
            item["source"] = e.source
            if e.encrypted:
                item["encrypted"] = True
            if key in overridden:
                item["overridesEnvironment"] = True
            out[key] = item
        sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        return 0

    rows = [("KEY", "VALUE", "SOURCE")]
    for key, e in result.entries.items():
        if e.secret and not (args.show_secrets and not e.encrypted):
            shown = "[secret]"
        else:
            shown = _one_line(e.value)
        source = e.source + (" (overrides the environment)" if key in overridden else "")
        rows.append((key, shown, source))
    if len(rows) == 1:
        print(f"stack {plan.stack!r} has no config", file=sys.stderr)
        return 0
    sys.stdout.write(table(rows))
    encrypted = [k for k, e in result.entries.items() if e.encrypted]
    if encrypted and args.show_secrets:
        print(
            f"{len(encrypted)} stack value(s) encrypted by the stack's secrets provider are shown as "
            "[secret] (" + ", ".join(encrypted) + "): only the Pulumi CLI can decrypt them, or this "
            "command with PULUMI_CONFIG_PASSPHRASE (or _FILE) set when the stack uses the passphrase "
            "secrets manager",
            file=sys.stderr,
        )
    return 0


def _one_line(text: str) -> str:
    from ..esc.values import go_quote

    return go_quote(text) if any(c in text for c in "\n\r\t") else text
