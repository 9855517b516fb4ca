"""TrainingJob triggers: the object itself, its Job and Pods, and one safety-net loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import kopf

from perennial_operator.api.group import (
    GROUP,
    LABEL_TRAININGJOB,
    MANAGED_BY,
    MANAGED_BY_VALUE,
    TRAININGJOBS,
    VERSION,
)
from perennial_operator.decide.trainingjob.status import needs_resync
from perennial_operator.k8s.errors import as_kopf_errors
from perennial_operator.metrics import TrainingJobPhases
from perennial_operator.reconcile.child_view import ChildView
from perennial_operator.reconcile.trainingjob import sync_trainingjob

log = logging.getLogger(__name__)

CHILDREN: Mapping[str, Any] = MappingProxyType(
    {MANAGED_BY: MANAGED_BY_VALUE, LABEL_TRAININGJOB: kopf.PRESENT}
)


# A safety net, not the driver: events drive every sync. The TrainingJob events keep the
# set of those that may still need the operator (unfinished, or Succeeded and not yet
# registered: needs_resync), and once a minute one loop syncs each of them, one by one. It
# replaced a kopf timer per TrainingJob: an asyncio task per object (5,000 in a burst, each
# holding its body) and the finalizer kopf needs to stop it, a patch more per TrainingJob
# (issue 18).
RESYNC_SECONDS = 60.0


@kopf.on.startup()
async def trainingjob_phases(memo: kopf.Memo, **_: Any) -> None:
    memo.trainingjob_phases = TrainingJobPhases()
    memo.trainingjobs_unfinished = set()
    memo.children = ChildView()
    memo.trainingjob_resync = asyncio.create_task(resync_loop(memo, RESYNC_SECONDS))


@kopf.on.cleanup()
async def stop_trainingjob_resync(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get("trainingjob_resync")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def resync_loop(memo: kopf.Memo, interval: float) -> None:
    """Every ``interval`` seconds, sync each TrainingJob the events left unfinished."""
    while True:
        await asyncio.sleep(interval)
        for namespace, name in sorted(memo.trainingjobs_unfinished):
            try:
                await asyncio.to_thread(_sync, memo, namespace, name)
            except Exception as exc:  # one object's trouble is not the others'
                log.warning("TrainingJob resync of %s/%s failed: %s", namespace, name, exc)


def _sync(memo: kopf.Memo, namespace: str, name: str) -> None:
    with as_kopf_errors(f"TrainingJob {namespace}/{name}"):
        sync_trainingjob(
            memo.kube,
            namespace,
            name,
            memo.config,
            memo.locks,
            memo.trainingjob_phases,
            memo.children,
        )


@kopf.on.resume(GROUP, VERSION, TRAININGJOBS)
@kopf.on.create(GROUP, VERSION, TRAININGJOBS)
@kopf.on.update(GROUP, VERSION, TRAININGJOBS)
def reconcile_trainingjob(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    assert namespace  # TrainingJob is namespaced
    _sync(memo, namespace, name)


@kopf.on.event(GROUP, VERSION, TRAININGJOBS)
async def trainingjob_event(
    event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    # No on.delete handler, no timer: the DELETED event is enough to forget the object, and
    # kopf puts no finalizer on TrainingJobs. async: in-memory work only, on the event loop
    # (which the resync loop also runs on), never queued behind the executor's threads.
    key = (str(body.metadata.namespace), str(body.metadata.name))
    deleted = event.get("type") == "DELETED"
    if deleted or not needs_resync(dict(body.get("status") or {})):
        memo.trainingjobs_unfinished.discard(key)
    else:
        memo.trainingjobs_unfinished.add(key)
    if deleted and body.metadata.uid:
        memo.trainingjob_phases.forget(body.metadata.uid)


@kopf.on.event("batch", "v1", "jobs", labels=CHILDREN)
def job_changed(
    event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    if memo.children.saw_job(dict(body), deleted=event.get("type") == "DELETED"):
        _child_changed(body, memo, logger)


@kopf.on.event("", "v1", "pods", labels=CHILDREN)
def pod_changed(
    event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    # Most pod events change nothing the sync reads (the node bound, an IP, Ready): skipped.
    if memo.children.saw_pod(dict(body), deleted=event.get("type") == "DELETED"):
        _child_changed(body, memo, logger)


def _child_changed(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger) -> None:
    owner = body.metadata.labels.get(LABEL_TRAININGJOB)
    namespace = body.metadata.namespace
    if not owner or not namespace:
        return
    try:
        _sync(memo, namespace, owner)
    except kopf.TemporaryError as exc:  # event handlers are not retried: the loop catches up
        logger.warning("will retry on the next resync: %s", exc)
