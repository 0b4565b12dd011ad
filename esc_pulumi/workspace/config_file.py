"""The stack config file ``esc-pulumi run -- pulumi up`` hands to the Pulumi CLI (``--config-file``):
the stack file with the opened ``pulumiConfig`` merged in as the CLI merges it on Pulumi Cloud.

- Precedence (``spec/pulumi-integration.md``, "Mapping"): stack value > ESC > project default. A
  key only ESC sets is added; a key both set to objects deep-merges (the stack wins per key,
  arrays replaced, null sets null, the stack's ``{secure: ...}`` leaves kept as they are); any
  other key keeps the stack's value. Project defaults need nothing: every value of a config
  file outranks them.
- The stack file's other top-level keys (``encryptionsalt``, ``secretsprovider``,
  ``encryptedkey``) are kept; ``environment:`` is dropped (the wrapper applied it, and a DIY
  backend refuses a stack file that has one).
- A key ESC sets with a secret leaf is one ``secure:`` value of its whole config text. Where it
  deep-merges with a stack object, the merged text becomes one ``secure:`` value; if the stack
  object holds ``{secure:}`` leaves itself (which only the CLI may decrypt), ESC's secret parts
  become ``{secure:}`` leaves of their text instead (a secret number or boolean there then reads
  as a string, as a ``{secure:}`` leaf always does).
- Encryption is the caller's (:data:`Encrypt`): the passphrase manager or the ``pulumi`` CLI.
- The file is YAML written here, typed so that yaml.v3 reads back exactly the data it came
  from: every string double-quoted (``yes`` stays a string), integers as integers, floats in a
  form that stays a float, objects and arrays in flow style. Only ciphertexts of secrets reach it.

Example::

    doc = merge_stack_config(
        {"encryptionsalt": "v1:...", "config": {"myproj:a": 1}},
        {"myproj:a": 1},
        {"aws:region": from_plain("eu-west-1")},
        encrypt=lambda secrets: [crypter.encrypt(s.text) for s in secrets],
    )
    yaml_document(doc.document)
    # '"encryptionsalt": "v1:..."\\n"config":\\n  "myproj:a": 1\\n  "aws:region": "eu-west-1"\\n'
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ..errors import ConfigurationError, MappingError
from .project import contains_secure, is_secure
from .rendering import _as_int64, config_text

if TYPE_CHECKING:  # pragma: no cover
    from ..esc import Value

__all__ = [
    "Encrypt",
    "MergedConfigFile",
    "SecretText",
    "merge_stack_config",
    "write_private_file",
    "yaml_document",
    "yaml_flow",
]

# Top-level keys of a stack file the wrapper's config file must not carry.
DROPPED_KEYS = ("environment",)


@dataclass(frozen=True)
class SecretText:
    """A plaintext to encrypt as a ``secure:`` value, and the config key it belongs to (the only
    part errors may name). ``repr`` never shows the text.

    Example::

        SecretText("myproj:dbPassword", "hunter2")      # SecretText('myproj:dbPassword', [secret])
    """

    key: str
    text: str = field(repr=False)

    def __repr__(self) -> str:
        return f"SecretText({self.key!r}, [secret])"


# Ciphertexts (``secure:`` values) of the given plaintexts, in order.
Encrypt = Callable[[Sequence[SecretText]], Sequence[str]]


@dataclass(frozen=True)
class MergedConfigFile:
    """The config file's content (``document``: plain data, ciphertexts only), the keys ESC added
    or merged into, and the keys written with ``secure:`` values from ESC.

    Example::

        merged.text()     # '"encryptionsalt": "v1:..."\n"config":\n  "aws:region": "eu-west-1"\n'
    """

    document: dict[str, Any]
    esc_keys: tuple[str, ...] = ()
    secret_keys: tuple[str, ...] = ()

    def text(self) -> str:
        """The YAML text of ``document`` (:func:`yaml_document`)."""
        return yaml_document(self.document)


class _Pending:
    """A place in the document awaiting the ciphertext of ``secret``."""

    __slots__ = ("secret",)

    def __init__(self, secret: SecretText) -> None:
        self.secret = secret

    def __repr__(self) -> str:
        return f"_Pending({self.secret.key!r})"


def _plain(v: "Value", key: str) -> Any:
    from ..esc.values import contains_unknown, to_plain

    if contains_unknown(v):
        raise MappingError(f"pulumiConfig key {key!r} is unknown (a value that could not be computed)")
    return to_plain(v)


def _secret_leaves(v: "Value", key: str) -> Any:
    """``v`` as plain data with every secret part replaced by a pending ``{secure:}`` leaf of its
    config text (iterative: any depth)."""
    from ..esc.values import contains_secret

    out: list[Any] = [None]
    todo: list[tuple["Value", Any, Any]] = [(v, out, 0)]
    while todo:
        x, parent, slot = todo.pop()
        if not contains_secret(x):
            parent[slot] = _plain(x, key)
        elif x.secret or not isinstance(x.repr, (dict, list)):
            parent[slot] = {"secure": _Pending(SecretText(key, config_text(_plain(x, key))))}
        elif isinstance(x.repr, dict):
            d: dict[str, Any] = dict.fromkeys(x.repr)
            parent[slot] = d
            todo.extend((c, d, k) for k, c in x.repr.items())
        else:
            lst: list[Any] = [None] * len(x.repr)
            parent[slot] = lst
            todo.extend((c, lst, i) for i, c in enumerate(x.repr))
    return out[0]


def _mergeable(stack_value: Any, v: "Value") -> bool:
    return (
        isinstance(stack_value, dict)
        and not is_secure(stack_value)
        and not v.unknown
        and isinstance(v.repr, dict)
    )


_Slot = tuple  # (holder dict, key, ESC Value, secret by inheritance)


def _merge(stack_value: dict, v: "Value") -> tuple[dict, list[_Slot]]:
    """The stack object laid over ESC's (stack wins per key; objects on both sides merge).

    Returns the merged skeleton, with ESC's surviving parts left as ``(holder, key, Value,
    inherited)`` slots for the caller to fill (plain, or with pending secrets); ``inherited``:
    the part lies inside a secret ESC object."""
    root: dict[str, Any] = {}
    slots: list[_Slot] = []
    todo: list[tuple[dict, "Value", dict, bool]] = [(stack_value, v, root, bool(v.secret))]
    while todo:
        s, e, out, sec = todo.pop()
        assert isinstance(e.repr, dict)
        for k, sv in s.items():
            ev = e.repr.get(k)
            if ev is not None and _mergeable(sv, ev):
                child: dict[str, Any] = {}
                out[k] = child
                todo.append((sv, ev, child, sec or bool(ev.secret)))
            else:
                out[k] = sv
        for k, ev in e.repr.items():
            if k not in s:
                out[k] = None
                slots.append((out, k, ev.with_(secret=True) if sec else ev, sec))
    return root, slots


def _fill(root: Any, slots: list[_Slot], key: str, *, leaves: bool) -> Any:
    for holder, k, ev, _ in slots:
        holder[k] = _secret_leaves(ev, key) if leaves else _plain(ev, key)
    return root


def merge_stack_config(
    stack_document: Mapping[str, Any],
    stack_config: Mapping[str, Any],
    esc: Mapping[str, "Value"],
    *,
    encrypt: Encrypt,
) -> MergedConfigFile:
    """The config file for a stack: ``stack_document`` (the whole stack file as typed data) with
    ``config`` replaced by ``stack_config`` (full ``ns:key`` keys, typed values) merged with the
    opened ``pulumiConfig`` values ``esc`` (full keys; see the module rules), and
    ``environment`` dropped. ``encrypt`` is called once, with every secret to write (not at
    all when there is none), and must return their ``secure:`` ciphertexts.

    Example::

        merged = merge_stack_config({}, {}, {"myproj:pw": from_plain("x", secret=True)},
                                    encrypt=lambda ss: ["v1:..." for _ in ss])
        merged.document     # {'config': {'myproj:pw': {'secure': 'v1:...'}}}
    """
    from ..esc.values import contains_secret

    config: dict[str, Any] = {}
    esc_keys: list[str] = []
    secret_keys: list[str] = []
    for key, raw in stack_config.items():
        v = esc.get(key)
        if v is None or not _mergeable(raw, v):
            config[key] = raw
            continue
        esc_keys.append(key)
        skeleton, slots = _merge(raw, v)
        if not any(sec or contains_secret(ev) for _, _, ev, sec in slots):
            config[key] = _fill(skeleton, slots, key, leaves=False)
        elif not contains_secure(skeleton):
            merged = _fill(skeleton, slots, key, leaves=False)
            config[key] = {"secure": _Pending(SecretText(key, config_text(merged)))}
            secret_keys.append(key)
        else:
            config[key] = _fill(skeleton, slots, key, leaves=True)
            secret_keys.append(key)
    for key, v in esc.items():
        if key in stack_config:
            continue
        esc_keys.append(key)
        if contains_secret(v):
            config[key] = {"secure": _Pending(SecretText(key, config_text(_plain(v, key))))}
            secret_keys.append(key)
        else:
            config[key] = _plain(v, key)

    pending = _pending_places(config)
    if pending:
        ciphertexts = list(encrypt([p.secret for _, _, p in pending]))
        if len(ciphertexts) != len(pending) or not all(isinstance(c, str) and c for c in ciphertexts):
            raise ConfigurationError("the secrets manager returned no ciphertext for some secrets")
        for (holder, slot, _), c in zip(pending, ciphertexts):
            holder[slot] = c

    document: dict[str, Any] = {}
    for k, val in stack_document.items():
        if k in DROPPED_KEYS:
            continue
        document[k] = config if k == "config" else val
    document["config"] = config
    return MergedConfigFile(document, tuple(esc_keys), tuple(secret_keys))


def _pending_places(data: Any) -> list[tuple[Any, Any, _Pending]]:
    found: list[tuple[Any, Any, _Pending]] = []
    todo = [data]
    while todo:
        x = todo.pop()
        items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()
        for slot, c in items:
            if isinstance(c, _Pending):
                found.append((x, slot, c))
            elif isinstance(c, (dict, list)):
                todo.append(c)
    found.reverse()
    return found


# -- the typed YAML writer ------------------------------------------------------------------------


def _yaml_string(s: str) -> str:
    """A double-quoted YAML scalar: read back by yaml.v3 as exactly ``s``, as a string."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif o < 0x20 or 0x7F <= o <= 0x9F:
            out.append(f"\\x{o:02x}")
        elif 0xD800 <= o <= 0xDFFF:
            # Not a character: no UTF-8 text (and no YAML escape) can hold it.
            raise ConfigurationError("a config value holds an unpaired surrogate: it cannot be written as YAML")
        elif o in (0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF):
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _yaml_number(n: int | float) -> str:
    text = getattr(n, "text", None)
    if text is not None:  # a number from fn::fromJSON: an integer when its text is one
        exact = _as_int64(text)
        if exact is not None:
            return str(exact)
        n = float(n)
    if isinstance(n, int):
        from ..esc.values import int_text

        return int_text(n)
    f = float(n)
    if math.isnan(f):
        return ".nan"
    if math.isinf(f):
        return ".inf" if f > 0 else "-.inf"
    return repr(f)  # always with '.' or 'e': yaml.v3 reads it back as this float


def _scalar(x: Any) -> str:
    if x is None:
        return "null"
    if x is True:
        return "true"
    if x is False:
        return "false"
    if isinstance(x, str):
        return _yaml_string(x)
    if isinstance(x, (int, float)):
        return _yaml_number(x)
    raise ConfigurationError(f"cannot write a {type(x).__name__} value as stack config")


def yaml_flow(data: Any) -> str:
    """``data`` (dicts, lists, str, int, float, bool, None) as one line of flow-style YAML,
    typed as yaml.v3 reads it back. Iterative, so any depth.

    Example::

        yaml_flow({"a": [1, 2.5, "yes"], "b": None})     # '{"a": [1, 2.5, "yes"], "b": null}'
    """
    out: list[str] = []
    text = object()
    todo: list[Any] = [data]
    while todo:
        x = todo.pop()
        if type(x) is tuple and len(x) == 2 and x[0] is text:
            out.append(x[1])
        elif isinstance(x, dict):
            parts: list[Any] = [(text, "{")]
            for i, (k, c) in enumerate(x.items()):
                parts.append((text, (", " if i else "") + _yaml_string(str(k)) + ": "))
                parts.append(c)
            parts.append((text, "}"))
            todo.extend(reversed(parts))
        elif isinstance(x, (list, tuple)):
            parts = [(text, "[")]
            for i, c in enumerate(x):
                if i:
                    parts.append((text, ", "))
                parts.append(c)
            parts.append((text, "]"))
            todo.extend(reversed(parts))
        else:
            out.append(_scalar(x))
    return "".join(out)


def yaml_document(document: Mapping[str, Any]) -> str:
    """A stack file document as YAML: top-level keys in block style, ``config`` one key per line,
    every value in flow style (:func:`yaml_flow`).

    Example::

        yaml_document({"config": {"p:n": 1e6, "p:s": "on"}})
        # '"config":\\n  "p:n": 1000000.0\\n  "p:s": "on"\\n'
    """
    lines: list[str] = []
    for key, value in document.items():
        if key == "config" and isinstance(value, dict) and value:
            lines.append(f"{_yaml_string(str(key))}:")
            for k, v in value.items():
                lines.append(f"  {_yaml_string(str(k))}: {yaml_flow(v)}")
        else:
            lines.append(f"{_yaml_string(str(key))}: {yaml_flow(value)}")
    return "\n".join(lines) + "\n" if lines else "{}\n"


def write_private_file(path: str | os.PathLike[str], text: str) -> Path:
    """Create ``path`` (it must not exist) readable by its owner only (0600) holding ``text``.

    Example::

        write_private_file(Path(tmpdir) / "Pulumi.dev.yaml", merged.text())
    """
    p = Path(path)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            fd = -1
            f.write(text)
    finally:
        if fd != -1:
            os.close(fd)
    return p
