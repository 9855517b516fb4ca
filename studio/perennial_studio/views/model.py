"""Model page: versions, the metric across versions, stage history, lineage, serving."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from perennial_operator.api.rejections import rejections_of
from perennial_studio import facts, svg, urls
from perennial_studio.store import Obj, Snapshot
from perennial_studio.views.groups import ModelGroup, model_groups
from perennial_studio.views.lineage import Graph, lineage

STAGE_CHANGE = re.compile(r"stage (\w+) -> (\w+)")
MAX_VERSION_ROWS = 200


@dataclass(frozen=True)
class VersionRow:
    name: str
    version: int
    stage: str
    phase: str
    metric: tuple[str, float] | None
    dataset_sha: str
    dataset_rows: Any
    dataset_uri: str
    job: str
    job_url: str | None
    created: str
    rejections: list[Obj]


@dataclass(frozen=True)
class StageChange:
    time: str
    version: str
    old: str
    new: str
    message: str
    source: str


@dataclass
class ModelPage:
    namespace: str
    model: str
    group: ModelGroup
    rows: list[VersionRow]
    hidden_rows: int
    metric_name: str | None
    metric_points: list[tuple[int, float, str]]  # (version, value, stage)
    stage_history: list[StageChange]
    graph: Graph
    services: list[Obj] = field(default_factory=list)
    policies: list[Obj] = field(default_factory=list)


def version_row(ns: str, mv: Obj, metric_name: str | None = None) -> VersionRow:
    source = facts.spec(mv).get("source") or {}
    data = source.get("dataset") or {}
    job = str(source.get("trainingJob") or "")
    return VersionRow(
        facts.name(mv),
        facts.version(mv),
        facts.stage(mv),
        str(facts.status(mv).get("phase") or "Pending"),
        facts.primary_metric(mv) or _spec_metric(mv, metric_name),
        str(data.get("sha256") or ""),
        data.get("rows"),
        str(data.get("uri") or ""),
        job,
        urls.trainingjob(ns, job) if job else None,
        facts.created(mv),
        [
            {
                "inferenceService": r.service,
                "reason": r.reason,
                "message": r.message,
                "time": r.time,
                "retried": r.retried,
            }
            for r in rejections_of(mv)
        ],  # fmt: skip
    )


def _spec_metric(mv: Obj, name: str | None) -> tuple[str, float] | None:
    """Before the operator writes status.primaryMetric: the model's metric from the spec."""
    value = facts.metrics_of(mv).get(name) if name else None
    return None if name is None or value is None else (name, value)


def _recorded_changes(mv: Obj) -> list[StageChange]:
    """The changes status.stageHistory records (the first entry is the stage it started in)."""
    history = [h for h in facts.status(mv).get("stageHistory") or [] if isinstance(h, dict)]
    return [
        StageChange(
            str(new.get("time") or ""),
            facts.name(mv),
            str(old.get("stage") or ""),
            str(new.get("stage") or ""),
            f"stage {old.get('stage')} -> {new.get('stage')}",
            str(new.get("by") or ""),
        )
        for old, new in zip(history, history[1:], strict=False)
    ]


def stage_history(snap: Snapshot, group: ModelGroup) -> list[StageChange]:
    """Stage changes from status.stageHistory (durable: kept by the operator); for versions
    without one (written before it existed), what the Events tell (the operator's
    StageChanged, the Studio's StageSet), as far as the Studio saw them."""
    changes = []
    for mv in group.versions:
        if facts.status(mv).get("stageHistory"):
            changes += _recorded_changes(mv)
            continue
        for event in snap.events_for("ModelVersion", group.namespace, facts.name(mv)):
            if event.get("reason") not in ("StageChanged", "StageSet"):
                continue
            match = STAGE_CHANGE.search(str(event.get("message") or ""))
            old, new = match.groups() if match else ("", "")
            changes.append(
                StageChange(
                    str(event.get("time") or ""),
                    facts.name(mv),
                    old,
                    new,
                    str(event.get("message") or ""),
                    str(event.get("source") or ""),
                )
            )
    return sorted(changes, key=lambda c: c.time, reverse=True)


def metric_series(group: ModelGroup) -> tuple[str | None, list[tuple[int, float, str]]]:
    """The primary metric most versions report, as (version, value, stage), oldest first."""
    pairs = [(mv, facts.primary_metric(mv)) for mv in group.versions]
    names = Counter(p[0] for _, p in pairs if p)
    if not names:
        return None, []
    name = names.most_common(1)[0][0]
    points = []
    for mv in reversed(group.versions):
        value = facts.metrics_of(mv).get(name)
        if value is not None:
            points.append((facts.version(mv), value, facts.stage(mv)))
    return name, points


def model_page(snap: Snapshot, namespace: str, model: str) -> ModelPage | None:
    group = model_groups(snap).get((namespace, model))
    if group is None:
        return None
    metric_name, points = metric_series(group)
    rows = [version_row(namespace, mv, metric_name) for mv in group.versions]
    return ModelPage(
        namespace,
        model,
        group,
        rows[:MAX_VERSION_ROWS],
        max(0, len(rows) - MAX_VERSION_ROWS),
        metric_name,
        points,
        stage_history(snap, group),
        lineage(group),
        group.services,
        group.policies,
    )


def metric_chart(page: ModelPage) -> Markup:
    points = [(float(v), value) for v, value, _ in page.metric_points]
    labels = {float(v): f"v{v}" for v, _, _ in page.metric_points}
    production = {
        float(v): "Production" for v, _, stage in page.metric_points if stage == "Production"
    }
    name = page.metric_name or "metric"
    return svg.line_chart(
        [svg.Series(name, points)],
        title=f"{name} by version of {page.model}",
        y_label=name,
        x_labels=labels,
        markers=production,
    )


def compare_link(page: ModelPage) -> str | None:
    if len(page.rows) < 2:
        return None
    return urls.compare(page.namespace, page.model, page.rows[1].name, page.rows[0].name)
