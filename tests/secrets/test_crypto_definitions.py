"""esc_pulumi.secrets.crypto and esc_pulumi.secrets.definitions: keys, AES-GCM, and the comment-keeping
encrypt/decrypt of ``fn::secret`` in definitions."""
from __future__ import annotations

import base64
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esc_pulumi.secrets.crypto import AesGcmCipher, create_key_file, key_from_passphrase, local_cipher, read_key_file
from esc_pulumi.secrets.definitions import decrypt_secrets, encrypt_secrets, plaintext_secrets
from esc_pulumi.errors import DecryptionError, EscError
from esc_pulumi.esc import evaluate, load_definition, to_plain

KEY = bytes(range(32))
CIPHER = AesGcmCipher(KEY)


def _open(text: str, cipher: AesGcmCipher = CIPHER) -> dict:
    decl, diags = load_definition(text, "t")
    assert not [d for d in diags if d.is_error], diags
    value, diags = evaluate(decl, mode="open", decrypter=cipher.decrypt)
    assert not [d for d in diags if d.is_error], diags
    return to_plain(value)


# -- crypto ----------------------------------------------------------------------------------------


def test_cipher_round_trip_and_wrong_key() -> None:
    payload = CIPHER.encrypt(b"hunter2")
    assert payload != CIPHER.encrypt(b"hunter2")  # random nonce
    assert CIPHER.decrypt(payload) == b"hunter2"
    with pytest.raises(DecryptionError) as e:
        AesGcmCipher(bytes(32)).decrypt(payload)
    assert "hunter2" not in str(e.value) and "wrong passphrase or key" in str(e.value)
    with pytest.raises(DecryptionError):
        CIPHER.decrypt(payload[:-1] + bytes([payload[-1] ^ 1]))
    with pytest.raises(DecryptionError):
        CIPHER.decrypt(b"short")
    assert "key" in repr(CIPHER) and str(KEY) not in repr(CIPHER)
    with pytest.raises(EscError):
        AesGcmCipher(b"too short")


def test_passphrase_key_is_stable_and_cached() -> None:
    a = key_from_passphrase("correct horse")
    assert len(a) == 32 and a == key_from_passphrase("correct horse")
    assert key_from_passphrase.cache_info().hits >= 1
    assert a != key_from_passphrase("correct horse!")


def test_key_files(tmp_path) -> None:
    path = tmp_path / "k" / "server.key"
    key = create_key_file(path)
    assert read_key_file(path) == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(FileExistsError):
        create_key_file(path)
    (tmp_path / "bad.key").write_text("not base64!!")
    with pytest.raises(EscError):
        read_key_file(tmp_path / "bad.key")
    (tmp_path / "short.key").write_text(base64.b64encode(b"abc").decode())
    with pytest.raises(EscError):
        read_key_file(tmp_path / "short.key")
    with pytest.raises(EscError):
        read_key_file(tmp_path / "missing.key")


def test_racing_key_file_creators_and_readers(tmp_path) -> None:
    """Servers starting together: one creator wins, the others get FileExistsError, and a
    reader never finds the file without its whole key (it appears complete or not at all)."""
    import threading

    path = tmp_path / "server.key"
    won: list[bytes] = []
    lost: list[BaseException] = []
    seen: list[bytes] = []
    stop = threading.Event()

    def create() -> None:
        try:
            won.append(create_key_file(path))
        except FileExistsError as e:
            lost.append(e)

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(path.read_bytes())
            except FileNotFoundError:
                pass

    reader = threading.Thread(target=read)
    reader.start()
    creators = [threading.Thread(target=create) for _ in range(8)]
    for t in creators:
        t.start()
    for t in creators:
        t.join()
    stop.set()
    reader.join()
    assert len(won) == 1 and len(lost) == 7
    assert set(seen) <= {path.read_bytes()}
    assert read_key_file(path) == won[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["server.key"]  # no temporary file left


def test_local_cipher(tmp_path) -> None:
    assert local_cipher({}) is None
    c = local_cipher({"ESC_PULUMI_PASSPHRASE": "pp"})
    assert c is not None and c.decrypt(AesGcmCipher(key_from_passphrase("pp")).encrypt(b"x")) == b"x"
    path = tmp_path / "f.key"
    key = create_key_file(path)
    c = local_cipher({"ESC_PULUMI_KEY_FILE": str(path)})
    assert c is not None and AesGcmCipher(key).decrypt(c.encrypt(b"y")) == b"y"
    # both set: refused, never one silently preferred
    with pytest.raises(EscError, match="both ESC_PULUMI_PASSPHRASE and ESC_PULUMI_KEY_FILE"):
        local_cipher({"ESC_PULUMI_PASSPHRASE": "pp", "ESC_PULUMI_KEY_FILE": str(path)})


# -- definitions ---------------------------------------------------------------------------------

BLOCK = """# top comment
imports:
  - base   # the base
values:
  # a comment before the secret
  password:
    fn::secret: hunter2   # trailing comment
  plain: keep me
  list:
    - fn::secret: in-a-list
    - not secret
  block:
    fn::secret: |
      line one
      line two
  deferred:
    fn::secret:
      on-next-line
"""

FLOW = """values:
  password: {fn::secret: hunter2}   # flow
  seq: [{fn::secret: "a b"}, plain]
  compact: [fn::secret: "yes"]
  spread: {
    fn::secret: 'multi word'
  }
"""


def test_encrypt_block_style_keeps_comments_and_layout() -> None:
    out = encrypt_secrets(BLOCK, CIPHER.encrypt)
    for comment in ("# top comment", "# the base", "# a comment before the secret", "# trailing comment"):
        assert comment in out
    assert "hunter2" not in out and "in-a-list" not in out and "line one" not in out
    assert "on-next-line" not in out
    assert "  password:\n    fn::secret:\n      ciphertext: ZXNjeA" in out
    assert "    - fn::secret:\n        ciphertext: ZXNjeA" in out
    assert "  plain: keep me\n" in out
    assert plaintext_secrets(out) == []
    assert _open(out.replace("  - base   # the base\n", "")) == _open(BLOCK.replace("  - base   # the base\n", ""))


def test_encrypt_flow_style_stays_flow() -> None:
    out = encrypt_secrets(FLOW, CIPHER.encrypt)
    assert "  password: {fn::secret: {ciphertext: ZXNjeA" in out and "}}   # flow" in out
    assert "seq: [{fn::secret: {ciphertext: ZXNjeA" in out and "}}, plain]" in out
    assert "compact: [fn::secret: {ciphertext: ZXNjeA" in out
    assert _open(out) == _open(FLOW) == {
        "password": "hunter2", "seq": ["a b", "plain"], "compact": ["yes"], "spread": "multi word"}


@pytest.mark.parametrize("text", [BLOCK, FLOW])
def test_round_trip_and_idempotence(text: str) -> None:
    sealed = encrypt_secrets(text, CIPHER.encrypt)
    assert encrypt_secrets(sealed, CIPHER.encrypt) == sealed  # already encrypted: left alone
    opened = decrypt_secrets(sealed, CIPHER.decrypt)
    assert decrypt_secrets(opened, CIPHER.decrypt) == opened  # nothing left to decrypt
    assert plaintext_secrets(opened) == plaintext_secrets(text)
    body = lambda t: t.replace("  - base   # the base\n", "")  # noqa: E731 - no loader here
    assert _open(body(opened)) == _open(body(text))
    # plain-looking scalars come back byte for byte, comments included
    if text is BLOCK:
        assert "    fn::secret: hunter2   # trailing comment\n" in opened
        assert opened.startswith("# top comment\n")


def test_plaintext_secrets_paths() -> None:
    assert plaintext_secrets(BLOCK) == sorted(
        ["values.password", "values.list[0]", "values.block", "values.deferred"])
    assert plaintext_secrets("values: {a: 1}\n") == []
    assert plaintext_secrets("") == []
    assert plaintext_secrets("values: {x: {fn::secret: '${a}'}}\n") == []  # an interpolation is not a literal


def test_wrong_key_and_bad_envelope() -> None:
    sealed = encrypt_secrets(BLOCK, CIPHER.encrypt)
    with pytest.raises(DecryptionError) as e:
        decrypt_secrets(sealed, AesGcmCipher(bytes(32)).decrypt)
    assert "hunter2" not in str(e.value)
    with pytest.raises(DecryptionError):
        decrypt_secrets("values: {a: {fn::secret: {ciphertext: bm90LWFuLWVudmVsb3Bl}}}\n", CIPHER.decrypt)


def test_unparseable_and_odd_inputs_are_left_alone() -> None:
    for text in ("", "values: [unclosed\n", "values:\n  n: {fn::secret: 12}\n", "- a\n- b\n"):
        assert encrypt_secrets(text, CIPHER.encrypt) == text
        assert decrypt_secrets(text, CIPHER.decrypt) == text


def test_dollar_escapes_survive() -> None:
    text = "values:\n  a: {fn::secret: \"pa$$word\"}\n  b: {fn::secret: \"$${not-interp}\"}\n"
    assert _open(text) == {"a": "pa$word", "b": "${not-interp}"}
    round_tripped = decrypt_secrets(encrypt_secrets(text, CIPHER.encrypt), CIPHER.decrypt)
    assert _open(round_tripped) == _open(text)


_secret_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"), max_size=40)


@settings(max_examples=150, deadline=None)
@given(secret=_secret_text, style=st.sampled_from(["block", "flow", "list"]))
def test_any_secret_round_trips(secret: str, style: str) -> None:
    import json

    quoted = json.dumps(secret.replace("$", "$$"), ensure_ascii=False)
    text = {
        "block": f"values:\n  s:\n    fn::secret: {quoted}  # c\n  other: 1\n",
        "flow": f"values: {{s: {{fn::secret: {quoted}}}, other: 1}}\n",
        "list": f"values:\n  s:\n    - fn::secret: {quoted}\n  other: 1\n",
    }[style]
    decl, diags = load_definition(text, "t")
    if decl is None or any(d.is_error for d in diags):
        return  # not a string YAML can carry this way
    expected = _open(text)
    sealed = encrypt_secrets(text, CIPHER.encrypt)
    assert plaintext_secrets(sealed) == []
    assert quoted not in sealed
    assert _open(sealed) == expected
    assert _open(decrypt_secrets(sealed, CIPHER.decrypt)) == expected
