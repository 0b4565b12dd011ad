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
import tempfile
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
    "key_source",
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

    def encrypt(self, plaintext: bytes, aad: bytes | None = None) -> bytes:
        """``nonce || ciphertext`` of ``plaintext``, authenticating ``aad`` (associated data:
        not stored, the same must be given to decrypt)."""
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, bytes(plaintext), aad)

    def decrypt(self, payload: bytes, aad: bytes | None = None) -> bytes:
        """The plaintext of ``payload``; :class:`DecryptionError` if the key is wrong, the
        associated data differs or the payload was tampered with (the message never holds data)."""
        if len(payload) < NONCE_SIZE + 16:
            raise DecryptionError(_DECRYPT_FAILED)
        try:
            return self._aead.decrypt(bytes(payload[:NONCE_SIZE]), bytes(payload[NONCE_SIZE:]), aad)
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
    """The 32-byte key in ``path``. Accepted formats: the key base64-encoded on one line (what
    :func:`create_key_file` and ``esc-pulumi env keygen`` write), 64 hex digits, or the 32 raw
    bytes (``head -c 32 /dev/urandom > key``).

    Example::

        key = read_key_file("server.key")
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise EscError(
            f"key file {p} does not exist: create one with `esc-pulumi env keygen {p}`"
        ) from None
    except OSError as e:
        raise EscError(f"cannot read key file {p}: {e.strerror or e.__class__.__name__}") from None
    text = data.strip()
    if len(text) == 2 * KEY_SIZE and all(c in b"0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text.decode("ascii"))
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) == KEY_SIZE:
        return key
    if len(data) == KEY_SIZE:
        return data  # raw random bytes (checked after the text forms: those are never 32 bytes long)
    raise EscError(
        f"key file {p} does not hold a {KEY_SIZE}-byte key (base64 on one line, 64 hex digits, or "
        f"{KEY_SIZE} raw bytes): create one with `esc-pulumi env keygen FILE`"
    )


def create_key_file(path: str | os.PathLike[str]) -> bytes:
    """Write a new random key, base64, to ``path`` (mode 0600, refusing to overwrite).

    Example::

        key = create_key_file("server.key")
    """
    p = Path(path)
    key = os.urandom(KEY_SIZE)
    p.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under a temporary name, then linked into place: a server starting at the
    # same moment sees no file or the whole key, never an empty one; and the link fails if
    # the file exists, so two servers starting at once never each write a different key.
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:  # mkstemp's mode is 0600
            f.write(base64.b64encode(key).decode("ascii") + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, p)  # FileExistsError if another process was first
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: exclusive create, written at once
            with os.fdopen(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="ascii") as f:
                f.write(base64.b64encode(key).decode("ascii") + "\n")
                f.flush()
                os.fsync(f.fileno())
    finally:
        os.unlink(tmp)
    return key


def local_cipher(environ: Mapping[str, str] = os.environ) -> AesGcmCipher | None:
    """The cipher from ``ESC_PULUMI_PASSPHRASE`` or ``ESC_PULUMI_KEY_FILE`` (both set is an
    error); ``None`` if neither is set.

    Example::

        cipher = local_cipher({"ESC_PULUMI_PASSPHRASE": "s3cret"})
    """
    passphrase = environ.get("ESC_PULUMI_PASSPHRASE")
    key_file = environ.get("ESC_PULUMI_KEY_FILE")
    if passphrase and key_file:
        # Silently preferring one would encrypt with a key the user did not mean.
        raise EscError("both ESC_PULUMI_PASSPHRASE and ESC_PULUMI_KEY_FILE are set: unset one of them")
    if passphrase:
        return AesGcmCipher(key_from_passphrase(passphrase))
    if key_file:
        return AesGcmCipher(read_key_file(key_file))
    return None


def key_source(environ: Mapping[str, str] = os.environ) -> str:
    """Which setting :func:`local_cipher` takes its key from (for messages)."""
    if environ.get("ESC_PULUMI_PASSPHRASE"):
        return "ESC_PULUMI_PASSPHRASE"
    if environ.get("ESC_PULUMI_KEY_FILE"):
        return f"ESC_PULUMI_KEY_FILE ({environ['ESC_PULUMI_KEY_FILE']})"
    return "no key"
