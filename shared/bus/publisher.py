"""Batched publisher: one pipeline round trip per batch of entries.

redis-py reaches ~50k XADD/s pipelined but ~7k/s one call at a time, so the hot
path queues entries (and "latest value" hash writes) and a background task
flushes them together, after at most ``linger`` or as soon as a batch is full.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError, RedisError

from shared.aio import wait_any
from shared.bus.replicas import ReplicaWait
from shared.envelope import encode
from shared.logs import get_logger
from shared.redis_text import as_str
from shared.schemas import Schema
from shared.settings import Settings

log = get_logger("optbot.bus.publisher")

# An op is (kind, key, data, n): "x" XADD with MAXLEN ~n, "h" HSET, "r" DEL+HSET,
# "l" RPUSH then LTRIM to the last n items.
_Op = tuple[str, str, Any, int]


class Publisher:
    """Queues entries and writes them in pipelined batches, capped by ``MAXLEN ~``."""

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: Settings,
        src: str,
        *,
        max_buffer: int = 200_000,
    ) -> None:
        self._redis = redis
        self._settings = settings
        self._src = src
        self._batch = settings.publish_batch
        self._linger = settings.publish_linger_ms / 1000.0
        self._ops: deque[_Op] = deque()
        self._max_buffer = max_buffer
        self._has_data = asyncio.Event()
        self._full = asyncio.Event()
        self._maxlen_cache: dict[str, int] = {}
        self._flush_lock = asyncio.Lock()  # keeps entries in order across flushers
        self.replicas = ReplicaWait(settings)
        self.round_trips = 0
        self.published = 0
        self.dropped = 0
        self.errors = 0
        self.refused = 0  # ops Redis refused for good (NOPERM), logged and dropped

    @property
    def src(self) -> str:
        return self._src

    @property
    def backlog(self) -> int:
        return len(self._ops)

    def _maxlen(self, stream: str) -> int:
        cap = self._maxlen_cache.get(stream)
        if cap is None:
            cap = self._maxlen_cache[stream] = self._settings.maxlen(stream)
        return cap

    def _push(self, op: _Op) -> None:
        if len(self._ops) >= self._max_buffer:
            self._ops.popleft()
            self.dropped += 1
        self._ops.append(op)
        self._has_data.set()
        if len(self._ops) >= self._batch:
            self._full.set()

    def add(self, stream: str, body: Schema, key: str = "", ts: int | None = None) -> None:
        """Queue one entry; the background flusher (or ``flush``) writes it."""
        self._push(("x", stream, encode(body, self._src, key, ts), self._maxlen(stream)))

    def add_fields(self, stream: str, fields: Mapping[bytes, bytes]) -> None:
        """Queue pre-encoded fields (for callers that encode once, publish many)."""
        self._push(("x", stream, fields, self._maxlen(stream)))

    def add_hash(self, key: str, mapping: Mapping[str, Any], *, replace: bool = False) -> None:
        """Queue an HSET that rides in the same round trip as the entries.

        ``replace`` deletes the hash first, so fields absent from ``mapping`` go away.
        """
        self._push(("r" if replace else "h", key, mapping, 0))

    def add_list(self, key: str, value: bytes | str, keep: int) -> None:
        """Queue an RPUSH that keeps only the newest ``keep`` items (a window)."""
        self._push(("l", key, value, keep))

    async def publish(self, stream: str, body: Schema, key: str = "") -> str:
        """Write one entry now and return its id: for orders and control, not ticks.

        An order-path entry in Sentinel mode returns once a replica has it too.
        """
        fields: Any = encode(body, self._src, key)
        if self.replicas.applies_to(stream):
            pipe = self._redis.pipeline(transaction=False)
            pipe.xadd(stream, fields, maxlen=self._maxlen(stream), approximate=True)
            self.replicas.add(pipe)
            entry_id, acked = await pipe.execute()
            self.replicas.check(acked, stream)
        else:
            entry_id = await self._redis.xadd(
                stream, fields, maxlen=self._maxlen(stream), approximate=True
            )
        self.round_trips += 1
        self.published += 1
        return as_str(entry_id)

    async def flush(self) -> int:
        """Write everything queued, one pipeline per batch; returns entries written.

        On a Redis error the unsent ops go back to the front of the queue, so a
        short outage delays entries instead of losing them.
        """
        written = 0
        async with self._flush_lock:
            while self._ops:
                take = min(self._batch, len(self._ops))
                chunk = [self._ops.popleft() for _ in range(take)]
                try:
                    written += await self._write(chunk)
                except RedisError:
                    self._ops.extendleft(reversed(chunk))
                    self.errors += 1
                    raise
            self._has_data.clear()
            self._full.clear()
        return written

    async def _write(self, chunk: list[_Op]) -> int:
        pipe = self._redis.pipeline(transaction=False)
        entries = 0
        for kind, target, data, n in chunk:
            if kind == "x":
                pipe.xadd(target, data, maxlen=n, approximate=True)
                entries += 1
            elif kind == "l":
                pipe.rpush(target, data)
                pipe.ltrim(target, -n, -1)
            else:
                if kind == "r":
                    pipe.delete(target)
                pipe.hset(target, mapping=dict(data))
        results = await pipe.execute(raise_on_error=False)
        self.round_trips += 1
        entries -= self._drop_refused(chunk, results)
        failed = [
            r for r in results if isinstance(r, RedisError) and not isinstance(r, NoPermissionError)
        ]
        if failed:
            raise failed[0]  # transient (READONLY, OOM …): the chunk is retried
        self.published += entries
        return entries

    def _drop_refused(self, chunk: list[_Op], results: list[Any]) -> int:
        """Log and drop the ops refused with NOPERM (outside this service's ACL user).

        A refusal is permanent: retrying the chunk would wedge the queue and write its
        batch-mates again on every attempt. Returns how many stream entries were refused.
        """
        at, entries, keys, first = 0, 0, [], None
        for kind, target, _data, _n in chunk:
            width = 2 if kind in ("l", "r") else 1
            denied = [r for r in results[at : at + width] if isinstance(r, NoPermissionError)]
            at += width
            if denied:
                first = first or denied[0]
                keys.append(target)
                entries += kind == "x"
        if keys:
            self.refused += len(keys)
            log.error("publish_refused", keys=sorted(set(keys)), ops=len(keys), error=str(first))
        return entries

    async def run(self, stop: asyncio.Event) -> None:
        """Flush in the background until ``stop``; then flush what is left."""
        backoff = 0.05
        while not stop.is_set():
            await wait_any(self._has_data, stop)
            if stop.is_set():
                break
            if self._linger and not self._full.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self._linger)
            try:
                await self.flush()
                backoff = 0.05
            except RedisError as exc:
                log.warning("publish_failed", error=str(exc), backlog=self.backlog)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        with contextlib.suppress(RedisError):
            await self.flush()
