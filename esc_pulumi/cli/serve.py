"""``esc-pulumi serve`` and its sub-commands ``token create|list|revoke`` and ``audit``.

Example::

    esc-pulumi serve --data ./esc-data --port 8080                 # binds 127.0.0.1
    esc-pulumi serve --data ./esc-data --issuer-url https://esc.example.com   # also an OIDC issuer
    esc-pulumi serve --data /shared/esc-data --shared-sessions     # one of several servers on a folder
    esc-pulumi serve token create --data ./esc-data --org acme --role opener --name ci --expires 90d
    esc-pulumi serve token list --data ./esc-data
    esc-pulumi serve token revoke --data ./esc-data --org acme ci
    esc-pulumi serve audit --data ./esc-data --env app/prod --action environment.open --limit 50

``python -m esc_pulumi.server serve ...`` runs the same commands.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .limits import limit_options, limits_from
from .main import dispatch
from ..errors import EscError
from ..refs import name_problem
from ..server.auth import ROLES, new_token, parse_lifetime

__all__ = ["register", "main"]

DEFAULT_DATA = "esc-data"
DATABASE_VAR = "ESC_PULUMI_DATABASE"
_MiB = 1 << 20

log = logging.getLogger("esc_pulumi.server")


def register(subparsers: Any) -> None:
    """Add ``serve`` (with ``token create|list|revoke`` and ``audit``) to the ``esc-pulumi`` parser."""
    from ..server.connections import ConnectionLimits
    from ..server.sessions import SessionLimits

    c, s = ConnectionLimits(), SessionLimits()
    serve = subparsers.add_parser(
        "serve",
        help="run an ESC-compatible server (the ESC REST API over a local store)",
        description="Run the ESC REST API on HTTP, over a SQLite store in --data. "
        "Binds 127.0.0.1 unless --host says otherwise.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0: any free port)")
    _data_arg(serve)
    serve.add_argument("--key-file", type=Path, default=None,
                       help="file holding the server key (created for a new data folder; default <data>/server.key, "
                            "or $ESC_PULUMI_SERVER_KEY_FILE)")
    serve.add_argument("--issuer-url", default=None, metavar="URL",
                       help="be an OIDC issuer at this public URL (https://...): aws-login's oidc mode gets its "
                            "tokens from the server; discovery at URL/.well-known/openid-configuration, signing "
                            "key <data>/oidc-signing.pem")
    serve.add_argument("--page-size", type=int, default=100, help=argparse.SUPPRESS)
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    limit_options(serve, timeout_default="10; a worker still busy a little later is killed")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="server processes sharing the port (default 1); each answers any request, "
                            "sessions included, on either store (more than 1 implies --shared-sessions)")
    serve.add_argument("--eval-workers", type=int, default=None, metavar="N",
                       help="evaluation worker processes of each server process (default: one fewer than the "
                            "cores but at least 2, divided among --workers; 0: threads in the server process)")
    g = serve.add_argument_group("open sessions (they hold plaintext in memory)")
    g.add_argument("--session-memory", type=float, default=s.max_bytes / _MiB, metavar="MB",
                   help=f"estimated memory all open sessions may hold (default {s.max_bytes // _MiB})")
    g.add_argument("--session-org-memory", type=float, default=None, metavar="MB",
                   help="what one organization's sessions may hold (default: --session-memory; beyond the "
                        "budget the organization most over its share loses its oldest sessions first)")
    g.add_argument("--max-sessions", type=int, default=s.max_sessions, metavar="N",
                   help=f"most open sessions (default {s.max_sessions})")
    g.add_argument("--session-max-duration", default="24h", metavar="DURATION",
                   help="longest ?duration= an open may ask for (default 24h; without one a session lasts 2h)")
    g.add_argument("--shared-sessions", action="store_true",
                   help="keep open sessions in the database (encrypted), so that every server on this data "
                        "folder reads them: for several SQLite servers on one folder (replicas behind a load "
                        "balancer). Without it a SQLite server keeps them in its own memory only (no other "
                        "process reads them; a restart ends them). Always so on PostgreSQL and with --workers 2 or more")
    g = serve.add_argument_group("connections")
    g.add_argument("--header-timeout", type=float, default=c.header_timeout, metavar="SECONDS",
                   help=f"a request's head must arrive within this (default {c.header_timeout:g}; then 408)")
    g.add_argument("--body-timeout", type=float, default=c.body_timeout, metavar="SECONDS",
                   help=f"a request's body must arrive within this (default {c.body_timeout:g}; then closed)")
    g.add_argument("--keep-alive-timeout", type=float, default=c.keep_alive_timeout, metavar="SECONDS",
                   help=f"idle keep-alive connections are closed after this (default {c.keep_alive_timeout:g})")
    g.add_argument("--max-connections", type=int, default=c.max_connections, metavar="N",
                   help=f"open connections beyond this are answered 503 (default {c.max_connections})")
    serve.set_defaults(func=_serve)
    sub = serve.add_subparsers(dest="serve_command", metavar="SUBCOMMAND")

    token = sub.add_parser("token", help="manage access tokens (create, list, revoke)")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION")
    create = token_sub.add_parser("create", help="create a token; prints it on its last line")
    _data_arg(create)
    create.add_argument("--org", required=True, help="organization the token is valid for")
    create.add_argument("--role", required=True, choices=ROLES, help="what the token may do")
    create.add_argument("--name", default=None,
                        help="name shown in listings and the audit log, unique in the organization "
                             "(default <role>-<id>)")
    create.add_argument("--expires", default=None, metavar="LIFETIME",
                        help="the token stops working after this long: 90d, 12h, 2w (default: never)")
    create.set_defaults(func=_token_create)
    listing = token_sub.add_parser("list", help="list tokens: id, name, role, status, expiry, last use (never the token)")
    _data_arg(listing)
    listing.add_argument("--org", default=None, help="only this organization")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=_token_list)
    revoke = token_sub.add_parser("revoke", help="revoke a token (a running server refuses it within a second)")
    _data_arg(revoke)
    revoke.add_argument("--org", default=None, help="the organization of the token named (needed when a name "
                                                    "is used in more than one)")
    revoke.add_argument("token", metavar="NAME|ID", help="the token's name, or its id as 'token list' shows it")
    revoke.set_defaults(func=_token_revoke)
    token.set_defaults(func=lambda args: (token.print_help(sys.stderr), 2)[1])

    migrate = sub.add_parser("migrate", help="apply the store's schema migrations (a server applies them on start)")
    _data_arg(migrate)
    migrate.add_argument("--check", action="store_true",
                         help="only list the migrations still pending; exit 1 when there are any (deploy pipelines)")
    migrate.set_defaults(func=_migrate)

    audit = sub.add_parser("audit", help="print the audit log (opens, changes, denied requests), oldest first")
    _data_arg(audit)
    audit.add_argument("--org", default=None, help="only this organization")
    audit.add_argument("--env", default=None, metavar="PROJECT/ENV",
                       help="only this environment (and its revision tags; a bare name means project default)")
    audit.add_argument("--actor", default=None, help="only this actor (a token's name)")
    audit.add_argument("--action", default=None, help="only this action (environment.open, access.denied, ...)")
    audit.add_argument("--limit", type=int, default=None, metavar="N", help="only the last N entries")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    audit.set_defaults(func=_audit)


def _data_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, default=Path(DEFAULT_DATA),
                   help=f"data folder (SQLite database, server key; default ./{DEFAULT_DATA})")
    p.add_argument("--database", default=None, metavar="URL",
                   help="a PostgreSQL database instead of SQLite: postgresql://user@host:5432/dbname "
                        f"(default ${DATABASE_VAR}; the key file stays in --data or --key-file)")


def _database(args: argparse.Namespace) -> str | None:
    """``--database``, else ``$ESC_PULUMI_DATABASE``, else None (SQLite in --data)."""
    import os

    return args.database or os.environ.get(DATABASE_VAR) or None


def _store(args: argparse.Namespace, create: bool = True):
    from ..server.store import open_store

    data: Path = args.data
    database = _database(args)
    if not database and not create and not (data / "esc.db").exists():
        raise EscError(f"no server data in {data}: create a token or start 'esc-pulumi serve --data {data}' first")
    store = open_store(data, database, create=create, **({"max_size": 1} if database else {}))
    for warning in store.warnings:
        print(f"esc-pulumi: warning: {warning}", file=sys.stderr)
    return store


def _positive(value: float | int | None, flag: str, what: str = "a positive number") -> None:
    if value is not None and not value > 0:
        raise EscError(f"{flag} must be {what}")


def _serve(args: argparse.Namespace) -> int:
    from ..server import launch
    from ..server.connections import ConnectionLimits
    from ..durations import DurationError, parse_duration

    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # 1. Every option, before anything is bound or created.
    if args.page_size < 1:
        raise EscError("--page-size must be at least 1")
    evaluation: dict[str, Any] = {}
    limits = limits_from(args)
    if limits is not None:
        evaluation["eval_limits"] = limits
    if args.eval_timeout is not None:
        evaluation["eval_timeout"] = args.eval_timeout
    if args.eval_workers is not None:
        if args.eval_workers < 0:
            raise EscError("--eval-workers must be 0 or more")
        evaluation["eval_workers"] = args.eval_workers
    elif args.workers > 1:
        from ..server.pool import default_workers

        evaluation["eval_workers"] = default_workers(args.workers)
    for flag in ("session_memory", "session_org_memory", "header_timeout", "body_timeout", "keep_alive_timeout"):
        _positive(getattr(args, flag), "--" + flag.replace("_", "-"))
    _positive(args.max_sessions, "--max-sessions", "at least 1")
    _positive(args.max_connections, "--max-connections", "at least 1")
    try:
        max_duration = parse_duration(args.session_max_duration)
    except DurationError as e:
        raise EscError(f"--session-max-duration: {e}") from None
    _positive(max_duration, "--session-max-duration", "a positive duration, such as 24h")
    connections = ConnectionLimits(header_timeout=args.header_timeout, body_timeout=args.body_timeout,
                                   keep_alive_timeout=args.keep_alive_timeout, max_connections=args.max_connections)
    if args.workers < 1:
        raise EscError("--workers must be at least 1")
    if not 0 <= args.port <= 65535:
        raise EscError(f"--port {args.port} is not a port: use a number from 1 to 65535 (0: any free port)")
    issuer_url = None
    if args.issuer_url is not None:
        from ..server.oidc import check_issuer_url

        issuer_url = check_issuer_url(args.issuer_url)
    # 2. The data folder against its key (and its OIDC signing key), creating nothing.
    database = _database(args)
    launch.preflight(args.data, args.key_file, database)
    if issuer_url is not None:
        launch.preflight_signing_key(args.data)
    # 3. The sockets: a port in use or a bad host fails here, still with nothing created.
    groups = launch.bind_for_workers(args.host, args.port, args.workers)
    sockets = groups[0]
    try:
        warning = launch.raise_open_files_limit(args.max_connections + 64)
        if warning:
            log.warning("%s", warning)
        # 4. The data folder, database and key (created when new).
        from ..server.app import ServerConfig, create_app

        config = ServerConfig(
            data_dir=args.data, database=database, key_file=args.key_file, page_size=args.page_size,
            session_memory=int(args.session_memory * _MiB),
            session_org_memory=int(args.session_org_memory * _MiB) if args.session_org_memory else None,
            max_sessions=args.max_sessions, max_duration=max_duration,
            default_duration=min(2 * 3600.0, max_duration), issuer_url=issuer_url,
            # (--workers N above 1 shares them too: launch.run_workers sets it.)
            shared_sessions=args.shared_sessions, **evaluation)
        app = None
        if args.workers == 1:
            app = create_app(config)
            for warning in app.state.server.store.warnings:
                log.warning("%s", warning)
        else:
            launch.prepare(config)
        host, port = sockets[0].getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host

        def announce() -> None:
            # 5. Only now is it true.
            from ..server.store.postgres import redact_url

            where = redact_url(database) if database else args.data
            log.info("serving the ESC API on http://%s:%d/api/esc (data: %s)", shown, port, where)
            issuer = app.state.server.issuer if app is not None else None
            if issuer is not None:
                log.info("OIDC issuer %s (signing key %s; discovery at %s/.well-known/openid-configuration)",
                         issuer.url, issuer.keys[0].kid, issuer.url)

        if app is not None:
            launch.run(app, sockets, connections, announce)
        else:
            launch.run_workers(config, groups, connections, args.workers, announce)
    finally:
        for group in groups:
            for s in group:
                s.close()
    return 0


def _token_create(args: argparse.Namespace) -> int:
    from ..server.store import Conflict

    problem = name_problem("organization", args.org)
    if problem is not None:
        raise EscError(problem)
    lifetime = None
    if args.expires is not None:
        try:
            lifetime = parse_lifetime(args.expires)
        except ValueError as e:
            raise EscError(f"--expires: {e}") from None
    try:
        token, record = new_token(args.org, args.role, args.name, lifetime)
    except ValueError as e:
        raise EscError(str(e)) from None
    store = _store(args)
    try:
        store.add_token(record)
    except Conflict as e:
        raise EscError(str(e)) from None
    finally:
        store.close()
    until = f", expires {record.expires}" if record.expires else ", never expires"
    print(f"created {record.role} token {record.name!r} (id {record.id}) for organization {record.org}{until}",
          file=sys.stderr)
    print(token)
    return 0


def _token_json(r: Any, now: float) -> dict[str, Any]:
    return {"id": r.id, "org": r.org, "name": r.name, "role": r.role, "status": r.status(now),
            "created": r.created, "expires": r.expires, "lastUsed": r.last_used, "revoked": r.revoked}


def _token_list(args: argparse.Namespace) -> int:
    from ..server.accesslog import escape

    store = _store(args, create=False)
    try:
        records = store.list_tokens(args.org)
    finally:
        store.close()
    now = time.time()
    if args.json:
        for r in records:
            print(json.dumps(_token_json(r, now)))
        return 0
    rows = [("ID", "ORG", "NAME", "ROLE", "STATUS", "CREATED", "EXPIRES", "LAST USED")]
    for r in records:
        rows.append((r.id, r.org, escape(r.name), r.role, r.status(now), r.created, r.expires or "never",
                     r.last_used or "never"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    from ..server.accesslog import escape

    store = _store(args, create=False)
    try:
        records = store.list_tokens(args.org)
        wanted = args.token.strip()
        by_name = [r for r in records if r.name == wanted]
        active = [r for r in by_name if r.revoked is None] or by_name
        by_id = [r for r in records if len(wanted) >= 8 and r.token_hash.startswith(wanted.lower())]
        matches = active or by_id
        if not matches:
            where = f" in organization {args.org}" if args.org else ""
            raise EscError(f"no token named or with id {escape(wanted)!r}{where}: 'esc-pulumi serve token list' "
                           "shows them")
        if len(matches) > 1:
            ids = ", ".join(f"{r.id} ({r.org})" for r in matches)
            raise EscError(f"{len(matches)} tokens match {escape(wanted)!r}: {ids}; give its id, or --org")
        (record,) = matches
        if record.revoked is not None:
            print(f"token {record.name!r} (id {record.id}) was already revoked at {record.revoked}", file=sys.stderr)
            return 0
        store.revoke_token(record.token_hash, "cli")
    finally:
        store.close()
    print(f"revoked {record.role} token {record.name!r} (id {record.id}) of organization {record.org}",
          file=sys.stderr)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    import sqlite3

    from ..server.store import migrations
    from ..server.store.postgres import PostgresStore, redact_url

    database = _database(args)
    where = redact_url(database) if database else str(args.data / "esc.db")
    if args.check:
        if database:
            store = PostgresStore(database, max_size=1, migrate=None)
            try:
                with store._conn() as conn:
                    todo = migrations.pending_postgres(conn)
            finally:
                store.close()
        elif (args.data / "esc.db").exists():
            db = sqlite3.connect(str(args.data / "esc.db"), isolation_level=None)
            try:
                todo = migrations.pending_sqlite(db)
            finally:
                db.close()
        else:
            todo = list(migrations.SQLITE)
        for m in todo:
            print(f"pending: {m.version} {m.name}")
        print(f"{where}: {'%d migrations pending' % len(todo) if todo else 'schema up to date'} "
              f"(version {migrations.LATEST_VERSION} is this release's)", file=sys.stderr)
        return 1 if todo else 0
    store = _store(args)  # opening applies them, under the migrations' lock
    store.close()
    print(f"{where}: schema up to date (version {migrations.LATEST_VERSION})", file=sys.stderr)
    return 0


def _audit(args: argparse.Namespace) -> int:
    from ..server.accesslog import escape

    if args.limit is not None and args.limit < 1:
        raise EscError("--limit must be a positive number of entries")
    environment = args.env
    if environment is not None:
        environment = environment.strip()
        if not environment:
            raise EscError("--env must name an environment: project/env")
        if "/" not in environment:
            environment = f"default/{environment}"
    store = _store(args, create=False)
    try:
        entries = store.read_audit(args.org, args.limit, environment=environment, actor=args.actor,
                                   action=args.action)
    finally:
        store.close()
    for e in entries:
        if args.json:
            print(json.dumps({"time": e.time, "org": e.org, "actor": e.actor, "action": e.action,
                              "target": e.target, "detail": e.detail}))
        else:
            # Targets and details of denied requests come from request paths: escaped, one line each.
            line = f"{e.time}  {e.org}  {e.actor}  {e.action}  {e.target}" + (f"  ({e.detail})" if e.detail else "")
            print(escape(line))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``serve`` commands without the rest of ``esc-pulumi`` (``python -m esc_pulumi.server``)."""
    parser = argparse.ArgumentParser(prog="esc-pulumi")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    register(sub)
    return dispatch(parser, argv)
