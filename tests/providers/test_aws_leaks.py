"""No credential or secret value of the AWS providers reaches a diagnostic, an exception (or
its chain), a repr, a log record or the CLI's output without ``--show-secrets``.

Every plaintext here is distinctive: the key pair and session token of a static login, the
OIDC token, the session credentials moto's STS issues for it, the secret values and the
SecureString parameter. Each scenario searches all of them in everything it can see. Debug
logging is on throughout, as an application debugging its own program would have it: botocore
then logs every request and response body and the signing headers, which is exactly where
these plaintexts would otherwise turn up.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Iterable

import pytest

import esc_pulumi
from esc_pulumi.errors import DefinitionError

from ..cli.conftest import run_script
from .conftest import REGION, Aws, closed_port
from .test_aws_oidc import jwt

ACCESS_KEY = "AKIALEAKTESTQ7Z00001"
SECRET_KEY = "leak-secret-access-key-K9X"
SESSION_TOKEN = "leak-session-token-M3V"
OIDC_TOKEN = jwt({"aud": "aws:acme", "sub": "leak-oidc-subject-T5U"})
SECRET_VALUE = "leak-secret-value-R2D"
JSON_INNER = "leak-json-inner-J4"
SECURE_PARAM = "leak-secure-param-W8"
PLAINTEXTS = [ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, OIDC_TOKEN, SECRET_VALUE, JSON_INNER, SECURE_PARAM]

STACK = "config:\n  esc:backend: file://envs\n  esc:environments: [myproj/app]\n"

APP = f"""
values:
  aws:
    static:
      fn::open::aws-login:
        static:
          accessKeyId: {{fn::secret: {ACCESS_KEY}}}
          secretAccessKey: {{fn::secret: {SECRET_KEY}}}
          sessionToken: {{fn::secret: {SESSION_TOKEN}}}
    oidc:
      fn::open::aws-login:
        oidc: {{roleArn: "arn:aws:iam::123456789012:role/leak", sessionName: leak-test}}
    secrets:
      fn::open::aws-secrets:
        region: {REGION}
        login: ${{aws.static}}
        get:
          value: {{secretId: leak/value}}
          json: {{secretId: leak/json}}
    viaOidc:
      fn::open::aws-secrets:
        region: {REGION}
        login: ${{aws.oidc}}
        get:
          value: {{secretId: leak/value}}
    params:
      fn::open::aws-parameter-store:
        region: {REGION}
        login: ${{aws.static}}
        get:
          secure: {{name: /leak/secure, decrypt: true}}
          plain: {{name: /leak/plain}}
  parsed: {{fn::fromJSON: "${{aws.secrets.json}}"}}
  pulumiConfig:
    value: ${{aws.secrets.value}}
    viaOidc: ${{aws.viaOidc.value}}
    inner: ${{parsed.inner}}
    secure: ${{aws.params.secure}}
    plain: ${{aws.params.plain}}
    greeting: "key ${{aws.secrets.value}} here"
  environmentVariables:
    AWS_ACCESS_KEY_ID: ${{aws.oidc.accessKeyId}}
    AWS_SECRET_ACCESS_KEY: ${{aws.oidc.secretAccessKey}}
    AWS_SESSION_TOKEN: ${{aws.oidc.sessionToken}}
    STATIC_KEY: ${{aws.static.secretAccessKey}}
    SECURE_PARAM: ${{aws.params.secure}}
    PLAIN_PARAM: ${{aws.params.plain}}
  files:
    SECRET_FILE: ${{aws.secrets.value}}
"""


def leaks(texts: Iterable[str], plaintexts: Iterable[str] = PLAINTEXTS) -> list[str]:
    joined = "\n".join(texts)
    return [p for p in plaintexts if p in joined]


def chain(e: BaseException) -> list[str]:
    """The text of an exception and of every exception chained to it."""
    out, seen = [], set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        out += [str(e), repr(e), repr(e.args)]
        e = e.__cause__ or e.__context__
    return out


@pytest.fixture
def seeded(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Aws:
    sm = aws.client("secretsmanager")
    sm.create_secret(Name="leak/value", SecretString=SECRET_VALUE)
    sm.create_secret(Name="leak/json", SecretString=f'{{"inner": "{JSON_INNER}"}}')
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/leak/secure", Value=SECURE_PARAM, Type="SecureString")
    ssm.put_parameter(Name="/leak/plain", Value="plain-visible-param", Type="String")
    monkeypatch.setenv("ESC_PULUMI_OIDC_TOKEN", OIDC_TOKEN)
    return aws


def sts_credentials(aws: Aws) -> list[str]:
    """The session credentials moto's STS issued (the access key and token, as the requests
    signed with them carry them)."""
    out = []
    for r in aws.requests():
        auth = r["headers"].get("Authorization", "")
        if "Credential=ASIA" in auth:
            out.append(auth.split("Credential=")[1].split("/")[0])
            out.append(r["headers"]["X-Amz-Security-Token"])
    assert out, "no request was signed with STS's credentials"
    return out


def test_load_reprs_and_logs(seeded: Aws, project, caplog: pytest.LogCaptureFixture) -> None:
    app = project(STACK, {"myproj/app": APP})
    with caplog.at_level(logging.DEBUG):
        result = esc_pulumi.load("dev", app)
        during = list(caplog.records)
        # The guard is per call: the application's own boto3 use still logs at DEBUG.
        seeded.client("secretsmanager").list_secrets()
    assert any(r.name.startswith("botocore") for r in caplog.records[len(during):])
    assert not [r for r in during if r.name.startswith(("botocore", "urllib3")) and r.levelno < logging.WARNING]

    issued = sts_credentials(seeded) + [os.environ["AWS_SECRET_ACCESS_KEY"]]
    everything = PLAINTEXTS + issued
    # The program got them all, as secrets.
    assert result.config["myproj:value"] == SECRET_VALUE
    assert result.config["myproj:viaOidc"] == SECRET_VALUE
    assert result.config["myproj:inner"] == JSON_INNER
    assert result.config["myproj:secure"] == SECURE_PARAM
    assert os.environ["STATIC_KEY"] == SECRET_KEY
    assert result.secret_keys >= {"myproj:value", "myproj:viaOidc", "myproj:inner", "myproj:secure", "myproj:greeting"}
    assert "myproj:plain" not in result.secret_keys
    shown = [
        caplog.text,
        repr(result), str(result), repr(result.config), repr(result.environment_variables),
        repr(result.masked_config()), repr(result.masked_environment_variables()),
        *(m.getMessage() for m in caplog.records),
    ]
    assert leaks(shown, everything) == []
    assert "plain-visible-param" in repr(result.masked_config())  # what is not secret shows


def test_failures(seeded: Aws, project, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # Three failures at once: a missing secret, a parameter whose name quotes a secret (AWS's
    # message repeats the name), and STS unreachable with the OIDC token in hand.
    broken = (
        APP.replace("{secretId: leak/json}", "{secretId: leak/nope}")
        .replace("{name: /leak/plain}", '{name: "/leak/${aws.static.secretAccessKey}"}')
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with caplog.at_level(logging.DEBUG), pytest.raises(DefinitionError) as info:
        esc_pulumi.load("dev", project(STACK, {"myproj/app": broken}))
    summaries = sorted(d.summary for d in info.value.diagnostics)
    assert [s.split(": ")[0] for s in summaries] == ["aws-login", "aws-parameter-store", "aws-secrets"]
    # The name is derived from a secret, so secret as a whole: masked whole.
    assert summaries[1] == 'aws-parameter-store: get "plain": ParameterNotFound: Parameter [secret] not found.'
    shown = [*summaries, *chain(info.value), repr(info.value.diagnostics), caplog.text]
    assert leaks(shown) == []
    # No result, no variable, no file: nothing applied.
    assert "STATIC_KEY" not in os.environ and "SECRET_FILE" not in os.environ


def _cli(args: list[str], cwd: Path, store: Path) -> str:
    r = run_script(args, cwd=cwd, env={"ESC_PULUMI_BACKEND": f"file://{store}"})
    return r.out + r.err


def test_cli_output(seeded: Aws, tmp_path: Path, project) -> None:
    app = project(STACK, {"myproj/app": APP})
    store = app / "envs"
    outputs = []
    for fmt in ("json", "yaml", "detailed", "dotenv", "shell", "string"):
        outputs.append(_cli(["open", "myproj/app", "--format", fmt], tmp_path, store))
    outputs.append(_cli(["open", "myproj/app", "aws"], tmp_path, store))
    outputs.append(_cli(["open", "myproj/app", "pulumiConfig", "--format", "yaml"], tmp_path, store))
    outputs.append(_cli(["check", "myproj/app"], tmp_path, store))
    outputs.append(_cli(["config", "--stack", "dev"], app, store))
    assert "myproj:value" in outputs[-1]
    # run: the child sees the values; what it prints is masked.
    code = "import os; print(os.environ['STATIC_KEY'], os.environ['SECURE_PARAM'], os.environ['AWS_SECRET_ACCESS_KEY'])"
    ran = _cli(["run", "myproj/app", "--", sys.executable, "-c", code], tmp_path, store)
    assert ran.split() == ["[secret]", "[secret]", "[secret]"], ran
    outputs.append(ran)
    assert all(o for o in outputs[:8])  # (check and config print nothing when all is well)
    assert leaks(outputs) == []
    assert "plain-visible-param" in outputs[0]
    # The control: with --show-secrets the same command shows them (the search can find them).
    shown = _cli(["open", "myproj/app", "--show-secrets"], tmp_path, store)
    assert leaks([shown]) == [ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, SECRET_VALUE, JSON_INNER, SECURE_PARAM]


def test_cli_failures(seeded: Aws, tmp_path: Path, project) -> None:
    broken = APP.replace("{secretId: leak/json}", '{secretId: "${aws.static.secretAccessKey}"}')
    store = project(STACK, {"myproj/app": broken}) / "envs"
    out = _cli(["open", "myproj/app", "--show-secrets"], tmp_path, store)
    assert 'aws-secrets: get "json": ResourceNotFoundException' in out
    assert leaks([out]) == []


def test_check_output(seeded: Aws, tmp_path: Path, project) -> None:
    broken = APP.replace(f"sessionToken: {{fn::secret: {SESSION_TOKEN}}}", "sessionToken: 42")
    store = project(STACK, {"myproj/app": broken}) / "envs"
    seeded.requests()
    out = _cli(["check", "myproj/app"], tmp_path, store)
    assert "error: expected string, got number" in out
    assert leaks([out]) == []
    assert seeded.requests() == []


# -- the server as an OIDC issuer ---------------------------------------------------------------

ISSUED_APP = """
values:
  aws:
    login:
      fn::open::aws-login:
        oidc: {roleArn: "arn:aws:iam::123456789012:role/leak", sessionName: leak-issuer, duration: 1h}
    secrets:
      fn::open::aws-secrets:
        region: %s
        login: ${aws.login}
        get:
          value: {secretId: leak/value}
  pulumiConfig:
    leaked: ${aws.secrets.value}
""" % REGION
# botocore refuses a policy ARN under 20 characters after the token is minted: a failure with
# the token in hand, whose SDK message quotes the request's parameters.
FAILING_APP = ISSUED_APP.replace("duration: 1h}", "duration: 1h, policyArns: [short]}")
JWT_SHAPE = re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{16,}")


def signing_key_texts(data: Path) -> list[str]:
    """The private key as anything could print it: the PEM, each line of its body, and the
    private numbers in base64url (a JWK's form), decimal and hex."""
    from cryptography.hazmat.primitives import serialization

    from esc_pulumi.server.oidc import _uint

    pem = (data / "oidc-signing.pem").read_text()
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    numbers = serialization.load_pem_private_key(pem.encode(), None).private_numbers()
    private = [numbers.d, numbers.p, numbers.q, numbers.dmp1, numbers.dmq1, numbers.iqmp]
    return [pem, *body, *(_uint(n) for n in private), *(str(n) for n in private), *(f"{n:x}" for n in private)]


def test_the_issuers_key_and_tokens_never_show(seeded: Aws, moto_server, tmp_path: Path) -> None:
    from esc_pulumi.server.oidc import OidcIssuer

    from ..server.conftest import ORG, run_cli
    from .test_aws_oidc_issuer import exchanges, start_issuing, store

    # Debug logging, and evaluations on the server's own threads, so that the issuer's and the
    # SDK's log records reach the server's log (spawned workers log nowhere).
    env = start_issuing(tmp_path / "data", moto_server, tmp_path / "aws-home", "--log-level", "debug",
                        "--eval-workers", "0")
    try:
        store(env, "myproj", "issued", ISSUED_APP)
        store(env, "myproj", "failing", FAILING_APP)
        seeded.requests()
        shown: list[str] = []
        # Through the SDK, and through esc-pulumi's own CLI with the server as its backend.
        _, values, _ = env.client("opener").open_and_read_environment(ORG, "myproj", "issued")
        assert values["pulumiConfig"] == {"leaked": SECRET_VALUE}
        cli_env = {"ESC_PULUMI_BACKEND": env.server.url, "ESC_PULUMI_ORGANIZATION": ORG,
                   "PULUMI_ACCESS_TOKEN": env.tokens["opener"]}
        for args in (["--format", "json"], ["--format", "detailed"], ["aws"]):
            r = run_script(["open", "myproj/issued", *args], cwd=tmp_path, env=cli_env)
            assert r.code == 0, r.err
            shown.append(r.out + r.err)
        assert "[secret]" in shown[0], shown
        r = run_script(["open", "myproj/failing"], cwd=tmp_path, env=cli_env)
        assert r.code != 0 and "aws-login: oidc: AssumeRoleWithWebIdentity" in r.err, r.err
        shown.append(r.out + r.err)
        status, _, body = env.request("POST", f"/environments/{ORG}/myproj/failing/open", role="opener")
        assert status == 400 and "ParamValidationError" in body["diagnostics"][0]["summary"], body
        shown.append(json.dumps(body))
        status, _, body = env.request("POST", f"/environments/{ORG}/yaml/open", ISSUED_APP, role="opener")
        assert status == 400
        shown.append(json.dumps(body))
        # What the operator sees.
        data = env.server.data
        for args in (["audit"], ["audit", "--json"], ["token", "list"]):
            r = run_cli("serve", *args, "--data", str(data))
            shown.append(r.stdout + r.stderr)
        assert "myproj/issued" in shown[-3]
    finally:
        env.server.stop()
    log = env.server.log_path.read_text()
    assert "issued an OIDC token: sub pulumi:environments:org:acme:env:myproj/issued" in log, log
    assert "OIDC issuer http://127.0.0.1" in log
    shown.append(log)

    tokens = [f["WebIdentityToken"] for f in exchanges(seeded.requests())]
    assert len(tokens) == 4, tokens  # the SDK's open and the CLI's three
    url = f"{env.server.url}/oidc"
    # A failing open minted a token too (ParamValidationError comes after the mint): mint one
    # more of our own so that every shape of token is searched for.
    tokens.append(OidcIssuer.load(url, data, create=False).mint("sub", "aws:acme"))
    secret = [*tokens, *(t.rsplit(".", 1)[1] for t in tokens), *signing_key_texts(data)]
    assert leaks(shown, secret) == []
    assert [m.group(0) for text in shown for m in JWT_SHAPE.finditer(text)] == []
