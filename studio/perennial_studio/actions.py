"""The writes a user may make from the Studio (with --allow-actions), each one exactly what
`kubectl patch --type merge` would send, and each recorded as an Event on the object.

Deciding is pure (`promote_plan`, `rollback_plan`, `suspend_plan`: objects in, a `Plan` or a
`Refused` out); `apply` sends a plan. The `perennial` CLI does the same things, so the two
can share this module.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from perennial_operator.api.group import API_VERSION, GROUP, VERSION
from perennial_studio import facts
from perennial_studio.kube import Kube, Resource

PLURALS = {
    "ModelVersion": "modelversions",
    "InferenceService": "inferenceservices",
    "RetrainPolicy": "retrainpolicies",
}
STAGE_CHANGE = re.compile(r"stage (\w+) -> (\w+)")
SETTABLE_STAGES = ("None", "Staging", "Production", "Archived")


class Refused(Exception):
    """The action cannot be done as asked; the message says what to do instead."""


@dataclass(frozen=True)
class Write:
    kind: str
    namespace: str
    name: str
    patch: dict[str, Any]
    reason: str  # the Event's reason
    message: str  # the Event's message


@dataclass(frozen=True)
class Plan:
    summary: str
    writes: tuple[Write, ...]


def promote_plan(mv: dict[str, Any], stage: str) -> Plan:
    if stage not in SETTABLE_STAGES:
        raise Refused(f"unknown stage {stage!r}: one of {', '.join(SETTABLE_STAGES)}")
    old = facts.stage(mv)
    name, ns = facts.name(mv), facts.namespace(mv)
    if old == stage:
        raise Refused(f"{name} already holds stage {stage}")
    then = (
        " (the operator archives the previous Production version)" if stage == "Production" else ""
    )
    write = Write(
        "ModelVersion",
        ns,
        name,
        {"spec": {"stage": stage}},
        "StageSet",
        f"stage {old} -> {stage} set from Perennial Studio",
    )
    return Plan(f"set {name} to stage {stage}{then}", (write,))


def _stage_arrivals(mv: dict[str, Any], events: Iterable[dict[str, Any]], stage: str) -> list[str]:
    """Times when this ModelVersion moved into `stage`: its status.stageHistory (kept by the
    operator), and the stage-change Events (for objects from before that history)."""
    mv_name = facts.name(mv)
    times = [
        str(entry.get("time") or "")
        for entry in facts.status(mv).get("stageHistory") or []
        if entry.get("stage") == stage
    ]
    for event in events:
        if event.get("kind") != "ModelVersion" or event.get("name") != mv_name:
            continue
        match = STAGE_CHANGE.search(str(event.get("message") or ""))
        if (
            match
            and match.group(2) == stage
            and event.get("reason") in ("StageChanged", "StageSet")
        ):
            times.append(str(event.get("time") or ""))
    return times


def previous_holder(
    current: dict[str, Any],
    versions: list[dict[str, Any]],
    events: list[dict[str, Any]],
    stage: str,
    service: str,
) -> tuple[dict[str, Any], str] | None:
    """The version that held `stage` before `current`, and how we know.

    From the stage history first (status.stageHistory, and stage-change Events for older
    objects): the other version that most recently entered the stage before `current` last
    did. Without such history: the newest Archived version older than `current`. Versions
    this service rejected (rolled back) are never candidates: the service would refuse to
    resolve them.
    """
    candidates = [
        mv
        for mv in versions
        if facts.name(mv) != facts.name(current) and not facts.rejected_by(mv, service)
    ]
    entered = _stage_arrivals(current, events, stage)
    since = max(entered) if entered else None
    best: tuple[str, dict[str, Any]] | None = None
    for mv in candidates:
        for time in _stage_arrivals(mv, events, stage):
            if (since is None or time <= since) and (best is None or time > best[0]):
                best = (time, mv)
    if best is not None:
        return best[1], f"it held {stage} before {facts.name(current)} (stage history)"
    older = [
        mv
        for mv in candidates
        if facts.version(mv) < facts.version(current) and facts.stage(mv) == "Archived"
    ]
    if older:
        mv = max(older, key=facts.version)
        return mv, (
            f"no stage history is left: the newest Archived version older than "
            f"{facts.name(current)}"
        )
    return None


def rollback_plan(
    isvc: dict[str, Any], versions: list[dict[str, Any]], events: list[dict[str, Any]]
) -> Plan:
    """Roll a service back to the version it served before, the GitOps way round: a service
    that pins a version is changed in Git, not here; one that follows a stage gets the
    previous holder of that stage back (the operator then archives the current one)."""
    name, ns = facts.name(isvc), facts.namespace(isvc)
    pinned = facts.pinned_version(isvc)
    if pinned is not None:
        raise Refused(
            f"InferenceService {name} pins spec.model.version: {pinned}. Roll back by changing "
            "the pin where the manifest lives (Git), so the source of truth says what is served."
        )
    stage = facts.tracked_stage(isvc) or "Production"
    current_name = facts.status(isvc).get("currentModelVersion")
    current = next((mv for mv in versions if facts.name(mv) == current_name), None)
    if current is None:
        current = next(
            (
                mv
                for mv in sorted(versions, key=facts.version, reverse=True)
                if facts.stage(mv) == stage
            ),
            None,
        )
    if current is None:
        raise Refused(f"{name} serves no version yet: nothing to roll back")
    found = previous_holder(current, versions, events, stage, name)
    if found is None:
        raise Refused(
            f"no earlier version of {facts.model_of('InferenceService', isvc)} to go "
            f"back to (none held {stage} before {facts.name(current)})"
        )
    previous, how = found
    message = (
        f"rollback of InferenceService {name} from Perennial Studio: "
        f"{facts.name(current)} -> {facts.name(previous)}"
    )
    writes = [
        Write(
            "ModelVersion",
            ns,
            facts.name(previous),
            {"spec": {"stage": stage}},
            "StageSet",
            f"stage {facts.stage(previous)} -> {stage}: {message}",
        )
    ]
    then = "the operator archives"
    if stage != "Production":  # only Production is kept unique by the operator
        writes.append(
            Write(
                "ModelVersion",
                ns,
                facts.name(current),
                {"spec": {"stage": "Archived"}},
                "StageSet",
                f"stage {stage} -> Archived: {message}",
            )
        )
        then = "the Studio archives"
    writes.append(Write("InferenceService", ns, name, {}, "RollbackRequested", message))
    return Plan(
        f"set {facts.name(previous)} back to {stage} ({how}); {then} {facts.name(current)} and "
        f"{name} rolls out {facts.name(previous)} with its own rollout",
        tuple(writes),
    )


def suspend_plan(rp: dict[str, Any], suspend: bool) -> Plan:
    name, ns = facts.name(rp), facts.namespace(rp)
    if bool(facts.spec(rp).get("suspend")) == suspend:
        raise Refused(f"RetrainPolicy {name} is already {'suspended' if suspend else 'active'}")
    reason = "Suspended" if suspend else "Resumed"
    write = Write(
        "RetrainPolicy",
        ns,
        name,
        {"spec": {"suspend": suspend}},
        reason,
        f"spec.suspend set to {str(suspend).lower()} from Perennial Studio",
    )
    return Plan(f"{'suspend' if suspend else 'resume'} RetrainPolicy {name}", (write,))


def resource(kind: str) -> Resource:
    return Resource(kind, GROUP, VERSION, PLURALS[kind])


def event_body(write: Write, uid: str | None, actor: str) -> dict[str, Any]:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{write.name}.", "namespace": write.namespace},
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": write.kind,
            "name": write.name,
            "namespace": write.namespace,
            "uid": uid,
        },
        "type": "Normal",
        "reason": write.reason,
        "message": f"{write.message} ({actor})"[:1024],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "source": {"component": "perennial-studio"},
        "reportingComponent": "perennial-studio",
    }


def apply(kube: Kube, plan: Plan, actor: str) -> None:
    """Each write as a merge patch (an empty patch only records its Event), then its Event."""
    for write in plan.writes:
        path = resource(write.kind).path(write.namespace, write.name)
        obj = kube.merge_patch(path, write.patch) if write.patch else kube.get(path)
        uid = (obj.get("metadata") or {}).get("uid")
        kube.post(f"/api/v1/namespaces/{write.namespace}/events", event_body(write, uid, actor))
