"""End to end through ``esc-pulumi serve``: the server finds the AWS providers through the same
entry points (in its evaluation workers), opens a definition with ``aws-login`` and
``aws-secrets`` against moto, and the real pulumi-esc-sdk client reads the values with their
secret flags. Neither the server's log nor its audit holds a credential or a secret value.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from typing import Iterator

import pytest

from ..server.conftest import ORG, Env, run_cli, start_env
from . import emulator as emu
from .conftest import _AWS_SCRUB, REGION, aws_environ

ACCESS_KEY = "AKIASERVERTEST000001"
SECRET_KEY = "server-secret-access-key-B6"
SECRET_VALUE = "server-secret-value-N1"
PLAINTEXTS = (ACCESS_KEY, SECRET_KEY, SECRET_VALUE)

DEFINITION = f"""
values:
  aws:
    login:
      fn::open::aws-login:
        static:
          accessKeyId: {ACCESS_KEY}
          secretAccessKey: {{fn::secret: {SECRET_KEY}}}
    secrets:
      fn::open::aws-secrets:
        region: {REGION}
        login: ${{aws.login}}
        get:
          api-key: {{secretId: server/api-key}}
  region: {REGION}
  pulumiConfig:
    apiKey: ${{aws.secrets.api-key}}
"""


@pytest.fixture(scope="module")
def service(moto_server: emu.Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    saved = dict(os.environ)
    # The server process (and its workers) inherit the environment it starts with: boto3's
    # endpoint setting pointing at the emulator, none of the developer's AWS settings.
    for name in _AWS_SCRUB:
        os.environ.pop(name, None)
    os.environ.update(aws_environ(tmp_path_factory.mktemp("aws-home"), moto_server.url))
    try:
        e = start_env(tmp_path_factory.mktemp("esc-aws-server"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        yield e
    finally:
        e.server.stop()


def test_open_through_the_server(service: Env, aws) -> None:
    aws.client("secretsmanager").create_secret(Name="server/api-key", SecretString=SECRET_VALUE)
    client = service.client("admin")
    client.create_environment(ORG, "myproj", "aws")
    client.update_environment_yaml(ORG, "myproj", "aws", DEFINITION)

    environment, values, _ = service.client("opener").open_and_read_environment(ORG, "myproj", "aws")
    assert values["pulumiConfig"] == {"apiKey": SECRET_VALUE}
    assert values["aws"]["login"] == {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY, "sessionToken": ""}
    props = environment.properties
    assert props["pulumiConfig"].value["apiKey"]["secret"] is True
    aws_value = props["aws"].value
    assert aws_value["secrets"]["secret"] is True and aws_value["login"]["secret"] is True
    assert not props["region"].secret
    [request] = [r for r in aws.requests() if r["headers"].get("X-Amz-Target") != "secretsmanager.CreateSecret"]
    assert request["headers"]["X-Amz-Target"] == "secretsmanager.GetSecretValue"
    assert f"Credential={ACCESS_KEY}/" in request["headers"]["Authorization"]


def test_a_provider_failure_through_the_server(service: Env, aws) -> None:
    client = service.client("admin")
    client.create_environment(ORG, "myproj", "broken")
    client.update_environment_yaml(ORG, "myproj", "broken", DEFINITION.replace("server/api-key", "server/nope"))
    status, _, body = service.request("POST", f"/environments/{ORG}/myproj/broken/open", role="opener")
    assert status == 400, body
    [diag] = body["diagnostics"]
    assert diag["summary"] == (
        "aws-secrets: get \"api-key\": ResourceNotFoundException: Secrets Manager can't find the specified secret."
    )
    assert not [p for p in PLAINTEXTS if p in str(body)]


def test_no_plaintext_in_the_log_or_the_audit(service: Env, aws) -> None:
    aws.client("secretsmanager").create_secret(Name="server/api-key", SecretString=SECRET_VALUE)
    client = service.client("admin")
    client.create_environment(ORG, "myproj", "audited")
    client.update_environment_yaml(ORG, "myproj", "audited", DEFINITION)
    _, values, _ = service.client("opener").open_and_read_environment(ORG, "myproj", "audited")
    assert values["pulumiConfig"] == {"apiKey": SECRET_VALUE}
    audit = run_cli("serve", "audit", "--data", str(service.server.data)).stdout
    assert "audited" in audit
    log = service.server.log_path.read_text()
    assert [p for p in PLAINTEXTS if p in log + audit] == []


def test_oidc_without_an_issuer_names_the_flag(service: Env, aws) -> None:
    # A server started without --issuer-url has no token to give, and never takes one from its
    # own environment (every organisation would share it): the login fails, naming the flag.
    role = "arn:aws:iam::123456789012:role/esc"
    text = DEFINITION.replace(
        f"static:\n          accessKeyId: {ACCESS_KEY}\n          secretAccessKey: {{fn::secret: {SECRET_KEY}}}",
        f"oidc: {{roleArn: '{role}', sessionName: no-issuer}}",
    )
    assert "oidc:" in text
    client = service.client("admin")
    client.create_environment(ORG, "myproj", "no-issuer")
    client.update_environment_yaml(ORG, "myproj", "no-issuer", text)
    status, _, body = service.request("POST", f"/environments/{ORG}/myproj/no-issuer/open", role="opener")
    assert status == 400, body
    assert body["diagnostics"][0]["summary"] == (
        f'aws-login: oidc: no OIDC token for role "{role}": this server is not an OIDC issuer: start it with '
        "esc-pulumi serve --issuer-url <its public https URL>, and register that URL as an OIDC identity "
        "provider of the AWS account"
    )
    assert aws.requests() == []
    # Nor does it serve an issuer's documents.
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(service.server.url + "/.well-known/openid-configuration", timeout=10)
    assert info.value.code == 404
