"""Leader election on a coordination.k8s.io/v1 Lease: the decisions, free of I/O and clocks.

As in client-go, a replica never compares its clock with the timestamps another replica wrote:
it notes, on its own monotonic clock, when it last saw the Lease *change* and counts the lease
as expired only once `leaseDurationSeconds` have passed since then with no change. The holder
stops acting `renew_deadline` after the start of its last successful renewal; the others wait at
least `lease_duration` after they saw that renewal. The difference between the two is the margin
that absorbs a slow clock or a late-observed write.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class Timings:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def problems(self) -> list[str]:
        """What makes these timings unsafe; empty when they are sound."""
        found = []
        if self.renew_deadline >= self.lease_duration:
            found.append("the renew deadline must be shorter than the lease duration")
        if self.retry_period <= 0:
            found.append("the retry period must be positive")
        # client-go's rule (JitterFactor 1.2): at least one retry fits in the deadline.
        if self.renew_deadline <= 1.2 * self.retry_period:
            found.append("the renew deadline must exceed 1.2 x the retry period")
        return found


@dataclass(frozen=True)
class Record:
    """What the Lease says, as far as the decision cares."""

    holder: str
    lease_duration: float
    resource_version: str
    transitions: int = 0


@dataclass(frozen=True)
class Seen:
    """A record, and when (on our monotonic clock) we first saw it in this state."""

    record: Record
    at: float


class Step(Enum):
    CREATE = "create"  # no Lease yet: create it, holding it
    TAKE = "take"  # free or expired: replace it (guarded by its resourceVersion)
    RENEW = "renew"  # ours: replace it with a fresh renewTime
    WAIT = "wait"  # another replica holds a live lease


def observe(previous: Seen | None, record: Record | None, now: float) -> Seen | None:
    """Keep the first time we saw this exact record; a new resourceVersion restarts the clock."""
    if record is None:
        return None
    if previous is not None and previous.record.resource_version == record.resource_version:
        return previous
    return Seen(record, now)


def decide(seen: Seen | None, me: str, now: float) -> Step:
    if seen is None:
        return Step.CREATE
    record = seen.record
    if record.holder == me:
        return Step.RENEW
    if not record.holder:  # released on a clean shutdown
        return Step.TAKE
    if now >= seen.at + record.lease_duration:
        return Step.TAKE
    return Step.WAIT


def transitions_after(record: Record | None, me: str) -> int:
    """leaseTransitions counts changes of holder, as kubectl and client-go show it."""
    if record is None:
        return 0
    return record.transitions if record.holder == me else record.transitions + 1


def valid_until(renew_started: float, timings: Timings) -> float:
    """Until when the holder may act after a renewal that started at `renew_started`: the
    request's start, not its end, because the server may have written it at any moment after."""
    return renew_started + timings.renew_deadline
