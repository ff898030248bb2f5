"""Entries on simulated time: the newest clock tick at or before each entry id."""

from __future__ import annotations

from optbot.backtest.invariants import Record, Timeline, forbidden_entries
from shared.schemas import (
    Action,
    ConnState,
    ContractRef,
    GatewayStatus,
    OrderNew,
    Right,
    RiskState,
    RiskStateChange,
    SecType,
)


def test_an_entry_takes_the_time_of_the_newest_tick_before_it() -> None:
    line = Timeline([(1_000, 100.0), (1_010, 105.0), (1_020, 5_000.0)])
    assert line("999-0") == 100.0  # before the first tick: the first tick's time
    assert line("1000-0") == 100.0 and line(b"1009-3") == 100.0
    assert line("1010-0") == 105.0 and line("1019-9") == 105.0
    assert line("1020-1") == 5_000.0 and line("99999-0") == 5_000.0
    assert Timeline([])("2000-0") == 2.0


def _order(cid: str) -> OrderNew:
    c = ContractRef(
        symbol="SPY", sec_type=SecType.OPT, expiry="20250321", strike=500.0, right=Right.CALL
    )
    return OrderNew(client_order_id=cid, contract=c, action=Action.BUY, quantity=1, limit_price=1.0)


def test_the_grace_is_the_records_own() -> None:
    """On simulated time a halt 3 s before an entry is within one 5 s step: not a violation."""
    up = GatewayStatus(state=ConnState.CONNECTED)
    halt = RiskStateChange(state=RiskState.HALTED, previous=RiskState.ACTIVE, who="risk")
    rec = Record(
        requests=[(103.0, _order("early")), (200.0, _order("late"))],
        events=[],
        status=[(0.0, up)],
        controls=[(100.0, halt)],
        accounts=[],
        positions={},
        grace=5.0,
    )
    assert forbidden_entries(rec) == ["late sent at 200.000 while HALTED/REDUCING"]
