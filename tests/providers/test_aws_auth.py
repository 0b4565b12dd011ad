"""Bad credentials, against an emulator that checks them.

moto checks signatures and IAM policies once ``INITIAL_NO_AUTH_ACTION_COUNT`` requests have
been served: this module's own emulator lets exactly the setup through (two users, their keys,
one policy, one secret), then authenticates every request like AWS. A login that AWS refuses
is one diagnostic with AWS's error code and message and no credential in it; nothing is applied.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

import esc_pulumi
from esc_pulumi.errors import DefinitionError

from . import emulator as emu
from .conftest import REGION, aws_environ

SETUP_REQUESTS = 6
STACK = "config:\n  esc:backend: file://envs\n  esc:environments: [myproj/app]\n"


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[emu.Emulator, dict[str, dict[str, str]]]]:
    server = emu.start(
        tmp_path_factory.mktemp("moto-strict"), environ={"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)}
    )
    try:
        iam = server.client("iam")
        keys = {}
        iam.create_user(UserName="reader")  # 1
        iam.put_user_policy(  # 2
            UserName="reader",
            PolicyName="read-secrets",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17",
                 "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}
            ),
        )
        keys["reader"] = iam.create_access_key(UserName="reader")["AccessKey"]  # 3
        iam.create_user(UserName="nobody")  # 4
        keys["nobody"] = iam.create_access_key(UserName="nobody")["AccessKey"]  # 5
        server.client("secretsmanager").create_secret(Name="prod/api-key", SecretString="strict-api-key-Lp6")  # 6
        yield server, {u: {"id": k["AccessKeyId"], "secret": k["SecretAccessKey"]} for u, k in keys.items()}
    finally:
        server.stop()


def definition(key_id: str, secret_key: str) -> str:
    return f"""
values:
  aws:
    login:
      fn::open::aws-login:
        static:
          accessKeyId: {key_id}
          secretAccessKey: {{fn::secret: "{secret_key}"}}
    secrets:
      fn::open::aws-secrets:
        region: {REGION}
        login: ${{aws.login}}
        get:
          api-key: {{secretId: prod/api-key}}
  pulumiConfig:
    apiKey: ${{aws.secrets.api-key}}
"""


@pytest.fixture
def pointed(strict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    server, keys = strict
    for k, v in aws_environ(tmp_path, server.url).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    return keys


def _refused(project, key_id: str, secret_key: str) -> str:
    from pulumi.runtime import config as rconfig

    with pytest.raises(DefinitionError) as info:
        esc_pulumi.load("dev", project(STACK, {"myproj/app": definition(key_id, secret_key)}))
    assert rconfig.CONFIG.get() == {}  # nothing applied
    [d] = info.value.diagnostics
    text = d.summary
    assert key_id not in text and secret_key not in text
    assert key_id not in str(info.value) and secret_key not in str(info.value)
    return text


def test_the_right_key_opens(pointed, project) -> None:
    reader = pointed["reader"]
    result = esc_pulumi.load("dev", project(STACK, {"myproj/app": definition(reader["id"], reader["secret"])}))
    assert result.config["myproj:apiKey"] == "strict-api-key-Lp6"


def test_a_wrong_secret_key(pointed, project) -> None:
    text = _refused(project, pointed["reader"]["id"], "wrong-secret-access-key-0000000000000000")
    assert text == (
        'aws-secrets: get "api-key": SignatureDoesNotMatch: The request signature we calculated does not '
        "match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the "
        "service documentation for details."
    )


def test_an_unknown_key(pointed, project) -> None:
    text = _refused(project, "AKIAUNKNOWNKEY000000", "unknown-secret-access-key-000000000000000")
    assert text == (
        # moto says InvalidClientTokenId where AWS's Secrets Manager says UnrecognizedClientException
        'aws-secrets: get "api-key": InvalidClientTokenId: '
        "The security token included in the request is invalid."
    )


def test_a_key_without_permission(pointed, project) -> None:
    nobody = pointed["nobody"]
    text = _refused(project, nobody["id"], nobody["secret"])
    assert text.startswith('aws-secrets: get "api-key": AccessDenied: User: ')
    assert "is not authorized to perform: secretsmanager:GetSecretValue" in text
