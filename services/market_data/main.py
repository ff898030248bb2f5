"""market_data service: quotes in, bars / sentiment / candidates out.

Wiring only: the state and rules live in ``engine``; this module asks the
gateway for the universe and warm-up history (again after every reconnect),
feeds quotes and replies into the state, and publishes what changes. History
goes through the bus's request/reply helper: each request waits for its reply on
``gw:replies:market_data`` with a timeout, and fails at once when the gateway
disconnects; a failed or timed-out symbol is asked again by the retry loop.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from redis.exceptions import RedisError

from services.market_data.engine import Evaluation, MarketState, worst
from services.market_data.momentum import MomentumParams
from services.market_data.sentiment import SentimentParams
from services.market_data.session import MarketSession
from services.market_data.universe import ib_bar_size, universe
from shared import clock
from shared.aio import sleep_or_stop, wait_any
from shared.bus import RequestClient
from shared.bus.latest import EntryOrder, latest_entry
from shared.contract import (
    GW_COMMANDS,
    GW_STATUS,
    MD_CANDIDATES,
    MD_SENTIMENT,
    MD_SIGNALS,
    MD_TICKS,
    bars_key,
)
from shared.contract.values import BarRow, CandidateRow, CandidatesHash, SentimentHash, to_json
from shared.envelope import Message
from shared.logs import get_logger
from shared.runner import ServiceContext
from shared.schemas import (
    Bar,
    Candidate,
    CandidatesSignal,
    ConnState,
    ContractRef,
    GatewayStatus,
    HistoryBars,
    HistoryRequest,
    IbError,
    Quote,
    SentimentSignal,
    Subscribe,
)

log = get_logger("optbot.market_data")

REQUEST_TAG = "md"  # request ids: md-<pid><random>-<n>-<round>-<symbol>
MIN_REREQUEST_S = 2.0
HISTORY_RETRY_S = (1.0, 30.0)  # first and longest wait before asking again for failed history


def bar_row(bar: Bar) -> str:
    """One bar as the compact JSON the dashboard's chart reads from ``md:bars:{SYM}``."""
    row = BarRow(
        t=bar.start_ns // 1_000_000_000,
        o=bar.open,
        h=bar.high,
        l=bar.low,
        c=bar.close,
        v=bar.volume,
        gap=bar.gap,
    )
    return to_json(row)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


class MarketDataService:
    def __init__(self, ctx: ServiceContext) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.settings = s
        self.state = MarketState(
            s.watchlist,
            bar_seconds=s.md_bar_seconds,
            window=s.md_bar_window,
            stale_s=s.md_stale_s,
            sentiment=SentimentParams.from_settings(s),
            momentum=MomentumParams.from_settings(s),
        )
        self.session = MarketSession(s.md_market_hours)
        self.contracts = universe(s.watchlist)
        self._round = 0
        self._requested_at = 0.0
        self._gateway: ConnState | None = None
        self._status_order = EntryOrder()
        self._published: list[tuple[str, str]] | None = None
        self._published_at = 0.0
        self._sentiment_since = 0.0
        self._eval_lock = asyncio.Lock()
        # Warm-up history: the request id awaited per symbol, and the symbols whose last
        # request failed (e.g. sent before the gateway was connected) and are asked again.
        self._history_awaited: dict[str, str] = {}
        self._history_failed: set[str] = set()
        self._retry_delay = HISTORY_RETRY_S[0]
        self._retry_wake = asyncio.Event()
        self.requests = RequestClient(
            ctx.redis,
            ctx.publisher,
            s,
            requester="market_data",
            replies=(HistoryBars,),
            timeout_s=s.md_history_timeout_s,
            tag=REQUEST_TAG,
        )
        self._history_tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        # The group exists before the state is read: a transition published meanwhile
        # is delivered, not lost until the next one.
        await self.ctx.consume_after(
            self._load_gateway_status, GW_STATUS, self.on_status, accept=(GatewayStatus, IbError)
        )
        self.ctx.spawn(self.requests.run(self.ctx.stop), f"replies:{self.requests.reply_to}")
        self.ctx.consume(MD_TICKS, self.on_tick, accept=(Quote,))
        await self.request_universe("start")
        self.ctx.spawn(self._evaluate_loop(), "evaluate")
        self.ctx.spawn(self._history_retry_loop(), "history-retry")

    async def request_universe(self, reason: str) -> None:
        """Subscribe the watchlist and ask for warm-up bars (idempotent at the gateway)."""
        self._requested_at = time.monotonic()
        self.ctx.publisher.add(
            GW_COMMANDS, Subscribe(contracts=self.contracts, priority=8, requester="market_data")
        )
        await self.ctx.publisher.flush()  # the lines are asked for before their history
        self._history_failed.clear()
        await self._request_history(self.contracts)
        log.info(
            "universe_requested", reason=reason, symbols=len(self.contracts), round=self._round
        )

    async def _request_history(self, contracts: list[ContractRef]) -> None:
        """Ask for warm-up bars, one waiting task per symbol; only the newest request
        per symbol counts when it answers."""
        self._round += 1
        bar_size = ib_bar_size(self.settings.md_bar_seconds)
        for contract in contracts:
            request = HistoryRequest(
                request_id=self.requests.new_id(f"{self._round}-{contract.symbol}"),
                contract=contract,
                duration=self.settings.md_history_duration,
                bar_size=bar_size,
            )
            self._history_awaited[contract.symbol] = request.request_id
            task = asyncio.create_task(self._await_history(request), name=request.request_id)
            self._history_tasks.add(task)
            task.add_done_callback(self._history_done)

    def _history_done(self, task: asyncio.Task[None]) -> None:
        """A history task's bug is logged, not lost with the task (the retry loop goes on)."""
        self._history_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("history_task_failed", request=task.get_name(), error=repr(task.exception()))

    async def _await_history(self, request: HistoryRequest) -> None:
        """Send one history request and seed its symbol from the reply (or mark it failed)."""
        symbol = request.contract.symbol
        try:
            reply = await self.requests.ask(GW_COMMANDS, request, HistoryBars, key=symbol)
        except (TimeoutError, ConnectionError, RedisError) as exc:
            reply = HistoryBars(
                request_id=request.request_id, symbol=symbol, bars=[], error=repr(exc)[:4096]
            )
        try:
            with clock.current().busy():  # seeded before a backtest's next step
                await self.on_history(reply)
        except RedisError as exc:  # Redis away while seeding: the bars are in memory
            log.warning("history_seed_failed", symbol=symbol, error=str(exc))

    async def _history_retry_loop(self) -> None:
        """Ask again for history that failed, backing off while the gateway cannot serve it.

        Without warm-up bars no indicator is valid for an hour, so a failure (the
        gateway not connected yet, a pacing refusal) must not be the last word.
        """
        while not self.ctx.stop.is_set():
            await wait_any(self.ctx.stop, self._retry_wake)
            if await sleep_or_stop(self.ctx.stop, self._retry_delay):
                return
            self._retry_wake.clear()
            gateway_down = self._gateway is not None and self._gateway is not ConnState.CONNECTED
            if not self._history_failed or gateway_down:
                continue  # a CONNECTED status (or the next failure) wakes this again
            retry = [c for c in self.contracts if c.symbol in self._history_failed]
            self._history_failed.clear()
            self._retry_delay = min(self._retry_delay * 2, HISTORY_RETRY_S[1])
            try:
                await self._request_history(retry)
            except RedisError as exc:  # Redis away: keep the symbols for the next round
                self._history_failed.update(c.symbol for c in retry)
                self._retry_wake.set()
                log.warning("history_retry_failed", error=str(exc))
                continue
            log.info("history_retried", symbols=[c.symbol for c in retry], round=self._round)

    async def on_tick(self, msg: Message[Any]) -> None:
        body = msg.body
        if not isinstance(body, Quote):
            return
        bar = self.state.on_quote(body, body.ib_ts or clock.arrival_ns(msg.ts))
        if bar is not None:
            self._publish_bar(bar)

    def _publish_bar(self, bar: Bar) -> None:
        pub = self.ctx.publisher
        pub.add(MD_SIGNALS, bar, key=bar.symbol)
        pub.add_list(bars_key(bar.symbol), bar_row(bar), keep=self.settings.md_bar_window)

    async def _rewrite_bar_window(self, symbol: str) -> None:
        """After warm-up the chart's window holds history too, not only live bars."""
        builder = self.state.builders.get(symbol)
        if builder is None or not builder.bars:
            return
        async with self.ctx.redis.pipeline(transaction=True) as pipe:
            pipe.delete(bars_key(symbol))
            pipe.rpush(bars_key(symbol), *[bar_row(b) for b in builder.bars])
            await pipe.execute()

    async def on_history(self, body: HistoryBars) -> None:
        """A history reply (or the failure of its request): seed, or ask again later."""
        if self._history_awaited.get(body.symbol) != body.request_id:
            return  # an older request's answer: a newer one is on its way
        if body.error:
            self._history_failed.add(body.symbol)
            self._retry_wake.set()
            log.warning(
                "history_failed", symbol=body.symbol, error=body.error, retry_s=self._retry_delay
            )
            return
        self._history_awaited.pop(body.symbol, None)
        self._retry_delay = HISTORY_RETRY_S[0]
        added = self.state.on_history(body.symbol, list(body.bars))
        log.info("history_seeded", symbol=body.symbol, bars=len(body.bars), new=added)
        if added:
            await self._rewrite_bar_window(body.symbol)
        if body.symbol in ("SPY", "QQQ", "VIX") or not self._published:
            await self.evaluate()

    @property
    def gateway(self) -> ConnState | None:
        """The active adapter's connection state as last seen (None: none seen yet)."""
        return self._gateway

    async def _load_gateway_status(self) -> None:
        """The adapter's newest non-standby ``gw:status`` entry, before following changes."""
        latest = await latest_entry(
            self.ctx.redis,
            GW_STATUS,
            GatewayStatus.TYPE,
            lambda m: m.body.state is not ConnState.STANDBY,
            limit=self.settings.maxlen_status,
        )
        if latest is not None:
            self._status_order.newer(latest.id)
            self._gateway = latest.body.state
            log.info("gateway_status_loaded", state=latest.body.state.value, entry=latest.id)

    async def on_status(self, msg: Message[Any]) -> None:
        body = msg.body
        if not isinstance(body, GatewayStatus) or not self._status_order.newer(msg.id):
            return  # an IB error, or a status older than the one start-up loaded
        if body.state is ConnState.STANDBY:
            return  # a standby adapter says nothing about the active one's connection
        previous, self._gateway = self._gateway, body.state
        if previous is ConnState.CONNECTED and body.state is not ConnState.CONNECTED:
            self.requests.fail_all(f"gateway {body.state.value}")  # retried on CONNECTED
        if body.state is not ConnState.CONNECTED or previous is ConnState.CONNECTED:
            return
        if previous is not None:
            self.state.mark_gap()  # the gateway was away: bars may have missed data
        if time.monotonic() - self._requested_at > MIN_REREQUEST_S:
            await self.request_universe(f"gateway {body.state.value} after {previous}")
        else:  # just asked: only what failed meanwhile is asked again, without waiting long
            self._retry_delay = HISTORY_RETRY_S[0]
            self._retry_wake.set()

    async def _evaluate_loop(self) -> None:
        while not await clock.current().sleep_or_stop(
            self.ctx.stop, self.settings.md_eval_interval_s
        ):
            try:
                await self.evaluate()
            except RedisError as exc:  # Redis away: the next evaluation tries again
                log.warning("evaluate_failed", error=str(exc))

    async def evaluate(self) -> Evaluation:
        """Run sentiment and screen; publish a change at once, else on the schedule."""
        async with self._eval_lock:
            ev = self.state.evaluate()
            now = clock.current().time()
            if ev.sentiment is not None:
                self._publish_sentiment(ev, now)
            self._write_sentiment_hash(ev, now)
            candidates = ev.screen.candidates if self.session.is_open() else []
            ranked = [(c.symbol, c.direction.value) for c in candidates]
            due = now - self._published_at >= self.settings.md_republish_s
            if ev.warm and (ranked != self._published or due):
                self._publish_candidates(candidates, ev, now)
            self._update_heartbeat(ev, candidates)
            await self.ctx.publisher.flush()
            return ev

    def _publish_sentiment(self, ev: Evaluation, now: float) -> None:
        change = ev.sentiment
        if change is None:
            return
        self._sentiment_since = now
        signal = SentimentSignal(
            state=change.state,
            previous=change.previous,
            inputs=change.inputs.as_dict(),
            reason=change.reason,
            data_type=ev.data_type,
        )
        self.ctx.publisher.add(MD_SIGNALS, signal, key="sentiment")
        log.info(
            "sentiment_changed",
            state=change.state.value,
            previous=str(change.previous),
            reason=change.reason,
        )

    def _write_sentiment_hash(self, ev: Evaluation, now: float) -> None:
        tracker = self.state.tracker
        if tracker.state is None or tracker.inputs is None:
            return
        head = SentimentHash(
            state=tracker.state,
            since=_iso(self._sentiment_since or now),
            reason=tracker.reason,
            data_type=ev.data_type.value,
            updated=_iso(now),
        )
        inputs = {k: f"{v:.4f}" for k, v in tracker.inputs.as_dict().items()}
        self.ctx.publisher.add_hash(MD_SENTIMENT, head.fields() | inputs, replace=True)

    def _publish_candidates(self, candidates: list[Candidate], ev: Evaluation, now: float) -> None:
        quotes = self.state.quotes
        types = [quotes[c.symbol].data_type for c in candidates if c.symbol in quotes]
        data_type = worst(types) if types else ev.data_type
        self.ctx.publisher.add(
            MD_SIGNALS,
            CandidatesSignal(candidates=candidates, data_type=data_type),
            key="candidates",
        )
        rows = [
            msgspec.structs.asdict(
                CandidateRow(symbol=c.symbol, direction=c.direction, score=c.score)
            )
            | c.inputs
            for c in candidates
        ]
        head = CandidatesHash(
            updated=_iso(now),
            count=len(candidates),
            data_type=data_type.value,
            excluded=json.dumps(ev.screen.excluded, sort_keys=True),
            json=json.dumps(rows),
        )
        ranks = {
            str(rank): f"{c.symbol} {c.direction.value} {c.score:.3f}"
            for rank, c in enumerate(candidates, 1)
        }
        self.ctx.publisher.add_hash(MD_CANDIDATES, head.fields() | ranks, replace=True)
        self._published = [(c.symbol, c.direction.value) for c in candidates]
        self._published_at = now
        log.info(
            "candidates",
            ranked=[f"{c.symbol}:{c.direction.value}:{c.score:.2f}" for c in candidates],
        )

    def _update_heartbeat(self, ev: Evaluation, candidates: list[Candidate]) -> None:
        tracker = self.state.tracker
        self.ctx.extra.update(
            sentiment=tracker.state.value if tracker.state else "WARMING",
            candidates=",".join(c.symbol for c in candidates),
            stale=str(len(ev.stale)),
            data_type=ev.data_type.value,
            gateway=self._gateway.value if self._gateway else "unknown",
        )


async def main(ctx: ServiceContext) -> None:
    """Entry point for ``optbot run market_data``."""
    await MarketDataService(ctx).start()
