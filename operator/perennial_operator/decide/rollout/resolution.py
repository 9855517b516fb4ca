"""Which ModelVersion an InferenceService should serve.

`spec.model` either pins a version or tracks a stage; tracking means the highest version
holding that stage. Versions this service rolled back (a rejection recorded on the
ModelVersion, api/rejections.py) are skipped until a user retries them, so a bad model is not
rolled out again and again.
Each check is a small function named like the sentence it tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from perennial_operator.api import conditions as c
from perennial_operator.api.rejections import rejected_by

# pvc:// is mounted; s3:// and gs:// are copied (and verified) by the server at start.
SERVABLE_SCHEMES = ("pvc://", "s3://", "gs://")


@dataclass(frozen=True)
class Target:
    name: str  # the ModelVersion's metadata.name
    version: int


@dataclass(frozen=True)
class Resolution:
    target: Target | None
    reason: str
    message: str
    # Versions newer than the target (or the pinned one) skipped as rejected by this service.
    rejected: tuple[int, ...] = field(default_factory=tuple)


def is_ready(mv: Mapping[str, Any]) -> bool:
    return (mv.get("status") or {}).get("phase") == "Ready"


def artifact_not_servable(mv: Mapping[str, Any]) -> str | None:
    uri = str((mv["spec"].get("artifact") or {}).get("uri", ""))
    if uri.startswith(SERVABLE_SCHEMES):
        return None
    return f"artifact {uri!r}: serving pods read pvc://, s3:// or gs:// artifacts only"


def target_of(mv: Mapping[str, Any]) -> Target:
    return Target(str(mv["metadata"]["name"]), int(mv["spec"]["version"]))


def _usable(mv: Mapping[str, Any], rejected: tuple[int, ...]) -> Resolution:
    name = mv["metadata"]["name"]
    if not is_ready(mv):
        return Resolution(None, c.MODELVERSION_NOT_READY, f"ModelVersion {name} is not Ready yet")
    problem = artifact_not_servable(mv)
    if problem:
        return Resolution(None, c.ARTIFACT_NOT_SERVABLE, problem)
    return Resolution(target_of(mv), c.MODELVERSION_RESOLVED, f"serving {name}", rejected)


def resolve(
    spec_model: Mapping[str, Any], mvs: Iterable[Mapping[str, Any]], service: str
) -> Resolution:
    model = str(spec_model["name"])
    versions = sorted(
        (mv for mv in mvs if mv.get("spec", {}).get("model") == model),
        key=lambda mv: -int(mv["spec"]["version"]),
    )
    if spec_model.get("version") is not None:
        return _pinned(model, int(spec_model["version"]), versions, service)
    return _tracked(model, str(spec_model.get("stage")), versions, service)


def _pinned(
    model: str, version: int, versions: list[Mapping[str, Any]], service: str
) -> Resolution:
    mv = next((m for m in versions if int(m["spec"]["version"]) == version), None)
    if mv is None:
        message = f"no ModelVersion of model {model} has version {version}"
        return Resolution(None, c.MODELVERSION_NOT_FOUND, message)
    if rejected_by(mv, service):
        return Resolution(
            None,
            c.MODELVERSION_REJECTED,
            f"{mv['metadata']['name']} was rolled back by this service "
            f"(`perennial retry {service} {mv['metadata']['name']}` tries it again)",
            (version,),
        )
    return _usable(mv, ())


def _tracked(model: str, stage: str, versions: list[Mapping[str, Any]], service: str) -> Resolution:
    in_stage = [m for m in versions if m["spec"].get("stage") == stage]
    if not in_stage:
        return Resolution(
            None, c.NO_VERSION_IN_STAGE, f"no version of model {model} holds stage {stage}"
        )
    skipped: list[int] = []
    for mv in in_stage:  # newest first
        if rejected_by(mv, service):
            skipped.append(int(mv["spec"]["version"]))
            continue
        return _usable(mv, tuple(skipped))
    return Resolution(
        None,
        c.MODELVERSION_REJECTED,
        f"every version of model {model} in stage {stage} was rolled back by this service",
        tuple(skipped),
    )
