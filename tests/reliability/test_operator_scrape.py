"""Finding 2 (issue 20): one serving pod cannot stall or exhaust the operator. A scrape is
bounded in total time (a pod trickling bytes), bytes and samples (a 1 GiB answer), and the
liveness probe does not wait for kopf's executor threads."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from perennial_operator.handlers.startup import handlers_alive
from perennial_operator.k8s import scrape

pytestmark = pytest.mark.unit

GOOD = b'# TYPE perennial_requests_total counter\nperennial_requests_total{code="200"} 7\n'


class Hostile(BaseHTTPRequestHandler):
    """/trickle: one byte every 0.2 s, forever; /huge: an endless stream of samples (what a
    1 GiB answer looks like to the reader); /headers: headers trickled; /ok: a normal pod."""

    def log_message(self, *_: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        try:
            if self.path.startswith("/ok"):
                self._head()
                self.wfile.write(GOOD)
            elif self.path.startswith("/trickle"):
                self._head()
                while not self.server.stopping.is_set():  # type: ignore[attr-defined]
                    self.wfile.write(b"#")
                    self.wfile.flush()
                    time.sleep(0.2)
            elif self.path.startswith("/headers"):
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                while not self.server.stopping.is_set():  # type: ignore[attr-defined]
                    self.wfile.write(b"X: y\r\n")
                    self.wfile.flush()
                    time.sleep(0.2)
            elif self.path.startswith("/huge"):
                self._head()
                line = b'perennial_requests_total{code="200",pod="%d"} 1\n'
                for i in range(30_000_000):  # ~1.5 GB if read to the end
                    if self.server.stopping.is_set():  # type: ignore[attr-defined]
                        return
                    self.wfile.write(line % i)
        except OSError:
            pass  # the reader hung up: what a bounded scrape does

    def _head(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()


@pytest.fixture
def pod() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    server.daemon_threads = True
    server.stopping = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.stopping.set()  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def scrape_in_thread(url: str, patience: float) -> tuple[bool, list[scrape.RawSample] | None]:
    """(finished within `patience`, result): a scrape that never returns fails the test
    instead of hanging it."""
    out: list[list[scrape.RawSample] | None] = []
    worker = threading.Thread(target=lambda: out.append(scrape.scrape(url)), daemon=True)
    worker.start()
    worker.join(patience)
    return (not worker.is_alive()), (out[0] if out else None)


def test_a_normal_pod_is_still_read(pod):
    assert scrape.scrape(f"{pod}/ok") == [("perennial_requests_total", {"code": "200"}, 7.0)]


@pytest.mark.parametrize("path", ["/trickle", "/headers"])
def test_a_trickling_pod_is_given_up_on_after_the_total_timeout(pod, path, monkeypatch):
    monkeypatch.setattr(scrape, "TIMEOUT", 1.0)
    # Patience is 10x the deadline: a scrape bounded per read only (1 byte / 0.2 s never
    # trips a 1 s read timeout) would still be reading.
    done, result = scrape_in_thread(f"{pod}{path}", patience=10.0)
    assert done, "the scrape of a trickling pod did not end"
    assert result is None


def test_a_huge_answer_is_refused_not_read_into_memory(pod):
    done, result = scrape_in_thread(f"{pod}/huge", patience=60.0)
    assert done and result is None  # refused past MAX_BYTES, never a million samples


def test_samples_are_capped_even_under_the_byte_limit():
    text = "".join(f'm{{i="{i}"}} 1\n' for i in range(scrape.MAX_SAMPLES + 1))
    assert len(text) < scrape.MAX_BYTES
    with pytest.raises(ValueError, match="samples"):
        scrape.parse_metrics(text)


def test_the_liveness_probe_answers_on_the_event_loop_not_an_executor_thread():
    """kopf runs sync probe handlers on its executor (8 threads); with all 8 busy, /healthz
    timed out and the liveness probe restarted the operator. An async probe answers from
    the event loop whatever the threads do."""
    assert inspect.iscoroutinefunction(handlers_alive)
    assert asyncio.run(handlers_alive()) == "ok"
