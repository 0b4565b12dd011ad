"""esc._fast.Record: the behaviour of a frozen dataclass, which the public records rely on."""
from __future__ import annotations

import copy
import pickle
from dataclasses import FrozenInstanceError

import pytest

from esc_pulumi.esc import Diagnostic, EvalLimits, Pos, Range, Severity
from esc_pulumi.esc._fast import Record


class Sample(Record):
    __slots__ = ("a", "b", "items", "note")
    _factories = {"items": list}
    _uncompared = frozenset({"note"})
    _unshown = frozenset({"note"})
    _defaults = {"b": 2, "note": ""}


def test_construction_defaults_and_factories():
    s = Sample(1)
    assert (s.a, s.b, s.items, s.note) == (1, 2, [], "")
    assert Sample(1).items is not Sample(1).items  # a fresh one per record
    assert Sample(a=1, b=3, note="x").b == 3
    with pytest.raises(TypeError, match="missing argument 'a'"):
        Sample()
    with pytest.raises(TypeError, match="unexpected or repeated"):
        Sample(1, a=2)
    with pytest.raises(TypeError, match="takes 4 arguments"):
        Sample(1, 2, [], "", 5)


def test_frozen_equal_by_compared_fields_and_hidden_in_repr():
    s = Sample(1, note="secret-ish")
    with pytest.raises(FrozenInstanceError):
        s.a = 2  # type: ignore[misc]
    assert Sample(1, items=(), note="x") == Sample(1, items=(), note="y")
    assert hash(Sample(1, items=(), note="x")) == hash(Sample(1, items=(), note="y"))
    assert Sample(1, items=()) != Sample(2, items=())
    assert repr(s) == "Sample(a=1, b=2, items=[])"


def test_replace_copies_through_the_constructor():
    s = Sample(1, items=[1])
    t = s.replace(b=5)
    assert (t.a, t.b, t.items) == (1, 5, [1]) and s.b == 2
    with pytest.raises(TypeError, match="no fields"):
        s.replace(c=1)
    # The constructor's checks run on the copy too.
    with pytest.raises(ValueError, match="max_nodes must be a positive integer"):
        EvalLimits().replace(max_nodes=0)
    assert EvalLimits().replace(timeout=2.0).timeout == 2.0


def test_copy_and_pickle():
    s = Sample(1, items=[1, 2])
    for clone in (copy.copy(s), copy.deepcopy(s), pickle.loads(pickle.dumps(Diagnostic(Severity.ERROR, "x")))):
        assert clone == (s if isinstance(clone, Sample) else Diagnostic(Severity.ERROR, "x"))


def test_diagnostics_compare_without_their_location():
    at = Range("env", Pos(1, 1, 0), Pos(1, 1, 0))
    plain = Diagnostic(Severity.ERROR, "bad")
    located = plain.replace(location=at, problem="yaml: bad")
    assert located == plain and located.location == at
    assert str(located) == "env:1:1: error: yaml: bad"
    assert plain.replace(range=at) != plain
