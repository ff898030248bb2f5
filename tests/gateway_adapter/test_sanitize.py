"""The sanitizer: IB sentinels never become prices (the VIX -1.00 bug)."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from services.gateway_adapter.sanitize import hash_fields, quote_from_ticker
from shared import clock
from shared.envelope import decode, encode
from shared.schemas import ContractRef, DataType, Quote, SecType

NAN = math.nan
VIX = ContractRef(symbol="VIX", sec_type=SecType.IND, con_id=1)
SPY = ContractRef(symbol="SPY", con_id=2)


def ticker(**values: Any) -> Any:
    base = dict(
        bid=NAN,
        ask=NAN,
        last=NAN,
        close=NAN,
        bidSize=NAN,
        askSize=NAN,
        lastSize=NAN,
        volume=NAN,
        modelGreeks=None,
        lastGreeks=None,
        marketDataType=1,
        timestamp=None,
    )
    return SimpleNamespace(**{**base, **values})


def greeks(**values: Any) -> Any:
    base = dict(impliedVol=None, delta=None, gamma=None, vega=None, theta=None, undPrice=None)
    return SimpleNamespace(**{**base, **values})


def roundtrip(q: Quote) -> Quote:
    """What a consumer decodes: it must never be dead-lettered for a range violation."""
    body = decode(encode(q, "t")).body
    assert isinstance(body, Quote)
    return body


@pytest.mark.parametrize("sentinel", [-1.0, 0.0, NAN, math.inf, -math.inf])
def test_quote_when_index_has_sentinel_bid_ask_uses_last_never_minus_one(sentinel: float) -> None:
    q = roundtrip(
        quote_from_ticker(ticker(bid=-1.0, ask=-1.0, last=17.25, close=sentinel), VIX, True)
    )
    assert q.mark == 17.25 and q.bid is None and q.ask is None and q.close is None


@pytest.mark.parametrize("last", [-1.0, 0.0, NAN])
def test_quote_when_index_has_no_last_falls_back_to_close(last: float) -> None:
    q = roundtrip(quote_from_ticker(ticker(last=last, close=16.5), VIX, True))
    assert q.mark == 16.5 and q.last is None


def test_quote_when_index_has_nothing_has_no_price() -> None:
    q = roundtrip(quote_from_ticker(ticker(last=-1.0, close=-1.0, bid=-1.0), VIX, True))
    assert q.mark is None and q.last is None and q.close is None


@pytest.mark.parametrize("bad", [-1.0, 0.0, NAN, math.inf, 2e9])
def test_quote_when_stock_sides_are_sentinels_become_none(bad: float) -> None:
    q = roundtrip(
        quote_from_ticker(
            ticker(bid=bad, ask=101.0, bidSize=-1.0, askSize=0.0, last=100.5, volume=NAN),
            SPY,
            False,
        )
    )
    assert q.bid is None and q.bid_size is None and q.ask_size is None and q.volume is None
    assert q.ask == 101.0 and q.mark == 100.5  # no mid without both sides: last


def test_quote_when_both_sides_present_marks_mid_and_tags_delayed() -> None:
    q = roundtrip(
        quote_from_ticker(
            ticker(
                bid=100.0,
                ask=100.1,
                bidSize=5.0,
                askSize=7.0,
                marketDataType=3,
                timestamp=1_700_000_000.5,
            ),
            SPY,
            False,
        )
    )
    assert q.mark == pytest.approx(100.05) and q.data_type is DataType.DELAYED
    assert q.ib_ts == 1_700_000_000_500_000_000


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("impliedVol", -1.0),
        ("impliedVol", NAN),
        ("delta", -2.0),
        ("delta", 1.5),
        ("gamma", -2.0),
        ("vega", -2.0),
        ("theta", -2.0),
        ("theta", NAN),
        ("undPrice", -1.0),
    ],
)
def test_quote_when_greek_is_sentinel_becomes_none(field: str, value: float) -> None:
    good = dict(impliedVol=0.2, delta=0.5, gamma=0.01, vega=0.3, theta=-0.05, undPrice=590.0)
    g = greeks(**{**good, field: value})
    q = roundtrip(quote_from_ticker(ticker(bid=1.0, ask=1.1, modelGreeks=g), SPY, False))
    names = {"impliedVol": "iv", "undPrice": "und_price"}
    assert getattr(q, names.get(field, field)) is None
    assert (
        sum(getattr(q, f) is None for f in ("iv", "delta", "gamma", "vega", "theta", "und_price"))
        == 1
    )


def test_quote_when_book_is_crossed_drops_both_sides_and_marks_last() -> None:
    q = quote_from_ticker(ticker(bid=101.0, ask=100.5, last=100.7, close=99.0), SPY, False)
    assert q.bid is None and q.ask is None and q.mark == 100.7
    locked = quote_from_ticker(ticker(bid=100.5, ask=100.5), SPY, False)
    assert locked.bid == locked.ask == 100.5 and locked.mark == 100.5  # locked is a price


def test_hash_fields_when_value_missing_writes_empty_string() -> None:
    q = quote_from_ticker(ticker(last=17.0), VIX, True)
    fields = hash_fields(q, 5)
    assert fields["bid"] == "" and fields["mark"] == "17.0" and fields["updated"] == "5"
    assert fields["data_type"] == "live" and all(isinstance(v, str) for v in fields.values())
    assert msgspec.json.encode(fields)  # plain, readable values only


def test_quote_time_when_live_is_the_tickers_arrival_time() -> None:
    q = quote_from_ticker(ticker(bid=1.0, ask=1.1, timestamp=1_741_271_100.25), SPY, False)
    assert q.ib_ts == int(1_741_271_100.25 * 1e9)


def test_quote_time_when_simulated_is_the_trading_clock_not_the_host_arrival() -> None:
    """ib_async stamps a ticker with the host's time.time(); in a simulated session a bar
    must be bucketed on the simulator's time, or a 1-minute bar spans hours of a session
    run at 300x."""
    host_arrival = 1_764_700_000.123  # the host clock: nothing to do with the session
    with clock.using(clock.SimClock(1_741_271_160.0)):  # a whole minute
        q = quote_from_ticker(ticker(bid=1.0, ask=1.1, timestamp=host_arrival), SPY, False)
    assert q.ib_ts == 1_741_271_160_000_000_000  # exactly on the minute, not 59.99999...
