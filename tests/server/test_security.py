"""Access control and secrets at rest."""
from __future__ import annotations


import pytest

from .conftest import ORG, Env, stored_bytes

SECRETS = ["s3cr3t-plain-one", "another-very-secret-two", "multi\nline-secret-three"]


def _definition() -> str:
    return (
        "values:\n"
        f"  one: {{fn::secret: {SECRETS[0]}}}\n"
        "  two:\n"
        f"    fn::secret: \"{SECRETS[1]}\"\n"
        "  list:\n"
        "    - fn::secret: |\n"
        "        multi\n"
        "        line-secret-three\n"
    )


@pytest.mark.parametrize(
    "role, method, suffix, body, expected",
    [
        (None, "GET", "", None, 401),  # no token
        ("wrong", "GET", "", None, 401),  # a wrong token
        ("reader", "POST", "/open", None, 403),  # a reader opening
        ("reader", "GET", "/decrypt", None, 403),  # a reader decrypting
        ("opener", "PATCH", "", "values: {x: 1}\n", 403),  # an opener updating
        ("editor", "DELETE", "", None, 403),  # an editor deleting
        ("reader", "GET", "", None, 200),
        ("opener", "POST", "/open", None, 200),
    ],
)
def test_roles(env: Env, unique: str, role: str | None, method: str, suffix: str, body: str | None,
               expected: int) -> None:
    name = f"guarded-{unique}"
    assert env.request("POST", f"/environments/{ORG}", {"project": "sec", "name": name})[0] == 204
    kwargs = {"token": "escp_not-a-real-token"} if role == "wrong" else {"role": role}
    status, _, resp = env.request(method, f"/environments/{ORG}/sec/{name}{suffix}", body, **kwargs)
    assert status == expected, resp
    if expected >= 400:
        assert resp["code"] == expected and resp["message"]


def test_reader_sees_only_ciphertext(env: Env, unique: str) -> None:
    name = f"cipher-{unique}"
    env.request("POST", f"/environments/{ORG}", {"project": "sec", "name": name})
    assert env.request("PATCH", f"/environments/{ORG}/sec/{name}", _definition())[0] == 200
    status, _, text = env.request("GET", f"/environments/{ORG}/sec/{name}", role="reader")
    assert status == 200
    for s in SECRETS:
        assert s.split("\n")[-1] not in text
    assert text.count("ciphertext:") == 3


def test_database_holds_no_plaintext(env: Env, unique: str) -> None:
    name = f"atrest-{unique}"
    env.request("POST", f"/environments/{ORG}", {"project": "sec", "name": name})
    assert env.request("PATCH", f"/environments/{ORG}/sec/{name}", _definition())[0] == 200
    # Open and decrypt too: neither may leave plaintext behind.
    assert env.request("POST", f"/environments/{ORG}/sec/{name}/open")[0] == 200
    status, _, decrypted = env.request("GET", f"/environments/{ORG}/sec/{name}/decrypt")
    assert status == 200 and SECRETS[0] in decrypted
    # Every file of the SQLite database (the WAL forced into the main file too), or every value
    # of every PostgreSQL table.
    data = stored_bytes(env.server.data)
    for s in SECRETS:
        for piece in s.split("\n"):
            assert piece.encode() not in data, piece
    # ... and no token in clear either
    for token in env.tokens.values():
        assert token.encode() not in data
