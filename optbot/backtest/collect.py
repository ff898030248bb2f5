"""What a backtest did, read back from the streams after the run (never from a service).

Every entry is put on simulated time by the clock stream (``Timeline``): the decoded
messages of ``orders:requests``, ``orders:events``, ``strategy:decisions`` and
``sys:control`` carry as ``ts`` the simulated instant they were written at, which is
what the report (``record.record_from_messages``) books them at. The ledger's own
figures (``strategy:pnl``, ``strategy:equity``) are read too, to compare.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis

from optbot.backtest.invariants import Timeline
from shared.contract import (
    ORDERS_EVENTS,
    ORDERS_REQUESTS,
    STRATEGY_DECISIONS,
    STRATEGY_EQUITY,
    STRATEGY_PNL,
    SYS_CONTROL,
)
from shared.envelope import DecodeError, Message, decode
from shared.performance import FillRecord, fills_from_messages

RECORD_STREAMS = (ORDERS_REQUESTS, ORDERS_EVENTS, STRATEGY_DECISIONS, SYS_CONTROL)


@dataclass
class Collected:
    """The run as the streams recorded it, on simulated time."""

    timeline: Timeline  # Redis entry id -> simulated time
    ticks: int  # clock ticks the driver wrote
    messages: list[Message[Any]]  # RECORD_STREAMS, each in stream order, ts = simulated ns
    pnl: dict[str, str]  # the strategy ledger's strategy:pnl, as written
    equity: list[dict[str, Any]] = field(default_factory=list)  # strategy:equity points

    @property
    def fills(self) -> list[FillRecord]:
        return fills_from_messages(self.messages)

    def ledger(self, name: str) -> Decimal | None:
        """A figure of the ledger's ``strategy:pnl`` (None before its first write)."""
        value = self.pnl.get(name)
        return Decimal(value) if value else None


async def read_timeline(redis: aioredis.Redis, clock_stream: str) -> tuple[Timeline, int]:
    """Each clock tick's Redis time (ms) and simulated ``t``, from the driver's stream."""
    rows: Any = await redis.xrange(clock_stream)
    ticks: list[tuple[int, float]] = []
    for entry_id, fields in rows:
        try:
            body = decode(fields).body
        except DecodeError:
            continue
        t = getattr(body, "t", None)
        if isinstance(t, float | int):
            ticks.append((int(entry_id.decode().split("-")[0]), float(t)))
    return Timeline(ticks), len(ticks)


async def read_messages(
    redis: aioredis.Redis, stream: str, timeline: Timeline
) -> list[Message[Any]]:
    """A stream's decodable entries, each stamped with its simulated time (ns)."""
    rows: Any = await redis.xrange(stream)
    out: list[Message[Any]] = []
    for entry_id, fields in rows:
        try:
            msg = decode(fields, entry_id.decode())
        except DecodeError:
            continue  # the fault suite counts dead letters; the report skips them
        out.append(dataclasses.replace(msg, ts=round(timeline(entry_id) * 1e9)))
    return out


async def collect(redis: aioredis.Redis, clock_stream: str) -> Collected:
    timeline, ticks = await read_timeline(redis, clock_stream)
    messages: list[Message[Any]] = []
    for stream in RECORD_STREAMS:
        messages += await read_messages(redis, stream, timeline)
    raw: Any = await redis.hgetall(STRATEGY_PNL)
    pnl = {k.decode(): v.decode() for k, v in raw.items()}
    points: Any = await redis.lrange(STRATEGY_EQUITY, 0, -1)
    return Collected(timeline, ticks, messages, pnl, [json.loads(p) for p in points])
