"""Recent predictions by id, for feedback: shared by every worker of the server.

A client that sends feedback on a new connection may reach any worker, so each worker
writes its predictions into its own ring in a shared mapping (created before the fork)
and any worker can read them. Ids are ``<server token>-<worker>-<sequence>``; a slot holds
its sequence number, so an overwritten (expired) id is recognised. Answers with more rows
than a slot holds go to a small per-worker LRU, bounded in entries and in rows.

Ids are the server's only: a V2 client's own ``"id"`` is echoed, never stored, so a client
cannot overwrite another's prediction. Each worker's sequence lives in shared memory too,
so a restarted worker continues it instead of issuing its predecessor's ids again.
"""

from __future__ import annotations

import mmap
import secrets
from collections import OrderedDict
from typing import Any

import numpy as np

SLOT_ROWS = 8  # rows of one answer that fit in a shared slot
LOCAL_ROWS = 100_000  # rows the per-worker LRU holds at most (larger answers: not kept)
_HEADER = 2  # sequence, rows


class SharedRing:
    def __init__(self, workers: int, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.token = secrets.token_hex(4)
        width = _HEADER + SLOT_ROWS
        size = workers * self.capacity * width
        self._map = mmap.mmap(-1, size * 8)
        self.slots = np.frombuffer(self._map, dtype=np.float64)[:size].reshape(
            workers, self.capacity, width
        )
        self._sequence_map = mmap.mmap(-1, max(1, workers) * 8)
        # The last sequence number each worker issued; one writer each (its worker).
        self.sequences = np.frombuffer(self._sequence_map, dtype=np.int64)[:workers]


class RecentPredictions:
    def __init__(self, ring: SharedRing, worker: int, classes: tuple[Any, ...] | None) -> None:
        self.ring, self.worker = ring, worker
        self._classes = classes
        self._code = {c: i for i, c in enumerate(classes)} if classes is not None else None
        self._local: OrderedDict[str, list[Any]] = OrderedDict()
        self._local_rows = 0

    def new_id(self) -> str:
        # Sequences start at 1 (0 marks an empty slot) and never repeat for this server.
        sequence = int(self.ring.sequences[self.worker]) + 1
        self.ring.sequences[self.worker] = sequence
        return f"{self.ring.token}-{self.worker:x}-{sequence:x}"

    def remember(self, request_id: str, labels: list[Any]) -> None:
        where = self._parse(request_id)
        codes = self._encode(labels) if len(labels) <= SLOT_ROWS else None
        if where is None or where[0] != self.worker or codes is None:
            self._remember_locally(request_id, labels)
            return
        slot = self.ring.slots[self.worker, where[1] % self.ring.capacity]
        slot[0] = -1.0  # readers in other workers skip a slot being written
        slot[1] = len(codes)
        slot[_HEADER : _HEADER + len(codes)] = codes
        slot[0] = where[1]

    def get(self, request_id: str) -> list[Any] | None:
        where = self._parse(request_id)
        if where is not None:
            slot = self.ring.slots[where[0], where[1] % self.ring.capacity].copy()
            if slot[0] == where[1]:
                return self._decode(slot[_HEADER : _HEADER + int(slot[1])])
        labels = self._local.get(request_id)
        if labels is not None:
            self._local.move_to_end(request_id)
        return labels

    def _parse(self, request_id: str) -> tuple[int, int] | None:
        token, _, rest = request_id.partition("-")
        worker, _, sequence = rest.partition("-")
        if token != self.ring.token:
            return None
        try:
            where = int(worker, 16), int(sequence, 16)
        except ValueError:
            return None
        return where if 0 <= where[0] < self.ring.slots.shape[0] else None

    def _encode(self, labels: list[Any]) -> list[float] | None:
        if self._code is None:
            return (
                [float(v) for v in labels] if all(type(v) in (int, float) for v in labels) else None
            )
        codes = [self._code.get(v) for v in labels]
        return None if None in codes else [float(c) for c in codes]  # type: ignore[arg-type]

    def _decode(self, codes: np.ndarray) -> list[Any]:
        if self._classes is None:
            return [float(c) for c in codes]
        return [self._classes[int(c)] for c in codes]

    def _remember_locally(self, request_id: str, labels: list[Any]) -> None:
        if len(labels) > LOCAL_ROWS:
            return  # feedback on it must send the features
        self._local[request_id] = labels
        self._local_rows += len(labels)
        while len(self._local) > self.ring.capacity or self._local_rows > LOCAL_ROWS:
            _, dropped = self._local.popitem(last=False)
            self._local_rows -= len(dropped)
