"""Live updates: follow the streams, mark panels dirty, push coalesced snapshots.

One follower (``XREAD``, no group: the monitor never acks or steals work) marks
which panels changed. Quotes are not read one by one (they are most of the traffic
and the monitor only counts them): ``md:ticks``' ``entries-added`` is polled instead.
A push loop runs at most ``OPTBOT_MONITOR_PUSH_HZ`` times a second and sends each
dirty panel once, as the same JSON its REST endpoint returns. A slow browser never
queues: it holds only the newest body per panel. A Redis outage is reported as a
``connection`` event, and the follower resumes from the newest entries (ids may
have restarted with Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from redis.exceptions import RedisError, ResponseError

from services.monitor.metrics import MonitorMetrics
from services.monitor.reader import PANELS, Reader
from shared.aio import sleep_or_stop, wait_any
from shared.bus import TailReader
from shared.bus.latest import latest_entry
from shared.contract import (
    ACCOUNT,
    GW_STATUS,
    MD_SIGNALS,
    MD_TICKS,
    ORDERS_EVENTS,
    ORDERS_REQUESTS,
    STRATEGY_DECISIONS,
    SYS_ALERTS,
    SYS_CONTROL,
    SYS_DLQ,
)
from shared.envelope import DecodeError, decode
from shared.logs import get_logger
from shared.schemas import (
    ConnState,
    Decision,
    DecisionOutcome,
    GatewayStatus,
    OrderEvent,
    OrderEventKind,
)

log = get_logger("optbot.monitor.live")

# Which panels an entry on each stream changes (md:ticks: counted, not followed).
QUOTE_PANELS = ("quotes",)
QUOTE_POLL_S = 0.5
STREAM_PANELS: dict[str, tuple[str, ...]] = {
    MD_SIGNALS: ("market",),
    GW_STATUS: ("status", "system"),
    ORDERS_REQUESTS: ("orders",),
    ORDERS_EVENTS: ("orders", "account", "performance"),
    ACCOUNT: ("account",),
    SYS_DLQ: ("system",),
    SYS_CONTROL: ("status",),
    SYS_ALERTS: ("system",),
    STRATEGY_DECISIONS: ("decisions",),
}
FAST_PANELS = ("status", "quotes", "system")  # ages and staleness move with the clock
FULL_REFRESH_EVERY = 5  # fast refreshes per refresh of every panel


class Client:
    """One SSE connection: the newest body per panel, and a wake-up."""

    def __init__(self) -> None:
        self.pending: dict[str, str] = {}
        self.wake = asyncio.Event()

    def offer(self, panel: str, data: str) -> None:
        self.pending[panel] = data
        self.wake.set()

    def take(self) -> dict[str, str]:
        out, self.pending = self.pending, {}
        self.wake.clear()
        return out


class LiveHub:
    """Follower, coalescing push loop and the set of connected clients."""

    def __init__(self, reader: Reader, metrics: MonitorMetrics) -> None:
        self.reader = reader
        self.metrics = metrics
        settings = reader.settings
        self.push_interval = 1.0 / settings.monitor_push_hz
        self.refresh_s = settings.monitor_refresh_s
        self.clients: set[Client] = set()
        self.closed = asyncio.Event()
        self.redis_ok = True
        self._dirty: set[str] = set(PANELS)
        self._latest: dict[str, str] = {}
        self._bars: set[str] = set()
        self._gateway: ConnState | None = None
        metrics.redis_up.set(1)

    # --- clients -------------------------------------------------------------------------

    def subscribe(self) -> Client:
        client = Client()
        for panel, data in self._latest.items():
            client.offer(panel, data)
        client.offer("connection", self._connection())
        self.clients.add(client)
        self.metrics.sse_clients.set(len(self.clients))
        self._dirty.update(PANELS)
        return client

    def unsubscribe(self, client: Client) -> None:
        self.clients.discard(client)
        self.metrics.sse_clients.set(len(self.clients))

    def mark(self, *panels: str) -> None:
        """Push these panels on the next tick (e.g. after a control action)."""
        self._dirty.update(panels)

    def _connection(self) -> str:
        return json.dumps({"redis": self.redis_ok, "now": time.time()})

    def _broadcast(self, panel: str, data: str) -> None:
        for client in self.clients:
            client.offer(panel, data)

    async def stream(self, client: Client) -> AsyncIterator[dict[str, Any]]:
        """SSE events for one client until it leaves or the monitor stops."""
        yield {"event": "hello", "data": json.dumps({"panels": PANELS}), "retry": 1000}
        while not self.closed.is_set():
            if not client.pending:
                await wait_any(client.wake, self.closed)
            for panel, data in client.take().items():
                self.metrics.sse_events.labels(panel).inc()
                yield {"event": panel, "data": data}

    # --- loops ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Follower, push and refresh loops until ``stop``; then release the clients."""
        tasks = [
            asyncio.create_task(self._follow(stop), name="monitor:follow"),
            asyncio.create_task(self._push(stop), name="monitor:push"),
            asyncio.create_task(self._refresh(stop), name="monitor:refresh"),
            asyncio.create_task(self._count_quotes(stop), name="monitor:quotes"),
        ]
        try:
            await stop.wait()
        finally:
            self.closed.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _set_redis(self, ok: bool) -> None:
        if ok != self.redis_ok:
            self.redis_ok = ok
            self.metrics.redis_up.set(1 if ok else 0)
            log.warning("redis_state", reachable=ok)
            if ok:
                self.metrics.redis_reconnects.inc()
                self._dirty.update(PANELS)
            self._broadcast("connection", self._connection())

    async def _follow(self, stop: asyncio.Event) -> None:
        streams = list(STREAM_PANELS)
        backoff = 0.25
        tail: TailReader | None = None
        while not stop.is_set():
            try:
                if tail is None:  # pinned first, then the state: no change falls between
                    tail = TailReader(self.reader.redis, streams, count=2000, block_ms=500)
                    await tail.pin()
                    await self._load_gateway()
                entries = await tail.read()
                self._set_redis(True)
                backoff = 0.25
            except (RedisError, OSError) as exc:
                log.debug("follow_failed", error=str(exc))
                self._set_redis(False)
                await sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 4.0)
                tail = None  # resume from the newest entries (ids may restart with Redis)
                continue
            for stream, _entry_id, fields in entries:
                self._note(stream, fields)

    def _note(self, stream: str, fields: dict[bytes, bytes]) -> None:
        """Count an entry and mark what it changes (bodies decoded only when needed)."""
        self.metrics.entries.labels(stream).inc()
        self._dirty.update(STREAM_PANELS.get(stream, ()))
        kind = fields.get(b"type", b"")
        if stream == MD_SIGNALS and kind == b"bar":
            self._bars.add(fields.get(b"key", b"").decode(errors="replace"))
        elif stream == ORDERS_REQUESTS:
            self.metrics.orders.labels(kind.decode(errors="replace")[:32]).inc()
        elif stream == ORDERS_EVENTS and kind == b"order.event":
            self._note_order_event(fields)
        elif stream == GW_STATUS and kind == b"status":
            self._note_gateway(fields)
        elif stream == STRATEGY_DECISIONS and kind == b"decision":
            self._note_decision(fields)

    def _note_order_event(self, fields: dict[bytes, bytes]) -> None:
        with contextlib.suppress(DecodeError):
            body = decode(fields).body
            if isinstance(body, OrderEvent):
                self.metrics.order_events.labels(body.kind.value).inc()
                if body.kind in (OrderEventKind.FILL, OrderEventKind.PARTIAL):
                    self.metrics.fills.inc()

    def _note_decision(self, fields: dict[bytes, bytes]) -> None:
        """An order the strategy's risk check refused is a decision carrying the order."""
        with contextlib.suppress(DecodeError):
            body = decode(fields).body
            if (
                isinstance(body, Decision)
                and body.outcome is DecisionOutcome.DENIED
                and body.client_order_id
            ):
                self.metrics.denials.inc()

    async def _load_gateway(self) -> None:
        """The gateway's state when following starts, so the first CONNECTED after a
        loss the monitor did not see still counts as a reconnect."""
        latest = await latest_entry(
            self.reader.redis,
            GW_STATUS,
            GatewayStatus.TYPE,
            lambda m: m.body.state is not ConnState.STANDBY,
            limit=self.reader.settings.maxlen_status,
        )
        if latest is not None:
            self._gateway = latest.body.state

    def _note_gateway(self, fields: dict[bytes, bytes]) -> None:
        with contextlib.suppress(DecodeError):
            body = decode(fields).body
            if isinstance(body, GatewayStatus):
                lost = self._gateway not in (None, ConnState.CONNECTED)
                if body.state is ConnState.CONNECTED and lost:
                    self.metrics.gateway_reconnects.inc()
                self._gateway = body.state

    async def _push(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            if self.clients and (self._dirty or self._bars):
                await self._push_once()
            spent = time.monotonic() - started
            await sleep_or_stop(stop, max(0.0, self.push_interval - spent))

    async def _push_once(self) -> None:
        dirty, self._dirty = self._dirty, set()
        if self._bars:
            bars, self._bars = sorted(self._bars), set()
            self._broadcast("bars", json.dumps({"symbols": bars}))
        for panel in PANELS:
            if panel not in dirty:
                continue
            try:
                data = (await self.reader.panel(panel)).model_dump_json()
            except (RedisError, OSError) as exc:
                log.debug("panel_failed", panel=panel, error=str(exc))
                self._set_redis(False)
                self._dirty.update(dirty)
                return
            self._latest[panel] = data
            self._broadcast(panel, data)

    async def _count_quotes(self, stop: asyncio.Event) -> None:
        """Quotes counted from ``md:ticks``' ``entries-added`` (Redis >= 7), so the
        monitor does not wake and decode for every one of thousands a second."""
        added = await self._quotes_added()  # counted from the monitor's start on
        while not await sleep_or_stop(stop, QUOTE_POLL_S):
            now = await self._quotes_added()
            if now is None:
                continue  # Redis away: the follower reports it
            if added is None:
                added = now  # Redis was away at start: count from here
                continue
            if now > added:
                self.metrics.saw_quotes(now - added)
                self.metrics.entries.labels(MD_TICKS).inc(now - added)
                self._dirty.update(QUOTE_PANELS)
            added = now  # also after a Redis restart, when the count starts again

    async def _quotes_added(self) -> int | None:
        """Entries ever added to md:ticks (0 while it does not exist); None: unknown."""
        try:
            info: Any = await self.reader.redis.xinfo_stream(MD_TICKS)
        except ResponseError:  # no such key: nothing published yet
            return 0
        except (RedisError, OSError):
            return None
        return int(info.get("entries-added", 0) or 0)

    async def _refresh(self, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            await sleep_or_stop(stop, self.refresh_s)
            n += 1
            self._dirty.update(PANELS if n % FULL_REFRESH_EVERY == 0 else FAST_PANELS)
            if not self.redis_ok and await self.reader.ping():
                self._set_redis(True)
