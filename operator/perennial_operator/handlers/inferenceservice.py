"""InferenceService triggers: the object, its ModelVersions, Deployments, ComputePool and
HTTPRoute, and timers.

A fast timer drives a rollout in flight (each canary step is held stepSeconds, so the tick
must be finer than that); a slow one is the safety net; a third measures drift. A change to an
HTTPRoute named in spec.rollout.httpRoute (created, edited, deleted) re-syncs the services
that name it; so does a ComputePool named in spec.computePool (a service held because its
pool did not exist starts as soon as the pool is created). Without the Gateway API CRDs
kopf logs that it cannot watch httproutes, and picks them up once they are installed.

Every handler that syncs a service may scrape its pods, so each is async and does the sync
on the serving threads (handlers/serving_threads.py), never on kopf's shared executor.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import kopf

from perennial_operator import metrics
from perennial_operator.api.group import (
    COMPUTEPOOLS,
    GROUP,
    INFERENCESERVICES,
    LABEL_INFERENCESERVICE,
    MANAGED_BY,
    MANAGED_BY_VALUE,
    MODELVERSIONS,
    VERSION,
)
from perennial_operator.api.traffic import GATEWAY_GROUP, GATEWAY_VERSION, HTTPROUTES
from perennial_operator.decide.monitoring.drift import drift_due
from perennial_operator.handlers.serving_threads import on_serving_threads
from perennial_operator.k8s.errors import as_kopf_errors
from perennial_operator.k8s.scrape import PodProfileSource
from perennial_operator.reconcile.inferenceservice.drift import measure_drift
from perennial_operator.reconcile.inferenceservice.sync import sync_inferenceservice

ISVC = (GROUP, VERSION, INFERENCESERVICES)
CHILDREN: Mapping[str, Any] = MappingProxyType(
    {MANAGED_BY: MANAGED_BY_VALUE, LABEL_INFERENCESERVICE: kopf.PRESENT}
)


@kopf.on.startup()
def drift_references(memo: kopf.Memo, **_: Any) -> None:
    # Each model's drift reference (profile.json) is fetched once per process.
    memo.drift_references = PodProfileSource()


def _sync(memo: kopf.Memo, namespace: str | None, name: str) -> None:
    assert namespace  # InferenceService is namespaced
    with as_kopf_errors(f"InferenceService {namespace}/{name}"):
        sync_inferenceservice(memo.kube, namespace, name, memo.config, memo.locks)


async def _sync_quietly(memo: kopf.Memo, namespace: str | None, name: str, logger: Any) -> None:
    try:
        await on_serving_threads(_sync, memo, namespace, name)
    except kopf.TemporaryError as exc:  # event handlers are not retried: the timers catch up
        logger.warning("will retry on the next timer tick: %s", exc)


@kopf.index(*ISVC)
def inferenceservices_by_model(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], str]:
    return {(str(namespace), str(spec.get("model", {}).get("name"))): name}


@kopf.index(*ISVC)
def inferenceservices_by_httproute(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], str] | None:
    route = ((spec.get("rollout") or {}).get("httpRoute") or {}).get("name")
    return {(str(namespace), str(route)): name} if route else None


@kopf.index(*ISVC)
def inferenceservices_by_computepool(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[str, tuple[str, str]] | None:
    pool = spec.get("computePool")
    return {str(pool): (str(namespace), name)} if pool else None


@kopf.on.resume(*ISVC)
@kopf.on.create(*ISVC)
@kopf.on.update(*ISVC)
async def reconcile_inferenceservice(
    namespace: str | None, name: str, memo: kopf.Memo, **_: Any
) -> None:
    await on_serving_threads(_sync, memo, namespace, name)


@kopf.on.event(*ISVC)
def inferenceservice_deleted(
    namespace: str | None, name: str, event: kopf.RawEvent, **_: Any
) -> None:
    # No finalizer for this: a deletion missed while the operator was down leaves series
    # only until the process restarts (gauges are not persisted).
    if event.get("type") == "DELETED" and namespace:
        metrics.forget_inferenceservice(namespace, name)


@kopf.on.event(GROUP, VERSION, MODELVERSIONS)
async def modelversion_changed(
    namespace: str | None, spec: kopf.Spec, memo: kopf.Memo, logger: kopf.Logger, **kwargs: Any
) -> None:
    """A version appeared, became Ready, changed stage or was rejected: re-resolve."""
    index: kopf.Index[tuple[str, str], str] = kwargs["inferenceservices_by_model"]
    for name in index.get((str(namespace), str(spec.get("model"))), []):
        await _sync_quietly(memo, namespace, name, logger)


@kopf.on.event(GATEWAY_GROUP, GATEWAY_VERSION, HTTPROUTES)
async def httproute_changed(
    namespace: str | None, name: str, memo: kopf.Memo, logger: kopf.Logger, **kwargs: Any
) -> None:
    """A user created, edited or deleted a route a service steers (or we patched it)."""
    index: kopf.Index[tuple[str, str], str] = kwargs["inferenceservices_by_httproute"]
    for service in index.get((str(namespace), str(name)), []):
        await _sync_quietly(memo, namespace, service, logger)


@kopf.on.event(GROUP, VERSION, COMPUTEPOOLS)
async def computepool_changed_for_services(
    name: str, memo: kopf.Memo, logger: kopf.Logger, **kwargs: Any
) -> None:
    """A pool a service names was created, changed or deleted: re-place its pods."""
    index: kopf.Index[str, tuple[str, str]] = kwargs["inferenceservices_by_computepool"]
    for namespace, service in index.get(name, []):
        await _sync_quietly(memo, namespace, service, logger)


@kopf.on.event("apps", "v1", "deployments", labels=CHILDREN)
async def deployment_changed(
    body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    owner = body.metadata.labels.get(LABEL_INFERENCESERVICE)
    if owner:
        await _sync_quietly(memo, body.metadata.namespace, owner, logger)


@kopf.timer(*ISVC, interval=1, when=lambda status, **_: bool(status.get("canary")))
async def drive_rollout(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    await on_serving_threads(_sync, memo, namespace, name)


@kopf.timer(*ISVC, interval=30, initial_delay=5)
async def resync_inferenceservice(
    namespace: str | None, name: str, memo: kopf.Memo, **_: Any
) -> None:
    await on_serving_threads(_sync, memo, namespace, name)


@kopf.timer(*ISVC, interval=10, initial_delay=10)
async def measure_inferenceservice_drift(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """`memo` is this service's own: it keeps the last attempt, even one that found no data."""
    isvc, now = dict(body), time.time()
    if drift_due(isvc, now, memo.get("drift_attempted", 0.0)):
        memo.drift_attempted = now
        await on_serving_threads(_measure_drift, memo, isvc)


def _measure_drift(memo: kopf.Memo, isvc: dict[str, Any]) -> None:
    meta = isvc["metadata"]
    with as_kopf_errors(f"InferenceService {meta['namespace']}/{meta['name']}"):
        # The window's state stays in this service's memo for the next measurement.
        memo.live_window = measure_drift(
            memo.kube, isvc, memo.config, memo.drift_references, memo.get("live_window")
        )[1]
