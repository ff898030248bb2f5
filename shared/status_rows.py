"""What the services, streams and notifier channels report in Redis, as rows.

Read by ``optbot status`` and by the monitor alike.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared.contract import ALL_STREAMS, NOTIFIER_CHANNELS, service_key
from shared.redis_text import as_str


@dataclass
class ServiceRow:
    name: str
    alive: bool
    pid: str = ""
    uptime_s: float = 0.0
    heartbeat_age_s: float = 0.0
    lag: int = 0
    state: str = ""


@dataclass
class StreamRow:
    name: str
    length: int
    groups: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pending(self) -> int:
        return sum(int(g.get("pending", 0)) for g in self.groups)


@dataclass
class ChannelRow:
    """One notifier channel (id only: the URL is a secret) and its delivery health."""

    id: str
    state: str
    sent: int = 0
    failures: int = 0
    queued: int = 0
    last_error: str = ""


async def service_rows(redis: aioredis.Redis, names: Sequence[str]) -> list[ServiceRow]:
    now = time.time()
    rows: list[ServiceRow] = []
    for name in names:
        raw = await redis.hgetall(service_key(name))
        info = {as_str(k): as_str(v) for k, v in raw.items()}
        if not info:
            rows.append(ServiceRow(name, alive=False))
            continue
        rows.append(
            ServiceRow(
                name=name,
                alive=True,
                pid=info.get("pid", ""),
                uptime_s=now - float(info.get("started", now)),
                heartbeat_age_s=now - float(info.get("heartbeat", now)),
                lag=int(info.get("lag", "0")),
                state=info.get("state", ""),
            )
        )
    return rows


async def stream_rows(
    redis: aioredis.Redis, names: tuple[str, ...] = ALL_STREAMS
) -> list[StreamRow]:
    rows: list[StreamRow] = []
    for name in names:
        length = int(await redis.xlen(name))
        groups: list[dict[str, Any]] = []
        if length or await redis.exists(name):
            try:
                groups = [
                    {as_str(k): as_str(v) for k, v in g.items()}
                    for g in await redis.xinfo_groups(name)
                ]
            except ResponseError:
                groups = []
        rows.append(StreamRow(name, length, groups))
    return rows


async def channel_rows(redis: aioredis.Redis) -> list[ChannelRow]:
    """The notifier's channels as it last reported them (``notifier:channels``)."""
    raw: dict[Any, Any] = await redis.hgetall(NOTIFIER_CHANNELS)
    rows: list[ChannelRow] = []
    for k, v in sorted(raw.items()):
        try:
            h = json.loads(v)
        except ValueError:
            continue
        rows.append(
            ChannelRow(
                id=as_str(k),
                state=str(h.get("state", "")),
                sent=int(h.get("sent", 0)),
                failures=int(h.get("failures", 0)),
                queued=int(h.get("queued", 0)),
                last_error=str(h.get("last_error", "")),
            )
        )
    return rows
