"""Providers (``fn::open``), rotators (``fn::rotate``) and the registry that finds them.

A provider declares the schema of its inputs and outputs and opens with the evaluated inputs
and the execution context. Applications register their own; third-party packages publish them
through the ``esc_pulumi.providers`` entry-point group (the entry point names the provider and
points at a class or factory returning a :class:`Provider`).
"""
from __future__ import annotations

import sys
import threading
from abc import ABC, abstractmethod
from importlib import metadata
from typing import Any, Mapping

from .schema import ALWAYS, Schema
from .values import Value

ENTRY_POINT_GROUP = "esc_pulumi.providers"

# The group's entry points for the last sys.path seen. Finding them reads the metadata of every
# installed distribution (7 ms with a hundred installed), and a registry is made per open: the
# scan is done again only when sys.path changes.
_scanned: tuple[tuple[str, ...], tuple[metadata.EntryPoint, ...]] | None = None
_scan_lock = threading.Lock()


def _entry_points() -> tuple[metadata.EntryPoint, ...]:
    global _scanned
    key = tuple(sys.path)
    with _scan_lock:
        if _scanned is None or _scanned[0] != key:
            _scanned = (key, tuple(metadata.entry_points(group=ENTRY_POINT_GROUP)))
        return _scanned[1]


class ProviderError(Exception):
    """A provider failed; the message becomes a diagnostic on the call (no secret in it, please)."""


class Provider(ABC):
    """An ``fn::open::<name>`` provider.

    Example::

        class Static(Provider):
            output_schema = schema.record({"token": schema.string()})
            secret = True                      # the whole output secret, every value in it

            def open(self, inputs, context):
                return {"token": "s3cr3t"}

        registry = ProviderRegistry({"static": Static()})
    """

    input_schema: Schema = ALWAYS
    output_schema: Schema = ALWAYS
    # True: the output and every value inside it are secret, deeply (a value tree returned with
    # a secret container also makes that container's contents secret; see values.from_plain).
    secret: bool = False

    @abstractmethod
    def open(self, inputs: Value, context: Mapping[str, Any]) -> Any:
        """Return the output: plain JSON data, or :class:`Value` trees (to keep secret flags)."""


class Rotator(Provider):
    """An ``fn::rotate::<name>`` rotator: opens with its state; ``rotate`` makes the next state."""

    state_schema: Schema = ALWAYS

    def open(self, inputs: Value, context: Mapping[str, Any]) -> Any:  # pragma: no cover - unused
        raise ProviderError("a rotator opens with its state")

    @abstractmethod
    def open_state(self, state: Value, context: Mapping[str, Any]) -> Any:
        """The value of the rotated secret for the given state."""

    def rotate(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        raise ProviderError("rotation is not supported by this rotator")


class ProviderRegistry:
    """Name → provider/rotator. Entry points are looked up lazily, once, on the first miss."""

    def __init__(
        self,
        providers: Mapping[str, Provider] | None = None,
        rotators: Mapping[str, Rotator] | None = None,
        *,
        entry_points: bool = True,
    ) -> None:
        self._providers: dict[str, Provider] = dict(providers or {})
        self._rotators: dict[str, Rotator] = dict(rotators or {})
        self._entry_points = entry_points
        self._loaded = False
        self._lock = threading.Lock()

    def register(self, name: str, provider: Provider) -> None:
        target = self._rotators if isinstance(provider, Rotator) else self._providers
        target[name] = provider

    def provider(self, name: str) -> Provider | None:
        p = self._providers.get(name)
        if p is None and self._load_entry_points():
            p = self._providers.get(name)
        return p

    def rotator(self, name: str) -> Rotator | None:
        r = self._rotators.get(name)
        if r is None and self._load_entry_points():
            r = self._rotators.get(name)
        return r

    def _load_entry_points(self) -> bool:
        if not self._entry_points:
            return False
        with self._lock:
            if self._loaded:
                return False
            self._loaded = True
            for ep in _entry_points():
                if ep.name in self._providers or ep.name in self._rotators:
                    continue
                obj = ep.load()
                instance = obj() if isinstance(obj, type) or callable(obj) and not isinstance(obj, Provider) else obj
                if isinstance(instance, Provider):
                    self.register(ep.name, instance)
            return True
