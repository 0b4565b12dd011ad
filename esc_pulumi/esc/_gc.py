"""Pausing Python's cyclic garbage collector around bulk building.

Parsing and evaluation create hundreds of thousands of small objects and no reference cycles.
With the collector running, each burst of allocations sets off passes over the whole heap
(the parsed documents included), which tripled the cost of building expressions in the engine
benchmark. Plain reference counting still frees everything, so the engine pauses the
collector while it builds and resumes it afterwards.

No counter is kept: two overlapping pauses can only resume the collector a little early.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
