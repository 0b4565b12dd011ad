"""``SecretConfigTypeError`` holds no plaintext anywhere in its chain (review item 4).

The SDK's ``ConfigTypeError`` quotes the value, and chains the error of the conversion
(``int()``'s ``ValueError`` quotes it too, ``json``'s ``JSONDecodeError`` keeps the whole text in
``.doc``). ``raise ... from None`` only sets ``__suppress_context__``: ``__context__`` still
holds the SDK's error, and anything walking the chain (``traceback`` with the chain forced,
Sentry-like reporters, ``logging`` of ``exc.__context__``) reaches the plaintext.
"""
from __future__ import annotations

import traceback
from typing import Any, Iterator

import pytest
from pulumi.runtime import config as rconfig

import esc_pulumi
from esc_pulumi.runtime.config import SecretConfigTypeError

PLAINTEXT = "not-a-number-7f3a9c"


def chain(exc: BaseException) -> Iterator[BaseException]:
    """Every exception reachable through __cause__ and __context__ (cycle-safe)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend([e.__cause__, e.__context__])


def texts_of(e: BaseException) -> Iterator[str]:
    """What a reporter could show of one exception: str, repr, args and attributes."""
    yield str(e)
    yield repr(e)
    yield from (repr(a) for a in e.args)
    yield from (repr(v) for v in vars(e).values())


def frame_locals(e: BaseException) -> Iterator[Any]:
    tb = e.__traceback__
    while tb is not None:
        yield from tb.tb_frame.f_locals.values()
        tb = tb.tb_next


@pytest.mark.parametrize(
    "getter",
    ["require_int", "get_int", "require_float", "get_float", "require_bool", "get_bool", "require_object", "get_object"],
)
def test_walking_the_chain_never_finds_the_plaintext(getter):
    rconfig.set_all_config({"proj:pw": PLAINTEXT}, ["proj:pw"])
    cfg = esc_pulumi.Config("proj")
    with pytest.raises(SecretConfigTypeError) as info:
        getattr(cfg, getter)("pw")
    err = info.value
    assert err.__cause__ is None and err.__context__ is None
    assert "proj:pw" in str(err) and "[secret]" in str(err)
    for e in chain(err):
        for text in texts_of(e):
            assert PLAINTEXT not in text, f"{type(e).__name__} holds the plaintext: {text}"
    # Even with the chain forced on, the formatted traceback holds no plaintext.
    formatted = "".join(traceback.format_exception(err, chain=True))
    assert PLAINTEXT not in formatted
    # Nor do the locals of the frames it keeps alive (what "locals in tracebacks" reporters show).
    for value in frame_locals(err):
        assert PLAINTEXT not in repr(value)


def test_the_error_still_says_what_was_expected():
    rconfig.set_all_config({"proj:pw": PLAINTEXT}, ["proj:pw"])
    with pytest.raises(SecretConfigTypeError, match="is not a valid 'int'"):
        esc_pulumi.Config("proj").require_int("pw")


def test_a_plain_key_keeps_the_sdks_error():
    rconfig.set_all_config({"proj:n": "nope"}, [])
    from pulumi.config import ConfigTypeError

    with pytest.raises(ConfigTypeError) as info:
        esc_pulumi.Config("proj").require_int("n")
    assert not isinstance(info.value, SecretConfigTypeError)
