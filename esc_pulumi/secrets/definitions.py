"""Text transforms of environment definitions that keep comments and layout.

A definition is edited in place, token by token: the engine's YAML stage gives every node its
exact byte range, and only the ``fn::secret`` values are rewritten; everything else (comments,
key order, quoting, blank lines) stays byte for byte.

- :func:`encrypt_secrets`: ``fn::secret: hunter2`` → ``fn::secret: {ciphertext: <envelope>}``
  (block style under a block mapping, flow style inside a flow collection).
- :func:`decrypt_secrets`: the inverse.
- :func:`plaintext_secrets`: the paths of the secrets still in plaintext.
- :func:`apply_state_patches`: new ``fn::rotate`` states (from :func:`esc_pulumi.esc.rotate`)
  written over the old ones, or added where a call had none; secrets as ``fn::secret``,
  encrypted when an ``encrypt`` function is given (see :func:`uses_ciphertexts`).

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
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from ..errors import DecryptionError, DefinitionError
from ..esc.envelope import EnvelopeError, seal, unseal
from ..esc.interpolation import has_interpolation, unescape
from ..esc.nodes import ArrayNode, Node, ObjectEntry, ObjectNode, StringNode, child_path
from ..esc.syntax import parse_yaml

if TYPE_CHECKING:  # pragma: no cover
    from ..esc.diagnostics import Range
    from ..esc.rotation import Patch
    from ..esc.values import Value

__all__ = [
    "apply_state_patches", "decrypt_secrets", "encrypt_secrets", "plaintext_secrets", "reseal_secrets",
    "unbound_secrets", "uses_ciphertexts",
]

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


def _ciphertexts(data: bytes) -> Iterator[tuple[_Site, Node, bytes]]:
    """Each ``fn::secret: {ciphertext: ...}`` of a definition: its site, the value node and the
    payload (:class:`DecryptionError` naming the secret's path for an invalid envelope)."""
    for site in _sites(data):
        value = site.entry.value
        envelope = _ciphertext_of(value)
        if envelope is None:
            continue
        try:
            payload = unseal(envelope)
        except EnvelopeError as e:
            raise DecryptionError(f"cannot decrypt the secret at {site.path or '<root>'}: invalid ciphertext ({e})") from None
        yield site, value, payload


def _open(decrypt: Callable[[bytes], bytes], payload: bytes, site: _Site) -> bytes:
    try:
        return decrypt(payload)
    except DecryptionError as e:  # say which secret: the message holds no data
        raise type(e)(f"cannot decrypt the secret at {site.path or '<root>'}: {e}") from None


def decrypt_secrets(text: str, decrypt: Callable[[bytes], bytes]) -> str:
    """Replace every ``fn::secret: {ciphertext: ...}`` by the plaintext string.

    Raises :class:`~esc_pulumi.errors.DecryptionError` (without any data in its message) when a
    ciphertext cannot be opened with ``decrypt``.

    Example::

        decrypt_secrets(encrypt_secrets(text, cipher.encrypt), cipher.decrypt) == text
    """
    data = text.encode("utf-8")
    edits: list[tuple[int, int, bytes]] = []
    for site, value, payload in _ciphertexts(data):
        try:
            plaintext = _open(decrypt, payload, site).decode("utf-8")
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


def reseal_secrets(
    text: str, decrypt: Callable[[bytes], bytes], encrypt: Callable[[bytes], bytes],
    keep: Callable[[bytes], bool] | None = None,
) -> str:
    """Re-encrypt every ``{ciphertext: ...}``: opened with ``decrypt``, sealed again with
    ``encrypt``; only the envelope texts change (layout, comments and plaintext secrets stay).
    A payload for which ``keep`` is true stays as it is. The plaintext exists only in memory.
    Raises :class:`~esc_pulumi.errors.DecryptionError` naming the secret's path when one does
    not open (nothing is returned half-done).

    Example::

        moved = reseal_secrets(text, here.decrypt, there.encrypt)
    """
    data = text.encode("utf-8")
    edits: list[tuple[int, int, bytes]] = []
    for site, value, payload in _ciphertexts(data):
        if keep is not None and keep(payload):
            continue
        plaintext = _open(decrypt, payload, site)
        node = value.entries[0].value  # type: ignore[attr-defined]
        edits.append((node.range.begin.byte, node.range.end.byte, seal(encrypt(plaintext)).encode("ascii")))
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


def uses_ciphertexts(text: str | bytes) -> bool:
    """Whether any ``fn::secret`` of the document is a ``{ciphertext: ...}``.

    Example::

        uses_ciphertexts("values: {pw: {fn::secret: hunter2}}\n")   # False
    """
    return any(_ciphertext_of(site.entry.value) is not None for site in _sites(text))


def unbound_secrets(text: str | bytes) -> list[tuple[str, "Range"]]:
    """The path and range of each ``{ciphertext: ...}`` written before ciphertexts were bound
    to their environment (format 1): they still open, but would open anywhere else too.

    An invalid envelope is skipped: evaluating the definition reports it.

    Example::

        unbound_secrets(text)   # [('values.db', Range(...))] -> run `esc-pulumi env encrypt FILE`
    """
    from .binding import is_bound

    found = []
    for site in _sites(text):
        envelope = _ciphertext_of(site.entry.value)
        if envelope is None:
            continue
        try:
            payload = unseal(envelope)
        except EnvelopeError:
            continue
        if not is_bound(payload):
            found.append((site.path or "<root>", site.entry.value.range))
    return found


# -- writing rotation states back ----------------------------------------------------------
#
# A new state is first turned into data to write (_state_data): dicts keyed by the state's own
# keys, lists, and scalars already in definition text, with secrets wrapped in the builtin calls
# that recreate them. That data is then laid over the old state's nodes (_replace_edits): where
# both are mappings (or lists of the same length) only the values that differ are rewritten, so
# comments and layout inside the state survive; anything else is replaced whole, in the style
# of what it replaces (block or flow).


@dataclass(frozen=True, slots=True)
class _Scalar:
    """A scalar's definition text, ready to write (quoted and escaped as needed)."""

    text: str


_Data = Any  # dict[str, _Data] | list[_Data] | _Scalar
# The keys of the builtin calls _state_data writes (user keys may not look like these).
_BUILTIN_KEYS = frozenset([SECRET, "fn::fromJSON", CIPHERTEXT])


def _float_text(f: float) -> str:
    if math.isnan(f):
        return ".nan"
    if math.isinf(f):
        return ".inf" if f > 0 else "-.inf"
    text = repr(f)
    mantissa, e, exponent = text.partition("e")
    # `1e+16` is a float to YAML 1.2 but a string to YAML 1.1 (PyYAML): give it a dot.
    return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text


def _scalar_text(x: Any, where: str) -> str:
    from ..esc.values import int_text

    if x is None:
        return "null"
    if x is True or x is False:
        return "true" if x else "false"
    text = getattr(x, "text", None)  # a JSONNumber keeps its JSON text, which YAML reads alike
    if isinstance(text, str):
        return text
    if isinstance(x, int):
        return int_text(x)
    if isinstance(x, float):
        return _float_text(x)
    if isinstance(x, str):
        return _literal(x)
    raise DefinitionError(f"the new state at {where} holds a value that cannot be written ({type(x).__name__})")


def _key_text(key: str) -> str:
    if key in _BUILTIN_KEYS or (_PLAIN_SAFE.match(key) and key.lower() not in _RESERVED):
        return key
    return json.dumps(key, ensure_ascii=False)


def _state_data(v: "Value", where: str, encrypt: Callable[[bytes], bytes] | None) -> _Data:
    """The new state as data to write: secrets become ``fn::secret`` calls. Errors name the
    path, never a value."""
    from ..esc.values import go_json, to_plain

    root: list[_Data] = [None]
    stack: list[tuple["Value", Any, Any, str]] = [(v, root, 0, where)]
    while stack:
        x, parent, key, path = stack.pop()
        if x.unknown:
            raise DefinitionError(f"the new state at {path} is unknown: nothing to write")
        r = x.repr
        container = type(r) is dict or type(r) is list
        if x.secret and not (container and r):
            if type(r) is str:
                parent[key] = {SECRET: _secret_data(r, encrypt)}
            else:
                # fn::secret takes strings only: a secret number, boolean, null or empty
                # collection is written as the secret JSON text of it, decoded again.
                parent[key] = {"fn::fromJSON": {SECRET: _secret_data(go_json(to_plain(x)), encrypt)}}
        elif type(r) is dict:
            d: dict[str, _Data] = {}
            parent[key] = d
            for k, c in r.items():
                where_k = child_path(path, k)
                # A key that reads as a builtin call or an interpolation would not read back.
                if k.startswith("fn::") or has_interpolation(k):
                    raise DefinitionError(f"the new state has a key that cannot be written at {where_k}")
                d[k] = None  # the key's place, in order; its value is filled in when popped
                stack.append((c, d, k, where_k))
        elif type(r) is list:
            lst: list[_Data] = [None] * len(r)
            parent[key] = lst
            for i, c in enumerate(r):
                stack.append((c, lst, i, child_path(path, i)))
        else:
            parent[key] = _Scalar(_scalar_text(r, path))
    return root[0]


def _secret_data(plaintext: str, encrypt: Callable[[bytes], bytes] | None) -> _Data:
    if encrypt is None:
        return _Scalar(_literal(plaintext))
    return {CIPHERTEXT: _Scalar(seal(encrypt(plaintext.encode("utf-8"))))}


def _is_inline(d: _Data) -> bool:
    return isinstance(d, _Scalar) or not d


def _flow(d: _Data) -> str:
    """``d`` in flow style: ``{a: x, b: [1, 2]}``. Iterative: states may nest deeply."""
    out: list[str] = []
    stack: list[Any] = [d]
    while stack:
        x = stack.pop()
        if isinstance(x, str):  # punctuation queued below
            out.append(x)
        elif isinstance(x, _Scalar):
            out.append(x.text)
        elif isinstance(x, dict):
            parts: list[Any] = ["{"]
            for i, (k, c) in enumerate(x.items()):
                parts += ([", "] if i else []) + [f"{_key_text(k)}: ", c]
            parts.append("}")
            stack.extend(reversed(parts))
        else:
            parts = ["["]
            for i, c in enumerate(x):
                parts += ([", "] if i else []) + [c]
            parts.append("]")
            stack.extend(reversed(parts))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Line:
    text: str


def _entry_lines(key: str, value: _Data, indent: int) -> list[str]:
    """``key: value`` in block style at ``indent``."""
    pad = " " * indent
    if _is_inline(value):
        return [f"{pad}{_key_text(key)}: {_flow(value)}"]
    return [f"{pad}{_key_text(key)}:"] + _block(value, indent + 2)


def _block(d: _Data, indent: int) -> list[str]:
    """The lines of a non-empty collection in block style, each indented by ``indent``.
    Iterative (states may nest deeply): a stack of finished lines and collections to expand,
    each with its indentation and what replaces that on its first line (``- `` of an item)."""
    lines: list[str] = []
    stack: list[Any] = [(d, indent, None)]
    while stack:
        task = stack.pop()
        if isinstance(task, _Line):
            lines.append(task.text)
            continue
        x, ind, first = task
        pad = " " * ind
        todo: list[Any] = []
        entries = x.items() if isinstance(x, dict) else (("-", c) for c in x)
        for n, (k, c) in enumerate(entries):
            lead = first if n == 0 and first is not None else pad
            if isinstance(x, dict):
                if _is_inline(c):
                    todo.append(_Line(f"{lead}{_key_text(k)}: {_flow(c)}"))
                else:
                    todo += [_Line(f"{lead}{_key_text(k)}:"), (c, ind + 2, None)]
            elif _is_inline(c):
                todo.append(_Line(f"{lead}- {_flow(c)}"))
            else:  # `- k: v` / `- - x`: the item's first line shares the dash's line
                todo.append((c, ind + 2, f"{lead}- "))
        stack.extend(reversed(todo))
    return lines


def _find_entry(node: Node, key: str, top: bool) -> ObjectEntry | None:
    if not isinstance(node, ObjectNode):
        return None
    if top:  # top-level keys match case-insensitively, and the last one wins
        found = [e for e in node.entries if e.key.value.lower() == key.lower()]
        return found[-1] if found else None
    return next((e for e in node.entries if e.key.value == key), None)  # the first one wins


def apply_state_patches(
    text: str, patches: "Iterable[Patch]", encrypt: Callable[[bytes], bytes] | None = None
) -> str:
    """Write new rotation states into a definition, keeping everything else byte for byte.

    Each patch's state is laid over the old one: values that changed are rewritten in the
    style they had (block or flow), keys the old state lacked are added, and a call without
    ``state`` gets one after its last entry; comments stay, except inside a value that is
    replaced whole. Secret values are written as ``fn::secret`` (plaintext, or
    ``{ciphertext: ...}`` sealed with ``encrypt``). Raises
    :class:`~esc_pulumi.errors.DefinitionError` (naming paths, never values) when a patch
    cannot be placed: then nothing is changed.

    Example::

        result = esc.rotate(decl, providers=registry)
        new_text = apply_state_patches(text, result.patches, cipher.encrypt)
    """
    data = text.encode("utf-8")
    root, diags = parse_yaml(data, "definition")
    if root is None or any(d.is_error for d in diags):
        raise DefinitionError("the definition does not parse: cannot write rotation states into it")
    nl = "\r\n" if b"\r\n" in data else "\n"
    edits: list[tuple[int, int, bytes]] = []
    for patch in patches:
        where = patch.doc_path
        node: Node = root
        in_flow = _starts_flow(data, root.range.begin.byte)
        for i, key in enumerate(patch.keys[:-1]):
            child: Node | None = None
            if isinstance(key, int):
                if isinstance(node, ArrayNode) and 0 <= key < len(node.items):
                    child = node.items[key]
            else:
                entry = _find_entry(node, key, i == 0)
                child = entry.value if entry is not None else None
            if child is None:
                raise DefinitionError(f"cannot write the new state at {where}: the definition has no such call")
            node = child
            if isinstance(node, (ObjectNode, ArrayNode)):
                in_flow = in_flow or _starts_flow(data, node.range.begin.byte)
        if not isinstance(node, ObjectNode) or not node.entries:
            raise DefinitionError(f"cannot write the new state at {where}: the call's argument is not an object")
        value = _state_data(patch.replacement, where, encrypt)
        state = _find_entry(node, patch.keys[-1], False)
        if state is None:
            edits.append(_add_entries(data, node, [(patch.keys[-1], value)], in_flow, nl))
        else:
            _replace_edits(data, state.value, value, state, in_flow, nl, edits)
    edits.sort(key=lambda e: (e[0], e[1]))
    for (_, end, _), (begin, _, _) in zip(edits, edits[1:]):
        if begin < end:
            raise DefinitionError("rotation states overlap (a fn::rotate inside another one's state): nothing written")
    new = _splice(data, edits).decode("utf-8")
    check, diags = parse_yaml(new, "definition")
    if check is None or any(d.is_error for d in diags):  # pragma: no cover - a bug if reached
        raise DefinitionError("internal error: the rewritten definition would not parse; nothing written")
    return new


def _replace_edits(
    data: bytes, old: Node, new: _Data, entry: ObjectEntry | None, in_flow: bool, nl: str,
    edits: list[tuple[int, int, bytes]],
) -> None:
    """The splices that turn node ``old`` (the value of ``entry``, or an array item) into
    ``new``, rewriting only what must change."""
    stack: list[tuple[Node, _Data, ObjectEntry | None, bool]] = [(old, new, entry, in_flow)]
    while stack:
        o, n, e, flow = stack.pop()
        here = flow or (isinstance(o, (ObjectNode, ArrayNode)) and _starts_flow(data, o.range.begin.byte))
        if isinstance(n, dict) and n and isinstance(o, ObjectNode) and o.entries:
            olds = {x.key.value: x for x in o.entries}
            # Keys only added, none dropped nor repeated: merge key by key. Otherwise (a
            # dropped key's entry would need cutting out) the mapping is replaced whole.
            if len(olds) == len(o.entries) and olds.keys() <= n.keys():
                added = [(k, v) for k, v in n.items() if k not in olds]
                if added:
                    edits.append(_add_entries(data, o, added, here, nl))
                stack.extend((olds[k].value, v, olds[k], here) for k, v in n.items() if k in olds)
                continue
        if isinstance(n, list) and n and isinstance(o, ArrayNode) and len(o.items) == len(n):
            stack.extend((oi, ni, None, here) for oi, ni in zip(o.items, n))
            continue
        edits.append(_whole(data, o, n, e, flow, nl))


def _add_entries(
    data: bytes, mapping: ObjectNode, added: list[tuple[str, _Data]], in_flow: bool, nl: str
) -> tuple[int, int, bytes]:
    """The splice that adds ``added`` entries after the last entry of ``mapping``."""
    at = mapping.entries[-1].value.range.end.byte
    if in_flow or _starts_flow(data, mapping.range.begin.byte):
        return (at, at, "".join(f", {_key_text(k)}: {_flow(v)}" for k, v in added).encode("utf-8"))
    col = mapping.entries[0].key.range.begin.column - 1
    lines = [line for k, v in added for line in _entry_lines(k, v, col)]
    # On the lines after the last entry's: what follows it on its line (a comment) stays its.
    eol = data.find(b"\n", at)
    if eol < 0:  # the mapping ends the file, which has no final newline
        return (len(data), len(data), (nl + nl.join(lines)).encode("utf-8"))
    return (eol + 1, eol + 1, (nl.join(lines) + nl).encode("utf-8"))


def _whole(
    data: bytes, old: Node, new: _Data, entry: ObjectEntry | None, in_flow: bool, nl: str
) -> tuple[int, int, bytes]:
    """The splice that replaces node ``old`` (the value of ``entry``, or an array item) by
    ``new`` entirely: in flow style where the old one was flow or inside a flow collection,
    else a scalar stays on its line and a collection goes in block style."""
    begin, end = old.range.begin.byte, old.range.end.byte
    inline = in_flow or _is_inline(new) or (isinstance(old, (ObjectNode, ArrayNode)) and _starts_flow(data, begin))
    if in_flow or entry is None and (inline or begin == end):
        return (begin, end, ((" " if begin == end else "") + _flow(new)).encode("utf-8"))
    line_start = data.rfind(b"\n", 0, begin) + 1
    prefix = data[line_start:begin]
    if entry is None:  # an item of a block sequence: `- old`
        if prefix.replace(b"-", b" ").strip(b" "):
            return (begin, end, _flow(new).encode("utf-8"))  # something odd before it: flow fits
        lines = _block(new, begin - line_start)
        lines[0] = lines[0][begin - line_start :]  # the first line starts after the dash
        return (begin, end, nl.join(lines).encode("utf-8"))
    key_col = entry.key.range.begin.column - 1
    if begin == end or old.range.begin.line == entry.key.range.begin.line:
        if inline:
            return (begin, end, ((" " if begin == end else "") + _flow(new)).encode("utf-8"))
        # `key:` or `key: scalar` -> a block collection on the following lines.
        while begin > 0 and data[begin - 1 : begin] in (b" ", b"\t"):
            begin -= 1
        return (begin, end, (nl + nl.join(_block(new, key_col + 2))).encode("utf-8"))
    # The old value starts on a line of its own below its key.
    if prefix.strip(b" "):  # pragma: no cover - libyaml starts such a value on its key's line
        return (begin, end, _flow(new).encode("utf-8"))
    col = begin - line_start
    if col <= key_col:
        # A sequence as indented as its key (`key:\n- a`): the new value goes deeper.
        begin, col = line_start, key_col + 2
        lines = [" " * col + _flow(new)] if inline else _block(new, col)
        return (begin, end, nl.join(lines).encode("utf-8"))
    if inline:
        return (begin, end, _flow(new).encode("utf-8"))
    lines = _block(new, col)
    lines[0] = lines[0][col:]  # the first line starts where the old value did
    return (begin, end, nl.join(lines).encode("utf-8"))
