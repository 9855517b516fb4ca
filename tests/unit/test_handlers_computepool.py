"""The ComputePool wiring: which pod events wake which pool loop, and how long a loop sleeps."""

from __future__ import annotations

import asyncio

import kopf
import pytest

from perennial_operator.handlers import computepool as h

pytestmark = pytest.mark.unit

POOL = {
    "metadata": {"name": "gpu", "generation": 1},
    "spec": {"node": {"cpu": "8", "memory": "32Gi"}, "labels": {"pool": "gpu"}},
}
PENDING = {
    "metadata": {"name": "a", "namespace": "ml"},
    "spec": {"nodeSelector": {"pool": "gpu"}},
    "status": {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
    },
}


@pytest.mark.parametrize(
    ("resync", "recheck", "failures", "expected"),
    [(10, None, 0, 10), (10, 2.5, 0, 2.5), (10, 30, 0, 10), (10, None, 1, 1), (10, 1, 9, 60)],
    ids=["resync", "idle-node-due-sooner", "never-longer-than-resync", "first-retry", "capped"],
)
def test_delay(resync, recheck, failures, expected):
    assert h.loop_delay(resync, recheck, failures) == expected


def woken(pod: dict, event_type: str = "MODIFIED", nodes: frozenset[str] = frozenset()) -> bool:
    async def scenario() -> bool:
        memo = kopf.Memo()
        h.computepool_loops(memo=memo)
        pool = h.PoolLoop(asyncio.get_running_loop(), POOL, nodes=nodes)  # type: ignore[arg-type]
        memo.computepool_loops["gpu"] = pool
        h.pod_seen(memo, event_type, pod)
        await asyncio.sleep(0)  # let call_soon_threadsafe run
        return pool.wake_event.is_set()

    return asyncio.run(scenario())


def test_an_unschedulable_pod_that_selects_the_pool_wakes_it():
    assert woken(PENDING)


def test_an_unschedulable_pod_for_another_pool_does_not():
    other = {**PENDING, "spec": {"nodeSelector": {"pool": "cpu"}}}
    assert not woken(other)


def test_a_pod_leaving_a_pool_node_wakes_the_pool():
    done = {
        "metadata": {"name": "b", "namespace": "ml"},
        "spec": {"nodeName": "gpu-0"},
        "status": {"phase": "Succeeded"},
    }
    assert woken(done, nodes=frozenset({"gpu-0"}))
    assert woken({**done, "status": {"phase": "Running"}}, "DELETED", frozenset({"gpu-0"}))
    assert not woken({**done, "status": {"phase": "Running"}}, nodes=frozenset({"gpu-0"}))
    assert not woken(done, nodes=frozenset({"cpu-0"}))
