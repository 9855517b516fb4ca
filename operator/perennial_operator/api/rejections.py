"""Where a rollback's verdict lives: annotations on the ModelVersion, not its status.

An InferenceService that rolls a version back records it on that ModelVersion as
`rejected.perennial.dev/<service>: {"inferenceService", "reason", "message", "time"}`; from
then on the service skips the version. Annotations survive a backup and restore (status does
not) and GitOps tools leave keys they did not write alone.

The user's answer is a key of their own, `retry.perennial.dev/<service>: <time>`, naming the
`time` of the rejection it clears (`perennial retry` writes it). The operator never writes
it; a later rollback writes a new time, so an old retry does not clear a new rejection.
Deleting the rejection's annotation clears it as well.

Objects written before this kept rejections in `status.rejections` (a list of the same
fields); they are read the same way until the operator moves them to annotations.

Shared by the operator's decisions and the Studio; the CLI, which imports nothing of the
operator, reads the same keys in perennial_cli/actions.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from perennial_operator.api.group import GROUP

REJECTED_PREFIX: Final = f"rejected.{GROUP}/"
RETRY_PREFIX: Final = f"retry.{GROUP}/"
MAX_MESSAGE: Final = 2048
LEGACY_FIELD: Final = "rejections"  # status.rejections of objects written before


@dataclass(frozen=True)
class Rejection:
    service: str
    reason: str
    message: str
    time: str  # when it was rolled back; a retry names it
    retried: bool = False
    legacy: bool = False  # still in status.rejections


def _annotation_name(service: str) -> str:
    """The name part of an annotation key is at most 63 characters."""
    if len(service) <= 63:
        return service
    return f"{service[:54].rstrip('-.')}-{hashlib.sha256(service.encode()).hexdigest()[:8]}"


def rejected_key(service: str) -> str:
    return REJECTED_PREFIX + _annotation_name(service)


def retry_key(service: str) -> str:
    return RETRY_PREFIX + _annotation_name(service)


def record(service: str, reason: str, message: str, time: str) -> dict[str, str]:
    """The annotation that records a rollback of this version by `service`."""
    value = {
        "inferenceService": service,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "time": time,
    }
    return {rejected_key(service): json.dumps(value, separators=(",", ":"), sort_keys=True)}


def _annotations(mv: Mapping[str, Any]) -> Mapping[str, Any]:
    return (mv.get("metadata") or {}).get("annotations") or {}


def _parse(value: Any) -> dict[str, Any] | None:
    try:
        data = json.loads(str(value))
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("inferenceService") else None


def rejections_of(mv: Mapping[str, Any]) -> list[Rejection]:
    """Every service's rejection of `mv`, retried or not, oldest first."""
    notes = _annotations(mv)
    found: dict[str, Rejection] = {}
    for key, value in notes.items():
        data = _parse(value) if str(key).startswith(REJECTED_PREFIX) else None
        if data is not None:
            found[str(data["inferenceService"])] = _rejection(data, notes, legacy=False)
    for entry in (mv.get("status") or {}).get(LEGACY_FIELD) or []:
        service = str((entry or {}).get("inferenceService") or "")
        if not service or (service in found and not found[service].legacy):
            continue  # an annotation wins over a legacy entry
        found[service] = _rejection(entry, notes, legacy=True)  # a service's latest entry
    return sorted(found.values(), key=lambda r: (r.time, r.service))


def _rejection(data: Mapping[str, Any], notes: Mapping[str, Any], *, legacy: bool) -> Rejection:
    service, time = str(data["inferenceService"]), str(data.get("time") or "")
    return Rejection(
        service=service,
        reason=str(data.get("reason") or ""),
        message=str(data.get("message") or ""),
        time=time,
        retried=notes.get(retry_key(service)) == time,
        legacy=legacy,
    )


def rejected_by(mv: Mapping[str, Any], service: str) -> bool:
    """Does `service` skip `mv`: a rejection by it that no retry has cleared."""
    return any(r.service == service and not r.retried for r in rejections_of(mv))


def legacy_records(mv: Mapping[str, Any]) -> dict[str, str]:
    """The annotations that carry status.rejections over (services already recorded in an
    annotation keep theirs)."""
    out: dict[str, str] = {}
    for r in rejections_of(mv):
        if r.legacy:
            out.update(record(r.service, r.reason, r.message, r.time))
    return out
