"""One lock per object, so the triggers of one object (timers, its own events and its
children's, which kopf runs on different threads) reconcile it one at a time.

A lock exists only while someone holds it or waits for it: the last one out removes it, so
the table never grows with objects that were deleted (or merely went quiet).

`once` also coalesces: in a burst, many events of one object queue on its lock, and a sync
that *began* after an event arrived has read (from the API server, fresh) everything that
event could tell. The waiters it covers skip instead of repeating the same reads.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0  # holding it or waiting for it
    issued: int = 0  # tickets: one per call, in arrival order
    covered: int = 0  # every ticket up to this one was served by a sync that began after it


class KeyedLocks:
    """Made once at start-up (handlers/startup.py) and shared by every reconciler."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            entry = self._entries.setdefault(key, _Entry())
            entry.users += 1
        try:
            with entry.lock:
                yield
        finally:
            with self._guard:
                entry.users -= 1
                if not entry.users:
                    del self._entries[key]

    @contextlib.contextmanager
    def once(self, key: str) -> Iterator[bool]:
        """Hold the key's lock; yield True if the caller must sync, False if a sync that
        began after this call arrived has already finished without an error."""
        with self._guard:
            entry = self._entries.setdefault(key, _Entry())
            entry.users += 1
            entry.issued += 1
            ticket = entry.issued
        try:
            with entry.lock:
                with self._guard:
                    run, begun_at = entry.covered < ticket, entry.issued
                yield run
                if run:  # reached only without an exception: a failed sync covers nothing
                    with self._guard:
                        entry.covered = max(entry.covered, begun_at)
        finally:
            with self._guard:
                entry.users -= 1
                if not entry.users:
                    del self._entries[key]

    def __len__(self) -> int:
        """Keys held or waited for right now."""
        with self._guard:
            return len(self._entries)
