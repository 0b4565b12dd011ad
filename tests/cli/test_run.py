"""``esc-pulumi run``: projected variables and files, secrets masked line by line, exit codes."""
from __future__ import annotations

import io
import sys
from pathlib import Path

from esc_pulumi.cli.run import masker, run_masked

from .conftest import run_script, write

PY = sys.executable


def test_child_sees_variables_and_secrets_are_masked(tmp_path, store, backend_env):
    child = (
        "import os, sys\n"
        "print('region', os.environ['AWS_REGION'])\n"
        "print('pw', os.environ['DB_PASSWORD'], 'again', os.environ['DB_PASSWORD'])\n"
        "print('err', os.environ['DB_PASSWORD'], file=sys.stderr)\n"
    )
    r = run_script(["run", "myproj/app", "--", PY, "-c", child], cwd=tmp_path, env=backend_env)
    assert r.code == 0, r.err
    assert r.out == "region us-west-2\npw [secret] again [secret]\n"
    assert r.err == "err [secret]\n"


def test_every_secret_of_the_environment_is_masked(tmp_path, store, backend_env):
    # `password` is not projected, but it is a secret of the environment: still masked.
    write(
        store / "myproj" / "leak.yaml",
        """
        imports: [myproj/base]
        values:
          short: {fn::secret: ab}
          three: {fn::secret: xyz}
          environmentVariables:
            SHORT: ${short}
            THREE: ${three}
        """,
    )
    child = "import os; print(os.environ['SHORT'], os.environ['THREE'], 's3cr3t-pw', 's3cr3t-pw-and-more')"
    r = run_script(["run", "myproj/leak", "--", PY, "-c", child], cwd=tmp_path, env=backend_env)
    assert r.code == 0, r.err
    # Secrets under 3 bytes are not masked (as esc does): masking them would garble the output.
    assert r.out == "ab [secret] [secret] [secret]-and-more\n"


def test_exit_code_is_the_childs(tmp_path, store, backend_env):
    r = run_script(["run", "myproj/app", "--", PY, "-c", "raise SystemExit(7)"], cwd=tmp_path, env=backend_env)
    assert r.code == 7
    r = run_script(["run", "myproj/base", "--", PY, "-c", "pass"], cwd=tmp_path, env=backend_env)
    assert (r.code, r.out, r.err) == (0, "", "")


def test_files_are_projected_and_removed(tmp_path, store, backend_env):
    child = "import os; p = os.environ['KEY_FILE']; print(p); print(open(p).read()); print(oct(os.stat(p).st_mode & 0o777))"
    r = run_script(["run", "myproj/fmt", "--", PY, "-c", child], cwd=tmp_path, env=backend_env)
    assert r.code == 0, r.err
    path, content, mode = r.out.splitlines()
    assert (content, mode) == ("key-data", "0o600")
    assert not Path(path).exists()


def test_scalars_are_projected_as_text(tmp_path, store, backend_env):
    child = "import os; print(repr(os.environ['NUM']), repr(os.environ['FLAG']), repr(os.environ['NIL']), 'OBJ' in os.environ)"
    r = run_script(["run", "myproj/fmt", "--", PY, "-c", child], cwd=tmp_path, env=backend_env)
    assert r.out == "'8080' 'false' '' False\n"


def test_several_refs_later_wins(tmp_path, store, backend_env):
    write(store / "myproj" / "override.yaml", "values:\n  environmentVariables:\n    AWS_REGION: eu-west-3\n")
    child = "import os; print(os.environ['AWS_REGION'])"
    r = run_script(["run", "myproj/app", "myproj/override", "--", PY, "-c", child], cwd=tmp_path, env=backend_env)
    assert r.out == "eu-west-3\n"


def test_stack_composition_inside_a_project(project):
    child = "import os; print(os.environ['AWS_REGION'], os.environ['DB_PASSWORD'])"
    r = run_script(["run", "--stack", "dev", "--", PY, "-c", child], cwd=project)
    assert (r.code, r.out) == (0, "us-west-2 [secret]\n"), r.err


def test_usage_errors(tmp_path, store, backend_env):
    r = run_script(["run", "myproj/app"], cwd=tmp_path, env=backend_env)
    assert r.code != 0 and "--" in r.err and r.err.count("\n") == 1
    r = run_script(["run", "myproj/app", "--"], cwd=tmp_path, env=backend_env)
    assert r.code != 0 and "no command" in r.err
    r = run_script(["run", "myproj/app", "--", "no-such-command-xyz"], cwd=tmp_path, env=backend_env)
    assert r.code == 127 and r.err == "esc-pulumi: command not found: no-such-command-xyz\n"
    script = tmp_path / "not-executable.sh"
    script.write_text("echo hi\n")
    script.chmod(0o644)
    r = run_script(["run", "myproj/app", "--", str(script)], cwd=tmp_path, env=backend_env)
    assert r.code == 126 and "cannot execute" in r.err


def test_definition_errors_stop_the_run(tmp_path, store, backend_env):
    r = run_script(["run", "myproj/bad", "--", PY, "-c", "print('ran')"], cwd=tmp_path, env=backend_env)
    assert r.code != 0 and "ran" not in r.out
    assert 'envs/myproj/bad.yaml:4:8: error: unknown property "nope"' in r.err
    assert "Traceback" not in r.err


def test_masker_longest_first_and_bytes():
    mask = masker(["abc", "abcdef", "é!", "pw"])
    assert mask(b"xabcdefx abc pw \xc3\xa9!\n") == b"x[secret]x [secret] pw [secret]\n"


def test_run_masked_in_process():
    out, err = io.BytesIO(), io.BytesIO()
    code = run_masked(
        [PY, "-c", "import sys; print('a hunter2 b'); print('hunter2', file=sys.stderr); sys.exit(4)"],
        {"PATH": "/usr/bin:/bin"},
        ["hunter2"],
        stdout=out,
        stderr=err,
    )
    assert (code, out.getvalue(), err.getvalue()) == (4, b"a [secret] b\n", b"[secret]\n")


def test_own_keys_are_not_passed_on_and_credentials_are_masked(tmp_path, store, backend_env):
    child = (
        "import os\n"
        "print('passphrase' , os.environ.get('ESC_PULUMI_PASSPHRASE', 'absent'))\n"
        "print('keyfile', os.environ.get('ESC_PULUMI_KEY_FILE', 'absent'))\n"
        "print('token', os.environ['PULUMI_ACCESS_TOKEN'])\n"
        "print('pulumi passphrase', os.environ['PULUMI_CONFIG_PASSPHRASE'])\n"
    )
    env = {
        **backend_env,
        "ESC_PULUMI_PASSPHRASE": "our-own-passphrase",
        "PULUMI_ACCESS_TOKEN": "pul-abcdef123456",
        "PULUMI_CONFIG_PASSPHRASE": "stack-passphrase",
    }
    r = run_script(["run", "myproj/app", "--", PY, "-c", child], cwd=tmp_path, env=env)
    assert r.code == 0, r.err
    assert r.out == "passphrase absent\nkeyfile absent\ntoken [secret]\npulumi passphrase [secret]\n"
