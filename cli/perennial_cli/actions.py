"""The write actions, promote, rollback and retry, as small pure plans plus one apply.

Kept in one module so that other front ends (the Studio web app) can share them. promote and
rollback write only `spec.stage` of ModelVersions, with a merge patch, exactly as
`kubectl patch mv NAME --type merge -p '{"spec":{"stage":"Production"}}'` would; the
operator posts the `StageChanged` Event and, when a version becomes Production, archives
the version that held it before. retry writes the user's own annotation
`retry.perennial.dev/<service>` (what `kubectl annotate` would), never the operator's record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

STAGES = ("None", "Staging", "Production", "Archived")
PRODUCTION, ARCHIVED = "Production", "Archived"


class Refused(Exception):
    """The action would be wrong; the message says what to do instead."""


@dataclass(frozen=True)
class StageChange:
    modelversion: str
    before: str
    after: str

    def patch(self) -> dict[str, Any]:
        return {"spec": {"stage": self.after}}

    def __str__(self) -> str:
        return f"modelversion/{self.modelversion} stage {self.before} -> {self.after}"


class Patcher(Protocol):
    def need(self, kind: str, name: str) -> dict[str, Any]: ...
    def list_kind(self, kind: str, label_selector: str | None = None) -> list[dict[str, Any]]: ...
    def merge_patch(self, kind: str, name: str, body: dict[str, Any]) -> dict[str, Any]: ...


def stage_of(mv: Mapping[str, Any]) -> str:
    return str((mv.get("spec") or {}).get("stage") or "None")


def promotion(mv: Mapping[str, Any], stage: str) -> StageChange:
    if stage not in STAGES:
        raise Refused(f"unknown stage {stage!r}: one of {', '.join(STAGES)}")
    return StageChange(str(mv["metadata"]["name"]), stage_of(mv), stage)


# ---- rollback: which version held the stage before -----------------------------------------


def stage_changed_at(mv: Mapping[str, Any]) -> str:
    """When `spec.stage` was last written (the newest managedFields entry that owns it;
    RFC 3339 strings sort in time order), else when the object was created."""
    times = [
        str(entry.get("time") or "")
        for entry in (mv.get("metadata") or {}).get("managedFields") or []
        if "f:stage" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
    ]
    return max(times, default="") or str((mv.get("metadata") or {}).get("creationTimestamp", ""))


# ---- rejections: the operator's annotations (see perennial_operator/api/rejections.py) ---

REJECTED_PREFIX, RETRY_PREFIX = "rejected.perennial.dev/", "retry.perennial.dev/"


@dataclass(frozen=True)
class Rejection:
    service: str
    reason: str
    time: str
    retry_key: str  # the user's annotation that clears it when it holds `time`
    retried: bool


def rejections(mv: Mapping[str, Any]) -> list[Rejection]:
    """The operator's records (annotations), then status.rejections of objects written
    before them (each service's latest entry, unless an annotation records that service)."""
    notes = (mv.get("metadata") or {}).get("annotations") or {}
    found: dict[str, tuple[Mapping[str, Any], str]] = {}
    for key, value in notes.items():
        if str(key).startswith(REJECTED_PREFIX):
            data = _json(value)
            if data.get("inferenceService"):
                found[str(data["inferenceService"])] = (
                    data,
                    RETRY_PREFIX + key[len(REJECTED_PREFIX) :],
                )
    recorded = set(found)
    for entry in (mv.get("status") or {}).get("rejections") or []:
        service = str((entry or {}).get("inferenceService") or "")
        if service and service not in recorded:
            found[service] = (entry, RETRY_PREFIX + service)
    out = []
    for service, (record, key) in found.items():
        time = str(record.get("time") or "")
        out.append(
            Rejection(service, str(record.get("reason") or ""), time, key, notes.get(key) == time)
        )
    return sorted(out, key=lambda r: (r.time, r.service))


def _json(value: Any) -> dict[str, Any]:
    import json

    try:
        data = json.loads(str(value))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _rejected_by(mv: Mapping[str, Any], service: str) -> bool:
    return any(r.service == service and not r.retried for r in rejections(mv))


def _ready(mv: Mapping[str, Any]) -> bool:
    return (mv.get("status") or {}).get("phase") == "Ready"


def _version(mv: Mapping[str, Any]) -> int:
    return int((mv.get("spec") or {}).get("version") or 0)


def rollback_plan(
    isvc: Mapping[str, Any], mvs: Iterable[Mapping[str, Any]], *, to: str | None = None
) -> list[StageChange]:
    """The stage changes that make a stage-tracking service serve the version before.

    Production: the previous holder gets Production back (the operator archives the
    current one). Another stage (the operator archives nothing there): the previous holder
    gets the stage back, unless it still holds it, and the current version is archived.
    The previous holder is the most recently archived Ready version of the model that this
    service has not rejected (or `to`, when given).
    """
    name = str(isvc["metadata"]["name"])
    model = isvc["spec"]["model"]
    if model.get("version") is not None:
        raise Refused(
            f"InferenceService {name} pins spec.model.version {model['version']}: rolling it "
            "back means editing its spec, which Git owns; change the pinned version in Git "
            "(the InferenceService's manifest) and let it sync"
        )
    stage = str(model.get("stage"))
    ours = [mv for mv in mvs if (mv.get("spec") or {}).get("model") == model["name"]]
    current = _current(isvc, ours, stage)
    previous = _chosen(ours, to, current, name) if to else _previous(ours, current, stage, name)
    changes = []
    if stage_of(previous) != stage:
        changes.append(StageChange(str(previous["metadata"]["name"]), stage_of(previous), stage))
    if stage != PRODUCTION:
        changes.append(StageChange(str(current["metadata"]["name"]), stage, ARCHIVED))
    return changes


def _current(isvc: Mapping[str, Any], ours: list[Mapping[str, Any]], stage: str) -> Any:
    served = (isvc.get("status") or {}).get("currentModelVersion")
    found = next((mv for mv in ours if mv["metadata"]["name"] == served), None)
    if found is not None and stage_of(found) == stage:
        return found
    holders = sorted((mv for mv in ours if stage_of(mv) == stage), key=_version)
    if not holders:
        raise Refused(f"no version of model {isvc['spec']['model']['name']} holds {stage}")
    return holders[-1]


def _previous(ours: list[Mapping[str, Any]], current: Any, stage: str, service: str) -> Any:
    usable = [
        mv
        for mv in ours
        if mv["metadata"]["name"] != current["metadata"]["name"]
        and _ready(mv)
        and not _rejected_by(mv, service)
    ]
    still = [mv for mv in usable if stage_of(mv) == stage and _version(mv) < _version(current)]
    if still and stage != PRODUCTION:
        return max(still, key=_version)
    archived = [mv for mv in usable if stage_of(mv) == ARCHIVED]
    if not archived:
        raise Refused(
            f"no earlier version to roll back to: no other Ready, archived version of model "
            f"{current['spec']['model']} (name one with --to)"
        )
    return max(archived, key=lambda mv: (stage_changed_at(mv), _version(mv)))


def _chosen(ours: list[Mapping[str, Any]], to: str, current: Any, service: str) -> Any:
    found = next((mv for mv in ours if mv["metadata"]["name"] == to), None)
    if found is None:
        raise Refused(f"ModelVersion {to} is not a version of model {current['spec']['model']}")
    if to == current["metadata"]["name"]:
        raise Refused(f"{to} is the version being served")
    if not _ready(found):
        raise Refused(f"ModelVersion {to} is not Ready")
    if _rejected_by(found, service):
        raise Refused(
            f"ModelVersion {to} was rolled back by {service} before, so the service skips it "
            f"(`perennial retry {service} {to}` clears that)"
        )
    return found


# ---- retry: clear a rejection with the user's own annotation ---------------------------


@dataclass(frozen=True)
class Retry:
    modelversion: str
    rejection: Rejection
    note: str  # what else the user should know (the version left the tracked stage)

    def patch(self) -> dict[str, Any]:
        return {"metadata": {"annotations": {self.rejection.retry_key: self.rejection.time}}}

    def __str__(self) -> str:
        r = self.rejection
        text = (
            f"modelversion/{self.modelversion} annotated {r.retry_key}={r.time}: clears the "
            f"rollback by {r.service} ({r.reason or 'no reason recorded'})"
        )
        return f"{text}; {self.note}" if self.note else text


def _named(ours: list[Mapping[str, Any]], version: str, model: str) -> Mapping[str, Any]:
    """VERSION as a ModelVersion name (churn-v2) or a number (2, v2)."""
    found = next((mv for mv in ours if mv["metadata"]["name"] == version), None)
    number = version.lstrip("v")
    if found is None and number.isdigit():
        found = next((mv for mv in ours if _version(mv) == int(number)), None)
    if found is None:
        raise Refused(f"no ModelVersion {version!r} of model {model}")
    return found


def retry_plan(isvc: Mapping[str, Any], mvs: Iterable[Mapping[str, Any]], version: str) -> Retry:
    name, model = str(isvc["metadata"]["name"]), isvc["spec"]["model"]
    ours = [mv for mv in mvs if (mv.get("spec") or {}).get("model") == model["name"]]
    mv = _named(ours, version, str(model["name"]))
    mv_name = str(mv["metadata"]["name"])
    open_ = [r for r in rejections(mv) if r.service == name and not r.retried]
    if not open_:
        raise Refused(f"{name} has not rolled back {mv_name} (or it was retried): nothing to clear")
    note = ""
    stage = model.get("stage")
    if model.get("version") is not None and int(model["version"]) != _version(mv):
        note = f"{name} pins version {model['version']}, so it does not serve {mv_name} now"
    elif model.get("version") is None and stage_of(mv) != stage:
        note = f"{mv_name} is in stage {stage_of(mv)}, not {stage}: promote it to roll it out"
    else:
        note = f"{name} rolls it out again (with its rollout's checks)"
    return Retry(mv_name, open_[-1], note)


# ---- apply ---------------------------------------------------------------------------------


def promote(kube: Patcher, name: str, stage: str) -> StageChange:
    change = promotion(kube.need("ModelVersion", name), stage)
    if change.before != change.after:
        kube.merge_patch("ModelVersion", name, change.patch())
    return change


def rollback(kube: Patcher, service: str, *, to: str | None = None) -> list[StageChange]:
    isvc = kube.need("InferenceService", service)
    changes = rollback_plan(isvc, kube.list_kind("ModelVersion"), to=to)
    for change in changes:
        kube.merge_patch("ModelVersion", change.modelversion, change.patch())
    return changes


def retry(kube: Patcher, service: str, version: str) -> Retry:
    isvc = kube.need("InferenceService", service)
    plan = retry_plan(isvc, kube.list_kind("ModelVersion"), version)
    kube.merge_patch("ModelVersion", plan.modelversion, plan.patch())
    return plan
