"""RetrainPolicy triggers: the policy itself, a timer (schedule, cooldown, newData polls, the
safety net), its TrainingJobs (to gate a candidate as soon as it is registered) and newData
probe Jobs (to record a finished probe at once), both from our own watches
(handlers/watches.py), and its InferenceService (to react to a drift or live-metric write at
once)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from perennial_operator.api.group import (
    GROUP,
    INFERENCESERVICES,
    LABEL_PROBE,
    LABEL_RETRAINPOLICY,
    MANAGED_BY,
    MANAGED_BY_VALUE,
    RETRAINPOLICIES,
    VERSION,
)
from perennial_operator.k8s.errors import as_kopf_errors
from perennial_operator.reconcile.retrainpolicy import sync_retrainpolicy

log = logging.getLogger(__name__)
RP = (GROUP, VERSION, RETRAINPOLICIES)


def _sync(memo: kopf.Memo, namespace: str | None, name: str) -> None:
    assert namespace  # RetrainPolicy is namespaced
    with as_kopf_errors(f"RetrainPolicy {namespace}/{name}"):
        sync_retrainpolicy(memo.kube, namespace, name, memo.config, memo.locks)


def _sync_quietly(memo: kopf.Memo, namespace: str | None, name: str, logger: Any) -> None:
    try:
        _sync(memo, namespace, name)
    except kopf.TemporaryError as exc:  # event handlers are not retried: the timer catches up
        logger.warning("will retry on the next timer tick: %s", exc)


@kopf.index(*RP)
def retrainpolicies_by_service(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], str]:
    return {(str(namespace), str(spec.get("inferenceService"))): name}


@kopf.on.resume(*RP)
@kopf.on.create(*RP)
@kopf.on.update(*RP)
def reconcile_retrainpolicy(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    _sync(memo, namespace, name)


@kopf.timer(*RP, interval=10, initial_delay=2)
def resync_retrainpolicy(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    _sync(memo, namespace, name)


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("labels") or {}


def trainingjob_seen(memo: kopf.Memo, loop: asyncio.AbstractEventLoop, tj: dict[str, Any]) -> None:
    """A TrainingJob event from the TrainingJob watches (handlers/watches.py), on their
    thread: one of a policy's (a candidate registered, or failed) has its policy synced on
    the loop's default executor."""
    if _labels(tj).get(MANAGED_BY) == MANAGED_BY_VALUE:
        _sync_owner_later(memo, loop, tj)


def probe_seen(memo: kopf.Memo, loop: asyncio.AbstractEventLoop, job: dict[str, Any]) -> None:
    """A Job event from the Job watches (handlers/watches.py), on their thread: a finished
    probe's policy is synced on the loop's default executor (the watch goes on meanwhile)."""
    if LABEL_PROBE in _labels(job) and (job.get("status") or {}).get("conditions"):
        _sync_owner_later(memo, loop, job)


def _sync_owner_later(
    memo: kopf.Memo, loop: asyncio.AbstractEventLoop, child: dict[str, Any]
) -> None:
    """The RetrainPolicy the child's label names (in its namespace), if any, synced on the
    loop's default executor."""
    policy = _labels(child).get(LABEL_RETRAINPOLICY)
    if policy:
        namespace = child["metadata"].get("namespace")
        loop.call_soon_threadsafe(loop.run_in_executor, None, _sync_logged, memo, namespace, policy)


def _sync_logged(memo: kopf.Memo, namespace: str | None, name: str) -> None:
    # Nobody awaits this one (kopf logged a failed handler): say what failed here.
    try:
        _sync_quietly(memo, namespace, name, log)
    except Exception:
        log.exception("RetrainPolicy %s/%s: the sync after a child's event failed", namespace, name)


@kopf.on.event(GROUP, VERSION, INFERENCESERVICES)
def inferenceservice_changed(
    namespace: str | None, name: str, memo: kopf.Memo, logger: kopf.Logger, **kwargs: Any
) -> None:
    index: kopf.Index[tuple[str, str], str] = kwargs["retrainpolicies_by_service"]
    for policy in index.get((str(namespace), name), []):
        _sync_quietly(memo, namespace, policy, logger)
