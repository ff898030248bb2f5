"""Writing test entries and reading back what the notifier wrote."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared.contract import NOTIFIER_CHANNELS, SYS_ALERTS
from shared.envelope import decode, encode
from shared.schemas import Alert, Schema


async def add(redis: aioredis.Redis, stream: str, body: Schema, key: str = "") -> str:
    fields: Any = encode(body, src="test", key=key)
    raw = await redis.xadd(stream, fields)
    return raw.decode() if isinstance(raw, bytes) else str(raw)


async def alerts(redis: aioredis.Redis, src_prefix: str = "notifier") -> list[Alert]:
    """Alerts on sys:alerts written by the notifier's watcher, oldest first."""
    rows: Any = await redis.xrange(SYS_ALERTS)
    out = []
    for entry_id, fields in rows:
        msg = decode(fields, entry_id.decode())
        if msg.src.startswith(src_prefix) and isinstance(msg.body, Alert):
            out.append(msg.body)
    return out


async def channel_health(redis: aioredis.Redis) -> dict[str, dict[str, Any]]:
    raw: Any = await redis.hgetall(NOTIFIER_CHANNELS)
    return {k.decode(): json.loads(v) for k, v in raw.items()}


async def has_group(redis: aioredis.Redis, stream: str) -> bool:
    """The notifier's consumer group on ``stream`` exists (it reads from "$" after that)."""
    try:
        return bool(await redis.xinfo_groups(stream))
    except ResponseError:
        return False
