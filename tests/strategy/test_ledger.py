"""The ledger balances to the cent for any fills and marks, and books a fill once."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.strategy.ledger import Fill, Ledger, fill_from_event
from services.strategy.money import cents
from shared.schemas import Action, ContractRef, OrderEvent, OrderEventKind, Right, SecType

START = Decimal("3756.96")
CONTRACTS = [
    ContractRef(
        symbol=s,
        sec_type=SecType.OPT,
        expiry="20250124",
        strike=k,
        right=Right.CALL,
        multiplier=100,
    )
    for s, k in (("AAPL", 150.0), ("INTC", 21.0), ("SPY", 500.0))
]
T0 = 1_735_830_000_000_000_000  # 2025-01-02 15:00 UTC


def fill(
    i: int, action: Action, qty: int, price: str, commission: str = "0.65", n: int = 0
) -> Fill:
    return Fill(
        client_order_id=f"c{n}",
        contract=CONTRACTS[i],
        action=action,
        qty=qty,
        price=Decimal(price),
        commission=Decimal(commission),
        ts_ns=T0 + n,
        key=f"c{n}",
    )


def balanced(led: Ledger) -> Decimal:
    """cash + market value - start - (realized + unrealized - commissions): must be 0."""
    return (
        led.cash
        + led.market_value
        - led.starting_cash
        - (led.realized + led.unrealized - led.commissions)
    )


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("fill"),
            st.integers(0, 2),
            st.sampled_from([Action.BUY, Action.SELL]),
            st.integers(1, 7),
            st.integers(1, 5000),  # price in cents
            st.integers(0, 700),  # commission in cents
        ),
        st.tuples(st.just("mark"), st.integers(0, 2), st.integers(1, 5000)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_ledger_when_random_fills_and_marks_balances_to_the_cent(seq: list[tuple]) -> None:
    led = Ledger(starting_cash=START)
    for n, op in enumerate(seq):
        if op[0] == "fill":
            _, i, action, qty, px, comm = op
            led.apply(fill(i, action, qty, str(Decimal(px) / 100), str(Decimal(comm) / 100), n))
        else:
            _, i, px = op
            led.mark(CONTRACTS[i].key, Decimal(px) / 100)
        assert balanced(led) == 0  # exact, so certainly to the cent
        assert cents(led.cash + led.market_value - START) == cents(
            led.realized + led.unrealized - led.commissions
        )


def test_ledger_when_round_trip_books_realized_and_commissions() -> None:
    led = Ledger(starting_cash=START)
    led.apply(fill(1, Action.BUY, 2, "0.90", "1.30", 0))  # pays 180.00 + 1.30
    led.mark(CONTRACTS[1].key, Decimal("1.20"))
    pos = led.positions[CONTRACTS[1].key]
    assert (pos.qty, pos.avg_price, pos.unrealized) == (2, Decimal("0.9"), Decimal("60.00"))
    led.apply(fill(1, Action.SELL, 1, "1.35", "1.00", 1))  # realizes (1.35 - 0.90) x 100 = 45
    assert led.realized == Decimal("45.00") and led.positions[CONTRACTS[1].key].qty == 1
    led.apply(fill(1, Action.SELL, 1, "0.60", "1.00", 2))  # realizes (0.60 - 0.90) x 100 = -30
    assert CONTRACTS[1].key not in led.positions
    assert (led.realized, led.commissions) == (Decimal("15.00"), Decimal("3.30"))
    assert led.cash == START + Decimal("15.00") - Decimal("3.30")
    assert led.pnl == Decimal("11.70")


def test_ledger_when_fill_replayed_books_it_once() -> None:
    led = Ledger(starting_cash=START)
    ev = OrderEvent(
        client_order_id="ob-20250102-INTC-C-0",
        kind=OrderEventKind.FILL,
        contract=CONTRACTS[1],
        action=Action.BUY,
        fill_qty=1,
        fill_price=0.9,
        commission=1.0,
        filled_total=1,
        exec_id="sim-1",
    )
    f = fill_from_event(ev, T0)
    assert f is not None and f.price == Decimal("0.9")  # repr-exact, not 0.899999...
    assert led.apply(f) and not led.apply(fill_from_event(ev, T0 + 5))  # type: ignore[arg-type]
    assert led.positions[CONTRACTS[1].key].qty == 1 and led.fills == 1
    ack = OrderEvent(client_order_id="x", kind=OrderEventKind.ACK)
    assert fill_from_event(ack, T0) is None


def test_ledger_when_fill_after_new_york_midnight_utc_books_it_on_the_new_york_day() -> None:
    led = Ledger(starting_cash=START)
    late = 1_735_874_000_000_000_000  # 2025-01-03 03:13 UTC = 2025-01-02 22:13 New York
    led.apply(Fill("c", CONTRACTS[0], Action.BUY, 1, Decimal("1"), Decimal("0.65"), late, "k"))
    assert set(led.day_commissions) == {dt.date(2025, 1, 2)}


def expired(i: int, action: Action, qty: int, price: float) -> OrderEvent:
    """An ``expired`` event as the adapter publishes it: a closing fill at settlement."""
    cid = f"expiry-{CONTRACTS[i].key}"
    return OrderEvent(
        client_order_id=cid,
        kind=OrderEventKind.EXPIRED,
        contract=CONTRACTS[i],
        action=action,
        fill_qty=qty,
        fill_price=price,
        filled_total=qty,
        exec_id=cid,
    )


def test_ledger_when_options_expire_settles_otm_worthless_itm_at_intrinsic_once() -> None:
    led = Ledger(starting_cash=START)
    led.apply(fill(1, Action.BUY, 2, "0.90", "1.30", 0))  # INTC 21 C, 180.00 + 1.30
    led.apply(fill(2, Action.SELL, 1, "4.10", "1.00", 1))  # short SPY 500 C, +410.00 - 1.00
    led.apply(fill(0, Action.BUY, 1, "2.00", "1.00", 2))  # AAPL 150 C, 200.00 + 1.00
    otm = expired(1, Action.SELL, 2, 0.0)  # INTC below 21: worthless
    itm = expired(0, Action.SELL, 1, 3.25)  # AAPL at 153.25: 3.25 intrinsic
    short = expired(2, Action.BUY, 1, 2.5)  # short SPY call 2.50 in the money: pays
    for i, ev in enumerate((otm, itm, short)):
        f = fill_from_event(ev, T0 + 10 + i)
        assert f is not None and led.apply(f)
        assert not led.apply(fill_from_event(ev, T0 + 20 + i))  # type: ignore[arg-type]
    assert led.positions == {}
    # -180 (worthless) + (325 - 200) + (410 - 250) = 105; commissions only from the trades
    assert (led.realized, led.commissions) == (Decimal("105.00"), Decimal("3.30"))
    assert led.cash == START + Decimal("105.00") - Decimal("3.30")
    assert balanced(led) == 0
