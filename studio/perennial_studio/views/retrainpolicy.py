"""RetrainPolicy page: each trigger's current value against its threshold, and the history
of the jobs it started with the gate's verdict on each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from perennial_studio import facts
from perennial_studio.store import Obj, Snapshot

VERDICT_REASONS = ("Promoted", "NotPromoted", "AwaitingApproval", "TrainingFailed")
# Gate messages name the candidate: "churn-v2 not promoted: roc_auc candidate=0.95 ...".
CANDIDATE = re.compile(r"\b([a-z0-9]([-a-z0-9]*[a-z0-9])?-v\d+)\b")
PRIMARY = {
    "classification": "roc_auc",
    "image-classification": "accuracy",
    "text-classification": "accuracy",
    "regression": "r2",
    "recommendation": "rmse",
    "clustering": "silhouette",
    "anomaly-detection": "roc_auc",
}


@dataclass(frozen=True)
class TriggerRow:
    name: str
    threshold: str
    current: str
    fires: bool | None  # None: cannot be judged now
    note: str = ""


@dataclass(frozen=True)
class JobRow:
    job: Obj
    reason: str
    phase: str
    candidate: str | None
    metric: str
    candidate_value: float | None
    baseline_value: float | None
    improvement: float | None
    verdict: str  # promoted | not promoted | awaiting approval | training failed | pending
    why: str


@dataclass
class PolicyPage:
    obj: Obj
    namespace: str
    name: str
    phase: str
    suspended: bool
    service: Obj | None
    triggers: list[TriggerRow]
    cooldown: TriggerRow
    jobs: list[JobRow]
    events: list[Obj]
    gate_metric: str
    min_improvement: float


def gate_metric(rp: Obj) -> str:
    """promotion.metric, else the template's automl.metric, else the task's primary metric."""
    spec = facts.spec(rp)
    template = spec.get("template") or {}
    return str(
        (spec.get("promotion") or {}).get("metric")
        or (template.get("automl") or {}).get("metric")
        or PRIMARY.get(str(template.get("task")), "")
    )


def improvement(metric: str, candidate: float | None, baseline: float | None) -> float | None:
    if candidate is None or baseline is None:
        return None
    return baseline - candidate if metric in facts.LOWER_IS_BETTER else candidate - baseline


def _fmt(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, int | float) else "—"


def trigger_rows(rp: Obj, isvc: Obj | None, serving: Obj | None) -> list[TriggerRow]:
    triggers = facts.spec(rp).get("triggers") or {}
    status = facts.status(rp)
    isvc_status = facts.status(isvc) if isvc else {}
    rows = []
    if (drift := triggers.get("drift")) is not None:
        psi, min_samples = float(drift.get("psi", 0.2)), int(drift.get("minSamples", 500))
        seen = isvc_status.get("drift") or {}
        samples = int(seen.get("samples") or 0)
        if not seen:
            rows.append(
                TriggerRow(
                    "drift",
                    f"PSI > {psi} over ≥ {min_samples} samples",
                    "no drift measured yet",
                    None,
                )
            )
        elif samples < min_samples:
            rows.append(
                TriggerRow(
                    "drift",
                    f"PSI > {psi} over ≥ {min_samples} samples",
                    f"{samples} samples (PSI withheld below {min_samples})",
                    False,
                )
            )
        else:
            value = float(seen.get("psi") or 0.0)
            rows.append(
                TriggerRow(
                    "drift",
                    f"PSI > {psi} over ≥ {min_samples} samples",
                    f"PSI {value:.3f} over {samples} samples",
                    value > psi,
                )
            )
    if (perf := triggers.get("performance")) is not None:
        metric, below = str(perf.get("metric")), perf.get("below")
        min_samples = int(perf.get("minSamples", 200))
        live = isvc_status.get("liveMetric") or {}
        threshold = f"{metric} < {below} over ≥ {min_samples} labelled samples"
        if live.get("name") != metric:
            rows.append(TriggerRow("performance", threshold, "not measured yet", None))
        else:
            value, samples = float(live.get("value") or 0.0), int(live.get("samples") or 0)
            fires = samples >= min_samples and below is not None and value < float(below)
            rows.append(
                TriggerRow(
                    "performance", threshold, f"{metric} {value:.4g} over {samples} samples", fires
                )
            )
    if (schedule := triggers.get("schedule")) is not None:
        rows.append(
            TriggerRow(
                "schedule",
                f"cron {schedule} (UTC)",
                f"next run {status.get('nextScheduledTime') or '—'}",
                None,
                note=str(status.get("nextScheduledTime") or ""),
            )
        )
    if (new_data := triggers.get("newData")) is not None:
        seen = status.get("newData") or {}
        serving_sha = (
            ((facts.spec(serving).get("source") or {}).get("dataset") or {}).get("sha256")
            if serving
            else None
        )
        current = (
            (
                f"dataset {facts.short_sha(seen.get('sha256'))} ({seen.get('rows')} rows), "
                f"serving {facts.short_sha(serving_sha) or '—'}"
            )
            if seen.get("sha256")
            else ("not probed yet")
        )
        fires = (
            bool(seen.get("sha256"))
            and seen.get("sha256") != serving_sha
            and seen.get("sha256") != seen.get("triggeredSha256")
        )
        rows.append(
            TriggerRow(
                "newData",
                f"dataset sha256 changes (poll every {new_data.get('pollSeconds', 300)}s)",
                current,
                fires if seen.get("sha256") else None,
            )
        )
    return rows


def cooldown_row(rp: Obj, now: float) -> TriggerRow:
    seconds = int(facts.spec(rp).get("cooldownSeconds", 3600))
    last = facts.parse_time((facts.status(rp).get("lastTrigger") or {}).get("time"))
    if last is None:
        return TriggerRow("cooldown", f"{seconds}s between retrainings", "never triggered", False)
    left = last.timestamp() + seconds - now
    text = f"{int(left)}s left" if left > 0 else "over"
    return TriggerRow("cooldown", f"{seconds}s between retrainings", text, left > 0)


def verdicts(events: list[Obj]) -> dict[str, Obj]:
    """The newest gate Event naming each candidate ModelVersion."""
    found: dict[str, Obj] = {}
    for event in events:  # newest first
        if event.get("reason") not in VERDICT_REASONS:
            continue
        match = CANDIDATE.search(str(event.get("message") or ""))
        if match and match.group(1) not in found:
            found[match.group(1)] = event
    return found


def job_row(tj: Obj, metric: str, gate: dict[str, Obj], snap: Snapshot) -> JobRow:
    status = facts.status(tj)
    candidate = status.get("modelVersion")
    value = (status.get("metrics") or {}).get(metric)
    base = (status.get("baselineMetrics") or {}).get(metric)
    event = gate.get(str(candidate)) if candidate else None
    phase = str(status.get("phase") or "Pending")
    mv = snap.get("ModelVersion", facts.namespace(tj), str(candidate)) if candidate else None
    if phase == "Failed":
        verdict, why = "training failed", str(status.get("message") or "")
    elif event is not None:
        verdict = {
            "Promoted": "promoted",
            "NotPromoted": "not promoted",
            "AwaitingApproval": "awaiting approval",
            "TrainingFailed": "training failed",
        }[str(event["reason"])]
        why = str(event.get("message") or "")
    elif mv is not None and facts.stage(mv) in ("Production", "Staging"):
        verdict, why = "promoted", f"{facts.name(mv)} holds {facts.stage(mv)}"
    elif phase == "Succeeded":
        verdict, why = "not promoted", "no promotion recorded (the gate's Event has expired)"
    else:
        verdict, why = "pending", f"training: {phase}"
    annotations = tj["metadata"].get("annotations") or {}
    return JobRow(
        tj,
        str(annotations.get(facts.ANNOTATION_RETRAIN_REASON) or ""),
        phase,
        str(candidate) if candidate else None,
        metric,
        float(value) if isinstance(value, int | float) else None,
        float(base) if isinstance(base, int | float) else None,
        improvement(
            metric,
            value if isinstance(value, int | float) else None,
            base if isinstance(base, int | float) else None,
        ),
        verdict,
        why,
    )


def policy_page(snap: Snapshot, namespace: str, name: str, now: float) -> PolicyPage | None:
    rp = snap.get("RetrainPolicy", namespace, name)
    if rp is None:
        return None
    spec, status = facts.spec(rp), facts.status(rp)
    isvc = snap.get("InferenceService", namespace, str(spec.get("inferenceService") or ""))
    serving_name = facts.status(isvc).get("currentModelVersion") if isvc else None
    serving = snap.get("ModelVersion", namespace, str(serving_name)) if serving_name else None
    events = snap.events_for("RetrainPolicy", namespace, name)
    metric = gate_metric(rp)
    gate = verdicts(events)
    jobs = sorted(
        snap.labelled("TrainingJob", facts.LABEL_RETRAINPOLICY, namespace, name),
        key=facts.created,
        reverse=True,
    )
    return PolicyPage(
        rp,
        namespace,
        name,
        str(status.get("phase") or "Idle"),
        bool(spec.get("suspend")),
        isvc,
        trigger_rows(rp, isvc, serving),
        cooldown_row(rp, now),
        [job_row(tj, metric, gate, snap) for tj in jobs[:100]],
        events[:30],
        metric,
        float((spec.get("promotion") or {}).get("minImprovement", 0.0)),
    )
