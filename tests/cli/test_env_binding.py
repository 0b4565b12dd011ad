"""file:// ciphertexts are bound to their environment (issue 10, section 2): a definition
copied to another environment's file does not decrypt there; the documented move (``env
decrypt``, move, ``env encrypt``) works; old unbound ciphertexts still open and ``env encrypt``
re-binds them."""
from __future__ import annotations

import shutil

from esc_pulumi.backends.local import LocalBackend
from esc_pulumi.errors import DecryptionError
from esc_pulumi.esc.envelope import unseal
from esc_pulumi.secrets.binding import MAGIC
from esc_pulumi.secrets.crypto import AesGcmCipher, key_from_passphrase
from esc_pulumi.secrets.definitions import encrypt_secrets

from .conftest import run_script, write

PASS = {"ESC_PULUMI_PASSPHRASE": "correct horse"}
DEFINITION = "values:\n  pw:\n    fn::secret: s3cr3t-value  # note\n"


def _open(root, name):
    backend = LocalBackend(root, environ=PASS)
    opened = backend.open({"imports": [name]})
    return opened.value.repr["pw"].repr


def _payloads(text):
    return [unseal(line.split("ciphertext:", 1)[1].strip().split()[0]) for line in text.splitlines()
            if "ciphertext:" in line]


def test_a_moved_definition_fails_and_the_documented_move_works(tmp_path):
    root = tmp_path / "envs"
    src = write(root / "app" / "dev.yaml", DEFINITION)
    r = run_script(["env", "encrypt", str(src)], cwd=tmp_path, env=PASS)
    assert r.code == 0, r.err
    assert all(p.startswith(MAGIC) for p in _payloads(src.read_text()))
    assert _open(root, "app/dev") == "s3cr3t-value"
    assert _open(root, "app/dev@latest") == "s3cr3t-value"

    # Copied as it is to another environment: refused, naming what to do, no plaintext.
    dst = root / "app" / "prod.yaml"
    shutil.copy(src, dst)
    try:
        _open(root, "app/prod")
        raise AssertionError("a moved ciphertext decrypted")
    except DecryptionError as e:
        assert "another environment" in str(e) and "env decrypt" in str(e) and "s3cr3t" not in str(e)
    r = run_script(["env", "decrypt", str(dst)], cwd=tmp_path, env=PASS)
    assert r.code == 1 and "another environment" in r.err and "s3cr3t" not in r.err
    r = run_script(["env", "encrypt", str(dst)], cwd=tmp_path, env=PASS)
    assert r.code == 1 and "env decrypt" in r.err

    # The documented move: decrypt where it is, move, encrypt.
    dst.unlink()
    assert run_script(["env", "decrypt", str(src)], cwd=tmp_path, env=PASS).code == 0
    src.rename(dst)
    assert run_script(["env", "encrypt", str(dst)], cwd=tmp_path, env=PASS).code == 0
    assert "s3cr3t" not in dst.read_text() and "# note" in dst.read_text()
    assert _open(root, "app/prod") == "s3cr3t-value"


def test_unbound_ciphertexts_still_open_and_encrypt_rebinds_them(tmp_path):
    root = tmp_path / "envs"
    old = AesGcmCipher(key_from_passphrase(PASS["ESC_PULUMI_PASSPHRASE"]))
    f = write(root / "app" / "dev.yaml", encrypt_secrets(DEFINITION, old.encrypt))
    assert not any(p.startswith(MAGIC) for p in _payloads(f.read_text()))
    assert _open(root, "app/dev") == "s3cr3t-value"  # back compat
    r = run_script(["env", "encrypt", str(f)], cwd=tmp_path, env=PASS)
    assert r.code == 0, r.err
    assert all(p.startswith(MAGIC) for p in _payloads(f.read_text())) and "# note" in f.read_text()
    assert _open(root, "app/dev") == "s3cr3t-value"


def test_check_warns_about_unbound_ciphertexts_until_encrypt_rebinds_them(tmp_path):
    root = tmp_path / "envs"
    old = AesGcmCipher(key_from_passphrase(PASS["ESC_PULUMI_PASSPHRASE"]))
    f = write(root / "app" / "dev.yaml", encrypt_secrets(DEFINITION, old.encrypt))
    write(root / "app" / "web.yaml", "imports: [app/dev]\nvalues:\n  x: 1\n")
    env = {**PASS, "ESC_PULUMI_BACKEND": f"file://{root}"}

    r = run_script(["check", str(f)], cwd=tmp_path, env=env)
    assert r.code == 0, r.err  # a warning, not an error
    warnings = [line for line in r.out.splitlines() if "warning:" in line]
    assert len(warnings) == 1, r.out
    assert warnings[0].startswith(f"{f}:4:7: warning: the secret at values.pw ")
    assert f"esc-pulumi env encrypt {f}" in warnings[0] and "app/dev" in warnings[0]
    assert "s3cr3t" not in r.out + r.err

    # Through a REF, for every environment of the import closure, in the folder's words.
    r = run_script(["check", "app/web"], cwd=tmp_path, env=env)
    assert r.code == 0, r.err
    assert [line.split(": warning:")[0] for line in r.out.splitlines() if "warning:" in line] == [
        f"{root / 'app' / 'dev.yaml'}:4:7"
    ], r.out

    assert run_script(["env", "encrypt", str(f)], cwd=tmp_path, env=PASS).code == 0
    for target in (str(f), "app/web"):
        r = run_script(["check", target], cwd=tmp_path, env=env)
        assert r.code == 0 and "warning:" not in r.out, r.out
