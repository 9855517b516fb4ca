"""Deleting a ComputePool (issue 20, finding 7): what one drain pass decides, and what the
reconcile does with it against the in-memory API (the real API server's answers, budgets
included: tests/reliability/test_computepool_drain.py)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from perennial_operator.api import conditions as c
from perennial_operator.api.group import API_VERSION
from perennial_operator.decide.computepool.drain import drain_report, drain_step, forced
from perennial_operator.reconcile.computepool_drain import drain_computepool
from support.fake_kube import FakeKube

pytestmark = pytest.mark.unit

UID = "pool-uid"


def node(name: str, unschedulable: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"perennial.dev/compute-pool": "p"},
                     "annotations": {"perennial.dev/compute-pool-uid": UID}},
        "spec": {"unschedulable": True} if unschedulable else {},
    }  # fmt: skip


def pod(
    name: str,
    on: str,
    phase: str = "Running",
    labels: dict[str, str] | None = None,
    owner: str | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x", "uid": "u"}]
    if deleting:
        meta["deletionTimestamp"] = "2026-12-05T00:00:00Z"
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {"nodeName": on}, "status": {"phase": phase},
    }  # fmt: skip


ISVC = {"perennial.dev/inferenceservice": "shop"}


@pytest.mark.parametrize(
    ("pods", "force", "evict", "remove", "blocked"),
    [
        ([], False, (), ("n0", "n1"), False),  # idle: all nodes at once
        ([pod("a", "n0")], False, ("ns/a",), (), False),
        ([pod("a", "n0", phase="Succeeded"), pod("b", "n1", phase="Failed")], False, (),
         ("n0", "n1"), False),  # finished pods keep nothing
        ([pod("d", "n0", owner="DaemonSet")], False, (), ("n0", "n1"), False),
        ([pod("t", "n0", deleting=True)], False, (), (), False),  # waited for, not re-evicted
        ([pod("s", "n1", labels=ISVC), pod("a", "n0")], False, (), (), True),  # refused
        ([pod("s", "n1", labels=ISVC), pod("a", "n0")], True, ("ns/a", "ns/s"), (), True),
        ([pod("x", "elsewhere")], False, (), ("n0", "n1"), False),  # not on the pool
    ],
)  # fmt: skip
def test_drain_step(pods, force, evict, remove, blocked):
    step = drain_step([node("n0"), node("n1", unschedulable=True)], pods, force=force)
    assert step.cordon == ("n0",)
    assert sorted(step.evict) == sorted(evict)
    assert step.remove == remove
    assert bool(step.blockers) == blocked
    assert not step.done


def test_no_node_left_is_done():
    assert drain_step([], [], force=False).done


def test_force_annotation():
    assert forced({"metadata": {"annotations": {"perennial.dev/force-delete": "true"}}})
    assert not forced({"metadata": {"annotations": {"perennial.dev/force-delete": "no"}}})
    assert not forced({"metadata": {}})


def test_reports_say_what_blocks_and_how_out():
    blocked = drain_step([node("n0")], [pod("s", "n0", labels=ISVC)], force=False)
    report = drain_report("p", blocked, {}, None, 1)
    assert (report.reason, report.stuck) == (c.DELETION_BLOCKED, True)
    assert "ns/s of InferenceService ns/shop on n0" in report.message
    assert "kubectl annotate computepool p perennial.dev/force-delete=true" in report.message
    step = drain_step([node("n0")], [pod("a", "n0")], force=False)
    refused = drain_report("p", step, {"ns/a": "budget"}, None, 1)
    assert (refused.reason, refused.stuck) == (c.EVICTION_REFUSED, True)
    assert "ns/a (budget)" in refused.message
    assert drain_report("p", step, {}, None, 1).reason == c.DRAINING
    assert drain_report("p", step, {}, "HTTP 403", 1).reason == c.DRAIN_FAILED


def pool(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "ComputePool",
        "metadata": {"name": "p", "uid": UID, "annotations": annotations or {},
                     "deletionTimestamp": "2026-12-05T00:00:00Z"},
        "spec": {"node": {"cpu": "4", "memory": "8Gi"}, "minNodes": 0, "maxNodes": 3,
                 "provider": {"kwok": {}}},
    }  # fmt: skip


def ready(kube: FakeKube) -> dict[str, Any]:
    obj = kube.get(API_VERSION, "ComputePool", None, "p")
    assert obj is not None
    return next(x for x in obj["status"]["conditions"] if x["type"] == "Ready")


def test_a_served_pool_keeps_its_nodes_until_forced_then_drains_and_is_done():
    kube = FakeKube(pool(), node("p-0"), pod("s", "p-0", labels=ISVC), pod("a", "p-0"))
    first = drain_computepool(kube, "p")
    assert not first.done
    assert kube.get("v1", "Node", None, "p-0")["spec"]["unschedulable"] is True
    assert kube.get("v1", "Pod", "ns", "a") is not None  # nothing evicted while refused
    assert ready(kube)["reason"] == c.DELETION_BLOCKED
    assert kube.reasons() == [c.DELETION_BLOCKED]
    drain_computepool(kube, "p")
    assert kube.reasons() == [c.DELETION_BLOCKED]  # no Event for the same news
    kube.patch(API_VERSION, "ComputePool", None, "p",
               {"metadata": {"annotations": {"perennial.dev/force-delete": "true"}}})  # fmt: skip
    drain_computepool(kube, "p")
    assert kube.verbs("Pod") == ["evict Pod/a", "evict Pod/s"]
    assert kube.get("v1", "Node", None, "p-0") is not None  # removed on the next pass
    drain_computepool(kube, "p")
    assert kube.get("v1", "Node", None, "p-0") is None
    assert drain_computepool(kube, "p").done


def test_a_budget_refusal_is_reported_and_retried():
    kube = FakeKube(pool(), node("p-0"), pod("a", "p-0"))
    kube.fail("evict", "Pod", lambda: ApiException(status=429, reason="Too Many Requests"))
    result = drain_computepool(kube, "p")
    assert not result.done and result.delay > 2
    assert ready(kube)["reason"] == c.EVICTION_REFUSED
    assert kube.get("v1", "Node", None, "p-0") is not None


def test_nodes_of_someone_else_are_never_touched():
    stranger = node("x-0")
    stranger["metadata"]["annotations"] = {"perennial.dev/compute-pool-uid": "another-pool"}
    kube = FakeKube(pool(), stranger, pod("a", "x-0"))
    assert drain_computepool(kube, "p").done
    assert kube.verbs() == ["event ComputePool/p"]


def test_a_cluster_api_pool_without_its_machinedeployment_goes_with_a_warning():
    capi = pool()
    ref = {"name": "md", "namespace": "capi"}
    capi["spec"]["provider"] = {"clusterAPI": {"machineDeployment": ref}}
    kube = FakeKube(capi, node("p-0"))
    assert drain_computepool(kube, "p").done
    assert kube.events[-1]["type"] == "Warning" and "does not exist" in kube.events[-1]["message"]
