"""ComputePool triggers: one loop per pool, woken at once by the pod events that matter.

A kopf daemon per pool rather than a timer plus direct calls from the pod handler: the loop
runs one reconcile at a time (no lock), a burst of pending pods coalesces into one
reconcile, and it can sleep exactly until the next idle node is due instead of a fixed tick.
The pod events come from our own Pod watches (handlers/watches.py); this module's part only
decides which pool to wake, on the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import kopf

from perennial_operator import metrics
from perennial_operator.api.group import COMPUTEPOOLS, GROUP, VERSION
from perennial_operator.decide.computepool.demand import selects_pool, unschedulable_since
from perennial_operator.k8s.backoff import backoff_delay
from perennial_operator.reconcile.computepool import sync_computepool
from perennial_operator.reconcile.computepool_drain import drain_computepool

BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # after consecutive failures, as kopf's errors


@dataclass
class PoolLoop:
    """What the pod handler needs of a running pool loop: its pool, its nodes, its wake-up."""

    loop: asyncio.AbstractEventLoop
    body: kopf.Body  # kopf keeps a daemon's body current
    wake_event: asyncio.Event = field(default_factory=asyncio.Event)
    nodes: frozenset[str] = frozenset()
    generation: int = 0

    def wake(self) -> None:
        self.loop.call_soon_threadsafe(self.wake_event.set)


class PoolLoops(dict[str, PoolLoop]):
    """The running loops by pool name; made at start-up, used on the event loop only."""


@kopf.on.startup()
def computepool_loops(memo: kopf.Memo, **_: Any) -> None:
    memo.computepool_loops = PoolLoops()


def loop_delay(resync: float, recheck: float | None, failures: int) -> float:
    """How long a loop sleeps unless woken: backoff after failures, else until the next idle
    node is due, never longer than the resync."""
    if failures:
        return backoff_delay(failures, BACKOFF)
    return min(resync, recheck) if recheck is not None else resync


@kopf.daemon(GROUP, VERSION, COMPUTEPOOLS, cancellation_timeout=10)
async def computepool_loop(
    name: str,
    body: kopf.Body,
    stopped: kopf.DaemonStopped,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    loops: PoolLoops = memo.computepool_loops
    pool = loops[name] = PoolLoop(asyncio.get_running_loop(), body)
    failures = 0
    try:
        while not stopped:
            pool.wake_event.clear()
            recheck = None
            try:
                result = await asyncio.to_thread(sync_computepool, memo.kube, name)
                failures = failures + 1 if result and result.failed else 0
                if result:
                    pool.nodes, recheck = frozenset(result.nodes), result.recheck_after
            except Exception as exc:  # an API outage or a bug: log, back off, never die
                failures += 1
                logger.exception("ComputePool %s: reconcile failed: %s", name, exc)
            delay = loop_delay(memo.config.computepool_resync_seconds, recheck, failures)
            try:
                await asyncio.wait_for(pool.wake_event.wait(), timeout=delay)
            except TimeoutError:
                pass
    finally:
        if loops.get(name) is pool:
            del loops[name]


@kopf.on.delete(GROUP, VERSION, COMPUTEPOOLS)
async def computepool_deleted(name: str, memo: kopf.Memo, **_: Any) -> None:
    """The pool's finalizer: drain and remove its nodes before the pool may go.

    kopf keeps its finalizer (perennial.dev/finalizer) on every pool (the daemon needs it, and
    so does this handler), stops the pool's loop when deletion starts, and removes the
    finalizer once this returns. One handler call for the whole drain, passes a few seconds
    apart, rather than a TemporaryError per pass: kopf would post an error Event for each
    retry of a deletion that may wait hours for a person. It holds no thread while it waits;
    an API outage raises, and kopf retries the handler with its error delays.
    """
    while not (result := await asyncio.to_thread(drain_computepool, memo.kube, name)).done:
        await asyncio.sleep(result.delay)


@kopf.on.event(GROUP, VERSION, COMPUTEPOOLS)
async def computepool_changed(
    name: str, body: kopf.Body, event: kopf.RawEvent, memo: kopf.Memo, **_: Any
) -> None:
    if event.get("type") == "DELETED":
        metrics.forget_computepool(name)
        return
    pool = memo.computepool_loops.get(name)
    generation = int(body.metadata.get("generation") or 0)
    if pool and generation != pool.generation:  # spec edits, not our own status writes
        pool.generation = generation
        pool.wake()


def pod_seen(memo: kopf.Memo, kind: str, pod: dict[str, Any]) -> None:
    """A pod event from the Pod watches (handlers/watches.py), run on the event loop."""
    loops: PoolLoops = memo.computepool_loops
    if unschedulable_since(pod) is not None:
        for pool in list(loops.values()):
            if selects_pool(pod, dict(pool.body)):
                pool.wake()
        return
    node = (pod.get("spec") or {}).get("nodeName")
    phase = (pod.get("status") or {}).get("phase")
    if node and (kind == "DELETED" or phase in ("Succeeded", "Failed")):
        # A pod left a node: that node may have just become idle.
        for pool in list(loops.values()):
            if node in pool.nodes:
                pool.wake()
