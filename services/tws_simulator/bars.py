"""Minute bars of the live path, so history requests include what clients saw live."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Bar:
    """One OHLCV bar; ``time`` is the bar's start in epoch seconds."""

    time: int
    open: float
    high: float
    low: float
    close: float
    volume: int


class BarRecorder:
    """Aggregates live step prices into one-minute bars per symbol."""

    def __init__(self) -> None:
        self.minutes: dict[str, dict[int, Bar]] = {}

    def record(self, symbol: str, now: float, price: float, size: int) -> None:
        start = int(now // 60) * 60
        book = self.minutes.setdefault(symbol, {})
        bar = book.get(start)
        if bar is None:
            book[start] = Bar(start, price, price, price, price, size)
        else:
            bar.high = max(bar.high, price)
            bar.low = min(bar.low, price)
            bar.close = price
            bar.volume += size
