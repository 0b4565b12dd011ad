"""Immutable slotted records that cost nothing to define, and cheap construction of them.

The engine's node and expression classes are built by the hundred thousand, and defined at
every program start that calls ``load()``. A frozen ``@dataclass`` costs about 0.4 ms to define
(it compiles its methods from source) and its generated ``__init__`` assigns each field through
``object.__setattr__``. :class:`Record` gives the same behaviour with methods shared by every
record class: positional and keyword construction with defaults, a dataclass-style repr,
immutability (:class:`dataclasses.FrozenInstanceError`), value equality and hashing or identity
(``eq=False``), copying and pickling, and ``record.replace(**changes)`` (also as
``__replace__``, for ``copy.replace`` on Python 3.13+) in place of ``dataclasses.replace``.
"""
from __future__ import annotations

import types
from dataclasses import FrozenInstanceError
from typing import Any, Callable, ClassVar


class Record:
    """Base of immutable slotted records: the fields are each class's ``__slots__``, after
    those of its bases; ``_defaults`` maps trailing fields to their default values,
    ``_factories`` to functions making a fresh one per record (``dict``). A class created with
    ``eq=False`` compares and hashes by identity, others by their field values (and their
    exact class) but those in ``_uncompared``, as a frozen dataclass does."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _compared: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}
    _factories: ClassVar[dict[str, Callable[[], Any]]] = {}
    _uncompared: ClassVar[frozenset[str]] = frozenset()
    _unshown: ClassVar[frozenset[str]] = frozenset()  # fields the repr leaves out
    _setters: ClassVar[tuple[Callable[[Any, Any], None], ...]] = ()

    def __init_subclass__(cls, eq: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__slots__", ())
        cls._fields = cls._fields + tuple(own)
        cls._compared = tuple(name for name in cls._fields if name not in cls._uncompared)
        cls._setters = tuple(_slot_setter(cls, name) for name in cls._fields)
        if not eq:
            cls.__eq__ = object.__eq__  # type: ignore[method-assign]
            cls.__hash__ = object.__hash__  # type: ignore[method-assign]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__}() takes {len(fields)} arguments, {len(args)} given")
        setters = self._setters
        for i, value in enumerate(args):
            setters[i](self, value)
        for i in range(len(args), len(fields)):
            name = fields[i]
            if name in kwargs:
                setters[i](self, kwargs.pop(name))
            elif name in self._defaults:
                setters[i](self, self._defaults[name])
            elif name in self._factories:
                setters[i](self, self._factories[name]())
            else:
                raise TypeError(f"{type(self).__name__}() missing argument {name!r}")
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got unexpected or repeated arguments {sorted(kwargs)}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def _compared_values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._compared)

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields if name not in self._unshown)
        return f"{type(self).__qualname__}({inner})"

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` applied, built through the constructor (so its checks run),
        as ``dataclasses.replace`` does for a dataclass."""
        unknown = set(changes) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no fields {sorted(unknown)}")
        return type(self)(**{name: changes.get(name, getattr(self, name)) for name in self._fields})

    __replace__ = replace

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._compared_values() == other._compared_values()  # type: ignore[attr-defined]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._compared_values())

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        # copy, deepcopy and pickle rebuild through the constructor (slots are frozen).
        return type(self), self._values()


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    descriptor = getattr(cls, name)
    if not isinstance(descriptor, types.MemberDescriptorType):
        raise TypeError(f"{cls.__name__}.{name} must be a slot of a record class")
    return descriptor.__set__


def _dataclass_setters(cls: type) -> tuple[Callable[[Any, Any], None], ...]:
    import dataclasses

    fields = dataclasses.fields(cls)
    if hasattr(cls, "__post_init__") or any(
        not f.init or f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in fields
    ):
        raise TypeError(f"{cls.__name__}: only plain frozen slotted dataclasses have a fast constructor")
    return tuple(_slot_setter(cls, f.name) for f in fields)


def fast_constructor(cls: type) -> Callable[..., Any]:
    """A constructor taking every field positionally, for a :class:`Record` class or a frozen
    slotted dataclass, that writes the slots directly: it builds exactly the object
    ``cls(*args)`` builds, without the generic ``__init__`` (a record's) or a frozen
    dataclass's ``object.__setattr__`` per field, which cost three times as much."""
    setters = cls._setters if issubclass(cls, Record) else _dataclass_setters(cls)
    new = object.__new__
    if len(setters) == 1:
        (s0,) = setters

        def make1(a):
            o = new(cls)
            s0(o, a)
            return o

        return make1
    if len(setters) == 2:
        s0, s1 = setters

        def make2(a, b):
            o = new(cls)
            s0(o, a)
            s1(o, b)
            return o

        return make2
    if len(setters) == 3:
        s0, s1, s2 = setters

        def make3(a, b, c):
            o = new(cls)
            s0(o, a)
            s1(o, b)
            s2(o, c)
            return o

        return make3
    pairs = tuple(setters)

    def make(*args):
        if len(args) != len(pairs):
            raise TypeError(f"{cls.__name__}: {len(pairs)} arguments expected, {len(args)} given")
        o = new(cls)
        for setter, a in zip(pairs, args):
            setter(o, a)
        return o

    return make
