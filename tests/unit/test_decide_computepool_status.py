"""ComputePool status and Events from a decision and its outcome."""

from __future__ import annotations

import datetime as dt

import pytest

from perennial_operator.decide.computepool.decision import Decision, Unfit, World
from perennial_operator.decide.computepool.status import Outcome, computepool_status

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=dt.UTC)
POOL = {
    "kind": "ComputePool",
    "metadata": {"name": "p", "uid": "u", "generation": 3},
    "spec": {
        "node": {"cpu": "4", "memory": "16Gi", "gpu": 1},
        "minNodes": 0,
        "maxNodes": 2,
        "provider": {"kwok": {}},
    },
}
READY_NODE = {
    "metadata": {"name": "n0"},
    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
}


def status_of(decision, outcome=None, pool=POOL, nodes=()):
    return computepool_status(
        pool, World(list(nodes), [], len(nodes), NOW), decision, outcome or Outcome(), now=NOW
    )


def conds(status):
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_scale_up_sets_last_scale_up_with_microseconds_and_an_event():
    d = Decision(current=0, desired=1, add=1, pending=("ml/a",), reason="1 pod needs 1 node")
    status, events = status_of(d, Outcome(added=1))
    assert status["lastScaleUp"] == {
        "time": "2026-11-27T12:00:00.123456Z",
        "from": 0,
        "to": 1,
        "reason": "1 pod needs 1 node",
    }
    assert status["observedGeneration"] == 3 and status["pendingPods"] == 1
    assert conds(status)["Ready"] == ("False", "ScalingUp")
    assert [(e.type, e.reason) for e in events] == [("Normal", "ScaledUp")]


def test_steady_pool_is_ready_and_quiet():
    status, events = status_of(Decision(current=1, desired=1, add=0), nodes=[READY_NODE])
    assert conds(status) == {
        "ProviderReady": ("True", "ProviderOK"),
        "PodsFit": ("True", "AllPodsFit"),
        "CapacityAvailable": ("True", "WithinMaxNodes"),
        "Ready": ("True", "AtDesiredSize"),
    }
    assert events == []


def test_unfittable_pod_is_named_with_the_resource_once():
    d = Decision(
        current=0,
        desired=0,
        add=0,
        pending=("ml/big",),
        unfittable=(Unfit("ml/big", ("cpu", "nvidia.com/gpu")),),
    )
    status, events = status_of(d)
    assert status["unfittablePods"] == ["ml/big"]
    cond = next(c for c in status["conditions"] if c["type"] == "PodsFit")
    assert cond["reason"] == "PodTooLarge" and "ml/big" in cond["message"]
    assert "cpu, nvidia.com/gpu" in cond["message"]
    (event,) = events
    assert event.reason == "PodTooLarge" and "ml/big" in event.message and "cpu 4" in event.message
    again, events = status_of(d, pool={**POOL, "status": status})
    assert events == [] and again["conditions"] == status["conditions"]


def test_overflow_reports_max_nodes_once():
    d = Decision(current=2, desired=2, add=0, pending=("ml/a", "ml/b"), overflow=("ml/b",))
    status, events = status_of(d)
    assert conds(status)["CapacityAvailable"] == ("False", "MaxNodesReached")
    assert [e.reason for e in events] == ["MaxNodesReached"]
    assert "maxNodes 2" in events[0].message and "ml/b" in events[0].message
    _, events = status_of(d, pool={**POOL, "status": status})
    assert events == []
    other = Decision(current=2, desired=2, add=0, pending=("ml/a", "ml/b"), overflow=("ml/a",))
    _, events = status_of(other, pool={**POOL, "status": status})
    assert events == []  # another pod left over is no news


def test_provider_error_is_a_condition_with_the_text():
    d = Decision(current=0, desired=1, add=1)
    status, events = status_of(d, Outcome(error="HTTP 403 Forbidden: nodes is forbidden"))
    assert conds(status)["ProviderReady"] == ("False", "ProviderError")
    assert conds(status)["Ready"] == ("False", "ProviderError")
    assert "lastScaleUp" not in status
    assert [e.reason for e in events] == ["ProviderError"]


def test_scale_down_keeps_the_last_scale_up():
    earlier = {"time": "2026-11-27T11:00:00.000000Z", "from": 0, "to": 1, "reason": "x"}
    d = Decision(current=1, desired=0, add=0, remove=("n0",), reason="1 node(s) idle for 60s")
    status, events = status_of(
        d, Outcome(removed=("n0",)), pool={**POOL, "status": {"lastScaleUp": earlier}}
    )
    assert status["lastScaleUp"] == earlier
    assert status["lastScaleDown"]["to"] == 0
    assert [e.reason for e in events] == ["ScaledDown"] and "n0" in events[0].message


HEALTH_CASES = [
    # id, decision, outcome, nodes -> Ready (status, reason), Stalled (None: absent)
    ("at-size", Decision(current=1, desired=1, add=0), Outcome(), [READY_NODE],
     ("True", "AtDesiredSize"), None),
    ("scaling-up", Decision(current=0, desired=1, add=1, pending=("ml/a",)), Outcome(added=1),
     [], ("False", "ScalingUp"), None),
    ("provider-error", Decision(current=0, desired=1, add=1), Outcome(error="quota exceeded"),
     [], ("False", "ProviderError"), ("True", "ProviderError")),
    ("pod-too-large", Decision(current=1, desired=1, add=0, pending=("ml/big",),
                               unfittable=(Unfit("ml/big", ("cpu",)),)),
     Outcome(), [READY_NODE], ("False", "PodTooLarge"), ("True", "PodTooLarge")),
    ("at-max-nodes", Decision(current=2, desired=2, add=0, pending=("ml/a",),
                              overflow=("ml/a",)),
     Outcome(), [READY_NODE, {**READY_NODE, "metadata": {"name": "n1"}}],
     ("False", "MaxNodesReached"), ("True", "MaxNodesReached")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("decision", "outcome", "nodes", "ready", "stalled"),
    [c[1:] for c in HEALTH_CASES],
    ids=[c[0] for c in HEALTH_CASES],
)
def test_ready_and_stalled(decision, outcome, nodes, ready, stalled):
    status, _ = status_of(decision, outcome, nodes=nodes)
    got = conds(status)
    assert (got["Ready"], got.get("Stalled")) == (ready, stalled)
    assert {c["observedGeneration"] for c in status["conditions"]} == {3}


def test_stalled_goes_once_the_pool_can_grow_again():
    full = Decision(current=2, desired=2, add=0, pending=("ml/a",), overflow=("ml/a",))
    status, _ = status_of(full)
    grown = {**POOL, "status": status, "spec": {**POOL["spec"], "maxNodes": 3}}
    after, _ = status_of(Decision(current=2, desired=3, add=1), Outcome(added=1), pool=grown)
    assert "Stalled" not in conds(after)
