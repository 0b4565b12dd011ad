"""An ESC-compatible server: the ESC REST API over a durable store (``esc-pulumi serve``).

- :mod:`.app`: the Starlette application (endpoints, evaluation by the embedded engine)
- :mod:`.store`: the storage interface and its SQLite implementation (0600 files in a 0700 folder)
- :mod:`.auth`: tokens (stored hashed, expiring, revocable) and roles
- :mod:`.audit`: the audit log's group-committing writer (an open is on disk before its answer)
- :mod:`.sessions`: open sessions, bounded by memory per organisation, expired on time
- :mod:`.session_store`: where open sessions live: this process's memory, or the database
  (:mod:`.shared_sessions`) when other processes read them
- :mod:`.keys`: the server key and its check value
- :mod:`.connections`: request deadlines and the connection cap (uvicorn's h11 protocol)
- :mod:`.accesslog`: the request log (escaped, no session ids)
- :mod:`.launch`: check, bind, create, announce, serve (what ``esc-pulumi serve`` does)
- ``esc_pulumi.cli.serve``: ``esc-pulumi serve``, ``serve token create|list|revoke``, ``serve audit``

Example::

    from pathlib import Path
    from esc_pulumi.server import ServerConfig, create_app

    app = create_app(ServerConfig(data_dir=Path("data")))   # an ASGI app for uvicorn
"""
from .app import ServerConfig, create_app

__all__ = ["ServerConfig", "create_app"]
