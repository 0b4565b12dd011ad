"""An ESC-compatible server: the ESC REST API over a durable store (``esc-pulumi serve``).

- :mod:`.app`: the Starlette application (endpoints, sessions, evaluation by the embedded engine)
- :mod:`.store`: the storage interface and its SQLite implementation
- :mod:`.auth`: tokens (stored hashed) and roles
- :mod:`.cli`: ``esc-pulumi serve``, ``serve token create``, ``serve audit``

Example::

    from pathlib import Path
    from esc_pulumi.server import ServerConfig, create_app

    app = create_app(ServerConfig(data_dir=Path("data")))   # an ASGI app for uvicorn
"""
from .app import ServerConfig, create_app

__all__ = ["ServerConfig", "create_app"]
