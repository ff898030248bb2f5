"""A service on simulated time follows ``sys:clock`` and acks every tick (OPTBOT_CLOCK=sim).

The backtest driver XADDs ``ClockTick(t, seq)``; each service moves its ``SimClock`` to
``t``, lets its sync hook catch up with the world outside (the adapter's TWS round
trip), waits until every task the new time woke has parked again and every consumer
batch in hand is handled, writes what it queued, and RPUSHes ``ClockAck(seq, t,
next_deadline)`` to ``sys:clock:ack:{service}``. The driver steps on once every service
has acked. See ``shared/clock.py`` for the whole picture.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.aio import sleep_or_stop
from shared.bus import Publisher
from shared.clock import SimClock
from shared.contract import SYS_CLOCK, clock_ack_key
from shared.envelope import DecodeError, decode
from shared.logs import get_logger
from shared.redis_text import as_str
from shared.schemas import ClockAck, ClockTick

log = get_logger("optbot.clock")

ClockHook = Callable[[float], Awaitable[None]]
Tick = tuple[str, ClockTick]  # (entry id, tick)
Entry = tuple[str, ClockTick | None]  # None: not a tick (logged, skipped)
_BLOCK_MS = 1000


def _ticks(reply: Any) -> list[Entry]:
    out: list[Entry] = []
    for _stream, entries in reply or []:
        for raw_id, fields in entries:
            entry_id = as_str(raw_id)
            try:
                body = decode(fields, entry_id).body
            except DecodeError as exc:
                log.error("clock_tick_undecodable", id=entry_id, reason=exc.reason)
                body = None
            out.append((entry_id, body if isinstance(body, ClockTick) else None))
    return out


async def first_tick(redis: aioredis.Redis, stop: asyncio.Event) -> Tick | None:
    """The tick to start from: the newest on the stream, or the first one to arrive.

    A service that starts after the driver published (or restarts mid-run) takes the
    newest tick, so the driver's wait for its ack is answered either way.
    """
    rows: Any = await redis.xrevrange(SYS_CLOCK, count=1)
    cursor = "0-0"
    if rows:
        cursor, tick = _ticks([(SYS_CLOCK, rows)])[0]
        if tick is not None:
            return cursor, tick
    while not stop.is_set():
        reply = await redis.xread({SYS_CLOCK: cursor}, count=1, block=_BLOCK_MS)
        for cursor, tick in _ticks(reply):
            if tick is not None:
                return cursor, tick
    return None


class ClockFollower:
    """Applies each tick to ``clock`` and acks it once the service has settled."""

    def __init__(
        self,
        redis: aioredis.Redis,
        service: str,
        clock: SimClock,
        publisher: Publisher,
        hook: Callable[[], ClockHook | None],
    ) -> None:
        self._redis = redis
        self._ack_key = clock_ack_key(service)
        self._clock = clock
        self._publisher = publisher
        self._hook = hook
        self.acked = 0

    async def step(self, tick: ClockTick) -> ClockAck:
        """Advance, sync, settle, flush, ack: everything tick ``seq`` asked is done."""
        self._clock.advance(tick.t)
        hook = self._hook()
        if hook is not None:
            await hook(tick.t)
        await self._clock.settled()
        await self._publisher.flush()
        ack = ClockAck(
            seq=tick.seq, t=self._clock.time(), next_deadline=self._clock.next_deadline()
        )
        await self._redis.rpush(self._ack_key, msgspec.json.encode(ack))
        self.acked += 1
        return ack

    async def run(self, first: Tick, stop: asyncio.Event) -> None:
        """Ack ``first``, then follow the stream until ``stop``."""
        cursor, tick = first
        await self.step(tick)
        backoff = 0.1
        while not stop.is_set():
            try:
                reply = await self._redis.xread({SYS_CLOCK: cursor}, count=100, block=_BLOCK_MS)
                for entry_id, entry in _ticks(reply):
                    cursor = entry_id
                    if entry is not None:
                        await self.step(entry)
                backoff = 0.1
            except RedisError as exc:
                log.warning("clock_follow_failed", error=str(exc))
                await sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 5.0)
