"""Performance from fills: equal to the strategy ledger's books, and its invariants hold."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.strategy.ledger import Ledger
from services.strategy.ledger import fill_from_event as ledger_fill
from shared.envelope import Message
from shared.performance import (
    EquityPoint,
    FillRecord,
    Mark,
    analyze,
    book,
    daily_pnl,
    day_performance,
    drawdown_series,
    fills_from_events,
    fills_from_messages,
    max_drawdown,
    sharpe,
)
from shared.schemas import (
    Action,
    ContractRef,
    OrderEvent,
    OrderEventKind,
    OrderNew,
    OrderType,
    Right,
    SecType,
)

CONTRACTS = [
    ContractRef(
        symbol=s,
        sec_type=SecType.OPT,
        expiry="20250124",
        strike=k,
        right=Right.CALL,
        multiplier=100,
    )
    for s, k in (("AAPL", 150.0), ("INTC", 21.0))
] + [ContractRef(symbol="SPY")]
T0 = 1_735_830_000_000_000_000  # 2025-01-02 15:00 UTC (10:00 New York)
DAY_NS = 86_400 * 10**9


def event(
    n: int,
    i: int,
    action: Action,
    qty: int,
    price: float,
    commission: float = 0.65,
    kind: OrderEventKind = OrderEventKind.FILL,
    reason: str = "",
) -> OrderEvent:
    return OrderEvent(
        client_order_id=f"c{n}",
        kind=kind,
        contract=CONTRACTS[i],
        action=action,
        fill_qty=qty,
        fill_price=price,
        commission=commission,
        filled_total=qty,
        exec_id=f"e{n}",
        reason=reason,
    )


def test_fills_from_events_when_acks_and_duplicates_keeps_each_fill_once() -> None:
    fill = event(1, 0, Action.BUY, 2, 1.25)
    ack = OrderEvent(client_order_id="c1", kind=OrderEventKind.ACK)
    fills = fills_from_events([(T0, ack), (T0 + 1, fill), (T0 + 2, fill)])
    assert len(fills) == 1
    assert fills[0].price == Decimal("1.25") and fills[0].ts_ns == T0 + 1


def test_round_trip_when_scaled_in_and_out_books_average_prices_and_net_pnl() -> None:
    evs = [
        event(1, 0, Action.BUY, 1, 1.00),
        event(2, 0, Action.BUY, 1, 2.00),
        event(3, 0, Action.SELL, 2, 2.50, reason="take profit"),
    ]
    fills = fills_from_events([(T0 + n, e) for n, e in enumerate(evs)])
    perf = analyze(fills)
    (trip,) = perf.trips
    assert trip.direction == "long" and trip.qty == 2
    assert trip.entry_price == Decimal("1.5") and trip.exit_price == Decimal("2.5")
    assert trip.gross_pnl == Decimal("200.00")  # (2.50 - 1.50) * 2 * 100
    assert trip.commissions == Decimal("1.95")
    assert trip.pnl == Decimal("198.05")
    assert trip.exit_reason == "take profit"
    assert perf.stats.win_rate == 1.0 and perf.stats.net_pnl == Decimal("198.05")
    assert perf.open_positions == {}


def test_exit_reason_when_request_has_one_comes_from_the_closing_order() -> None:
    buy = event(1, 0, Action.BUY, 1, 1.0)
    sell = event(2, 0, Action.SELL, 1, 0.5)
    req = OrderNew(
        client_order_id="c2",
        contract=CONTRACTS[0],
        action=Action.SELL,
        quantity=1,
        order_type=OrderType.LMT,
        limit_price=0.5,
        reason="exit: stop loss",
    )
    msgs = [
        Message(body=buy, src="gw", ts=T0),
        Message(body=req, src="strategy", ts=T0 + 1),
        Message(body=sell, src="gw", ts=T0 + 2),
    ]
    (trip,) = analyze(fills_from_messages(msgs)).trips
    assert trip.exit_reason == "exit: stop loss"
    assert trip.pnl == Decimal("-51.30")


def test_expired_settlement_closes_the_trip_with_the_events_reason() -> None:
    buy = event(1, 0, Action.BUY, 1, 1.0)
    exp = event(2, 0, Action.SELL, 1, 0.0, 0.0, OrderEventKind.EXPIRED, "expired worthless")
    (trip,) = analyze(fills_from_events([(T0, buy), (T0 + 1, exp)])).trips
    assert trip.exit_reason == "expired worthless" and trip.pnl == Decimal("-100.65")


def test_flip_through_zero_closes_one_trip_and_opens_the_next() -> None:
    evs = [event(1, 2, Action.BUY, 10, 100.0, 1.0), event(2, 2, Action.SELL, 15, 101.0, 1.0)]
    perf = analyze(fills_from_events([(T0 + n, e) for n, e in enumerate(evs)]))
    (trip,) = perf.trips
    assert trip.qty == 10 and trip.gross_pnl == Decimal("10.00") and trip.pnl == Decimal("8.00")
    assert perf.open_positions == {"SPY": -5}


def test_max_drawdown_is_the_largest_fall_from_a_peak() -> None:
    vals = [Decimal(x) for x in ("0", "5", "2", "7", "1", "3")]
    assert max_drawdown(vals) == Decimal("6")
    assert drawdown_series(vals) == [Decimal(x) for x in ("0", "0", "-3", "0", "-6", "-4")]
    assert max_drawdown([]) == 0


def test_daily_pnl_and_sharpe_by_new_york_day() -> None:
    pts = [
        EquityPoint(T0 / 1e9, Decimal("10")),
        EquityPoint(T0 / 1e9 + 60, Decimal("30")),
        EquityPoint((T0 + DAY_NS) / 1e9, Decimal("20")),
    ]
    days = daily_pnl(pts, Decimal(0))
    assert days == [(dt.date(2025, 1, 2), Decimal("30")), (dt.date(2025, 1, 3), Decimal("-10"))]
    assert sharpe([Decimal("1")]) is None and sharpe([Decimal(1), Decimal(1)]) is None
    s = sharpe([Decimal(30), Decimal(-10)])
    assert s is not None and abs(s - 10 / (800**0.5) * 252**0.5) < 1e-9


def test_marks_value_open_positions_on_the_equity_curve() -> None:
    fills = fills_from_events([(T0, event(1, 0, Action.BUY, 1, 1.0, 0.0))])
    _, curve = book(fills, [Mark(T0 + 1, CONTRACTS[0].key, Decimal("1.5"))])
    assert [p.equity for p in curve] == [Decimal("0.0"), Decimal("50.0")]


def test_day_performance_counts_a_trip_opened_yesterday_and_closed_today() -> None:
    evs = [(T0, event(1, 0, Action.BUY, 1, 1.0)), (T0 + DAY_NS, event(2, 0, Action.SELL, 1, 1.2))]
    fills = fills_from_events(evs)
    today = day_performance(fills, dt.date(2025, 1, 3))
    assert len(today.trips) == 1
    assert today.realized == Decimal("20.00") and today.commissions == Decimal("0.65")
    yesterday = day_performance(fills, dt.date(2025, 1, 2))
    assert yesterday.trips == [] and yesterday.max_drawdown == Decimal("0.65")


# --- the same fills through the strategy's ledger and through performance --------

prices = st.decimals(min_value="0.01", max_value="60", places=2).map(float)
fill_ops = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.sampled_from([Action.BUY, Action.SELL]),
        st.integers(1, 7),
        prices,
        st.sampled_from([0.0, 0.65, 1.3, 1.01]),
        st.integers(0, 3 * 86_400),  # seconds after T0: spans New York days
    ),
    max_size=40,
)


def _events(ops: list[tuple[int, Action, int, float, float, int]]) -> list[tuple[int, OrderEvent]]:
    out = [
        (T0 + s * 10**9 + n, event(n, i, a, q, p, c)) for n, (i, a, q, p, c, s) in enumerate(ops)
    ]
    return sorted(out, key=lambda x: x[0])


def _flat(ops: list[tuple[int, Action, int, float, float, int]]) -> list[tuple[int, OrderEvent]]:
    """The events, then one closing fill per contract left open, so every trip ends."""
    evs = _events(ops)
    fills = fills_from_events(evs)
    b, _ = book(fills)
    last = evs[-1][0] if evs else T0
    for n, (key, pos) in enumerate(sorted(b.positions.items()), start=len(evs)):
        i = next(j for j, c in enumerate(CONTRACTS) if c.key == key)
        side = Action.SELL if pos.qty > 0 else Action.BUY
        evs.append((last + n + 1, event(n, i, side, abs(pos.qty), 1.11)))
    return evs


@settings(max_examples=200, deadline=None)
@given(fill_ops)
def test_realized_pnl_equals_the_strategy_ledgers_for_the_same_fills(ops) -> None:  # type: ignore[no-untyped-def]
    evs = _events(ops)
    led = Ledger(starting_cash=Decimal(0))
    for ts, ev in evs:
        f = ledger_fill(ev, ts)
        assert f is not None
        led.apply(f)
    fills: list[FillRecord] = fills_from_events(evs)
    b, curve = book(fills)
    assert b.realized == led.realized
    assert b.commissions == led.commissions
    assert b.equity == led.equity
    if curve:
        assert curve[-1].equity == led.equity
    for day, realized in led.day_realized.items():
        assert day_performance(fills, day).realized == realized
        assert day_performance(fills, day).commissions == led.day_commissions[day]
    assert {k: p.qty for k, p in led.positions.items()} == analyze(fills).open_positions


@settings(max_examples=200, deadline=None)
@given(fill_ops)
def test_trip_pnl_sums_to_realized_and_stats_stay_in_range(ops) -> None:  # type: ignore[no-untyped-def]
    fills = fills_from_events(_flat(ops))
    b, _ = book(fills)
    perf = analyze(fills)
    assert not b.positions
    assert sum((t.gross_pnl for t in perf.trips), Decimal(0)) == b.realized
    assert sum((t.pnl for t in perf.trips), Decimal(0)) == perf.stats.net_pnl
    assert perf.stats.max_drawdown >= 0
    assert perf.stats.win_rate is None or 0.0 <= perf.stats.win_rate <= 1.0
    assert perf.stats.wins + perf.stats.losses <= perf.stats.trades == len(perf.trips)
    if perf.stats.avg_loss is not None:
        assert perf.stats.avg_loss < 0
    assert sum((d for _, d in perf.daily), Decimal(0)) == perf.stats.net_pnl


@settings(max_examples=100, deadline=None)
@given(fill_ops)
def test_open_positions_realized_plus_trips_equals_realized(ops) -> None:  # type: ignore[no-untyped-def]
    b, _ = book(fills_from_events(_events(ops)))
    trips = sum((t.gross_pnl for t in b.trips), Decimal(0))
    assert trips + b.open_realized == b.realized
