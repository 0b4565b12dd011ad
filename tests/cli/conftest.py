"""Helpers for the esc-pulumi command tests: definitions in a tmp ``file://`` store, small
Pulumi projects, and a runner for the real console script."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import pytest

SCRIPT = Path(sys.executable).with_name("esc-pulumi")

# Settings that would leak from the developer's shell into the command under test.
_SCRUBBED = (
    "ESC_PULUMI_BACKEND",
    "ESC_PULUMI_ORGANIZATION",
    "ESC_PULUMI_PASSPHRASE",
    "ESC_PULUMI_KEY_FILE",
    "ESC_PULUMI_USER",
    "ESC_PULUMI_DEBUG",
    "PULUMI_STACK",
    "PULUMI_BACKEND_URL",
    "PULUMI_ACCESS_TOKEN",
    "PULUMI_CONFIG",
    "PULUMI_CONFIG_SECRET_KEYS",
)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def base_environ(extra: Mapping[str, str] | None = None, home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    if home is not None:
        # No real Pulumi credentials file may be consulted.
        env["PULUMI_HOME"] = str(home)
        env["PULUMI_CREDENTIALS_PATH"] = str(home)
    env.update(extra or {})
    return env


def run_script(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Result:
    """Run the installed console script (or ``python -m esc_pulumi.cli`` without one)."""
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "esc_pulumi.cli"]
    p = subprocess.run(
        cmd + list(args),
        cwd=cwd,
        env=base_environ(env, home=cwd / ".pulumi-home"),
        capture_output=True,
        timeout=timeout,
    )
    return Result(p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8"))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A file:// store: ``tmp/envs/<project>/<env>.yaml``."""
    envs = tmp_path / "envs"
    write(
        envs / "myproj" / "fmt.yaml",
        """
        values:
          str: hello
          num: 42
          float: 1.5
          bool: true
          nothing: null
          html: "<b>&</b>"
          quote: 'say "hi"'
          multi: "line1\\nline2"
          yes: "yes"
          list: [1, two]
          nested:
            b: 2
            a: 1
          secret:
            fn::secret: hunter2
          environmentVariables:
            PLAIN: plain value
            DOLLAR: cost $5
            QUOTED: 'a "b" \\c'
            NUM: 8080
            FLAG: false
            NIL: null
            PW: ${secret}
            OBJ: {ignored: true}
          files:
            KEY_FILE: key-data
        """,
    )
    write(
        envs / "myproj" / "base.yaml",
        """
        values:
          region: us-west-2
          obj:
            foo: bar
          password:
            fn::secret: s3cr3t-pw
        """,
    )
    write(
        envs / "myproj" / "app.yaml",
        """
        imports:
          - myproj/base
        values:
          obj:
            hello: world
          greeting: hello ${region}
          pulumiConfig:
            greeting: ${greeting}
            aws:region: ${region}
            dbPassword: ${password}
            settings: {b: [1, 2], a: true}
            shared: from-env
          environmentVariables:
            AWS_REGION: ${region}
            DB_PASSWORD: ${password}
        """,
    )
    write(envs / "myproj" / "small.yaml", "values:\n  a: x\n")
    write(
        envs / "myproj" / "bad.yaml",
        """
        imports:
          - myproj/base
        values:
          a: ${nope}
          b: ${region.x}
        """,
    )
    write(envs / "default" / "plain.yaml", "values:\n  hello: world\n")
    return envs


@pytest.fixture
def backend_env(store: Path) -> dict[str, str]:
    return {"ESC_PULUMI_BACKEND": f"file://{store}"}


@pytest.fixture
def project(tmp_path: Path, store: Path) -> Path:
    """A Pulumi project using the store through ``esc:backend`` (relative to the project)."""
    proj = tmp_path / "proj"
    write(
        proj / "Pulumi.yaml",
        """
        name: myproj
        runtime: python
        config:
          fallback:
            default: dflt
          shared:
            default: from-project
        """,
    )
    write(
        proj / "Pulumi.dev.yaml",
        """
        config:
          esc:backend: file://../envs
          esc:environments: [myproj/app]
          myproj:stackOnly: fromstack
          aws:region: eu-central-1
        """,
    )
    write(proj / "Pulumi.empty.yaml", "config:\n  myproj:only: here\n")
    return proj
