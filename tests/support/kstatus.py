"""kstatus as Flux, kpt and cli-utils compute it for a custom resource, and the one check the
cluster tests make of an object the operator wrote: kstatus and Argo CD's health.lua agree.

`compute` follows sigs.k8s.io/cli-utils pkg/kstatus/status (Compute, checkGenericProperties,
checkGeneration, checkReadyCondition; read at commit 5895ad6c, Oct 2025) for a kind it has no
built-in rules for: deletion -> Terminating; status.observedGeneration != generation ->
InProgress; Reconciling=True -> InProgress; Stalled=True -> Failed; Ready True -> Current,
False/Unknown -> InProgress; no Ready at all -> Current."""

from __future__ import annotations

from typing import Any

from support.argocd_health import health

# The Argo CD health each kstatus result stands for.
ARGO_CD = {
    "Current": "Healthy",
    "InProgress": "Progressing",
    "Failed": "Degraded",
    "Terminating": "Progressing",
}


def compute(obj: dict[str, Any]) -> tuple[str, str]:
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating", "Resource scheduled for deletion"
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        kind = obj.get("kind")
        return "InProgress", (
            f"{kind} generation is {generation}, but latest observed generation is {observed}"
        )
    conditions = status.get("conditions") or []
    for cond in conditions:
        if cond.get("type") == "Reconciling" and cond.get("status") == "True":
            return "InProgress", str(cond.get("message", ""))
        if cond.get("type") == "Stalled" and cond.get("status") == "True":
            return "Failed", str(cond.get("message", ""))
    for cond in conditions:
        if cond.get("type") == "Ready":
            if cond.get("status") == "True":
                return "Current", "Resource is Ready"
            if cond.get("status") in ("False", "Unknown"):
                return "InProgress", str(cond.get("message", ""))
    return "Current", "Resource is current"


def check_health(obj: dict[str, Any], expected: str, argocd: str | None = None) -> dict[str, str]:
    """Assert kstatus says `expected` of `obj`, that its Ready and Stalled conditions are about
    its generation, and that Argo CD's health agrees (or is `argocd`, for what kstatus has no
    word for: a suspended policy); returns the Argo CD health."""
    assert obj, "no object"
    got = compute(obj)
    assert got[0] == expected, (got, obj.get("status"))
    generation = obj["metadata"]["generation"]
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] in ("Ready", "Stalled"):
            assert cond["observedGeneration"] == generation, cond
    argo = health(obj["kind"], obj)
    assert argo["status"] == (argocd or ARGO_CD[expected]), (argo, obj.get("status"))
    return argo
