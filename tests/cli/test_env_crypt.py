"""``esc-pulumi env encrypt|decrypt``: in place, comments kept, nothing half written."""
from __future__ import annotations

from .conftest import run_script, write

DEFINITION = """\
# Database settings (keep this comment)
values:
  db:
    user: admin   # the login
    password:
      fn::secret: hunter2-pw
  # an inline one
  token: {fn::secret: tok-123}
"""

PASS = {"ESC_PULUMI_PASSPHRASE": "correct horse"}


def test_round_trip_keeps_comments(tmp_path):
    f = write(tmp_path / "envs" / "myproj" / "db.yaml", DEFINITION)
    r = run_script(["env", "encrypt", str(f)], cwd=tmp_path, env=PASS)
    assert r.code == 0, r.err
    sealed = f.read_text()
    assert "hunter2-pw" not in sealed and "tok-123" not in sealed
    assert sealed.count("ciphertext:") == 2
    for kept in ("# Database settings (keep this comment)", "user: admin   # the login", "# an inline one"):
        assert kept in sealed
    # The local backend decrypts when it opens.
    env = {**PASS, "ESC_PULUMI_BACKEND": f"file://{tmp_path / 'envs'}"}
    r = run_script(["open", "myproj/db", "db.password", "-f", "string", "--show-secrets"], cwd=tmp_path, env=env)
    assert (r.code, r.out) == (0, "hunter2-pw\n"), r.err
    r = run_script(["env", "decrypt", str(f)], cwd=tmp_path, env=PASS)
    assert r.code == 0, r.err
    assert f.read_text() == DEFINITION


def test_wrong_passphrase_leaves_every_file_unchanged(tmp_path):
    a = write(tmp_path / "a.yaml", DEFINITION)
    b = write(tmp_path / "b.yaml", DEFINITION)
    assert run_script(["env", "encrypt", "a.yaml"], cwd=tmp_path, env=PASS).code == 0
    assert run_script(["env", "encrypt", "b.yaml"], cwd=tmp_path, env={"ESC_PULUMI_PASSPHRASE": "other"}).code == 0
    before_a, before_b = a.read_bytes(), b.read_bytes()
    r = run_script(["env", "decrypt", "a.yaml", "b.yaml"], cwd=tmp_path, env=PASS)
    assert r.code == 1 and r.out == ""
    assert r.err.startswith("esc-pulumi: b.yaml: ") and "wrong passphrase" in r.err and r.err.count("\n") == 1
    assert (a.read_bytes(), b.read_bytes()) == (before_a, before_b)
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_no_key(tmp_path):
    f = write(tmp_path / "a.yaml", DEFINITION)
    r = run_script(["env", "encrypt", "a.yaml"], cwd=tmp_path)
    assert r.code == 1
    assert r.err == "esc-pulumi: no key to encrypt with: set ESC_PULUMI_PASSPHRASE or ESC_PULUMI_KEY_FILE\n"
    assert f.read_text() == DEFINITION


def test_key_file_and_idempotence(tmp_path):
    import base64

    key = tmp_path / "k.key"
    key.write_text(base64.b64encode(bytes(range(32))).decode() + "\n")
    f = write(tmp_path / "a.yaml", DEFINITION)
    env = {"ESC_PULUMI_KEY_FILE": str(key)}
    assert run_script(["env", "encrypt", "a.yaml"], cwd=tmp_path, env=env).code == 0
    sealed = f.read_text()
    r = run_script(["env", "encrypt", "a.yaml"], cwd=tmp_path, env=env)
    assert r.code == 0 and "nothing to encrypt" in r.err and f.read_text() == sealed
    assert run_script(["env", "decrypt", "a.yaml"], cwd=tmp_path, env=env).code == 0
    assert f.read_text() == DEFINITION


def test_mode_is_kept(tmp_path):
    f = write(tmp_path / "a.yaml", DEFINITION)
    f.chmod(0o640)
    assert run_script(["env", "encrypt", "a.yaml"], cwd=tmp_path, env=PASS).code == 0
    assert f.stat().st_mode & 0o777 == 0o640


def test_missing_file_and_usage(tmp_path):
    r = run_script(["env", "encrypt", "nope.yaml"], cwd=tmp_path, env=PASS)
    assert r.code == 1 and r.err == "esc-pulumi: nope.yaml: no such file\n"
    r = run_script(["env"], cwd=tmp_path)
    assert r.code == 2 and "Traceback" not in r.err
