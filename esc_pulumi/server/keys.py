"""The server key: where it comes from, and the check that it is the key of the data.

Secrets are stored encrypted with per-organisation data keys, which are stored wrapped by the
server key (:class:`OrgKeyring`; each ciphertext bound to its org/project/env, see
:mod:`esc_pulumi.secrets.binding`; :func:`migrate_ciphertexts` upgrades older stores). Started
with another key (a ``--key-file``
pointing elsewhere, a lost ``server.key`` that was then made anew), a server would run and
fail every open with "wrong passphrase or key". So the store keeps a *key check value*: a
fixed text encrypted with the key (AES-GCM: it tells nothing of the key, and only the same key
opens it). A server refuses to start with a key that does not open it, and says which key
source it used. A data folder made before the check existed is checked against one of its
stored ciphertexts the first time, and then gets its check value.

A key is created only for a data folder that holds no data yet; for one that does, a missing
key file is an error (a new key could not read anything stored).

Example::

    source = key_source(Path("esc-data"), None)      # <data>/server.key, the default
    cipher = open_key(source, store, create=True)    # EscError if it is not the data's key
"""
from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ..errors import DecryptionError, EscError
from ..secrets.crypto import AesGcmCipher, create_key_file, read_key_file
from ..secrets.definitions import decrypt_secrets
from .store import Store

__all__ = ["KeySource", "KeyMismatch", "OrgKeyring", "key_source", "migrate_ciphertexts", "open_key", "verify_key"]

KEY_CHECK = "key_check"
_CHECK_TEXT = b"esc_pulumi server key check v1"
ENV_VAR = "ESC_PULUMI_SERVER_KEY_FILE"


class KeyMismatch(EscError):
    """The key is not the one the data was encrypted with (the message names the source)."""


@dataclass(frozen=True)
class KeySource:
    """The key file and how it was chosen: ``--key-file``, ``$ESC_PULUMI_SERVER_KEY_FILE`` or
    the data folder's default."""

    path: Path
    origin: str

    def describe(self) -> str:
        return f"{self.path} ({self.origin})"


def key_source(data_dir: Path, key_file: Path | None = None, environ: Mapping[str, str] | None = None) -> KeySource:
    """``key_file``, else ``$ESC_PULUMI_SERVER_KEY_FILE``, else ``<data>/server.key``."""
    env = os.environ if environ is None else environ
    if key_file is not None:
        return KeySource(Path(key_file), "--key-file")
    if env.get(ENV_VAR):
        return KeySource(Path(env[ENV_VAR]), f"${ENV_VAR}")
    return KeySource(Path(data_dir) / "server.key", "the data folder's default key file")


class _Opened(Exception):
    """One ciphertext opened: the probe stops there (and the plaintext is dropped)."""


def verify_key(store: Store, cipher: AesGcmCipher, source: KeySource, data_dir: Path) -> bool:
    """Raise :class:`KeyMismatch` unless ``cipher`` is the data's key; returns whether the
    store had a check value (False: there was none to compare, or only a ciphertext)."""
    stored = store.get_meta(KEY_CHECK)  # type: ignore[attr-defined]
    mismatch = KeyMismatch(
        f"the key in {source.describe()} is not the key the data in {data_dir} was encrypted with: "
        "start with the key file that data was created with (--key-file or $ESC_PULUMI_SERVER_KEY_FILE)")
    if stored is not None:
        try:
            ok = cipher.decrypt(base64.b64decode(stored, validate=True)) == _CHECK_TEXT
        except (DecryptionError, binascii.Error, ValueError):
            ok = False
        if not ok:
            raise mismatch
        return True
    # Org data keys are wrapped by the server key: one of them checks it (version 2 data).
    some_key = store.some_org_key() if hasattr(store, "some_org_key") else None  # type: ignore[attr-defined]
    if some_key is not None:
        from ..secrets.binding import org_key_binding

        try:
            cipher.decrypt(some_key[1], org_key_binding(some_key[0]))
        except DecryptionError:
            raise mismatch from None
        return False
    text = store.some_ciphertext() if hasattr(store, "some_ciphertext") else None  # type: ignore[attr-defined]
    if text is not None:
        def probe(payload: bytes) -> bytes:
            cipher.decrypt(payload)  # DecryptionError on a wrong key
            raise _Opened()

        try:
            decrypt_secrets(text, probe)
        except _Opened:
            pass
        except DecryptionError:
            raise mismatch from None
    return False


def store_key_check(store: Store, cipher: AesGcmCipher) -> None:
    """Record the check value of ``cipher`` in ``store``."""
    store.set_meta(KEY_CHECK, base64.b64encode(cipher.encrypt(_CHECK_TEXT)).decode("ascii"))  # type: ignore[attr-defined]


def has_data(store: Store) -> bool:
    """Whether the store holds anything encrypted with some key (a check value or revisions)."""
    if store.get_meta(KEY_CHECK) is not None:  # type: ignore[attr-defined]
        return True
    return bool(getattr(store, "has_data", lambda: False)())


def open_key(source: KeySource, store: Store, data_dir: Path, create: bool = True) -> AesGcmCipher:
    """The cipher of ``source``, checked against ``store`` (and its check value recorded the
    first time). A missing key file is created only when the store holds no data yet and
    ``create`` is true; otherwise :class:`~esc_pulumi.errors.EscError` says what to do."""
    path = source.path
    # The store first, then the file: a server creating the key writes the file before the
    # check value, so one starting beside it that sees the check value also sees the file.
    data = has_data(store)
    if not path.exists():
        if data:
            raise EscError(
                f"the key file {source.describe()} does not exist, but {data_dir} holds data encrypted with "
                "a key: give the key file it was created with (--key-file or $ESC_PULUMI_SERVER_KEY_FILE)")
        if not create:
            raise EscError(f"the key file {source.describe()} does not exist")
        try:
            cipher = AesGcmCipher(create_key_file(path))
        except FileExistsError:  # another process created it first
            cipher = AesGcmCipher(_read(source))
    else:
        cipher = AesGcmCipher(_read(source))
    if not verify_key(store, cipher, source, data_dir):
        store_key_check(store, cipher)
    return cipher


def _read(source: KeySource) -> bytes:
    try:
        return read_key_file(source.path)
    except EscError as e:
        raise EscError(f"{e} ({source.origin})") from None


# -- organisation data keys (envelope encryption) ----------------------------------------------

FORMAT_META = "secrets_format"
FORMAT = "2"  # every ciphertext bound to (org, project, env) under its org's data key


class OrgKeyring:
    """The per-organisation data keys of one server process, and the bound ciphers made from
    them.

    Each organisation has a random 256-bit data key, stored wrapped (AES-GCM) by the server key
    with the organisation's name as associated data, so a wrapped key copied to another org
    does not unwrap. Unwrapped keys are cached here (per process, per keyring): an open costs
    no store read nor unwrap once the org's key is known.

    Example::

        ring = OrgKeyring(server_cipher, store)
        c = ring.for_env("acme", "app", "dev")       # BoundCipher
        c.decrypt(c.encrypt(b"x")) == b"x"
    """

    def __init__(self, server_cipher: AesGcmCipher, store: Store) -> None:
        import threading

        self._server = server_cipher
        self._store = store
        self._keys: dict[str, AesGcmCipher] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "OrgKeyring(<keys>)"

    def org_cipher(self, org: str, *, create: bool) -> AesGcmCipher | None:
        """``org``'s data key (None when it has none and ``create`` is false: no ciphertext
        of that org can exist)."""
        cipher = self._keys.get(org)
        if cipher is not None:
            return cipher
        from ..secrets.binding import org_key_binding
        from ..secrets.crypto import KEY_SIZE

        with self._lock:
            if org in self._keys:
                return self._keys[org]
            wrapped = self._store.get_org_key(org)
            if wrapped is None:
                if not create:
                    return None
                wrapped = self._store.put_org_key(
                    org, self._server.encrypt(os.urandom(KEY_SIZE), org_key_binding(org)))
            try:
                key = self._server.decrypt(wrapped, org_key_binding(org))
            except DecryptionError:
                raise DecryptionError(
                    f"the data key of organisation {org} does not open with the server key: "
                    "the store was altered or belongs to another key") from None
            cipher = self._keys[org] = AesGcmCipher(key)
            return cipher

    def for_env(self, org: str, project: str, name: str, *, create: bool = False, legacy: bool = False):
        """The :class:`~esc_pulumi.secrets.binding.BoundCipher` of the stored environment
        ``org/project/name`` (``create``: make the org's key if it has none, to encrypt;
        ``legacy``: also open version 1 payloads with the server key, for the migration)."""
        from ..secrets.binding import BoundCipher, server_binding

        return BoundCipher(self.org_cipher(org, create=create), server_binding(org, project, name),
                           legacy=self._server if legacy else None)

    def for_inline(self, org: str):
        """The decrypter of an anonymous (``yaml/open``, ``yaml/check``) definition: it has no
        environment, and no API encrypts for one, so it holds no ciphertext of its own: every
        ciphertext is refused (one copied from a stored environment, of this org or another,
        must not open outside it). Its imports decrypt with their own environment's binding."""
        from ..secrets.binding import INLINE_REFUSED, MovedCiphertext

        def refuse(payload: bytes) -> bytes:
            raise MovedCiphertext(INLINE_REFUSED)

        return refuse


def migrate_ciphertexts(store: Store, keyring: OrgKeyring) -> tuple[int, str | None]:
    """Re-encrypt every version 1 (unbound, server key) ciphertext of every revision with its
    org's data key and its (org, project, env) binding: one transaction after a backup of the
    store; idempotent, and a no-op once the store is marked migrated. Returns (revisions
    rewritten, backup location). A ciphertext that does not open aborts it all (EscError)."""
    from ..secrets.definitions import reseal_secrets, uses_ciphertexts

    if store.get_meta(FORMAT_META) == FORMAT:
        return 0, None

    def rewrite(org: str, project: str, name: str, yaml: str) -> str | None:
        if "ciphertext" not in yaml or not uses_ciphertexts(yaml):
            return None
        target = keyring.for_env(org, project, name, create=True, legacy=True)
        try:
            new = reseal_secrets(yaml, target.decrypt, target.encrypt, keep=target.is_current)
        except DecryptionError as e:
            raise EscError(f"cannot migrate the ciphertexts of {org}/{project}/{name}: {e}; nothing was changed") from None
        return None if new == yaml else new

    return store.rewrite_revisions(rewrite, meta=(FORMAT_META, FORMAT))
