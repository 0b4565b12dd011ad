"""``esc-pulumi env rotate REF [PATH...]`` and ``LocalBackend.rotate``: new states written back
in place (comments kept, ciphertexts where the file has them), nothing written on failure, and
a new state never printed."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Mapping

import pytest

from esc_pulumi.backends.local import LocalBackend
from esc_pulumi.errors import DefinitionError, EscError
from esc_pulumi.esc import ProviderRegistry, Rotator, Value, to_plain
from esc_pulumi.secrets.crypto import AesGcmCipher, key_from_passphrase

from .. import rotators as rt
from ..secrets.test_state_patches import secret_leaves
from .conftest import run_script, write

DB = rt.DB
PASSPHRASE = "correct horse"


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    prov = rt.install(tmp_path / "rotators")
    # Relative to the commands' cwd (tmp_path): messages name files as the URL does.
    return {"ESC_PULUMI_BACKEND": "file://envs", "PYTHONPATH": str(prov)}


def leaked(text: str) -> bool:
    return "rotated-pw-" in text or "rotated-token-" in text


def test_rotate_writes_the_new_states_back_keeping_comments(tmp_path: Path, cli_env: dict[str, str]) -> None:
    f = write(tmp_path / "envs" / "myproj" / "db.yaml", DB)
    r = run_script(["env", "rotate", "myproj/db"], cwd=tmp_path, env=cli_env)
    assert (r.code, r.out) == (0, ""), r.err
    assert r.err == "envs/myproj/db.yaml: rotated db, token\n"
    new = f.read_text()
    assert new == DB.replace("gen: 1   # generation", "gen: 2   # generation").replace(
        "password: {fn::secret: first-pw-J2K}", f"password: {{fn::secret: {rt.new_password(2)}}}"
    ).replace(
        "fn::rotate::rt-secret: {inputs: {}}",
        "fn::rotate::rt-secret: {inputs: {}, state: {gen: {fn::fromJSON: {fn::secret: \"1\"}}, "
        "token: {fn::secret: rotated-token-1-K4W}, flags: [{fn::fromJSON: {fn::secret: \"true\"}}, "
        "{fn::fromJSON: {fn::secret: \"null\"}}]}}",
    )
    # it opens with the new states, secrets still secret
    r = run_script(["open", "myproj/db", "--format", "json"], cwd=tmp_path, env=cli_env)
    assert r.code == 0 and not leaked(r.out + r.err), r.err
    r = run_script(["open", "myproj/db", "url", "-f", "string", "--show-secrets"], cwd=tmp_path, env=cli_env)
    assert r.out == f"postgres://{rt.new_password(2)}@db.example.com\n"
    # only the selected call rotates the second time
    r = run_script(["env", "rotate", "myproj/db", "db"], cwd=tmp_path, env=cli_env)
    assert r.code == 0 and r.err == "envs/myproj/db.yaml: rotated db\n"
    assert rt.new_password(3) in f.read_text() and "rotated-token-1-K4W" in f.read_text()


def test_rotate_encrypts_with_the_files_key(tmp_path: Path, cli_env: dict[str, str]) -> None:
    f = write(tmp_path / "envs" / "myproj" / "db.yaml", DB)
    env = {**cli_env, "ESC_PULUMI_PASSPHRASE": PASSPHRASE}
    assert run_script(["env", "encrypt", str(f)], cwd=tmp_path, env=env).code == 0
    before = f.read_text()
    r = run_script(["env", "rotate", "myproj/db"], cwd=tmp_path, env=env)
    assert (r.code, r.out) == (0, ""), r.err
    new = f.read_text()
    assert not leaked(new) and "first-pw-J2K" not in new
    assert "# Database credentials (keep this comment)" in new and "# a comment between" in new
    assert new.count("ciphertext:") == 5  # the password, and the secret state's four values
    assert before.splitlines()[:9] == new.splitlines()[:9]  # everything before the state untouched
    r = run_script(["open", "myproj/db", "db.password", "-f", "string", "--show-secrets"], cwd=tmp_path, env=env)
    assert (r.code, r.out) == (0, rt.new_password(2) + "\n"), r.err
    # every ciphertext of the file opens with the one key
    r = run_script(["env", "decrypt", str(f)], cwd=tmp_path, env=env)
    assert r.code == 0 and rt.new_password(2) in f.read_text()


def test_nothing_is_written_when_a_rotator_fails(tmp_path: Path, cli_env: dict[str, str]) -> None:
    f = write(
        tmp_path / "envs" / "myproj" / "f.yaml",
        """\
        values:
          ok:
            fn::rotate::rt-password: {inputs: {admin: a}, state: {gen: 1, password: p}}
          bad:
            fn::rotate::rt-fail:
              inputs: {}
              state: {x: 1}
        """,
    )
    before = f.read_bytes()
    r = run_script(["env", "rotate", "myproj/f"], cwd=tmp_path, env=cli_env)
    assert r.code == 1 and r.out == ""
    assert r.err == (
        "envs/myproj/f.yaml:5:5: error: the admin API refused the rotation\n"
        "esc-pulumi: myproj/f: rotation failed, nothing written; the rotators of ok ran, their new "
        "states are discarded\n"
    )
    assert f.read_bytes() == before and not leaked(r.err)
    assert sorted(p.name for p in f.parent.iterdir()) == ["f.yaml"]  # no temporary file left
    # selecting only the one that works
    r = run_script(["env", "rotate", "myproj/f", "ok"], cwd=tmp_path, env=cli_env)
    assert r.code == 0 and rt.new_password(2) in f.read_text()


def test_no_rotator_runs_in_an_environment_with_errors(tmp_path: Path, cli_env: dict[str, str]) -> None:
    f = write(
        tmp_path / "envs" / "myproj" / "e.yaml",
        """\
        values:
          ok:
            fn::rotate::rt-password: {inputs: {admin: a}, state: {gen: 1, password: p}}
          typo: ${nope}
        """,
    )
    before = f.read_bytes()
    r = run_script(["env", "rotate", "myproj/e", "ok"], cwd=tmp_path, env=cli_env)
    assert r.code == 1 and f.read_bytes() == before
    assert r.err == (
        'envs/myproj/e.yaml:4:9: error: unknown property "nope"\n'
        "esc-pulumi: myproj/e: the environment has errors, nothing rotated\n"
    )
    # managing credentials out of reach: found by the check, before the rotator runs
    g = write(
        tmp_path / "envs" / "myproj" / "g.yaml",
        'values:\n  ok:\n    fn::rotate::rt-password: {inputs: {admin: "${environments.mgmt.gone.admin}"}}\n',
    )
    before = g.read_bytes()
    r = run_script(["env", "rotate", "myproj/g"], cwd=tmp_path, env=cli_env)
    assert r.code == 1 and g.read_bytes() == before
    assert r.err.startswith("esc-pulumi: environment 'mgmt/gone' not found")


def test_bad_requests(tmp_path: Path, cli_env: dict[str, str]) -> None:
    write(tmp_path / "envs" / "myproj" / "db.yaml", DB)
    write(tmp_path / "envs" / "myproj" / "plain.yaml", "values: {a: 1}\n")
    cases = [
        (["myproj/db", "nope"], "esc-pulumi: envs/myproj/db.yaml has no fn::rotate at 'nope'; its calls: db, token\n"),
        (["myproj/db", "db["], "esc-pulumi: invalid rotate path 'db[': subscript is missing closing bracket ']'\n"),
        (["myproj/plain"], "esc-pulumi: envs/myproj/plain.yaml has no fn::rotate: nothing to rotate\n"),
        (["myproj/db@v1"], "esc-pulumi: cannot rotate 'myproj/db@v1': a pinned revision or tag is a snapshot; "
                           "rotate myproj/db itself\n"),
        (["myproj/missing"], None),
    ]
    for args, err in cases:
        r = run_script(["env", "rotate", *args], cwd=tmp_path, env=cli_env)
        assert r.code == 1 and r.out == "", args
        if err is not None:
            assert r.err == err
        else:
            assert "not found" in r.err
    r = run_script(["env", "rotate", "myproj/db"], cwd=tmp_path,
                   env={**cli_env, "ESC_PULUMI_BACKEND": "http://127.0.0.1:9"})
    # An ESC service rotates itself (tests/server/test_rotate.py); it needs the organization.
    assert r.code == 1 and "no ESC organization for http://127.0.0.1:9" in r.err, r.err


def test_wrong_or_missing_key_writes_nothing(tmp_path: Path, cli_env: dict[str, str]) -> None:
    f = write(tmp_path / "envs" / "myproj" / "db.yaml", DB)
    assert run_script(["env", "encrypt", str(f)], cwd=tmp_path, env={"ESC_PULUMI_PASSPHRASE": PASSPHRASE}).code == 0
    before = f.read_bytes()
    r = run_script(["env", "rotate", "myproj/db"], cwd=tmp_path, env={**cli_env, "ESC_PULUMI_PASSPHRASE": "wrong"})
    assert r.code == 1 and "do not decrypt" in r.err and f.read_bytes() == before
    r = run_script(["env", "rotate", "myproj/db"], cwd=tmp_path, env=cli_env)
    assert r.code == 1 and "holds ciphertexts" in r.err and f.read_bytes() == before


# -- the backend, in process ------------------------------------------------------------------


class Counter(Rotator):
    """``{n}`` → ``{n + 1}``; ``hook`` runs while rotating (to change the file meanwhile)."""

    def __init__(self, hook: Any = None) -> None:
        self.hook = hook

    def open_state(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        return state

    def rotate(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        if self.hook:
            self.hook()
        return {"n": state.repr["n"].repr + 1, "secret": Value(f"s3cr3t-{state.repr['n'].repr + 1}", secret=True)}


def backend(root: Path, rotator: Rotator, environ: Mapping[str, str] | None = None) -> LocalBackend:
    return LocalBackend(root, providers=ProviderRegistry(rotators={"counter": rotator}, entry_points=False),
                        environ=environ or {})


COUNTER = "values:\n  c:\n    fn::rotate::counter:\n      inputs: {}\n      state: {n: 1}  # counter\n"


def test_backend_rotate_returns_the_rotation(tmp_path: Path) -> None:
    f = write(tmp_path / "default" / "c.yaml", COUNTER)
    result = backend(tmp_path, Counter()).rotate("c")
    assert [p.doc_path for p in result.patches] == ['values.c["fn::rotate::counter"].state']
    assert to_plain(result.value, redact=True) == {"c": {"n": 2, "secret": "[secret]"}}
    assert f.read_text() == COUNTER.replace("{n: 1}", "{n: 2, secret: {fn::secret: s3cr3t-2}}")
    assert "s3cr3t" not in repr(result)
    assert secret_leaves(backend(tmp_path, Counter()).rotate("default/c").value) == {("c", "secret")}


def test_backend_rotate_refuses_a_file_changed_meanwhile(tmp_path: Path) -> None:
    f = write(tmp_path / "default" / "c.yaml", COUNTER)
    edited = COUNTER + "  other: edited meanwhile\n"
    with pytest.raises(EscError, match="changed while rotating: nothing written"):
        backend(tmp_path, Counter(hook=lambda: f.write_text(edited))).rotate("c")
    assert f.read_text() == edited


def test_backend_rotate_writes_through_a_symlink_and_keeps_the_mode(tmp_path: Path) -> None:
    real = write(tmp_path / "real.yaml", COUNTER)
    real.chmod(0o640)
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "c.yaml").symlink_to(real)
    backend(tmp_path, Counter()).rotate("c")
    assert (tmp_path / "default" / "c.yaml").is_symlink() and "{n: 2" in real.read_text()
    assert real.stat().st_mode & 0o777 == 0o640


def test_backend_rotate_uses_the_files_key(tmp_path: Path) -> None:
    cipher = AesGcmCipher(key_from_passphrase(PASSPHRASE))
    from esc_pulumi.secrets.definitions import encrypt_secrets

    text = encrypt_secrets(COUNTER.replace("{n: 1}", "{n: 1, secret: {fn::secret: old}}"), cipher.encrypt)
    f = write(tmp_path / "default" / "c.yaml", text)
    result = backend(tmp_path, Counter(), {"ESC_PULUMI_PASSPHRASE": PASSPHRASE}).rotate("c")
    assert result.patches and "s3cr3t-2" not in f.read_text() and "ciphertext" in f.read_text()
    opened = backend(tmp_path, Counter(), {"ESC_PULUMI_PASSPHRASE": PASSPHRASE}).open({"imports": ["c"]})
    assert to_plain(opened.value) == {"c": {"n": 2, "secret": "s3cr3t-2"}}


def test_backend_rotate_failure_is_a_definition_error(tmp_path: Path) -> None:
    class Fails(Counter):
        def rotate(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
            raise RuntimeError("boom")

    f = write(tmp_path / "default" / "c.yaml", COUNTER)
    with pytest.raises(DefinitionError) as e:
        backend(tmp_path, Fails()).rotate("c")
    assert [d.summary for d in e.value.diagnostics] == ["boom"]
    assert f.read_text() == COUNTER
