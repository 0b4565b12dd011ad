"""``aws-login`` with ``oidc`` on the file:// backend: the opener's token (``ESC_PULUMI_OIDC_TOKEN``
or ``ESC_PULUMI_OIDC_TOKEN_FILE``) is exchanged with moto's STS (``AssumeRoleWithWebIdentity``,
unsigned), and the session's credentials sign ``aws-secrets``' requests. Without a token the
login fails, saying where to put one, and calls nothing.
"""
from __future__ import annotations

import base64
import json
import os
import urllib.parse
from pathlib import Path

import pytest

import esc_pulumi
from esc_pulumi.backends.local import LocalBackend
from esc_pulumi.errors import DefinitionError
from esc_pulumi.esc import ProviderRegistry
from esc_pulumi.providers.aws import AwsLogin, OidcTokenRequest

from .conftest import Aws, closed_port, oidc_definition

ROLE = "arn:aws:iam::123456789012:role/esc-oidc"
STACK = "config:\n  esc:backend: file://envs\n  esc:environments: [myproj/app]\n"


def jwt(claims: dict) -> str:
    """A token shaped like a CI's OIDC token (moto's STS does not verify signatures)."""
    part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJlLW9pZGMtdGVzdA"


TOKEN = jwt({"iss": "https://ci.example.test", "aud": "aws:acme", "sub": "repo:acme/app:ref:main"})


def app(oidc_extra: str = "") -> str:
    return oidc_definition(ROLE, "esc-pulumi-test", "prod/api-key", oidc_extra, values="""\
  environmentVariables:
    AWS_ACCESS_KEY_ID: ${aws.login.accessKeyId}
    AWS_SESSION_TOKEN: ${aws.login.sessionToken}
""")


def form(body: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(body))


@pytest.fixture
def seeded(aws: Aws) -> Aws:
    aws.client("secretsmanager").create_secret(Name="prod/api-key", SecretString="oidc-api-key-Hv2")
    aws.requests()
    return aws


def test_token_from_the_environment(seeded: Aws, project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESC_PULUMI_OIDC_TOKEN", TOKEN)
    result = esc_pulumi.load("dev", project(STACK, {"myproj/app": app()}))
    assert result.config["myproj:apiKey"] == "oidc-api-key-Hv2"
    assert {"myproj:apiKey"} <= result.secret_keys
    assert result.secret_variables == {"AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"}
    key_id, session_token = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SESSION_TOKEN"]
    assert key_id.startswith("ASIA") and session_token  # a role session's, from STS

    sts, get = seeded.requests()
    # STS: unsigned (the token is the credential), with the opener's token and the inputs.
    assert "Authorization" not in sts["headers"]
    assert form(sts["body_text"]) == {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "RoleArn": ROLE,
        "RoleSessionName": "esc-pulumi-test",
        "WebIdentityToken": TOKEN,
        "DurationSeconds": "7200",  # the default 2h
    }
    # Secrets Manager: signed with the session STS returned.
    assert get["headers"]["X-Amz-Target"] == "secretsmanager.GetSecretValue"
    assert f"Credential={key_id}/" in get["headers"]["Authorization"]
    assert get["headers"]["X-Amz-Security-Token"] == session_token


def test_token_from_a_file(seeded: Aws, project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "oidc-token"
    token_file.write_text(TOKEN + "\n")  # as CI systems write it: a trailing newline
    monkeypatch.setenv("ESC_PULUMI_OIDC_TOKEN_FILE", str(token_file))
    extra = "\n          duration: 1h30m\n          policyArns: [arn:aws:iam::aws:policy/ReadOnlyAccess]"
    result = esc_pulumi.load("dev", project(STACK, {"myproj/app": app(extra)}))
    assert result.config["myproj:apiKey"] == "oidc-api-key-Hv2"
    sts = form(seeded.requests()[0]["body_text"])
    assert sts["WebIdentityToken"] == TOKEN
    assert sts["DurationSeconds"] == "5400"
    assert sts["PolicyArns.member.1.arn"] == "arn:aws:iam::aws:policy/ReadOnlyAccess"


def _error(project, definition: str) -> str:
    with pytest.raises(DefinitionError) as info:
        esc_pulumi.load("dev", project(STACK, {"myproj/app": definition}))
    [d] = info.value.diagnostics  # the login's; aws-secrets, whose login is unknown, is not called
    assert d.path == "values.aws.login"
    return d.summary


def test_no_token(seeded: Aws, project) -> None:
    assert _error(project, app()) == (
        f'aws-login: oidc: no OIDC token to exchange for role "{ROLE}": set ESC_PULUMI_OIDC_TOKEN to the '
        "token, or ESC_PULUMI_OIDC_TOKEN_FILE to a file holding it (a CI's OIDC token, for instance); "
        "the embedded engine issues no tokens itself"
    )
    assert seeded.requests() == []


def test_token_settings_in_conflict(seeded: Aws, project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESC_PULUMI_OIDC_TOKEN", TOKEN)
    monkeypatch.setenv("ESC_PULUMI_OIDC_TOKEN_FILE", str(tmp_path / "t"))
    assert _error(project, app()) == "aws-login: oidc: set ESC_PULUMI_OIDC_TOKEN or ESC_PULUMI_OIDC_TOKEN_FILE, not both"
    assert seeded.requests() == []


def test_an_unreadable_or_empty_token_file(seeded: Aws, project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope"
    monkeypatch.setenv("ESC_PULUMI_OIDC_TOKEN_FILE", str(missing))
    assert _error(project, app()) == (
        f"aws-login: oidc: cannot read the OIDC token file {missing} (ESC_PULUMI_OIDC_TOKEN_FILE): "
        "No such file or directory"
    )
    empty = tmp_path / "empty"
    empty.write_text("\n")
    monkeypatch.setenv("ESC_PULUMI_OIDC_TOKEN_FILE", str(empty))
    assert _error(project, app()) == f"aws-login: oidc: the OIDC token file {empty} (ESC_PULUMI_OIDC_TOKEN_FILE) is empty"
    assert seeded.requests() == []


def test_a_duration_sts_refuses(seeded: Aws, project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESC_PULUMI_OIDC_TOKEN", TOKEN)
    assert _error(project, app("\n          duration: 5m")) == (
        'aws-login: oidc: duration "5m" must be a Go duration from 15m to 12h'
    )
    assert seeded.requests() == []


def test_sts_unreachable(seeded: Aws, project, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", dead)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("ESC_PULUMI_OIDC_TOKEN", TOKEN)
    assert _error(project, app()) == (
        f'aws-login: oidc: AssumeRoleWithWebIdentity "{ROLE}": EndpointConnectionError: '
        f'Could not connect to the endpoint URL: "{dead}/"'
    )
    assert seeded.requests() == []


def test_an_application_token_source(seeded: Aws, project, tmp_path: Path) -> None:
    # The opener's own source (a server issuing tokens would register one like it).
    asked: list[OidcTokenRequest] = []

    def source(request: OidcTokenRequest) -> str:
        asked.append(request)
        return TOKEN

    registry = ProviderRegistry({"aws-login": AwsLogin(token_source=source)})
    folder = project(STACK, {"myproj/app": app("\n          subjectAttributes: [pulumi.user.login]")})
    backend = LocalBackend(folder / "envs", providers=registry, context={"pulumi": {"user": {"login": "ada"}}})
    result = esc_pulumi.load("dev", folder, backend=backend, organization="acme")
    assert result.config["myproj:apiKey"] == "oidc-api-key-Hv2"
    [request] = asked
    assert (request.role_arn, request.session_name, request.subject_attributes) == (
        ROLE, "esc-pulumi-test", ("pulumi.user.login",),
    )
    assert request.context["pulumi"]["user"]["login"] == "ada"
    assert form(seeded.requests()[0]["body_text"])["WebIdentityToken"] == TOKEN


def test_the_audience_and_subject_pulumi_cloud_uses() -> None:
    from esc_pulumi.providers.aws import _oidc_request

    oidc = {"roleArn": ROLE, "sessionName": "s3ss"}
    ctx = {"pulumi": {"organization": {"login": "acme"}}, "currentEnvironment": {"name": "myproj/dev@stable"}}
    r = _oidc_request(oidc, ctx)
    assert (r.audience, r.subject) == ("aws:acme", "pulumi:environments:org:acme:env:myproj/dev")
    r = _oidc_request(oidc, {**ctx, "currentEnvironment": {"name": "dev"}})
    assert (r.audience, r.subject) == ("acme", "pulumi:environments:org:acme:env:default/dev")
    # Without the organisation or the environment's name, nothing is guessed.
    assert _oidc_request(oidc, {"currentEnvironment": {"name": "dev"}}).audience is None
    assert _oidc_request(oidc, {"pulumi": {"organization": {"login": "acme"}}}).subject is None
