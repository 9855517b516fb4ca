"""HTTP to serving pods: their Prometheus /metrics, and the drift reference (profile.json).

The operator reaches a pod at `config.pod_url_template` (default http://{ip}:{port}).
Everything here is a plain GET with a short timeout; a pod that does not answer is left
out of the sums and logged, never an exception in a handler.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from typing import Any, Protocol

from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)

TIMEOUT = 3.0
MAX_BYTES = 16 << 20
RawSample = tuple[str, dict[str, str], float]


def pod_url(template: str, ip: str, port: int) -> str:
    return template.format(ip=ip, port=port).rstrip("/")


def _get(url: str) -> bytes:
    # The URL comes from our own template and a pod IP, never from user input.
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:  # noqa: S310
        body: bytes = response.read(MAX_BYTES)
        return body


def parse_metrics(text: str) -> list[RawSample]:
    return [
        (sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


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
            raw = json.loads(_get(f"{base_url}/v2/models/{model}/profile"))
        except (OSError, ValueError) as exc:
            log.warning("no drift reference for %s at %s: %s", model, base_url, exc)
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("features"), list):
            log.warning("drift reference of %s at %s is not a profile.json", model, base_url)
            return None
        with self._lock:
            self._cache[digest] = raw
        return raw
