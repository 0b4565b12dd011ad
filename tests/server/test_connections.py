"""Slow and idle connections (security review §5): request-head and body deadlines, the
keep-alive timeout, and the connection cap answered 503, against a real ``esc-pulumi serve``.

The deadlines are set to 1 s here so that the tests wait little; every wait is bounded and
the assertions are about what happened (closed, 408, 503), not about how fast.
"""
from __future__ import annotations

import socket
import time
from typing import Iterator

import pytest

from .conftest import ServerProcess, open_fds

QUICK = ("--header-timeout", "1", "--body-timeout", "1", "--keep-alive-timeout", "1")


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory, backend_name: str) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("esc-conn"), extra=QUICK).start()
    try:
        yield server
    finally:
        server.stop()


def connect(server: ServerProcess) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return s


def closed(s: socket.socket) -> bytes | None:
    """What the server sent before closing, or None while the connection is still open."""
    s.setblocking(False)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
    except BlockingIOError:
        return None
    except OSError:
        return data
    finally:
        s.setblocking(True)


def wait_closed(s: socket.socket, seconds: float = 10.0) -> bytes:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = closed(s)
        if got is not None:
            return got
        time.sleep(0.05)
    raise AssertionError("the server kept the connection open")


def test_trickling_request_heads_are_cut_off(quick: ServerProcess) -> None:
    assert quick.proc is not None
    baseline = open_fds(quick.proc.pid)
    head = b"GET /api/esc/ping HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    conns = [connect(quick) for _ in range(40)]
    answers: dict[int, bytes] = {}
    deadline = time.monotonic() + 10  # bounded: 40 clients, one byte each per 0.1 s
    i = 0
    while len(answers) < len(conns) and time.monotonic() < deadline:
        for k, s in enumerate(conns):
            if k in answers:
                continue
            try:
                s.send(head[i % len(head):i % len(head) + 1])
            except OSError:
                pass
            got = closed(s)
            if got is not None:
                answers[k] = got
        i += 1
        time.sleep(0.1)
    for s in conns:
        s.close()
    assert len(answers) == len(conns), f"{len(conns) - len(answers)} trickling connections were kept open"
    assert all(a == b"" or a.startswith(b"HTTP/1.1 408 ") for a in answers.values())
    # Every descriptor the slow clients held is given back.
    deadline = time.monotonic() + 10
    while open_fds(quick.proc.pid) > baseline + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_fds(quick.proc.pid) <= baseline + 2


def test_a_silent_connection_gets_408(quick: ServerProcess) -> None:
    s = connect(quick)
    answer = wait_closed(s)
    s.close()
    assert answer.startswith(b"HTTP/1.1 408 ") and b'"code":408' in answer


def test_a_trickling_body_is_cut_off(quick: ServerProcess) -> None:
    s = connect(quick)
    s.sendall(b"POST /api/esc/environments/acme/yaml/check HTTP/1.1\r\nHost: x\r\nAuthorization: token nope\r\n"
              b"Content-Type: application/x-yaml\r\nContent-Length: 1000\r\n\r\n")
    deadline = time.monotonic() + 10
    answer = None
    while answer is None and time.monotonic() < deadline:
        try:
            s.send(b"a")
        except OSError:
            pass
        answer = closed(s)
        time.sleep(0.1)
    s.close()
    assert answer is not None, "the server kept the trickling body's connection open"


def test_a_pipelined_request_with_a_trickling_body_is_cut_off(quick: ServerProcess) -> None:
    s = connect(quick)
    # A complete request and, in the same packet, the head of a second whose body never ends.
    s.sendall(b"GET /api/esc/ping HTTP/1.1\r\nHost: x\r\n\r\n"
              b"POST /api/esc/environments/acme/yaml/check HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
    first = b""
    while b'"status":"ok"' not in first:  # the first request is answered
        first += s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 ")
    deadline = time.monotonic() + 10
    answer = None
    while answer is None and time.monotonic() < deadline:
        try:
            s.send(b"a")
        except OSError:
            pass
        answer = closed(s)
        time.sleep(0.1)
    s.close()
    assert answer is not None, "the server kept the pipelined request's connection open"


def test_idle_keep_alive_connections_are_closed(quick: ServerProcess) -> None:
    s = connect(quick)
    s.sendall(b"GET /api/esc/ping HTTP/1.1\r\nHost: x\r\n\r\n")
    first = b""
    while b'"status":"ok"' not in first:
        first += s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 ")
    assert wait_closed(s) == b""  # closed after the keep-alive timeout, with nothing more sent
    s.close()


def test_the_server_still_answers_after_slow_clients(quick: ServerProcess) -> None:
    s = connect(quick)
    s.sendall(b"GET /api/esc/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = wait_closed(s)
    s.close()
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_connections_beyond_the_cap_get_503(tmp_path) -> None:
    server = ServerProcess(tmp_path / "data", extra=("--max-connections", "5", "--header-timeout", "30")).start()
    held: list[socket.socket] = []
    try:
        held = [connect(server) for _ in range(5)]
        time.sleep(0.3)  # accepted by the server
        extra = connect(server)
        answer = wait_closed(extra)
        extra.close()
        assert answer.startswith(b"HTTP/1.1 503 ") and b"too many connections" in answer
        for s in held:
            s.close()
        held = []
        deadline = time.monotonic() + 10
        while True:  # room again once they are gone
            s = connect(server)
            s.sendall(b"GET /api/esc/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = wait_closed(s)
            s.close()
            if answer.startswith(b"HTTP/1.1 200 ") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert answer.startswith(b"HTTP/1.1 200 ")
    finally:
        for s in held:
            s.close()
        server.stop()


@pytest.mark.parametrize("flag, value", [("--header-timeout", "0"), ("--body-timeout", "-1"),
                                         ("--keep-alive-timeout", "0"), ("--max-connections", "0")])
def test_bad_connection_flags_are_one_line(tmp_path, flag: str, value: str) -> None:
    from .conftest import run_cli

    r = run_cli("serve", "--data", str(tmp_path / "d"), "--port", "0", flag, value, check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and flag in r.stderr
    assert not (tmp_path / "d").exists()
