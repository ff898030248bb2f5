"""OHLCV bars per symbol from quotes, continuous across reconnects.

Price of a quote: the mid when the quote is two-sided and not crossed, else the
last trade; an index (VIX) has no bid/ask, so last, else the previous close.
Volume of a bar: the rise of IB's cumulative day volume within the bar; when the
cumulative volume falls (IB restarted it for a new day) the new reading is all new
volume. Only completed bars count for volume: the bar in progress has barely begun.
A bar that follows missing buckets, or the first one after a gateway reconnect,
carries ``gap=True``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from shared.schemas import Bar, DataType, Quote


def quote_price(q: Quote) -> float | None:
    """The price a bar is built from (see module docstring)."""
    if q.bid is not None and q.ask is not None and 0 < q.bid <= q.ask:
        return (q.bid + q.ask) / 2.0
    if q.last is not None and q.last > 0:
        return q.last
    if q.close is not None and q.close > 0:
        return q.close
    return None


@dataclass
class _Partial:
    start_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    gap: bool
    data_type: DataType

    def to_bar(self, symbol: str, interval_s: int) -> Bar:
        return Bar(
            symbol=symbol,
            start_ns=self.start_ns,
            interval_s=interval_s,
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume,
            gap=self.gap,
            data_type=self.data_type,
        )


class BarBuilder:
    """Completed bars (a bounded window) plus the bar being built."""

    def __init__(self, symbol: str, interval_s: int, window: int) -> None:
        self.symbol = symbol
        self.interval_s = interval_s
        self._interval_ns = interval_s * 1_000_000_000
        self.bars: deque[Bar] = deque(maxlen=window)
        self.current: _Partial | None = None
        self._last_cum_volume: float | None = None
        self._gap_next = False

    def bucket(self, ts_ns: int) -> int:
        return ts_ns - ts_ns % self._interval_ns

    def mark_gap(self) -> None:
        """Data was (or may have been) missing: flag the next new bar."""
        self._gap_next = True
        self._last_cum_volume = None

    def seed(self, history: list[Bar]) -> int:
        """Merge warm-up bars from history; returns how many were new."""
        known = {b.start_ns for b in self.bars}
        live_start = self.current.start_ns if self.current else None
        fresh = [
            b
            for b in history
            if b.start_ns not in known and (live_start is None or b.start_ns < live_start)
        ]
        if not fresh:
            return 0
        merged = sorted([*self.bars, *fresh], key=lambda b: b.start_ns)
        self.bars.clear()
        self.bars.extend(merged)
        return len(fresh)

    def on_price(
        self, ts_ns: int, price: float, cum_volume: float | None, data_type: DataType
    ) -> Bar | None:
        """Add one price; returns the bar it completed, if any."""
        start = self.bucket(ts_ns)
        volume = self._volume_delta(cum_volume)
        cur = self.current
        if cur is not None and start < cur.start_ns:
            return None  # late quote for a bar already closed: ignored
        if cur is not None and start == cur.start_ns:
            cur.high = max(cur.high, price)
            cur.low = min(cur.low, price)
            cur.close = price
            cur.volume += volume
            if data_type is not DataType.LIVE:
                cur.data_type = data_type
            return None
        done = cur.to_bar(self.symbol, self.interval_s) if cur is not None else None
        if done is not None:
            self.bars.append(done)
        previous_end = self.bars[-1].start_ns + self._interval_ns if self.bars else None
        gap = self._gap_next or (previous_end is not None and start > previous_end)
        self._gap_next = False
        self.current = _Partial(start, price, price, price, price, volume, gap, data_type)
        return done

    def _volume_delta(self, cum_volume: float | None) -> float:
        if cum_volume is None:
            return 0.0
        last, self._last_cum_volume = self._last_cum_volume, cum_volume
        if last is None:
            return 0.0  # no baseline (first reading, or after a gap): the rise is unknown
        if cum_volume < last:
            return cum_volume  # the day's count restarted from zero: all of it is new
        return cum_volume - last

    def closes(self) -> list[float]:
        """Closes of completed bars, then the price of the bar in progress."""
        out = [b.close for b in self.bars]
        if self.current is not None:
            out.append(self.current.close)
        return out

    def volumes(self) -> list[float]:
        """Volumes of completed bars only: the bar in progress holds a fraction of its
        volume, and counting it would read every new bar as a volume collapse."""
        return [b.volume for b in self.bars]
