"""What ``optbot status`` (and the monitor) report: services, streams, Redis."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared.redis_text import as_str
from shared.registry import ServiceSpec
from shared.streams import ALL_STREAMS, NOTIFIER_CHANNELS, service_key


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


@dataclass
class SystemStatus:
    services: list[ServiceRow]
    streams: list[StreamRow]
    redis: dict[str, str]
    channels: list[ChannelRow] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return bool(self.services) and all(s.alive for s in self.services)


async def service_rows(redis: aioredis.Redis, specs: list[ServiceSpec]) -> list[ServiceRow]:
    now = time.time()
    rows: list[ServiceRow] = []
    for spec in specs:
        raw = await redis.hgetall(service_key(spec.name))
        info = {as_str(k): as_str(v) for k, v in raw.items()}
        if not info:
            rows.append(ServiceRow(spec.name, alive=False))
            continue
        rows.append(
            ServiceRow(
                name=spec.name,
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


async def collect(redis: aioredis.Redis, specs: list[ServiceSpec]) -> SystemStatus:
    info = await redis.info()
    keep = ("redis_version", "uptime_in_seconds", "used_memory_human", "connected_clients",
            "aof_enabled")  # fmt: skip
    return SystemStatus(
        services=await service_rows(redis, specs),
        streams=await stream_rows(redis),
        redis={k: as_str(info.get(k, "")) for k in keep},
        channels=await channel_rows(redis),
    )
