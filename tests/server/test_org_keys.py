"""Ciphertexts bound to their organisation and environment (issue 10, section 2): a
ciphertext copied into another org's inline definition, another environment, or an inline
definition of its own org does not decrypt; clones are re-encrypted; a store of the old,
unbound, format is migrated on start (backup first, once)."""
from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

from esc_pulumi.esc.envelope import unseal
from esc_pulumi.secrets.binding import MAGIC
from esc_pulumi.secrets.crypto import AesGcmCipher, create_key_file
from esc_pulumi.secrets.definitions import encrypt_secrets
from esc_pulumi.server.keys import FORMAT, FORMAT_META, store_key_check
from esc_pulumi.server.store import open_store

from .conftest import ORG, Env, ServerProcess, create_token, database_for, db_execute

SECRET = "pl41nt3xt-s3cr3t"


def _ciphertexts(yaml: str) -> list[str]:
    return [line.split("ciphertext:", 1)[1].strip().strip("}").strip() for line in yaml.splitlines()
            if "ciphertext:" in line]


def _make(env: Env, project: str, name: str, yaml: str) -> str:
    status, _, body = env.request("POST", f"/environments/{ORG}", {"project": project, "name": name})
    assert status in (200, 204), body
    status, _, body = env.request("PATCH", f"/environments/{ORG}/{project}/{name}", yaml)
    assert status == 200, body
    status, _, stored = env.request("GET", f"/environments/{ORG}/{project}/{name}", role="reader")
    assert status == 200 and SECRET not in stored
    return stored


def _no_secret(*bodies: object) -> None:
    for b in bodies:
        assert SECRET not in json.dumps(b)


def test_ciphertext_copied_into_another_orgs_inline_definition_does_not_decrypt(env: Env, unique: str) -> None:
    stored = _make(env, "p", f"e-{unique}", f"values:\n  pw:\n    fn::secret: {SECRET}\n")
    (ct,) = _ciphertexts(stored)
    inline = f"values:\n  stolen:\n    fn::secret:\n      ciphertext: {ct}\n"
    status, _, body = env.request("POST", "/environments/other/yaml/open", inline, token=env.other_admin)
    _no_secret(body)
    assert status == 400, body
    assert "anonymous definition cannot hold ciphertexts" in body["diagnostics"][0]["summary"]
    status, _, body = env.request("POST", "/environments/other/yaml/check?showSecrets=true", inline,
                                  token=env.other_admin)
    _no_secret(body)
    # Nor inline in its own org: a ciphertext belongs to its stored environment.
    status, _, body = env.request("POST", f"/environments/{ORG}/yaml/open", inline, role="opener")
    _no_secret(body)
    assert status == 400 and "anonymous definition cannot hold ciphertexts" in body["diagnostics"][0]["summary"]
    # Importing the environment still works inline.
    status, _, body = env.request("POST", f"/environments/{ORG}/yaml/open", f"imports: [p/e-{unique}]\n",
                                  role="opener")
    assert status == 200, body
    status, _, opened = env.request("GET", f"/environments/{ORG}/yaml/open/{body['id']}", role="opener")
    assert opened["properties"]["pw"]["value"] == SECRET


def test_ciphertext_moved_to_another_environment_of_the_same_org(env: Env, unique: str) -> None:
    stored = _make(env, "p", f"src-{unique}", f"values:\n  pw:\n    fn::secret: {SECRET}\n")
    (ct,) = _ciphertexts(stored)
    moved = f"values:\n  pw:\n    fn::secret:\n      ciphertext: {ct}\n"
    status, _, body = env.request("POST", f"/environments/{ORG}", {"project": "p", "name": f"dst-{unique}"})
    # Saving it elsewhere is refused, naming the secret's path, nothing saved.
    status, _, body = env.request("PATCH", f"/environments/{ORG}/p/dst-{unique}", moved)
    _no_secret(body)
    assert status == 400 and "values.pw" in body["message"] and "another organisation or environment" in body["message"]
    status, _, head = env.request("GET", f"/environments/{ORG}/p/dst-{unique}")
    assert status == 200 and "ciphertext" not in (head or "")  # still the empty first revision
    # Re-saving its own definition (ciphertexts included) is fine.
    status, _, body = env.request("PATCH", f"/environments/{ORG}/p/src-{unique}", stored)
    assert status == 200, body


def test_stored_ciphertexts_are_version_2(env: Env, unique: str) -> None:
    stored = _make(env, "p", f"v-{unique}", f"values:\n  pw:\n    fn::secret: {SECRET}\n")
    (ct,) = _ciphertexts(stored)
    assert unseal(ct).startswith(MAGIC)


def test_clone_re_encrypts_for_the_copy(env: Env, unique: str) -> None:
    src = _make(env, "p", f"c-{unique}", f"values:\n  pw:\n    fn::secret: {SECRET}\n")
    status, _, body = env.request("POST", f"/environments/{ORG}/p/c-{unique}/clone",
                                  {"project": "q", "name": f"copy-{unique}", "preserveHistory": True})
    assert status == 204, body
    status, _, copy = env.request("GET", f"/environments/{ORG}/q/copy-{unique}")
    assert _ciphertexts(copy) != _ciphertexts(src)
    status, _, body = env.request("GET", f"/environments/{ORG}/q/copy-{unique}/decrypt")
    assert status == 200 and SECRET in body
    status, _, opened = env.request("POST", f"/environments/{ORG}/q/copy-{unique}/open", role="opener")
    assert status == 200, opened
    status, _, read = env.request("GET", f"/environments/{ORG}/q/copy-{unique}/open/{opened['id']}", role="opener")
    assert read["properties"]["pw"]["value"] == SECRET


def _v1_store(data: Path) -> AesGcmCipher:
    """A data folder as the previous version left it: unbound ciphertexts under the server key."""
    data.mkdir(parents=True)
    cipher = AesGcmCipher(create_key_file(data / "server.key"))
    store = open_store(data, database_for(data))
    store_key_check(store, cipher)
    old = "values:\n  pw:\n    fn::secret: {}\n  n: 1  # keep me\n"
    rev = store.create_environment(ORG, "app", "dev", encrypt_secrets(old.format("one"), cipher.encrypt), "ci")
    store.update_environment(ORG, "app", "dev", encrypt_secrets(old.format(SECRET), cipher.encrypt), "ci", rev.etag)
    store.create_environment("other", "app", "dev", encrypt_secrets(old.format("two"), cipher.encrypt), "ci")
    store.close()
    return cipher


def _all_yaml(data: Path) -> list[str]:
    return [r[0] for r in db_execute(data, "SELECT yaml FROM revisions ORDER BY env_id, number")]


def _backups(data: Path) -> list[list[str]]:
    """The revisions of each backup the migration made: SQLite files beside the database, or
    PostgreSQL tables."""
    if database_for(data) is None:
        out = []
        for db in sorted(data.glob("backup-*.db")):
            con = sqlite3.connect(str(db))
            try:
                out.append([r[0] for r in con.execute("SELECT yaml FROM revisions ORDER BY env_id, number")])
            finally:
                con.close()
        return out
    tables = db_execute(data, "SELECT table_name FROM information_schema.tables "
                              "WHERE starts_with(table_name, 'revisions_backup_') ORDER BY table_name")
    return [[r[0] for r in db_execute(data, f"SELECT yaml FROM {t} ORDER BY env_id, number")] for (t,) in tables]


def test_v1_store_is_migrated_on_start_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cipher = _v1_store(data)
    before = _all_yaml(data)
    assert all(not unseal(ct).startswith(MAGIC) for y in before for ct in _ciphertexts(y))
    token = create_token(data, ORG, "admin", "admin")
    other = create_token(data, "other", "admin", "admin")
    server = ServerProcess(data).start()
    try:
        env = Env(server, {"admin": token}, other)
        backups = _backups(data)
        assert len(backups) == 1 and backups[0] == before
        after = _all_yaml(data)
        assert all(unseal(ct).startswith(MAGIC) for y in after for ct in _ciphertexts(y)) and len(after) == 3
        assert all("# keep me" in y for y in after)
        # The old payloads no longer open anything: they were unbound, now refused.
        for ct in _ciphertexts(after[1]):
            try:
                cipher.decrypt(unseal(ct))
                raise AssertionError("a v2 payload opened as v1")
            except Exception as e:
                assert type(e).__name__ == "DecryptionError"
        status, _, body = env.request("GET", f"/environments/{ORG}/app/dev/decrypt")
        assert status == 200 and SECRET in body and "# keep me" in body
        status, _, body = env.request("GET", "/environments/other/app/dev/decrypt", token=other)
        assert status == 200 and "two" in body
        # An old ciphertext pasted in afterwards is refused (unbound).
        (old_ct,) = _ciphertexts(before[1])
        status, _, body = env.request("PATCH", f"/environments/{ORG}/app/dev",
                                      f"values:\n  pw:\n    fn::secret:\n      ciphertext: {old_ct}\n")
        assert status == 400 and "old format" in body["message"], body
        assert "re-encrypted the ciphertexts of 3 revisions" in server.log_path.read_text()
    finally:
        server.stop()
    assert db_execute(data, "SELECT value FROM meta WHERE key=?", (FORMAT_META,)) == [(FORMAT,)]
    assert db_execute(data, "SELECT count(*) FROM org_keys") == [(2,)]
    migrated = _all_yaml(data)
    server = ServerProcess(data).start()  # a second start changes nothing
    try:
        assert _all_yaml(data) == migrated and len(_backups(data)) == 1
    finally:
        server.stop()


def test_org_data_keys_are_wrapped_for_their_org(tmp_path: Path) -> None:
    from esc_pulumi.errors import DecryptionError
    from esc_pulumi.server.keys import OrgKeyring

    store = open_store(tmp_path, database_for(tmp_path))
    ring = OrgKeyring(AesGcmCipher(bytes(32)), store)
    a = ring.for_env("acme", "p", "e", create=True)
    ring.for_env("other", "p", "e", create=True)
    payload = a.encrypt(b"x")
    assert a.decrypt(payload) == b"x"
    # Another process sees the same key; a wrapped key swapped between orgs does not unwrap.
    assert OrgKeyring(AesGcmCipher(bytes(32)), store).for_env("acme", "p", "e").decrypt(payload) == b"x"
    swapped = store.get_org_key("other")
    assert store.put_org_key("acme", b"ignored") == store.get_org_key("acme")  # the first one stays
    db_execute(tmp_path, "UPDATE org_keys SET wrapped=? WHERE org='acme'", (swapped,))
    try:
        OrgKeyring(AesGcmCipher(bytes(32)), store).for_env("acme", "p", "e")
        raise AssertionError("a swapped org key unwrapped")
    except DecryptionError as e:
        assert "data key of organisation acme" in str(e)
    store.close()
    assert base64  # imported for readers of ciphertexts in failures
