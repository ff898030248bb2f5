"""Hot path: ticker updates become ``md:ticks`` entries and ``md:last:{KEY}`` hashes.

``pendingTickersEvent`` only marks tickers dirty (a set update, no allocation per
tick). A flush turns each dirty ticker into one sanitized Quote, encodes it once,
and writes a whole batch (XADD + HSET per contract) with one script call: one
command and one reply per batch, because parsing a reply per command was most of
the cost (16k quotes/s with two pipelined commands per quote). Ticks that arrive
while a flush is in flight conflate into the next one, so the latest state always
wins and md:last ends exact; a failed write marks its tickers dirty again.

Fairness: under a flood the IB reader runs for long stretches, and a flush that
needs several loop turns (wake, linger, write) starved. So the hot path starts a
flush itself when the dirty set is large or the last flush is older than the
linger, and a flush that finds more dirty tickers goes again without lingering.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.gateway_adapter.sanitize import hash_fields, quote_from_ticker
from shared.bus import Publisher
from shared.contract import MD_TICKS, last_quote_key
from shared.envelope import encode, now_ns
from shared.logs import get_logger
from shared.schemas import ContractRef, Quote, SecType

log = get_logger("optbot.gateway_adapter.publish")

QuoteHook = Callable[[str, Quote], None]
BATCH = 500  # contracts per script call
EAGER = 2000  # dirty contracts that start a flush from the hot path at once

# KEYS[1] md:ticks. ARGV[1] maxlen, ARGV[2] quotes; per quote: hash key, n, n hash
# args, m, m entry fields. md:last keys are not declared: single-node Redis only
# (a cluster would split this by hash slot, as md:ticks shards would be).
_WRITE = """
local i = 3
for _ = 1, tonumber(ARGV[2]) do
  local n = tonumber(ARGV[i + 1])
  redis.call('HSET', ARGV[i], unpack(ARGV, i + 2, i + 1 + n))
  i = i + 2 + n
  local m = tonumber(ARGV[i])
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, i + 1, i + m))
  i = i + 1 + m
end
return ARGV[2]
"""


@dataclass(slots=True)
class Route:
    """Where one ticker's quotes go."""

    ref: ContractRef
    key: str
    hash_key: str
    is_index: bool
    sent: dict[str, str] = field(default_factory=dict)  # md:last fields as last written


@dataclass(slots=True)
class Batch:
    tickers: list[Any]
    args: list[Any]


class QuotePublisher:
    """Conflates ticker updates per contract and publishes them in batches."""

    def __init__(
        self,
        publisher: Publisher,
        *,
        linger_s: float,
        redis: aioredis.Redis,
        maxlen: int,
    ) -> None:
        self._pub = publisher  # for its ``src`` (entries name the adapter instance)
        self._linger = linger_s
        self._maxlen = maxlen
        self._script = redis.register_script(_WRITE)
        self._lock = asyncio.Lock()  # one write at a time keeps entries in order
        self._routes: dict[int, Route] = {}  # id(ticker) -> route
        self._tickers: dict[str, Any] = {}  # key -> ticker
        self._dirty: set[Any] = set()
        self._batches: list[Batch] = []
        self._wake = asyncio.Event()
        self._flushing: asyncio.Task[int] | None = None
        self._last_flush = 0.0
        self.on_quote: QuoteHook | None = None
        self.watched: set[str] = set()  # keys the executor wants to see
        self.quotes = 0
        self.flushes = 0
        self.updates = 0
        self.eager = 0  # flushes the hot path started itself

    # --- routing -------------------------------------------------------------------------

    def route(self, ticker: Any, ref: ContractRef) -> None:
        """Publish ``ticker``'s updates as ``ref`` (a qualified contract)."""
        key = ref.key
        self._routes[id(ticker)] = Route(ref, key, last_quote_key(key), ref.sec_type is SecType.IND)
        self._tickers[key] = ticker

    def unroute(self, key: str) -> None:
        ticker = self._tickers.pop(key, None)
        if ticker is not None:
            self._routes.pop(id(ticker), None)
            self._dirty.discard(ticker)

    def clear(self) -> None:
        """Forget every ticker (the IB connection they belonged to is gone)."""
        self._routes.clear()
        self._tickers.clear()
        self._dirty.clear()

    def quote(self, key: str) -> Quote | None:
        """The current sanitized quote of ``key``, if we stream it."""
        ticker = self._tickers.get(key)
        route = self._routes.get(id(ticker)) if ticker is not None else None
        if route is None:
            return None
        return quote_from_ticker(ticker, route.ref, route.is_index)

    # --- hot path ------------------------------------------------------------------------

    def on_pending(self, tickers: Iterable[Any]) -> None:
        """ib.pendingTickersEvent handler: mark dirty; start a flush when one is overdue."""
        self._dirty.update(tickers)
        self.updates += 1
        self._wake.set()
        if self._flushing is None and (
            len(self._dirty) >= EAGER or time.monotonic() - self._last_flush >= self._linger
        ):
            self.eager += 1
            self._start_flush()

    def drain(self) -> int:
        """Encode one quote per dirty contract into write batches; returns how many."""
        if not self._dirty:
            return 0
        dirty, self._dirty = self._dirty, set()
        routes, hook, watched = self._routes, self.on_quote, self.watched
        src, ts = self._pub.src, now_ns()
        batch = Batch([], [])
        n = 0
        for ticker in dirty:
            route = routes.get(id(ticker))
            if route is None:
                continue
            q = quote_from_ticker(ticker, route.ref, route.is_index)
            sent = route.sent  # HSET only what changed since our last write
            changed = [kv for kv in hash_fields(q, ts).items() if sent.get(kv[0]) != kv[1]]
            sent.update(changed)
            entry = encode(q, src, route.key, ts)
            args = batch.args
            args.append(route.hash_key)
            args.append(len(changed) * 2)
            args.extend(chain.from_iterable(changed))
            args.append(len(entry) * 2)
            args.extend(chain.from_iterable(entry.items()))
            batch.tickers.append(ticker)
            if len(batch.tickers) >= BATCH:
                self._batches.append(batch)
                batch = Batch([], [])
            if hook is not None and route.key in watched:
                hook(route.key, q)
            n += 1
        if batch.tickers:
            self._batches.append(batch)
        self.quotes += n
        return n

    async def flush(self) -> int:
        """Drain and write every batch (one script call each); returns quotes written.

        On a Redis error the unwritten tickers are dirty again (their latest state is
        what the next flush writes) and the error propagates.
        """
        async with self._lock:
            self.drain()
            written = 0
            while self._batches:
                batch = self._batches[0]
                try:
                    await self._script(
                        keys=[MD_TICKS], args=[self._maxlen, len(batch.tickers), *batch.args]
                    )
                except RedisError:
                    for b in self._batches:
                        self._dirty.update(t for t in b.tickers if id(t) in self._routes)
                    self._batches.clear()
                    raise
                self._batches.pop(0)
                written += len(batch.tickers)
            self.flushes += 1
            self._last_flush = time.monotonic()
            return written

    def _start_flush(self) -> None:
        self._flushing = asyncio.ensure_future(self.flush())
        self._flushing.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[int]) -> None:
        self._flushing = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("quote_flush_failed", error=str(task.exception()))

    async def run(self, stop: asyncio.Event) -> None:
        """Flush loop: wait for updates, linger briefly unless busy, publish, repeat."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.5)
            self._wake.clear()
            if self._linger and len(self._dirty) < EAGER:
                await asyncio.sleep(self._linger)
            if not self._dirty:
                continue
            try:
                await self.flush()
            except RedisError as exc:
                log.warning("quote_flush_failed", error=str(exc))
                await asyncio.sleep(0.05)
