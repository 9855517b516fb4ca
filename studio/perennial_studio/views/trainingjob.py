"""TrainingJob page: phase and stage, data-check report, leaderboard, metrics, timings,
placement, the training pod's logs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from perennial_studio import facts
from perennial_studio.store import Obj, Snapshot

STAGES = ("Pending", "Validating", "Training", "Succeeded")
VALIDATE_CONTAINER = "validate"  # the trainer's data checks run as this init container
TRAIN_CONTAINER = "train"
# The operator's Failed condition message for data checks (decide/result.py failure_report).
CHECK_SENTENCE = re.compile(
    r"(?P<check>[a-z_]+)(?: on column (?P<column>.+?))?: observed (?P<observed>.*?), "
    r"expected (?P<expected>.*)"
)


@dataclass(frozen=True)
class Check:
    check: str
    column: str
    observed: Any
    expected: Any


@dataclass
class DataReport:
    outcome: str  # passed | failed | pending | unknown
    failures: list[Check] = field(default_factory=list)
    warnings: list[Check] = field(default_factory=list)
    source: str = ""  # where the report was read
    message: str = ""
    truncated: bool = False


@dataclass(frozen=True)
class Step:
    name: str
    state: str  # done | current | failed | todo


@dataclass
class TrainingJobPage:
    obj: Obj
    namespace: str
    name: str
    phase: str
    steps: list[Step]
    report: DataReport
    metrics: list[tuple[str, float | None, float | None]]  # name, value, baseline
    ensemble: list[dict[str, Any]]
    timings: dict[str, float]
    pods: list[Obj]
    job: Obj | None
    result: dict[str, Any]
    events: list[Obj]
    retrain_policy: str | None
    retrain_reason: str | None
    model_version: Obj | None

    @property
    def running_pod(self) -> Obj | None:
        return self.pods[0] if self.pods else None


def termination(pod: Obj, container: str, init: bool = False) -> dict[str, Any] | None:
    """The JSON the trainer wrote as a container's termination message, if any."""
    key = "initContainerStatuses" if init else "containerStatuses"
    for status in facts.status(pod).get(key) or []:
        if status.get("name") == container and "terminated" in status:
            try:
                data = json.loads(status["terminated"].get("message") or "")
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
    return None


def _checks(items: Any) -> list[Check]:
    return [
        Check(
            str(f.get("check") or ""),
            str(f.get("column") or ""),
            f.get("observed"),
            f.get("expected"),
        )
        for f in items or []
        if isinstance(f, dict)
    ]


def parse_failure_sentences(message: str) -> list[Check]:
    """Checks out of the operator's condition message ("2 failing check(s); a on column x:
    observed 1, expected 2; ..."): the fallback once the pod is gone."""
    found = []
    for part in message.split("; "):
        match = CHECK_SENTENCE.fullmatch(part.strip())
        if match:
            found.append(
                Check(match["check"], match["column"] or "", match["observed"], match["expected"])
            )
    return found


def data_report(tj: Obj, pods: list[Obj]) -> DataReport:
    validated = facts.condition(tj, "DataValidated")
    for pod in pods:
        data = termination(pod, VALIDATE_CONTAINER, init=True)
        if data is None:
            continue
        outcome = {"Validated": "passed", "DataInvalid": "failed"}.get(str(data.get("outcome")))
        return DataReport(
            outcome or "unknown",
            _checks(data.get("failures")),
            _checks(data.get("warnings")),
            f"termination message of pod {facts.name(pod)}, container {VALIDATE_CONTAINER}",
            str(data.get("message") or ""),
            bool(data.get("truncated")),
        )
    if validated.get("status") == "True":
        return DataReport(
            "passed", source="DataValidated condition", message=str(validated.get("message") or "")
        )
    if validated.get("status") == "False":
        failed = facts.condition(tj, "Failed")
        message = str(failed.get("message") or validated.get("message") or "")
        return DataReport(
            "failed",
            parse_failure_sentences(message),
            source="Failed condition (the training pod is gone)",
            message=message,
            truncated="truncated" in message,
        )
    return DataReport("pending")


def steps(tj: Obj) -> list[Step]:
    """Pending -> Validating -> Training -> Succeeded, with where a failure happened."""
    phase = str(facts.status(tj).get("phase") or "Pending")
    if phase == "Failed":
        validated = facts.condition(tj, "DataValidated").get("status")
        failed_at = {"False": 1, "True": 2}.get(str(validated), 0)
        if failed_at == 0 and facts.status(tj).get("startTime"):
            failed_at = 1
        return [
            Step(s, "done" if i < failed_at else "failed" if i == failed_at else "todo")
            for i, s in enumerate(STAGES[:-1])
        ] + [Step("Failed", "failed")]
    at = STAGES.index(phase) if phase in STAGES else 0
    last = len(STAGES) - 1
    return [
        Step(s, "done" if i < at or (i == at == last) else "current" if i == at else "todo")
        for i, s in enumerate(STAGES)
    ]


def metrics_table(tj: Obj) -> list[tuple[str, float | None, float | None]]:
    status = facts.status(tj)
    metrics, baseline = status.get("metrics") or {}, status.get("baselineMetrics") or {}
    return [(n, metrics.get(n), baseline.get(n)) for n in sorted(set(metrics) | set(baseline))]


def ensemble_members(tj: Obj) -> list[dict[str, Any]]:
    """An ensemble's members with their own CV scores: the part of the AutoML leaderboard
    the cluster records (the whole board is in the model directory's result.json)."""
    members = (facts.status(tj).get("hyperparameters") or {}).get("members") or []
    rows = [m for m in members if isinstance(m, dict)]
    return sorted(rows, key=lambda m: -(m.get("score") or 0.0))


def trainingjob_page(snap: Snapshot, namespace: str, name: str) -> TrainingJobPage | None:
    tj = snap.get("TrainingJob", namespace, name)
    if tj is None:
        return None
    pods = sorted(
        snap.labelled("Pod", facts.LABEL_TRAININGJOB, namespace, name),
        key=facts.created,
        reverse=True,
    )
    status = facts.status(tj)
    result = next((r for p in pods if (r := termination(p, TRAIN_CONTAINER)) is not None), {})
    labels = tj["metadata"].get("labels") or {}
    annotations = tj["metadata"].get("annotations") or {}
    mv_name = status.get("modelVersion")
    return TrainingJobPage(
        tj,
        namespace,
        name,
        str(status.get("phase") or "Pending"),
        steps(tj),
        data_report(tj, pods),
        metrics_table(tj),
        ensemble_members(tj),
        ordered_timings(result.get("timings") or {}),
        pods,
        snap.get("Job", namespace, str(status.get("jobName") or ""))
        if status.get("jobName")
        else None,
        result,
        snap.events_for("TrainingJob", namespace, name)[:30],
        labels.get(facts.LABEL_RETRAINPOLICY),
        annotations.get(facts.ANNOTATION_RETRAIN_REASON),
        snap.get("ModelVersion", namespace, str(mv_name)) if mv_name else None,
    )


TRAINER_STAGES = ("loading", "validating", "fitting", "evaluating", "writing", "done", "total")


def ordered_timings(timings: dict[str, Any]) -> dict[str, float]:
    """The trainer's stage timings in the order it runs them (its JSON sorts the keys)."""
    rank = {name: i for i, name in enumerate(TRAINER_STAGES)}
    numbers = {k: float(v) for k, v in timings.items() if isinstance(v, int | float)}
    return dict(sorted(numbers.items(), key=lambda kv: (rank.get(kv[0], len(rank) - 1), kv[0])))


def running(page: TrainingJobPage) -> bool:
    return page.phase not in ("Succeeded", "Failed")


def trainingjob_rows(snap: Snapshot, namespace: str | None, limit: int) -> tuple[list[Obj], int]:
    jobs = [
        tj
        for tj in snap.items("TrainingJob")
        if namespace is None or facts.namespace(tj) == namespace
    ]
    jobs.sort(key=lambda tj: (facts.created(tj), facts.name(tj)), reverse=True)
    return jobs[:limit], max(0, len(jobs) - limit)
