"""Giving freed heap memory back to the system, for the server and its evaluation workers.

CPython frees objects into glibc's malloc, which keeps freed pages for reuse: after a large
value (a session, an evaluation stopped at its size limit) the resident size stays at its
highest point, and repeated large evaluations fragment the heap further, so a worker that has
refused a few hundred evaluation bombs can hold several hundred MB it does not use.
``malloc_trim`` returns what is free. Elsewhere than glibc, nothing is done.

Example::

    trim_memory()                       # after freeing something large
    if resident_mb() > 2 * baseline:    # a worker, after a job
        trim_memory()
"""
from __future__ import annotations

import os
from typing import Any

__all__ = ["resident_mb", "trim_memory"]

_malloc_trim: Any = None
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def trim_memory() -> None:
    """Give freed heap memory back to the system (glibc's ``malloc_trim``; elsewhere nothing)."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


def resident_mb() -> float:
    """This process's resident size in MB (Linux's ``/proc/self/statm``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE / (1 << 20)
    except (OSError, ValueError, IndexError):
        return 0.0
