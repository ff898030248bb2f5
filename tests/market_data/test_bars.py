"""Bars from quotes: OHLCV, gap markers, warm-up merge."""

from __future__ import annotations

from services.market_data.bars import BarBuilder, quote_price
from shared.schemas import Bar, ContractRef, DataType, Quote, SecType

S = 1_000_000_000  # one second in ns
LIVE = DataType.LIVE


def test_quote_price_when_two_sided_is_mid_else_last_else_close() -> None:
    spy = ContractRef(symbol="SPY")
    assert quote_price(Quote(contract=spy, bid=100.0, ask=100.2, last=99.0)) == 100.1
    assert quote_price(Quote(contract=spy, bid=100.3, ask=100.2, last=99.0)) == 99.0  # crossed
    vix = ContractRef(symbol="VIX", sec_type=SecType.IND)
    assert quote_price(Quote(contract=vix, last=17.5, close=16.0)) == 17.5
    assert quote_price(Quote(contract=vix, close=16.0)) == 16.0
    assert quote_price(Quote(contract=vix)) is None


def test_on_price_when_bucket_ends_returns_ohlcv_bar() -> None:
    b = BarBuilder("SPY", 60, 100)
    assert b.on_price(0 * S, 1.0, 1000.0, LIVE) is None
    assert b.on_price(10 * S, 3.0, 1100.0, LIVE) is None
    assert b.on_price(59 * S, 2.0, 1250.0, LIVE) is None
    bar = b.on_price(60 * S, 2.5, 1300.0, DataType.DELAYED)
    assert bar == Bar(
        symbol="SPY",
        start_ns=0,
        interval_s=60,
        open=1.0,
        high=3.0,
        low=1.0,
        close=2.0,
        volume=250.0,
        gap=False,
        data_type=LIVE,
    )
    assert b.current is not None and b.current.data_type is DataType.DELAYED
    assert b.closes() == [2.0, 2.5]


def test_on_price_when_buckets_missing_marks_next_bar_as_gap() -> None:
    b = BarBuilder("SPY", 60, 100)
    b.on_price(0, 1.0, None, LIVE)
    b.on_price(60 * S, 1.1, None, LIVE)
    done = b.on_price(185 * S, 1.2, None, LIVE)  # bucket 120 never saw a quote
    assert done is not None and done.start_ns == 60 * S and not done.gap
    assert b.current is not None and b.current.start_ns == 180 * S and b.current.gap


def test_mark_gap_when_gateway_reconnects_flags_next_bar_and_resets_volume() -> None:
    b = BarBuilder("SPY", 60, 100)
    b.on_price(0, 1.0, 5000.0, LIVE)
    b.mark_gap()
    b.on_price(60 * S, 1.0, 9000.0, LIVE)  # volume baseline restarts: no 4000 jump
    assert b.current is not None and b.current.gap and b.current.volume == 0.0


def test_seed_when_history_overlaps_merges_without_duplicates() -> None:
    b = BarBuilder("SPY", 60, 100)
    hist = [
        Bar(symbol="SPY", start_ns=i * 60 * S, interval_s=60, open=1, high=1, low=1, close=float(i))
        for i in range(5)
    ]
    b.on_price(4 * 60 * S + 5 * S, 9.0, None, LIVE)  # live bar in progress at bucket 4
    assert b.seed(hist) == 4  # bucket 4 is live: its history bar is not taken
    assert b.seed(hist) == 0
    assert b.closes() == [0.0, 1.0, 2.0, 3.0, 9.0]


def test_window_when_full_keeps_newest_bars() -> None:
    b = BarBuilder("SPY", 60, 3)
    for i in range(6):
        b.on_price(i * 60 * S, float(i), None, LIVE)
    assert [bar.close for bar in b.bars] == [2.0, 3.0, 4.0]


def test_on_price_when_cumulative_volume_resets_counts_new_days_first_reading() -> None:
    b = BarBuilder("SPY", 60, 100)
    b.on_price(0, 1.0, 1_000_000.0, LIVE)
    b.on_price(10 * S, 1.0, 1_000_500.0, LIVE)  # 500 in the old day's count
    done = b.on_price(60 * S, 1.0, 2_000.0, LIVE)  # IB restarted the count: 2,000 are new
    assert done is not None and done.volume == 500.0
    b.on_price(70 * S, 1.0, 2_500.0, LIVE)
    assert b.current is not None and b.current.volume == 2_500.0


def test_volumes_when_bar_in_progress_lists_completed_bars_only() -> None:
    b = BarBuilder("SPY", 60, 100)
    b.on_price(0, 1.0, 1_000.0, LIVE)
    b.on_price(30 * S, 1.0, 1_400.0, LIVE)
    b.on_price(60 * S, 1.0, 1_500.0, LIVE)  # completes bar 0 (400), bar 60 begins (100)
    b.on_price(65 * S, 1.0, 1_510.0, LIVE)
    assert b.volumes() == [400.0]
    assert b.closes() == [1.0, 1.0]  # prices still include the bar in progress
