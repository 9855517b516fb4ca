"""ComputePools page: each pool's nodes (ready, GPUs, idle for), pending demand and recent
scale decisions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perennial_studio import facts
from perennial_studio.store import Obj, Snapshot

SCALE_REASONS = ("ScaledUp", "ScaledDown", "MaxNodesReached", "PodTooLarge", "ProviderError")
GPU = "nvidia.com/gpu"


@dataclass(frozen=True)
class NodeRow:
    name: str
    ready: bool
    gpus: str
    gpu_type: str
    cordoned: bool
    idle_since: str | None
    pods: int


@dataclass
class PoolView:
    obj: Obj
    name: str
    nodes: list[NodeRow]
    pending: list[Obj]  # Perennial pods the scheduler could not place that ask for the pool
    decisions: list[dict[str, Any]]  # lastScaleUp / lastScaleDown and scale Events
    events: list[Obj]


def _selects(pod: Obj, pool: Obj) -> bool:
    selector = facts.spec(pod).get("nodeSelector") or {}
    labels = facts.spec(pool).get("labels") or {}
    if selector.get(facts.LABEL_COMPUTEPOOL) == facts.name(pool):
        return True
    return bool(labels) and all(selector.get(k) == v for k, v in labels.items())


def pool_view(snap: Snapshot, pool: Obj) -> PoolView:
    name = facts.name(pool)
    nodes = [
        n
        for n in snap.items("Node")
        if (n["metadata"].get("labels") or {}).get(facts.LABEL_COMPUTEPOOL) == name
    ]
    on_node: dict[str, int] = {}
    for pod in snap.items("Pod"):
        node = facts.spec(pod).get("nodeName")
        if node and facts.status(pod).get("phase") in ("Pending", "Running"):
            on_node[str(node)] = on_node.get(str(node), 0) + 1
    rows = [
        NodeRow(
            facts.name(n),
            bool(facts.status(n).get("ready")),
            str((facts.status(n).get("allocatable") or {}).get(GPU, "0")),
            str((n["metadata"].get("labels") or {}).get("perennial.dev/gpu-type", "")),
            bool(facts.spec(n).get("unschedulable")),
            (n["metadata"].get("annotations") or {}).get(facts.ANNOTATION_IDLE_SINCE),
            on_node.get(facts.name(n), 0),
        )
        for n in sorted(nodes, key=facts.name)
    ]
    pending = [
        p for p in snap.items("Pod") if facts.status(p).get("unschedulable") and _selects(p, pool)
    ]
    events = [e for e in snap.events_for("ComputePool", None, name)]
    status = facts.status(pool)
    decisions = [
        {"direction": d, **status[k]}
        for d, k in (("up", "lastScaleUp"), ("down", "lastScaleDown"))
        if status.get(k)
    ]
    decisions.sort(key=lambda d: str(d.get("time") or ""), reverse=True)
    scale_events = [e for e in events if e.get("reason") in SCALE_REASONS][:20]
    return PoolView(pool, name, rows, pending, decisions, scale_events)


def pools_page(snap: Snapshot) -> list[PoolView]:
    return [pool_view(snap, p) for p in sorted(snap.items("ComputePool"), key=facts.name)]
