"""Market-data state: quotes, bars, sentiment and screen, free of I/O.

The service feeds it quotes, history and reconnects; it answers with completed
bars and, on evaluation, the sentiment change and candidate list to publish.
Staleness is judged on the trading clock's monotonic time (when the quote arrived),
so a skewed wall clock on another host cannot make old data look fresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.market_data.bars import BarBuilder, quote_price
from services.market_data.momentum import MomentumParams, ScreenResult, SymbolView, screen
from services.market_data.sentiment import (
    Change,
    SentimentParams,
    SentimentTracker,
    compute_inputs,
)
from shared import clock
from shared.schemas import Bar, DataType, Quote, SecType

_DATA_TYPE_RANK = {
    DataType.LIVE: 0,
    DataType.FROZEN: 1,
    DataType.DELAYED: 2,
    DataType.DELAYED_FROZEN: 3,
}


def worst(types: list[DataType]) -> DataType:
    """The least live of ``types``: a signal is as delayed as its worst input."""
    return max(types, key=_DATA_TYPE_RANK.__getitem__, default=DataType.LIVE)


@dataclass
class QuoteState:
    sec_type: SecType
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    close: float | None = None
    data_type: DataType = DataType.LIVE
    received: float = 0.0  # clock.current().monotonic() when it arrived


@dataclass
class Evaluation:
    sentiment: Change | None
    screen: ScreenResult
    data_type: DataType
    warm: bool
    stale: list[str] = field(default_factory=list)


class MarketState:
    def __init__(
        self,
        symbols: list[str],
        *,
        bar_seconds: int,
        window: int,
        stale_s: float,
        sentiment: SentimentParams,
        momentum: MomentumParams,
    ) -> None:
        self.symbols = symbols
        self.builders = {s: BarBuilder(s, bar_seconds, window) for s in symbols}
        self.quotes: dict[str, QuoteState] = {}
        self.stale_s = stale_s
        self.tracker = SentimentTracker(sentiment)
        self.momentum = momentum

    def on_quote(self, q: Quote, ts_ns: int, now: float | None = None) -> Bar | None:
        """Record a quote of a watched symbol; returns a bar it completed."""
        sym = q.contract.symbol
        builder = self.builders.get(sym)
        if builder is None or q.contract.sec_type is SecType.OPT:
            return None
        state = self.quotes.get(sym)
        if state is None:
            state = self.quotes[sym] = QuoteState(q.contract.sec_type)
        state.bid, state.ask, state.last = q.bid, q.ask, q.last
        state.close = q.close if q.close is not None else state.close
        state.data_type = q.data_type
        state.received = clock.current().monotonic() if now is None else now
        price = quote_price(q)
        if price is None:
            return None
        return builder.on_price(ts_ns, price, q.volume, q.data_type)

    def on_history(self, symbol: str, bars: list[Bar]) -> int:
        builder = self.builders.get(symbol)
        return builder.seed(bars) if builder is not None else 0

    def mark_gap(self) -> None:
        for builder in self.builders.values():
            builder.mark_gap()

    def is_stale(self, symbol: str, now: float) -> bool:
        state = self.quotes.get(symbol)
        return state is None or now - state.received > self.stale_s

    def view(self, symbol: str, now: float) -> SymbolView:
        state = self.quotes.get(symbol) or QuoteState(SecType.STK)
        builder = self.builders[symbol]
        return SymbolView(
            symbol=symbol,
            closes=builder.closes(),
            volumes=builder.volumes(),
            bid=state.bid,
            ask=state.ask,
            stale=self.is_stale(symbol, now),
            sec_type=state.sec_type,
            data_type=state.data_type,
        )

    def evaluate(self, now: float | None = None) -> Evaluation:
        """Run the sentiment rule and the screen on the current state."""
        now = clock.current().monotonic() if now is None else now
        closes = {s: self.builders[s].closes() for s in ("SPY", "QQQ", "VIX") if s in self.builders}
        inputs = compute_inputs(
            closes.get("SPY", []), closes.get("QQQ", []), closes.get("VIX", []), self.tracker.params
        )
        change = self.tracker.update(inputs) if inputs is not None else None
        views = [self.view(s, now) for s in self.symbols]
        result = screen(views, closes.get("SPY", []), self.momentum)
        types = [self.quotes[s].data_type for s in self.symbols if s in self.quotes]
        return Evaluation(
            sentiment=change,
            screen=result,
            data_type=worst(types),
            warm=inputs is not None,
            stale=[v.symbol for v in views if v.stale],
        )
