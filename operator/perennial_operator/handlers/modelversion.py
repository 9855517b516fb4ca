"""ModelVersion triggers: its own watch events (status, stage changes), and the retries.

No kopf on.create/on.update/on.resume/on.field: kopf kept its per-object state in two
annotation patches on every ModelVersion (and the events those patches made), and ran the
sync twice on a creation (the create handler, then the stage field's); with 10,000 versions
made back to back that was 7 requests per version (issue 18). A ModelVersion is synced from
its own watch events instead (decide/watch_events.py: its creation, the listing after a
start, a spec change its status has not answered); the stage it changed from is the one its
status last recorded (reconcile/modelversion.py). A sync that fails is tried again after
kopf's growing delays, per key, by a loop of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import kopf

from perennial_operator.api.group import API_VERSION, GROUP, MODELVERSIONS, VERSION
from perennial_operator.decide.watch_events import event_needs_sync
from perennial_operator.handlers.retrying import Key, try_sync
from perennial_operator.handlers.startup import ERROR_DELAYS, stop_task
from perennial_operator.k8s.errors import as_kopf_errors
from perennial_operator.reconcile.modelversion import sync_modelversion
from perennial_operator.reconcile.retries import Retries

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0


@kopf.on.startup()
async def modelversion_retries(memo: kopf.Memo, **_: Any) -> None:
    memo.modelversion_retries = Retries[Key](ERROR_DELAYS, time.monotonic)
    memo.modelversion_retry_loop = asyncio.create_task(retry_loop(memo))


@kopf.on.cleanup()
async def stop_modelversion_retries(memo: kopf.Memo, **_: Any) -> None:
    await stop_task(memo, "modelversion_retry_loop")


async def retry_loop(memo: kopf.Memo, tick: float = TICK_SECONDS) -> None:
    """Each tick, the syncs whose retry is due, each on a fresh read."""
    while True:
        await asyncio.sleep(tick)
        for namespace, name in sorted(memo.modelversion_retries.due()):
            await asyncio.to_thread(_try_sync, memo, namespace, name, None)


def _try_sync(memo: kopf.Memo, namespace: str, name: str, body: dict[str, Any] | None) -> None:
    try_sync(
        memo.modelversion_retries,
        log,
        "ModelVersion",
        (namespace, name),
        lambda: _sync(memo, namespace, name, body),
    )


def _sync(memo: kopf.Memo, namespace: str, name: str, body: dict[str, Any] | None) -> None:
    """``body``: the ModelVersion as its event showed it; None (a retry) reads it."""
    # One sync of a version at a time: its events come one by one, but a retry may not.
    with memo.locks.hold(f"ModelVersion/{namespace}/{name}"):
        with as_kopf_errors(f"ModelVersion {namespace}/{name}"):
            mv = body or memo.kube.get(API_VERSION, "ModelVersion", namespace, name)
            if mv is None or mv["metadata"].get("deletionTimestamp"):
                return
            sync_modelversion(memo.kube, mv)


@kopf.on.event(GROUP, VERSION, MODELVERSIONS)
async def modelversion_event(
    event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    # async: the sync runs on a thread, and kopf hands this version's next event over only
    # after it (kopf runs one object's handlers one event at a time).
    namespace, name = str(body.metadata.namespace), str(body.metadata.name)
    if event.get("type") == "DELETED":
        memo.modelversion_retries.forget((namespace, name))
        return
    if event_needs_sync(event.get("type"), raw := dict(body)):
        await asyncio.to_thread(_try_sync, memo, namespace, name, raw)
