"""Plain (group-less) readers for the monitor and ``optbot tail``: they never ack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis

from shared.redis_text import as_str

Entry = tuple[str, str, dict[bytes, bytes]]  # (stream, id, fields)


class TailReader:
    """Follows streams with ``XREAD``; where each stream starts is up to the caller."""

    def __init__(
        self,
        redis: aioredis.Redis,
        streams: list[str],
        *,
        start: str = "$",
        count: int = 500,
        block_ms: int = 1000,
    ) -> None:
        self._redis = redis
        self._cursor: dict[str, str] = dict.fromkeys(streams, start)
        self._count = count
        self._block_ms = block_ms

    async def recent(self, stream: str, count: int) -> list[Entry]:
        """The newest ``count`` entries of ``stream``, oldest first."""
        rows: Any = await self._redis.xrevrange(stream, count=count)
        return [(stream, as_str(i), f) for i, f in reversed(rows)]

    async def pin(self) -> None:
        """Fix where the ``$`` streams start, now: a reader of the current state that
        pins first follows every change published while it reads."""
        await self._pin_cursors()

    async def _pin_cursors(self) -> None:
        """Turn ``$`` into the current last id, so nothing between reads is missed."""
        for stream, cursor in self._cursor.items():
            if cursor == "$":
                rows: Any = await self._redis.xrevrange(stream, count=1)
                self._cursor[stream] = as_str(rows[0][0]) if rows else "0-0"

    async def read(self) -> list[Entry]:
        """Entries after the cursors (blocks up to ``block_ms``), advancing them."""
        await self._pin_cursors()
        cursors: dict[Any, Any] = dict(self._cursor)
        reply: Any = await self._redis.xread(cursors, count=self._count, block=self._block_ms)
        out: list[Entry] = []
        for raw_stream, entries in reply or []:
            stream = as_str(raw_stream)
            for entry_id, fields in entries:
                out.append((stream, as_str(entry_id), fields))
            if entries:
                self._cursor[stream] = as_str(entries[-1][0])
        return out

    async def follow(self) -> AsyncIterator[Entry]:
        """Yield entries as they arrive, forever."""
        while True:
            for entry in await self.read():
                yield entry
