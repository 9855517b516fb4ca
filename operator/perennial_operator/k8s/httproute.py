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
from perennial_operator.k8s.kube import KubeApi

API_VERSION = f"{GATEWAY_GROUP}/{GATEWAY_VERSION}"
KIND = "HTTPRoute"

# What went wrong (decide/rollout/traffic.py read_problem): the route, the API, RBAC, our write.
MISSING, NO_API, FORBIDDEN, PATCH_FAILED = "route", "api", "forbidden", "patch"


def _message(exc: ApiException) -> str:
    return f"HTTP {exc.status}: {exc.body or exc.reason}"[:1024]


def installed(kube: KubeApi) -> bool:
    """Does the API server serve httproutes in gateway.networking.k8s.io/v1?"""
    return HTTPROUTES in (kube.served_resources(API_VERSION) or ())


def read(kube: KubeApi, namespace: str, name: str) -> tuple[dict[str, Any] | None, str | None, str]:
    """(route, None, "") or (None, what is wrong, detail)."""
    try:
        route = kube.get(API_VERSION, KIND, namespace, name)
    except ApiException as exc:
        if exc.status == 403:
            return None, FORBIDDEN, _message(exc)
        raise
    if route is None:
        return None, (MISSING if installed(kube) else NO_API), ""
    return route, None, ""


def patch(
    kube: KubeApi, namespace: str, name: str, ops: list[dict[str, Any]]
) -> tuple[dict[str, Any] | None, str | None, str]:
    """Apply JSON patch `ops`: (the route as written, None, "") or (None, what, detail).
    A failed `test` (the rule changed since it was read) or an invalid result are reported,
    not raised: the next tick reads the route again."""
    try:
        written = kube.json_patch(
            API_VERSION, KIND, namespace, name, ops, field_manager=TRAFFIC_FIELD_MANAGER
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
