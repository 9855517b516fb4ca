"""Read and JSON-patch a Gateway API HTTPRoute, and tell a missing route from a cluster that
has no Gateway API at all (both answer 404)."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from perennial_operator.api.traffic import (
    GATEWAY_GROUP,
    GATEWAY_VERSION,
    HTTPROUTES,
    TRAFFIC_FIELD_MANAGER,
)
from perennial_operator.k8s.kube import Kube

API = f"/apis/{GATEWAY_GROUP}/{GATEWAY_VERSION}"

# What went wrong, for decide.traffic.read_problem: the route, the API, RBAC, or our write.
MISSING, NO_API, FORBIDDEN, PATCH_FAILED = "route", "api", "forbidden", "patch"


def route_path(namespace: str, name: str) -> str:
    return f"{API}/namespaces/{namespace}/{HTTPROUTES}/{name}"


def _message(exc: ApiException) -> str:
    return f"HTTP {exc.status}: {exc.body or exc.reason}"[:1024]


def installed(kube: Kube) -> bool:
    """Does the API server serve httproutes in gateway.networking.k8s.io/v1?"""
    try:
        group = kube._call("GET", API)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return any(r.get("name") == HTTPROUTES for r in group.get("resources") or [])


def read(kube: Kube, namespace: str, name: str) -> tuple[dict[str, Any] | None, str | None, str]:
    """(route, None, "") or (None, what is wrong, detail)."""
    try:
        return kube._call("GET", route_path(namespace, name)), None, ""
    except ApiException as exc:
        if exc.status == 404:
            return None, (MISSING if installed(kube) else NO_API), ""
        if exc.status == 403:
            return None, FORBIDDEN, _message(exc)
        raise


def patch(
    kube: Kube, namespace: str, name: str, ops: list[dict[str, Any]]
) -> tuple[dict[str, Any] | None, str | None, str]:
    """Apply JSON patch `ops`: (the route as written, None, "") or (None, what, detail).
    A failed `test` (the rule changed since it was read) or an invalid result are reported,
    not raised: the next tick reads the route again."""
    try:
        written = kube._call(
            "PATCH",
            route_path(namespace, name),
            query=[("fieldManager", TRAFFIC_FIELD_MANAGER)],
            body=ops,
            content_type="application/json-patch+json",
        )
    except ApiException as exc:
        if exc.status == 404:
            return None, MISSING, ""
        if exc.status == 403:
            return None, FORBIDDEN, _message(exc)
        if exc.status in (400, 409, 422):  # a failed `test` is 422 Invalid
            return None, PATCH_FAILED, _message(exc)
        raise
    return written, None, ""
