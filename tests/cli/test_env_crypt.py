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


def test_encrypt_with_another_key_than_the_file_s_is_refused(tmp_path):
    f = write(tmp_path / "a.yaml", DEFINITION)
    assert run_script(["env", "encrypt", str(f)], cwd=tmp_path, env=PASS).code == 0
    sealed = f.read_text()
    # A new plaintext secret beside the old ciphertexts, then the wrong passphrase.
    f.write_text(sealed + "  extra: {fn::secret: new-one}\n")
    before = f.read_text()
    r = run_script(["env", "encrypt", str(f)], cwd=tmp_path, env={"ESC_PULUMI_PASSPHRASE": "other"})
    assert r.code == 1 and "existing ciphertexts do not decrypt" in r.err and "ESC_PULUMI_PASSPHRASE" in r.err
    assert "encrypted" not in r.err.replace("nothing changed", "")
    assert f.read_text() == before


def test_encrypt_writes_through_a_symlink(tmp_path):
    target = write(tmp_path / "real" / "db.yaml", DEFINITION)
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    r = run_script(["env", "encrypt", str(link)], cwd=tmp_path, env=PASS)
    assert r.code == 0, r.err
    assert link.is_symlink()
    assert "hunter2-pw" not in target.read_text() and "ciphertext:" in target.read_text()


def test_encrypt_broken_yaml_is_an_error(tmp_path):
    f = write(tmp_path / "bad.yaml", "values:\n  a: [1, 2\n  b: {fn::secret: x}\n")
    before = f.read_text()
    r = run_script(["env", "encrypt", str(f)], cwd=tmp_path, env=PASS)
    assert r.code == 1 and "not valid YAML" in r.err and "nothing to encrypt" not in r.err
    assert f.read_text() == before


def test_keygen_and_key_file_formats(tmp_path):
    import os

    key = tmp_path / "k.key"
    r = run_script(["env", "keygen", str(key)], cwd=tmp_path)
    assert r.code == 0, r.err
    assert os.stat(key).st_mode & 0o777 == 0o600
    again = run_script(["env", "keygen", str(key)], cwd=tmp_path)
    assert again.code == 1 and "already exists" in again.err
    raw = tmp_path / "raw.key"
    raw.write_bytes(os.urandom(32))
    hexed = tmp_path / "hex.key"
    hexed.write_text(os.urandom(32).hex() + "\n")
    for k in (key, raw, hexed):
        f = write(tmp_path / f"d-{k.stem}.yaml", DEFINITION)
        r = run_script(["env", "encrypt", str(f)], cwd=tmp_path, env={"ESC_PULUMI_KEY_FILE": str(k)})
        assert r.code == 0, (k, r.err)
        r = run_script(["env", "decrypt", str(f)], cwd=tmp_path, env={"ESC_PULUMI_KEY_FILE": str(k)})
        assert r.code == 0 and f.read_text() == DEFINITION
    bad = tmp_path / "bad.key"
    bad.write_bytes(b"\xff" * 7)
    f = write(tmp_path / "x.yaml", DEFINITION)
    r = run_script(["env", "encrypt", str(f)], cwd=tmp_path, env={"ESC_PULUMI_KEY_FILE": str(bad)})
    assert r.code == 1 and "env keygen" in r.err and "Traceback" not in r.err


def test_passphrase_and_key_file_together_are_refused(tmp_path):
    key = tmp_path / "k.key"
    assert run_script(["env", "keygen", str(key)], cwd=tmp_path).code == 0
    f = write(tmp_path / "a.yaml", DEFINITION)
    r = run_script(["env", "encrypt", str(f)], cwd=tmp_path, env={**PASS, "ESC_PULUMI_KEY_FILE": str(key)})
    assert r.code == 1 and "both ESC_PULUMI_PASSPHRASE and ESC_PULUMI_KEY_FILE" in r.err
    assert f.read_text() == DEFINITION
