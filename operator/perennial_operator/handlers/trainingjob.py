"""TrainingJob triggers: the object itself, its Job and Pods, and a safety-net timer."""

from __future__ import annotations

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
from perennial_operator.k8s.errors import as_kopf_errors
from perennial_operator.metrics import TrainingJobPhases
from perennial_operator.reconcile.trainingjob import sync_trainingjob

CHILDREN: Mapping[str, Any] = MappingProxyType(
    {MANAGED_BY: MANAGED_BY_VALUE, LABEL_TRAININGJOB: kopf.PRESENT}
)


@kopf.on.startup()
def trainingjob_phases(memo: kopf.Memo, **_: Any) -> None:
    memo.trainingjob_phases = TrainingJobPhases()


def _sync(memo: kopf.Memo, namespace: str, name: str) -> None:
    with as_kopf_errors(f"TrainingJob {namespace}/{name}"):
        sync_trainingjob(
            memo.kube, namespace, name, memo.config, memo.locks, memo.trainingjob_phases
        )


@kopf.on.resume(GROUP, VERSION, TRAININGJOBS)
@kopf.on.create(GROUP, VERSION, TRAININGJOBS)
@kopf.on.update(GROUP, VERSION, TRAININGJOBS)
def reconcile_trainingjob(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    assert namespace  # TrainingJob is namespaced
    _sync(memo, namespace, name)


@kopf.on.event(GROUP, VERSION, TRAININGJOBS)
def trainingjob_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    # No on.delete handler: the DELETED event is enough to forget the object. (kopf still puts
    # its finalizer, perennial.dev/finalizer, on unfinished TrainingJobs: kopf.timer always
    # requires one, to stop the timer task before the object goes; docs/install.md.)
    if event.get("type") == "DELETED" and body.metadata.uid:
        memo.trainingjob_phases.forget(body.metadata.uid)


@kopf.on.event("batch", "v1", "jobs", labels=CHILDREN)
@kopf.on.event("", "v1", "pods", labels=CHILDREN)
def child_changed(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    owner = body.metadata.labels.get(LABEL_TRAININGJOB)
    namespace = body.metadata.namespace
    if not owner or not namespace:
        return
    try:
        _sync(memo, namespace, owner)
    except kopf.TemporaryError as exc:  # event handlers are not retried: the timer catches up
        logger.warning("will retry on the next timer tick: %s", exc)


@kopf.timer(
    GROUP,
    VERSION,
    TRAININGJOBS,
    # A safety net, not the driver: events drive every sync. At 20 s it re-read every
    # unfinished TrainingJob three times a minute (a 1,000-job burst: ~3 syncs per job).
    interval=60,
    initial_delay=60,
    when=lambda status, **_: (
        status.get("phase") not in ("Succeeded", "Failed")
        or not status.get("modelVersion")
        and status.get("phase") == "Succeeded"
    ),
)
def resync_trainingjob(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    assert namespace
    _sync(memo, namespace, name)
