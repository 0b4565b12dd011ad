"""``esc-pulumi env encrypt|decrypt FILE...``: ``fn::secret`` plaintext ↔ ``{ciphertext: ...}`` in place."""
from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import ConfigurationError, EscError
from .common import guarded

__all__ = ["register", "cmd_env_crypt"]


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``env`` (with ``encrypt`` and ``decrypt``) to the ``esc-pulumi`` parser."""
    p = subparsers.add_parser(
        "env",
        help="encrypt or decrypt the fn::secret values of local definitions",
        description="Turn fn::secret plaintext in local definitions into {ciphertext: ...} and back, "
        "keeping comments and layout. Key: ESC_PULUMI_PASSPHRASE or ESC_PULUMI_KEY_FILE.",
    )
    env_sub = p.add_subparsers(dest="env_command", metavar="encrypt|decrypt")
    for name, helptext in (
        ("encrypt", "encrypt fn::secret plaintext in FILEs"),
        ("decrypt", "decrypt fn::secret ciphertext in FILEs"),
    ):
        q = env_sub.add_parser(name, help=helptext, description=helptext)
        q.add_argument("files", nargs="+", metavar="FILE")
        q.set_defaults(func=guarded(functools.partial(cmd_env_crypt, decrypt=name == "decrypt")))
    p.set_defaults(func=_env_usage(p))


def _env_usage(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def usage(args: argparse.Namespace) -> int:
        p.print_usage(sys.stderr)
        print("esc-pulumi env: choose encrypt or decrypt", file=sys.stderr)
        return 2

    return usage


def cmd_env_crypt(args: argparse.Namespace, *, decrypt: bool) -> int:
    """Rewrite FILEs in place. All files are transformed in memory first: a wrong passphrase on
    the third file leaves the first two untouched too. Each write is atomic (temp file + rename)."""
    from ..secrets.crypto import local_cipher
    from ..secrets.definitions import decrypt_secrets, encrypt_secrets

    cipher = local_cipher()
    if cipher is None:
        raise ConfigurationError(
            "no key to " + ("decrypt" if decrypt else "encrypt")
            + " with: set ESC_PULUMI_PASSPHRASE or ESC_PULUMI_KEY_FILE"
        )
    verb = "decrypted" if decrypt else "encrypted"
    planned: list[tuple[Path, str, str]] = []
    for name in dict.fromkeys(args.files):
        path = Path(name)
        if not path.is_file():
            raise EscError(f"{name}: no such file")
        try:
            original = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise EscError(f"{name}: not UTF-8 text") from None
        try:
            new = decrypt_secrets(original, cipher.decrypt) if decrypt else encrypt_secrets(original, cipher.encrypt)
        except EscError as e:
            raise type(e)(f"{name}: {e}") from None
        planned.append((path, original, new))
    for path, original, new in planned:
        if new == original:
            print(f"{path}: nothing to {'decrypt' if decrypt else 'encrypt'}", file=sys.stderr)
            continue
        _atomic_write(path, new)
        print(f"{path}: {verb}", file=sys.stderr)
    return 0


def _atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` all at once, keeping its permissions."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
