"""``esc-pulumi check`` with the AWS providers: their inputs are validated offline against the
providers' input schemas (found through the entry points, as in an open), and nothing is
called — moto's recorder sees no request, and an OIDC login checks without any token.
"""
from __future__ import annotations

import os

import sys
from pathlib import Path

import pytest

from ..cli.conftest import run_script, write
from .conftest import REGION, Aws

GOOD = f"""
values:
  aws:
    static:
      fn::open::aws-login:
        static: {{accessKeyId: AKIACHECK0000000001, secretAccessKey: {{fn::secret: check-secret-key}}}}
    oidc:
      fn::open::aws-login:
        oidc: {{roleArn: "arn:aws:iam::123456789012:role/esc", sessionName: esc-check, duration: 1h}}
    secrets:
      fn::open::aws-secrets:
        region: {REGION}
        login: ${{aws.oidc}}
        get:
          api-key: {{secretId: prod/api-key}}
    params:
      fn::open::aws-parameter-store:
        region: {REGION}
        login: ${{aws.static}}
        get:
          host: {{name: /prod/db/host, decrypt: true}}
  pulumiConfig:
    apiKey: ${{aws.secrets.api-key}}
    host: ${{aws.params.host}}
"""

BAD = """
values:
  login:
    fn::open::aws-login:
      static: {accessKeyId: AKIACHECK0000000001}
  both:
    fn::open::aws-login:
      static: {accessKeyId: a, secretAccessKey: b}
      oidc: {roleArn: "arn:aws:iam::123456789012:role/esc", sessionName: ok}
  oidc:
    fn::open::aws-login:
      oidc: {roleArn: not-an-arn, sessionName: x, duration: two hours}
  secrets:
    fn::open::aws-secrets:
      region: 42
      login: ${login}
      get:
        api-key: {secretID: prod/api-key}
  params:
    fn::open::aws-parameter-store:
      login: {accessKeyId: a, secretAccessKey: b}
      get:
        host: {name: /prod/db/host, decrypt: "yes"}
"""

DURATION = r'"^[-+]?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$"'
BAD_LINES = [
    "envs/myproj/bad.yaml:4:15: error: missing required properties: secretAccessKey",
    "envs/myproj/bad.yaml:7:7: error: exactly one subschema must match",
    "envs/myproj/bad.yaml:7:7: error: expected an object with at most 1 properties",
    'envs/myproj/bad.yaml:11:23: error: string must match the pattern "^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"',
    r'envs/myproj/bad.yaml:11:48: error: string must match the pattern "^[\\w+=,.@-]{2,64}$"',
    f"envs/myproj/bad.yaml:11:61: error: string must match the pattern {DURATION}",
    "envs/myproj/bad.yaml:14:15: error: expected string, got number",
    "envs/myproj/bad.yaml:17:18: error: missing required properties: secretId",
    "envs/myproj/bad.yaml:20:7: error: missing required properties: region",
    "envs/myproj/bad.yaml:22:46: error: expected boolean, got string",
]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    envs = tmp_path / "envs"
    write(envs / "myproj" / "good.yaml", GOOD)
    write(envs / "myproj" / "bad.yaml", BAD)
    return envs


def test_a_valid_definition_checks_offline(aws: Aws, store: Path, tmp_path: Path) -> None:
    r = run_script(["check", "myproj/good"], cwd=tmp_path, env={"ESC_PULUMI_BACKEND": f"file://{store}"})
    assert (r.code, r.out, r.err) == (0, "", "")
    assert aws.requests() == []  # no call, not even to STS: no token is set


def test_invalid_inputs_are_reported_offline(aws: Aws, store: Path, tmp_path: Path) -> None:
    # A URL relative to the cwd: lines name the file as the URL does.
    rel = os.path.relpath(store, tmp_path)
    r = run_script(["check", "myproj/bad"], cwd=tmp_path, env={"ESC_PULUMI_BACKEND": f"file://{rel}"})
    assert r.code == 1, r.err
    assert sorted(r.out.splitlines()) == sorted(BAD_LINES)
    assert aws.requests() == []


def test_a_definition_file(aws: Aws, store: Path, tmp_path: Path) -> None:
    r = run_script(["check", "envs/myproj/bad.yaml"], cwd=tmp_path)
    assert r.code == 1, r.err
    assert sorted(r.out.splitlines()) == sorted(BAD_LINES)
    assert aws.requests() == []


def test_check_needs_no_boto3(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from esc_pulumi.cli.check import check_file

    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.setitem(sys.modules, "botocore", None)
    assert check_file(str(store / "myproj" / "good.yaml")) == []
    summaries = sorted(d.summary for d in check_file(str(store / "myproj" / "bad.yaml")))
    assert summaries == sorted(line.split(": error: ", 1)[1] for line in BAD_LINES)
