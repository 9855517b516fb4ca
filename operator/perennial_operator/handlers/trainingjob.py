"""TrainingJob triggers: the object itself, its Job and Pods, and one safety-net loop."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import kopf

from perennial_operator.api.group import LABEL_TRAININGJOB, MANAGED_BY, MANAGED_BY_VALUE
from perennial_operator.decide.trainingjob.status import needs_resync
from perennial_operator.decide.watch_events import event_needs_sync
from perennial_operator.handlers.retrying import Key, try_sync
from perennial_operator.handlers.startup import ERROR_DELAYS, stop_task
from perennial_operator.k8s.errors import as_kopf_errors
from perennial_operator.metrics import TrainingJobPhases
from perennial_operator.reconcile.child_view import ChildView
from perennial_operator.reconcile.last_seen import LastSeen
from perennial_operator.reconcile.news import NewsBatch
from perennial_operator.reconcile.retries import Retries
from perennial_operator.reconcile.trainingjob import sync_trainingjob

log = logging.getLogger(__name__)

# Watch events drive every sync: the TrainingJob's own (event_needs_sync: its creation, the
# listing after a start) and its Job's and pods', all from our own watches
# (handlers/watches.py), not kopf's: kopf would take each event through its per-object
# machinery, and with on.create/on.update/on.resume keep its per-object state in an
# annotation, a patch more on every TrainingJob (and the event that patch makes), for a spec
# that cannot change (issue 18). Instead:
# - a sync that fails is tried again after growing delays (kopf's error_delays), per key;
# - a safety net: the TrainingJob events keep the set of those that may still need the
#   operator (unfinished, or Succeeded and not yet registered: needs_resync), and once a
#   minute the loop syncs each of them, one by one (it replaced a kopf timer per object: an
#   asyncio task each and the finalizer kopf needs to stop it). That sweep decides on the
#   last-seen TrainingJob first, as a child event does: with 5,000 TrainingJobs waiting, a
#   read each was 83 GETs a second for as long as they wait, to find nothing to do. Those
#   blocked (no Job in view: a pool or baseline missing), finished or with news are read
#   and synced as before; a retry that is due always reads.
RESYNC_SECONDS = 60.0
TICK_SECONDS = 1.0
# A child's news is synced NEWS_SECONDS after it came, with whatever came meanwhile
# (reconcile/news.py): longer than a pod's first steps take (0.3 s), short enough not to
# be seen; the loop hands it out every NEWS_TICK_SECONDS.
NEWS_SECONDS = 0.5
NEWS_TICK_SECONDS = 0.1


@kopf.on.startup()
async def trainingjob_phases(memo: kopf.Memo, **_: Any) -> None:
    memo.trainingjob_phases = TrainingJobPhases()
    memo.trainingjobs_unfinished = set()
    memo.children = ChildView()
    memo.trainingjob_last_seen = LastSeen()
    memo.trainingjob_retries = Retries[Key](ERROR_DELAYS, time.monotonic)
    memo.trainingjob_resync = asyncio.create_task(resync_loop(memo, RESYNC_SECONDS))
    memo.trainingjob_news = NewsBatch[Key](NEWS_SECONDS, time.monotonic)
    memo.trainingjob_news_loop = asyncio.create_task(news_loop(memo))


@kopf.on.cleanup()
async def stop_trainingjob_resync(memo: kopf.Memo, **_: Any) -> None:
    await stop_task(memo, "trainingjob_resync")
    await stop_task(memo, "trainingjob_news_loop")


async def resync_loop(memo: kopf.Memo, interval: float, tick: float = TICK_SECONDS) -> None:
    """Each tick, the syncs whose retry is due; every ``interval`` seconds, also each
    TrainingJob the events left unfinished (hinted: see above)."""
    last_full = time.monotonic()
    while True:
        await asyncio.sleep(tick)
        due = set(memo.trainingjob_retries.due())
        sweep: set[Key] = set()
        if time.monotonic() - last_full >= interval:
            sweep = set(memo.trainingjobs_unfinished) - due
            last_full = time.monotonic()
        for namespace, name in sorted(due | sweep):
            hinted = (namespace, name) in sweep
            await asyncio.to_thread(_try_sync, memo, namespace, name, None, hinted)


async def news_loop(memo: kopf.Memo, tick: float = NEWS_TICK_SECONDS) -> None:
    """Each tick, one sync for each TrainingJob whose children's news has waited its
    period, side by side on asyncio's threads (hinted: the last-seen TrainingJob first)."""
    while True:
        await asyncio.sleep(tick)
        due = memo.trainingjob_news.take_due()
        if due:
            await asyncio.gather(
                *(asyncio.to_thread(_try_sync, memo, ns, name, None, True) for ns, name in due)
            )


def _try_sync(
    memo: kopf.Memo,
    namespace: str,
    name: str,
    created: dict[str, Any] | None = None,
    hinted: bool = False,
) -> None:
    try_sync(
        memo.trainingjob_retries,
        log,
        "TrainingJob",
        (namespace, name),
        lambda: _sync(memo, namespace, name, created, hinted),
        after_refusal="; looked at again within a minute",  # the minute sweep, if unfinished
    )


def _sync(
    memo: kopf.Memo,
    namespace: str,
    name: str,
    created: dict[str, Any] | None = None,
    hinted: bool = False,
) -> None:
    with as_kopf_errors(f"TrainingJob {namespace}/{name}"):
        sync_trainingjob(
            memo.kube,
            namespace,
            name,
            memo.config,
            memo.locks,
            memo.trainingjob_phases,
            memo.children,
            created,
            memo.trainingjob_last_seen,
            hinted,
        )


def trainingjob_seen(
    memo: kopf.Memo, kind: str, body: dict[str, Any]
) -> asyncio.Future[None] | None:
    """A TrainingJob's event from its watch (handlers/watches.py), handed to the event loop:
    the bookkeeping runs there (as the resync loop does, so the set is never changed while
    the loop reads it), the sync itself on the loop's default executor (returned, for tests;
    it logs its own failures and schedules its own retries). No finalizer on TrainingJobs:
    the DELETED event is enough to forget one."""
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    key = (namespace, name)
    if kind == "DELETED" or not needs_resync(dict(body.get("status") or {})):
        memo.trainingjobs_unfinished.discard(key)
    else:
        memo.trainingjobs_unfinished.add(key)
    if kind == "DELETED":
        memo.trainingjob_last_seen.forget(namespace, name)
        memo.trainingjob_retries.forget(key)
        memo.trainingjob_news.forget(key)
        if meta.get("uid"):
            memo.trainingjob_phases.forget(meta["uid"])
        return None
    memo.trainingjob_last_seen.saw(body)
    if not event_needs_sync(kind, body):
        return None
    # ADDED, listed or not: the body is as fresh as a read (one less).
    created = body if kind == "ADDED" else None
    loop = asyncio.get_running_loop()
    return loop.run_in_executor(None, _try_sync, memo, namespace, name, created)


# A TrainingJob's Job and pods come from our own watches (handlers/watches.py), on their
# threads: these only note what they saw (ChildView, LastSeen and NewsBatch are
# thread-safe); the sync runs later, on news_loop's threads.
def job_seen(memo: kopf.Memo, kind: str, job: dict[str, Any]) -> None:
    if _ours(job) and memo.children.saw_job(job, deleted=kind == "DELETED"):
        _child_changed(job, memo)


def pod_seen(memo: kopf.Memo, kind: str, pod: dict[str, Any]) -> None:
    # Most pod events change nothing the sync reads (the node bound, an IP, Ready): skipped.
    if _ours(pod) and memo.children.saw_pod(pod, deleted=kind == "DELETED"):
        _child_changed(pod, memo)


def _ours(obj: dict[str, Any]) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return labels.get(MANAGED_BY) == MANAGED_BY_VALUE and LABEL_TRAININGJOB in labels


def _child_changed(child: dict[str, Any], memo: kopf.Memo) -> None:
    meta = child["metadata"]
    owner = (meta.get("labels") or {}).get(LABEL_TRAININGJOB)
    namespace = meta.get("namespace")
    if not owner or not namespace:
        return
    # News only for a TrainingJob the watch shows: one deleted (its children's DELETED
    # events come after its own, from the garbage collector) needs no sync, which would only
    # find it gone (a GET each: 11,573 in one default run of bench/operator/scale.py); one
    # not listed yet is synced by its own event, on the children the view holds by then.
    if not memo.trainingjob_last_seen.knows(namespace, owner):
        return
    # Synced by news_loop once the news that comes with it is in (one status write, not
    # one per step); the last-seen TrainingJob answers a sync that would change nothing.
    memo.trainingjob_news.add((namespace, owner))
