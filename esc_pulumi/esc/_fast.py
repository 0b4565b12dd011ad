"""Cheap construction of the frozen dataclasses built by the hundred thousand (nodes, accessors)."""
from __future__ import annotations

import dataclasses
import types


def fast_constructor(cls):
    """A constructor for a frozen, slotted dataclass that skips the generated ``__init__``.

    Frozen dataclasses assign each field through ``object.__setattr__``, which costs three
    times what writing the slots directly does, and a document has a few nodes and ranges per
    value. Writing the slots builds exactly the object ``cls(*args)`` builds; if the class ever
    stops being a plain frozen slotted dataclass, the class itself is returned.
    """
    try:
        fields = dataclasses.fields(cls)
        if hasattr(cls, "__post_init__") or any(
            not f.init or f.default is not dataclasses.MISSING
            or f.default_factory is not dataclasses.MISSING
            for f in fields
        ):
            return cls
        setters = []
        for f in fields:
            descriptor = getattr(cls, f.name)
            if not isinstance(descriptor, types.MemberDescriptorType):
                return cls
            setters.append(descriptor.__set__)
    except Exception:  # pragma: no cover - not a dataclass any more
        return cls
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
        o = new(cls)
        for setter, a in zip(pairs, args):
            setter(o, a)
        return o

    return make
