"""HTTP to serving pods: their Prometheus /metrics, and the drift reference (profile.json).

The operator reaches a pod at `config.pod_url_template` (default http://{ip}:{port}).
Everything here is a plain GET bounded in total time (TIMEOUT), bytes (MAX_BYTES) and
samples (MAX_SAMPLES); a pod that does not answer within them is left out of the sums and
logged, never an exception in a handler.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import urllib.parse
from typing import Any, Protocol

from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)

TIMEOUT = 3.0  # seconds for the whole request: connect, headers and body
MAX_BYTES = 1 << 20  # a serving pod's /metrics is a few KiB; more is refused, not read
MAX_PROFILE_BYTES = 16 << 20  # the drift reference: fetched once per artifact
MAX_SAMPLES = 20_000
CHUNK = 64 << 10
RawSample = tuple[str, dict[str, str], float]


class TooLarge(ValueError):
    pass


def pod_url(template: str, ip: str, port: int) -> str:
    return template.format(ip=ip, port=port).rstrip("/")


def _get(url: str, *, timeout: float | None = None, max_bytes: int = MAX_BYTES) -> bytes:
    """GET bounded in total time and bytes (issue 20, finding 2): a per-read timeout alone
    lets a pod trickling one byte a second hold the caller forever. A timer shuts the
    socket down at the deadline, which ends any read (headers included) at once."""
    timeout = TIMEOUT if timeout is None else timeout
    parts = urllib.parse.urlsplit(url)
    conn_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    conn = conn_class(parts.hostname or "", parts.port, timeout=timeout)
    expired = threading.Event()
    held: list[socket.socket] = []  # the connection drops its socket once the body is read

    def _cut() -> None:
        expired.set()
        for sock in held:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(timeout, _cut)
    timer.daemon = True
    timer.start()
    try:
        conn.connect()
        if conn.sock is not None:
            held.append(conn.sock)
        if expired.is_set():  # the deadline passed while connecting
            raise TimeoutError(f"no connection within {timeout} s")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path or "/", headers={"Accept": "text/plain, application/json"})
        response = conn.getresponse()
        if response.status != 200:
            raise OSError(f"HTTP {response.status}")
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise TooLarge(f"{declared} bytes declared, more than {max_bytes}")
        body = bytearray()
        while chunk := response.read1(CHUNK):
            body += chunk
            if len(body) > max_bytes:
                raise TooLarge(f"more than {max_bytes} bytes")
        if expired.is_set():
            raise TimeoutError(f"no complete answer within {timeout} s")
        return bytes(body)
    except (http.client.HTTPException, OSError) as exc:
        if expired.is_set():
            raise TimeoutError(f"no complete answer within {timeout} s") from exc
        raise OSError(str(exc)) from exc
    finally:
        timer.cancel()
        conn.close()


def parse_metrics(text: str, max_samples: int = MAX_SAMPLES) -> list[RawSample]:
    samples: list[RawSample] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.append((sample.name, dict(sample.labels), float(sample.value)))
            if len(samples) > max_samples:
                raise TooLarge(f"more than {max_samples} samples")
    return samples


def scrape(base_url: str) -> list[RawSample] | None:
    """Every sample of one pod's /metrics, or None when the pod did not answer."""
    try:
        return parse_metrics(_get(f"{base_url}/metrics").decode("utf-8", errors="replace"))
    except (OSError, ValueError) as exc:  # URLError and timeouts are OSErrors
        log.warning("could not scrape %s/metrics: %s", base_url, exc)
        return None


class ReferenceSource(Protocol):
    """Where the drift reference of a model version comes from."""

    def profile(self, base_url: str, model: str, digest: str) -> dict[str, Any] | None:
        """The profile of the model served at base_url; `digest` is its artifact sha256."""
        ...


class PodProfileSource:
    """profile.json as the server publishes it at GET /v2/models/<name>/profile.

    An artifact (named by its sha256) never changes, so each is fetched once per process.
    """

    def __init__(self) -> None:
        self._cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def profile(self, base_url: str, model: str, digest: str) -> dict[str, Any] | None:
        with self._lock:
            if digest in self._cache:
                return self._cache[digest]
        try:
            raw = json.loads(
                _get(f"{base_url}/v2/models/{model}/profile", max_bytes=MAX_PROFILE_BYTES)
            )
        except (OSError, ValueError) as exc:
            log.warning("no drift reference for %s at %s: %s", model, base_url, exc)
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("features"), list):
            log.warning("drift reference of %s at %s is not a profile.json", model, base_url)
            return None
        with self._lock:
            self._cache[digest] = raw
        return raw
