"""Several replicas on one store (issue 13): what one writes or opens, another reads; If-Match
writers spread over replicas lose nothing; a replica killed mid-burst loses no acknowledged
write; PostgreSQL stopped and started again mid-run; ``--workers N``; health, readiness and
graceful shutdown; migrations under a lock.

On PostgreSQL the replicas share a database; on SQLite they are processes on one host sharing
the data folder's file (the same guarantees, one machine), started with ``--shared-sessions``:
without it each SQLite server keeps its sessions in its own memory.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import BACKEND, ORG, Env, ServerProcess, database_for, replica_flags, run_cli, start_env


def replicas(data: Path, n: int) -> list[Env]:
    """``n`` servers on the data folder ``data`` (one database, one key)."""
    first = start_env(data, *replica_flags())
    out = [first]
    for _ in range(n - 1):
        out.append(Env(ServerProcess(data, extra=replica_flags()).start(), first.tokens, first.other_admin))
    return out


def stop_all(envs: list[Env]) -> None:
    for e in envs:
        e.server.stop()


def revision_of(headers: dict[str, str]) -> int:
    return int(headers.get("pulumi-esc-revision") or headers.get("Pulumi-ESC-Revision"))


def test_write_on_one_read_and_open_on_another(tmp_path: Path) -> None:
    a, b = replicas(tmp_path / "data", 2)
    try:
        path = f"/environments/{ORG}/rep/app"
        assert a.request("POST", f"/environments/{ORG}", {"project": "rep", "name": "app"})[0] == 204
        status, headers, _ = a.request("PATCH", path, "values:\n  greeting: hello\n  pw: {fn::secret: s3cret}\n")
        assert status == 200
        status, headers_b, text = b.request("GET", path)
        assert status == 200 and "greeting: hello" in text
        assert (headers_b.get("etag") or headers_b.get("ETag")) == (headers.get("etag") or headers.get("ETag"))
        # A session opened on one replica is read on the other, and the other way round.
        for opener, reader in ((a, b), (b, a)):
            status, _, body = opener.request("POST", f"{path}/open")
            assert status == 200
            status, _, opened = reader.request("GET", f"{path}/open/{body['id']}")
            assert status == 200, opened
            assert opened["properties"]["greeting"]["value"] == "hello"
            assert opened["properties"]["pw"]["value"] == "s3cret"
            status, _, prop = reader.request("GET", f"{path}/open//{body['id']}?property=greeting")
            assert status == 200 and prop["value"] == "hello"
            # ... but not as another environment, nor as another organisation.
            assert reader.request("GET", f"/environments/{ORG}/rep/other/open/{body['id']}")[0] == 404
        status, _, body = a.request("POST", f"/environments/{ORG}/yaml/open", "values:\n  x: 1\n", role="opener")
        assert status == 200
        status, _, opened = b.request("GET", f"/environments/{ORG}/yaml/open/{body['id']}", role="opener")
        assert status == 200 and opened["properties"]["x"]["value"] == 1
        # A token revoked through the CLI is refused by every replica within a second or so.
        run_cli("serve", "token", "revoke", "--data", str(a.server.data), "--org", ORG, "reader-user")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if all(e.request("GET", path, role="reader")[0] == 401 for e in (a, b)):
                break
            time.sleep(0.2)
        assert all(e.request("GET", path, role="reader")[0] == 401 for e in (a, b))
    finally:
        stop_all([a, b])


def test_twenty_if_match_writers_on_three_replicas_lose_no_update(tmp_path: Path) -> None:
    envs = replicas(tmp_path / "data", 3)
    try:
        path = f"/environments/{ORG}/race/shared"
        assert envs[0].request("POST", f"/environments/{ORG}", {"project": "race", "name": "shared"})[0] == 204
        assert envs[0].request("PATCH", path, "values:\n  items: []\n")[0] == 200
        writers, per_writer = 20, 2
        acknowledged: list[int] = []
        lock = threading.Lock()

        def append(w: int) -> None:
            e = envs[w % len(envs)]
            done = 0
            while done < per_writer:
                status, headers, text = e.request("GET", path)
                etag = headers.get("etag") or headers.get("ETag")
                items = [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("- ")]
                items.append(f"w{w}-{done}")
                body = "values:\n  items:\n" + "".join(f"    - {x}\n" for x in items)
                status, headers, _ = e.request("PATCH", path, body, headers={"If-Match": etag})
                if status == 200:
                    done += 1
                    with lock:
                        acknowledged.append(revision_of(headers))
                else:
                    assert status == 409, status

        threads = [threading.Thread(target=append, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = writers * per_writer
        # Every acknowledged write got its own revision number, and the numbers are dense.
        assert sorted(acknowledged) == list(range(3, 3 + total))
        status, _, revisions = envs[1].request("GET", f"{path}/versions?count=500")
        assert sorted(r["number"] for r in revisions) == list(range(1, 3 + total))
        status, _, body = envs[2].request("POST", f"{path}/open")
        status, _, opened = envs[0].request("GET", f"{path}/open/{body['id']}")
        items = [v["value"] for v in opened["properties"]["items"]["value"]]
        assert sorted(items) == sorted(f"w{w}-{i}" for w in range(writers) for i in range(per_writer))
    finally:
        stop_all(envs)


def test_sigkill_of_a_replica_during_a_write_burst_loses_no_acknowledged_write(tmp_path: Path) -> None:
    a, b = replicas(tmp_path / "data", 2)
    try:
        names = [f"burst{i}" for i in range(4)]
        for name in names:
            assert b.request("POST", f"/environments/{ORG}", {"project": "kill", "name": name})[0] == 204
        acknowledged: dict[tuple[str, int], int] = {}
        stop = threading.Event()
        lock = threading.Lock()

        def writer(name: str, e: Env) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    status, headers, _ = e.request("PATCH", f"/environments/{ORG}/kill/{name}",
                                                   f"values:\n  counter: {i}\n  s: {{fn::secret: k{i}}}\n")
                except (OSError, http.client.HTTPException):  # the killed replica cut the answer off
                    if e is a:
                        return
                    continue
                if status == 200:
                    with lock:
                        acknowledged[(name, revision_of(headers))] = i

        threads = [threading.Thread(target=writer, args=(n, a if k % 2 == 0 else b)) for k, n in enumerate(names)]
        threads += [threading.Thread(target=writer, args=(n, a)) for n in names[1::2]]  # both replicas on some
        for t in threads:
            t.start()
        while len(acknowledged) < 30:
            time.sleep(0.01)
        a.server.kill()
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        for name in names:
            path = f"/environments/{ORG}/kill/{name}"
            status, _, revisions = b.request("GET", f"{path}/versions?count=500")
            numbers = sorted(r["number"] for r in revisions)
            assert numbers == list(range(1, len(numbers) + 1))  # dense: nothing half-written
            for (n, rev), counter in acknowledged.items():
                if n == name:
                    status, _, text = b.request("GET", f"{path}/versions/{rev}")
                    assert status == 200 and f"counter: {counter}\n" in text
        # ... and the killed one comes back to the same data.
        restarted = ServerProcess(a.server.data, extra=replica_flags()).start()
        try:
            a.server = restarted
            assert a.request("POST", f"/environments/{ORG}/kill/{names[0]}/open")[0] == 200
        finally:
            restarted.stop()
    finally:
        stop_all([b])


@pytest.mark.postgres_only
def test_postgres_stopped_and_started_again_mid_run(tmp_path: Path) -> None:
    env = start_env(tmp_path / "data")
    pg = BACKEND.pg
    assert pg is not None
    try:
        path = f"/environments/{ORG}/away/app"
        assert env.request("POST", f"/environments/{ORG}", {"project": "away", "name": "app"})[0] == 204
        status, _, body = env.request("POST", f"{path}/open")
        assert status == 200
        before = body["id"]
        assert get(env, "/readyz")[0] == 200
        pg.stop_server()
        try:
            status, headers, body = env.request("PATCH", path, "values:\n  x: 1\n")
            assert status == 503, body
            assert "database is unavailable" in body["message"]
            assert headers.get("retry-after") or headers.get("Retry-After")
            assert env.request("GET", path)[0] == 503
            assert env.request("POST", f"{path}/open")[0] == 503
            assert get(env, "/readyz")[0] == 503
            assert get(env, "/healthz")[0] == 200  # alive, only not ready
        finally:
            pg.start_server()
        # It reconnects by itself: no restart of the replica.
        deadline = time.monotonic() + 20
        while get(env, "/readyz")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert get(env, "/readyz")[0] == 200
        status, headers, _ = env.request("PATCH", path, "values:\n  x: 2\n")
        assert status == 200 and revision_of(headers) == 2
        assert env.request("GET", f"{path}/open/{before}")[0] == 200  # the session outlived the outage
        status, _, revisions = env.request("GET", f"{path}/versions")
        assert [r["number"] for r in revisions] == [2, 1]
    finally:
        env.server.stop()


def get(env: Env, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(env.server.url + path, timeout=15) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_health_and_readiness(env: Env) -> None:
    assert get(env, "/healthz") == (200, {"status": "ok"})
    assert get(env, "/readyz") == (200, {"status": "ready"})


def test_several_worker_processes_answer_any_request(tmp_path: Path) -> None:
    env = start_env(tmp_path / "data", "--workers", "2", "--eval-workers", "1")
    try:
        assert env.server.proc is not None
        children = Path(f"/proc/{env.server.proc.pid}/task/{env.server.proc.pid}/children").read_text().split()
        serving = [c for c in children if b"esc-pulumi-serve-worker" in Path(f"/proc/{c}/cmdline").read_bytes()
                   or b"multiprocessing" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(serving) >= 2
        path = f"/environments/{ORG}/workers/app"
        assert env.request("POST", f"/environments/{ORG}", {"project": "workers", "name": "app"})[0] == 204
        assert env.request("PATCH", path, "values:\n  x: 1\n")[0] == 200
        # Each request is a new connection, so the kernel spreads them over both processes.
        for _ in range(20):
            status, _, body = env.request("POST", f"{path}/open")
            assert status == 200
            status, _, opened = env.request("GET", f"{path}/open/{body['id']}")
            assert status == 200 and opened["properties"]["x"]["value"] == 1
        env.server.proc.send_signal(signal.SIGTERM)
        assert env.server.proc.wait(timeout=30) == 0
    finally:
        env.server.kill()


def _established_per_process(pids: list[str], port: int) -> dict[str, int]:
    """How many established connections to ``port`` each process holds (from /proc)."""
    inodes: dict[str, str] = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes[link[8:-1]] = pid
    counts = {pid: 0 for pid in pids}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and f[3] == "01" and f[9] in inodes:
            counts[inodes[f[9]]] += 1
    return counts


def test_keep_alive_connections_are_spread_over_the_worker_processes(tmp_path: Path) -> None:
    # 24 connections made at once, as a load balancer's pool would: with one shared listening
    # socket the process that was waiting took nearly all of them.
    env = start_env(tmp_path / "data", "--workers", "2", "--eval-workers", "1")
    conns: list[socket.socket] = []
    try:
        assert env.server.proc is not None
        children = Path(f"/proc/{env.server.proc.pid}/task/{env.server.proc.pid}/children").read_text().split()
        for _ in range(24):
            conns.append(socket.create_connection(("127.0.0.1", env.server.port), timeout=20))
        for c in conns:
            c.sendall(b"GET /api/esc/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for c in conns:
            assert c.recv(4096).startswith(b"HTTP/1.1 200")
        counts = _established_per_process(children, env.server.port)
        assert sum(counts.values()) == 24, counts
        assert sorted(counts.values())[-2] >= 4, counts  # both serve (a hash split: P(<4) ~ 1e-4)
    finally:
        for c in conns:
            c.close()
        env.server.kill()


def test_graceful_shutdown_finishes_the_request_in_flight(tmp_path: Path) -> None:
    env = start_env(tmp_path / "data")
    try:
        path = f"/api/esc/environments/{ORG}"
        body = json.dumps({"project": "grace", "name": "app"}).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token {env.tokens['admin']}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", env.server.port), timeout=20) as s:
            s.sendall(head + body[:5])  # the request is in flight: its body is still coming
            time.sleep(0.3)
            assert env.server.proc is not None
            env.server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert env.server.proc.poll() is None  # waiting for the request
            s.sendall(body[5:])
            answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 204"), answer[:100]
        # Then it exits (uvicorn re-raises the SIGTERM it caught, so the status says why).
        assert env.server.proc.wait(timeout=20) in (0, -signal.SIGTERM)
        # It was done, not just answered: a new server sees the environment.
        again = ServerProcess(env.server.data).start()
        try:
            env.server = again
            assert env.request("GET", f"/environments/{ORG}/grace/app")[0] == 200
        finally:
            again.stop()
    finally:
        env.server.kill()


def test_replicas_starting_together_migrate_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    check = run_cli("serve", "migrate", "--check", "--data", str(data), check=False)
    assert check.returncode == 1 and "pending: 1 " in check.stdout
    servers = [ServerProcess(data) for _ in range(3)]
    threads = [threading.Thread(target=s.start) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert all(s.proc is not None and s.proc.poll() is None for s in servers)
        check = run_cli("serve", "migrate", "--check", "--data", str(data), check=False)
        assert check.returncode == 0 and "schema up to date" in check.stderr
        url = database_for(data)
        if url:
            import psycopg

            with psycopg.connect(url) as conn:
                rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        else:
            import sqlite3

            con = sqlite3.connect(data / "esc.db")
            rows = con.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
            con.close()
        from esc_pulumi.server.store.migrations import LATEST_VERSION

        assert [r[0] for r in rows] == list(range(1, LATEST_VERSION + 1))
    finally:
        for s in servers:
            s.stop()
    assert os.path.exists(data / "server.key")


@pytest.mark.postgres_only
def test_a_database_that_cannot_be_reached_or_is_not_postgres_is_one_line(tmp_path: Path) -> None:
    import subprocess

    from .conftest import esc_pulumi_command

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "ESC_PULUMI_DATABASE"}
        return subprocess.run([*esc_pulumi_command(), "serve", *args, "--data", str(tmp_path / "d")], env=env,
                              capture_output=True, text=True, timeout=60)

    port = socket.socket()
    port.bind(("127.0.0.1", 0))  # a port nobody listens on
    try:
        url = f"postgresql://esc:hunter2@127.0.0.1:{port.getsockname()[1]}/esc"
        for args in (("token", "list", "--database", url), ("--port", "0", "--database", url)):
            r = cli(*args)
            lines = r.stderr.strip().splitlines()
            assert r.returncode == 1 and len(lines) == 1, r.stderr
            assert lines[0].startswith("esc-pulumi: cannot reach PostgreSQL at postgresql://esc:***@127.0.0.1:")
            assert "hunter2" not in r.stderr and "Traceback" not in r.stderr
    finally:
        port.close()
    r = cli("token", "list", "--database", "mysql://db/esc")
    assert r.returncode == 1 and "--database takes a PostgreSQL URL" in r.stderr
