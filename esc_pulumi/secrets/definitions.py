"""Text transforms of environment definitions that keep comments and layout.

A definition is edited in place, token by token: the engine's YAML stage gives every node its
exact byte range, and only the ``fn::secret`` values are rewritten; everything else (comments,
key order, quoting, blank lines) stays byte for byte.

- :func:`encrypt_secrets`: ``fn::secret: hunter2`` → ``fn::secret: {ciphertext: <envelope>}``
  (block style under a block mapping, flow style inside a flow collection).
- :func:`decrypt_secrets`: the inverse.
- :func:`plaintext_secrets`: the paths of the secrets still in plaintext.

Example::

    from esc_pulumi.secrets.crypto import AesGcmCipher
    from esc_pulumi.secrets.definitions import encrypt_secrets, decrypt_secrets

    c = AesGcmCipher(bytes(32))
    text = "values:\\n  pw:\\n    fn::secret: hunter2  # db\\n"
    sealed = encrypt_secrets(text, c.encrypt)     # ... fn::secret:\\n      ciphertext: ZXNjeA...
    assert decrypt_secrets(sealed, c.decrypt) == text
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable, Iterator

from ..errors import DecryptionError
from ..esc.envelope import EnvelopeError, seal, unseal
from ..esc.interpolation import has_interpolation, unescape
from ..esc.nodes import ArrayNode, Node, ObjectEntry, ObjectNode, StringNode, child_path
from ..esc.syntax import parse_yaml

__all__ = ["decrypt_secrets", "encrypt_secrets", "plaintext_secrets"]

SECRET = "fn::secret"
CIPHERTEXT = "ciphertext"

# Strings written back unquoted: they read as the same string in YAML 1.2 (the engine) and in
# YAML 1.1 (PyYAML, which the SDK uses to parse definitions), so no ``yes``/``on``/numbers.
_PLAIN_SAFE = re.compile(r"[A-Za-z_][A-Za-z0-9_./@-]*(?: [A-Za-z0-9_./@-]+)*\Z")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n"}


@dataclass(frozen=True, slots=True)
class _Site:
    """One ``fn::secret`` entry: its key, its value, whether it sits in a flow collection."""

    entry: ObjectEntry
    in_flow: bool
    path: str


def _sites(text: str | bytes) -> Iterator[_Site]:
    """Every ``fn::secret`` entry of the document, with the path of the object holding it."""
    node, _ = parse_yaml(text, "definition")
    if node is None:
        return
    data = text.encode("utf-8") if isinstance(text, str) else text
    # Explicit stack: documents may nest deeper than Python's recursion limit.
    stack: list[tuple[Node, bool, str]] = [(node, False, "")]
    while stack:
        n, in_flow, path = stack.pop()
        if isinstance(n, (ObjectNode, ArrayNode)):
            in_flow = in_flow or _starts_flow(data, n.range.begin.byte)
        if isinstance(n, ObjectNode):
            for e in n.entries:
                if e.key.value == SECRET:
                    yield _Site(e, in_flow, path)
                else:
                    stack.append((e.value, in_flow, child_path(path, e.key.value)))
        elif isinstance(n, ArrayNode):
            for i, item in enumerate(n.items):
                stack.append((item, in_flow, child_path(path, i)))


def _starts_flow(data: bytes, at: int) -> bool:
    """Whether the collection beginning at ``at`` is a flow one (``{``/``[`` after any
    anchor or tag)."""
    i, n = at, len(data)
    while i < n:
        c = data[i : i + 1]
        if c in (b"&", b"!"):  # an anchor or a tag before the collection
            while i < n and data[i : i + 1] not in (b" ", b"\t", b"\n", b"\r"):
                i += 1
        elif c in (b" ", b"\t", b"\n", b"\r"):
            i += 1
        else:
            return c in (b"{", b"[")
    return False


def _literal(plaintext: str) -> str:
    """The definition text of a secret string: escaped for ``${``/``$$`` and quoted as needed."""
    if has_interpolation(plaintext) or "$$" in plaintext:
        plaintext = plaintext.replace("$", "$$")
    if _PLAIN_SAFE.match(plaintext) and plaintext.lower() not in _RESERVED:
        return plaintext
    # JSON strings are YAML double-quoted scalars.
    return json.dumps(plaintext, ensure_ascii=False)


def _splice(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    out: list[bytes] = []
    last = 0
    for begin, end, new in sorted(edits):
        out.append(data[last:begin])
        out.append(new)
        last = end
    out.append(data[last:])
    return b"".join(out)


def _line_indent(data: bytes, at: int) -> int:
    """The column (0-based, in bytes) of ``at`` on its line: the prefix is spaces and ``- ``."""
    return at - (data.rfind(b"\n", 0, at) + 1)


def encrypt_secrets(text: str, encrypt: Callable[[bytes], bytes]) -> str:
    """Replace every plaintext ``fn::secret`` string by ``{ciphertext: <envelope>}``.

    Already encrypted secrets, interpolations (which ESC refuses as secrets) and non-strings are
    left alone; so is a document that does not parse. Idempotent.

    Example::

        encrypt_secrets("values: {pw: {fn::secret: hunter2}}\\n", cipher.encrypt)
        # 'values: {pw: {fn::secret: {ciphertext: ZXNjeAAAAAE...}}}\\n'
    """
    data = text.encode("utf-8")
    edits: list[tuple[int, int, bytes]] = []
    for site in _sites(data):
        value = site.entry.value
        if not isinstance(value, StringNode) or has_interpolation(value.value):
            continue
        envelope = seal(encrypt(unescape(value.value).encode("utf-8"))).encode("ascii")
        begin, end = value.range.begin.byte, value.range.end.byte
        if site.in_flow:
            edits.append((begin, end, b"{" + CIPHERTEXT.encode() + b": " + envelope + b"}"))
        elif value.range.begin.line == site.entry.key.range.begin.line:
            # `fn::secret: x` -> `fn::secret:` + a nested block mapping two columns deeper.
            indent = _line_indent(data, site.entry.key.range.begin.byte) + 2
            while begin > 0 and data[begin - 1 : begin] in (b" ", b"\t"):
                begin -= 1
            edits.append((begin, end, b"\n" + b" " * indent + CIPHERTEXT.encode() + b": " + envelope))
        else:  # the value already sits on its own, deeper, line
            edits.append((begin, end, CIPHERTEXT.encode() + b": " + envelope))
    if not edits:
        return text
    return _splice(data, edits).decode("utf-8")


def _ciphertext_of(value: Node) -> str | None:
    if isinstance(value, ObjectNode) and len(value.entries) == 1:
        e = value.entries[0]
        if e.key.value == CIPHERTEXT and isinstance(e.value, StringNode):
            return e.value.value
    return None


def decrypt_secrets(text: str, decrypt: Callable[[bytes], bytes]) -> str:
    """Replace every ``fn::secret: {ciphertext: ...}`` by the plaintext string.

    Raises :class:`~esc_pulumi.errors.DecryptionError` (without any data in its message) when a
    ciphertext cannot be opened with ``decrypt``.

    Example::

        decrypt_secrets(encrypt_secrets(text, cipher.encrypt), cipher.decrypt) == text
    """
    data = text.encode("utf-8")
    edits: list[tuple[int, int, bytes]] = []
    for site in _sites(data):
        value = site.entry.value
        envelope = _ciphertext_of(value)
        if envelope is None:
            continue
        try:
            payload = unseal(envelope)
        except EnvelopeError as e:
            raise DecryptionError(f"cannot decrypt the secret at {site.path or '<root>'}: invalid ciphertext ({e})") from None
        try:
            plaintext = decrypt(payload).decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionError("cannot decrypt: wrong passphrase or key, or corrupted data") from None
        literal = _literal(plaintext).encode("utf-8")
        begin, end = value.range.begin.byte, value.range.end.byte
        if not site.in_flow:
            # Pull the scalar back up to `fn::secret:` when only blanks separate them.
            j = begin
            while j > 0 and data[j - 1 : j] in (b" ", b"\t", b"\n", b"\r"):
                j -= 1
            if j > 0 and data[j - 1 : j] == b":":
                edits.append((j, end, b" " + literal))
                continue
        edits.append((begin, end, literal))
    if not edits:
        return text
    return _splice(data, edits).decode("utf-8")


def plaintext_secrets(text: str) -> list[str]:
    """The paths of the objects whose ``fn::secret`` is still a plaintext string.

    Example::

        plaintext_secrets("values:\\n  pw: {fn::secret: hunter2}\\n")   # ['values.pw']
    """
    found = [
        site.path
        for site in _sites(text)
        if isinstance(site.entry.value, StringNode) and not has_interpolation(site.entry.value.value)
    ]
    return sorted(found)
