"""Hot path: ticker updates become ``md:ticks`` entries and ``md:last:{KEY}`` hashes.

``pendingTickersEvent`` only marks tickers dirty (a set update, no allocation per
tick). A flush task turns each dirty ticker into one sanitized Quote, encodes it
once and queues an XADD plus an HSET, then writes the lot in pipelined batches.
Ticks that arrive while a flush is in flight conflate into the next one, so the
latest state always wins and md:last ends exact.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from services.gateway_adapter.sanitize import hash_fields, quote_from_ticker
from shared.bus import Publisher
from shared.envelope import encode, now_ns
from shared.logs import get_logger
from shared.schemas import ContractRef, Quote, SecType
from shared.streams import MD_TICKS, last_quote_key

log = get_logger("optbot.gateway_adapter.publish")

QuoteHook = Callable[[str, Quote], None]


@dataclass(slots=True)
class Route:
    """Where one ticker's quotes go."""

    ref: ContractRef
    key: str
    hash_key: str
    is_index: bool


class QuotePublisher:
    """Conflates ticker updates per contract and publishes them in batches."""

    def __init__(self, publisher: Publisher, *, linger_s: float) -> None:
        self._pub = publisher
        self._linger = linger_s
        self._routes: dict[int, Route] = {}  # id(ticker) -> route
        self._tickers: dict[str, Any] = {}  # key -> ticker
        self._dirty: set[Any] = set()
        self._wake = asyncio.Event()
        self.on_quote: QuoteHook | None = None
        self.watched: set[str] = set()  # keys the executor wants to see
        self.quotes = 0
        self.flushes = 0
        self.updates = 0

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
        """ib.pendingTickersEvent handler: mark dirty, nothing else (conflation)."""
        self._dirty.update(tickers)
        self.updates += 1
        self._wake.set()

    def drain(self) -> int:
        """Queue one quote per dirty contract on the publisher; returns how many."""
        if not self._dirty:
            return 0
        dirty, self._dirty = self._dirty, set()
        routes, pub, hook, watched = self._routes, self._pub, self.on_quote, self.watched
        src, ts = pub.src, now_ns()
        n = 0
        for ticker in dirty:
            route = routes.get(id(ticker))
            if route is None:
                continue
            q = quote_from_ticker(ticker, route.ref, route.is_index)
            pub.add_fields(MD_TICKS, encode(q, src, route.key, ts))
            pub.add_hash(route.hash_key, hash_fields(q, ts))
            if hook is not None and route.key in watched:
                hook(route.key, q)
            n += 1
        self.quotes += n
        return n

    async def run(self, stop: asyncio.Event) -> None:
        """Flush loop: wait for updates, linger briefly, publish, repeat."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.5)
            self._wake.clear()
            if self._linger:
                await asyncio.sleep(self._linger)
            self.drain()
            if self._pub.backlog:
                self.flushes += 1
                try:
                    await self._pub.flush()
                except RedisError as exc:  # the publisher keeps the ops and retries
                    log.warning("quote_flush_failed", error=str(exc))
