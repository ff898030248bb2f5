"""The desk and the management tick over real Redis: the money-losing cases of issue 14.

Each test builds the strategy's books, desk and cycles as the service does, feeds
quotes, fills and controls straight into them, and reads what was really sent from
``orders:requests`` and decided on ``strategy:decisions``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.strategy.desk import ACK_TIMEOUT_S
from services.strategy.ledger import fill_from_event
from services.strategy.reconcile import BookReconciler
from services.strategy.risk import RiskLimits, RiskState, load_status
from services.strategy.views import pnl_fields
from shared.contract import ORDERS_EVENTS, SYS_CONTROL
from shared.envelope import decode
from shared.schemas import (
    Action,
    ConnState,
    ControlAction,
    DecisionOutcome,
    GatewayStatus,
    OrderCancel,
    OrderEvent,
    OrderEventKind,
    OrderModify,
    OrderNew,
    Quote,
    RiskStateChange,
    Sentiment,
)
from shared.settings import Settings
from tests.strategy.desk_rig import CALL, OTHER, Rig, buy, cand, hold_long, make_rig


async def events_of(rig: Rig, cls: type, stream: str = ORDERS_EVENTS) -> list[Any]:
    """Bodies of ``cls`` on ``stream`` (after what the desk queued is written)."""
    await rig.pub.flush()
    rows: Any = await rig.redis.xrange(stream)
    return [b for b in (decode(f, i).body for i, f in rows) if isinstance(b, cls)]


@pytest.fixture
async def rig(redis: aioredis.Redis, settings: Settings) -> Rig:
    return await make_rig(redis, settings)


# --- 1. a daily-loss breach reduces, never traps ---------------------------------------


async def test_daily_loss_when_breached_sets_reducing_and_stop_loss_exit_goes_out(rig: Rig) -> None:
    await hold_long(rig, 1.80)
    rig.quote(0.25, 0.30)
    await rig.tick()
    status = await load_status(rig.redis)
    assert status.state is RiskState.REDUCING and status.who == "risk-engine"
    assert "daily loss 153.15 >= limit 150.28" in status.why
    assert status.breach_day == "2026-12-02"
    exits = [m for m in await rig.sent() if isinstance(m, OrderNew) and m.reduce_only]
    assert len(exits) == 1 and exits[0].action is Action.SELL and exits[0].quantity == 1
    assert "stop-loss" in exits[0].reason


async def test_daily_loss_when_operator_resumes_after_breach_engine_does_not_override(
    rig: Rig, settings: Settings
) -> None:
    await hold_long(rig, 1.80)
    rig.quote(0.25, 0.30)
    await rig.tick()
    assert rig.books.status.state is RiskState.REDUCING
    await rig.control(ControlAction.RESUME, "ann", "seen")
    for _ in range(3):
        await rig.tick()
    status = await load_status(rig.redis)
    assert (status.state, status.who) == (RiskState.ACTIVE, "ann")
    # the limit itself still holds for new exposure
    rig.books.market.on_quote(Quote(contract=OTHER, bid=0.09, ask=0.11, mark=0.10))
    entry = buy("ob-9", 1, 0.10, OTHER)
    verdict = await rig.desk.submit(entry, rig.cycles._context("c", cand()))
    assert (verdict.allowed, verdict.check) == (False, "daily_loss")


async def test_flatten_when_halted_by_operator_still_closes(rig: Rig, settings: Settings) -> None:
    await hold_long(rig, 1.80)
    await rig.control(ControlAction.HALT, "ann", "news")
    rig.quote(1.00, 1.10)  # a stop-loss is due, but an operator's HALTED blocks rule exits
    await rig.tick()
    assert not [m for m in await rig.sent() if isinstance(m, OrderNew) and m.reduce_only]
    await rig.cycles.flatten("", "ann")
    exits = [m for m in await rig.sent() if isinstance(m, OrderNew) and m.reduce_only]
    assert len(exits) == 1 and exits[0].requested_by == "ann"
    # and its reprices go out in HALTED too (an operator's order)
    rig.event(OrderEvent(client_order_id=exits[0].client_order_id, kind=OrderEventKind.ACK))
    rig.due()
    await rig.tick()
    assert any(isinstance(m, OrderModify) for m in await rig.sent())


async def test_daily_loss_when_day_changes_resets_from_the_new_opening_equity(rig: Rig) -> None:
    await hold_long(rig, 1.80)
    rig.quote(0.25, 0.30)
    await rig.tick()
    assert rig.books.status.state is RiskState.REDUCING
    first = rig.desk.day.current
    assert first is not None and rig.desk.day.daily_pnl() == Decimal("-153.15")
    rig.clock[0] += 86_400  # next New York day, the position still held at the same mark
    rig.books.orders.working.clear()
    rig.quote(0.25, 0.30)
    await rig.tick()
    second = rig.desk.day.current
    assert second is not None and second.day == dt.date(2026, 12, 3)
    assert second.open_equity == first.open_equity - Decimal("153.15")
    assert rig.desk.day.daily_pnl() == Decimal("0.00")  # yesterday's loss stays yesterday's
    status = await load_status(rig.redis)
    assert status.state is RiskState.ACTIVE and "new trading day 2026-12-03" in status.why


async def test_trading_day_when_utc_date_already_next_is_still_new_york_day(rig: Rig) -> None:
    rig.clock[0] = dt.datetime(2026, 12, 3, 3, 30, tzinfo=dt.UTC).timestamp()  # 22:30 NY, Dec 2
    await rig.tick()
    assert rig.desk.day.current is not None
    assert rig.desk.day.current.day == dt.date(2026, 12, 2)


# --- 2. reprices are risk-checked at their own price ------------------------------------


async def test_reprice_when_it_would_breach_trade_premium_stops_at_last_allowed_price(
    rig: Rig,
) -> None:
    rig.quote(1.74, 1.98)
    ctx = rig.cycles._context("c", cand())
    assert (await rig.desk.submit(buy("ob-1", 1, 1.86), ctx)).allowed  # 186.00 of 187.85
    rig.event(OrderEvent(client_order_id="ob-1", kind=OrderEventKind.ACK, contract=CALL))
    for _ in range(4):
        rig.due()
        await rig.tick()
    limits = [m.limit_price for m in await rig.sent() if isinstance(m, OrderModify)]
    assert limits == [1.87]  # 1.90 capped to 1.87; then held there, never above
    reasons = [d.reason for d in await rig.decisions()]
    assert any("capped" in r and "trade_premium" in r for r in reasons)
    assert any("reprice stopped at 1.87" in r for r in reasons)


async def test_reprice_when_total_premium_cap_would_breach_is_capped(
    rig: Rig, settings: Settings
) -> None:
    # 15 % cap 563.54: 450.00 held in BAC; an INTC entry at 1.10 (560.00 in all) reprices
    other = OTHER
    rig.books.ledger.apply(
        fill_from_event(
            OrderEvent(
                client_order_id="ob-0",
                kind=OrderEventKind.FILL,
                contract=other,
                action=Action.BUY,
                fill_qty=1,
                fill_price=2.25,
                filled_total=1,
                exec_id="x",
            ),
            int(rig.clock[0] * 1e9),
        )  # type: ignore[arg-type]
    )
    rig.books.ledger.apply(
        fill_from_event(
            OrderEvent(
                client_order_id="ob-00",
                kind=OrderEventKind.FILL,
                contract=other,
                action=Action.BUY,
                fill_qty=1,
                fill_price=2.25,
                filled_total=1,
                exec_id="y",
            ),
            int(rig.clock[0] * 1e9),
        )  # type: ignore[arg-type]
    )  # 450.00 at risk
    rig.quote(1.00, 1.40)
    ctx = rig.cycles._context("c", cand())
    assert (await rig.desk.submit(buy("ob-1", 1, 1.10), ctx)).allowed  # 560.00 <= 563.54
    rig.event(OrderEvent(client_order_id="ob-1", kind=OrderEventKind.ACK, contract=CALL))
    rig.due()
    await rig.tick()
    limits = [m.limit_price for m in await rig.sent() if isinstance(m, OrderModify)]
    assert limits == [1.13]  # step 1 wanted 1.27; 450.00 + 113.00 <= 563.54 < 450.00 + 114.00
    view = rig.desk.view(CALL.key, time.monotonic())
    assert view.premium_at_risk == Decimal("563.00")
    reasons = [d.reason for d in await rig.decisions()]
    assert any("capped" in r and "total_premium" in r for r in reasons)


# --- 5. an exit first cancels the working entry; working premium is the remainder --------


async def test_exit_when_entry_partly_filled_cancels_entry_then_closes_held(rig: Rig) -> None:
    rig.quote(0.88, 0.92)
    ctx = rig.cycles._context("c", cand())
    assert (await rig.desk.submit(buy("ob-1", 2, 0.90), ctx)).allowed
    rig.event(OrderEvent(client_order_id="ob-1", kind=OrderEventKind.ACK, contract=CALL))
    rig.fill("ob-1", Action.BUY, 1, 0.90, 1, 1)
    view = rig.desk.view("other", time.monotonic())
    assert view.premium_at_risk == Decimal("180.00")  # 90.00 held + 90.00 unfilled, not 270
    rig.books.market.sentiment = Sentiment.BEARISH  # against a long call: exit due
    await rig.tick()
    sent = await rig.sent()
    cancels = [m for m in sent if type(m).__name__ == "OrderCancel"]
    assert [c.client_order_id for c in cancels] == ["ob-1"]
    assert not [m for m in sent if isinstance(m, OrderNew) and m.reduce_only]
    assert not [m for m in sent if isinstance(m, OrderModify)]  # no more buying into it
    rig.event(OrderEvent(client_order_id="ob-1", kind=OrderEventKind.CANCELLED, contract=CALL))
    await rig.tick()
    exits = [m for m in await rig.sent() if isinstance(m, OrderNew) and m.reduce_only]
    assert [(e.action, e.quantity) for e in exits] == [(Action.SELL, 1)]


# --- 6. reduce-only is checked; two exits of one position cannot both go ----------------


async def test_exit_when_flatten_and_rule_exit_race_only_one_is_sent(rig: Rig) -> None:
    await hold_long(rig, 1.00)
    rig.quote(0.40, 0.44)  # stop-loss due
    await asyncio.gather(rig.cycles.flatten("", "ann"), rig.cycles.manage())
    exits = [m for m in await rig.sent() if isinstance(m, OrderNew) and m.reduce_only]
    assert len(exits) == 1


async def test_submit_when_reduce_only_would_flip_position_is_denied(rig: Rig) -> None:
    await hold_long(rig, 1.00)
    rig.quote(0.98, 1.02)
    ctx = rig.cycles._context("c", cand())
    sell5 = OrderNew(
        client_order_id="ox-x",
        contract=CALL,
        action=Action.SELL,
        quantity=5,
        limit_price=1.0,
        reduce_only=True,
    )
    verdict = await rig.desk.submit(sell5, ctx)
    assert (verdict.allowed, verdict.check) == (False, "reduce_only")
    buy5 = OrderNew(
        client_order_id="ox-y",
        contract=CALL,
        action=Action.BUY,
        quantity=5,
        limit_price=1.0,
        reduce_only=True,
    )
    assert (await rig.desk.submit(buy5, ctx)).check == "reduce_only"


# --- 7. exits on the price you can get; stale marks are flagged --------------------------


async def test_exit_when_bid_is_past_the_stop_but_mid_is_not_closes(rig: Rig) -> None:
    await hold_long(rig, 1.00)
    rig.quote(0.68, 0.76)  # mid 0.72 (-28 %), bid 0.68 (-32 %): stop-loss 30 % on the bid
    await rig.tick()
    exits = [m for m in await rig.sent() if isinstance(m, OrderNew) and m.reduce_only]
    assert len(exits) == 1 and "stop-loss: -32.0%" in exits[0].reason


async def test_mark_when_quote_one_sided_is_stale_and_triggers_nothing(
    rig: Rig, settings: Settings
) -> None:
    await hold_long(rig, 1.00)
    rig.quote(None, 1.10, last=0.10)  # one-sided: its "mark" is an old last trade
    await rig.tick()
    assert not [m for m in await rig.sent() if isinstance(m, OrderNew) and m.reduce_only]
    fields = pnl_fields(
        rig.books, BookReconciler(), rig.desk.day, RiskLimits.from_settings(settings)
    ).fields()
    assert fields["stale_marks"] == CALL.key
    assert fields["daily_pnl_basis"].startswith("stale marks")


# --- 3. one starting equity -------------------------------------------------------------


async def test_equity_when_broker_snapshot_arrives_ledger_sizing_and_limits_use_it(
    rig: Rig, settings: Settings
) -> None:
    assert rig.desk.day.opening_equity == Decimal("3756.96")  # the fallback until a snapshot
    rig.books.net_liquidation = Decimal("1000000")
    await rig.desk.day.on_broker(Decimal("1000000"))
    assert rig.desk.day.opening_equity == Decimal("1000000.00")
    assert rig.books.ledger.equity == Decimal("1000000.00")
    view = rig.desk.view(CALL.key, time.monotonic())
    assert view.opening_equity == Decimal("1000000.00")
    fields = pnl_fields(
        rig.books, BookReconciler(), rig.desk.day, RiskLimits.from_settings(settings)
    ).fields()
    assert (fields["opening_equity"], fields["equity_source"]) == ("1000000.00", "broker")
    assert fields["daily_loss_limit"] == "40000.00"
    assert fields["starting_cash"] == "1000000.00"


async def test_entry_when_last_round_trip_lost_waits_out_the_reentry_cooldown(
    rig: Rig, settings: Settings
) -> None:
    await hold_long(rig, 1.00)
    rig.quote(0.60, 0.64)  # stop-loss on the bid: -40 %
    await rig.tick()
    (exit_order,) = [m for m in await rig.sent() if isinstance(m, OrderNew) and m.reduce_only]
    rig.event(OrderEvent(client_order_id=exit_order.client_order_id, kind=OrderEventKind.ACK))
    rig.fill(exit_order.client_order_id, Action.SELL, 1, 0.60, 1, 0)
    assert not rig.books.ledger.positions
    reason = rig.cycles._occupied("INTC")
    assert reason is not None and reason.startswith("re-entry cooldown: INTC's last round trip")
    assert rig.cycles._occupied("BAC") is None  # other underlyings are not held back
    rig.clock[0] += settings.strat_reentry_cooldown_s + 1
    assert rig.cycles._occupied("INTC") is None


async def test_entry_when_last_round_trip_won_is_not_held_back(rig: Rig) -> None:
    await hold_long(rig, 1.00)
    rig.quote(1.60, 1.64)  # take-profit on the bid: +60 %
    await rig.tick()
    (exit_order,) = [m for m in await rig.sent() if isinstance(m, OrderNew) and m.reduce_only]
    rig.event(OrderEvent(client_order_id=exit_order.client_order_id, kind=OrderEventKind.ACK))
    rig.fill(exit_order.client_order_id, Action.SELL, 1, 1.60, 1, 0)
    assert rig.cycles._occupied("INTC") is None


# --- the desk's own contract: denials are decisions, deduplicated, state atomic ---


async def test_submit_when_gateway_disconnected_denies_as_a_decision_and_sends_nothing(
    rig: Rig,
) -> None:
    rig.books.market.on_status(GatewayStatus(state=ConnState.DISCONNECTED, reason="drop"))
    rig.quote(0.98, 1.02)
    verdict = await rig.desk.submit(buy("ob-1", 1, 1.00), rig.cycles._context("c", cand()))
    assert (verdict.allowed, verdict.check) == (False, "gateway")
    assert await rig.sent() == [] and "ob-1" not in rig.books.orders.working
    (d,) = await rig.decisions_of(DecisionOutcome.DENIED)
    assert d.client_order_id == "ob-1" and d.reason.startswith("gateway: gateway not connected")
    # orders:events is the adapter's alone (one writer): a refusal is only a decision.
    assert await events_of(rig, OrderEvent) == []


async def test_decide_when_reason_repeats_publishes_once_and_again_when_it_changes(
    rig: Rig,
) -> None:
    ctx = rig.cycles._context("c", cand())
    for reason in ("no chain", "no chain", "no quote", "no chain"):
        rig.desk.decide(ctx, DecisionOutcome.SKIPPED, reason, dedupe="INTC")
    reasons = [d.reason for d in await rig.decisions_of(DecisionOutcome.SKIPPED)]
    assert reasons == ["no chain", "no quote", "no chain"]


async def test_manage_when_no_ack_within_timeout_cancels_the_order(rig: Rig) -> None:
    rig.quote(0.98, 1.02)
    assert (await rig.desk.submit(buy("ob-1", 1, 1.00), rig.cycles._context("c", cand()))).allowed
    rig.books.orders.working["ob-1"].sent_at -= ACK_TIMEOUT_S + 1  # sent 31 s ago, never acked
    await rig.tick()
    (cancel,) = [m for m in await rig.sent() if isinstance(m, OrderCancel)]
    assert cancel.client_order_id == "ob-1" and "no acknowledgement in 30s" in cancel.reason
    await rig.tick()  # asked once: a second tick does not cancel again
    assert len([m for m in await rig.sent() if isinstance(m, OrderCancel)]) == 1


async def test_cancel_entries_when_exit_also_working_cancels_only_entries(rig: Rig) -> None:
    await hold_long(rig, 1.00)
    rig.books.market.on_quote(Quote(contract=OTHER, bid=0.98, ask=1.02, mark=1.00))
    ctx = rig.cycles._context("c", cand())
    assert (await rig.desk.submit(buy("ob-2", 1, 1.00, OTHER), ctx)).allowed
    rig.quote(0.98, 1.02)
    await rig.cycles.flatten(CALL.key, "ann")  # an exit of the held INTC call
    await rig.desk.cancel_entries("risk REDUCING", "c")
    cancels = [m.client_order_id for m in await rig.sent() if isinstance(m, OrderCancel)]
    assert cancels == ["ob-2"]


async def test_set_state_when_changed_writes_risk_state_and_its_control_event_together(
    rig: Rig,
) -> None:
    await rig.desk.set_state(RiskState.REDUCING, "loss", "risk-engine", breach_day="2026-12-02")
    status = await load_status(rig.redis)
    assert (status.state, status.why, status.who) == (RiskState.REDUCING, "loss", "risk-engine")
    assert status.breach_day == "2026-12-02" and rig.books.status.state is RiskState.REDUCING
    (record,) = await events_of(rig, RiskStateChange, SYS_CONTROL)
    assert (record.state, record.previous, record.who, record.why) == (
        RiskState.REDUCING,
        RiskState.ACTIVE,
        "risk-engine",
        "loss",
    )
    await rig.desk.set_state(RiskState.ACTIVE, "ok", "ann")  # the breach day is kept
    assert (await load_status(rig.redis)).breach_day == "2026-12-02"


async def test_reprice_when_halted_sends_no_modify_and_says_why(rig: Rig) -> None:
    rig.quote(0.90, 1.10)
    assert (await rig.desk.submit(buy("ob-1", 1, 0.95), rig.cycles._context("c", cand()))).allowed
    rig.event(OrderEvent(client_order_id="ob-1", kind=OrderEventKind.ACK, contract=CALL))
    await rig.desk.set_state(RiskState.HALTED, "news", "ann")
    rig.due()
    await rig.desk.manage("c")
    assert not [m for m in await rig.sent() if isinstance(m, OrderModify)]
    denied = [d.reason for d in await rig.decisions_of(DecisionOutcome.DENIED)]
    assert len(denied) == 1 and denied[0].startswith("ob-1: no reprice to")
    assert "HALTED (news)" in denied[0]


# --- the gateway reconciles after a reconnect: no new entry until it says connected ------


async def test_entry_when_gateway_syncing_is_denied_and_sent_only_once_connected(
    rig: Rig,
) -> None:
    rig.quote(1.78, 1.82)
    ctx = rig.cycles._context("c", cand())
    reconciling = "reconciling executions, orders, positions"
    rig.books.market.on_status(GatewayStatus(state=ConnState.SYNCING, reason=reconciling))
    verdict = await rig.desk.submit(buy("sy-1", 1, 1.80), ctx)
    assert (verdict.allowed, verdict.check) == (False, "gateway")
    assert "syncing" in verdict.reason
    assert await rig.sent() == []
    rig.books.market.on_status(GatewayStatus(state=ConnState.CONNECTED, reason="synced"))
    assert (await rig.desk.submit(buy("sy-2", 1, 1.80), ctx)).allowed
    assert [o.client_order_id for o in await rig.sent()] == ["sy-2"]
