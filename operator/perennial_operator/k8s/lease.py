"""Leader election on a coordination.k8s.io/v1 Lease: the I/O and the loops around
decide/leader.py. Blocking calls on the Kubernetes client, run by the main thread before kopf
starts (acquire) and by one daemon thread while it runs (keep).

Every write is a create (409 when another replica created it first) or a replace guarded by
the resourceVersion we read (409 when anyone wrote in between), so of two replicas racing for
the same Lease the API server lets exactly one win.
"""

from __future__ import annotations

import datetime
import logging
import random
import threading
import time
from collections.abc import Callable
from enum import Enum

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from perennial_operator.decide import leader
from perennial_operator.decide.leader import Record, Step, Timings

log = logging.getLogger("perennial.leader")


class LeadershipLost(Exception):
    """A write was refused because this replica no longer holds the Lease."""


class Outcome(Enum):
    HELD = "held"  # we hold it, renewed just now
    OTHER = "other"  # another replica holds a live lease
    UNKNOWN = "unknown"  # the API server did not answer, or we lost a race: try again


class LeaseElector:
    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        name: str,
        identity: str,
        timings: Timings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.coordination = client.CoordinationV1Api(api)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timings = timings
        self.clock = clock
        self._seen: leader.Seen | None = None
        self._valid_until = float("-inf")
        self._acquired: datetime.datetime | None = None

    # --- what the rest of the process asks ---------------------------------------------

    def holds(self) -> bool:
        return self.clock() < self._valid_until

    def fence(self) -> None:
        """Called before every write the operator makes: refuse it past the renew deadline."""
        if not self.holds():
            raise LeadershipLost(f"{self.identity} no longer holds lease {self.name}")

    # --- the loops ----------------------------------------------------------------------

    def acquire(self, stop: threading.Event) -> bool:
        """Block until we hold the Lease (True) or `stop` is set (False)."""
        announced = False
        while not stop.is_set():
            outcome = self.try_once()
            if outcome is Outcome.HELD:
                log.info("%s acquired lease %s/%s", self.identity, self.namespace, self.name)
                return True
            if outcome is Outcome.OTHER and not announced and self._seen is not None:
                log.info("waiting for lease %s, held by %s", self.name, self._seen.record.holder)
                announced = True
            # Jitter, as client-go: replicas started together do not retry in lockstep.
            stop.wait(self.timings.retry_period * (1 + 0.2 * random.random()))
        return False

    def keep(self, stop: threading.Event, on_lost: Callable[[str], None]) -> None:
        """Renew every retry period until `stop`; call `on_lost` once the lease is gone: at
        once if another replica holds it, else when the renew deadline passes unrenewed."""
        while True:
            # Wake at the deadline at the latest, so losing it is noticed on time.
            left = self._valid_until - self.clock()
            if stop.wait(max(0.0, min(self.timings.retry_period, left))):
                return
            outcome = self.try_once()
            if outcome is Outcome.OTHER:
                on_lost("another replica holds the lease")
                return
            if outcome is Outcome.UNKNOWN and not self.holds():
                on_lost(f"not renewed within {self.timings.renew_deadline:g}s")
                return

    def release(self) -> None:
        """Hand the Lease over on a clean shutdown, so a standby need not wait it out."""
        if not self.holds() or self._seen is None:
            return
        body = self._body(self._seen.record, holder="", duration=1)
        try:
            self.coordination.replace_namespaced_lease(
                self.name, self.namespace, body, _request_timeout=self.timings.retry_period
            )
            log.info("%s released lease %s", self.identity, self.name)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("could not release lease %s: %s", self.name, exc)
        self._valid_until = float("-inf")

    # --- one round --------------------------------------------------------------------------

    def try_once(self) -> Outcome:
        started = self.clock()
        timeout = self._request_timeout(started)
        try:
            record = self._read(timeout)
            self._seen = leader.observe(self._seen, record, started)
            step = leader.decide(self._seen, self.identity, started)
            if step is Step.WAIT:
                return Outcome.OTHER
            written = self._write(step, record, timeout)
        except ApiException as exc:
            if exc.status != 409:
                log.warning("lease %s: HTTP %s %s", self.name, exc.status, exc.reason)
            return Outcome.UNKNOWN
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("lease %s: %s", self.name, exc)
            return Outcome.UNKNOWN
        self._valid_until = leader.valid_until(started, self.timings)
        self._seen = leader.observe(None, written, started)
        return Outcome.HELD

    def _request_timeout(self, now: float) -> float:
        # A renewal that cannot finish before the deadline is worthless: give up on it then.
        left = self._valid_until - now
        if left <= 0:
            return self.timings.renew_deadline
        return max(1.0, min(self.timings.renew_deadline, left))

    def _read(self, timeout: float) -> Record | None:
        try:
            lease = self.coordination.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return _record(lease)

    def _write(self, step: Step, current: Record | None, timeout: float) -> Record:
        duration = max(1, round(self.timings.lease_duration))
        if step is Step.CREATE:
            created = self.coordination.create_namespaced_lease(
                self.namespace,
                self._body(None, holder=self.identity, duration=duration),
                _request_timeout=timeout,
            )
            return _record(created)
        assert current is not None
        replaced = self.coordination.replace_namespaced_lease(
            self.name,
            self.namespace,
            self._body(current, holder=self.identity, duration=duration),
            _request_timeout=timeout,
        )
        return _record(replaced)

    def _body(self, current: Record | None, *, holder: str, duration: int) -> client.V1Lease:
        now = datetime.datetime.now(datetime.UTC)
        taking = current is None or current.holder != holder
        spec = client.V1LeaseSpec(
            holder_identity=holder,
            lease_duration_seconds=duration,
            renew_time=now,
            lease_transitions=leader.transitions_after(current, holder),
        )
        if taking or self._acquired is None:
            self._acquired = now
        spec.acquire_time = self._acquired
        metadata = client.V1ObjectMeta(name=self.name, namespace=self.namespace)
        if current is not None:
            metadata.resource_version = current.resource_version
        return client.V1Lease(metadata=metadata, spec=spec)


def _record(lease: client.V1Lease) -> Record:
    spec = lease.spec or client.V1LeaseSpec()
    return Record(
        holder=spec.holder_identity or "",
        lease_duration=float(spec.lease_duration_seconds or 0),
        resource_version=str(lease.metadata.resource_version if lease.metadata else ""),
        transitions=int(spec.lease_transitions or 0),
    )
