"""The order journal: every order-state change and its events in one atomic write.

A Lua script records the "seen" guard (``HSETNX``), updates the hashes that hold
working orders and the simulated account, and XADDs the events, all or nothing.
A crash can therefore never leave a client order id seen without its ack, or a
fill published while the working-order book still shows it unfilled.

Writes are applied in the order they were made, whether awaited by a handler
(``record``) or posted from a synchronous hot path (``post``, retried until Redis
takes it). In-memory state a write changes (the simulated account) rides along as
a ``Booking``: staged on a copy right before the write, adopted only after it
succeeded, so memory never runs ahead of Redis. Behind Redis Sentinel each write
also waits for a replica (``shared/bus/replicas.py``). Note for Redis Cluster: the
keys of one write must share a hash slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared import clock
from shared.bus.replicas import ReplicaWait
from shared.contract import ORDERS_EVENTS, ORDERS_SEEN
from shared.envelope import encode
from shared.logs import get_logger
from shared.schemas import OrderEvent

log = get_logger("optbot.gateway_adapter.journal")


# KEYS[1] guard hash, KEYS[2] events stream, KEYS[3..] hashes written.
# ARGV: guard field, guard value ('' = no guard), maxlen, n hash ops,
#       (op 'set'|'del', key index, field, value)*, n events, (n fields, field, value, ...)*
_APPLY = """
if ARGV[2] ~= '' then
  if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
end
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  local key = KEYS[tonumber(ARGV[i + 1])]
  if ARGV[i] == 'set' then
    redis.call('HSET', key, ARGV[i + 2], ARGV[i + 3])
  else
    redis.call('HDEL', key, ARGV[i + 2])
  end
  i = i + 4
end
local events = tonumber(ARGV[i])
i = i + 1
for _ = 1, events do
  local n = tonumber(ARGV[i])
  local args = {'XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*'}
  for j = 1, n do args[6 + j] = ARGV[i + j] end
  redis.call(unpack(args))
  i = i + n + 1
end
return 1
"""


@dataclass(frozen=True, slots=True)
class HashOp:
    """HSET (``value`` given) or HDEL (``value`` None) of one field."""

    key: str
    field: str
    value: bytes | str | None


class Booking(Protocol):
    """In-memory state changed by a write, staged on a copy and adopted only once written.

    ``stage`` runs right before each attempt (after every earlier write) and returns the
    hash writes that persist the staged state; ``commit`` adopts it after the write
    succeeded. A failed or refused write leaves memory as it was, so a redelivered
    request cannot count the same change twice.
    """

    def stage(self) -> Sequence[HashOp]: ...
    def commit(self) -> None: ...


@dataclass(slots=True)
class Write:
    """One atomic change: optional guard, hash updates, events (in this order)."""

    events: Sequence[OrderEvent] = ()
    hashes: Sequence[HashOp] = ()
    guard: tuple[str, str, str] | None = None  # (hash, field, value): HSETNX or abort
    book: Booking | None = None  # staged state whose hash writes join this write


class OrderJournal:
    """Applies ``Write``s in order through one Lua script."""

    def __init__(
        self,
        redis: aioredis.Redis,
        src: str,
        maxlen: int,
        replicas: ReplicaWait | None = None,
    ) -> None:
        self._redis = redis
        self._replicas = replicas
        self._src = src
        self._maxlen = maxlen
        self._script = redis.register_script(_APPLY)
        self._tail: asyncio.Future[Any] | None = None
        self._posted: set[asyncio.Task[Any]] = set()
        self.writes = 0

    def _args(self, w: Write) -> tuple[list[str], list[Any]]:
        guard_key, guard_field, guard_value = w.guard or (ORDERS_SEEN, "", "")
        keys = [guard_key, ORDERS_EVENTS]
        argv: list[Any] = [guard_field, guard_value, self._maxlen, len(w.hashes)]
        for op in w.hashes:
            if op.key not in keys[2:]:
                keys.append(op.key)
            index = keys.index(op.key, 2) + 1
            argv += ["del" if op.value is None else "set", index, op.field, op.value or ""]
        argv.append(len(w.events))
        for ev in w.events:
            fields = encode(ev, self._src, ev.client_order_id)
            argv.append(len(fields) * 2)
            for k, v in fields.items():
                argv += [k, v]
        return keys, argv

    async def _apply(self, w: Write) -> bool:
        keys, argv = self._args(w)
        if self._replicas is not None and self._replicas.enabled:
            pipe = self._redis.pipeline(transaction=False)
            await self._script(keys=keys, args=argv, client=pipe)  # queued, not sent
            self._replicas.add(pipe)  # the write counts once a replica has it
            applied, acked = await pipe.execute()
            self._replicas.check(acked, ORDERS_EVENTS)
            ok = bool(applied)
        else:
            ok = bool(await self._script(keys=keys, args=argv))
        self.writes += 1
        return ok

    def _enqueue(self, w: Write, retry: bool) -> asyncio.Task[bool]:
        w = _stamped(w)
        prev = self._tail
        task = asyncio.ensure_future(self._after(prev, w, retry))
        self._tail = task
        return task

    async def _after(self, prev: asyncio.Future[Any] | None, w: Write, retry: bool) -> bool:
        if prev is not None and not prev.done():
            await asyncio.wait([prev])
        delay = 0.05
        while True:
            try:
                staged = w if w.book is None else replace(w, hashes=[*w.hashes, *w.book.stage()])
                ok = await self._apply(staged)
                if ok and w.book is not None:
                    w.book.commit()
                return ok
            except RedisError as exc:
                if not retry:
                    raise
                log.warning("journal_write_failed", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def record(self, w: Write) -> bool:
        """Apply ``w`` after every earlier write; False when its guard was already set.

        A Redis error propagates (the request is redelivered; nothing was written).
        """
        return await self._enqueue(w, retry=False)

    def post(self, w: Write) -> None:
        """From synchronous code: apply ``w`` in order, retrying until Redis takes it."""
        task = self._enqueue(w, retry=True)
        self._posted.add(task)
        task.add_done_callback(self._posted.discard)

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait for every queued write (before reloading state from Redis)."""
        if self._tail is not None and not self._tail.done():
            with contextlib.suppress(TimeoutError, RedisError):
                await asyncio.wait_for(asyncio.shield(self._tail), timeout_s)


def _stamped(w: Write) -> Write:
    """Events stamped when recorded, on the trading clock: a fill's time and trading day
    (simulated time in a backtest; the stream entry's ts stays host time)."""
    if all(ev.at for ev in w.events):
        return w
    at = round(clock.current().time(), 6)
    events = [ev if ev.at else msgspec.structs.replace(ev, at=at) for ev in w.events]
    return replace(w, events=events)


def hset(key: str, field_: str, value: bytes | str) -> HashOp:
    return HashOp(key, field_, value)


def hdel(key: str, field_: str) -> HashOp:
    return HashOp(key, field_, None)


def seen_guard(client_order_id: str, payload: str) -> tuple[str, str, str]:
    return (ORDERS_SEEN, client_order_id, payload)
