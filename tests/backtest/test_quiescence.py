"""The driver's "is the bus quiet" check against a real Redis and a real consumer group."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from optbot.backtest.quiescence import Quiescence

CLOCK = "sys:clock"


async def test_quiet_when_the_group_has_read_and_acked_everything(
    redis: aioredis.Redis,
) -> None:
    q = Quiescence(redis, CLOCK)
    assert (await q.state()).idle
    await redis.xgroup_create("md:ticks", "strategy", id="$", mkstream=True)
    first = await q.state()
    assert first.idle and first.added == 0

    await redis.xadd("md:ticks", {"k": "1"})
    unread = await q.state()
    assert not unread.idle and unread.added == 1
    assert unread.busy[0].startswith("md:ticks/strategy")

    rows: Any = await redis.xreadgroup("strategy", "c1", {"md:ticks": ">"}, count=10)
    delivered = await q.state()
    assert not delivered.idle and "pending=1" in delivered.busy[0]  # read, not acked yet

    await redis.xack("md:ticks", "strategy", rows[0][1][0][0])
    quiet, now = await q.quiet_since(unread.added)
    assert quiet and now.added == 1


async def test_a_new_entry_without_a_group_breaks_quiet_since(redis: aioredis.Redis) -> None:
    """A stream nobody consumes (gw:status before a reader exists) still counts as activity."""
    q = Quiescence(redis, CLOCK)
    before = await q.state()
    await redis.xadd("gw:status", {"k": "1"})
    quiet, now = await q.quiet_since(before.added)
    assert not quiet and now.idle and now.added == before.added + 1


async def test_the_clock_stream_and_trimmed_streams(redis: aioredis.Redis) -> None:
    q = Quiescence(redis, CLOCK)
    await redis.xgroup_create(CLOCK, "x", id="$", mkstream=True)
    await redis.xadd(CLOCK, {"t": "1"})  # the driver's own writes are not activity
    assert (await q.state()) == (await q.state()) and (await q.state()).idle
    await redis.xgroup_create("md:ticks", "strategy", id="$", mkstream=True)
    for i in range(20):
        await redis.xadd("md:ticks", {"i": str(i)}, maxlen=5, approximate=False)
    assert not (await q.state()).idle  # trimmed past the group: lag unknown, still busy
    while await redis.xreadgroup("strategy", "c", {"md:ticks": ">"}, count=100, noack=True):
        pass
    state = await q.state()
    assert state.idle and state.added == 20


async def test_a_group_created_beyond_an_empty_stream_is_not_behind(
    redis: aioredis.Redis,
) -> None:
    """The strategy creates its sys:control group at a known id on an empty stream."""
    q = Quiescence(redis, CLOCK)
    await redis.xgroup_create("sys:control", "strategy", id="1796285085350-0", mkstream=True)
    assert (await q.state()).idle
