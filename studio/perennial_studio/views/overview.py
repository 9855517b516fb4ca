"""Overview: per namespace, each model's state in one row, and the timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perennial_studio import facts, urls
from perennial_studio.store import Obj, Snapshot
from perennial_studio.timeline import Entry, timeline
from perennial_studio.views.groups import DriftView, ModelGroup, drift_view, model_groups


@dataclass(frozen=True)
class ServiceCell:
    name: str
    url: str
    phase: str
    health: str
    ready: str
    drift: DriftView
    canary: dict[str, Any] | None  # {version, weight, step, steps}


@dataclass
class ModelRow:
    namespace: str
    model: str
    url: str
    production: Obj | None
    production_metric: tuple[str, float] | None
    latest: Obj | None
    versions: int
    services: list[ServiceCell] = field(default_factory=list)
    last_retrain: dict[str, Any] | None = None
    running_jobs: int = 0


@dataclass
class Overview:
    namespaces: dict[str, list[ModelRow]]
    timeline: list[Entry]
    namespace: str | None
    all_namespaces: list[str]


def service_cell(snap: Snapshot, isvc: Obj, min_samples: int) -> ServiceCell:
    status = facts.status(isvc)
    canary = status.get("canary") or None
    if canary:
        steps = ((facts.spec(isvc).get("rollout") or {}).get("steps")) or []
        canary = {**canary, "steps": len(steps)}
    ready = f"{status.get('readyReplicas', 0)}/{status.get('replicas', 0)}"
    return ServiceCell(
        facts.name(isvc),
        urls.inferenceservice(facts.namespace(isvc), facts.name(isvc)),
        str(status.get("phase") or "Pending"),
        facts.health(isvc),
        ready,
        drift_view(snap, isvc, min_samples),
        canary,
    )


def last_retrain(group: ModelGroup) -> dict[str, Any] | None:
    latest: dict[str, Any] | None = None
    for rp in group.policies:
        last = facts.status(rp).get("lastTrigger") or {}
        if last.get("time") and (latest is None or str(last["time"]) > latest["time"]):
            latest = {
                "time": str(last["time"]),
                "reason": last.get("reason"),
                "detail": last.get("detail"),
                "policy": facts.name(rp),
                "url": urls.retrainpolicy(facts.namespace(rp), facts.name(rp)),
                "job": facts.status(rp).get("lastTrainingJob"),
            }
    return latest


def model_row(snap: Snapshot, group: ModelGroup, min_samples: int) -> ModelRow:
    production = group.holding("Production")
    return ModelRow(
        group.namespace,
        group.model,
        urls.model(group.namespace, group.model),
        production,
        facts.primary_metric(production) if production else None,
        group.versions[0] if group.versions else None,
        len(group.versions),
        [service_cell(snap, s, min_samples) for s in group.services],
        last_retrain(group),
        sum(1 for tj in group.jobs if facts.status(tj).get("phase") not in ("Succeeded", "Failed")),
    )


def overview(snap: Snapshot, namespace: str | None, min_samples: int) -> Overview:
    groups = model_groups(snap)
    by_ns: dict[str, list[ModelRow]] = {}
    for (ns, _), group in sorted(groups.items()):
        if namespace is None or ns == namespace:
            by_ns.setdefault(ns, []).append(model_row(snap, group, min_samples))
    return Overview(
        by_ns,
        timeline(snap, namespace=namespace, limit=100),
        namespace,
        sorted({ns for ns, _ in groups}),
    )
