"""Fixtures for the AWS providers: moto's emulator as a server on 127.0.0.1 (one per session,
emptied before each test), the environment pointing boto3 at it, and the integration suite's
``project`` (a throwaway Pulumi project with definitions under ``envs/``, ``file://envs``).
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from ..integration.conftest import clean_process, project  # noqa: F401  (fixtures, reused)
from . import emulator as emu

REGION = emu.REGION

# Settings of the developer's shell that would change what boto3 does under test.
_AWS_SCRUB = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_SSM",
    "ESC_PULUMI_OIDC_TOKEN",
    "ESC_PULUMI_OIDC_TOKEN_FILE",
)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emu.Emulator]:
    """moto on 127.0.0.1 with its request recorder on, for the whole session."""
    server = emu.start(tmp_path_factory.mktemp("moto"), record=True)
    try:
        yield server
    finally:
        server.stop()


def oidc_definition(role: str, session_name: str, secret_id: str, oidc_extra: str = "", values: str = "") -> str:
    """An environment that logs in with ``aws-login``'s ``oidc`` (``oidc_extra``: more of its
    inputs, as indented lines) and reads the secret ``secret_id`` as the config key ``apiKey``;
    ``values``: more top-level values, as indented lines."""
    return f"""
values:
  aws:
    login:
      fn::open::aws-login:
        oidc:
          roleArn: {role}
          sessionName: {session_name}{oidc_extra}
    secrets:
      fn::open::aws-secrets:
        region: {REGION}
        login: ${{aws.login}}
        get:
          api-key: {{secretId: {secret_id}}}
  pulumiConfig:
    apiKey: ${{aws.secrets.api-key}}
{values}"""


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def aws_environ(tmp: Path, endpoint: str) -> dict[str, str]:
    """What a process needs to talk to the emulator: boto3's own endpoint setting, and no
    AWS config of the developer's (files, profiles, the instance metadata service)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@dataclass
class Aws:
    """The emulator, emptied, with this process's environment pointed at it."""

    server: emu.Emulator
    environ: dict[str, str]

    def client(self, service: str, region: str = REGION) -> Any:
        return self.server.client(service, region)

    def requests(self) -> list[dict[str, Any]]:
        return self.server.requests()


@pytest.fixture
def aws(moto_server: emu.Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Aws:
    moto_server.reset()
    for name in _AWS_SCRUB:
        monkeypatch.delenv(name, raising=False)
    environ = aws_environ(tmp_path, moto_server.url)
    for k, v in environ.items():
        monkeypatch.setenv(k, v)
    moto_server.requests()  # what the test sends starts here
    return Aws(moto_server, environ)


@pytest.fixture
def scrubbed_environ() -> dict[str, str]:
    """os.environ without the AWS and OIDC settings of the developer's shell (for children)."""
    return {k: v for k, v in os.environ.items() if k not in _AWS_SCRUB}
