"""Fixtures: a real ``esc-pulumi serve`` process on a free loopback port, tokens made with the
CLI, and SDK clients pointed at it.

Every test here runs on both stores: ``backend_name`` is parametrised ``sqlite`` and
``postgres`` (session scope, so each store's tests run together and the PostgreSQL server,
started once from the machine's binaries, serves them all). On PostgreSQL every data folder a
test uses gets a fresh database of its own (:func:`database_for`), which the helpers here pass
on (``--database`` to servers, ``$ESC_PULUMI_DATABASE`` to the CLI). A test that is about
SQLite's files is marked ``sqlite_only`` and runs once.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from .pgserver import PgServer

ORG = "acme"
BACKENDS = ("sqlite", "postgres")


@dataclass
class Backend:
    """The store the running tests use; ``pg`` is the PostgreSQL server when ``postgres``."""

    name: str = "sqlite"
    pg: PgServer | None = None
    databases: dict[Path, str] = field(default_factory=dict)


BACKEND = Backend()


def database_for(data: Path) -> str | None:
    """The PostgreSQL URL of the data folder ``data`` (a fresh database the first time); None on SQLite."""
    if BACKEND.pg is None:
        return None
    key = Path(data).resolve()
    if key not in BACKEND.databases:
        BACKEND.databases[key] = BACKEND.pg.new_database()
    return BACKEND.databases[key]


def db_execute(data: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run ``sql`` (``?`` placeholders) on the store of the data folder ``data``, committed;
    the rows it returns. For tests that change or inspect the database behind the server."""
    url = database_for(data)
    if url is None:
        import sqlite3

        con = sqlite3.connect(Path(data) / "esc.db")
        try:
            rows = con.execute(sql, params).fetchall()
            con.commit()
        finally:
            con.close()
        return rows
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql.replace("?", "%s"), params)
        return cur.fetchall() if cur.description is not None else []


def stored_bytes(data: Path) -> bytes:
    """Everything the store of ``data`` holds, to search for what must not be there: SQLite's
    files (the WAL checkpointed into the main file first, and the WAL too), or every value of
    every table of the PostgreSQL database (bytea as its raw bytes, anything else as text)."""
    url = database_for(data)
    if url is None:
        import sqlite3

        con = sqlite3.connect(Path(data) / "esc.db")
        con.execute("PRAGMA wal_checkpoint(FULL)")
        con.close()
        files = [p for p in Path(data).iterdir() if p.name.startswith("esc.db")]
        assert files
        return b"".join(p.read_bytes() for p in files)
    import psycopg

    out: list[bytes] = []
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema='public'").fetchall()]
        assert "tokens" in tables and "sessions" in tables
        for t in tables:
            for row in conn.execute(f'SELECT * FROM "{t}"').fetchall():
                for v in row:
                    out.append(bytes(v) if isinstance(v, (bytes, memoryview)) else str(v).encode())
    return b"\n".join(out)


def cli_environ(data: Path | None) -> dict[str, str]:
    """The environment of a CLI or server process for the data folder ``data``."""
    env = dict(os.environ)
    env.pop("ESC_PULUMI_DATABASE", None)
    url = database_for(data) if data is not None else None
    if url:
        env["ESC_PULUMI_DATABASE"] = url
    return env
ROLES = ("reader", "opener", "editor", "admin")


def esc_pulumi_command() -> list[str]:
    """The ``esc-pulumi`` command: the real dispatcher once its other commands exist, else the
    serve commands on their own (same parser, same code)."""
    if importlib.util.find_spec("esc_pulumi.cli.targets") is not None:
        return [sys.executable, "-m", "esc_pulumi.cli"]
    return [sys.executable, "-m", "esc_pulumi.server"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    data = Path(args[args.index("--data") + 1]) if "--data" in args else None
    return subprocess.run([*esc_pulumi_command(), *args], capture_output=True, text=True, timeout=60, check=check,
                          env=cli_environ(data))


def create_token(data: Path, org: str, role: str, name: str | None = None) -> str:
    args = ["serve", "token", "create", "--data", str(data), "--org", org, "--role", role]
    if name:
        args += ["--name", name]
    out = run_cli(*args).stdout
    return out.strip().splitlines()[-1]


@dataclass
class ServerProcess:
    """One ``esc-pulumi serve`` subprocess; its stderr goes to ``log_path``."""

    data: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    extra: tuple[str, ...] = ()
    umask: int | None = None  # the server process's umask (None: this process's)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return self.url + "/api/esc"

    @property
    def log_path(self) -> Path:
        return self.data / "server.log"

    @property
    def database(self) -> str | None:
        return database_for(self.data)

    def start(self) -> "ServerProcess":
        self.data.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        mask = self.umask
        database = ("--database", self.database) if self.database else ()
        self.proc = subprocess.Popen(
            [*esc_pulumi_command(), "serve", "--port", str(self.port), "--data", str(self.data), *database,
             *self.extra],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=cli_environ(None),
            preexec_fn=(lambda: os.umask(mask)) if mask is not None else None,
        )
        log.close()
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(self.api + "/ping", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("server did not start:\n" + self.log_path.read_text())
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@dataclass
class Env:
    """The running server and one token per role (org ``acme``), plus an admin of ``other``."""

    server: ServerProcess
    tokens: dict[str, str]
    other_admin: str

    def client(self, role: str = "admin", token: str | None = None):
        from pulumi_esc_sdk import Configuration, EscClient

        return EscClient(Configuration(host=self.server.url, access_token=token or self.tokens[role]))

    def request(self, method: str, path: str, body: bytes | str | dict | None = None, role: str | None = "admin",
                token: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        """A raw HTTP request (urllib); returns (status, headers, JSON or text body)."""
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"token {token}"
        elif role is not None:
            h["Authorization"] = f"token {self.tokens[role]}"
        data: bytes | None
        if isinstance(body, dict):
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            data = body.encode()
            h.setdefault("Content-Type", "application/x-yaml")
        else:
            data = body
        req = urllib.request.Request(self.server.api + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, hdrs, raw = r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            status, hdrs, raw = e.code, dict(e.headers), e.read()
        ctype = hdrs.get("content-type", hdrs.get("Content-Type", ""))
        payload: Any = raw.decode("utf-8") if raw else None
        if raw and "json" in ctype:
            payload = json.loads(raw)
        return status, hdrs, payload


def replica_flags() -> tuple[str, ...]:
    """What a replica needs so that the others read its sessions: ``--shared-sessions`` on
    SQLite (PostgreSQL shares them always)."""
    return ("--shared-sessions",) if BACKEND.name == "sqlite" else ()


def start_env(data: Path, *extra: str, umask: int | None = None) -> Env:
    tokens = {role: create_token(data, ORG, role, name=f"{role}-user") for role in ROLES}
    other = create_token(data, "other", "admin", name="other-admin")
    server = ServerProcess(data, extra=extra, umask=umask).start()
    return Env(server, tokens, other)


def open_fds(pid: int) -> int:
    """How many file descriptors the process ``pid`` holds (Linux)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mb(pid: int) -> float:
    """Resident memory of the process ``pid`` alone, in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        names = list(BACKENDS)
        if metafunc.definition.get_closest_marker("sqlite_only"):
            names = ["sqlite"]
        elif metafunc.definition.get_closest_marker("postgres_only"):
            names = ["postgres"]
        metafunc.parametrize("backend_name", names, indirect=True, scope="session")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: about SQLite's own files; runs on the SQLite store only")
    config.addinivalue_line("markers", "postgres_only: about PostgreSQL itself (stopped mid-run, say)")


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    """One real PostgreSQL server for the whole test session (fails, never skips, without binaries)."""
    import tempfile

    # Not under pytest's basetemp: its folders are 0700 and cleaned by any later pytest run of
    # this user, while the postgres user must reach this one until the end.
    pg = PgServer.start(Path(tempfile.mkdtemp(prefix="esc-pulumi-pg-")) / "pg")
    try:
        yield pg
    finally:
        pg.teardown()


@pytest.fixture(scope="session")
def backend_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """The store of the tests running now (see the module docstring)."""
    name = getattr(request, "param", "sqlite")
    previous = BACKEND.name, BACKEND.pg
    BACKEND.name = name
    BACKEND.pg = request.getfixturevalue("pg_server") if name == "postgres" else None
    try:
        yield name
    finally:
        BACKEND.name, BACKEND.pg = previous


@pytest.fixture(autouse=True)
def _store_backend(backend_name: str) -> str:
    # Makes every test of this folder depend on the parametrised store.
    return backend_name


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory, backend_name: str) -> Iterator[Env]:
    e = start_env(tmp_path_factory.mktemp("esc-server"), "--page-size", "3")
    try:
        yield e
    finally:
        e.server.stop()


_counter = [0]


@pytest.fixture
def unique() -> str:
    """A fresh name suffix, so tests sharing the session server do not collide."""
    _counter[0] += 1
    return f"t{os.getpid()}x{_counter[0]}"
