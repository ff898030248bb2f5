"""Daily summary: due once per NYSE session after the set time, with the day's figures."""

from __future__ import annotations

from datetime import UTC, datetime

import redis.asyncio as aioredis

from services.notifier import summary
from services.notifier.conditions import Conditions
from shared.contract import ORDERS_EVENTS, STRATEGY_DECISIONS, STRATEGY_PNL
from shared.contract.values import PnlFields
from shared.schemas import (
    Action,
    ContractRef,
    Decision,
    DecisionKind,
    DecisionOutcome,
    OrderEvent,
    OrderEventKind,
)
from shared.settings import Settings
from tests.helpers import wait_until
from tests.notifier.conftest import StartNotifier
from tests.notifier.helpers import add
from tests.notifier.receivers import JsonReceiver

WED_16_30_NY = datetime(2026, 12, 2, 21, 30, tzinfo=UTC)


def test_due_when_after_time_on_a_session_is_that_day_once() -> None:
    assert summary.due(WED_16_30_NY, "16:15", None) == "2026-12-02"
    assert summary.due(WED_16_30_NY, "16:15", "2026-12-02") is None  # already sent
    assert summary.due(WED_16_30_NY, "16:45", None) is None  # not yet


def test_due_when_not_a_session_is_never() -> None:
    saturday = datetime(2026, 12, 5, 22, 0, tzinfo=UTC)
    christmas = datetime(2026, 12, 25, 22, 0, tzinfo=UTC)
    assert summary.due(saturday, "16:15", None) is None
    assert summary.due(christmas, "16:15", None) is None


async def test_summary_when_due_is_delivered_once_with_pnl_round_trips_and_denials(
    redis: aioredis.Redis,
    settings: Settings,
    start_notifier: StartNotifier,
    json_receiver: JsonReceiver,
) -> None:
    c = ContractRef(symbol="AAPL")
    for action in (Action.BUY, Action.SELL):
        fill = OrderEvent(
            client_order_id="c1", kind=OrderEventKind.FILL, contract=c, action=action, fill_qty=1
        )
        await add(redis, ORDERS_EVENTS, fill)
    denied = dict(kind=DecisionKind.ENTRY, outcome=DecisionOutcome.DENIED, reason="max_positions")
    await add(redis, STRATEGY_DECISIONS, Decision(cycle="c2", client_order_id="c2", **denied))
    await add(redis, STRATEGY_DECISIONS, Decision(cycle="c3", **denied))  # no order: not counted
    pnl = {f: "0.00" for f in PnlFields.__struct_fields__}  # as the strategy writes it
    pnl |= {"daily_pnl": "-12.50", "realized": "-12.50", "equity": "3744.46"}
    await redis.hset(STRATEGY_PNL, mapping=PnlFields(**pnl).fields())
    await start_notifier(json_receiver.url)
    conditions = Conditions(redis, settings, src="notifier/test")
    assert await summary.maybe_send(conditions, WED_16_30_NY, "16:15")
    assert not await summary.maybe_send(conditions, WED_16_30_NY, "16:15")  # once per day
    title = "optbot [INFO] summary:2026-12-02"
    await wait_until(lambda: title in json_receiver.titles(), what="summary delivered")
    [msg] = [m for m in json_receiver.messages() if m["title"] == title]
    assert msg["message"].startswith("2026-12-02: P&L -12.50 (realized -12.50, unrealized 0.00)")
    assert "1 round trip(s), 2 fill(s), 1 denial(s), 0 incident(s)" in msg["message"]
