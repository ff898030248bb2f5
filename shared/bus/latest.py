"""Current state from a stream of changes, without a gap before the first change read.

A service that reads "the state now" and then follows its changes loses whatever is
published between the two. The rule: position the follower first (create the
consumer group), then read the newest entry that says the state, then follow; an
entry published in between is then both read and delivered, and ``EntryOrder``
lets the follower ignore deliveries that are not newer than what it already holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from shared.envelope import DecodeError, Message, decode
from shared.redis_text import as_str

PAGE = 500


async def latest_entry(
    redis: aioredis.Redis,
    stream: str,
    entry_type: str,
    pick: Callable[[Message[Any]], bool],
    *,
    limit: int,
) -> Message[Any] | None:
    """The newest entry of ``entry_type`` on ``stream`` that ``pick`` accepts, searching
    back at most ``limit`` entries (other types are skipped without decoding, so a
    flood of errors sharing the stream costs little); None when there is none."""
    wanted = entry_type.encode()
    upper = "+"
    seen = 0
    while seen < limit:  # bounded: at most ``limit`` entries are looked at
        rows: Any = await redis.xrevrange(stream, max=upper, count=min(PAGE, limit - seen))
        if not rows:
            return None
        for raw_id, fields in rows:
            if fields.get(b"type") != wanted:
                continue
            try:
                msg = decode(fields, as_str(raw_id))
            except DecodeError:
                continue
            if pick(msg):
                return msg
        seen += len(rows)
        upper = f"({as_str(rows[-1][0])}"  # exclusive: continue below the oldest seen
    return None


def entry_key(entry_id: str) -> tuple[int, int]:
    """A stream id as a comparable pair (``"0-0"`` for an empty or foreign id)."""
    ms, _, seq = entry_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return 0, 0


class EntryOrder:
    """Remembers the newest entry applied: a redelivered or older one is stale."""

    def __init__(self) -> None:
        self.last = (0, 0)

    def newer(self, entry_id: str) -> bool:
        """True (and remembered) when ``entry_id`` is newer than every one applied."""
        key = entry_key(entry_id)
        if key <= self.last and key != (0, 0):
            return False
        self.last = max(self.last, key)
        return True
