"""Pulumi's wire form of property values, read without importing pulumi.

The SDK serializes resource inputs and stack outputs into a protobuf ``Struct`` in which a few
values are special objects tagged with a signature key. Their signatures are fixed by the wire
protocol (every SDK and the engine agree on them), so they are spelt out here rather than
imported from ``pulumi.runtime.rpc``: reading a recorded run must stay cheap and must not depend
on private names of the SDK.

- a secret: ``{SIG_KEY: SECRET_SIG, "value": v}``;
- an output value (sent to multi-language components): ``{SIG_KEY: OUTPUT_VALUE_SIG,
  "value": v, "secret": true, "dependencies": [...]}``, ``value`` absent when unknown;
- an unknown value during a preview: the string :data:`UNKNOWN_WIRE`.

Example::

    wire = {"host": "db", "password": {SIG_KEY: SECRET_SIG, "value": "hunter2"}}
    unwrap(wire)          # {'host': 'db', 'password': 'hunter2'}
    secret_paths(wire)    # ['password']
    mask(wire)            # {'host': 'db', 'password': '[secret]'}
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterator

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
OUTPUT_VALUE_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
UNKNOWN_WIRE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

SECRET_TEXT = "[secret]"

# Integers travel as protobuf doubles; within this range a whole double is exactly an integer.
_EXACT_INT = 2**53

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")


class Unknown:
    """The value of an output that is not known yet (a preview); ``UNKNOWN`` is its only instance.

    Example::

        from esc_pulumi.testing import UNKNOWN
        assert run.resources[0].inputs["arn"] is UNKNOWN
    """

    _instance: "Unknown | None" = None

    def __new__(cls) -> "Unknown":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN = Unknown()


def is_secret_wrapper(obj: Any) -> bool:
    """A secret, or an output value marked secret."""
    if not isinstance(obj, dict):
        return False
    sig = obj.get(SIG_KEY)
    return sig == SECRET_SIG or (sig == OUTPUT_VALUE_SIG and bool(obj.get("secret")))


def _whole(value: float) -> Any:
    if value.is_integer() and abs(value) < _EXACT_INT:
        return int(value)
    return value


def unwrap(obj: Any) -> Any:
    """The plain value of a wire value: secrets and output values replaced by what they hold,
    the unknown marker by :data:`UNKNOWN`, whole numbers (doubles on the wire) as ``int``.
    Other special objects (resource references, assets, archives) are kept as they are."""
    if isinstance(obj, dict):
        sig = obj.get(SIG_KEY)
        if sig == SECRET_SIG:
            return unwrap(obj.get("value"))
        if sig == OUTPUT_VALUE_SIG:
            return unwrap(obj["value"]) if "value" in obj else UNKNOWN
        return {k: unwrap(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unwrap(v) for v in obj]
    if isinstance(obj, float):
        return _whole(obj)
    if obj == UNKNOWN_WIRE:
        return UNKNOWN
    return obj


def join_path(path: str, key: str) -> str:
    """``path.key``, or ``path["key"]`` for keys that would read ambiguously."""
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def iter_secret_paths(obj: Any, path: str = "") -> Iterator[str]:
    """Dotted paths (``tags.team``, ``list[0]``) of the secret values in a wire value."""
    if is_secret_wrapper(obj):
        yield path
        return
    if isinstance(obj, dict):
        if obj.get(SIG_KEY) == OUTPUT_VALUE_SIG:
            yield from iter_secret_paths(obj.get("value"), path)
            return
        for k, v in obj.items():
            yield from iter_secret_paths(v, join_path(path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from iter_secret_paths(v, f"{path}[{i}]")


def secret_paths(obj: Any) -> list[str]:
    """:func:`iter_secret_paths` as a sorted list."""
    return sorted(iter_secret_paths(obj))


def mask(obj: Any) -> Any:
    """The unwrapped value with every secret shown as ``[secret]`` (for reprs and reports)."""
    if is_secret_wrapper(obj):
        return SECRET_TEXT
    if isinstance(obj, dict):
        if obj.get(SIG_KEY) == OUTPUT_VALUE_SIG:
            return mask(obj["value"]) if "value" in obj else UNKNOWN
        return {k: mask(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [mask(v) for v in obj]
    return unwrap(obj)


def secret_texts(obj: Any) -> Iterator[str]:
    """Every plaintext string held inside a secret (to scrub captured output of them)."""
    if is_secret_wrapper(obj):
        yield from _strings(unwrap(obj.get("value")))
        return
    if isinstance(obj, dict):
        for v in obj.values():
            yield from secret_texts(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from secret_texts(v)


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif obj is not None and not isinstance(obj, Unknown):
        yield str(obj)
