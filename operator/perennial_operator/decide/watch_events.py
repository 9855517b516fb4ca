"""Which watch events of an object call for a sync, for the kinds synced from their own
watch events rather than kopf's on.create/on.update/on.resume (TrainingJob, ModelVersion):
kopf would keep its per-object state in an annotation, a patch more on every object and
the event that patch makes (issue 18)."""

from __future__ import annotations

from typing import Any


def event_needs_sync(event_type: str | None, body: dict[str, Any]) -> bool:
    """Its creation, the first listing after a start (the resume), or a change the sync has
    not answered yet (its status not written for this generation: the spec changed, or the
    status was never written). Not the events of the sync's own status writes, nor of
    changes to metadata alone (the generation stays)."""
    if event_type == "DELETED":
        return False
    if event_type in (None, "ADDED"):
        return True
    observed = (body.get("status") or {}).get("observedGeneration")
    return observed != (body.get("metadata") or {}).get("generation")
