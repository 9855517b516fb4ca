"""InferenceService page: versions, the canary and each step's analysis, replicas and pods,
request plots from the pods' own metrics, drift and the live metric."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from perennial_studio import facts, svg
from perennial_studio.scrape import Point, ServiceSeries
from perennial_studio.store import Obj, Snapshot
from perennial_studio.views.groups import DriftView, drift_view, policies_for

# The operator's canary Events (decide/rollout.py): "step 2/3: churn-v4 at 50% (...)" and,
# once a step passed, "; canary: 120 requests, error rate 0.0000, p99 12.5ms; stable: ...".
STEP = re.compile(r"step (?P<step>\d+)/(?P<steps>\d+): (?P<version>\S+) at (?P<weight>\d+)%")
MEASURED = re.compile(
    r"(?P<track>canary|stable): (?:(?P<requests>\d+) requests, error rate (?P<rate>[\d.]+), "
    r"p99 (?P<p99>[\d.]+ms|n/a)|(?P<none>no requests|not measured))"
)
CANARY_REASONS = (
    "CanaryStarted",
    "CanaryStep",
    "Promoted",
    "RolledBack",
    "RolloutComplete",
    "RolloutSuperseded",
    "RolloutAbandoned",
)
MAX_FEATURES_SHOWN = 40


@dataclass(frozen=True)
class Measured:
    requests: int | None
    error_rate: float | None
    p99_ms: float | None
    text: str


@dataclass
class StepRow:
    index: int  # 1-based
    weight: int
    state: str  # passed | current | todo | failed
    canary: Measured | None = None
    stable: Measured | None = None
    time: str | None = None
    message: str = ""


@dataclass
class RolloutView:
    version: str | None
    strategy: str
    steps: list[StepRow]
    max_error_rate: float
    max_p99_ms: float
    step_seconds: int
    history: list[Obj] = field(default_factory=list)  # canary Events, newest first


@dataclass
class ServicePage:
    obj: Obj
    namespace: str
    name: str
    phase: str
    model: str | None
    tracked_stage: str | None
    pinned: int | None
    current: Obj | None
    candidate: Obj | None
    rollout: RolloutView | None
    deployments: list[Obj]
    pods: list[Obj]
    drift: DriftView
    features: list[tuple[str, float]]  # PSI per feature, worst first (empty below minimum)
    hidden_features: int
    live_metric: dict[str, Any]
    series: ServiceSeries | None
    events: list[Obj]
    policies: list[Obj]
    versions: list[Obj]


def measured(message: str) -> dict[str, Measured]:
    found = {}
    for match in MEASURED.finditer(message):
        if match["none"]:
            found[match["track"]] = Measured(
                0 if match["none"] == "no requests" else None, None, None, match["none"]
            )
            continue
        p99 = None if match["p99"] == "n/a" else float(match["p99"].removesuffix("ms"))
        found[match["track"]] = Measured(
            int(match["requests"]), float(match["rate"]), p99, match.group(0)
        )
    return found


def rollout_view(isvc: Obj, events: list[Obj]) -> RolloutView | None:
    spec, status = facts.spec(isvc).get("rollout") or {}, facts.status(isvc)
    canary = status.get("canary") or {}
    weights = [int(w) for w in spec.get("steps") or []]
    history = [e for e in events if e.get("reason") in CANARY_REASONS]
    if not canary and not history:
        return None
    version = canary.get("modelVersion")
    # The events of this rollout: newest back to the CanaryStarted of the same version.
    current: list[Obj] = []
    for event in history:
        match = STEP.search(str(event.get("message") or ""))
        if version and match and match["version"] != version:
            break
        current.append(event)
        if event.get("reason") == "CanaryStarted":
            break
    rows = [StepRow(i + 1, w, "todo") for i, w in enumerate(weights)]
    at = int(canary["step"]) if canary.get("step") is not None else None
    for event in reversed(current):  # oldest first
        message = str(event.get("message") or "")
        match = STEP.search(message)
        numbers = measured(message)
        reason = event.get("reason")
        if reason == "CanaryStep" and match:  # the step before this one passed
            passed = int(match["step"]) - 1
        elif reason == "Promoted":
            passed = len(rows)
        elif reason == "RolledBack":
            step = at if at is not None else _last_started(rows)
            if step is not None and step < len(rows):
                rows[step].state = "failed"
                rows[step].canary, rows[step].stable = numbers.get("canary"), numbers.get("stable")
                rows[step].time, rows[step].message = event.get("time"), message
            continue
        else:
            continue
        if 1 <= passed <= len(rows):
            row = rows[passed - 1]
            row.state, row.canary, row.stable = (
                "passed",
                numbers.get("canary"),
                numbers.get("stable"),
            )
            row.time, row.message = event.get("time"), message
    if at is not None and at < len(rows):
        for row in rows[:at]:
            if row.state == "todo":
                row.state = "passed"
        if rows[at].state == "todo":
            rows[at].state = "current"
    return RolloutView(
        version,
        str(spec.get("strategy") or "Rolling"),
        rows,
        float(spec.get("maxErrorRate", 0.01)),
        float(spec.get("maxP99LatencyMs", 250)),
        int(spec.get("stepSeconds", 60)),
        history[:20],
    )


def _last_started(rows: list[StepRow]) -> int | None:
    passed = [i for i, r in enumerate(rows) if r.state == "passed"]
    return (passed[-1] + 1) if passed else 0


def service_page(
    snap: Snapshot,
    namespace: str,
    name: str,
    min_samples: int,
    series: ServiceSeries | None,
) -> ServicePage | None:
    isvc = snap.get("InferenceService", namespace, name)
    if isvc is None:
        return None
    status = facts.status(isvc)
    events = snap.events_for("InferenceService", namespace, name)
    drift = drift_view(snap, isvc, min_samples)
    features: list[tuple[str, float]] = []
    if drift.psi is not None:
        values = (status.get("drift") or {}).get("features") or {}
        features = sorted(((str(k), float(v)) for k, v in values.items()), key=lambda kv: -kv[1])
    model = facts.model_of("InferenceService", isvc)
    current = status.get("currentModelVersion")
    candidate = (status.get("canary") or {}).get("modelVersion")
    versions = [
        mv
        for mv in snap.items("ModelVersion")
        if facts.namespace(mv) == namespace and facts.model_of("ModelVersion", mv) == model
    ]
    pods = sorted(
        snap.labelled("Pod", facts.LABEL_INFERENCESERVICE, namespace, name), key=facts.name
    )
    return ServicePage(
        isvc,
        namespace,
        name,
        str(status.get("phase") or "Pending"),
        model,
        facts.tracked_stage(isvc),
        facts.pinned_version(isvc),
        snap.get("ModelVersion", namespace, str(current)) if current else None,
        snap.get("ModelVersion", namespace, str(candidate)) if candidate else None,
        rollout_view(isvc, events),
        sorted(
            snap.labelled("Deployment", facts.LABEL_INFERENCESERVICE, namespace, name),
            key=facts.name,
        ),
        pods,
        drift,
        features[:MAX_FEATURES_SHOWN],
        max(0, len(features) - MAX_FEATURES_SHOWN),
        dict(status.get("liveMetric") or {}),
        series,
        events[:30],
        policies_for(snap, isvc),
        sorted(versions, key=facts.version, reverse=True),
    )


def _ago(seconds: float) -> str:
    if seconds < 1:
        return "now"
    return f"-{seconds:.0f} s" if seconds < 120 else f"-{seconds / 60:.0f} min"


def request_charts(series: ServiceSeries | None, now: float) -> dict[str, Markup]:
    """Requests per second, error rate and p99 over the scraped history (x: time ago)."""
    if series is None or not series.points:
        return {}
    points = list(series.points)

    def xy(value: Callable[[Point], float | None]) -> list[tuple[float, float | None]]:
        return [(p.time - now, value(p)) for p in points]

    labels = {p.time - now: _ago(now - p.time) for p in points}

    def chart(series: svg.Series, title: str) -> Markup:
        return svg.line_chart([series], title=title, y_label=series.name, x_labels=labels,
                              y_min=0.0, width=460, height=180)  # fmt: skip

    rate = xy(lambda p: None if p.error_rate is None else p.error_rate * 100)
    return {
        "rps": chart(svg.Series("requests/s", xy(lambda p: p.rps)), "requests per second"),
        "errors": chart(svg.Series("5xx %", rate, "#c62828"), "error rate (5xx) in percent"),
        "p99": chart(svg.Series("p99 ms", xy(lambda p: p.p99_ms), "#6a1b9a"), "p99 latency"),
    }


def last_point(series: ServiceSeries | None) -> Point | None:
    return series.points[-1] if series is not None and series.points else None


def drift_chart(page: ServicePage) -> Markup | None:
    if not page.features:
        return None
    return svg.bar_chart(
        page.features,
        threshold=page.drift.threshold,
        title=f"PSI per feature over {page.drift.samples} samples",
    )
