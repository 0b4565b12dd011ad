"""Deep definitions over HTTP: stored, opened and read back whole (issue 10 §6: a session read of
a ~495-deep definition answered 500, a RecursionError in the response encoder)."""
from __future__ import annotations

import sys

import pytest

from esc_pulumi.server.encoding import dumps

from .conftest import ORG, Env

DEPTH = 1500


def _deep_definition(depth: int) -> str:
    # values: {d: {d: ... {d: leaf} ...}} in flow style, `depth` objects deep
    return "values:\n  top: " + "{d: " * depth + "leaf" + "}" * depth + "\n"


@pytest.fixture
def deep_client_decoding():
    """Our client's json.loads recurses on depth: let it (the server runs in its own process)."""
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(max(saved, 20_000))
    yield
    sys.setrecursionlimit(saved)


def test_a_deep_definition_opens_and_reads_back(env: Env, unique: str, deep_client_decoding: None) -> None:
    name = f"deep-{unique}"
    assert env.request("POST", f"/environments/{ORG}", {"project": "proj", "name": name})[0] == 204
    status, _, body = env.request("PATCH", f"/environments/{ORG}/proj/{name}", _deep_definition(DEPTH))
    assert status == 200, body
    status, _, opened = env.request("POST", f"/environments/{ORG}/proj/{name}/open")
    assert status == 200, opened
    status, _, read = env.request("GET", f"/environments/{ORG}/proj/{name}/open/{opened['id']}")
    assert status == 200, read
    node = read["properties"]["top"]
    for _ in range(DEPTH - 1):
        node = node["value"]["d"]
    assert node["value"]["d"]["value"] == "leaf"
    # the definition itself reads back too
    status, _, text = env.request("GET", f"/environments/{ORG}/proj/{name}")
    assert status == 200 and text.count("{d: ") == DEPTH


@pytest.mark.parametrize(
    "obj, text",
    [
        ({"a": [1, 2.5, None, True, False]}, '{"a":[1,2.5,null,true,false]}'),
        ({"s": 'é"\n<>&', "e": {}, "l": []}, '{"s":"é\\"\\n<>&","e":{},"l":[]}'),
        ({"n": float("nan"), "i": [float("inf"), float("-inf")]}, '{"n":null,"i":[null,null]}'),
        ([{"x": 10**30, "y": -0.0, "z": 1e300}], '[{"x":1000000000000000000000000000000,"y":-0.0,"z":1e+300}]'),
    ],
)
def test_response_bodies_are_compact_json(obj: object, text: str) -> None:
    assert dumps(obj) == text.encode("utf-8")


def test_response_bodies_of_any_depth_and_with_nan() -> None:
    deep: dict = {}
    node = deep
    for _ in range(20_000):
        node["k"] = {"n": float("nan")}
        node = node["k"]
    # each level is {"k": {"n": NaN, "k": ...}}; the innermost {"n": NaN}
    assert dumps(deep) == ('{"k":' + '{"n":null,"k":' * 19_999 + '{"n":null}' + "}" * 20_000).encode()


def test_a_huge_integer_opens_and_reads_back(env: Env, unique: str, deep_client_decoding: None) -> None:
    name = f"bigint-{unique}"
    assert env.request("POST", f"/environments/{ORG}", {"project": "proj", "name": name})[0] == 204
    status, _, body = env.request("PATCH", f"/environments/{ORG}/proj/{name}", f"values:\n  big: 0x{'f' * 4000}\n")
    assert status == 200, body
    status, _, opened = env.request("POST", f"/environments/{ORG}/proj/{name}/open")
    assert status == 200, opened
    saved = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # our client's json.loads needs it for the answer
    try:
        status, _, read = env.request("GET", f"/environments/{ORG}/proj/{name}/open/{opened['id']}")
    finally:
        sys.set_int_max_str_digits(saved)
    assert status == 200, read
    assert read["properties"]["big"]["value"] == int("f" * 4000, 16)
