"""The cloud backend end to end: the real pulumi-esc-sdk client against `esc-pulumi serve` on
127.0.0.1. Skipped (with the reason) when the server cannot start."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import esc_pulumi
from esc_pulumi.errors import AuthenticationError, BackendError, DefinitionError, EnvironmentNotFound

from .conftest import runtime_config, write

ORG = "acme"
SECRET = "s3cr3t-token-value"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli() -> list[str]:
    exe = Path(sys.executable).with_name("esc-pulumi")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "esc_pulumi.cli"]


def _token(data: Path, role: str, org: str = ORG) -> str:
    out = subprocess.run(
        [*_cli(), "serve", "token", "create", "--data", str(data), "--org", org, "--role", role],
        capture_output=True, text=True, timeout=60,
    )
    if out.returncode != 0:
        pytest.skip(f"esc-pulumi serve token create failed: {out.stderr.strip()[-200:]}")
    return out.stdout.strip().splitlines()[-1]


class Server:
    """A running `esc-pulumi serve` with an admin client to create environments."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin = _token(data, "admin")
        self.opener = _token(data, "opener")
        self.proc = subprocess.Popen(
            [*_cli(), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--data", str(data),
             "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.skip(f"esc-pulumi serve exited: {self.proc.stderr.read().decode()[-300:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            pytest.skip("esc-pulumi serve did not start listening")
        import pulumi_esc_sdk as esc

        self.client = esc.esc_client.default_client(host=self.url, access_token=self.admin)
        self.created: set[tuple[str, str]] = set()

    def put(self, name: str, text: str) -> None:
        project, _, env = name.rpartition("/")
        project = project or "default"
        if (project, env) not in self.created:
            self.client.create_environment(ORG, project, env)
            self.created.add((project, env))
        self.client.update_environment_yaml(ORG, project, env, text)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("esc-data"))
    srv.put("shared/base", "values:\n  pulumiConfig:\n    region: eu-west-1\n    obj: {value: kept, other: 1}\n")
    srv.put(
        "myproj/dev",
        "imports: [shared/base]\nvalues:\n  pw: {fn::secret: " + SECRET + "}\n  pulumiConfig:\n    dbPassword: ${pw}\n"
        "    nested: {user: admin, pass: \"${pw}\"}\n  environmentVariables:\n    TOKEN: ${pw}\n    STAGE: dev\n",
    )
    for i in range(20):
        srv.put(f"many/e{i}", f"values:\n  pulumiConfig:\n    k{i}: v{i}\n    last: e{i}\n")
    yield srv
    srv.stop()


@pytest.fixture
def cloud_project(project, server, monkeypatch):
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", server.opener)

    def make(envs: list[str] | None = None, extra: str = "") -> Path:
        names = json.dumps(envs if envs is not None else ["shared/base", "myproj/dev"])
        return project(
            f"config:\n  esc:backend: {server.url}\n  esc:organization: {ORG}\n  esc:environments: {names}\n{extra}"
        )

    return make


class RequestCounter:
    """Counts the HTTP requests the SDK's REST client sends (the requests are real)."""

    def __init__(self, monkeypatch) -> None:
        from pulumi_esc_sdk import rest

        self.count = 0
        real = rest.RESTClientObject.request

        def request(client, *a, **kw):
            self.count += 1
            return real(client, *a, **kw)

        monkeypatch.setattr(rest.RESTClientObject, "request", request)


def test_load_through_the_server(cloud_project, monkeypatch):
    counter = RequestCounter(monkeypatch)
    result = esc_pulumi.load("dev", cloud_project())
    assert counter.count == 2 and result.requests == 2
    config, secret = runtime_config()
    assert config["myproj:region"] == "eu-west-1"
    assert config["myproj:dbPassword"] == SECRET
    assert config["myproj:obj"] == '{"other":1,"value":"kept"}'  # a user key named "value" survives
    assert config["myproj:nested"] == json.dumps({"pass": SECRET, "user": "admin"}, separators=(",", ":"))
    assert secret == {"myproj:dbPassword", "myproj:nested"}  # flags from the opened properties
    assert result.sources["myproj:dbPassword"] == "environment myproj/dev"
    assert result.sources["myproj:region"] == "environment shared/base"
    assert os.environ["TOKEN"] == SECRET and result.secret_variables == {"TOKEN"}
    assert SECRET not in repr(result)


@pytest.mark.parametrize("n", [1, 5, 20])
def test_two_requests_whatever_the_number_of_environments(cloud_project, monkeypatch, n):
    counter = RequestCounter(monkeypatch)
    result = esc_pulumi.load("dev", cloud_project([f"many/e{i}" for i in range(n)]))
    assert counter.count == 2
    assert result.config["myproj:last"] == f"e{n - 1}"  # later environments win
    assert all(result.config[f"myproj:k{i}"] == f"v{i}" for i in range(n))
    esc_pulumi.load("dev", cloud_project([f"many/e{i}" for i in range(n)]))
    assert counter.count == 2  # loading again opens nothing


def test_token_from_the_credentials_file(cloud_project, server, monkeypatch):
    root = cloud_project()
    monkeypatch.delenv("PULUMI_ACCESS_TOKEN")
    write(
        Path(os.environ["PULUMI_CREDENTIALS_PATH"]) / "credentials.json",
        json.dumps({"current": "file://~", "accessTokens": {server.url: server.opener}}),
    )
    assert esc_pulumi.load("dev", root).config["myproj:dbPassword"] == SECRET


def test_inline_environment_mapping(project, server, monkeypatch):
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", server.opener)
    root = project(
        f"environment:\n  imports: [shared/base]\n  values:\n    pulumiConfig:\n      region: inline\n"
        f"config:\n  esc:backend: {server.url}\n  esc:organization: {ORG}\n"
    )
    result = esc_pulumi.load("dev", root)
    assert result.config["myproj:region"] == "inline"
    assert result.sources["myproj:region"] == "environment Pulumi.dev.yaml (inline)"


def test_401_names_the_token_source(cloud_project, monkeypatch):
    root = cloud_project()
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", "escp_not-a-real-token")
    before = dict(os.environ)
    with pytest.raises(AuthenticationError, match="refused the access token.*PULUMI_ACCESS_TOKEN") as e:
        esc_pulumi.load("dev", root)
    assert "escp_not-a-real-token" not in str(e.value)
    assert runtime_config() == ({}, set()) and dict(os.environ) == before


def test_unknown_environment(cloud_project, server):
    with pytest.raises(EnvironmentNotFound) as e:
        esc_pulumi.load("dev", cloud_project(["shared/base", "myproj/nope"]))
    assert str(e.value) == f"environment 'myproj/nope' not found at {server.url} (organization 'acme')"
    assert runtime_config() == ({}, set())


def test_unknown_tag_or_revision_says_which(cloud_project, server):
    with pytest.raises(EnvironmentNotFound) as e:
        esc_pulumi.load("dev", cloud_project(["shared/base@nosuchtag"]))
    assert str(e.value) == f"environment 'shared/base' has no tag 'nosuchtag' at {server.url} (organization 'acme')"
    with pytest.raises(EnvironmentNotFound, match="has no revision '999'"):
        esc_pulumi.load("dev", cloud_project(["shared/base@999"]))
    with pytest.raises(EnvironmentNotFound, match="environment 'shared/nope' not found"):
        esc_pulumi.load("dev", cloud_project(["shared/nope@stable"]))


def _backend(url: str, timeout: float = 60.0, notice=None):
    from esc_pulumi.backends.cloud import CloudBackend
    from esc_pulumi.backends.credentials import Token

    return CloudBackend(url, token=Token("t0k", "PULUMI_ACCESS_TOKEN"), timeout=timeout, notice=notice)


def test_dead_port_in_plain_words():
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(BackendError) as e:
        _backend(url).open({"imports": ["a"]}, organization=ORG)
    assert str(e.value) == f"cannot connect to the ESC service at {url}: connection refused (is the URL right and the service up?)"


def test_silent_service_times_out_and_says_it_waits(monkeypatch):
    import esc_pulumi.backends.cloud as cloud
    from esc_pulumi.backends import backend_from_url

    monkeypatch.setattr(cloud, "WAITING_NOTICE_AFTER", 0.2)
    with socket.socket() as listener:  # accepts connections (the backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        monkeypatch.setenv("ESC_PULUMI_TIMEOUT", "1")
        monkeypatch.setenv("PULUMI_ACCESS_TOKEN", "t0k")
        backend = backend_from_url(url)
        assert backend.timeout == 1.0
        lines: list[str] = []
        backend._notice = lines.append
        t = time.monotonic()
        with pytest.raises(BackendError) as e:
            backend.open({"imports": ["a"]}, organization=ORG)
        assert time.monotonic() - t < 10
    assert "did not answer within 1 s" in str(e.value) and "ESC_PULUMI_TIMEOUT" in str(e.value)
    assert lines and url in lines[0] and "still waiting" in lines[0]


def test_bad_timeout_setting(monkeypatch):
    from esc_pulumi.backends import backend_from_url
    from esc_pulumi.errors import ConfigurationError

    monkeypatch.setenv("ESC_PULUMI_TIMEOUT", "soon")
    with pytest.raises(ConfigurationError, match="ESC_PULUMI_TIMEOUT='soon': expected a number of seconds"):
        backend_from_url("http://127.0.0.1:1")


def test_definition_errors_have_line_and_column(project, server, monkeypatch):
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", server.opener)
    root = project(
        "environment:\n  imports: [shared/base]\n  values:\n    a: ${nope.x}\n"
        f"config:\n  esc:backend: {server.url}\n  esc:organization: {ORG}\n"
    )
    with pytest.raises(DefinitionError, match=r"<yaml>:\d+:\d+: .*nope"):
        esc_pulumi.load("dev", root)
    assert runtime_config() == ({}, set())


def test_dead_server_names_the_url(project, monkeypatch):
    port = _free_port()  # nothing listens there
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", "escp_x")
    root = project(
        f"config:\n  esc:backend: http://127.0.0.1:{port}\n  esc:organization: {ORG}\n  esc:environments: [shared/base]\n"
    )
    before = dict(os.environ)
    with pytest.raises(BackendError, match=rf"cannot connect to the ESC service at http://127\.0\.0\.1:{port}"):
        esc_pulumi.load("dev", root)
    assert runtime_config() == ({}, set()) and dict(os.environ) == before
