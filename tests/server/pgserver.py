"""A real PostgreSQL server for the tests: initdb'd from the machine's binaries in a temporary
folder, listening on 127.0.0.1 only, run as the ``postgres`` user when the tests run as root,
torn down after. No binaries is a failure that says what to install, never a skip (``.ci/run``
installs the server package).

Example::

    pg = PgServer.start(Path("/tmp/x"))
    url = pg.new_database()          # postgresql://postgres@127.0.0.1:PORT/esc_1
    pg.stop_server(); pg.start_server()   # PostgreSQL away and back, same data
    pg.teardown()
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PgServer", "pg_bin"]


def pg_bin() -> Path:
    """The newest installed PostgreSQL's bin folder."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        which = shutil.which("initdb")
        if which:
            return Path(which).parent
        raise RuntimeError("the PostgreSQL server binaries (initdb, pg_ctl) are not installed: "
                           "apt-get install -y postgresql (.ci/run does this)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    root: Path
    port: int = field(default_factory=_free_port)
    user: str = "postgres"
    _count: int = 0

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def _as_owner(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:
            cmd = ("runuser", "-u", "postgres", "--", *cmd)
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)

    @classmethod
    def start(cls, root: Path) -> "PgServer":
        bin_dir = pg_bin()
        root.mkdir(parents=True, exist_ok=True)
        user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        pg = cls(root, user=user)
        pg.bin = bin_dir  # type: ignore[attr-defined]
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
            # The temp folders above must be passable for the postgres user.
            p = root.parent
            while p != p.parent:
                mode = os.stat(p).st_mode
                if not mode & 0o001:
                    os.chmod(p, mode | 0o001)
                p = p.parent
        r = pg._as_owner(str(bin_dir / "initdb"), "-D", str(pg.datadir), "-U", user, "--auth=trust",
                         "--encoding=UTF8", "--locale=C", "--no-sync")
        if r.returncode:
            raise RuntimeError(f"initdb failed:\n{r.stdout}\n{r.stderr}")
        with open(pg.datadir / "postgresql.conf", "a") as f:
            f.write(f"\nlisten_addresses = '127.0.0.1'\nport = {pg.port}\n"
                    f"unix_socket_directories = '{root}'\nmax_connections = 300\n"
                    "shared_buffers = 32MB\nfsync = on\nlog_min_messages = warning\n")
        pg.start_server()
        return pg

    def start_server(self) -> None:
        log = self.root / "server.log"
        for attempt in range(3):
            r = self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.datadir), "-l",  # type: ignore[attr-defined]
                               str(log), "-w", "-t", "60", "start")
            if r.returncode == 0:
                return
            time.sleep(1.0)  # the previous server may still be letting go of its port
        text = log.read_text()[-4000:] if log.exists() else ""
        raise RuntimeError(f"PostgreSQL did not start:\n{r.stdout}\n{r.stderr}\n{text}")

    def stop_server(self, mode: str = "fast") -> None:
        r = self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "-t", "60",  # type: ignore[attr-defined]
                           "stop")
        deadline = time.monotonic() + 30
        while (self.datadir / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if (self.datadir / "postmaster.pid").exists():
            raise RuntimeError(f"PostgreSQL did not stop:\n{r.stdout}\n{r.stderr}")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            cur = conn.execute(sql)
            return "" if cur.description is None else "\n".join("|".join(map(str, r)) for r in cur.fetchall())

    def new_database(self) -> str:
        """A fresh, empty database's URL."""
        self._count += 1
        name = f"esc_{os.getpid()}_{self._count}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def teardown(self) -> None:
        try:
            self.stop_server("immediate")
        finally:
            shutil.rmtree(self.root.parent if self.root.parent.name.startswith("esc-pulumi-pg-") else self.root,
                          ignore_errors=True)
