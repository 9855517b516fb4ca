from __future__ import annotations

import datetime as dt

import pytest

from perennial_operator.decide.retrainpolicy.schedule import next_fire, schedule_due, valid_schedule

pytestmark = pytest.mark.unit

FRI_1400 = dt.datetime(2026, 11, 27, 14, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("0 3 * * 0", FRI_1400, dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.UTC)),
        ("*/15 * * * *", FRI_1400, dt.datetime(2026, 11, 27, 14, 15, tzinfo=dt.UTC)),
        ("@daily", FRI_1400, dt.datetime(2026, 11, 28, 0, 0, tzinfo=dt.UTC)),
        ("0 14 * * *", FRI_1400, dt.datetime(2026, 11, 28, 14, 0, tzinfo=dt.UTC)),
    ],
    ids=["weekly-sunday", "every-15-min", "macro-daily", "strictly-after"],
)
def test_next_fire(schedule, after, expected):
    assert next_fire(schedule, after) == expected


@pytest.mark.parametrize(
    ("recorded", "now", "due"),
    [
        (None, FRI_1400, False),
        (FRI_1400, FRI_1400, True),
        (FRI_1400, FRI_1400 + dt.timedelta(hours=5), True),
        (FRI_1400 + dt.timedelta(seconds=1), FRI_1400, False),
    ],
    ids=["nothing-recorded", "at-fire-time", "missed-while-down", "not-yet"],
)
def test_schedule_due(recorded, now, due):
    assert schedule_due(recorded, now) is due


@pytest.mark.parametrize(
    ("schedule", "valid"),
    [("0 3 * * 0", True), ("@weekly", True), ("61 * * * *", False), ("a b c d e", False)],
    ids=["five-fields", "macro", "minute-out-of-range", "words"],
)
def test_valid_schedule(schedule, valid):
    assert valid_schedule(schedule) is valid
