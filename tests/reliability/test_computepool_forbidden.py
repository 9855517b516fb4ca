"""Finding 10 (issue 20), its follow-up: node verbs come only with a provider's RBAC
component, so an install without it must say so on the pool, not only in the operator's log.
A 403 on the pool's nodes or on the cluster's pods becomes ProviderReady=False with the fix."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from perennial_operator.api.group import API_VERSION
from perennial_operator.reconcile.computepool import sync_computepool
from support.fake_kube import FakeKube

pytestmark = pytest.mark.unit


def pool() -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "ComputePool",
        "metadata": {"name": "p", "uid": "pool-uid"},
        "spec": {"node": {"cpu": "4", "memory": "8Gi"}, "minNodes": 1, "maxNodes": 2,
                 "provider": {"kwok": {}}},
    }  # fmt: skip


def forbidden() -> ApiException:
    return ApiException(status=403, reason="Forbidden")


@pytest.mark.parametrize("kind", ["Node", "Pod"])
def test_a_forbidden_list_is_a_provider_condition_with_the_fix(kind: str) -> None:
    kube = FakeKube(pool())
    kube.fail("list", kind, forbidden)
    result = sync_computepool(kube, "p")
    assert result is not None and result.failed  # the loop backs off
    assert not [v for v in kube.verbs() if "Node/" in v]  # nothing was scaled
    status = kube.get(API_VERSION, "ComputePool", None, "p")["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "ProviderReady")
    assert (ready["status"], ready["reason"]) == ("False", "ProviderError")
    assert "403" in ready["message"] and "computepool-kwok" in ready["message"]


def test_an_api_outage_on_pods_is_still_raised_for_the_loop_to_retry() -> None:
    kube = FakeKube(pool())
    kube.fail("list", "Pod", lambda: ApiException(status=503, reason="Unavailable"))
    with pytest.raises(ApiException):
        sync_computepool(kube, "p")


def test_with_the_permissions_the_pool_scales() -> None:
    kube = FakeKube(pool())
    sync_computepool(kube, "p")  # minNodes 1: one node made
    assert [v for v in kube.verbs() if v.startswith("create Node/")]
