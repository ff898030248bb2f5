"""Dead letters: entries that could not be handled, kept with the reason."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from shared.contract import SYS_DLQ
from shared.envelope import now_ns
from shared.logs import get_logger

log = get_logger("optbot.bus.dlq")


def dead_letter_fields(
    *, reason: str, stream: str, entry_id: str, group: str, consumer: str, fields: dict[Any, Any]
) -> dict[bytes, bytes]:
    """Readable header plus every original field under ``orig.<name>``."""
    out: dict[bytes, bytes] = {
        b"type": b"dead_letter",
        b"reason": reason.encode()[:4096],
        b"stream": stream.encode(),
        b"id": entry_id.encode(),
        b"group": group.encode(),
        b"consumer": consumer.encode(),
        b"ts": str(now_ns()).encode(),
    }
    for k, v in fields.items():
        name = k if isinstance(k, bytes) else str(k).encode()
        value = v if isinstance(v, bytes) else str(v).encode()
        out[b"orig." + name] = value
    return out


class DeadLetters:
    """Moves an entry to ``sys:dlq`` and acknowledges it in one transaction."""

    def __init__(self, redis: aioredis.Redis, maxlen: int) -> None:
        self._redis = redis
        self._maxlen = maxlen
        self.count = 0

    async def send(
        self,
        *,
        stream: str,
        group: str,
        consumer: str,
        entry_id: str,
        fields: dict[Any, Any],
        reason: str,
    ) -> None:
        data = dead_letter_fields(
            reason=reason,
            stream=stream,
            entry_id=entry_id,
            group=group,
            consumer=consumer,
            fields=fields,
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(SYS_DLQ, data, maxlen=self._maxlen, approximate=True)  # type: ignore[arg-type]
            pipe.xack(stream, group, entry_id)
            await pipe.execute()
        self.count += 1
        log.warning("dead_lettered", stream=stream, entry=entry_id, group=group, reason=reason)
