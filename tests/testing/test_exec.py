"""The exec entry point's command line, and that importing esc_pulumi.testing stays cheap."""
from __future__ import annotations

import subprocess
import sys

import pytest

from esc_pulumi.testing._exec import HostArgs, parse_args

ARGS = [
    "--monitor", "127.0.0.1:1", "--engine", "127.0.0.1:2", "--project", "p", "--root_directory", "/r",
    "--stack", "dev", "--pwd", "/w", "--dry_run", "true", "--parallel", "8", "--organization", "o", "/r/prog",
]  # fmt: skip


def test_parse_args_reads_the_language_hosts_command_line():
    assert parse_args(ARGS) == HostArgs(
        monitor="127.0.0.1:1", engine="127.0.0.1:2", project="p", root_directory="/r", stack="dev",
        pwd="/w", dry_run=True, parallel=8, organization="o", program="/r/prog",
    )
    assert parse_args([*ARGS[:13], "false", *ARGS[14:]]).dry_run is False


@pytest.mark.parametrize("bad", [["--dry_run", "maybe"], ["--parallel", "many"]])
def test_bad_arguments_are_refused(bad, capsys):
    argv = list(ARGS)
    i = argv.index(bad[0])
    argv[i + 1] = bad[1]
    with pytest.raises(SystemExit) as e:
        parse_args(argv)
    assert e.value.code == 2
    assert bad[0] in capsys.readouterr().err


def test_a_missing_argument_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse_args(ARGS[2:])  # no --monitor
    assert "--monitor" in capsys.readouterr().err


def test_importing_the_package_imports_neither_grpc_nor_pulumi():
    code = "import sys, esc_pulumi.testing; print('grpc' in sys.modules, 'pulumi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_public_names_resolve():
    import esc_pulumi.testing as t

    for name in t.__all__:
        assert getattr(t, name) is not None
    with pytest.raises(AttributeError):
        t.no_such_name  # noqa: B018
