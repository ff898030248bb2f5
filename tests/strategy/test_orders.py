"""Deterministic ids, limit prices and the repricing ladder of working orders."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

from services.strategy.desk import Books
from services.strategy.ledger import Ledger
from services.strategy.market import MarketView
from services.strategy.orders import (
    Cancel,
    OrderBook,
    PricingParams,
    Reprice,
    entry_id,
    exit_id,
    limit_price,
    next_step,
)
from services.strategy.rebuild import apply_request
from services.strategy.risk import RiskState, RiskStatus
from shared.envelope import Message
from shared.schemas import (
    Action,
    ContractRef,
    OrderCancel,
    OrderEvent,
    OrderEventKind,
    OrderModify,
    OrderNew,
    Quote,
    Right,
    SecType,
)
from shared.settings import StrategySettings

DAY = dt.date(2025, 1, 2)
P = PricingParams.from_settings(StrategySettings())  # mid, 3 steps, 5 s apart
CALL = ContractRef(
    symbol="INTC",
    sec_type=SecType.OPT,
    expiry="20250124",
    strike=21,
    right=Right.CALL,
    multiplier=100,
)


def order(cid: str, reduce_only: bool = False) -> OrderNew:
    return OrderNew(
        client_order_id=cid,
        contract=CALL,
        action=Action.SELL if reduce_only else Action.BUY,
        quantity=1,
        limit_price=1.00,
        reduce_only=reduce_only,
    )


def test_ids_when_same_entry_repeated_are_equal_and_readable() -> None:
    assert entry_id(DAY, "INTC", Right.CALL, 0) == "ob-20250102-INTC-C-0"
    assert entry_id(DAY, "INTC", Right.CALL, 0) == entry_id(DAY, "INTC", Right.CALL, 0)
    assert exit_id("ob-20250102-INTC-C-0", 1) == "ox-20250102-INTC-C-0-1"


def test_limit_when_stepping_moves_from_mid_to_far_side() -> None:
    # bid 1.00 / ask 1.20: mid 1.10, then 1.14 (1.1333 up), 1.17 (1.1667 up), the ask 1.20
    assert [limit_price(Action.BUY, 1.00, 1.20, k, P) for k in range(4)] == [1.10, 1.14, 1.17, 1.20]
    assert [limit_price(Action.SELL, 1.00, 1.20, k, P) for k in range(4)] == [
        1.10,
        1.06,
        1.03,
        1.00,
    ]
    offset = PricingParams.from_settings(StrategySettings(strat_limit_offset=0.25))
    assert limit_price(Action.BUY, 1.00, 1.20, 0, offset) == 1.15


def test_book_when_rebuilt_counts_entries_and_keeps_working_orders() -> None:
    book = OrderBook()
    book.on_request(order("ob-20250102-INTC-C-0"), 0.0, 5.0)
    book.on_event(OrderEvent(client_order_id="ob-20250102-INTC-C-0", kind=OrderEventKind.CANCELLED))
    book.on_request(order("ob-20250102-INTC-C-1"), 0.0, 5.0)
    book.on_event(OrderEvent(client_order_id="ob-20250102-INTC-C-1", kind=OrderEventKind.ACK))
    assert book.entries_today(DAY, "INTC", Right.CALL) == 2  # next id: ...-C-2
    assert list(book.working) == ["ob-20250102-INTC-C-1"] and book.has_entry_for("INTC")
    assert book.working_keys() == frozenset({CALL.key})


def test_book_when_order_denied_keeps_its_id_free() -> None:
    book = OrderBook()
    book.on_event(OrderEvent(client_order_id="ob-20250102-INTC-C-0", kind=OrderEventKind.DENIED))
    book.on_request(order("ob-20250102-INTC-C-0"), 0.0, 5.0)
    assert "ob-20250102-INTC-C-0" in book.working


def test_next_step_when_unfilled_reprices_then_cancels() -> None:
    book = OrderBook()
    book.on_request(order("c1"), 0.0, 5.0)
    book.on_event(OrderEvent(client_order_id="c1", kind=OrderEventKind.ACK))
    w = book.working["c1"]
    q = Quote(contract=CALL, bid=1.00, ask=1.20)
    assert next_step(w, q, 4.9, P) is None  # not due yet
    assert next_step(w, q, 5.0, P) == Reprice(1.14)
    for k in range(3):
        book.on_modify(OrderModify(client_order_id="c1", limit_price=1.2), 5.0 * (k + 1), 5.0)
    assert next_step(w, q, 20.0, P) == Cancel("not filled after 3 reprices")
    book.on_cancel(OrderCancel(client_order_id="c1"))
    assert next_step(w, q, 30.0, P) is None  # the cancel is on its way


def test_rebuild_when_requests_are_old_does_not_count_them_in_order_rate() -> None:
    books = Books(
        Ledger(starting_cash=Decimal(1000)), OrderBook(), MarketView(), RiskStatus(RiskState.ACTIVE)
    )
    hour_ago = time.time_ns() - 3600 * 10**9
    apply_request(books, Message(body=order("old"), src="t", ts=hour_ago), 5.0)
    apply_request(books, Message(body=order("new"), src="t", ts=time.time_ns()), 5.0)
    assert books.orders.orders_since(time.monotonic() - 60.0) == 1
