"""``esc-pulumi serve`` and its sub-commands ``token create`` and ``audit``.

Example::

    esc-pulumi serve --data ./esc-data --port 8080                 # binds 127.0.0.1
    esc-pulumi serve token create --data ./esc-data --org acme --role opener
    esc-pulumi serve audit --data ./esc-data

``python -m esc_pulumi.server serve ...`` runs the same commands.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from .limits import limit_options, limits_from
from .main import dispatch
from ..errors import EscError
from ..server.auth import ROLES, new_token

__all__ = ["register", "main"]

DEFAULT_DATA = "esc-data"


def register(subparsers: Any) -> None:
    """Add ``serve`` (with ``token create`` and ``audit``) to the ``esc-pulumi`` parser."""
    serve = subparsers.add_parser(
        "serve",
        help="run an ESC-compatible server (the ESC REST API over a local store)",
        description="Run the ESC REST API on HTTP, over a SQLite store in --data. "
        "Binds 127.0.0.1 unless --host says otherwise.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    _data_arg(serve)
    serve.add_argument("--key-file", type=Path, default=None,
                       help="file holding the server key (created if absent; default <data>/server.key, "
                            "or $ESC_PULUMI_SERVER_KEY_FILE)")
    serve.add_argument("--page-size", type=int, default=100, help=argparse.SUPPRESS)
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    limit_options(serve, timeout_default="10; a worker still busy a little later is killed")
    serve.add_argument("--eval-workers", type=int, default=None, metavar="N",
                       help="evaluation worker processes (default 2; 0: threads in the server process)")
    serve.set_defaults(func=_serve)
    sub = serve.add_subparsers(dest="serve_command", metavar="SUBCOMMAND")

    token = sub.add_parser("token", help="manage access tokens")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION")
    create = token_sub.add_parser("create", help="create a token; prints it on its last line")
    _data_arg(create)
    create.add_argument("--org", required=True, help="organization the token is valid for")
    create.add_argument("--role", required=True, choices=ROLES, help="what the token may do")
    create.add_argument("--name", default=None, help="name shown in the audit log (default <role>-<id>)")
    create.set_defaults(func=_token_create)
    token.set_defaults(func=lambda args: (token.print_help(sys.stderr), 2)[1])

    audit = sub.add_parser("audit", help="print the audit log (opens and changes)")
    _data_arg(audit)
    audit.add_argument("--org", default=None, help="only this organization")
    audit.add_argument("--limit", type=int, default=None, help="only the last N entries")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    audit.set_defaults(func=_audit)


def _data_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, default=Path(DEFAULT_DATA),
                   help=f"data folder (SQLite database, server key; default ./{DEFAULT_DATA})")


def _store(data: Path):
    from ..server.store import SQLiteStore

    return SQLiteStore(data / "esc.db")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..server.app import ServerConfig, create_app

    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
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
    config = ServerConfig(data_dir=args.data, key_file=args.key_file, page_size=args.page_size, **evaluation)
    app = create_app(config)
    logging.getLogger("esc_pulumi.server").info(
        "serving the ESC API on http://%s:%d/api/esc (data: %s)", args.host, args.port, args.data)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning",
                lifespan="on", server_header=False)
    return 0


def _token_create(args: argparse.Namespace) -> int:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", args.org):
        raise EscError(f"invalid organization name {args.org!r}")
    token, record = new_token(args.org, args.role, args.name)
    store = _store(args.data)
    try:
        store.add_token(record)
    finally:
        store.close()
    print(f"created {record.role} token {record.name!r} for organization {record.org}", file=sys.stderr)
    print(token)
    return 0


def _audit(args: argparse.Namespace) -> int:
    if not (args.data / "esc.db").exists():
        raise EscError(f"no server data in {args.data}: start 'esc-pulumi serve --data {args.data}' first")
    store = _store(args.data)
    try:
        entries = store.read_audit(args.org, args.limit)
    finally:
        store.close()
    for e in entries:
        if args.json:
            print(json.dumps({"time": e.time, "org": e.org, "actor": e.actor, "action": e.action,
                              "target": e.target, "detail": e.detail}))
        else:
            print(f"{e.time}  {e.org}  {e.actor}  {e.action}  {e.target}" + (f"  ({e.detail})" if e.detail else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``serve`` commands without the rest of ``esc-pulumi`` (``python -m esc_pulumi.server``)."""
    parser = argparse.ArgumentParser(prog="esc-pulumi")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    register(sub)
    return dispatch(parser, argv)
