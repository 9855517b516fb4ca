"""Deleting a ComputePool: one pass of the drain its finalizer runs (handlers/computepool.py
repeats passes until the pool's nodes are gone). gather -> decide (decide/computepool/drain)
-> act. Safe to repeat: every input is re-read, every write is idempotent."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Final

from kubernetes.client.exceptions import ApiException

from perennial_operator.api import conditions as c
from perennial_operator.api.group import API_VERSION, LABEL_COMPUTEPOOL
from perennial_operator.api.timestamps import format_time
from perennial_operator.decide.computepool.drain import (
    DrainReport,
    DrainStep,
    drain_report,
    drain_step,
    forced,
)
from perennial_operator.decide.conditions import get_condition
from perennial_operator.decide.kstatus import Health, with_health
from perennial_operator.k8s.kube import KubeApi
from perennial_operator.providers import ProviderError, provider_for
from perennial_operator.reconcile.computepool import cordon, describe

log = logging.getLogger(__name__)

PROGRESS_DELAY: Final = 2.0  # seconds between passes while pods and nodes are leaving
WAIT_DELAY: Final = 5.0  # while blocked, refused by a budget or failing


@dataclass(frozen=True)
class DrainPass:
    done: bool  # no node of the pool is left: the finalizer may go
    delay: float  # seconds until the next pass


def _evict_all(kube: KubeApi, pods: tuple[str, ...]) -> dict[str, str]:
    """Evict each pod; the ones a PodDisruptionBudget (429) or anything else refused, with why."""
    refused: dict[str, str] = {}
    for key in pods:
        namespace, name = key.split("/", 1)
        try:
            kube.evict(namespace, name)
        except ApiException as exc:
            if exc.status != 429:
                raise
            refused[key] = "a PodDisruptionBudget allows no disruption now (HTTP 429)"
    return refused


def _report(kube: KubeApi, pool: dict[str, Any], report: DrainReport, now: dt.datetime) -> None:
    """Ready=False with the drain's reason (Stalled while it needs someone), and an Event when
    that changes; the condition is what `kubectl get cpool` and Argo CD show."""
    conds = list((pool.get("status") or {}).get("conditions") or [])
    before = get_condition(conds, c.READY) or {}
    health = Health(False, report.reason, report.message, stalled=report.stuck)
    gen = int(pool["metadata"].get("generation", 1))
    new = with_health(conds, health, generation=gen, now=format_time(now))
    if new != conds:
        kube.patch_status(API_VERSION, "ComputePool", None, pool["metadata"]["name"],
                          {"conditions": new})  # fmt: skip
    # One Event per change of reason; a stuck drain also when what blocks it changes.
    moved = before.get("reason") != report.reason
    if moved or (report.stuck and before.get("message") != report.message):
        kind = "Warning" if report.stuck or report.reason == c.DRAIN_FAILED else "Normal"
        kube.event(pool, kind, report.reason, report.message)


def drain_computepool(kube: KubeApi, name: str) -> DrainPass:
    pool = kube.get(API_VERSION, "ComputePool", None, name)
    if pool is None:
        return DrainPass(done=True, delay=0.0)
    now = dt.datetime.now(dt.UTC)
    try:
        nodes = kube.list("v1", "Node", None, f"{LABEL_COMPUTEPOOL}={name}")
        provider = provider_for(kube, pool, nodes)
        owned = [n for n in nodes if provider.owns(n)]
        provider.target_size()  # Cluster API: is the MachineDeployment there, and ours?
    except ProviderError as exc:
        # Nothing here the pool may touch (no such MachineDeployment, or one it does not own):
        # the nodes are not the pool's to remove. Say so, and let the pool go.
        kube.event(pool, "Warning", c.DRAINED, f"no node removed: {exc}")
        return DrainPass(done=True, delay=0.0)
    except ApiException as exc:
        if exc.status != 403:
            raise  # an outage: kopf retries the handler with its backoff
        _report(kube, pool, drain_report(name, _EMPTY, {}, describe(exc), 0), now)
        return DrainPass(done=False, delay=WAIT_DELAY)
    if not owned:
        kube.event(pool, "Normal", c.DRAINED, "no node of the pool is left")
        return DrainPass(done=True, delay=0.0)
    names = {n["metadata"]["name"] for n in owned}
    pods = [
        pod
        for node in sorted(names)
        for pod in kube.list("v1", "Pod", None, field_selector=f"spec.nodeName={node}")
    ]
    step = drain_step(owned, pods, force=forced(pool))
    refused: dict[str, str] = {}
    error = None
    try:
        for node in step.cordon:
            cordon(kube, node, True, now)
        refused = _evict_all(kube, step.evict)
        if step.remove:
            provider.delete_nodes([n for n in owned if n["metadata"]["name"] in step.remove])
            log.info("pool %s: deleting drained nodes %s", name, ", ".join(step.remove))
    except (ProviderError, ApiException) as exc:
        error = describe(exc)
    report = drain_report(name, step, refused, error, len(owned))
    _report(kube, pool, report, now)
    moving = not (error or refused or (step.blockers and not step.evict))
    return DrainPass(done=False, delay=PROGRESS_DELAY if moving else WAIT_DELAY)


_EMPTY: Final = DrainStep((), (), (), (), (), done=False)
