"""The engine's pauses of the cyclic collector (esc/_gc.py): a large build is promoted out of the
youngest generation when the pause ends, the program's own frozen objects stay frozen, and
small builds are left to the collector as usual."""
from __future__ import annotations

import gc

import pytest

from esc_pulumi.esc import evaluate, load_definition, to_plain
from esc_pulumi.esc._gc import PROMOTE_AFTER


def _big(n: int = 20_000) -> str:
    return "values:\n  k0: start\n" + "".join(f"  k{i}: ${{k{i - 1}}}-{i}\n" for i in range(1, 4)) \
        + "".join(f"  s{i}: ${{k0}}-{i}\n" for i in range(n // 4)) \
        + "".join(f"  o{i}: {{a: [x, y], b: v{i}}}\n" for i in range(n // 4))


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    gc.collect()
    yield
    if not was:
        gc.disable()


def test_a_large_evaluation_is_not_left_in_the_youngest_generation(collector_on: None) -> None:
    decl, diags = load_definition(_big(), "big")
    assert decl is not None and not diags
    value, diags = evaluate(decl)
    assert not diags
    # Everything the evaluation built is alive here (value holds it) and already in the oldest
    # generation: no young collection walked it on the way there, none will.
    assert gc.get_count()[0] < PROMOTE_AFTER // 10
    assert any(o is value for o in gc.get_objects(generation=2))
    assert not any(o is value for g in (0, 1) for o in gc.get_objects(generation=g))
    assert to_plain(value)["k3"] == "start-1-2-3"


def test_the_programs_frozen_objects_stay_frozen(collector_on: None) -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        decl, _ = load_definition(_big(), "big")
        value, _ = evaluate(decl)  # type: ignore[arg-type]
        assert gc.get_freeze_count() == frozen
        assert to_plain(value)["o1"] == {"a": ["x", "y"], "b": "v1"}
    finally:
        gc.unfreeze()


def test_garbage_cycles_made_beside_an_evaluation_are_still_collected(collector_on: None) -> None:
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    alive = [a]
    import weakref

    gone = weakref.ref(a)
    decl, _ = load_definition(_big(), "big")
    evaluate(decl)  # type: ignore[arg-type]
    del a, b, alive
    gc.collect()
    assert gone() is None
