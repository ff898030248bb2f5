"""The order desk: every order passes the risk engine, every outcome is an event.

Sends entries and exits (``order.new``), reprices and cancels working orders, and
reports each decision on ``strategy:decisions``. A risk denial also goes on
``orders:events`` as a ``denied`` event for the order that was never sent.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis

from services.strategy.ledger import Ledger
from services.strategy.market import MarketView
from services.strategy.money import ZERO, dec
from services.strategy.orders import Cancel, OrderBook, PricingParams, Reprice, next_step
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
from shared.bus import Publisher
from shared.logs import get_logger
from shared.schemas import (
    Control,
    ControlAction,
    Decision,
    DecisionKind,
    DecisionOutcome,
    Direction,
    OrderCancel,
    OrderEvent,
    OrderEventKind,
    OrderModify,
    OrderNew,
)
from shared.settings import Settings
from shared.streams import (
    ORDERS_EVENTS,
    ORDERS_REQUESTS,
    RISK_STATE,
    STRATEGY_DECISIONS,
    SYS_CONTROL,
)

log = get_logger("optbot.strategy.desk")

ACK_TIMEOUT_S = 30.0


@dataclass
class Books:
    """The strategy's state, shared by the cycle, the desk and the views."""

    ledger: Ledger
    orders: OrderBook
    market: MarketView
    status: RiskStatus
    net_liquidation: Decimal | None = None  # from the broker's account snapshot
    decisions: int = 0
    last_reason: dict[str, str] = field(default_factory=dict)

    @property
    def net_liq(self) -> Decimal:
        return self.net_liquidation if self.net_liquidation is not None else self.ledger.equity


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
        self.starting_equity = dec(settings.strat_starting_equity)

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

    def view(self, key: str, now: float) -> RiskView:
        b = self.books
        entries = b.orders.working_entries()
        held = {k for k, p in b.ledger.positions.items() if p.qty}
        new_keys = {w.order.contract.key for w in entries} - held
        working_premium = sum(
            (dec(w.limit or 0) * w.order.contract.multiplier * w.order.quantity for w in entries),
            ZERO,
        )
        pos = b.ledger.positions.get(key)
        return RiskView(
            status=b.status,
            gateway_connected=b.market.gateway_connected,
            gateway_why=b.market.gateway_why,
            quote_age_s=b.market.age(key, now),
            working_keys=b.orders.working_keys(),
            open_positions=len(held) + len(new_keys),
            position_qty=abs(pos.qty) if pos else 0,
            premium_at_risk=b.ledger.premium_at_risk + working_premium,
            net_liquidation=b.net_liq,
            starting_equity=self.starting_equity,
            daily_pnl=b.ledger.daily_pnl(dt.datetime.now(dt.UTC).date()),
            orders_last_min=b.orders.orders_since(now - 60.0),
        )

    async def refresh_status(self) -> RiskStatus:
        """Re-read ``risk:state``: a halt from the CLI applies to the very next order."""
        self.books.status = await load_status(self.redis)
        return self.books.status

    # --- orders -------------------------------------------------------------------------

    async def submit(self, order: OrderNew, ctx: Context) -> Verdict:
        """Risk-check and send one order; a denial is reported, never raised."""
        await self.refresh_status()
        now = time.monotonic()
        intent = OrderIntent(
            order.contract,
            order.action,
            order.quantity,
            order.limit_price or 0.0,
            order.reduce_only,
        )
        verdict = self.risk.check(intent, self.view(order.contract.key, now))
        if not verdict.allowed:
            self.decide(
                ctx, DecisionOutcome.DENIED, f"{verdict.check}: {verdict.reason}", order=order
            )
            self.pub.add(
                ORDERS_EVENTS,
                OrderEvent(
                    client_order_id=order.client_order_id,
                    kind=OrderEventKind.DENIED,
                    contract=order.contract,
                    action=order.action,
                    reason=f"risk {verdict.check}: {verdict.reason}",
                ),
                key=order.client_order_id,
            )
            if verdict.halt:
                await self.set_state(RiskState.HALTED, verdict.reason, "risk-engine")
            return verdict
        await self.pub.publish(ORDERS_REQUESTS, order, key=order.client_order_id)
        self.books.orders.on_request(order, now, self.pricing.interval_s)
        self.decide(ctx, DecisionOutcome.TAKEN, order.reason, order=order)
        return verdict

    async def manage(self, cycle: str) -> None:
        """Reprice working limit orders toward the far side; cancel when out of steps."""
        now = time.monotonic()
        for cid, w in list(self.books.orders.working.items()):
            if w.cancel_sent:
                continue
            if not w.acked and now - w.sent_at > ACK_TIMEOUT_S:
                await self.cancel(cid, f"no acknowledgement in {ACK_TIMEOUT_S:g}s", cycle)
                continue
            step = next_step(w, self.books.market.quote(w.order.contract.key), now, self.pricing)
            if isinstance(step, Reprice):
                req = OrderModify(
                    client_order_id=cid, limit_price=step.limit, reason=f"reprice {w.reprices + 1}"
                )
                await self.pub.publish(ORDERS_REQUESTS, req, key=cid)
                self.books.orders.on_modify(req, now, self.pricing.interval_s)
                ctx = Context(cycle, DecisionKind.REPRICE, w.order.contract.symbol)
                self.decide(ctx, DecisionOutcome.TAKEN, f"{cid}: limit {step.limit:.2f}")
            elif isinstance(step, Cancel):
                await self.cancel(cid, step.reason, cycle)

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

    async def set_state(self, state: RiskState, why: str, who: str) -> None:
        """Persist a state change and record it as a control event (who, when, why)."""
        status = RiskStatus(state, why, who, time.time())
        self.books.status = status
        fields: dict[Any, Any] = status_fields(status)
        await self.redis.hset(RISK_STATE, mapping=fields)
        action = {
            RiskState.HALTED: ControlAction.HALT,
            RiskState.REDUCING: ControlAction.REDUCE,
            RiskState.ACTIVE: ControlAction.RESUME,
        }[state]
        await self.pub.publish(
            SYS_CONTROL, Control(action=action, who=who, why=why), key=action.value
        )
        log.warning("risk_state", state=state.value, why=why, who=who)
