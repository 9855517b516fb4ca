"""Request rate, error rate and p99 latency of each InferenceService, from its pods' own
Prometheus endpoints (the `prometheus.io/*` annotations the operator puts on them).

Every `interval` seconds each ready serving pod is scraped; per pod the increase since the
previous scrape is taken (a counter that went down means the server restarted: its whole
value is the increase, as Prometheus' increase() does), summed per service, and kept as one
point. History is bounded: `keep` points per service, services that disappear are dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import urllib3
from prometheus_client.parser import text_string_to_metric_families

from perennial_studio import facts
from perennial_studio.store import Obj, Snapshot

log = logging.getLogger("perennial_studio.scrape")
REQUESTS = "perennial_requests_total"
BUCKETS = "perennial_request_duration_seconds_bucket"
MAX_PODS = 200  # per round: a canary of thousands of pods is sampled, not scraped whole


@dataclass(frozen=True)
class Counters:
    requests: float
    errors: float
    buckets: Mapping[float, float]


@dataclass(frozen=True)
class Point:
    time: float  # unix seconds
    rps: float
    error_rate: float | None  # None without requests
    p99_ms: float | None


@dataclass
class ServiceSeries:
    points: deque[Point]
    pods: int = 0
    error: str = ""


def parse_counters(text: str) -> Counters:
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == REQUESTS:
                requests += sample.value
                if str(sample.labels.get("code", "")).startswith("5"):
                    errors += sample.value
            elif sample.name == BUCKETS and "le" in sample.labels:
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    return Counters(requests, errors, buckets)


def increase(before: Counters | None, after: Counters) -> Counters:
    """What a pod counted between two scrapes; everything it shows after a reset."""
    if before is None:
        return Counters(0.0, 0.0, {})
    if after.requests < before.requests or after.errors < before.errors:
        return after
    buckets = {le: max(0.0, v - before.buckets.get(le, 0.0)) for le, v in after.buckets.items()}
    return Counters(after.requests - before.requests, after.errors - before.errors, buckets)


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus' histogram_quantile over cumulative (upper bound -> count) buckets."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in ordered:
        if count >= rank:
            if upper == float("inf"):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def point(at: float, seconds: float, deltas: Iterable[Counters]) -> Point:
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    for d in deltas:
        requests += d.requests
        errors += d.errors
        for le, v in d.buckets.items():
            buckets[le] = buckets.get(le, 0.0) + v
    p99 = histogram_quantile(0.99, buckets) if requests else None
    return Point(
        at,
        requests / seconds if seconds > 0 else 0.0,
        errors / requests if requests else None,
        None if p99 is None else p99 * 1000.0,
    )


def serving_pods(snap: Snapshot) -> dict[tuple[str, str], list[Obj]]:
    """Ready pods with an IP, by (namespace, InferenceService)."""
    found: dict[tuple[str, str], list[Obj]] = {}
    for pod in snap.items("Pod"):
        service = (pod["metadata"].get("labels") or {}).get(facts.LABEL_INFERENCESERVICE)
        status = facts.status(pod)
        if service and status.get("ready") and status.get("podIP"):
            found.setdefault((facts.namespace(pod), service), []).append(pod)
    return found


def metrics_url(pod: Obj) -> str:
    annotations = pod["metadata"].get("annotations") or {}
    port = annotations.get("prometheus.io/port") or "8080"
    path = annotations.get("prometheus.io/path") or "/metrics"
    host = str(facts.status(pod)["podIP"])
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}{path}"


class Scraper:
    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        interval: float = 15.0,
        keep: int = 120,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.snapshot, self.interval, self.keep, self.clock = snapshot, interval, keep, clock
        self.series: dict[tuple[str, str], ServiceSeries] = {}
        self.revision = 0
        self._last: dict[str, tuple[float, Counters]] = {}  # pod uid -> (time, counters)
        self._http = urllib3.PoolManager(num_pools=8, maxsize=8, retries=False)
        self._lock = threading.Lock()

    def get(self, namespace: str, name: str) -> ServiceSeries | None:
        with self._lock:
            return self.series.get((namespace, name))

    def _fetch(self, pod: Obj) -> Counters | None:
        try:
            resp = self._http.request("GET", metrics_url(pod), timeout=2.0)
        except (urllib3.exceptions.HTTPError, OSError):
            return None
        if resp.status != 200:
            return None
        return parse_counters(resp.data.decode("utf-8", "replace"))

    def round(self) -> None:
        """One scrape of every ready serving pod."""
        by_service = serving_pods(self.snapshot())
        pods = [p for group in by_service.values() for p in group][:MAX_PODS]
        with ThreadPoolExecutor(max_workers=8) as pool:
            fetched = dict(
                zip(
                    (str(p["metadata"]["uid"]) for p in pods),
                    pool.map(self._fetch, pods),
                    strict=True,
                )
            )
        now = self.clock()
        with self._lock:
            for key, group in by_service.items():
                deltas, seconds, answered = [], [], 0
                for pod in group:
                    uid = str(pod["metadata"]["uid"])
                    counters = fetched.get(uid)
                    if counters is None:
                        continue
                    answered += 1
                    before = self._last.get(uid)
                    deltas.append(increase(before[1] if before else None, counters))
                    if before:
                        seconds.append(now - before[0])
                    self._last[uid] = (now, counters)
                series = self.series.setdefault(key, ServiceSeries(deque(maxlen=self.keep)))
                series.pods = answered
                series.error = "" if answered else "no pod answered on its metrics port"
                if seconds:
                    series.points.append(point(now, max(seconds), deltas))
            for key in set(self.series) - set(by_service):
                del self.series[key]
            live = {str(p["metadata"]["uid"]) for p in pods}
            self._last = {uid: v for uid, v in self._last.items() if uid in live}
            self.revision += 1

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.round()
            except Exception:  # a scrape must never take the Studio down
                log.exception("scrape round failed")
            stop.wait(self.interval)

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="scraper", daemon=True)
        thread.start()
        return thread
