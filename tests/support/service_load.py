"""Bounded load on a Service, routed the way kube-proxy routes it, for tests on the real
node (which has no kube-proxy): every request opens a new connection to one of the
Service's endpoints that its EndpointSlices mark ready, round robin.

Like kube-proxy: endpoints come from the EndpointSlices only (a pod is dropped when the
EndpointSlice controller marks it not ready, which it does as soon as the pod is deleted),
and the routing table is refreshed at most once per `sync_seconds` (kube-proxy's default
--iptables-min-sync-period is 1 s), so a deleted pod may still be sent requests for up to
that long, as in a real cluster. What it does not model: kube-proxy's random choice (this is
round robin), connection tracking of keep-alive connections (every request is a new
connection here), and its fallback to terminating endpoints when none is ready.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client


@dataclass(frozen=True)
class Outcome:
    at: float  # seconds since the load started
    pod: str
    status: int  # 0: no HTTP answer (refused, reset, timed out)
    error: str
    seconds: float


@dataclass
class ServiceLoad:
    api: client.ApiClient
    namespace: str
    service: str
    path: str
    body: dict[str, Any]
    rate: float = 25.0  # requests per second at most
    limit: int = 6000  # and at most this many
    sync_seconds: float = 1.0
    timeout: float = 5.0
    outcomes: list[Outcome] = field(default_factory=list)
    pods_seen: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="service-load", daemon=True)
        self._payload = json.dumps(self.body).encode()

    def __enter__(self) -> ServiceLoad:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 5)

    def endpoints(self) -> list[tuple[str, str, int]]:
        """(pod, ip, port) of the Service's ready endpoints."""
        slices = client.DiscoveryV1Api(self.api).list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={self.service}"
        )
        found = []
        for s in slices.items:
            port = next((p.port for p in s.ports or [] if p.port), None)
            for e in s.endpoints or []:
                ready = e.conditions is None or e.conditions.ready is not False
                if ready and port and e.addresses:
                    pod = e.target_ref.name if e.target_ref is not None else e.addresses[0]
                    found.append((pod, e.addresses[0], int(port)))
        return sorted(found)

    def _run(self) -> None:
        started = time.monotonic()
        table: list[tuple[str, str, int]] = []
        synced, turn = -1e9, 0
        while not self._stop.is_set() and len(self.outcomes) < self.limit:
            now = time.monotonic()
            if now - synced >= self.sync_seconds:
                table, synced = self.endpoints(), now
                self.pods_seen.update(pod for pod, _, _ in table)
            if table:
                pod, ip, port = table[turn % len(table)]
                turn += 1
                self.outcomes.append(self._send(pod, ip, port, now - started))
            self._stop.wait(max(0.0, 1.0 / self.rate - (time.monotonic() - now)))

    def _send(self, pod: str, ip: str, port: int, at: float) -> Outcome:
        sent = time.perf_counter()
        connection = http.client.HTTPConnection(ip, port, timeout=self.timeout)
        try:
            connection.request(
                "POST", self.path, self._payload, {"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            text = response.read()[:200].decode(errors="replace")
            error = "" if response.status == 200 else text
            return Outcome(at, pod, response.status, error, time.perf_counter() - sent)
        except (OSError, http.client.HTTPException) as exc:
            return Outcome(at, pod, 0, f"{type(exc).__name__}: {exc}", time.perf_counter() - sent)
        finally:
            connection.close()

    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != 200]
