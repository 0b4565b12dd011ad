"""The AWS providers through ``esc_pulumi.load()`` on the file:// backend, against moto's
emulator as a server on 127.0.0.1: secrets and parameters are created with boto3, the
definitions open them, the program gets the values as secret config keys; failures are one
diagnostic naming the service and what failed, and nothing is applied.

Expected values are written by hand.
"""
from __future__ import annotations

import base64
import os
import sys

import pytest

import esc_pulumi
from esc_pulumi.errors import DefinitionError

from ..integration.conftest import await_output, runtime_config
from .conftest import REGION, Aws, closed_port

STACK = "config:\n  esc:backend: file://envs\n  esc:environments: [myproj/app]\n"

LOGIN = """
  aws:
    login:
      fn::open::aws-login:
        static:
          accessKeyId: AKIALOADTEST00000001
          secretAccessKey:
            fn::secret: load-test-secret-access-key
"""

APP = f"""
values:
{LOGIN}
    secrets:
      fn::open::aws-secrets:
        region: {REGION}
        login: ${{aws.login}}
        get:
          api-key:
            secretId: prod/api-key
          db:
            secretId: prod/db
          previous:
            secretId: prod/api-key
            versionStage: AWSPREVIOUS
          blob:
            secretId: prod/blob
    params:
      fn::open::aws-parameter-store:
        region: {REGION}
        login: ${{aws.login}}
        get:
          host: {{name: /prod/db/host}}
          hosts: {{name: /prod/db/hosts}}
          password: {{name: /prod/db/password, decrypt: true}}
          sealed: {{name: /prod/db/password}}
          firstHost: {{name: "/prod/db/host:1"}}
  db: {{fn::fromJSON: "${{aws.secrets.db}}"}}
  pulumiConfig:
    apiKey: ${{aws.secrets.api-key}}
    previousKey: ${{aws.secrets.previous}}
    dbUser: ${{db.user}}
    blob: ${{aws.secrets.blob}}
    dbHost: ${{aws.params.host}}
    dbHosts: ${{aws.params.hosts}}
    dbPassword: ${{aws.params.password}}
    sealed: ${{aws.params.sealed}}
    firstHost: ${{aws.params.firstHost}}
  environmentVariables:
    AWS_ACCESS_KEY_ID: ${{aws.login.accessKeyId}}
    AWS_SECRET_ACCESS_KEY: ${{aws.login.secretAccessKey}}
    AWS_SESSION_TOKEN: ${{aws.login.sessionToken}}
    DB_HOST: ${{aws.params.host}}
"""


def seed(aws: Aws) -> None:
    """The resources APP reads, made with boto3 in the emulator."""
    sm = aws.client("secretsmanager")
    sm.create_secret(Name="prod/api-key", SecretString="api-key-v1-Xq8")
    sm.put_secret_value(SecretId="prod/api-key", SecretString="api-key-v2-Zr4")  # v1 becomes AWSPREVIOUS
    sm.create_secret(Name="prod/db", SecretString='{"user": "app-user-P3", "port": 5432}')
    sm.create_secret(Name="prod/blob", SecretBinary=b"\x00\x01binary-Jk")
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/prod/db/host", Value="db-1.internal", Type="String")
    ssm.put_parameter(Name="/prod/db/host", Value="db-2.internal", Type="String", Overwrite=True)
    ssm.put_parameter(Name="/prod/db/hosts", Value="db-1.internal,db-2.internal", Type="StringList")
    ssm.put_parameter(Name="/prod/db/password", Value="db-password-Wm7", Type="SecureString")


def test_values_and_secret_flags(aws: Aws, project) -> None:
    seed(aws)
    app = project(STACK, {"myproj/app": APP})
    result = esc_pulumi.load("dev", app)
    assert {k: v for k, v in result.config.items() if k.startswith("myproj:")} == {
        "myproj:apiKey": "api-key-v2-Zr4",
        "myproj:previousKey": "api-key-v1-Xq8",
        "myproj:dbUser": "app-user-P3",
        "myproj:blob": base64.b64encode(b"\x00\x01binary-Jk").decode(),
        "myproj:dbHost": "db-2.internal",
        "myproj:dbHosts": "db-1.internal,db-2.internal",
        "myproj:dbPassword": "db-password-Wm7",
        "myproj:sealed": result.config["myproj:sealed"],
        "myproj:firstHost": "db-1.internal",
    }
    # Without decrypt: true a SecureString is what AWS returns undecrypted, and still secret.
    assert result.config["myproj:sealed"] != "db-password-Wm7"
    # aws-secrets' whole output is secret, and so is everything derived from it; of the
    # parameters only the SecureStrings are.
    assert result.secret_keys == {
        "myproj:apiKey", "myproj:previousKey", "myproj:dbUser", "myproj:blob", "myproj:dbPassword", "myproj:sealed",
    }
    assert result.secret_variables == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIALOADTEST00000001"
    assert os.environ["AWS_SESSION_TOKEN"] == ""  # a key pair without a session token
    assert os.environ["DB_HOST"] == "db-2.internal"
    _, secret = runtime_config()
    assert "myproj:apiKey" in secret and "myproj:dbHost" not in secret
    assert await_output(esc_pulumi.Config("myproj").require("apiKey")) == ("api-key-v2-Zr4", True)


def test_the_requests_sent(aws: Aws, project) -> None:
    seed(aws)
    aws.requests()
    esc_pulumi.load("dev", project(STACK, {"myproj/app": APP}))
    sent = aws.requests()
    targets = [r["headers"].get("X-Amz-Target") for r in sent]
    assert targets.count("secretsmanager.GetSecretValue") == 4
    assert targets.count("AmazonSSM.GetParameter") == 5
    assert len(sent) == 9  # static login: no call of its own
    # Signed with the login's key pair, in the definition's region.
    assert all("Credential=AKIALOADTEST00000001/" in r["headers"]["Authorization"] for r in sent)
    assert all(f"/{REGION}/" in r["headers"]["Authorization"] for r in sent)
    bodies = [r["body_text"] for r in sent]
    assert '{"SecretId": "prod/api-key", "VersionStage": "AWSPREVIOUS"}' in bodies
    assert '{"Name": "/prod/db/password", "WithDecryption": true}' in bodies
    assert '{"Name": "/prod/db/host", "WithDecryption": false}' in bodies


def _fails(project, definition: str) -> DefinitionError:
    app = project(STACK, {"myproj/app": definition})
    before = dict(os.environ)
    with pytest.raises(DefinitionError) as info:
        esc_pulumi.load("dev", app)
    # Nothing applied: no config, no variable.
    config, secret = runtime_config()
    assert config == {} and secret == set()
    assert dict(os.environ) == before
    return info.value


def test_a_missing_secret(aws: Aws, project) -> None:
    seed(aws)
    broken = APP.replace("secretId: prod/db\n", "secretId: prod/nope\n")
    err = _fails(project, broken)
    [d] = err.diagnostics
    assert d.summary == (
        "aws-secrets: get \"db\": ResourceNotFoundException: Secrets Manager can't find the specified secret."
    )
    # On the call: the fn::open::aws-secrets key, in the definition's file.
    assert d.range.environment.endswith(os.path.join("envs", "myproj", "app.yaml"))
    assert (d.range.begin.line, d.range.begin.column) == (12, 7)
    assert d.path == "values.aws.secrets"


def test_a_missing_parameter(aws: Aws, project) -> None:
    seed(aws)
    err = _fails(project, APP.replace("{name: /prod/db/hosts}", "{name: /prod/db/nope}"))
    [d] = err.diagnostics
    assert d.summary.startswith('aws-parameter-store: get "hosts": ParameterNotFound: ')


def test_the_wrong_region(aws: Aws, project) -> None:
    seed(aws)  # in us-east-1
    err = _fails(project, APP.replace(f"region: {REGION}\n        login: ${{aws.login}}\n        get:\n          api-key",
                                      "region: eu-west-3\n        login: ${aws.login}\n        get:\n          api-key"))
    [d] = err.diagnostics
    assert d.summary == (
        "aws-secrets: get \"api-key\": ResourceNotFoundException: Secrets Manager can't find the specified secret."
    )


def test_a_region_boto3_refuses(aws: Aws, project) -> None:
    err = _fails(project, APP.replace(f"region: {REGION}", "region: not a region"))
    summaries = sorted(d.summary for d in err.diagnostics)
    assert [s.split(": InvalidRegionError: ")[0] for s in summaries] == [
        'aws-parameter-store: region "not a region"',
        'aws-secrets: region "not a region"',
    ]
    assert aws.requests() == []


def test_an_unreachable_endpoint(aws: Aws, project, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # boto3's own retry setting: fail at once
    err = _fails(project, APP)
    assert sorted(d.summary for d in err.diagnostics) == [
        f'aws-parameter-store: get "firstHost": EndpointConnectionError: Could not connect to the endpoint URL: "{dead}/"',
        f'aws-secrets: get "api-key": EndpointConnectionError: Could not connect to the endpoint URL: "{dead}/"',
    ]


def test_per_service_endpoints(aws: Aws, project, monkeypatch: pytest.MonkeyPatch) -> None:
    # boto3's AWS_ENDPOINT_URL_<SERVICE> wins over AWS_ENDPOINT_URL: the general one points
    # nowhere, the two services' own at the emulator.
    seed(aws)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", aws.server.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", aws.server.url)
    result = esc_pulumi.load("dev", project(STACK, {"myproj/app": APP}))
    assert result.config["myproj:apiKey"] == "api-key-v2-Zr4"


def test_invalid_inputs_make_no_call(aws: Aws, project) -> None:
    seed(aws)
    broken = APP.replace("secretId: prod/db\n", "secretID: prod/db\n")
    aws.requests()
    err = _fails(project, broken)
    assert [d.summary for d in err.diagnostics] == ["missing required properties: secretId"]
    # aws-parameter-store's inputs are valid: it ran; aws-secrets was not called.
    targets = {r["headers"].get("X-Amz-Target") for r in aws.requests()}
    assert targets == {"AmazonSSM.GetParameter"}


def test_without_boto3(aws: Aws, project, monkeypatch: pytest.MonkeyPatch) -> None:
    # As if the aws extra were not installed: importing boto3 fails.
    monkeypatch.setitem(sys.modules, "boto3", None)
    aws.requests()
    err = _fails(project, APP)
    summaries = sorted({d.summary for d in err.diagnostics})
    assert summaries == [
        "aws-parameter-store: boto3 is not installed: install the aws extra (pip install 'esc_pulumi[aws]')",
        "aws-secrets: boto3 is not installed: install the aws extra (pip install 'esc_pulumi[aws]')",
    ]
    assert aws.requests() == []
