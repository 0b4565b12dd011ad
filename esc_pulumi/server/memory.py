"""Giving freed heap memory back to the system, for the server and its evaluation workers.

CPython frees objects into glibc's malloc, which keeps freed pages for reuse: after a large
value (a session, an evaluation stopped at its size limit) the resident size stays at its
highest point, and repeated large evaluations fragment the heap further, so a worker that has
refused a few hundred evaluation bombs can hold several hundred MB it does not use.
``malloc_trim`` returns what is free. Elsewhere than glibc, nothing is done.

Large blocks (a session's JSON, the text of a big value) are worse: glibc maps a block of
128 KiB or more on its own, but after such a block is freed it raises that threshold up to
32 MB, so later blocks of a few MB come from the heap, where they fragment it and stay resident
after they are freed. :func:`map_large_blocks` fixes the threshold at 128 KiB (which also ends
glibc's raising it): a large block is then always its own mapping, given back when freed. With
it, 30 opens of 0.9 MB definitions grew a server by 65 MB instead of 131 MB (64 MB of
sessions).

Example::

    map_large_blocks()                  # once, when a server or worker process starts
    trim_memory()                       # after freeing something large
    if resident_mb() > 2 * baseline:    # a worker, after a job
        trim_memory()
"""
from __future__ import annotations

import functools
import os
from typing import Any

__all__ = ["map_large_blocks", "resident_mb", "trim_memory"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# glibc's mallopt parameter (malloc.h) and the threshold it had before raising it.
_M_MMAP_THRESHOLD = -3
_LARGE_BLOCK = 128 * 1024


@functools.lru_cache(maxsize=None)
def _glibc(name: str) -> Any:
    """glibc's function ``name``, or None elsewhere (another C library, another system)."""
    try:
        import ctypes

        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):
        return None


def map_large_blocks() -> bool:
    """Give every block of 128 KiB or more its own mapping, for good (glibc's ``mallopt``;
    elsewhere nothing). Returns whether it was set."""
    mallopt = _glibc("mallopt")
    return bool(mallopt and mallopt(_M_MMAP_THRESHOLD, _LARGE_BLOCK))


def trim_memory() -> None:
    """Give freed heap memory back to the system (glibc's ``malloc_trim``; elsewhere nothing)."""
    malloc_trim = _glibc("malloc_trim")
    if malloc_trim:
        malloc_trim(0)


def resident_mb() -> float:
    """This process's resident size in MB (Linux's ``/proc/self/statm``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE / (1 << 20)
    except (OSError, ValueError, IndexError):
        return 0.0
