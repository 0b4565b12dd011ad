"""Ciphertexts bound to where they belong: AES-GCM with the owner as associated data.

A version 1 payload (``nonce || AES-GCM``, :class:`~.crypto.AesGcmCipher`) opens wherever the
key is known: copied into another environment, or another organisation of the same server, it
decrypts there. A version 2 payload authenticates its *binding* (who it was made for) as AES-GCM
associated data, so it opens only where the same binding is given::

    b"escB" || nonce (12 bytes) || AES-GCM(key, nonce, plaintext, aad=binding)

The binding is not stored in the payload (nothing in it can be trusted before it is opened):
the reader supplies the binding of the place it reads from, and a payload made for another
place fails the tag check. ``escB`` marks version 2; a version 1 payload starts with a random
nonce, which begins with ``escB`` once in 2**32: :class:`BoundCipher` with a ``legacy`` cipher
(migration, old local files) then still tries it as version 1.

Bindings: ``server_binding(org, project, env)`` for environments stored by the server,
``file_binding(name)`` for definitions of a ``file://`` backend (``project/env``).

Example::

    from esc_pulumi.secrets.crypto import AesGcmCipher

    key = AesGcmCipher(bytes(32))
    here = BoundCipher(key, server_binding("acme", "app", "dev"))
    there = BoundCipher(key, server_binding("other", "app", "dev"))
    payload = here.encrypt(b"hunter2")
    here.decrypt(payload)        # b"hunter2"
    there.decrypt(payload)       # MovedCiphertext: encrypted for another environment
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..errors import DecryptionError

if TYPE_CHECKING:  # pragma: no cover
    # Not imported at run time: importing ``cryptography`` costs ~8 ms, and loading a
    # ``file://`` backend's definitions imports this module whether or not it decrypts.
    from .crypto import AesGcmCipher

__all__ = [
    "MAGIC",
    "BoundCipher",
    "MovedCiphertext",
    "UnboundCiphertext",
    "file_binding",
    "is_bound",
    "server_binding",
]

MAGIC = b"escB"
_TAG = 16

MOVED_SERVER = (
    "the secret cannot be decrypted here: it was encrypted for another organisation or environment "
    "(or it was altered); re-enter it as plaintext (fn::secret: value) to encrypt it for this environment"
)
MOVED_FILE = (
    "the secret cannot be decrypted here: wrong passphrase or key (ESC_PULUMI_PASSPHRASE, ESC_PULUMI_KEY_FILE), "
    "or it was encrypted for another environment (a moved or copied definition); to move a definition, run "
    "`esc-pulumi env decrypt` on it before moving it and `esc-pulumi env encrypt` after"
)
INLINE_REFUSED = (
    "an anonymous definition cannot hold ciphertexts: a ciphertext decrypts only in the stored "
    "environment it was encrypted for; write the secret as plaintext (fn::secret: value), or import "
    "that environment"
)
UNBOUND_SERVER = (
    "the secret's ciphertext is in the old format, which is not bound to an environment and is no "
    "longer accepted; re-enter it as plaintext (fn::secret: value) to encrypt it for this environment"
)


class MovedCiphertext(DecryptionError):
    """A version 2 ciphertext that does not open with this binding: made for another place (or
    with another key, or altered). The message never holds data."""


class UnboundCiphertext(DecryptionError):
    """A version 1 (unbound) ciphertext where only bound ones are accepted."""


def _aad(kind: str, *parts: str) -> bytes:
    # JSON of a list: unambiguous whatever the names hold (no separator to smuggle in).
    return json.dumps(["esc_pulumi ciphertext v2", kind, *parts], separators=(",", ":")).encode("utf-8")


def server_binding(org: str, project: str, env: str) -> bytes:
    """The associated data of a secret of the stored environment ``org/project/env``."""
    return _aad("server", org, project, env)


def file_binding(name: str) -> bytes:
    """The associated data of a secret of the ``file://`` definition named ``name``
    (``project/env``, as the local backend names it)."""
    return _aad("file", name)


def org_key_binding(org: str) -> bytes:
    """The associated data of organisation ``org``'s data key, wrapped by the server key."""
    return _aad("org-key", org)


def is_bound(payload: bytes) -> bool:
    """Whether ``payload`` is (marked as) a version 2, bound, payload."""
    from .crypto import NONCE_SIZE

    return payload[: len(MAGIC)] == MAGIC and len(payload) >= len(MAGIC) + NONCE_SIZE + _TAG


class BoundCipher:
    """Encrypts and decrypts the secrets of one place (``binding``) with ``cipher``.

    ``legacy``: the cipher version 1 payloads are opened with (None: they are refused with
    :class:`UnboundCiphertext`). ``moved``: the message of :class:`MovedCiphertext`.

    Example::

        BoundCipher(org_key, server_binding("acme", "app", "dev")).encrypt(b"x")
    """

    __slots__ = ("_cipher", "_binding", "_legacy", "_moved")

    def __init__(self, cipher: AesGcmCipher | None, binding: bytes, *, legacy: AesGcmCipher | None = None,
                 moved: str = MOVED_SERVER) -> None:
        self._cipher = cipher
        self._binding = binding
        self._legacy = legacy
        self._moved = moved

    def __repr__(self) -> str:  # never show a key
        return "BoundCipher(<key>)"

    def encrypt(self, plaintext: bytes) -> bytes:
        """A version 2 payload of ``plaintext`` for this binding."""
        if self._cipher is None:  # pragma: no cover - callers encrypt with a key
            raise DecryptionError("no key to encrypt with")
        return MAGIC + self._cipher.encrypt(plaintext, MAGIC + self._binding)

    def decrypt(self, payload: bytes) -> bytes:
        """The plaintext of a payload made for this binding (or of a version 1 payload, when
        there is a ``legacy`` cipher)."""
        if is_bound(payload):
            if self._cipher is not None:
                try:
                    return self._cipher.decrypt(payload[len(MAGIC):], MAGIC + self._binding)
                except DecryptionError:
                    pass
            if self._legacy is None:
                raise MovedCiphertext(self._moved)
            try:  # a version 1 payload whose nonce happens to begin with the marker
                return self._legacy.decrypt(payload)
            except DecryptionError:
                raise MovedCiphertext(self._moved) from None
        if self._legacy is None:
            raise UnboundCiphertext(UNBOUND_SERVER)
        return self._legacy.decrypt(payload)

    def is_current(self, payload: bytes) -> bool:
        """Whether ``payload`` is a version 2 payload that opens with this binding (nothing to
        migrate)."""
        if not is_bound(payload) or self._cipher is None:
            return False
        try:
            self._cipher.decrypt(payload[len(MAGIC):], MAGIC + self._binding)
        except DecryptionError:
            return False
        return True
