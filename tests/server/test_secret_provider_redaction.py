"""The server and its clients with a secret-output provider (issue 9 §1).

The ESC API sends opened values with their secret flags (clients redact by flag), so over HTTP
the rule is: every node of a secret provider's output, and of every reference to a part of it,
carries ``secret: true`` — in a whole open session, a ``?property=`` lookup and an anonymous
``yaml/open``. The redacting clients (``esc-pulumi open`` through the cloud backend) then
print ``[secret]``, and the server log and audit never hold a plaintext.

The server is started the way ``conftest.start_env`` starts it, with the provider published
through the ``esc_pulumi.providers`` entry points on its PYTHONPATH; tests talk to it over HTTP
only (and to the CLI as a subprocess).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from .. import secret_provider as sp
from .conftest import ORG, Env, esc_pulumi_command, run_cli, start_env

IMPORTER = """\
imports:
  - myproj/leak
values:
  ref: ${creds.user}
  part: ${data.nested}
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, backend_name: str) -> Iterator[Env]:
    prov = sp.install(tmp_path_factory.mktemp("providers"))
    saved = os.environ.get("PYTHONPATH")
    # The server process inherits the environment it is started with: only it gets the path.
    os.environ["PYTHONPATH"] = sp.pythonpath_with(prov)
    try:
        e = start_env(tmp_path_factory.mktemp("esc-leak-server"))
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    try:
        for name, text in (("leak", sp.LEAK_ENV), ("importer", IMPORTER)):
            status, _, body = e.request("POST", f"/environments/{ORG}", {"project": "myproj", "name": name})
            assert status == 204, body
            status, _, body = e.request("PATCH", f"/environments/{ORG}/myproj/{name}", text)
            assert status == 200, body
        yield e
    finally:
        e.server.stop()


def open_session(service: Env, name: str, prop: str | None = None) -> Any:
    status, _, body = service.request("POST", f"/environments/{ORG}/myproj/{name}/open", role="opener")
    assert status == 200, body
    path = f"/environments/{ORG}/myproj/{name}/open/{body['id']}"
    if prop is not None:
        path += "?property=" + prop
    status, _, body = service.request("GET", path, role="opener")
    assert status == 200, body
    return body


def nodes(v: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every detailed ``Value`` node under ``v`` (``v`` included)."""
    stack = [v]
    while stack:
        n = stack.pop()
        yield n
        inner = n.get("value")
        if isinstance(inner, dict):
            stack.extend(inner.values())
        elif isinstance(inner, list):
            stack.extend(inner)


def assert_all_secret(v: dict[str, Any]) -> None:
    for n in nodes(v):
        assert n.get("secret") is True, n


def test_open_session_flags_every_part_secret(service: Env) -> None:
    props = open_session(service, "leak")["properties"]
    for key in ("creds", "data", "field", "whole", "deep", "dataItem", "greeting"):
        assert_all_secret(props[key])
    # Deeply, by hand: the inner leaf of the output itself.
    inner = props["creds"]["value"]["nested"]["value"]["deep"]["value"][1]["value"]["inner"]
    assert (inner["value"], inner["secret"]) == ("e2e-inner-V5", True)
    env_vars = props["environmentVariables"]["value"]
    assert env_vars["DB_USER"]["secret"] is True and env_vars["DATA_TOKEN"]["secret"] is True
    assert "secret" not in env_vars["PLAIN_VAR"] and "secret" not in props["environmentVariables"]
    assert_all_secret(props["pulumiConfig"]["value"]["nested"])


@pytest.mark.parametrize("prop", ["creds.nested", "creds.nested.deep[1].inner", "whole.user", "data.nested.list"])
def test_property_lookup_is_secret(service: Env, prop: str) -> None:
    assert_all_secret(open_session(service, "leak", prop))


def test_imported_output_stays_secret(service: Env) -> None:
    props = open_session(service, "importer")["properties"]
    for key in ("ref", "part", "creds", "data"):
        assert_all_secret(props[key])


def test_anonymous_yaml_open(service: Env) -> None:
    text = f"values:\n  out:\n    fn::open::{sp.ECHO}: {{a: {{b: [e2e-user-Q7Z]}}}}\n  ref: ${{out.a.b[0]}}\n"
    status, _, body = service.request("POST", f"/environments/{ORG}/yaml/open", text, role="opener")
    assert status == 200, body
    status, _, body = service.request("GET", f"/environments/{ORG}/yaml/open/{body['id']}", role="opener")
    assert status == 200, body
    assert_all_secret(body["properties"]["out"])
    assert_all_secret(body["properties"]["ref"])


def test_check_runs_no_provider_and_shows_no_plaintext(service: Env) -> None:
    status, _, body = service.request("POST", f"/environments/{ORG}/yaml/check", sp.LEAK_ENV, role="reader")
    assert status == 200, body
    props = body["properties"]
    assert props["creds"]["unknown"] is True and props["field"]["unknown"] is True
    # Check mode calls no provider: its outputs are unknown, so none of their texts shows.
    assert sp.leaks(json.dumps(body)) == []


def cli(service: Env, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESC_PULUMI_", "PULUMI_"))}
    env.update({
        "ESC_PULUMI_BACKEND": service.server.url,
        "ESC_PULUMI_ORGANIZATION": ORG,
        "PULUMI_ACCESS_TOKEN": service.tokens["opener"],
        "PULUMI_HOME": str(tmp_path),
        "PULUMI_CREDENTIALS_PATH": str(tmp_path),
    })
    return subprocess.run([*esc_pulumi_command(), *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("fmt", ["json", "yaml", "dotenv", "shell", "string", "detailed"])
def test_cli_over_the_api_redacts(service: Env, tmp_path: Path, fmt: str) -> None:
    r = cli(service, tmp_path, "open", "myproj/leak", "--format", fmt)
    assert r.returncode == 0, r.stderr
    assert sp.leaks(r.stdout + r.stderr) == []
    assert "[secret]" in r.stdout


def test_cli_over_the_api_json_by_hand(service: Env, tmp_path: Path) -> None:
    r = cli(service, tmp_path, "open", "myproj/leak")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert {k: doc[k] for k in ("creds", "data", "field", "whole", "deep", "dataItem", "greeting")} == {
        "creds": "[secret]", "data": "[secret]", "field": "[secret]", "whole": "[secret]",
        "deep": "[secret]", "dataItem": "[secret]", "greeting": "[secret]",
    }
    assert doc["environmentVariables"] == {
        "DATA_TOKEN": "[secret]", "DB_PASSWORD": "[secret]", "DB_USER": "[secret]", "PLAIN_VAR": "plain-visible",
    }
    r = cli(service, tmp_path, "open", "myproj/leak", "creds.nested.deep[1].inner", "--show-secrets")
    assert (r.returncode, r.stdout) == (0, '"e2e-inner-V5"\n'), r.stderr


def test_server_log_and_audit_hold_no_plaintext(service: Env) -> None:
    open_session(service, "leak")
    open_session(service, "leak", "creds.password")
    log = service.server.log_path.read_text(encoding="utf-8", errors="replace")
    assert "/open" in log  # the requests were logged, without their bodies
    assert sp.leaks(log) == []
    audit = run_cli("serve", "audit", "--data", str(service.server.data))
    assert sp.leaks(audit.stdout + audit.stderr) == []
