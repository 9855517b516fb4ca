"""The timeline of model changes: what happened to models, newest first.

Two sources. Durable state (a TrainingJob's times, a ModelVersion's creation, a policy's
lastTrigger, a service's lastRollback) survives the API server's one-hour Event TTL; Events
carry everything in between (stage changes, canary steps, gate verdicts). An entry from state
is dropped when an Event already tells the same thing within a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from perennial_studio import facts
from perennial_studio.store import Obj, Snapshot

# Event reason -> category shown on the timeline. Others (Deploying, TrafficShifted...) are
# noise for a model's story and stay on the resource's own page.
EVENT_CATEGORIES = {
    "StageChanged": "promoted",
    "StageSet": "promoted",
    "CanaryStarted": "canary",
    "CanaryStep": "canary",
    "RolloutStarted": "rollout",
    "RolledOut": "rollout",
    "RolloutComplete": "rollout",
    "RolloutSuperseded": "rollout",
    "RolloutAbandoned": "rollout",
    "RolledBack": "rolled-back",
    "RollbackRequested": "rolled-back",
    "Rejected": "rolled-back",
    "Triggered": "retrain",
    "TrainingStarted": "retrain",
    "NotPromoted": "gate",
    "AwaitingApproval": "gate",
    "TrainingFailed": "failed",
    "Failed": "failed",
    "DataValidationFailed": "failed",
    "Suspended": "retrain",
    "Resumed": "retrain",
}
SAME_WINDOW_S = 15.0
facts_kinds = ("TrainingJob", "ModelVersion", "InferenceService")


@dataclass(frozen=True)
class Entry:
    time: str
    namespace: str
    model: str | None
    kind: str
    name: str
    category: str
    reason: str
    message: str
    warning: bool = False
    from_event: bool = False


def _policy_model(snap: Snapshot, namespace: str, name: str) -> str | None:
    rp = snap.get("RetrainPolicy", namespace, name)
    return facts.model_of("RetrainPolicy", rp) if rp else None


def _model_for(snap: Snapshot, kind: str, namespace: str, name: str) -> str | None:
    if kind == "RetrainPolicy":
        return _policy_model(snap, namespace, name)
    obj = snap.get(kind, namespace, name) if kind in facts_kinds else None
    return facts.model_of(kind, obj) if obj else None


def _category(event: Obj) -> str | None:
    reason = str(event.get("reason") or "")
    if reason == "Promoted":  # a canary that passed every step, or a gate that passed
        return "canary" if event.get("kind") == "InferenceService" else "gate"
    return EVENT_CATEGORIES.get(reason)


def _from_events(snap: Snapshot) -> list[Entry]:
    entries = []
    for event in snap.items("Event"):
        category, kind = _category(event), str(event.get("kind") or "")
        if category is None or kind not in (*facts_kinds, "RetrainPolicy"):
            continue
        ns, name = str(event.get("namespace") or ""), str(event.get("name") or "")
        entries.append(
            Entry(
                str(event.get("time") or ""),
                ns,
                _model_for(snap, kind, ns, name),
                kind,
                name,
                category,
                str(event.get("reason")),
                str(event.get("message") or ""),
                warning=event.get("type") == "Warning",
                from_event=True,
            )
        )
    return entries


def _from_state(snap: Snapshot) -> list[Entry]:
    entries = []
    for tj in snap.items("TrainingJob"):
        ns, name, model = facts.namespace(tj), facts.name(tj), facts.model_of("TrainingJob", tj)
        status = facts.status(tj)
        reason = tj["metadata"].get("annotations", {}).get(facts.ANNOTATION_RETRAIN_REASON)
        started = f"training started (retrain: {reason})" if reason else "training started"
        entries.append(
            Entry(facts.created(tj), ns, model, "TrainingJob", name, "training", "Created", started)
        )
        if status.get("phase") == "Succeeded" and status.get("completionTime"):
            metric = status.get("primaryMetric") or ""
            what = f"trained {status.get('modelVersion') or ''} {metric}".strip()
            entries.append(
                Entry(
                    str(status["completionTime"]),
                    ns,
                    model,
                    "TrainingJob",
                    name,
                    "trained",
                    "Succeeded",
                    what,
                )
            )
        elif status.get("phase") == "Failed":
            when = status.get("completionTime") or facts.condition(tj, "Failed").get(
                "lastTransitionTime"
            )
            entries.append(
                Entry(
                    str(when or facts.created(tj)),
                    ns,
                    model,
                    "TrainingJob",
                    name,
                    "failed",
                    "Failed",
                    str(status.get("message") or "failed"),
                    warning=True,
                )
            )
    for mv in snap.items("ModelVersion"):
        entries.append(
            Entry(
                facts.created(mv),
                facts.namespace(mv),
                facts.model_of("ModelVersion", mv),
                "ModelVersion",
                facts.name(mv),
                "registered",
                "Registered",
                f"registered {facts.name(mv)}",
            )
        )
    for rp in snap.items("RetrainPolicy"):
        last = facts.status(rp).get("lastTrigger") or {}
        if last.get("time"):
            entries.append(
                Entry(
                    str(last["time"]),
                    facts.namespace(rp),
                    facts.model_of("RetrainPolicy", rp),
                    "RetrainPolicy",
                    facts.name(rp),
                    "retrain",
                    "Triggered",
                    f"{last.get('reason')}: {last.get('detail') or ''}".strip(),
                )
            )
    for isvc in snap.items("InferenceService"):
        last = facts.status(isvc).get("lastRollback") or {}
        if last.get("time"):
            entries.append(
                Entry(
                    str(last["time"]),
                    facts.namespace(isvc),
                    facts.model_of("InferenceService", isvc),
                    "InferenceService",
                    facts.name(isvc),
                    "rolled-back",
                    "RolledBack",
                    f"rolled back {last.get('version')}: {last.get('reason')}",
                    warning=True,
                )
            )
    return entries


def _told_by_event(entry: Entry, events: dict[tuple[str, str, str, str], list[str]]) -> bool:
    key = (entry.namespace, entry.kind, entry.name, entry.category)
    for time in events.get(key, ()):
        gap = facts.seconds_between(entry.time, time)
        if gap is not None and abs(gap) <= SAME_WINDOW_S:
            return True
    return False


def timeline(
    snap: Snapshot, *, namespace: str | None = None, model: str | None = None, limit: int = 100
) -> list[Entry]:
    """Entries newest first, optionally of one namespace and one model."""
    return newest(_select(snap.memo("timeline", lambda: _all(snap)), namespace, model), limit)


def _all(snap: Snapshot) -> list[Entry]:
    from_events = _from_events(snap)
    told: dict[tuple[str, str, str, str], list[str]] = {}
    for e in from_events:
        told.setdefault((e.namespace, e.kind, e.name, e.category), []).append(e.time)
    state = [e for e in _from_state(snap) if not _told_by_event(e, told)]
    return from_events + state


def _select(entries: Iterable[Entry], namespace: str | None, model: str | None) -> list[Entry]:
    return [
        e
        for e in entries
        if (namespace is None or e.namespace == namespace) and (model is None or e.model == model)
    ]


def newest(entries: Iterable[Entry], limit: int) -> list[Entry]:
    ordered = sorted(entries, key=lambda e: (e.time, e.kind, e.name), reverse=True)
    return ordered[:limit]


def as_dicts(entries: Iterable[Entry]) -> list[Obj]:
    return [e.__dict__ for e in entries]
