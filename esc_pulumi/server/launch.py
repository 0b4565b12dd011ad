"""Starting a server the way ``esc-pulumi serve`` does: check, bind, create, announce, serve.

The order is what makes a failed start harmless: everything that can be checked without
creating a file is checked first (the options, the host name, the data folder against its key),
then the listening sockets are bound (a port in use fails here, as one line), and only then
are the data folder, the database and the key created. The "serving ..." line is printed
once the server is ready to answer.

Example::

    preflight(Path("esc-data"), None)                    # EscError if the key is not the data's
    sockets = bind("127.0.0.1", 8080)                     # EscError "... is in use ..."
    app = create_app(ServerConfig(data_dir=Path("esc-data")))
    run(app, sockets, ConnectionLimits(), announce=lambda: print("ready"))
"""
from __future__ import annotations

import errno
import logging
import os
import socket
from pathlib import Path
from typing import Any, Callable

from ..errors import EscError
from .connections import ConnectionLimits, protocol_class
from .keys import key_source, open_key

__all__ = ["bind", "bind_for_workers", "preflight", "preflight_signing_key", "prepare", "run", "run_workers",
           "raise_open_files_limit"]

log = logging.getLogger("esc_pulumi.server")


def preflight(data_dir: Path, key_file: Path | None, database: str | None = None) -> None:
    """Check an existing data folder against its key without creating anything: EscError when
    the key source is unreadable, is not the data's key, or is missing for a folder with data.
    With a PostgreSQL ``database`` the check is against what the database holds (its schema is
    migrated first, under the migrations' lock: a replica that starts is one that can serve)."""
    from .store import SQLiteStore, open_store

    if database:
        source = key_source(Path(data_dir), key_file)
        store = open_store(Path(data_dir), database, max_size=1)
        try:
            # The database before the file (see keys.open_key): replicas may be starting together.
            if _has_data(store) or source.path.exists():
                open_key(source, store, Path(data_dir), create=False)
        finally:
            store.close()
        return

    db = Path(data_dir) / "esc.db"
    source = key_source(Path(data_dir), key_file)
    if not db.exists():
        if source.path.exists():
            from .keys import _read

            _read(source)  # unreadable or not a key: say so now, before anything is created
        return
    store = SQLiteStore(db, create=False)
    try:
        # create=False: a missing key for a folder with data is an error, and for an empty one
        # the key is made later, after the bind.
        if source.path.exists() or _has_data(store):
            open_key(source, store, Path(data_dir), create=False)
    finally:
        store.close()


def preflight_signing_key(data_dir: Path) -> None:
    """An existing OIDC signing key must be readable and an RSA key: EscError now, before the
    bind, rather than a server that starts and cannot issue (a missing one is made later)."""
    from .oidc import PREVIOUS_KEY_FILE, SIGNING_KEY_FILE, read_signing_key

    for name in (SIGNING_KEY_FILE, PREVIOUS_KEY_FILE):
        path = Path(data_dir) / name
        if path.exists():
            read_signing_key(path)


def _has_data(store: Any) -> bool:
    from .keys import has_data

    return has_data(store)


def bind_for_workers(host: str, port: int, workers: int, backlog: int = 2048) -> list[list[socket.socket]]:
    """The listening sockets of ``workers`` server processes: one set (:func:`bind`) for each,
    all on one port with ``SO_REUSEPORT``, where the system has it; else one set they share.

    Why a set each: processes accepting from one shared socket do not share its connections
    evenly. Whichever is waiting when a burst of connections arrives takes them all (measured:
    20 keep-alive connections, 81% of the CPU in one of two processes, 13% in the other), and a
    keep-alive connection stays with the process that accepted it, so a second process added
    nothing. With a socket each, the kernel spreads new connections over them by a hash of the
    addresses. The port is first bound without ``SO_REUSEPORT``, so a port in use still fails
    here (another listener that set it would otherwise be joined, not refused)."""
    first = bind(host, port, backlog)
    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        return [first]
    chosen = first[0].getsockname()[1]
    for s in first:
        s.close()
    groups: list[list[socket.socket]] = []
    try:
        for _ in range(workers):
            groups.append(bind(host, chosen, backlog, reuse_port=True))
    except BaseException:
        for group in groups:
            for s in group:
                s.close()
        raise
    return groups


def bind(host: str, port: int, backlog: int = 2048, reuse_port: bool = False) -> list[socket.socket]:
    """Listening sockets for every address ``host`` resolves to (as asyncio would bind them);
    EscError with what to do when the name does not resolve or the port cannot be had.
    ``reuse_port``: with ``SO_REUSEPORT`` (see :func:`bind_for_workers`)."""
    if not 0 <= port <= 65535:
        raise EscError(f"--port {port} is not a port: use a number from 1 to 65535 (0: any free port)")
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        reason = e.strerror if isinstance(e, socket.gaierror) and e.strerror else "not a valid name"
        raise EscError(f"cannot listen on --host {host!r}: {reason.lower()}: give an IP address (127.0.0.1, "
                       "0.0.0.0) or a name this machine resolves") from None
    sockets: list[socket.socket] = []
    seen: set[Any] = set()
    chosen = port
    try:
        for family, kind, proto, _, address in infos:
            if address in seen:
                continue
            seen.add(address)
            if chosen != port:  # port 0: the other addresses take the port the first one got
                address = (address[0], chosen, *address[2:])
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as e:
                raise EscError(_bind_error(host, chosen, e)) from None
            sock.listen(backlog)
            chosen = sock.getsockname()[1]
    except BaseException:
        for s in sockets:
            s.close()
        raise
    return sockets


def _bind_error(host: str, port: int, e: OSError) -> str:
    where = f"{host}:{port}"
    if e.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: the port is in use (another server?): stop it or choose another --port"
    if e.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied (ports below 1024 need privileges): use --port 8080"
    if e.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: the address is not one of this machine's: use --host 127.0.0.1"
    return f"cannot listen on {where}: {e.strerror or e}"


def raise_open_files_limit(needed: int) -> str | None:
    """Raise this process's open-file limit to ``needed`` if the hard limit allows; a warning
    when it stays below."""
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return None
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    except (ValueError, OSError):
        pass
    if soft < needed:
        return (f"the open-file limit ({soft}) is below --max-connections plus the server's own files "
                f"({needed}): lower --max-connections or raise the limit (ulimit -n)")
    return None


def run(app: Any, sockets: list[socket.socket], limits: ConnectionLimits,
        announce: Callable[[], None] | None = None) -> None:
    """Serve ``app`` on ``sockets`` with uvicorn and the connection limits; ``announce`` runs
    once the application has started (its evaluation workers are up)."""
    import uvicorn

    config = uvicorn.Config(
        app, http=protocol_class(limits), timeout_keep_alive=limits.keep_alive_timeout,  # type: ignore[arg-type]
        h11_max_incomplete_event_size=limits.max_header_bytes, access_log=False, log_level="warning",
        lifespan="on", server_header=False, timeout_graceful_shutdown=10,
    )

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and announce is not None:
                announce()

    _Server(config).run(sockets=sockets)


def prepare(config: Any) -> None:
    """Create (or migrate) the store and the key once, before worker processes start: N
    workers racing to create one key file or schema would each make their own."""
    from .app import load_server_key
    from .store import open_store

    store = open_store(Path(config.data_dir), config.database)
    try:
        load_server_key(Path(config.data_dir), config.key_file, store=store)
    finally:
        store.close()
    if getattr(config, "issuer_url", None):
        from .oidc import OidcIssuer

        OidcIssuer.load(config.issuer_url, Path(config.data_dir), create=True,
                        key_file=getattr(config, "oidc_key_file", None))


def _serve_worker(config: Any, sockets: list[socket.socket], limits: ConnectionLimits, log_level: int,
                  ready: Any) -> None:
    """One ``--workers`` process: its own application (store connections, evaluation pool,
    audit writer) on the sockets the parent bound."""
    import logging as _logging

    _logging.basicConfig(level=log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from .app import create_app

    app = create_app(config)
    run(app, sockets, limits, announce=ready.set)


def run_workers(config: Any, sockets: list[list[socket.socket]], limits: ConnectionLimits, workers: int,
                announce: Callable[[], None] | None = None) -> None:
    """Serve with ``workers`` processes, worker ``k`` on ``sockets[k % len(sockets)]`` (one set
    each from :func:`bind_for_workers`: the kernel spreads the connections; a worker started
    again takes its predecessor's set, with the connections waiting in it);
    every process reads and writes the one store, sessions included (``shared_sessions`` is
    set: a session opened by one process may be read through any other), so any of them
    answers any request. The parent supervises: a worker that dies is started again; SIGTERM
    or SIGINT is passed on to every worker, each finishes its requests in flight, then the
    parent exits."""
    import dataclasses
    import multiprocessing
    import signal
    import time
    from multiprocessing.connection import wait

    if workers > 1 and not getattr(config, "shared_sessions", True):
        config = dataclasses.replace(config, shared_sessions=True)
    ctx = multiprocessing.get_context("spawn")  # not fork: a forked event loop, threads and DB connections
    level = logging.getLogger().getEffectiveLevel()
    stopping = False

    def spawn(k: int) -> tuple[Any, Any]:
        ready = ctx.Event()
        p = ctx.Process(target=_serve_worker, args=(config, sockets[k % len(sockets)], limits, level, ready),
                        name="esc-pulumi-serve-worker", daemon=False)
        p.start()
        return p, ready

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for p, _ in procs:
            if p.is_alive():
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    procs = [spawn(k) for k in range(workers)]
    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        deadline = time.monotonic() + 120
        while not stopping and not all(r.is_set() for _, r in procs):
            dead = [p for p, _ in procs if not p.is_alive()]
            if dead:
                stop(signal.SIGTERM, None)
                for p, _ in procs:
                    p.join(15)
                raise EscError(f"a worker process exited with {dead[0].exitcode} while starting: see the log above")
            if time.monotonic() > deadline:
                stop(signal.SIGTERM, None)
                raise EscError("the worker processes did not start within 120 s")
            time.sleep(0.05)
        if not stopping and announce is not None:
            announce()
        while procs:
            wait([p.sentinel for p, _ in procs], timeout=1.0)
            for i, (p, r) in enumerate(list(procs)):
                if p.is_alive():
                    continue
                if stopping:
                    procs.remove((p, r))
                else:
                    log.error("worker process %d exited with %s: starting another", p.pid, p.exitcode)
                    procs[i] = spawn(i)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        for p, _ in procs:
            if p.is_alive():
                p.terminate()
            p.join(15)
