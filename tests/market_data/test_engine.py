"""Market state: warm-up makes signals valid at once; stale and delayed data show."""

from __future__ import annotations

import msgspec

from services.market_data.engine import MarketState
from services.market_data.momentum import MomentumParams
from services.market_data.sentiment import SentimentParams
from shared.schemas import Bar, ContractRef, DataType, Direction, Quote, SecType, Sentiment
from shared.settings import MomentumSettings, SentimentSettings

S = 1_000_000_000
SYMBOLS = ["SPY", "QQQ", "VIX", "AAPL", "MSFT"]


def _state() -> MarketState:
    return MarketState(
        SYMBOLS,
        bar_seconds=60,
        window=390,
        stale_s=15.0,
        sentiment=SentimentParams.from_settings(SentimentSettings()),
        momentum=MomentumParams.from_settings(MomentumSettings()),
    )


def _history(symbol: str, start: float, step: float, n: int = 31) -> list[Bar]:
    return [
        Bar(
            symbol=symbol,
            start_ns=i * 60 * S,
            interval_s=60,
            open=start + step * i,
            high=start + step * i,
            low=start + step * i,
            close=start + step * i,
        )
        for i in range(n)
    ]


def _warm(state: MarketState) -> None:
    state.on_history("SPY", _history("SPY", 100, 0.1))
    state.on_history("QQQ", _history("QQQ", 200, 0.3))
    state.on_history("VIX", _history("VIX", 15, 0.0))
    state.on_history("AAPL", _history("AAPL", 100, 1.0))
    state.on_history("MSFT", _history("MSFT", 300, -1.0))


def _quote(symbol: str, price: float, dt: DataType = DataType.LIVE) -> Quote:
    if symbol == "VIX":
        return Quote(
            contract=ContractRef(symbol="VIX", sec_type=SecType.IND), last=price, data_type=dt
        )
    return Quote(
        contract=ContractRef(symbol=symbol), bid=price - 0.01, ask=price + 0.01, data_type=dt
    )


def test_evaluate_when_warmed_from_history_is_valid_before_any_live_bar() -> None:
    state = _state()
    _warm(state)
    live_ts = 31 * 60 * S + 5 * S  # first live quotes fall into a new, unfinished bar
    for sym, px in [
        ("SPY", 103.0),
        ("QQQ", 209.0),
        ("VIX", 15.0),
        ("AAPL", 130.0),
        ("MSFT", 270.0),
    ]:
        assert state.on_quote(_quote(sym, px), live_ts, now=0.0) is None  # no bar completed
    ev = state.evaluate(now=1.0)
    assert ev.warm and ev.sentiment is not None and ev.sentiment.state is Sentiment.BULLISH
    # closes: history 31 bars + the live price. AAPL 100..130, 130: ROC5 = 130/126-1 = 3.17 %,
    # ROC15 = 130/116-1 = 12.07 %, ROC30 = 130/101-1 = 28.71 %; SPY ROC30 = 103/100.1-1 = 2.90 %
    # -> 1.587 + 3.621 + 5.743 + 0.5*25.816 = 23.858. MSFT 300..270, 270: ROC5 -1.46 %,
    # ROC15 -4.93 %, ROC30 -9.70 % -> -0.730 - 1.479 - 1.940 + 0.5*(-12.596) = -10.447.
    # QQQ 200..209, 209: ROC5 0.578 %, ROC15 2.051 %, ROC30 4.344 % -> 2.496.
    # SPY 100..103, 103: ROC5 0.292 %, ROC15 1.179 %, ROC30 2.897 %, RS 0 -> 1.188.
    assert [(c.symbol, c.direction, round(c.score, 3)) for c in ev.screen.candidates] == [
        ("AAPL", Direction.LONG, 23.858),
        ("MSFT", Direction.SHORT, -10.447),
        ("QQQ", Direction.LONG, 2.496),
        ("SPY", Direction.LONG, 1.188),
    ]
    assert ev.screen.excluded["VIX"] == "index"


def test_evaluate_when_quotes_old_marks_them_stale_and_excludes_them() -> None:
    state = _state()
    _warm(state)
    for sym in SYMBOLS:
        state.on_quote(_quote(sym, 100.0), 40 * 60 * S, now=0.0)
    ev = state.evaluate(now=16.0)
    assert ev.screen.candidates == []
    assert ev.stale == SYMBOLS
    assert ev.screen.excluded["AAPL"] == "stale quote"


def test_evaluate_when_any_input_delayed_reports_delayed() -> None:
    state = _state()
    _warm(state)
    state.on_quote(_quote("SPY", 103.0, DataType.DELAYED), 40 * 60 * S, now=0.0)
    state.on_quote(_quote("AAPL", 130.0), 40 * 60 * S, now=0.0)
    assert state.evaluate(now=1.0).data_type is DataType.DELAYED


def test_on_quote_when_symbol_not_watched_or_option_is_ignored() -> None:
    state = _state()
    assert state.on_quote(_quote("ZZZ", 10.0), 0, now=0.0) is None
    opt = ContractRef(symbol="AAPL", sec_type=SecType.OPT, expiry="20261218", strike=250.0)
    state.on_quote(Quote(contract=opt, bid=1.0, ask=1.1), 0, now=0.0)
    assert "ZZZ" not in state.quotes and "AAPL" not in state.quotes


def test_evaluate_when_live_bar_just_began_surge_counts_completed_bars_only() -> None:
    state = _state()
    _warm(state)
    for sym in SYMBOLS:  # give the history a steady 1,000 a bar
        for i, bar in enumerate(state.builders[sym].bars):
            state.builders[sym].bars[i] = msgspec.structs.replace(bar, volume=1000.0)
    live_ts = 31 * 60 * S + 5 * S  # a new bar, five seconds old
    for sym, px in [("SPY", 103.0), ("QQQ", 209.0), ("VIX", 15.0), ("MSFT", 270.0)]:
        state.on_quote(_quote(sym, px), live_ts, now=0.0)
    aapl = ContractRef(symbol="AAPL")
    state.on_quote(Quote(contract=aapl, bid=129.99, ask=130.01, volume=50_000.0), live_ts, now=0.0)
    state.on_quote(Quote(contract=aapl, bid=129.99, ask=130.01, volume=50_010.0), live_ts, now=0.0)
    ev = state.evaluate(now=1.0)
    aapl_cand = next(c for c in ev.screen.candidates if c.symbol == "AAPL")
    # the bar in progress holds 10 so far: counted, the surge would read 0.83 (clamped 0.5..2)
    assert aapl_cand.inputs["surge"] == 1.0
    assert round(aapl_cand.score, 3) == 23.858
