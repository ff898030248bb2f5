"""A small run's stream messages: two sessions, three round trips, a denial, a halt."""

from __future__ import annotations

from typing import Any

from shared.envelope import Message
from shared.schemas import (
    Action,
    ContractRef,
    Decision,
    DecisionKind,
    DecisionOutcome,
    OrderEvent,
    OrderEventKind,
    OrderNew,
    Right,
    RiskState,
    RiskStateChange,
    SecType,
)

DAY1 = 1_735_830_000  # 2025-01-02 10:00 New York
DAY2 = DAY1 + 86_400
CALL = ContractRef(
    symbol="AAPL", sec_type=SecType.OPT, expiry="20250117", strike=250.0, right=Right.CALL,
    multiplier=100,
)  # fmt: skip
PUT = ContractRef(
    symbol="SPY", sec_type=SecType.OPT, expiry="20250117", strike=590.0, right=Right.PUT,
    multiplier=100,
)  # fmt: skip


def _msg(body: Any, ts: float) -> Message[Any]:
    return Message(body=body, src="test", ts=int(ts * 1e9))


def _order(n: int, ref: ContractRef, action: Action, qty: int, px: float, why: str, ts: float):  # type: ignore[no-untyped-def]
    cid = f"o{n}"
    new = OrderNew(
        client_order_id=cid, contract=ref, action=action, quantity=qty, limit_price=px, reason=why
    )
    fill = OrderEvent(
        client_order_id=cid,
        kind=OrderEventKind.FILL,
        contract=ref,
        action=action,
        fill_qty=qty,
        fill_price=px,
        commission=0.65 * qty,
        filled_total=qty,
        exec_id=f"x{n}",
    )
    return [_msg(new, ts), _msg(fill, ts + 1)]


def run_messages() -> list[Message[Any]]:
    """Trips: AAPL +2 → 1.50 to 2.10 (win), SPY +1 → 3.00 to 2.40 (loss), AAPL +1 open
    day 2 and closed day 2 at a win; one denial; REDUCING then back to ACTIVE."""
    msgs: list[Message[Any]] = []
    msgs += _order(1, CALL, Action.BUY, 2, 1.50, "entry long AAPL", DAY1)
    msgs += _order(2, PUT, Action.BUY, 1, 3.00, "entry short SPY", DAY1 + 60)
    msgs += _order(3, CALL, Action.SELL, 2, 2.10, "exit: take profit +40%", DAY1 + 3600)
    msgs += _order(4, PUT, Action.SELL, 1, 2.40, "exit: stop loss -20%", DAY1 + 7200)
    msgs += _order(5, CALL, Action.BUY, 1, 1.00, "entry long AAPL", DAY2)
    msgs += _order(6, CALL, Action.SELL, 1, 1.30, "exit: time stop", DAY2 + 1800)
    msgs.append(
        _msg(
            Decision(
                cycle="c1",
                kind=DecisionKind.ENTRY,
                outcome=DecisionOutcome.TAKEN,
                reason="momentum <script>alert(1)</script>",
                symbol="AAPL",
                contract=CALL,
                quantity=2,
                limit_price=1.5,
                client_order_id="o1",
            ),
            DAY1 - 1,
        )
    )
    msgs.append(
        _msg(
            Decision(
                cycle="c9",
                kind=DecisionKind.ENTRY,
                outcome=DecisionOutcome.DENIED,
                reason="max_positions: 3 open of 3",
            ),
            DAY2 + 100,
        )
    )
    for ts, state, prev in (
        (DAY1 + 5000, RiskState.REDUCING, RiskState.ACTIVE),
        (DAY1 + 9000, RiskState.ACTIVE, RiskState.REDUCING),
    ):
        msgs.append(_msg(RiskStateChange(state=state, previous=prev, who="test", why="drill"), ts))
    return msgs
