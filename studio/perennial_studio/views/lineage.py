"""The lineage graph of one model: dataset -> TrainingJob -> ModelVersion -> InferenceService,
with the RetrainPolicy trigger that started each job. Pure: nodes, edges and positions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perennial_studio import facts, urls
from perennial_studio.store import Obj
from perennial_studio.views.groups import ModelGroup

COLUMNS = ("dataset", "job", "version", "service")


@dataclass(frozen=True)
class Node:
    id: str
    column: int
    label: str
    sub: str
    url: str | None
    state: str  # ok | warn | bad | idle: its colour
    row: float = 0.0


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)
    rows: int = 0
    hidden: int = 0  # jobs and versions older than the ones drawn

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)


def _job_state(tj: Obj) -> str:
    phase = facts.status(tj).get("phase")
    return {"Succeeded": "ok", "Failed": "bad"}.get(str(phase), "warn")


def _stage_state(mv: Obj) -> str:
    return {"Production": "ok", "Staging": "warn", "Archived": "idle"}.get(facts.stage(mv), "idle")


def _trigger(tj: Obj) -> str:
    labels = tj["metadata"].get("labels") or {}
    policy = labels.get(facts.LABEL_RETRAINPOLICY)
    if not policy:
        return ""
    reason = (tj["metadata"].get("annotations") or {}).get(facts.ANNOTATION_RETRAIN_REASON, "")
    return f"{policy}: {reason}" if reason else f"retrain by {policy}"


def lineage(group: ModelGroup, limit: int = 10) -> Graph:
    """The newest `limit` rows (a row is a job and what it registered, or a version
    registered by hand), newest on top."""
    ns = group.namespace
    by_job = {facts.name(tj): tj for tj in group.jobs}
    version_of_job: dict[str, Obj] = {}
    loose: list[Obj] = []
    for registered in group.versions:
        job = str((facts.spec(registered).get("source") or {}).get("trainingJob") or "")
        if job in by_job:
            version_of_job[job] = registered
        else:
            loose.append(registered)
    rows: list[tuple[Obj | None, Obj | None]] = [
        (tj, version_of_job.get(facts.name(tj))) for tj in group.jobs
    ]
    rows += [(None, mv) for mv in loose]
    rows.sort(key=lambda r: facts.created(r[1] or r[0] or {"metadata": {}}), reverse=True)
    graph = Graph(hidden=max(0, len(rows) - limit))
    rows = rows[:limit]
    graph.rows = len(rows)
    datasets: dict[str, list[float]] = {}
    dataset_label: dict[str, tuple[str, str]] = {}
    served: dict[str, list[float]] = {}
    serving = _serving(group)
    for i, (tj, mv) in enumerate(rows):
        source: dict[str, Any] = dict(facts.spec(mv).get("source") or {}) if mv else {}
        recorded = facts.status(tj).get("dataset") if tj else None
        data: dict[str, Any] = dict(recorded or source.get("dataset") or {})
        asked = str((facts.spec(tj).get("dataset") or {}).get("uri") or "") if tj else ""
        uri = str(data.get("uri") or asked)
        dataset_id = f"dataset:{data.get('sha256') or uri}"
        if uri or data.get("sha256"):
            datasets.setdefault(dataset_id, []).append(i)
            rows_text = f"{data['rows']} rows " if data.get("rows") is not None else ""
            dataset_label[dataset_id] = (uri, f"{rows_text}{facts.short_sha(data.get('sha256'))}")
        if tj is not None:
            job_id = f"job:{facts.name(tj)}"
            graph.nodes.append(
                Node(
                    job_id,
                    1,
                    facts.name(tj),
                    _trigger(tj) or str(facts.status(tj).get("phase") or "Pending"),
                    urls.trainingjob(ns, facts.name(tj)),
                    _job_state(tj),
                    i,
                )
            )
            if dataset_id in datasets:
                graph.edges.append((dataset_id, job_id))
        if mv is not None:
            mv_id = f"version:{facts.name(mv)}"
            metric = facts.status(mv).get("primaryMetric") or ""
            graph.nodes.append(
                Node(
                    mv_id,
                    2,
                    facts.name(mv),
                    f"{facts.stage(mv)} {metric}".strip(),
                    urls.modelversion(ns, group.model, facts.name(mv)),
                    _stage_state(mv),
                    i,
                )
            )
            if tj is not None:
                graph.edges.append((f"job:{facts.name(tj)}", mv_id))
            elif dataset_id in datasets:
                graph.edges.append((dataset_id, mv_id))
            for isvc_name, _track in serving.get(facts.name(mv), []):
                served.setdefault(isvc_name, []).append(i)
                graph.edges.append((mv_id, f"service:{isvc_name}"))
    for dataset_id, at in datasets.items():
        uri, sub = dataset_label[dataset_id]
        graph.nodes.append(Node(dataset_id, 0, uri, sub, None, "idle", sum(at) / len(at)))
    by_name = {facts.name(s): s for s in group.services}
    for isvc_name, at in served.items():
        isvc = by_name[isvc_name]
        graph.nodes.append(
            Node(
                f"service:{isvc_name}",
                3,
                isvc_name,
                str(facts.status(isvc).get("phase") or "Pending"),
                urls.inferenceservice(ns, isvc_name),
                facts.health(isvc),
                sum(at) / len(at),
            )
        )
    return graph


def _serving(group: ModelGroup) -> dict[str, list[tuple[str, str]]]:
    """ModelVersion name -> [(service, current|canary)]."""
    found: dict[str, list[tuple[str, str]]] = {}
    for isvc in group.services:
        status = facts.status(isvc)
        current = status.get("currentModelVersion")
        canary = (status.get("canary") or {}).get("modelVersion")
        if current:
            found.setdefault(str(current), []).append((facts.name(isvc), "current"))
        if canary and canary != current:
            found.setdefault(str(canary), []).append((facts.name(isvc), "canary"))
    return found
