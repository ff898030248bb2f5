"""Start-up replay: the order streams from the beginning rebuild book and ledger.

Requests first (which orders exist, which reprices and cancels were sent), then
events (acks, fills, cancels). The last event id is where the live consumer group
starts, so nothing between the replay and the group is missed; whatever the
group delivers again is ignored by the ledger's fill keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from services.strategy.desk import Books
from services.strategy.ledger import fill_from_event
from shared import clock
from shared.contract import ORDERS_EVENTS, ORDERS_REQUESTS
from shared.envelope import DecodeError, Message, decode
from shared.logs import get_logger
from shared.redis_text import as_str
from shared.schemas import OrderCancel, OrderEvent, OrderModify, OrderNew

log = get_logger("optbot.strategy.rebuild")

PAGE = 1000


async def replay(
    redis: aioredis.Redis, stream: str, handle: Callable[[Message[Any]], object]
) -> tuple[str, int]:
    """Feed every decodable entry of ``stream`` to ``handle``; returns (last id, count)."""
    last, count, low = "0", 0, "-"
    while True:
        rows: Any = await redis.xrange(stream, min=low, max="+", count=PAGE)
        for raw_id, fields in rows:
            entry_id = as_str(raw_id)
            last = entry_id
            try:
                msg = decode(fields, entry_id)
            except DecodeError:
                continue  # the live consumer dead-letters it
            handle(msg)
            count += 1
        if len(rows) < PAGE:
            return last, count
        low = f"({last}"


def apply_request(books: Books, msg: Message[Any], interval_s: float) -> None:
    # Place the replayed request in monotonic time by its age, so the order-rate limit
    # counts only what was really sent in the last minute (not every replayed order).
    age = max(0.0, time.time() - msg.ts / 1e9)
    body, now = msg.body, clock.current().monotonic() - age
    if isinstance(body, OrderNew):
        books.orders.on_request(body, now, interval_s)
    elif isinstance(body, OrderModify):
        books.orders.on_modify(body, now, interval_s)
    elif isinstance(body, OrderCancel):
        books.orders.on_cancel(body)


def apply_event(books: Books, msg: Message[Any]) -> bool:
    """Book one order event; True when it was a new fill."""
    body = msg.body
    if not isinstance(body, OrderEvent):
        return False
    books.orders.on_event(body)
    fill = fill_from_event(body, msg.ts)
    return fill is not None and books.ledger.apply(fill)


async def rebuild(redis: aioredis.Redis, books: Books, interval_s: float) -> str:
    """Replay both order streams; returns the id the live events group starts after."""
    started = time.monotonic()
    _, requests = await replay(
        redis, ORDERS_REQUESTS, lambda m: apply_request(books, m, interval_s)
    )
    last, events = await replay(redis, ORDERS_EVENTS, lambda m: apply_event(books, m))
    log.info(
        "ledger_rebuilt",
        requests=requests,
        events=events,
        fills=books.ledger.fills,
        positions=sorted(books.ledger.positions),
        working=sorted(books.orders.working),
        seconds=round(time.monotonic() - started, 3),
    )
    return last
