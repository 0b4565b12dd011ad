"""``esc-pulumi serve --issuer-url``: the server as an OIDC issuer, end to end.

A real server (evaluation workers on) with its issuer URL on 127.0.0.1 opens a definition with
``aws-login``'s ``oidc`` mode: the worker mints a token, moto's STS exchanges it
(``AssumeRoleWithWebIdentity``) and the session's credentials sign ``aws-secrets``' request.
moto accepts any web identity token, so the real check of the token is here: the token moto
received is validated with PyJWT (an independent implementation) against the keys the
server's JWKS endpoint publishes — issuer, audience, subject, expiry, signature, ``kid`` — and
a tampered, expired, re-signed or misaddressed token is rejected by the same validation.
"""
from __future__ import annotations

import json
import os
import stat
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import jwt
import pytest

from esc_pulumi.server.oidc import OidcIssuer, SigningKey, TOKEN_LIFETIME

from ..server.conftest import ORG, ROLES, Env, ServerProcess, create_token, free_port, run_cli
from . import emulator as emu
from .conftest import _AWS_SCRUB, Aws, aws_environ, oidc_definition

ROLE = "arn:aws:iam::123456789012:role/esc-issuer"
SECRET_VALUE = "issuer-secret-value-P7"


def definition(extra: str = "") -> str:
    return oidc_definition(ROLE, "esc-issuer-test", "issuer/api-key", extra)


def start_issuing(data: Path, moto: emu.Emulator, home: Path, *extra: str, path: str = "/oidc",
                  environ: dict[str, str] | None = None) -> Env:
    """A server whose issuer URL is its own loopback address (plus ``path``), its environment
    pointed at moto (and none of the developer's AWS settings)."""
    port = free_port()
    tokens = {role: create_token(data, ORG, role, name=f"{role}-user") for role in ROLES}
    other = create_token(data, "other", "admin", name="other-admin")
    saved = dict(os.environ)
    for name in _AWS_SCRUB:
        os.environ.pop(name, None)
    os.environ.update(aws_environ(home, moto.url))
    os.environ.update(environ or {})
    try:
        server = ServerProcess(data, port=port,
                               extra=("--issuer-url", f"http://127.0.0.1:{port}{path}", *extra)).start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Env(server, tokens, other)


@pytest.fixture(scope="module")
def issuing(moto_server: emu.Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = start_issuing(tmp_path_factory.mktemp("esc-issuer"), moto_server, tmp_path_factory.mktemp("aws-home"),
                      "--log-level", "debug")
    try:
        yield e
    finally:
        e.server.stop()


def issuer_url(env: Env) -> str:
    return f"{env.server.url}/oidc"


def get_json(url: str) -> tuple[int, dict[str, str], Any]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, dict(r.headers), json.loads(r.read())


def exchanges(requests: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The AssumeRoleWithWebIdentity requests moto's STS received (their form-encoded bodies)."""
    forms = [dict(urllib.parse.parse_qsl(r.get("body_text") or "")) for r in requests]
    return [f for f in forms if f.get("Action") == "AssumeRoleWithWebIdentity"]


def web_identity_tokens(aws: Aws) -> list[str]:
    """The tokens moto's STS received since the last look."""
    return [f["WebIdentityToken"] for f in exchanges(aws.requests())]


def validate(token: str, env: Env, audience: str = f"aws:{ORG}") -> dict[str, Any]:
    """PyJWT's validation against the server's published keys: the JWKS found through the
    discovery document, the key chosen by the token's ``kid``."""
    _, _, discovery = get_json(issuer_url(env) + "/.well-known/openid-configuration")
    key = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=False).get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=discovery["issuer"],
                      options={"require": ["iss", "aud", "sub", "exp", "iat", "nbf", "jti"]})


def store(env: Env, project: str, name: str, text: str) -> None:
    """Create and define ``project/name`` (raw requests: the SDK refuses the project ``default``)."""
    status, _, body = env.request("POST", f"/environments/{ORG}", {"project": project, "name": name})
    assert status in (200, 204), body
    status, _, body = env.request("PATCH", f"/environments/{ORG}/{project}/{name}", text)
    assert status == 200, body


def open_stored(env: Env, project: str, name: str) -> Any:
    status, _, body = env.request("POST", f"/environments/{ORG}/{project}/{name}/open", role="opener")
    assert status == 200, body
    return body


def test_discovery_and_jwks(issuing: Env) -> None:
    url = issuer_url(issuing)
    status, headers, doc = get_json(url + "/.well-known/openid-configuration")  # no token needed
    assert status == 200 and "max-age" in headers.get("cache-control", "")
    assert doc == {
        "issuer": url,
        "jwks_uri": url + "/.well-known/jwks.json",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti"],
    }
    _, _, jwks = get_json(doc["jwks_uri"])
    [key] = jwks["keys"]
    assert {k: key[k] for k in ("kty", "use", "alg", "e")} == {"kty": "RSA", "use": "sig", "alg": "RS256",
                                                               "e": "AQAB"}
    assert key["kid"] and set(key) == {"kty", "use", "alg", "kid", "n", "e"}  # public members only
    # The same documents at the root (a proxy mapping the issuer's path onto the server's root).
    assert get_json(issuing.server.url + "/.well-known/jwks.json")[2] == jwks
    # The signing key: a 0600 PEM file in the data folder.
    pem = issuing.server.data / "oidc-signing.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert pem.read_text().startswith("-----BEGIN PRIVATE KEY-----")


def test_open_exchanges_a_token_the_jwks_validates(issuing: Env, aws: Aws) -> None:
    aws.client("secretsmanager").create_secret(Name="issuer/api-key", SecretString=SECRET_VALUE)
    store(issuing, "myproj", "app", definition())
    _, values, _ = issuing.client("opener").open_and_read_environment(ORG, "myproj", "app")
    assert values["pulumiConfig"] == {"apiKey": SECRET_VALUE}

    requests = aws.requests()
    [form] = exchanges(requests)
    token = form["WebIdentityToken"]
    before = time.time()
    claims = validate(token, issuing)
    assert claims["iss"] == issuer_url(issuing)
    assert claims["aud"] == f"aws:{ORG}"
    assert claims["sub"] == f"pulumi:environments:org:{ORG}:env:myproj/app"
    assert claims["exp"] - claims["iat"] == TOKEN_LIFETIME and claims["nbf"] == claims["iat"]
    assert before - 60 < claims["iat"] <= before + 1
    _, _, jwks = get_json(issuer_url(issuing) + "/.well-known/jwks.json")
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT", "kid": jwks["keys"][0]["kid"]}
    # The exchange: the role and session asked for, and STS's session signed the next call.
    assert (form["RoleArn"], form["RoleSessionName"], form["DurationSeconds"]) == (ROLE, "esc-issuer-test", "7200")
    signed = [r for r in requests if r["headers"].get("X-Amz-Target") == "secretsmanager.GetSecretValue"]
    assert signed and "Credential=ASIA" in signed[0]["headers"]["Authorization"]

    # Every open mints its own token (a jti each).
    issuing.client("opener").open_and_read_environment(ORG, "myproj", "app")
    [again] = web_identity_tokens(aws)
    assert again != token and validate(again, issuing)["jti"] != claims["jti"]


def test_tampered_expired_and_foreign_tokens_are_rejected(issuing: Env, aws: Aws) -> None:
    aws.client("secretsmanager").create_secret(Name="issuer/api-key", SecretString=SECRET_VALUE)
    store(issuing, "myproj", "tamper", definition())
    open_stored(issuing, "myproj", "tamper")
    [token] = web_identity_tokens(aws)
    validate(token, issuing)  # the control

    header, payload, signature = token.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    forged = jwt.utils.base64url_encode(json.dumps({**claims, "sub": claims["sub"] + "-other"}).encode()).decode()
    with pytest.raises(jwt.InvalidSignatureError):
        validate(f"{header}.{forged}.{signature}", issuing)
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    with pytest.raises(jwt.InvalidSignatureError):
        validate(f"{header}.{payload}.{flipped}", issuing)

    # Tokens signed with the server's own key (read from its data folder) but expired, or for
    # another audience or issuer, fail on those claims.
    own = OidcIssuer.load(issuer_url(issuing), issuing.server.data, create=False)
    expired = own.mint(claims["sub"], f"aws:{ORG}", now=time.time() - 3600)
    with pytest.raises(jwt.ExpiredSignatureError):
        validate(expired, issuing)
    with pytest.raises(jwt.InvalidAudienceError):
        validate(own.mint(claims["sub"], "aws:other"), issuing)
    elsewhere = OidcIssuer(issuer_url(issuing) + "-elsewhere", own.keys)
    with pytest.raises(jwt.InvalidIssuerError):
        validate(elsewhere.mint(claims["sub"], f"aws:{ORG}"), issuing)
    # Another key claiming the server's kid: the signature does not verify.
    impostor = SigningKey(own.keys[0].kid, SigningKey.generate()._private)
    with pytest.raises(jwt.InvalidSignatureError):
        validate(OidcIssuer(own.url, (impostor,)).mint(claims["sub"], f"aws:{ORG}"), issuing)


def test_subject_attributes_and_the_default_project(issuing: Env, aws: Aws) -> None:
    aws.client("secretsmanager").create_secret(Name="issuer/api-key", SecretString=SECRET_VALUE)
    attrs = "\n          subjectAttributes: [currentEnvironment.name, pulumi.user.login]"
    store(issuing, "myproj", "attrs", definition(attrs))
    store(issuing, "default", "plain", definition())
    open_stored(issuing, "myproj", "attrs")
    open_stored(issuing, "default", "plain")
    first, second = web_identity_tokens(aws)
    assert validate(first, issuing)["sub"] == (
        f"pulumi:environments:pulumi.organization.login:{ORG}"
        ":currentEnvironment.name:myproj/attrs:pulumi.user.login:opener-user"
    )
    # Pulumi's audience for the default project is the bare organisation name.
    assert validate(second, issuing, audience=ORG)["sub"] == f"pulumi:environments:org:{ORG}:env:default/plain"


def test_an_unknown_subject_attribute_is_a_check_error(issuing: Env, aws: Aws) -> None:
    text = definition("\n          subjectAttributes: [pulumi.user.email]")
    status, _, body = issuing.request("POST", f"/environments/{ORG}/yaml/check", text, role="opener")
    assert status == 400, body
    assert any("subjectAttributes" in json.dumps(d) for d in body["diagnostics"]), body
    assert aws.requests() == []


def test_an_anonymous_definition_gets_no_token(issuing: Env, aws: Aws) -> None:
    status, _, body = issuing.request("POST", f"/environments/{ORG}/yaml/open", definition(), role="opener")
    assert status == 400, body
    summaries = [d["summary"] for d in body["diagnostics"]]
    assert summaries[0] == (
        f'aws-login: oidc: no OIDC token for role "{ROLE}": the token\'s subject names the environment that '
        "holds the login, and a definition opened anonymously has no name: store it as <project>/<env> (or "
        "import one that holds the login)"
    )
    assert aws.requests() == []


def test_a_login_in_an_imported_environment(issuing: Env, aws: Aws) -> None:
    # What the Pulumi CLI does for a stack's esc:environments: an anonymous definition that
    # imports them. The subject names the environment holding the login (Pulumi Cloud's would
    # say <yaml>).
    aws.client("secretsmanager").create_secret(Name="issuer/api-key", SecretString=SECRET_VALUE)
    store(issuing, "myproj", "imported", definition())
    status, _, body = issuing.request("POST", f"/environments/{ORG}/yaml/open", "imports: [myproj/imported]\n",
                                      role="opener")
    assert status == 200, body
    [token] = web_identity_tokens(aws)
    assert validate(token, issuing)["sub"] == f"pulumi:environments:org:{ORG}:env:myproj/imported"


# -- the signing key, without a server ---------------------------------------------------------


def test_the_key_is_kept_and_rotation_publishes_both(tmp_path: Path) -> None:
    first = OidcIssuer.load("https://esc.example.test/", tmp_path)
    assert first.url == "https://esc.example.test" and first.path == ""
    assert OidcIssuer.load(first.url, tmp_path, create=False).keys[0].kid == first.keys[0].kid
    (tmp_path / "oidc-signing.pem").rename(tmp_path / "oidc-signing.previous.pem")
    rotated = OidcIssuer.load(first.url, tmp_path)
    assert [k.kid for k in rotated.keys][1:] == [first.keys[0].kid] and rotated.keys[0].kid != first.keys[0].kid
    # A token signed before the rotation still verifies against the new JWKS.
    token = first.mint("pulumi:environments:org:acme:env:a/b", "aws:acme")
    jwk = next(k for k in rotated.jwks()["keys"] if k["kid"] == first.keys[0].kid)
    key = jwt.PyJWK(jwk).key
    assert jwt.decode(token, key, algorithms=["RS256"], audience="aws:acme")["sub"].endswith("a/b")
    assert "PRIVATE" not in repr(rotated) + repr(rotated.keys)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(rotated.keys[0])


@pytest.mark.parametrize("url, problem", [
    ("ftp://esc.example.test", "is not a URL"),
    ("esc.example.test", "is not a URL"),
    ("http://esc.example.test", "must be https://"),
    ("https://esc.example.test/?a=1", "no query"),
])
def test_a_bad_issuer_url_stops_the_start(tmp_path: Path, url: str, problem: str) -> None:
    r = run_cli("serve", "--data", str(tmp_path / "d"), "--port", "0", "--issuer-url", url, check=False)
    assert r.returncode != 0 and problem in r.stderr and "--issuer-url" in r.stderr, r.stderr
    assert not (tmp_path / "d").exists()  # nothing created


def test_a_broken_signing_key_stops_the_start(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "oidc-signing.pem").write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    r = run_cli("serve", "--data", str(data), "--port", "0", "--issuer-url", "https://esc.example.test", check=False)
    assert r.returncode != 0 and "is not an unencrypted RSA private key" in r.stderr, r.stderr
    assert "bm90IGEga2V5" not in r.stderr
    assert not (data / "esc.db").exists()
