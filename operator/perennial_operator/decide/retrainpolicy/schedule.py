"""Cron schedules (UTC), pure: the clock is always passed in."""

from __future__ import annotations

import datetime as dt

from croniter import croniter  # type: ignore[import-untyped,unused-ignore]


def valid_schedule(schedule: str) -> bool:
    return bool(croniter.is_valid(schedule))


def next_fire(schedule: str, after: dt.datetime) -> dt.datetime:
    """The first fire time strictly after `after` (UTC)."""
    nxt = croniter(schedule, after.astimezone(dt.UTC)).get_next(dt.datetime)
    assert isinstance(nxt, dt.datetime)
    return nxt.astimezone(dt.UTC)


def schedule_due(next_scheduled: dt.datetime | None, now: dt.datetime) -> bool:
    """Due once the recorded fire time has passed. With none recorded yet nothing is due:
    a new (or edited) schedule first waits for its next fire time, as a CronJob does."""
    return next_scheduled is not None and now >= next_scheduled
