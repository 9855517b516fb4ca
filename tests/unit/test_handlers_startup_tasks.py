"""Background tasks kept in kopf's memo are cancelled and awaited at cleanup."""

from __future__ import annotations

import asyncio

import kopf
import pytest

from perennial_operator.handlers.startup import stop_task

pytestmark = pytest.mark.unit


def test_a_kept_task_is_cancelled_and_awaited_and_a_missing_one_is_no_error() -> None:
    async def scenario() -> tuple[bool, bool]:
        memo = kopf.Memo()
        memo.loop = asyncio.create_task(asyncio.sleep(3600))
        await stop_task(memo, "loop")
        await stop_task(memo, "never-started")
        return memo.loop.cancelled(), memo.loop.done()

    assert asyncio.run(scenario()) == (True, True)
