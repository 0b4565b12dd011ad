"""Where environments come from. Every backend opens an anonymous composition
``{"imports": [...], "values": {...}}`` and returns its value with secret/unknown flags."""
from .base import Backend, OpenedEnvironment

__all__ = ["Backend", "OpenedEnvironment"]
