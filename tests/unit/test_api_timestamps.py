"""The one way the operator reads and writes timestamps."""

from __future__ import annotations

import datetime as dt

import pytest

from perennial_operator.api.timestamps import epoch, format_precise, format_time, parse_time

pytestmark = pytest.mark.unit

UTC = dt.UTC


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-27T14:00:00Z", dt.datetime(2026, 11, 27, 14, tzinfo=UTC)),
        ("2026-11-27T14:00:00.250000Z", dt.datetime(2026, 11, 27, 14, 0, 0, 250000, tzinfo=UTC)),
        ("2026-11-27T15:00:00+01:00", dt.datetime(2026, 11, 27, 14, tzinfo=UTC)),
        ("2026-11-27T14:00:00", dt.datetime(2026, 11, 27, 14, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
    ids=["whole", "micro", "offset", "naive-is-utc", "garbage", "empty", "none"],
)
def test_parse_time(value, expected):
    assert parse_time(value) == expected


def test_round_trips():
    when = dt.datetime(2026, 11, 27, 14, 0, 1, 500000, tzinfo=UTC)
    assert format_time(when) == "2026-11-27T14:00:01Z"
    assert format_time(when.timestamp()) == "2026-11-27T14:00:01Z"
    assert parse_time(format_precise(when)) == when
    assert epoch(format_time(when)) == when.replace(microsecond=0).timestamp()
    assert epoch(None) == 0.0
