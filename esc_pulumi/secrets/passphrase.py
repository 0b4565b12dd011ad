"""Pulumi's passphrase secrets manager: the ``secure:`` values of a DIY stack file.

What the Pulumi CLI does (``spec/pulumi-integration.md``, "The passphrase secrets manager"):

- the stack file holds ``encryptionsalt: v1:<base64 salt>:<ciphertext of "pulumi">``;
- the key is PBKDF2-HMAC-SHA256(passphrase, salt, 1 000 000 iterations, 32 bytes);
- a secret is ``v1:<base64 12-byte nonce>:<base64 AES-256-GCM ciphertext and tag>``;
- the passphrase comes from ``PULUMI_CONFIG_PASSPHRASE``, else from the file named by
  ``PULUMI_CONFIG_PASSPHRASE_FILE``; a passphrase that cannot decrypt the salt's check value
  is an incorrect one.

Example::

    crypter = PassphraseCrypter.from_stack(
        {"encryptionsalt": "v1:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ=="},
        {"PULUMI_CONFIG_PASSPHRASE": "password"},
        where="Pulumi.dev.yaml",
    )
    token = crypter.encrypt("hunter2")      # 'v1:...:...'
    crypter.decrypt(token)                  # 'hunter2'

Deriving the key costs about half a second (that is the point of a million iterations), so a
crypter derives it once, when it is made, and keeps it (never in its repr).
"""
from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from ..errors import ConfigurationError, DecryptionError

__all__ = [
    "CHECK_TEXT",
    "ITERATIONS",
    "PASSPHRASE_FILE_VAR",
    "PASSPHRASE_VAR",
    "PassphraseCrypter",
    "is_passphrase_stack",
    "new_salt_state",
    "read_passphrase",
]

PASSPHRASE_VAR = "PULUMI_CONFIG_PASSPHRASE"
PASSPHRASE_FILE_VAR = "PULUMI_CONFIG_PASSPHRASE_FILE"
ITERATIONS = 1_000_000
KEY_SIZE = 32
NONCE_SIZE = 12
SALT_SIZE = 8
TAG_SIZE = 16
CHECK_TEXT = "pulumi"
VERSION = "v1"
PROVIDER = "passphrase"

# Go's unicode.IsSpace (strings.TrimSpace), which the CLI applies to a passphrase file.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"

_HOW = f"set {PASSPHRASE_VAR} (or {PASSPHRASE_FILE_VAR}) to the stack's passphrase"


def read_passphrase(environ: Mapping[str, str], *, base_dir: str | os.PathLike[str] | None = None) -> str | None:
    """The passphrase as the Pulumi CLI finds it, or ``None`` when neither variable is set.

    ``PULUMI_CONFIG_PASSPHRASE`` (even empty) wins; else the file named by
    ``PULUMI_CONFIG_PASSPHRASE_FILE`` (relative to ``base_dir``, the directory the CLI runs
    in), with surrounding white space removed. An unreadable file is a
    :class:`ConfigurationError` naming it.

    Example::

        read_passphrase({"PULUMI_CONFIG_PASSPHRASE": "password"})   # 'password'
    """
    if PASSPHRASE_VAR in environ:
        return environ[PASSPHRASE_VAR]
    name = environ.get(PASSPHRASE_FILE_VAR)
    if not name:
        return None
    path = Path(name)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigurationError(
            f"cannot read {PASSPHRASE_FILE_VAR} {path}: {e.strerror or e.__class__.__name__}"
        ) from None
    except UnicodeError:
        raise ConfigurationError(f"{PASSPHRASE_FILE_VAR} {path} is not UTF-8 text") from None
    return text.strip(_GO_SPACE)


def is_passphrase_stack(document: Mapping[str, Any]) -> bool:
    """Whether a stack file's secrets belong to the passphrase manager: no ``secretsprovider:``
    or ``secretsprovider: passphrase``. (A Pulumi Cloud stack has neither that key nor an
    ``encryptionsalt``: its secrets are the service's; see :meth:`PassphraseCrypter.from_stack`.)

    Example::

        is_passphrase_stack({"secretsprovider": "awskms://alias/x"})     # False
    """
    provider = document.get("secretsprovider")
    return provider is None or provider == "" or provider == PROVIDER


def _derive(passphrase: str, salt: bytes) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, iterations=ITERATIONS)
    return kdf.derive(passphrase.encode("utf-8"))


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _seal(key: bytes, plaintext: str) -> str:
    nonce = os.urandom(NONCE_SIZE)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), None)
    return f"{VERSION}:{base64.b64encode(nonce).decode()}:{base64.b64encode(sealed).decode()}"


def _open(key: bytes, ciphertext: str) -> str | None:
    """The plaintext, or ``None`` when ``ciphertext`` is malformed or the key is wrong."""
    if not isinstance(ciphertext, str):
        return None
    parts = ciphertext.split(":")
    if len(parts) != 3 or parts[0] != VERSION:
        return None
    try:
        nonce, sealed = _b64decode(parts[1]), _b64decode(parts[2])
    except (binascii.Error, ValueError):
        return None
    if len(nonce) != NONCE_SIZE or len(sealed) < TAG_SIZE:
        return None
    try:
        plain = AESGCM(key).decrypt(nonce, sealed, None)
    except InvalidTag:
        return None
    try:
        return plain.decode("utf-8")
    except UnicodeError:
        return None


def _parse_salt_state(state: Any, where: str) -> tuple[bytes, str]:
    """``v1:<salt>:<check ciphertext>`` → (salt, check ciphertext)."""
    bad = ConfigurationError(
        f"{where}: encryptionsalt is not of the form v1:<base64 salt>:v1:<nonce>:<ciphertext>"
    )
    if not isinstance(state, str):
        raise bad
    parts = state.split(":", 2)
    if len(parts) != 3 or parts[0] != VERSION:
        raise bad
    try:
        salt = _b64decode(parts[1])
    except (binascii.Error, ValueError):
        raise bad from None
    if not salt:
        raise bad
    return salt, parts[2]


@dataclass(frozen=True)
class PassphraseCrypter:
    """Encrypts and decrypts ``secure:`` values of one stack with its passphrase.

    Made by :meth:`from_stack` (or :meth:`from_salt_state`), which derives the key once and
    checks it against the salt's check value. ``where`` names the stack file in errors. The
    key is never shown by ``repr`` nor compared.

    Example::

        c = PassphraseCrypter.from_salt_state(new_salt_state("s3cret"), "s3cret", where="Pulumi.dev.yaml")
        c.decrypt(c.encrypt("a value"))       # 'a value'
    """

    salt_state: str
    where: str
    _key: bytes = field(repr=False, compare=False)

    def __repr__(self) -> str:
        return f"PassphraseCrypter(where={self.where!r}, salt_state={self.salt_state!r})"

    @classmethod
    def from_salt_state(cls, salt_state: str, passphrase: str, *, where: str) -> "PassphraseCrypter":
        """A crypter for ``salt_state`` (a stack's ``encryptionsalt``) and ``passphrase``.

        A passphrase that does not decrypt the check value to ``pulumi`` is a
        :class:`DecryptionError` ("incorrect passphrase") naming ``where``.

        Example::

            PassphraseCrypter.from_salt_state(
                "v1:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ==",
                "password", where="Pulumi.dev.yaml")
        """
        salt, check = _parse_salt_state(salt_state, where)
        key = _derive(passphrase, salt)
        if _open(key, check) != CHECK_TEXT:
            raise DecryptionError(f"{where}: incorrect passphrase: {_HOW}")
        return cls(salt_state, where, key)

    @classmethod
    def from_stack(
        cls, document: Mapping[str, Any], environ: Mapping[str, str], *, where: str,
        base_dir: str | os.PathLike[str] | None = None,
    ) -> "PassphraseCrypter | None":
        """The crypter of a stack file (``document``: the whole file as data), or ``None`` when
        the stack's secrets are not the passphrase manager's: a ``secretsprovider:`` other than
        ``passphrase``, or no ``encryptionsalt`` (the Pulumi CLI decides then: a Pulumi Cloud
        stack uses the service, a new DIY stack gets a salt from the CLI).

        The passphrase comes from ``environ`` (:func:`read_passphrase`; ``base_dir`` resolves
        a relative ``PULUMI_CONFIG_PASSPHRASE_FILE``); none set, or an incorrect one, is a
        :class:`DecryptionError` naming ``where`` and saying what to set.

        Example::

            PassphraseCrypter.from_stack({"secretsprovider": "awskms://alias/x"}, {}, where="f")  # None
        """
        if not is_passphrase_stack(document):
            return None
        state = document.get("encryptionsalt")
        if state is None or state == "":
            return None
        passphrase = read_passphrase(environ, base_dir=base_dir)
        if passphrase is None:
            raise DecryptionError(f"{where}: the stack's secrets use a passphrase: {_HOW}")
        return cls.from_salt_state(state, passphrase, where=where)

    def encrypt(self, plaintext: str) -> str:
        """``v1:<nonce>:<ciphertext>`` of ``plaintext``, with a fresh random nonce.

        Example::

            crypter.encrypt("hunter2")     # 'v1:3q2+7w==...:...' (different every time)
        """
        return _seal(self._key, plaintext)

    def decrypt(self, ciphertext: str) -> str:
        """The plaintext of a ``v1:`` ciphertext of this stack; a malformed one or one made
        with another key is a :class:`DecryptionError` (which never quotes the ciphertext).

        Example::

            crypter.decrypt(crypter.encrypt("hunter2"))     # 'hunter2'
        """
        plain = _open(self._key, ciphertext)
        if plain is None:
            raise DecryptionError(
                f"{self.where}: cannot decrypt a secure value: it is malformed or was encrypted "
                "with another passphrase or salt"
            )
        return plain


def new_salt_state(passphrase: str) -> str:
    """A new ``encryptionsalt`` for ``passphrase`` (random 8-byte salt), as the CLI writes it
    into a stack file the first time the stack needs one.

    Example::

        state = new_salt_state("s3cret")       # 'v1:<salt>:v1:<nonce>:<ciphertext>'
    """
    salt = os.urandom(SALT_SIZE)
    key = _derive(passphrase, salt)
    return f"{VERSION}:{base64.b64encode(salt).decode()}:{_seal(key, CHECK_TEXT)}"
