"""Starting ``esc-pulumi serve`` (first-use review): options, host and port are checked before
anything is created, a failed start creates nothing and says in one line what to do, the
"serving" line comes after the bind, and a key that is not the data's is refused by name."""
from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import (ORG, Env, ServerProcess, cli_environ, create_token, db_execute, esc_pulumi_command, free_port,
                       run_cli)


def serve(data: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A server start that is expected to fail (bounded: a start that works would be killed)."""
    return subprocess.run([*esc_pulumi_command(), "serve", "--data", str(data), *args], capture_output=True,
                          text=True, timeout=60, env={**cli_environ(data), **(env or {})})


def one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("esc-pulumi: "), r.stderr
    assert "Traceback" not in r.stderr and "Errno" not in r.stderr and "serving" not in r.stderr
    return lines[0]


@pytest.mark.parametrize("args, message", [
    (("--port", "99999"), "esc-pulumi: --port 99999 is not a port: use a number from 1 to 65535 (0: any free port)"),
    (("--port", "-5"), "esc-pulumi: --port -5 is not a port"),
    (("--host", "no-such-host.invalid", "--port", "0"), "esc-pulumi: cannot listen on --host 'no-such-host.invalid'"),
    (("--host", "192.0.2.1", "--port", "0"), "esc-pulumi: cannot listen on 192.0.2.1:0: the address is not one of "
                                             "this machine's: use --host 127.0.0.1"),
    (("--session-memory", "0"), "esc-pulumi: --session-memory must be a positive number"),
    (("--session-max-duration", "forever"), "esc-pulumi: --session-max-duration: invalid duration"),
])
def test_bad_options_fail_in_one_line_and_create_nothing(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    data = tmp_path / "data"
    assert one_line(serve(data, *args)).startswith(message)
    assert not data.exists()


def test_a_port_in_use_fails_in_one_line_and_creates_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line(serve(data, "--port", str(port)))
    assert line == (f"esc-pulumi: cannot listen on 127.0.0.1:{port}: the port is in use (another server?): "
                    "stop it or choose another --port")
    assert not data.exists()


def test_serving_is_announced_after_the_bind_with_the_real_port(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data")
    server.data.mkdir(parents=True)
    log = open(server.log_path, "ab")
    server.proc = subprocess.Popen([*esc_pulumi_command(), "serve", "--data", str(server.data), "--port", "0"],
                                   stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=cli_environ(server.data))
    log.close()
    try:
        deadline = time.monotonic() + 60
        while True:
            m = re.search(r"serving the ESC API on http://127\.0\.0\.1:(\d+)/api/esc", server.log_path.read_text())
            if m or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert m, server.log_path.read_text()
        server.port = int(m.group(1))
        with urllib.request.urlopen(server.api + "/ping", timeout=10) as r:  # answering once announced
            assert r.status == 200
    finally:
        server.stop()


def _secret_data(data: Path) -> str:
    token = create_token(data, ORG, "admin", name="admin-user")
    server = ServerProcess(data).start()
    try:
        env = Env(server, {"admin": token}, "")
        assert env.request("POST", f"/environments/{ORG}", {"project": "p", "name": "e"})[0] == 204
        assert env.request("PATCH", f"/environments/{ORG}/p/e", "values:\n  pw: {fn::secret: keyed}\n")[0] == 200
    finally:
        server.stop()
    return token


def _key_file(path: Path) -> Path:
    path.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    os.chmod(path, 0o600)
    return path


def test_another_key_is_refused_naming_its_source(tmp_path: Path) -> None:
    data = tmp_path / "data"
    token = _secret_data(data)
    other = _key_file(tmp_path / "other.key")
    line = one_line(serve(data, "--port", str(free_port()), "--key-file", str(other)))
    assert line == (f"esc-pulumi: the key in {other} (--key-file) is not the key the data in {data} was encrypted "
                    "with: start with the key file that data was created with (--key-file or "
                    "$ESC_PULUMI_SERVER_KEY_FILE)")
    env_var = {**os.environ, "ESC_PULUMI_SERVER_KEY_FILE": str(other)}
    assert "($ESC_PULUMI_SERVER_KEY_FILE) is not the key" in one_line(serve(data, "--port", "0", env=env_var))
    # A missing key file is not replaced by a new key while there is data.
    missing = tmp_path / "missing.key"
    assert "does not exist, but" in one_line(serve(data, "--port", "0", "--key-file", str(missing)))
    assert not missing.exists()
    (data / "server.key").rename(tmp_path / "saved.key")
    assert "the data folder's default key file) does not exist" in one_line(serve(data, "--port", "0"))
    assert not (data / "server.key").exists()
    # The right key, wherever it is, works.
    server = ServerProcess(data, extra=("--key-file", str(tmp_path / "saved.key"))).start()
    try:
        env = Env(server, {"admin": token}, "")
        status, _, body = env.request("POST", f"/environments/{ORG}/p/e/open")
        assert status == 200
        status, _, opened = env.request("GET", f"/environments/{ORG}/p/e/open/{body['id']}")
        assert opened["properties"]["pw"]["value"] == "keyed"
    finally:
        server.stop()


def test_a_data_folder_from_before_the_key_check(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _secret_data(data)
    db_execute(data, "DELETE FROM meta")  # as an earlier version left it: no check value
    other = _key_file(tmp_path / "other.key")
    # checked against a stored ciphertext instead
    assert "is not the key the data" in one_line(serve(data, "--port", "0", "--key-file", str(other)))
    server = ServerProcess(data).start()  # the right key: starts, and records the check value
    server.stop()
    assert db_execute(data, "SELECT count(*) FROM meta WHERE key='key_check'") == [(1,)]


def test_an_unreadable_key_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not base64 at all!\n")
    data = tmp_path / "data"
    line = one_line(serve(data, "--port", "0", "--key-file", str(bad)))
    assert line == (
        f"esc-pulumi: key file {bad} does not hold a 32-byte key (base64 on one line, 64 hex digits, "
        "or 32 raw bytes): create one with `esc-pulumi env keygen FILE` (--key-file)"
    )
    assert not data.exists()


def test_token_commands_keep_working_beside_a_running_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    token = _secret_data(data)
    r = run_cli("serve", "token", "list", "--data", str(data))
    assert "admin-user" in r.stdout and token not in r.stdout


def test_worker_sockets_share_a_port_but_never_join_another_listener() -> None:
    from esc_pulumi.errors import EscError
    from esc_pulumi.server import launch

    groups = launch.bind_for_workers("127.0.0.1", 0, 3)
    try:
        assert len(groups) == 3
        ports = {s.getsockname()[1] for g in groups for s in g}
        assert len(ports) == 1 and len({id(s) for g in groups for s in g}) == 3
        # Another server asking for the same port (even one that set SO_REUSEPORT) is refused.
        with pytest.raises(EscError, match="the port is in use"):
            launch.bind_for_workers("127.0.0.1", ports.pop(), 2)
    finally:
        for g in groups:
            for s in g:
                s.close()
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(EscError, match="the port is in use"):
            launch.bind_for_workers("127.0.0.1", other.getsockname()[1], 2)
