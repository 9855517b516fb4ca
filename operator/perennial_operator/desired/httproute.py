"""An InferenceService's side of a Gateway API HTTPRoute (spec.rollout.httpRoute). Pure.

- The Services the route's weights point at: `<name>-stable` and `<name>-canary`, owned by
  the InferenceService; which version each selects is decided in decide/ (traffic).
- The change to the user's route: a JSON patch (RFC 6902) that replaces `backendRefs` of
  exactly the rules that point at one of this InferenceService's Services (`<name>`,
  `<name>-stable`, `<name>-canary`). Each replace is guarded by a `test` of the list as it
  was read, so a rule the user edited in between is never overwritten on a stale read.

Why not server-side apply: in the HTTPRoute CRD both `spec.rules` and `rules[].backendRefs`
are atomic lists (x-kubernetes-list-type: atomic), and ownership of an atomic list is per
list. Whoever changes one rule's weights owns all of `spec.rules`, with SSA or without:
after our first change the user's server-side apply of the rules conflicts with
`perennial-traffic` unless forced (docs/inferenceservice.md says what that means for GitOps).
SSA would not narrow that, but it would widen what we write: the applied configuration would
have to carry every rule as read, so a match the user changed between our read and our
write would be reverted, with only resourceVersion (moved by every gateway status update) to
guard it. The JSON patch carries only the backendRefs it changes, each behind a `test`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from perennial_operator.api.group import (
    LABEL_INFERENCESERVICE,
    LABEL_MODEL_VERSION,
    LABEL_TRACK,
    child_labels,
)
from perennial_operator.api.names import child_name
from perennial_operator.api.tracks import STABLE, TRACKS
from perennial_operator.api.traffic import Backend
from perennial_operator.desired.common import owner_reference

SERVICE_PORT = 80
ROLES = TRACKS  # one role Service per track


def role_service_name(isvc: Mapping[str, Any], role: str) -> str:
    return child_name(isvc["metadata"]["name"], role)


def our_services(isvc: Mapping[str, Any]) -> tuple[str, ...]:
    """Every Service of this InferenceService a route rule may point at."""
    return (isvc["metadata"]["name"], *(role_service_name(isvc, role) for role in ROLES))


def role_service(isvc: dict[str, Any], role: str, version: int | None) -> dict[str, Any]:
    """`<name>-<role>`: the pods of `version`, or (None) every pod of the stable Deployment."""
    name = isvc["metadata"]["name"]
    selector = {LABEL_INFERENCESERVICE: name}
    if version is None:
        selector[LABEL_TRACK] = STABLE
    else:
        selector[LABEL_MODEL_VERSION] = str(version)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": role_service_name(isvc, role),
            "namespace": isvc["metadata"]["namespace"],
            "labels": child_labels("InferenceService", name),
            "ownerReferences": [owner_reference(isvc)],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def backend_refs(isvc: Mapping[str, Any], backends: Iterable[Backend]) -> list[dict[str, Any]]:
    return [
        {"name": role_service_name(isvc, b.role), "port": SERVICE_PORT, "weight": b.weight}
        for b in backends
    ]


def points_here(ref: Mapping[str, Any], services: Sequence[str], namespace: str) -> bool:
    """A backendRef to one of `services` (core Services in the route's namespace)."""
    return (
        (ref.get("group") or "") == ""
        and (ref.get("kind") or "Service") == "Service"
        and (ref.get("namespace") or namespace) == namespace
        and ref.get("name") in services
    )


def _normal(ref: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """A backendRef with the CRD's defaults filled in, to compare what is with what we want."""
    out = {key: value for key, value in ref.items() if value is not None}
    out.setdefault("group", "")
    out.setdefault("kind", "Service")
    out.setdefault("weight", 1)
    if out.get("namespace") == namespace:
        del out["namespace"]
    return out


def _rules(route: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list((route.get("spec") or {}).get("rules") or [])


def route_patch(
    route: Mapping[str, Any], services: Sequence[str], refs: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]] | None:
    """JSON patch operations that give every rule pointing at `services` the backendRefs
    `refs` (in place of the refs to `services`; the rule's other backendRefs stay where and as
    they are). [] when nothing changes; None when no rule points at `services`."""
    namespace = str(route["metadata"].get("namespace") or "")
    ops: list[dict[str, Any]] = []
    found = False
    for index, rule in enumerate(_rules(route)):
        old = list(rule.get("backendRefs") or [])
        ours = [i for i, ref in enumerate(old) if points_here(ref, services, namespace)]
        if not ours:
            continue
        found = True
        filters = old[ours[0]].get("filters")  # per-backend filters the user set are kept
        mine = [{**ref, "filters": filters} if filters else dict(ref) for ref in refs]
        rest = [r for i, r in enumerate(old) if i > ours[0] and i not in ours]
        new = old[: ours[0]] + mine + rest
        if [_normal(r, namespace) for r in new] != [_normal(r, namespace) for r in old]:
            path = f"/spec/rules/{index}/backendRefs"
            ops += [
                {"op": "test", "path": path, "value": old},
                {"op": "replace", "path": path, "value": new},
            ]
    return ops if found else None


def applied(
    route: Mapping[str, Any], services: Sequence[str], versions: Mapping[str, int | None]
) -> list[dict[str, Any]] | None:
    """status.traffic: our backendRefs as the first rule pointing here holds them, with the
    version each Service selects (unknown for `<name>`, which spans every version)."""
    namespace = str(route["metadata"].get("namespace") or "")
    for rule in _rules(route):
        refs = [r for r in rule.get("backendRefs") or [] if points_here(r, services, namespace)]
        if not refs:
            continue
        out = []
        for ref in refs:
            entry: dict[str, Any] = {"service": ref["name"], "weight": int(ref.get("weight", 1))}
            if versions.get(ref["name"]) is not None:
                entry["version"] = versions[ref["name"]]
            out.append(entry)
        return out
    return None
