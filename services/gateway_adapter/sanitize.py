"""The only path from an ib_async ``Ticker`` to a ``Quote``.

IB's "no value" is -1 (prices, sizes), -2 (greeks) or NaN in ib_async, and a 0
size means "no order on that side". The old system printed VIX at ``-1.00``
because an index has no bid/ask. Here every number goes through a range check
that turns sentinels, NaN and out-of-range values into None ("corrupt data is
worse than no data"), an index takes its price from last, else close, and every
quote carries its market-data type and timestamp.
"""

from __future__ import annotations

from typing import Any

from shared.clock import arrival_ns
from shared.schemas import ContractRef, DataType, Quote

# ticker.marketDataType (IB msg 58): 1 live, 2 frozen, 3 delayed, 4 delayed-frozen.
DATA_TYPES: dict[int, DataType] = {
    1: DataType.LIVE,
    2: DataType.FROZEN,
    3: DataType.DELAYED,
    4: DataType.DELAYED_FROZEN,
}
_PRICE_MAX = 1e9
_SIZE_MAX = 1e12
_RATIO_MAX = 1e6
_GREEK_SENTINEL = -2.0  # ib_async 2.1 passes IB's -2 "not computed" through for vega/theta


def price(x: float | None) -> float | None:
    """A usable price, or None for -1, 0, NaN, inf and absurd values."""
    # NaN fails every comparison, so it lands in None too.
    return x if x is not None and 0.0 < x <= _PRICE_MAX else None


def size(x: float | None) -> float | None:
    """A usable size; 0 means "nothing there", -1 and NaN mean unknown."""
    return x if x is not None and 0.0 < x <= _SIZE_MAX else None


def iv(x: float | None) -> float | None:
    return x if x is not None and 0.0 < x <= 100.0 else None


def delta(x: float | None) -> float | None:
    return x if x is not None and -1.0 <= x <= 1.0 else None


def gamma(x: float | None) -> float | None:
    return x if x is not None and 0.0 <= x <= _RATIO_MAX else None


def ratio(x: float | None) -> float | None:
    """Vega/theta: any finite value in range except IB's -2 sentinel."""
    if x is None or x == _GREEK_SENTINEL or not -_RATIO_MAX <= x <= _RATIO_MAX:
        return None
    return x


def mark(
    bid: float | None, ask: float | None, last: float | None, close: float | None
) -> float | None:
    """Mid when both sides are there, else last, else close."""
    if bid is not None and ask is not None:
        return round((bid + ask) / 2.0, 6)
    return last if last is not None else close


def quote_from_ticker(t: Any, ref: ContractRef, is_index: bool) -> Quote:
    """Build a Quote from a ticker's current state (every field sanitized)."""
    last = price(t.last)
    close = price(t.close)
    if is_index:
        # Indexes (VIX) have no book: a bid/ask there is noise, never a price.
        bid = ask = bid_size = ask_size = None
        mk = last if last is not None else close
    else:
        bid, ask = price(t.bid), price(t.ask)
        if bid is not None and ask is not None and bid > ask:
            # Crossed: IB sends bid and ask as separate ticks, so a read can end between
            # them (new bid, old ask); a crossed book is no price to trade or mark on.
            bid = ask = None
        bid_size, ask_size = size(t.bidSize), size(t.askSize)
        mk = mark(bid, ask, last, close)
    g = t.modelGreeks or t.lastGreeks
    ts = t.timestamp
    return Quote(
        contract=ref,
        bid=bid,
        ask=ask,
        last=last,
        close=close,
        mark=mk,
        bid_size=bid_size,
        ask_size=ask_size,
        last_size=size(t.lastSize),
        volume=size(t.volume),
        iv=iv(g.impliedVol) if g is not None else None,
        delta=delta(g.delta) if g is not None else None,
        gamma=gamma(g.gamma) if g is not None else None,
        vega=ratio(g.vega) if g is not None else None,
        theta=ratio(g.theta) if g is not None else None,
        und_price=price(g.undPrice) if g is not None else None,
        data_type=DATA_TYPES.get(t.marketDataType, DataType.LIVE),
        ib_ts=arrival_ns(int(ts * 1e9)) if ts and ts > 0 else 0,  # trading-clock time
    )


def _text(x: float | None) -> str:
    return "" if x is None else repr(x)


def hash_fields(q: Quote, updated_ns: int) -> dict[str, str]:
    """Plain readable fields for ``md:last:{KEY}``; a missing value is an empty string."""
    return {
        "key": q.contract.key,
        "con_id": str(q.contract.con_id),
        "bid": _text(q.bid),
        "ask": _text(q.ask),
        "last": _text(q.last),
        "close": _text(q.close),
        "mark": _text(q.mark),
        "bid_size": _text(q.bid_size),
        "ask_size": _text(q.ask_size),
        "volume": _text(q.volume),
        "iv": _text(q.iv),
        "delta": _text(q.delta),
        "gamma": _text(q.gamma),
        "vega": _text(q.vega),
        "theta": _text(q.theta),
        "und_price": _text(q.und_price),
        "data_type": q.data_type.value,
        "ib_ts": str(q.ib_ts),
        "updated": str(updated_ns),
    }
