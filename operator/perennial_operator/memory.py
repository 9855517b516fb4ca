"""Giving freed memory back to the system after a burst.

A burst of thousands of objects fills the heap with event bodies and responses that are
freed once handled, but glibc keeps freed heap memory for reuse: without this, the operator
held its burst-time RSS after every object was deleted (bench/operator/scale.py, 2.0x idle).
Every RELEASE_SECONDS a loop collects cyclic garbage and asks glibc to return the free
pages at the top of and inside its heaps (malloc_trim). Off glibc (musl, macOS) it only
collects.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
from collections.abc import Callable

RELEASE_SECONDS = 60.0


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _malloc_trim()


def release_free_memory() -> bool:
    """Collect garbage, then return free heap pages to the system; True if glibc trimmed."""
    gc.collect()
    if _TRIM is None:
        return False
    return bool(_TRIM(0))


async def release_loop(interval: float = RELEASE_SECONDS) -> None:
    while True:
        await asyncio.sleep(interval)
        # On a thread: malloc_trim walks the heap without the GIL, so the event loop (and
        # the liveness probe) go on meanwhile.
        await asyncio.to_thread(release_free_memory)
