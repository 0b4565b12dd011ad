"""``esc-pulumi env encrypt|decrypt FILE...``: ``fn::secret`` plaintext ↔ ``{ciphertext: ...}`` in
place; ``esc-pulumi env rotate REF [PATH...]``: an environment's ``fn::rotate`` secrets rotated
and their new states written back into its definition (file:// backends)."""
from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Callable

from ..errors import ConfigurationError, DefinitionError, EscError
from ..backends.local import write_in_place
from .common import guarded
from .limits import limit_options, limits_from
from .targets import stack_options

__all__ = ["register", "cmd_env_crypt", "cmd_env_rotate"]


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``env`` (with ``encrypt`` and ``decrypt``) to the ``esc-pulumi`` parser."""
    p = subparsers.add_parser(
        "env",
        help="encrypt or decrypt the fn::secret values of local definitions; rotate secrets",
        description="Turn fn::secret plaintext in local definitions into {ciphertext: ...} and back, "
        "keeping comments and layout (key: ESC_PULUMI_PASSPHRASE or ESC_PULUMI_KEY_FILE); "
        "rotate an environment's fn::rotate secrets.",
    )
    env_sub = p.add_subparsers(dest="env_command", metavar="encrypt|decrypt|keygen|rotate")
    for name, helptext in (
        ("encrypt", "encrypt fn::secret plaintext in FILEs"),
        ("decrypt", "decrypt fn::secret ciphertext in FILEs"),
    ):
        q = env_sub.add_parser(name, help=helptext, description=helptext)
        q.add_argument("files", nargs="+", metavar="FILE")
        q.set_defaults(func=guarded(functools.partial(cmd_env_crypt, decrypt=name == "decrypt")))
    k = env_sub.add_parser(
        "keygen",
        help="write a new random key file (use it with ESC_PULUMI_KEY_FILE)",
        description="Write a new random 32-byte key, base64 on one line, to FILE (mode 0600; an "
        "existing file is never overwritten). Key files may also hold 64 hex digits or 32 raw bytes.",
    )
    k.add_argument("file", metavar="FILE")
    k.set_defaults(func=guarded(cmd_env_keygen))
    r = env_sub.add_parser(
        "rotate",
        help="rotate an environment's fn::rotate secrets and write the new states back",
        description="Call the rotator of every fn::rotate in environment REF (or only those at "
        "PATHs, property paths under values, e.g. db.password) and write each new state into the "
        "definition in place, keeping comments and layout; secrets are encrypted when the file "
        "holds ciphertexts (key: ESC_PULUMI_PASSPHRASE or ESC_PULUMI_KEY_FILE). Nothing is written "
        "when a rotator fails or the environment has errors. On an ESC service (esc-pulumi serve) "
        "the service rotates and saves the new states as a new revision, audited.",
    )
    r.add_argument("ref", metavar="REF", help="environment reference (env, project/env)")
    r.add_argument("paths", nargs="*", metavar="PATH", help="property path of a fn::rotate to rotate")
    stack_options(r)
    limit_options(r)
    r.set_defaults(func=guarded(cmd_env_rotate))
    p.set_defaults(func=_env_usage(p))


def cmd_env_keygen(args: argparse.Namespace) -> int:
    from ..secrets.crypto import create_key_file

    path = Path(args.file)
    if path.exists() or path.is_symlink():
        raise EscError(f"{path} already exists: choose another file (a key file is never overwritten)")
    try:
        create_key_file(path)
    except FileExistsError:
        raise EscError(f"{path} already exists: choose another file (a key file is never overwritten)") from None
    except OSError as e:
        raise EscError(f"cannot write {path}: {e.strerror or e}") from None
    print(f"{path}: new key written (mode 0600); use it with ESC_PULUMI_KEY_FILE={path}", file=sys.stderr)
    return 0


def _env_usage(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def usage(args: argparse.Namespace) -> int:
        p.print_usage(sys.stderr)
        print("esc-pulumi env: choose encrypt, decrypt, keygen or rotate", file=sys.stderr)
        return 2

    return usage


def cmd_env_rotate(args: argparse.Namespace) -> int:
    """Rotate REF through its backend and say which calls were rotated; the new states
    themselves are never printed (they are credentials, secret or not). On file:// the states
    are written into the definition; on an ESC service the service saves a new revision."""
    from ..backends.cloud import CloudBackend
    from ..backends.local import LocalBackend
    from ..esc.rotation import format_rotate_path
    from .targets import diag_line, print_definition_errors, resolve_target, sorted_diagnostics

    target = resolve_target(args, [args.ref])
    backend = target.backend
    if not isinstance(backend, (LocalBackend, CloudBackend)):
        raise EscError(f"env rotate: {args.ref} is on {getattr(backend, 'url', 'a backend')}, which cannot rotate")
    assert target.composition is not None
    name = target.composition["imports"][0]
    try:
        result = backend.rotate(
            name, list(args.paths), organization=target.organization, limits=limits_from(args)
        )
    except DefinitionError as e:
        print_definition_errors(e)
        print(f"esc-pulumi: {args.ref}: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    for d in sorted_diagnostics(list(result.diagnostics)):
        print(diag_line(d), file=sys.stderr)
    if isinstance(backend, CloudBackend):
        print(f"{name}: rotated {', '.join(result.rotated)} (revision {result.previous_revision} -> "
              f"{result.revision})", file=sys.stderr)
        return 0
    where = backend.display(backend.path_of(name))
    if not result.patches:
        print(f"{where}: nothing rotated (the selected calls could not run)", file=sys.stderr)
        return 1

    print(f"{where}: rotated {', '.join(format_rotate_path(p.path) for p in result.patches)}", file=sys.stderr)
    return 0


def cmd_env_crypt(args: argparse.Namespace, *, decrypt: bool) -> int:
    """Rewrite FILEs in place. All files are transformed in memory first: a wrong passphrase on
    the third file leaves the first two untouched too. Each write is atomic (temp file + rename)."""
    from ..errors import DecryptionError
    from ..esc.syntax import parse_yaml
    from ..secrets.crypto import key_source, local_cipher
    from ..backends.local import env_name_of_file, file_cipher
    from ..secrets.definitions import decrypt_secrets, encrypt_secrets, reseal_secrets

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
        _, diags = parse_yaml(original, name)
        broken = [d for d in diags if d.is_error]
        if broken:
            raise EscError(f"{name}: not valid YAML, nothing changed: {broken[0].summary}")
        # Ciphertexts are bound to the environment the file is (<project>/<env>.yaml): one
        # copied from another environment's file does not open here.
        bound = file_cipher(cipher, env_name_of_file(path))
        try:
            if not decrypt:
                # Every ciphertext of a file must open with one key: refuse to add ones made with
                # another, which would leave a file no single key can open.
                try:
                    decrypt_secrets(original, bound.decrypt)
                except DecryptionError:
                    raise EscError(
                        f"{name}: its existing ciphertexts do not decrypt with the key from "
                        f"{key_source()} for environment {env_name_of_file(path)}: wrong passphrase or key "
                        "(use the key they were made with), or the file was moved or copied from another "
                        "environment (`esc-pulumi env decrypt` it before moving it); nothing changed"
                    ) from None
                # Old, unbound, ciphertexts are re-encrypted bound to this environment.
                original_bound = reseal_secrets(original, bound.decrypt, bound.encrypt, keep=bound.is_current)
                new = encrypt_secrets(original_bound, bound.encrypt)
            else:
                new = decrypt_secrets(original, bound.decrypt)
        except EscError as e:
            raise type(e)(e.args[0] if str(e).startswith(f"{name}: ") else f"{name}: {e}") from None
        # A symlink is written through: its target gets the new text, the link stays a link.
        planned.append((path.resolve() if path.is_symlink() else path, original, new))
    for path, original, new in planned:
        if new == original:
            print(f"{path}: nothing to {'decrypt' if decrypt else 'encrypt'}", file=sys.stderr)
            continue
        write_in_place(path, new)
        print(f"{path}: {verb}", file=sys.stderr)
    return 0
