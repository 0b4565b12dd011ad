"""Evaluate the definitions under examples/engine-demo/envs offline and print the result.

This is what `make demo` runs until the Pulumi integration lands: the embedded engine opening
`default/dev`, which imports `default/base`, with its secret redacted.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from esc_pulumi.esc import LoadedEnvironment, LoadError, evaluate, load_definition, to_plain

ENVS = Path(__file__).resolve().parent / "engine-demo" / "envs"


class DirectoryLoader:
    """Loads ``<project>/<env>.yaml`` from a folder; a bare name means project ``default``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def load(self, name: str) -> LoadedEnvironment:
        project, _, env = name.rpartition("/")
        path = self.root / (project or "default") / f"{env}.yaml"
        try:
            return LoadedEnvironment(text=path.read_bytes())
        except OSError:
            raise LoadError(f"environment {name!r} not found (looked for {path})") from None


def main() -> int:
    name = "default/dev"
    decl, diags = load_definition((ENVS / "default" / "dev.yaml").read_bytes(), name)
    if decl is None:
        for d in diags:
            print(d, file=sys.stderr)
        return 1
    value, more = evaluate(decl, mode="open", loader=DirectoryLoader(ENVS))
    for d in diags + more:
        print(d, file=sys.stderr)
    print(f"opened {name} with the embedded ESC engine (secrets redacted):")
    print(json.dumps(to_plain(value, redact=True), indent=2, sort_keys=True))
    return 1 if any(d.is_error for d in diags + more) else 0


if __name__ == "__main__":
    sys.exit(main())
