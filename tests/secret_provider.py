"""A secret-output provider published the public way, for end-to-end redaction tests.

``install(dir)`` writes a tiny distribution into ``dir``: a module with providers and a
``.dist-info`` whose ``entry_points.txt`` puts them in the ``esc_pulumi.providers`` group, the
same mechanism a third-party package uses. With ``dir`` on ``sys.path`` (this process) or on
``PYTHONPATH`` (a subprocess: the CLI, the server), every default ``ProviderRegistry`` finds
them, so ``esc_pulumi.load()``, ``esc-pulumi open`` and ``esc-pulumi serve`` can run them.

The definition ``LEAK_ENV`` uses them; ``PLAINTEXTS`` are the secret texts in its outputs, each
distinctive enough that finding it anywhere in an output means it leaked.
"""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

ECHO = "leaktest-secret-echo"
DATA = "leaktest-secret-data"
MODULE = "esc_pulumi_leaktest_providers"

_MODULE_TEXT = f'''
"""Providers for the redaction tests (written by tests/secret_provider.py)."""
from esc_pulumi.esc import Provider


class SecretEcho(Provider):
    """Like the golden runner's secret-wrapper: returns its inputs, the output secret."""

    secret = True

    def open(self, inputs, context):
        return inputs


class SecretData(Provider):
    """A secret provider returning nested plain data of its own."""

    secret = True

    def open(self, inputs, context):
        return {{"token": "e2e-data-token-R2D", "nested": {{"list": ["e2e-data-item-W8", {{"k": "e2e-data-inner-J4"}}]}}}}
'''

PLAINTEXTS = (
    "e2e-user-Q7Z",
    "e2e-password-K9X",
    "e2e-deep-item-M3",
    "e2e-inner-V5",
    "e2e-data-token-R2D",
    "e2e-data-item-W8",
    "e2e-data-inner-J4",
)

LEAK_ENV = f"""
values:
  creds:
    fn::open::{ECHO}:
      user: e2e-user-Q7Z
      password: e2e-password-K9X
      nested:
        deep: [e2e-deep-item-M3, {{inner: e2e-inner-V5}}]
  data:
    fn::open:
      provider: {DATA}
      inputs: {{}}
  field: ${{creds.password}}
  whole: ${{creds}}
  deep: ${{creds.nested.deep[1].inner}}
  dataItem: ${{data.nested.list[0]}}
  greeting: "hi ${{creds.user}}"
  environmentVariables:
    DB_PASSWORD: ${{creds.password}}
    DB_USER: ${{creds.user}}
    DATA_TOKEN: ${{data.token}}
    PLAIN_VAR: plain-visible
  files:
    DEEP_FILE: ${{creds.nested.deep[0]}}
  pulumiConfig:
    dbPassword: ${{creds.password}}
    nested: ${{creds.nested}}
    dataInner: ${{data.nested.list[1].k}}
    plainKey: plain-config
"""


def install(root: Path) -> Path:
    """Write the distribution under ``root``; returns the directory to put on the path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{MODULE}.py").write_text(textwrap.dedent(_MODULE_TEXT), encoding="utf-8")
    info = root / "esc_pulumi_leaktest_providers-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: esc-pulumi-leaktest-providers\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[esc_pulumi.providers]\n{ECHO} = {MODULE}:SecretEcho\n{DATA} = {MODULE}:SecretData\n"
    )
    return root


def pythonpath_with(root: Path) -> str:
    """A PYTHONPATH value adding ``root`` to the current one."""
    current = os.environ.get("PYTHONPATH")
    return str(root) + (os.pathsep + current if current else "")


def leaks(text: str) -> list[str]:
    """The secret plaintexts that appear in ``text``."""
    return [p for p in PLAINTEXTS if p in text]
