"""Providers (``fn::open``), rotators (``fn::rotate``) and the registry that finds them.

A provider declares the schema of its inputs and outputs and opens with the evaluated inputs
and the execution context. Applications register their own; third-party packages publish them
through the ``esc_pulumi.providers`` entry-point group (the entry point names the provider and
points at a class or factory returning a :class:`Provider`).
"""
from __future__ import annotations

import functools
import sys
import threading
from abc import ABC, abstractmethod
from typing import Any, Mapping

from .schema import ALWAYS, Schema
from .values import Value

ENTRY_POINT_GROUP = "esc_pulumi.providers"

@functools.lru_cache(maxsize=4)
def _entry_points(path: tuple[str, ...]) -> tuple[Any, ...]:
    """The group's entry points as installed for ``path`` (``sys.path``). Finding them reads the
    metadata of every installed distribution (7 ms with a hundred installed) and a registry is
    made per open, so the scan is kept per ``sys.path``. ``importlib.metadata`` is imported
    here: it costs a program's start ~15 ms, and most evaluations never look for a provider."""
    from importlib import metadata

    return tuple(metadata.entry_points(group=ENTRY_POINT_GROUP))


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
    """An ``fn::rotate::<name>`` rotator: opens with its state; ``rotate`` makes the next state.

    ``inputs`` are validated against ``input_schema``; the inputs it lists under the JSON-Schema
    extension ``rotateOnly`` (managing credentials, typically) are evaluated only when rotating
    the root environment, or checking it, and only :meth:`rotate` sees them. ``state`` is
    optional in a definition (``null`` when absent); when present it must match
    ``state_schema``. In ``rotate`` mode the engine calls :meth:`rotate` with the current state,
    records the result as a patch (see :mod:`esc_pulumi.esc.rotation`) and then opens with it.
    ``output_schema`` describes what :meth:`open_state` returns. A rotated value that is
    unknown has one of the two: ``state_schema`` when the rotator was not consulted (check
    mode, invalid or failed arguments, a failed rotation), ``output_schema`` when its inputs
    are unknown (an import's skipped ``rotateOnly`` inputs in check mode, say).

    Example::

        class Password(Rotator):
            input_schema = schema.Schema.from_json({
                "type": "object", "properties": {"admin": {"type": "string"}},
                "rotateOnly": ["admin"],
            })
            state_schema = schema.record({"current": schema.string()}, required=["current"])
            secret = True                 # the output and every new state are secret, deeply

            def open_state(self, inputs, state, context):
                return state if state.repr is not None else {}

            def rotate(self, inputs, state, context):
                admin = inputs.repr["admin"].repr
                return {"current": set_new_password(admin)}   # raise ProviderError on failure

        registry = ProviderRegistry(rotators={"password": Password()})
    """

    state_schema: Schema = ALWAYS

    def open(self, inputs: Value, context: Mapping[str, Any]) -> Any:  # pragma: no cover - unused
        raise ProviderError("a rotator opens with its state")

    @abstractmethod
    def open_state(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        """The value of the rotated secret for ``state`` (``Value(None)`` when the definition
        has none). ``inputs`` holds the evaluated inputs except the ``rotateOnly`` ones."""

    def rotate(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        """The next state, from every input (``rotateOnly`` ones included) and the current
        state: plain JSON data or :class:`Value` trees (secret flags are kept, and a
        ``secret`` rotator's states are secret throughout). Raise :class:`ProviderError`
        on failure: nothing is then patched."""
        raise ProviderError("rotation is not supported by this rotator")

    @property
    def rotate_only(self) -> frozenset[str]:
        """The input names the input schema marks ``rotateOnly``."""
        names = self.input_schema.get("rotateOnly") if isinstance(self.input_schema, Schema) else None
        return frozenset(n for n in names or () if isinstance(n, str))


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
            for ep in _entry_points(tuple(sys.path)):
                if ep.name in self._providers or ep.name in self._rotators:
                    continue
                obj = ep.load()
                instance = obj() if isinstance(obj, type) or callable(obj) and not isinstance(obj, Provider) else obj
                if isinstance(instance, Provider):
                    self.register(ep.name, instance)
            return True
