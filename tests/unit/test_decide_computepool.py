"""The ComputePool decision as tables of worlds, and its bounds under hypothesis."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial_operator.api.group import ANNOTATION_CORDONED_FOR_REMOVAL, ANNOTATION_IDLE_SINCE
from perennial_operator.decide.computepool.decision import World, computepool_decision
from perennial_operator.decide.computepool.demand import pod_requests, selects_pool

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 27, 12, 0, 0, tzinfo=dt.UTC)
LONG_AGO = "2026-11-27T11:00:00Z"
JUST_NOW = "2026-11-27T11:59:58Z"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
TOLERATE = [
    {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
]


def pool(min_nodes=0, max_nodes=4, cpu="4", memory="16Gi", gpu=0, taints=(), delay=60):
    return {
        "apiVersion": "perennial.dev/v1alpha1",
        "kind": "ComputePool",
        "metadata": {"name": "p", "uid": "pool-uid", "generation": 1},
        "spec": {
            "node": {"cpu": cpu, "memory": memory, "gpu": gpu, "pods": 110},
            "labels": {"pool": "p"},
            "taints": list(taints),
            "minNodes": min_nodes,
            "maxNodes": max_nodes,
            "scaleDownDelaySeconds": delay,
            "provider": {"kwok": {}},
        },
    }


def node(name, idle_since=None, cordoned=False, ours=False, ready=True):
    annotations = {}
    if idle_since:
        annotations[ANNOTATION_IDLE_SINCE] = idle_since
    if ours:
        annotations[ANNOTATION_CORDONED_FOR_REMOVAL] = LONG_AGO
    return {
        "metadata": {
            "name": name,
            "labels": {"perennial.dev/compute-pool": "p", "pool": "p"},
            "annotations": annotations,
        },
        "spec": {"unschedulable": True} if cordoned or ours else {},
        "status": {
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod(
    name,
    cpu="1",
    memory="1Gi",
    gpu=0,
    on=None,
    selector=None,
    tolerations=(),
    affinity=None,
    daemon=False,
    phase=None,
    scheduled=None,
):
    requests = {"cpu": cpu, "memory": memory, **({"nvidia.com/gpu": str(gpu)} if gpu else {})}
    spec = {
        "containers": [{"name": "c", "resources": {"requests": requests}}],
        "nodeSelector": {"pool": "p"} if selector is None else selector,
        "tolerations": list(tolerations),
    }
    if affinity:
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": affinity}
            }
        }
    if on:
        spec["nodeName"] = on
    status = {"phase": phase or ("Running" if on else "Pending")}
    if not on:
        reason = scheduled or "Unschedulable"
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": reason,
                "lastTransitionTime": "2026-11-27T11:59:59Z",
            }
        ]
    meta = {"name": name, "namespace": "ml"}
    if daemon:
        meta["ownerReferences"] = [{"kind": "DaemonSet", "name": "ds", "uid": "x"}]
    return {"metadata": meta, "spec": spec, "status": status}


def decide(p, nodes=(), pods=(), target=None):
    world = World(
        nodes=list(nodes), pods=list(pods), target=len(nodes) if target is None else target, now=NOW
    )
    return computepool_decision(p, world)


CASES = [
    pytest.param(pool(), [], [], dict(desired=0, add=0), id="empty-pool-stays-empty"),
    pytest.param(
        pool(gpu=2, taints=[GPU_TAINT]),
        [],
        [pod("g", gpu=1, tolerations=TOLERATE)],
        dict(desired=1, add=1, pending=("ml/g",)),
        id="gpu-pod-scales-0-to-1",
    ),
    pytest.param(
        pool(),
        [],
        [pod("stray", selector={})],
        dict(add=0, pending=()),
        id="pod-not-naming-the-pool-is-ignored",
    ),
    pytest.param(
        pool(taints=[GPU_TAINT]),
        [],
        [pod("g")],
        dict(add=0, pending=()),
        id="pod-not-tolerating-the-taint-is-ignored",
    ),
    pytest.param(
        pool(),
        [],
        [
            pod(
                "a",
                selector={},
                affinity=[
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["p"]}]}
                ],
            )
        ],
        dict(add=1),
        id="required-node-affinity-selects",
    ),
    pytest.param(
        pool(),
        [],
        [
            pod(
                "a",
                selector={},
                affinity=[
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["other"]}]}
                ],
            )
        ],
        dict(add=0),
        id="affinity-for-another-pool-does-not",
    ),
    pytest.param(
        pool(),
        [],
        [pod(f"c{i}") for i in range(10)],
        dict(desired=3, add=3),
        id="ten-1cpu-pods-need-three-4cpu-nodes",
    ),
    pytest.param(
        pool(max_nodes=2),
        [],
        [pod(f"b{i}", cpu="3") for i in range(3)],
        dict(desired=2, add=2, overflow=("ml/b2",)),
        id="max-nodes-bounds-overflow",
    ),
    pytest.param(
        pool(),
        [],
        [pod("huge", cpu="32")],
        dict(add=0, unfit=[("ml/huge", ("cpu",))]),
        id="too-big-pod-reported-not-scaled-for",
    ),
    pytest.param(
        pool(gpu=1),
        [],
        [pod("g2", gpu=2)],
        dict(add=0, unfit=[("ml/g2", ("nvidia.com/gpu",))]),
        id="too-many-gpus",
    ),
    pytest.param(
        pool(),
        [node("n0")],
        [pod("a", cpu="2")],
        dict(add=0, marks={}),
        id="pending-pod-fits-existing-room",
    ),
    pytest.param(
        pool(),
        [node("n0")],
        [pod("x", cpu="3", on="n0"), pod("a", cpu="2")],
        dict(add=1, desired=2),
        id="existing-room-too-small",
    ),
    pytest.param(pool(min_nodes=2), [], [], dict(add=2, desired=2), id="up-to-min-nodes"),
    pytest.param(
        pool(),
        [],
        [pod("a", scheduled="SchedulerError")],
        dict(add=0),
        id="only-unschedulable-counts",
    ),
    pytest.param(
        pool(),
        [node("n0")],
        [],
        dict(remove=(), marks={"n0": "now"}),
        id="idle-node-gets-its-clock",
    ),
    pytest.param(
        pool(),
        [node("n0", idle_since=JUST_NOW)],
        [],
        dict(remove=(), marks={}),
        id="idle-node-not-yet-due",
    ),
    pytest.param(
        pool(),
        [node("n0", idle_since=LONG_AGO)],
        [],
        dict(remove=("n0",), desired=0),
        id="idle-node-removed-after-delay",
    ),
    pytest.param(
        pool(min_nodes=1),
        [node("n0", idle_since=LONG_AGO)],
        [],
        dict(remove=(), desired=1),
        id="min-nodes-kept",
    ),
    pytest.param(
        pool(),
        [node("n0", idle_since=LONG_AGO)],
        [pod("a", on="n0")],
        dict(remove=(), marks={"n0": None}),
        id="busy-node-kept-clock-cleared",
    ),
    pytest.param(
        pool(),
        [node("n0", idle_since=LONG_AGO)],
        [pod("ds", on="n0", daemon=True)],
        dict(remove=("n0",)),
        id="daemonset-pods-do-not-keep-a-node",
    ),
    pytest.param(
        pool(),
        [node("n0", idle_since=LONG_AGO)],
        [pod("a", on="n0", phase="Succeeded")],
        dict(remove=("n0",)),
        id="finished-pods-do-not-keep-a-node",
    ),
    pytest.param(
        pool(),
        [node("n0", idle_since=LONG_AGO, cordoned=True)],
        [],
        dict(remove=()),
        id="human-cordon-left-alone",
    ),
    pytest.param(
        pool(),
        [node("n0", idle_since=LONG_AGO)],
        [pod("a")],
        dict(remove=(), add=0, marks={"n0": None}),
        id="pending-pod-will-land-on-idle-node",
    ),
    pytest.param(
        pool(),
        [node("n0", idle_since=LONG_AGO, ours=True)],
        [pod("a", cpu="1")],
        dict(remove=(), uncordon=("n0",)),
        id="our-cordon-undone-when-needed",
    ),
    pytest.param(
        pool(),
        [node("n0", idle_since=LONG_AGO), node("n1", idle_since=LONG_AGO)],
        [pod("a", cpu="3", on="n0"), pod("b", cpu="3")],
        dict(add=0, remove=()),
        id="pending-pod-packs-onto-the-idle-node",
    ),
    pytest.param(
        pool(), [], [pod("a")], dict(add=0), {"target": 1}, id="capi-booting-machine-counts-as-room"
    ),
    pytest.param(
        pool(),
        [node("n0", idle_since=LONG_AGO, ours=True), node("n1")],
        [],
        dict(remove=(), desired=1),
        {"target": 1},
        id="capi-node-already-leaving-not-removed-twice",
    ),
]


@pytest.mark.parametrize(
    ("p", "nodes", "pods", "expect", "extra"),
    [c if len(c.values) == 5 else pytest.param(*c.values, {}, id=c.id) for c in CASES],
)
def test_decision(p, nodes, pods, expect, extra):
    d = decide(p, nodes, pods, **extra)
    for key, want in expect.items():
        if key == "unfit":
            assert [(u.pod, u.resources) for u in d.unfittable] == want
        elif key == "marks":
            assert {k: (v and "now") for k, v in d.idle_marks.items()} == want
        else:
            assert getattr(d, key) == want, key


def test_scale_up_records_when_the_pods_became_unschedulable():
    d = decide(pool(), [], [pod("a"), pod("b")])
    assert d.waited_since == ("2026-11-27T11:59:59Z",) * 2
    assert d.reason == "2 unschedulable pod(s) need 1 more node(s)"


def test_idle_clock_survives_in_the_annotation():
    fresh = decide(pool(delay=60), [node("n0")], [])
    stamp = fresh.idle_marks["n0"]
    assert stamp is not None and stamp.startswith("2026-11-27T12:00:00")
    later = computepool_decision(
        pool(delay=60), World([node("n0", idle_since=stamp)], [], 1, NOW + dt.timedelta(seconds=61))
    )
    assert later.remove == ("n0",)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {
                "containers": [
                    {"resources": {"requests": {"cpu": "1"}}},
                    {"resources": {"requests": {"cpu": "500m"}}},
                ]
            },
            {"cpu": 1500},
            id="containers-add-up",
        ),
        pytest.param(
            {
                "containers": [{"resources": {"requests": {"cpu": "1"}}}],
                "initContainers": [{"resources": {"requests": {"cpu": "2"}}}],
            },
            {"cpu": 2000},
            id="largest-init-container-wins",
        ),
        pytest.param(
            {
                "containers": [{"resources": {"requests": {"memory": "1Gi"}}}],
                "overhead": {"memory": "1Gi"},
            },
            {"memory": 2 * 2**30 * 1000},
            id="overhead-added",
        ),
        pytest.param({"containers": [{}]}, {}, id="no-requests"),
    ],
)
def test_pod_requests(spec, expected):
    got = pod_requests({"spec": spec})
    assert got.get("pods") == 1000
    for name, amount in expected.items():
        assert got.get(name) == amount


def test_a_pool_without_labels_is_selected_by_its_pool_label_only():
    p = pool()
    p["spec"]["labels"] = {}
    assert not selects_pool(pod("a", selector={}), p)
    assert selects_pool(pod("a", selector={"perennial.dev/compute-pool": "p"}), p)


# ---- bounds ------------------------------------------------------------------------------

node_names = [f"n{i}" for i in range(4)]
pods_strategy = st.lists(
    st.builds(
        lambda i, cpu, on, daemon: pod(f"p{i}", cpu=f"{cpu}m", on=on, daemon=daemon and bool(on)),
        st.integers(0, 10**6),
        st.integers(1, 5000),
        st.sampled_from([None, *node_names]),
        st.booleans(),
    ),
    max_size=20,
    unique_by=lambda p: p["metadata"]["name"],
)


@settings(max_examples=300, deadline=None)
@given(
    low=st.integers(0, 3),
    extra=st.integers(0, 3),
    count=st.integers(0, 4),
    pods=pods_strategy,
    idle=st.sampled_from([None, JUST_NOW, LONG_AGO]),
)
def test_decision_stays_in_bounds_and_never_removes_a_busy_node(low, extra, count, pods, idle):
    high = max(low + extra, count)
    nodes = [node(name, idle_since=idle) for name in node_names[:count]]
    pods = [p for p in pods if p["spec"].get("nodeName") in (None, *node_names[:count])]
    d = decide(pool(min_nodes=low, max_nodes=high), nodes, pods)
    assert low <= d.desired <= high
    assert d.desired == count + d.add - len(d.remove)
    assert not (d.add and d.remove)
    busy = {
        p["spec"]["nodeName"]
        for p in pods
        if p["spec"].get("nodeName") and not p["metadata"].get("ownerReferences")
    }
    assert not busy & set(d.remove)
    assert set(d.pending) >= set(d.overflow) | {u.pod for u in d.unfittable}


@pytest.mark.parametrize(
    ("stamp", "removed"),
    [("2026-11-27T11:00:00", ("n0",)), ("garbage", ())],
    ids=["naive-time-read-as-utc", "unreadable-restarts-the-clock"],
)
def test_hand_edited_idle_annotation(stamp, removed):
    d = decide(pool(), [node("n0", idle_since=stamp)], [])
    assert d.remove == removed
