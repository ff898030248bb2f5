"""Hypothesis drives the risk engine and the ledger together through random days.

Random sequences of quotes, entries, fills (partial too, at any price the order can
fill at), reprices, exits, controls (halt, reduce, resume, flatten), cancels and day
rollovers run through the real desk and management tick over a real Redis. After
every step: no position or premium beyond its limit at any fill price, nothing sent
while HALTED but cancels and an operator's flatten, no exit denied because of a loss
breach, and the ledger's identity exact.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from services.strategy.risk import RiskState, total_premium_cap, trade_budget
from shared.contract import ORDERS_REQUESTS, STRATEGY_DECISIONS
from shared.envelope import decode
from shared.schemas import (
    Action,
    ControlAction,
    Decision,
    DecisionKind,
    DecisionOutcome,
    OrderCancel,
    OrderEvent,
    OrderEventKind,
    OrderModify,
    OrderNew,
    Quote,
)
from shared.settings import Settings
from tests.strategy.desk_rig import CALL, OTHER, Rig, cand, make_rig

CONTRACTS = (CALL, OTHER)
SEEN: Counter[str] = Counter()  # what the runs did: the test fails if they did nothing


def event(what: str) -> None:
    SEEN[what] += 1


PRICES = st.integers(min_value=5, max_value=200).map(lambda c: c / 100)


class RiskAndLedger(RuleBasedStateMachine):
    def __init__(self, settings_: Settings) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.settings = settings_
        self.redis = aioredis.Redis.from_url(settings_.redis_url)
        self.rig: Rig = self.run(make_rig(self.redis, settings_))
        self.limits = self.rig.desk.risk.limits
        self.last_request = "0"
        self.last_decision = "0"
        self.n = 0

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.redis.aclose())
        self.loop.close()

    # --- what happens -------------------------------------------------------------------

    def step(self, coro: Any) -> None:
        """Run one step and check what it sent against the state it was sent in."""
        halted_before = self.rig.books.status.state is RiskState.HALTED
        self.run(coro)
        self.run(self.rig.pub.flush())
        halted_after = self.rig.books.status.state is RiskState.HALTED
        for msg in self.new_requests():
            event(type(msg).__name__ + (" reduce-only" if getattr(msg, "reduce_only", 0) else ""))
            if halted_before and halted_after:
                operator = isinstance(msg, OrderNew | OrderModify) and self.is_operator(msg)
                assert isinstance(msg, OrderCancel) or operator, f"sent while HALTED: {msg}"
        for d in self.new_decisions():
            if "capped" in d.reason or "stopped at" in d.reason:
                event("reprice limited")
            if d.outcome is DecisionOutcome.DENIED:
                event("denied " + d.reason.split(":")[0])
            if d.kind is DecisionKind.EXIT:
                event(f"exit {d.outcome.value}")
            if d.kind is DecisionKind.EXIT and d.outcome is DecisionOutcome.DENIED:
                loss = ("daily_loss", "daily loss", "REDUCING")
                assert not any(x in d.reason for x in loss), f"exit denied by a loss: {d.reason}"
        if self.rig.books.status.who == "risk-engine" and self.rig.books.status.breach_day:
            event("breach")

    def is_operator(self, msg: OrderNew | OrderModify) -> bool:
        if isinstance(msg, OrderNew):
            return bool(msg.requested_by)
        order = self.rig.books.orders.requests.get(msg.client_order_id)
        return order is not None and bool(order.requested_by)

    def new_requests(self) -> list[Any]:
        rows: Any = self.run(self.redis.xrange(ORDERS_REQUESTS, min=f"({self.last_request}"))
        if rows:
            self.last_request = rows[-1][0].decode()
        return [decode(f, i).body for i, f in rows]

    def new_decisions(self) -> list[Decision]:
        rows: Any = self.run(self.redis.xrange(STRATEGY_DECISIONS, min=f"({self.last_decision}"))
        if rows:
            self.last_decision = rows[-1][0].decode()
        return [decode(f, i).body for i, f in rows]

    @initialize(bids=st.tuples(PRICES, PRICES))
    def market_opens(self, bids: tuple[float, float]) -> None:
        for which, bid in zip(CONTRACTS, bids, strict=True):
            self.quote(which, bid, 10)

    @rule(which=st.sampled_from(CONTRACTS), bid=PRICES, spread=st.integers(1, 40))
    def quote(self, which: Any, bid: float, spread: int) -> None:
        ask = round(bid + spread / 100, 2)
        self.rig.books.market.on_quote(
            Quote(contract=which, bid=bid, ask=ask, mark=round((bid + ask) / 2, 4))
        )

    @rule(which=st.sampled_from(CONTRACTS), drop=st.integers(50, 95))
    def crash(self, which: Any, drop: int) -> None:
        """The option loses most of its value: the daily-loss limit comes into play."""
        q = self.rig.books.market.quote(which.key)
        if q is not None and q.bid is not None:
            bid = max(round(q.bid * (100 - drop) / 100, 2), 0.01)
            self.quote(which, bid, 5)

    @rule(which=st.sampled_from(CONTRACTS), under=st.integers(0, 20), spread=st.integers(10, 60))
    def entry_near_budget(self, which: Any, under: int, spread: int) -> None:
        """An entry priced just under the per-trade budget, in a wide market: its reprices
        toward the ask are where the premium limits must hold."""
        budget = trade_budget(self.rig.desk.day.opening_equity, self.limits)
        price = float(budget) / 100 - under / 100
        self.quote(which, round(price - spread / 200, 2), spread)
        self.entry(which, 1, 0.5)

    @rule(which=st.sampled_from(CONTRACTS), qty=st.integers(1, 3), at=st.floats(0, 1))
    def entry(self, which: Any, qty: int, at: float) -> None:
        if which.key in self.rig.books.orders.working_keys():
            which = CONTRACTS[1 - CONTRACTS.index(which)]
        q = self.rig.books.market.quote(which.key)
        if q is None or q.bid is None or q.ask is None:
            return
        self.n += 1
        price = round(q.bid + (q.ask - q.bid) * at, 2) or 0.01
        order = OrderNew(
            client_order_id=f"ob-{self.n}",
            contract=which,
            action=Action.BUY,
            quantity=qty,
            limit_price=price,
        )
        self.step(self.rig.desk.submit(order, self.rig.cycles._context("c", cand())))
        event("entry sent" if order.client_order_id in self.rig.books.orders.requests else "entry")

    @rule(data=st.data())
    def fill(self, data: st.DataObject) -> None:
        """The executor fills part or all of a working order at a price its limit allows."""
        working = sorted(self.rig.books.orders.working.items())
        if not working:
            return
        cid, w = data.draw(st.sampled_from(working))
        if w.limit is None or w.remaining == 0:
            return
        qty = data.draw(st.integers(1, w.remaining))
        cents = round(w.limit * 100)
        if w.order.action is Action.BUY:
            price = data.draw(st.integers(1, cents)) / 100  # a buy fills at its limit or better
        else:
            price = data.draw(st.integers(cents, cents + 100)) / 100
        if not w.acked:
            self.rig.event(OrderEvent(client_order_id=cid, kind=OrderEventKind.ACK))
        total = w.filled + qty
        self.rig.fill(
            cid, w.order.action, qty, price, total, w.order.quantity - total, w.order.contract
        )
        event(f"fill {w.order.action.value}")
        self.check_premium_after_fill()

    @rule()
    def fill_everything(self) -> None:
        """The market trades through every working order: each fills whole at its limit."""
        for cid, w in sorted(self.rig.books.orders.working.items()):
            if w.limit is None or w.remaining == 0 or w.cancel_sent:
                continue
            if not w.acked:
                self.rig.event(OrderEvent(client_order_id=cid, kind=OrderEventKind.ACK))
            event(f"fill {w.order.action.value}")
            self.rig.fill(
                cid, w.order.action, w.remaining, w.limit, w.order.quantity, 0, w.order.contract
            )
            self.check_premium_after_fill()

    @rule()
    def tick(self) -> None:
        """A management tick with every reprice step due: marks, loss rule, exits, reprices."""
        self.rig.due()
        event(f"tick with {len(self.rig.books.orders.working)} working")
        self.step(self.rig.cycles.manage())

    @rule()
    def acknowledge(self) -> None:
        for cid, w in sorted(self.rig.books.orders.working.items()):
            if not w.acked:
                event("ack")
                self.rig.event(OrderEvent(client_order_id=cid, kind=OrderEventKind.ACK))

    @rule()
    def confirm_cancels(self) -> None:
        for cid, w in sorted(self.rig.books.orders.working.items()):
            if w.cancel_sent:
                self.rig.event(OrderEvent(client_order_id=cid, kind=OrderEventKind.CANCELLED))

    @rule(
        action=st.sampled_from(
            [ControlAction.HALT, ControlAction.REDUCE] + [ControlAction.RESUME] * 3
        )
    )
    def control(self, action: ControlAction) -> None:
        self.step(self.rig.control(action, "ann", "test"))

    @rule(
        which=st.sampled_from(CONTRACTS),
        action=st.sampled_from(list(Action)),
        extra=st.integers(0, 3),
        operator=st.booleans(),
    )
    def forged_reduce_only(self, which: Any, action: Action, extra: int, operator: bool) -> None:
        """A reduce-only order the engine must check, not trust (side, size, state)."""
        held = self.rig.books.ledger.positions.get(which.key)
        qty = (abs(held.qty) if held else 0) + extra or 1
        q = self.rig.books.market.quote(which.key)
        if q is None or q.bid is None or q.ask is None:
            return
        self.n += 1
        order = OrderNew(
            client_order_id=f"ox-{self.n}",
            contract=which,
            action=action,
            quantity=qty,
            limit_price=q.bid if action is Action.SELL else q.ask,
            reduce_only=True,
            requested_by="ann" if operator else "",
        )
        self.step(self.rig.desk.submit(order, self.rig.cycles._context("c", cand())))

    @rule()
    def flatten(self) -> None:
        self.step(self.rig.cycles.flatten("", "ann"))

    @rule(hours=st.integers(1, 30))
    def time_passes(self, hours: int) -> None:
        """Hours go by (maybe a New York midnight); DAY orders end at the close."""
        self.confirm_all_cancels()
        self.rig.clock[0] += hours * 3600
        self.step(self.rig.cycles.manage())

    def confirm_all_cancels(self) -> None:
        for cid in sorted(self.rig.books.orders.working):
            self.rig.event(OrderEvent(client_order_id=cid, kind=OrderEventKind.CANCELLED))

    # --- what must always hold ----------------------------------------------------------

    def check_premium_after_fill(self) -> None:
        """At any fill price, what is at risk stays within the cap of the day."""
        view = self.rig.desk.view("-", 0.0)
        cap = total_premium_cap(view.opening_equity, self.limits)
        assert view.premium_at_risk <= cap, (view.premium_at_risk, cap)

    @invariant()
    def ledger_identity(self) -> None:
        led = self.rig.books.ledger
        assert led.cash + led.market_value - led.starting_cash == (
            led.realized + led.unrealized - led.commissions
        )

    @invariant()
    def positions_within_limits(self) -> None:
        led = self.rig.books.ledger
        for p in led.positions.values():
            assert abs(p.qty) <= self.limits.max_contracts, p
            assert p.qty > 0, f"an exit went past flat: {p}"
        assert len(led.positions) <= self.limits.max_positions

    @invariant()
    def working_entries_within_trade_budget(self) -> None:
        budget = trade_budget(self.rig.desk.day.opening_equity, self.limits)
        for w in self.rig.books.orders.working_entries():
            cost = Decimal(str(w.limit or 0)) * w.order.contract.multiplier * w.order.quantity
            assert cost <= budget, (w.order.client_order_id, w.limit, cost, budget)


def test_risk_and_ledger_hold_over_random_days(settings: Settings) -> None:
    SEEN.clear()
    run_state_machine_as_test(
        lambda: RiskAndLedger(settings),
        settings=settings_for_machine(),
    )
    print(dict(SEEN))
    for what in ("entry sent", "fill BUY", "fill SELL", "OrderModify", "OrderNew reduce-only"):
        assert SEEN[what] > 0, f"no run did {what!r}: {dict(SEEN)}"


def settings_for_machine() -> Any:
    # No shrinking: a failure prints its (longer) example at once, and the run stays bounded.
    return settings(
        phases=(Phase.explicit, Phase.reuse, Phase.generate),
        max_examples=300,
        stateful_step_count=50,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
