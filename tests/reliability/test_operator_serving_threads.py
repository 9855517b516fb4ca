"""Finding 2 (issue 20), the rest: a scrape is bounded, but eight InferenceServices whose
pods trickle used to hold all eight of kopf's executor threads for the whole bound, so a
TrainingJob (or any other handler) waited behind them. The InferenceService handlers now run
their sync work on serving threads of their own: here eight of them scrape trickling pods
while a sync handler, invoked the way kopf invokes one, still runs before any scrape ends."""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import kopf
import pytest

from perennial_operator.handlers import inferenceservice as handlers
from perennial_operator.handlers.serving_threads import SERVING_THREADS
from perennial_operator.k8s import scrape

pytestmark = pytest.mark.unit

KOPF_THREADS = 8  # handlers/startup.py: settings.execution.max_workers
SYNCING = (
    "reconcile_inferenceservice",
    "drive_rollout",
    "resync_inferenceservice",
    "measure_inferenceservice_drift",
    "modelversion_changed",
    "httproute_changed",
    "computepool_changed_for_services",
    "deployment_changed",
)


class Trickle(BaseHTTPRequestHandler):
    def log_message(self, *_: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        try:
            self.send_response(200)
            self.end_headers()
            while not self.server.stopping.is_set():  # type: ignore[attr-defined]
                self.wfile.write(b"#")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass


@pytest.fixture
def trickling_pod() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.stopping = threading.Event()  # type: ignore[attr-defined]
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.stopping.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()


async def invoke_like_kopf(fn: Callable[..., Any], executor: ThreadPoolExecutor, **kw: Any) -> Any:
    """kopf awaits an async handler on the loop and runs a sync one on its executor
    (kopf/_core/actions/invocation.py)."""
    if inspect.iscoroutinefunction(fn):
        return await fn(**kw)
    return await asyncio.get_running_loop().run_in_executor(executor, functools.partial(fn, **kw))


def test_every_handler_that_syncs_a_service_is_async() -> None:
    for name in SYNCING:
        assert inspect.iscoroutinefunction(getattr(handlers, name)), name


def test_eight_trickling_services_leave_kopfs_threads_free(
    trickling_pod: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scrape, "TIMEOUT", 2.0)
    ended: list[float] = []
    scraping = threading.Semaphore(0)

    def hostile_sync(*_: Any) -> None:  # what a tick does with a pod that trickles
        scraping.release()
        assert scrape.scrape(trickling_pod) is None  # given up on at the bound
        ended.append(time.monotonic())

    monkeypatch.setattr(handlers, "sync_inferenceservice", hostile_sync)
    memo = kopf.Memo(kube=None, config=None, locks=None)

    async def scenario() -> float:
        with ThreadPoolExecutor(max_workers=KOPF_THREADS) as kopf_executor:
            ticks = [
                asyncio.ensure_future(
                    invoke_like_kopf(
                        handlers.drive_rollout,
                        kopf_executor,
                        namespace="ml",
                        name=f"s{i}",
                        memo=memo,
                    )
                )
                for i in range(KOPF_THREADS)
            ]
            # Wait until every thread that can scrape is scraping.
            for _ in range(min(KOPF_THREADS, SERVING_THREADS)):
                await asyncio.to_thread(scraping.acquire)
            # A TrainingJob's handler, as kopf runs a sync handler.
            ran = await invoke_like_kopf(time.monotonic, kopf_executor)
            await asyncio.gather(*ticks)
            return float(ran)

    training_ran = asyncio.run(scenario())
    assert len(ended) == KOPF_THREADS  # every tick did its (hostile) scrape
    assert training_ran < min(ended), "the TrainingJob handler waited for the scrapes"
