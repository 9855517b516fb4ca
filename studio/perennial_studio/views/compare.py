"""Two versions of one model side by side: metrics, algorithm, hyperparameters, the
leaderboard the cluster records (ensemble members), and the data checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from perennial_studio import facts
from perennial_studio.store import Obj, Snapshot
from perennial_studio.views.trainingjob import DataReport, data_report, ensemble_members


@dataclass(frozen=True)
class Side:
    mv: Obj
    job: Obj | None
    report: DataReport | None
    members: list[dict[str, Any]]
    validation: dict[str, Any]
    automl: dict[str, Any]


@dataclass(frozen=True)
class Row:
    name: str
    a: Any
    b: Any
    winner: str  # "a" | "b" | "" (metrics only)


@dataclass
class ComparePage:
    namespace: str
    model: str
    a: Side
    b: Side
    metrics: list[Row]
    hyperparameters: list[Row]
    facts_rows: list[Row]
    choices: list[str]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested hyperparameters as dotted paths (an ensemble's members as members[0].…)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        out = {}
        for i, v in enumerate(value):
            out |= flatten(v, f"{prefix}[{i}]")
        return out
    return {prefix: value}


def _side(snap: Snapshot, ns: str, mv: Obj) -> Side:
    job_name = str((facts.spec(mv).get("source") or {}).get("trainingJob") or "")
    job = snap.get("TrainingJob", ns, job_name) if job_name else None
    pods = snap.labelled("Pod", facts.LABEL_TRAININGJOB, ns, job_name) if job else []
    return Side(
        mv,
        job,
        data_report(job, pods) if job else None,
        ensemble_members(job) if job else [],
        dict(facts.spec(job).get("validation") or {}) if job else {},
        dict(facts.spec(job).get("automl") or {}) if job else {},
    )


def metric_rows(a: Obj, b: Obj) -> list[Row]:
    ma, mb = facts.metrics_of(a), facts.metrics_of(b)
    rows = []
    for name in sorted(set(ma) | set(mb)):
        va, vb = ma.get(name), mb.get(name)
        winner = ""
        if va is not None and vb is not None and va != vb:
            winner = "a" if facts.better(name, va, vb) else "b"
        rows.append(Row(name, va, vb, winner))
    return rows


def compare_page(snap: Snapshot, ns: str, model: str, a: str, b: str) -> ComparePage | None:
    versions = sorted(
        (
            mv
            for mv in snap.items("ModelVersion")
            if facts.namespace(mv) == ns and facts.model_of("ModelVersion", mv) == model
        ),
        key=facts.version,
        reverse=True,
    )
    by_name = {facts.name(mv): mv for mv in versions}
    if a not in by_name or b not in by_name:
        return None
    mva, mvb = by_name[a], by_name[b]
    src_a, src_b = facts.spec(mva).get("source") or {}, facts.spec(mvb).get("source") or {}
    ha, hb = (
        flatten(src_a.get("hyperparameters") or {}),
        flatten(src_b.get("hyperparameters") or {}),
    )
    data_a, data_b = src_a.get("dataset") or {}, src_b.get("dataset") or {}
    fact_rows = [
        Row("version", facts.version(mva), facts.version(mvb), ""),
        Row("stage", facts.stage(mva), facts.stage(mvb), ""),
        Row("algorithm", src_a.get("algorithm"), src_b.get("algorithm"), ""),
        Row("dataset", data_a.get("uri"), data_b.get("uri"), ""),
        Row(
            "dataset sha256",
            facts.short_sha(data_a.get("sha256"), 16),
            facts.short_sha(data_b.get("sha256"), 16),
            "",
        ),
        Row("dataset rows", data_a.get("rows"), data_b.get("rows"), ""),
        Row("training job", src_a.get("trainingJob"), src_b.get("trainingJob"), ""),
        Row(
            "artifact format",
            (facts.spec(mva).get("artifact") or {}).get("format"),
            (facts.spec(mvb).get("artifact") or {}).get("format"),
            "",
        ),
        Row("created", facts.created(mva), facts.created(mvb), ""),
    ]
    return ComparePage(
        ns,
        model,
        _side(snap, ns, mva),
        _side(snap, ns, mvb),
        metric_rows(mva, mvb),
        [Row(k, ha.get(k), hb.get(k), "") for k in sorted(set(ha) | set(hb))],
        fact_rows,
        [facts.name(mv) for mv in versions],
    )
