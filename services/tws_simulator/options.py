"""Option quotes priced off the simulated underlying: model greeks, IV-consistent spreads."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .contracts import Instrument
from .greeks import Greeks, black_scholes, smile_iv
from .market import YEAR_SECONDS, Market, Quote, atm_vol
from .nyse import expiry_epoch
from .symbols import BY_SYMBOL


@dataclass(slots=True)
class OptionQuote:
    """Top of book and the model computation behind it (tickOptionComputation data)."""

    quote: Quote
    model: Greeks
    bid_iv: float
    ask_iv: float
    underlying: float


def option_spread(price: float, etf: bool, moneyness: float) -> float:
    """Wider than stocks, and wider the further from the money."""
    base = 0.01 if etf else 0.03
    return max(0.01, round((base + 0.012 * price) * (1 + 4 * abs(moneyness)), 2))


class OptionPricer:
    """Prices options on demand, at most once per market step each."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self._cache: dict[int, tuple[int, OptionQuote]] = {}

    def atm_iv(self, symbol: str) -> float:
        """At-the-money implied volatility now: the volatility the path diffuses at."""
        return atm_vol(BY_SYMBOL[symbol], self.market.price("VIX"))

    def quote(self, inst: Instrument) -> OptionQuote:
        hit = self._cache.get(inst.con_id)
        if hit is not None and hit[0] == self.market.steps:
            return hit[1]
        oq = self._price(inst, hit[1] if hit else None)
        self._cache[inst.con_id] = (self.market.steps, oq)
        return oq

    def _price(self, inst: Instrument, prev: OptionQuote | None) -> OptionQuote:
        spec = BY_SYMBOL[inst.symbol]
        spot = self.market.price(inst.symbol)
        years = max((expiry_epoch(inst.expiry) - self.market.now()) / YEAR_SECONDS, 1e-5)
        iv = smile_iv(self.atm_iv(inst.symbol), spot, inst.strike, years)
        g = black_scholes(spot, inst.strike, years, iv, inst.right == "C")
        spread = option_spread(g.price, spec.etf, math.log(inst.strike / spot))
        bid = max(0.0, round(g.price - spread / 2, 2))
        ask = round(max(bid, g.price - spread / 2) + spread, 2)
        vega_unit = max(g.vega * 100, 1e-9)
        bid_iv = max(0.01, iv - (g.price - bid) / vega_unit)
        ask_iv = iv + (ask - g.price) / vega_unit
        size = 1 + (self.market.steps + inst.con_id) % 40
        last = round(g.price, 2)
        if prev is None:
            quote = Quote(bid, ask, last, size * 2, size * 3, 1, 0, last, last, last)
        else:
            quote = prev.quote
            quote.bid, quote.ask, quote.last = bid, ask, last
            quote.bid_size, quote.ask_size = (size * 2 if bid > 0 else 0), size * 3
            quote.last_size = 1 + size % 5
            quote.volume += quote.last_size
            quote.high, quote.low = max(quote.high, last), min(quote.low, last)
        if bid <= 0:
            quote.bid_size = 0
        return OptionQuote(quote, g, bid_iv, ask_iv, spot)
