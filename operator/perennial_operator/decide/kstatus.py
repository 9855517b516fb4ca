"""The two conditions every kind carries for kstatus (Flux, kpt, cli-utils) and Argo CD.

Ready=True: the object is current (what its spec asks for is done or running as asked).
Ready=False: on its way, the reason says why. Stalled=True: it cannot progress without a
change (kstatus reads it as Failed); Stalled is removed when that is no longer so, as
kstatus' abnormal-true conditions are meant to be. Both carry observedGeneration.
Pure: `now` is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from perennial_operator.api import conditions as c
from perennial_operator.decide.conditions import Condition, get_condition, set_condition


@dataclass(frozen=True)
class Health:
    ready: bool
    reason: str
    message: str
    stalled: bool = False  # implies not ready: Stalled=True with the same reason

    @staticmethod
    def stuck(reason: str, message: str) -> Health:
        return Health(False, reason, message, stalled=True)


def with_health(
    conditions: list[Condition], health: Health, *, generation: int, now: str
) -> list[Condition]:
    """`conditions` with Ready (and Stalled, or without it) set from `health`."""
    ready = health.ready and not health.stalled
    conds = set_condition(
        conditions,
        type_=c.READY,
        status=ready,
        reason=health.reason,
        message=health.message,
        generation=generation,
        now=now,
    )
    if not health.stalled:
        return [x for x in conds if x.get("type") != c.STALLED]
    return set_condition(
        conds,
        type_=c.STALLED,
        status=True,
        reason=health.reason,
        message=health.message,
        generation=generation,
        now=now,
    )


def has_health(conditions: list[Condition], generation: int) -> bool:
    """Ready is there and about `generation` (objects written before it existed lack it)."""
    ready = get_condition(conditions, c.READY)
    return ready is not None and ready.get("observedGeneration") == generation
