"""Ready and Stalled as kstatus reads them: set together, Stalled removed when it no longer
holds, transition times moving only on a flip."""

from __future__ import annotations

import pytest

from perennial_operator.decide.kstatus import Health, has_health, with_health

pytestmark = pytest.mark.unit

T0, T1 = "2026-11-27T12:00:00Z", "2026-11-27T12:05:00Z"


def kinds(conds):
    return {c["type"]: (c["status"], c["reason"]) for c in conds}


CASES = [
    # id, health -> {type: (status, reason)}
    ("ready", Health(True, "Ok", "fine"), {"Ready": ("True", "Ok")}),
    ("on-its-way", Health(False, "Training", "in pod p"), {"Ready": ("False", "Training")}),
    ("stuck", Health.stuck("BackoffLimitExceeded", "failed 3 times"),
     {"Ready": ("False", "BackoffLimitExceeded"), "Stalled": ("True", "BackoffLimitExceeded")}),
    ("stalled-wins-over-ready", Health(True, "X", "m", stalled=True),
     {"Ready": ("False", "X"), "Stalled": ("True", "X")}),
]  # fmt: skip


@pytest.mark.parametrize(("health", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_with_health(health, want):
    other = {"type": "Complete", "status": "True", "reason": "R", "message": "",
             "lastTransitionTime": T0, "observedGeneration": 1}  # fmt: skip
    conds = with_health([other], health, generation=4, now=T1)
    assert kinds(conds) == {"Complete": ("True", "R"), **want}
    assert all(c["observedGeneration"] == 4 for c in conds if c["type"] != "Complete")


def test_stalled_goes_and_ready_flips_with_a_new_transition_time():
    stuck = with_health([], Health.stuck("Degraded", "1/2"), generation=1, now=T0)
    healed = with_health(stuck, Health(True, "ReplicasReady", "2/2"), generation=1, now=T1)
    assert kinds(healed) == {"Ready": ("True", "ReplicasReady")}
    assert healed[0]["lastTransitionTime"] == T1
    again = with_health(healed, Health(True, "ReplicasReady", "2/2"), generation=1, now="later")
    assert again[0]["lastTransitionTime"] == T1


def test_has_health_is_about_the_generation():
    conds = with_health([], Health(True, "Ok", ""), generation=2, now=T0)
    assert has_health(conds, 2) and not has_health(conds, 3) and not has_health([], 1)
