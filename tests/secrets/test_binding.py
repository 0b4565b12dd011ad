"""Bound (format 2) ciphertexts: AES-GCM with the place they belong to as associated data."""
from __future__ import annotations

import pytest

from esc_pulumi.secrets.binding import (
    MAGIC, BoundCipher, MovedCiphertext, UnboundCiphertext, file_binding, server_binding,
)
from esc_pulumi.secrets.crypto import AesGcmCipher
from esc_pulumi.secrets.definitions import decrypt_secrets, encrypt_secrets, reseal_secrets

KEY = AesGcmCipher(bytes(range(32)))


def test_a_payload_opens_only_with_its_binding() -> None:
    here = BoundCipher(KEY, server_binding("acme", "p", "e"))
    payload = here.encrypt(b"hunter2")
    assert payload.startswith(MAGIC) and here.decrypt(payload) == b"hunter2" and here.is_current(payload)
    for other in (server_binding("other", "p", "e"), server_binding("acme", "p", "f"),
                  server_binding("acme", "q", "e"), file_binding("p/e")):
        with pytest.raises(MovedCiphertext) as e:
            BoundCipher(KEY, other).decrypt(payload)
        assert "another organisation or environment" in str(e.value) and "hunter2" not in str(e.value)
    # Names cannot be re-split to forge a binding.
    assert server_binding("a", "b/c", "d") != server_binding("a", "b", "c/d")


def test_unbound_payloads_need_a_legacy_cipher() -> None:
    old = KEY.encrypt(b"x")
    with pytest.raises(UnboundCiphertext):
        BoundCipher(KEY, file_binding("p/e")).decrypt(old)
    assert BoundCipher(KEY, file_binding("p/e"), legacy=KEY).decrypt(old) == b"x"
    # A format-1 payload whose random nonce begins with the marker still opens as format 1.


def test_a_format_1_nonce_that_begins_with_the_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    import esc_pulumi.secrets.crypto as crypto

    monkeypatch.setattr(crypto.os, "urandom", lambda n: (MAGIC + bytes(n))[:n])
    old = KEY.encrypt(b"x" * 20)
    monkeypatch.undo()
    assert old.startswith(MAGIC)
    assert BoundCipher(KEY, file_binding("p/e"), legacy=KEY).decrypt(old) == b"x" * 20
    with pytest.raises(MovedCiphertext):
        BoundCipher(KEY, file_binding("p/e")).decrypt(old)  # no legacy: refused


def test_reseal_rewrites_only_the_envelopes() -> None:
    a = BoundCipher(KEY, server_binding("acme", "p", "a"), legacy=KEY)
    b = BoundCipher(KEY, server_binding("acme", "p", "b"))
    text = "# top\nvalues:\n  pw:\n    fn::secret: hunter2  # keep\n  other: {fn::secret: two}\n  plain: x\n"
    sealed = encrypt_secrets(text, a.encrypt)
    moved = reseal_secrets(sealed, a.decrypt, b.encrypt)
    assert moved != sealed and moved.count("ciphertext:") == 2 and "# keep" in moved and "# top" in moved
    assert decrypt_secrets(moved, b.decrypt) == decrypt_secrets(sealed, a.decrypt)
    assert reseal_secrets(moved, b.decrypt, b.encrypt, keep=b.is_current) == moved
    with pytest.raises(MovedCiphertext) as e:
        reseal_secrets(moved, a.decrypt, b.encrypt)
    assert "values.other" in str(e.value) or "values.pw" in str(e.value)
