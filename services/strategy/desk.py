"""The order desk: every order passes the risk engine, every outcome is an event.

Sends entries and exits (``order.new``), reprices and cancels working orders, and
reports each decision on ``strategy:decisions``. A risk denial also goes on
``orders:events`` as a ``denied`` event for the order that was never sent. Every
reprice is risk-checked at its own price: one that would breach a premium limit
stops at the last allowed price. Check and send happen under one lock, so two
exits of one position (a flatten and a rule exit) can never both pass.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis

from services.strategy.ledger import Ledger
from services.strategy.market import MarketView
from services.strategy.money import ZERO, dec
from services.strategy.orders import Cancel, OrderBook, PricingParams, Reprice, Working, next_step
from services.strategy.risk import (
    OrderIntent,
    RiskEngine,
    RiskState,
    RiskStatus,
    RiskView,
    Verdict,
    load_status,
    status_fields,
)
from services.strategy.tradingday import TradingDay
from shared import clock
from shared.bus import Publisher
from shared.contract import (
    ORDERS_REQUESTS,
    RISK_STATE,
    STRATEGY_DECISIONS,
    SYS_CONTROL,
)
from shared.envelope import encode
from shared.logs import get_logger
from shared.schemas import (
    Decision,
    DecisionKind,
    DecisionOutcome,
    Direction,
    OrderCancel,
    OrderModify,
    OrderNew,
    RiskStateChange,
)
from shared.settings import Settings

log = get_logger("optbot.strategy.desk")

ACK_TIMEOUT_S = 30.0


@dataclass
class Books:
    """The strategy's state, shared by the cycle, the desk and the views."""

    ledger: Ledger
    orders: OrderBook
    market: MarketView
    status: RiskStatus
    net_liquidation: Decimal | None = None  # the traded book's, from its account snapshot
    decisions: int = 0
    last_reason: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Context:
    """Where a decision comes from (for its event)."""

    cycle: str
    kind: DecisionKind
    symbol: str = ""
    direction: Direction | None = None
    inputs: dict[str, float] = field(default_factory=dict)


class Desk:
    def __init__(
        self,
        books: Books,
        *,
        risk: RiskEngine,
        publisher: Publisher,
        redis: aioredis.Redis,
        settings: Settings,
    ) -> None:
        self.books = books
        self.risk = risk
        self.pub = publisher
        self.redis = redis
        self.settings = settings
        self.pricing = PricingParams.from_settings(settings)
        self.day = TradingDay(redis, books.ledger)
        self._send_lock = asyncio.Lock()  # one check-and-send at a time

    # --- decisions ----------------------------------------------------------------------

    def decide(
        self,
        ctx: Context,
        outcome: DecisionOutcome,
        reason: str,
        *,
        order: OrderNew | None = None,
        dedupe: str = "",
    ) -> None:
        """Publish a decision; with ``dedupe``, only when its reason changed."""
        if dedupe:
            if self.books.last_reason.get(dedupe) == reason:
                return
            self.books.last_reason[dedupe] = reason
        self.books.decisions += 1
        body = Decision(
            cycle=ctx.cycle,
            kind=ctx.kind,
            outcome=outcome,
            reason=reason,
            symbol=ctx.symbol,
            direction=ctx.direction,
            contract=order.contract if order else None,
            quantity=order.quantity if order else 0,
            limit_price=order.limit_price if order else None,
            client_order_id=order.client_order_id if order else "",
            inputs=ctx.inputs,
            at=round(clock.current().time(), 6),
        )
        self.pub.add(STRATEGY_DECISIONS, body, key=ctx.symbol)
        log.info(
            "decision",
            cycle=ctx.cycle,
            kind=ctx.kind.value,
            outcome=outcome.value,
            symbol=ctx.symbol,
            reason=reason,
        )

    # --- risk view ----------------------------------------------------------------------

    def view(self, key: str, now: float, exclude: str = "") -> RiskView:
        """The risk view for an order on ``key``; ``exclude``: a reprice's own order id."""
        b = self.books
        entries = [w for w in b.orders.working_entries() if w.order.client_order_id != exclude]
        held = {k for k, p in b.ledger.positions.items() if p.qty}
        new_keys = {w.order.contract.key for w in entries} - held
        working_premium = sum(
            (dec(w.limit or 0) * w.order.contract.multiplier * w.remaining for w in entries),
            ZERO,
        )
        pos = b.ledger.positions.get(key)
        return RiskView(
            status=b.status,
            gateway_connected=b.market.gateway_connected,
            gateway_why=b.market.gateway_why,
            quote_age_s=b.market.age(key, now),
            working_keys=b.orders.working_keys(),
            exit_keys=b.orders.exit_keys(),
            open_positions=len(held) + len(new_keys),
            position_qty=pos.qty if pos else 0,
            premium_at_risk=b.ledger.premium_at_risk + working_premium,
            opening_equity=self.day.opening_equity,
            daily_pnl=self.day.daily_pnl(),
            orders_last_min=b.orders.orders_since(now - 60.0),
        )

    async def refresh_status(self) -> RiskStatus:
        """Re-read ``risk:state``: a halt from the CLI applies to the very next order."""
        self.books.status = await load_status(self.redis)
        return self.books.status

    # --- orders -------------------------------------------------------------------------

    async def submit(self, order: OrderNew, ctx: Context) -> Verdict:
        """Risk-check and send one order; a denial is reported, never raised."""
        async with self._send_lock:
            await self.refresh_status()
            now = clock.current().monotonic()
            intent = OrderIntent(
                order.contract,
                order.action,
                order.quantity,
                order.limit_price,
                order.reduce_only,
                operator=bool(order.requested_by),
            )
            verdict = self.risk.check(intent, self.view(order.contract.key, now))
            if not verdict.allowed:
                self._deny(order, ctx, verdict)
                return verdict
            await self.pub.publish(ORDERS_REQUESTS, order, key=order.client_order_id)
            self.books.orders.on_request(order, now, self.pricing.interval_s)
        self.decide(ctx, DecisionOutcome.TAKEN, order.reason, order=order)
        return verdict

    def _deny(self, order: OrderNew, ctx: Context, verdict: Verdict) -> None:
        """A refused order is a decision (``strategy:decisions``, ours), never an order
        event: ``orders:events`` has one writer, the adapter, which never saw it."""
        self.decide(ctx, DecisionOutcome.DENIED, f"{verdict.check}: {verdict.reason}", order=order)

    async def manage(self, cycle: str) -> None:
        """Reprice working limit orders toward the far side; cancel when out of steps."""
        now = clock.current().monotonic()
        for cid, w in list(self.books.orders.working.items()):
            if w.cancel_sent:
                continue
            if not w.acked and now - w.sent_at > ACK_TIMEOUT_S:
                await self.cancel(cid, f"no acknowledgement in {ACK_TIMEOUT_S:g}s", cycle)
                continue
            step = next_step(w, self.books.market.quote(w.order.contract.key), now, self.pricing)
            if isinstance(step, Reprice):
                await self.reprice(cid, w, step.limit, cycle)
            elif isinstance(step, Cancel):
                await self.cancel(cid, step.reason, cycle)

    async def reprice(self, cid: str, w: Working, limit: float, cycle: str) -> None:
        """Move a working order to ``limit`` if every price-dependent limit holds there.

        A price that would breach a premium limit is cut to the highest price that
        does not (or, when that is no better than the working limit, the order stays
        where it is); either way the step is used up, so the order is still cancelled
        after its last step. A state that forbids the order's reprice sends nothing.
        """
        order = w.order
        ctx = Context(cycle, DecisionKind.REPRICE, order.contract.symbol)
        async with self._send_lock:
            now = clock.current().monotonic()
            intent = OrderIntent(
                order.contract,
                order.action,
                order.quantity,
                limit,
                order.reduce_only,
                operator=bool(order.requested_by),
                remaining=w.remaining,
            )
            view = self.view(order.contract.key, now, exclude=cid)
            verdict = self.risk.check_modify(intent, view)
            if verdict.check == "state":
                reason = f"{cid}: no reprice to {limit:.2f}: {verdict.reason}"
                self.decide(ctx, DecisionOutcome.DENIED, reason, dedupe=f"reprice {cid}")
                return
            if verdict.allowed:
                note = ""
            else:
                capped = self.risk.max_entry_price(intent, view)
                breach = f"{limit:.2f} would breach {verdict.check} ({verdict.reason})"
                if w.limit is None or capped <= w.limit:
                    self.books.orders.on_hold(cid, now, self.pricing.interval_s)
                    reason = f"{cid}: reprice stopped at {w.limit or 0:.2f}: {breach}"
                    self.decide(ctx, DecisionOutcome.DENIED, reason)
                    return
                note = f"; capped: {breach}"
                limit = capped
            req = OrderModify(
                client_order_id=cid, limit_price=limit, reason=f"reprice {w.reprices + 1}{note}"
            )
            await self.pub.publish(ORDERS_REQUESTS, req, key=cid)
            self.books.orders.on_modify(req, now, self.pricing.interval_s)
        self.books.last_reason.pop(f"reprice {cid}", None)
        self.decide(ctx, DecisionOutcome.TAKEN, f"{cid}: limit {limit:.2f}{note}")

    async def cancel(self, cid: str, reason: str, cycle: str) -> None:
        """Cancels always pass: they only ever reduce what is working."""
        req = OrderCancel(client_order_id=cid, reason=reason)
        await self.pub.publish(ORDERS_REQUESTS, req, key=cid)
        self.books.orders.on_cancel(req)
        w = self.books.orders.working.get(cid)
        symbol = w.order.contract.symbol if w else ""
        self.decide(
            Context(cycle, DecisionKind.CANCEL, symbol), DecisionOutcome.TAKEN, f"{cid}: {reason}"
        )

    async def cancel_entries(self, reason: str, cycle: str) -> None:
        for w in self.books.orders.working_entries():
            if not w.cancel_sent:
                await self.cancel(w.order.client_order_id, reason, cycle)

    # --- state --------------------------------------------------------------------------

    async def set_state(
        self,
        state: RiskState,
        why: str,
        who: str,
        *,
        breach_day: str | None = None,
        request: str = "",
    ) -> RiskStateChange:
        """Persist a state change and its ``risk.state`` record (who, why, since) atomically.

        The daily-loss ``breach_day`` is kept unless given: an operator's state applied
        after a breach must not let the engine trip again the same day. A ``request``
        that asks for the standing state changes nothing and is answered all the same.
        """
        prev = self.books.status
        if request and state is prev.state:
            unchanged = RiskStateChange(
                state=state, previous=state, who=prev.who, why=prev.why,
                since=prev.since, request=request,
            )  # fmt: skip
            await self._record(unchanged, None)
            return unchanged
        day = prev.breach_day if breach_day is None else breach_day
        status = RiskStatus(
            state, why, who, round(clock.current().time(), 3), day
        )  # as risk:state has it
        change = RiskStateChange(
            state=state,
            previous=prev.state,
            who=who,
            why=why,
            since=status.since,
            request=request,
            breach=bool(breach_day) and breach_day != prev.breach_day,
        )
        await self._record(change, status_fields(status))
        self.books.status = status
        log.warning("risk_state", state=state.value, previous=prev.state.value, why=why, who=who)
        return change

    async def _record(self, change: RiskStateChange, fields: dict[str, str] | None) -> None:
        """HSET ``risk:state`` (when it changes) and XADD the record in one MULTI."""
        event: Any = encode(change, self.pub.src, change.state.value)
        mapping: Any = fields
        async with self.redis.pipeline(transaction=True) as pipe:
            if mapping is not None:
                pipe.hset(RISK_STATE, mapping=mapping)
            pipe.xadd(
                SYS_CONTROL,
                event,
                maxlen=self.settings.maxlen(SYS_CONTROL),
                approximate=True,
            )
            await pipe.execute()
