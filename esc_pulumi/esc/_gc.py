"""Pausing Python's cyclic garbage collector around bulk building.

Parsing and evaluation create hundreds of thousands of small objects and no reference cycles.
With the collector running, each burst of allocations sets off passes over the whole heap
(the parsed documents included), which tripled the cost of building expressions in the engine
benchmark. Plain reference counting still frees everything, so the engine pauses the
collector while it builds and resumes it afterwards.

On resuming after a large build, what was built is moved to the oldest generation instead of
being left in the youngest: the youngest generation's next collection (set off by the next
few allocations) would otherwise walk every object built during the pause while the caller
still holds them, about 15% of an evaluation's time (330,000 objects in the engine
benchmark). Nothing is lost: they hold no cycles, and a full collection still looks at them.
The move is ``gc.freeze()`` then ``gc.unfreeze()`` (CPython has no other way to promote
objects), done only when the program has frozen nothing itself (its own frozen objects stay
frozen) and only past ``PROMOTE_AFTER`` new objects: a small build's walk is cheap, and
promoting on every small evaluation would move the program's young garbage cycles out of the
frequent collections.

No counter is kept: two overlapping pauses can only resume the collector a little early.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


# New objects (the youngest generation's count) past which a pause's end promotes them; a
# collection walking this many takes about 3 ms.
PROMOTE_AFTER = 20_000


@contextmanager
def collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_count()[0] > PROMOTE_AFTER and gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()
