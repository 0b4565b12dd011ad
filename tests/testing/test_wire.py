"""The wire form helpers: unwrapping, secret paths, masking (no engine involved)."""
from __future__ import annotations

import pickle

from esc_pulumi.testing import UNKNOWN
from esc_pulumi.testing._wire import (
    OUTPUT_VALUE_SIG,
    SECRET_SIG,
    SIG_KEY,
    UNKNOWN_WIRE,
    mask,
    secret_paths,
    secret_texts,
    unwrap,
)


def secret(v):
    return {SIG_KEY: SECRET_SIG, "value": v}


WIRE = {
    "host": "db",
    "port": 5432.0,
    "ratio": 0.5,
    "password": secret("hunter2"),
    "tags": {"team": secret("web"), "odd.key": secret("x1"), "plain": "p"},
    "list": ["a", secret({"token": "t0k3n", "n": 1.0})],
    "pending": UNKNOWN_WIRE,
    "out": {SIG_KEY: OUTPUT_VALUE_SIG, "value": "v", "secret": True, "dependencies": ["urn:x"]},
    "outPlain": {SIG_KEY: OUTPUT_VALUE_SIG, "value": "w"},
    "outUnknown": {SIG_KEY: OUTPUT_VALUE_SIG},
}


def test_unwrap_removes_wrappers_and_restores_whole_numbers():
    assert unwrap(WIRE) == {
        "host": "db",
        "port": 5432,
        "ratio": 0.5,
        "password": "hunter2",
        "tags": {"team": "web", "odd.key": "x1", "plain": "p"},
        "list": ["a", {"token": "t0k3n", "n": 1}],
        "pending": UNKNOWN,
        "out": "v",
        "outPlain": "w",
        "outUnknown": UNKNOWN,
    }
    assert isinstance(unwrap(WIRE)["port"], int)
    assert isinstance(unwrap(2.0**60), float)  # past 2**53 a double is not an exact integer


def test_secret_paths_name_every_secret():
    assert secret_paths(WIRE) == ["list[1]", "out", "password", "tags.team", 'tags["odd.key"]']
    assert secret_paths({"a": "plain"}) == []
    assert secret_paths({'say "hi"': secret(1.0)}) == ['["say \\"hi\\""]']


def test_mask_shows_no_secret():
    masked = mask(WIRE)
    assert masked["password"] == "[secret]" and masked["list"] == ["a", "[secret]"]
    assert masked["tags"] == {"team": "[secret]", "odd.key": "[secret]", "plain": "p"}
    assert masked["out"] == "[secret]" and masked["outPlain"] == "w" and masked["port"] == 5432
    for text in ("hunter2", "web", "t0k3n", "x1"):
        assert text not in repr(masked)


def test_secret_texts_lists_the_plaintexts():
    assert set(secret_texts(WIRE)) == {"hunter2", "web", "x1", "t0k3n", "1", "v"}


def test_unknown_is_one_value():
    assert repr(UNKNOWN) == "UNKNOWN"
    assert pickle.loads(pickle.dumps(UNKNOWN)) is UNKNOWN
    assert type(UNKNOWN)() is UNKNOWN
