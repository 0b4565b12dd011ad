"""Symmetric encryption of secrets: AES-256-GCM with a key from a passphrase or a key file.

The payload format is ``nonce (12 bytes) || AES-GCM ciphertext+tag``; the ESC envelope
(:mod:`esc_pulumi.esc.envelope`) wraps it for ``fn::secret: {ciphertext: ...}``.

Example::

    from esc_pulumi.secrets.crypto import AesGcmCipher, key_from_passphrase

    cipher = AesGcmCipher(key_from_passphrase("correct horse battery staple"))
    payload = cipher.encrypt(b"hunter2")
    assert cipher.decrypt(payload) == b"hunter2"
"""
from __future__ import annotations

import base64
import binascii
import functools
import os
from pathlib import Path
from typing import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..errors import DecryptionError, EscError

__all__ = [
    "AesGcmCipher",
    "KEY_SIZE",
    "PASSPHRASE_SALT",
    "create_key_file",
    "key_from_passphrase",
    "local_cipher",
    "read_key_file",
]

KEY_SIZE = 32
NONCE_SIZE = 12

# A fixed, public salt: the passphrase must derive the same key on every machine without any
# state beside it (teams share a passphrase, not a salt file). Changing it makes every existing
# ciphertext unreadable, hence the version in the text.
PASSPHRASE_SALT = b"esc_pulumi/passphrase/v1"
# scrypt cost: N=2**15, r=8, p=1 (~32 MiB, ~0.1 s): the interactive-login figures of the scrypt paper.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1

_DECRYPT_FAILED = "cannot decrypt: wrong passphrase or key, or corrupted data"


class AesGcmCipher:
    """AES-256-GCM with a random 96-bit nonce per message.

    Example::

        c = AesGcmCipher(os.urandom(32))
        c.decrypt(c.encrypt(b"x")) == b"x"
    """

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_SIZE:
            raise EscError(f"an AES-256-GCM key is {KEY_SIZE} bytes")
        self._aead = AESGCM(bytes(key))

    def __repr__(self) -> str:  # never show the key
        return "AesGcmCipher(<key>)"

    def encrypt(self, plaintext: bytes) -> bytes:
        """``nonce || ciphertext`` of ``plaintext``."""
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, bytes(plaintext), None)

    def decrypt(self, payload: bytes) -> bytes:
        """The plaintext of ``payload``; :class:`DecryptionError` if the key is wrong or the
        payload was tampered with (the message never holds data)."""
        if len(payload) < NONCE_SIZE + 16:
            raise DecryptionError(_DECRYPT_FAILED)
        try:
            return self._aead.decrypt(bytes(payload[:NONCE_SIZE]), bytes(payload[NONCE_SIZE:]), None)
        except (InvalidTag, ValueError):
            raise DecryptionError(_DECRYPT_FAILED) from None


@functools.lru_cache(maxsize=16)
def key_from_passphrase(passphrase: str) -> bytes:
    """The 32-byte key scrypt derives from ``passphrase`` with :data:`PASSPHRASE_SALT`.

    Cached per passphrase: the derivation is deliberately slow.

    Example::

        len(key_from_passphrase("s3cret")) == 32
    """
    if not passphrase:
        raise EscError("the passphrase is empty")
    kdf = Scrypt(salt=PASSPHRASE_SALT, length=KEY_SIZE, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    return kdf.derive(passphrase.encode("utf-8"))


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """The key stored base64 in ``path`` (as :func:`create_key_file` writes it).

    Example::

        key = read_key_file("server.key")
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise EscError(f"key file {p} does not exist: create it with a fresh random key") from None
    except (OSError, UnicodeDecodeError) as e:
        raise EscError(f"cannot read key file {p}: {e.__class__.__name__}") from None
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EscError(f"key file {p} does not hold a base64 key") from None
    if len(key) != KEY_SIZE:
        raise EscError(f"key file {p} holds {len(key)} bytes; a key is {KEY_SIZE} bytes")
    return key


def create_key_file(path: str | os.PathLike[str]) -> bytes:
    """Write a new random key, base64, to ``path`` (mode 0600, refusing to overwrite).

    Example::

        key = create_key_file("server.key")
    """
    p = Path(path)
    key = os.urandom(KEY_SIZE)
    p.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two servers starting at once must not each write a different key.
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(base64.b64encode(key).decode("ascii") + "\n")
        f.flush()
        os.fsync(f.fileno())
    return key


def local_cipher(environ: Mapping[str, str] = os.environ) -> AesGcmCipher | None:
    """The cipher from ``ESC_PULUMI_PASSPHRASE``, else ``ESC_PULUMI_KEY_FILE``; ``None`` if
    neither is set.

    Example::

        cipher = local_cipher({"ESC_PULUMI_PASSPHRASE": "s3cret"})
    """
    passphrase = environ.get("ESC_PULUMI_PASSPHRASE")
    if passphrase:
        return AesGcmCipher(key_from_passphrase(passphrase))
    key_file = environ.get("ESC_PULUMI_KEY_FILE")
    if key_file:
        return AesGcmCipher(read_key_file(key_file))
    return None
