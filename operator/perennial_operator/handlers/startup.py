"""Operator start-up: kopf settings, and what every handler shares through kopf's memo (the
settings, the API client, the per-object locks), the metrics endpoint, the loop that gives
freed memory back (memory.py). A kind's own start-up
state (a cache, a gauge, its loops) is made by a startup handler in that kind's module."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf
from prometheus_client import start_http_server

from perennial_operator.config import OperatorConfig
from perennial_operator.handlers.essence import DiffedOnlyStorage
from perennial_operator.k8s.client import make_api_client
from perennial_operator.k8s.kube import Kube, KubeApi
from perennial_operator.memory import release_loop
from perennial_operator.reconcile.locks import KeyedLocks

# Seconds before each retry of a failed handler (kopf's, and the TrainingJob sync's own).
ERROR_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Our own prefix for kopf's state, so it is obvious whose annotations these are.
    settings.persistence.finalizer = "perennial.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="perennial.dev")
    settings.persistence.diffbase_storage = DiffedOnlyStorage(
        prefix="perennial.dev", key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    # Watch streams for production; why each value: docs/operator.md#watch-settings.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.inactivity_timeout = 70
    settings.watching.reconnect_backoff = 1
    settings.watching.chunk_size = 500
    settings.networking.request_timeout = 60
    settings.batching.error_delays = list(ERROR_DELAYS)
    settings.execution.max_workers = 8
    config = OperatorConfig.from_env()
    memo.config = config
    # main.py puts the Lease's fence in the memo (absent with --standalone).
    memo.api_client = make_api_client()  # the watches' client is a copy (handlers/watches.py)
    kube: KubeApi = Kube(memo.api_client, fence=memo.get("fence"))
    memo.kube = kube
    memo.locks = KeyedLocks()
    if config.metrics_port:
        start_http_server(config.metrics_port, addr="0.0.0.0")


@kopf.on.startup()
async def start_memory_release(memo: kopf.Memo, **_: Any) -> None:
    memo.memory_release = asyncio.create_task(release_loop())


async def stop_task(memo: kopf.Memo, name: str) -> None:
    """Cancel the background task a startup handler kept in the memo under `name`, and wait
    for it to end."""
    task = memo.get(name)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@kopf.on.cleanup()
async def stop_memory_release(memo: kopf.Memo, **_: Any) -> None:
    await stop_task(memo, "memory_release")


@kopf.on.probe(id="handlers")
async def handlers_alive(**_: Any) -> str:
    # async: it answers on the event loop, so /healthz stays up while every executor
    # thread is busy (a slow pod scrape, a slow API call); a sync probe queued behind them
    # and the liveness probe restart-looped the operator (issue 20, finding 2).
    return "ok"
