"""The InferenceService's side of an HTTPRoute: the role Services and the JSON patch of the
user's route (only our rules' backendRefs change; a second run changes nothing)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from perennial_operator.api.traffic import Backend
from perennial_operator.desired import httproute as d

pytestmark = pytest.mark.unit

ISVC = {
    "apiVersion": "perennial.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": "churn", "namespace": "ml", "uid": "u-1", "generation": 1},
    "spec": {"model": {"name": "churn", "stage": "Production"}},
}
SERVICES = d.our_services(ISVC)
USER_ROUTE = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "churn", "namespace": "ml"},
    "spec": {
        "parentRefs": [{"name": "public", "namespace": "gateways"}],
        "hostnames": ["churn.example.com"],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/docs"}}],
                "backendRefs": [{"name": "docs", "port": 8080}],
            },
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/v2/models/churn"}}],
                "filters": [
                    {
                        "type": "RequestHeaderModifier",
                        "requestHeaderModifier": {"set": [{"name": "x-a", "value": "b"}]},
                    }
                ],
                "backendRefs": [{"name": "churn", "port": 80}],
            },
        ],
    },
}
CANARY_10 = (Backend("stable", 1, 90), Backend("canary", 2, 10))


def apply_json_patch(obj: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """The two operations route_patch emits, as RFC 6902 defines them."""
    out = copy.deepcopy(obj)
    for op in ops:
        *parents, last = op["path"].lstrip("/").split("/")
        node: Any = out
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if op["op"] == "test":
            assert node[key] == op["value"], "test failed"
        else:
            assert op["op"] == "replace"
            node[key] = copy.deepcopy(op["value"])
    return out


def with_api_defaults(route: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores: backendRefs get group "" and kind Service."""
    out = copy.deepcopy(route)
    for rule in out["spec"]["rules"]:
        for ref in rule.get("backendRefs") or []:
            ref.setdefault("group", "")
            ref.setdefault("kind", "Service")
    return out


def test_role_services_select_a_version_or_the_stable_deployment() -> None:
    stable = d.role_service(ISVC, "stable", 3)
    assert stable["metadata"]["name"] == "churn-stable"
    assert stable["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert stable["spec"]["selector"] == {
        "perennial.dev/inferenceservice": "churn",
        "perennial.dev/model-version": "3",
    }
    assert stable["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    rolling = d.role_service(ISVC, "canary", None)
    assert rolling["metadata"]["name"] == "churn-canary"
    assert rolling["spec"]["selector"] == {
        "perennial.dev/inferenceservice": "churn",
        "perennial.dev/track": "stable",
    }
    assert SERVICES == ("churn", "churn-stable", "churn-canary")


def test_patch_replaces_only_our_rules_backend_refs() -> None:
    refs = d.backend_refs(ISVC, CANARY_10)
    assert refs == [
        {"name": "churn-stable", "port": 80, "weight": 90},
        {"name": "churn-canary", "port": 80, "weight": 10},
    ]
    ops = d.route_patch(USER_ROUTE, SERVICES, refs)
    assert ops == [
        {
            "op": "test",
            "path": "/spec/rules/1/backendRefs",
            "value": [{"name": "churn", "port": 80}],
        },
        {"op": "replace", "path": "/spec/rules/1/backendRefs", "value": refs},
    ]
    patched = apply_json_patch(USER_ROUTE, ops)
    expected = copy.deepcopy(USER_ROUTE)
    expected["spec"]["rules"][1]["backendRefs"] = refs
    assert patched == expected  # parentRefs, hostnames, matches, filters, the other rule: as is


def test_a_second_run_changes_nothing() -> None:
    refs = d.backend_refs(ISVC, CANARY_10)
    stored = with_api_defaults(
        apply_json_patch(USER_ROUTE, d.route_patch(USER_ROUTE, SERVICES, refs))
    )
    assert d.route_patch(stored, SERVICES, refs) == []
    moved = d.backend_refs(ISVC, (Backend("stable", 1, 50), Backend("canary", 2, 50)))
    ops = d.route_patch(stored, SERVICES, moved)
    assert ops is not None and ops[0]["value"] == stored["spec"]["rules"][1]["backendRefs"]
    assert [
        r["weight"] for r in apply_json_patch(stored, ops)["spec"]["rules"][1]["backendRefs"]
    ] == [50, 50]


def test_every_rule_pointing_here_is_steered_and_foreign_backends_stay_put() -> None:
    route = copy.deepcopy(USER_ROUTE)
    route["spec"]["rules"][0]["backendRefs"] = [
        {"name": "mirror", "port": 80, "weight": 5},
        {"name": "churn-stable", "port": 80, "weight": 100, "filters": [{"type": "X"}]},
        {"name": "churn-canary", "port": 80, "weight": 0, "namespace": "ml"},
        {"name": "tail", "port": 80},
    ]
    refs = d.backend_refs(ISVC, CANARY_10)
    patched = apply_json_patch(route, d.route_patch(route, SERVICES, refs) or [])
    first, second = (r["backendRefs"] for r in patched["spec"]["rules"])
    assert first == [
        {"name": "mirror", "port": 80, "weight": 5},
        {"name": "churn-stable", "port": 80, "weight": 90, "filters": [{"type": "X"}]},
        {"name": "churn-canary", "port": 80, "weight": 10, "filters": [{"type": "X"}]},
        {"name": "tail", "port": 80},
    ]
    assert second == refs


@pytest.mark.parametrize(
    "ref",
    [
        {"name": "churn", "port": 80, "namespace": "other"},
        {"name": "churn", "port": 80, "kind": "ServiceImport", "group": "multicluster.x-k8s.io"},
        {"name": "churn-v2", "port": 80},
        {"name": "churnx", "port": 80},
    ],
)
def test_refs_elsewhere_are_not_ours(ref: dict[str, Any]) -> None:
    route = copy.deepcopy(USER_ROUTE)
    route["spec"]["rules"][1]["backendRefs"] = [ref]
    assert d.route_patch(route, SERVICES, d.backend_refs(ISVC, CANARY_10)) is None
    assert d.applied(route, SERVICES, {}) is None


def test_applied_reports_our_weights_with_the_versions_selected() -> None:
    refs = d.backend_refs(ISVC, CANARY_10)
    stored = with_api_defaults(
        apply_json_patch(USER_ROUTE, d.route_patch(USER_ROUTE, SERVICES, refs))
    )
    versions = {"churn-stable": 1, "churn-canary": 2}
    assert d.applied(stored, SERVICES, versions) == [
        {"service": "churn-stable", "version": 1, "weight": 90},
        {"service": "churn-canary", "version": 2, "weight": 10},
    ]
    # Before the first patch the user's rule names <name>, which spans every version, and
    # a backendRef without a weight weighs 1.
    assert d.applied(USER_ROUTE, SERVICES, versions) == [{"service": "churn", "weight": 1}]
