"""What ``optbot status`` reports: services, streams, notifier channels, Redis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from shared.redis_text import as_str
from shared.status_rows import (
    ChannelRow,
    ServiceRow,
    StreamRow,
    channel_rows,
    service_rows,
    stream_rows,
)


@dataclass
class SystemStatus:
    services: list[ServiceRow]
    streams: list[StreamRow]
    redis: dict[str, str]
    channels: list[ChannelRow] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return bool(self.services) and all(s.alive for s in self.services)


async def collect(redis: aioredis.Redis, names: Sequence[str]) -> SystemStatus:
    info = await redis.info()
    keep = ("redis_version", "uptime_in_seconds", "used_memory_human", "connected_clients",
            "aof_enabled")  # fmt: skip
    return SystemStatus(
        services=await service_rows(redis, names),
        streams=await stream_rows(redis),
        redis={k: as_str(info.get(k, "")) for k in keep},
        channels=await channel_rows(redis),
    )
