"""Seeded price model: correlated GBM under switching regimes, VIX against SPY.

Every step draws a fixed number of random numbers from one generator, so the
path is a pure function of (seed, step count, forced regimes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .bars import BarRecorder
from .regimes import ORDER, PARAMS, Regime
from .symbols import SPECS, VIX_SPEC

TRADING_YEAR_SECONDS = 252 * 6.5 * 3600
VIX_REF = VIX_SPEC.price


@dataclass(slots=True)
class Quote:
    """Top of book plus session statistics for one underlying or option."""

    bid: float
    ask: float
    last: float
    bid_size: int
    ask_size: int
    last_size: int
    volume: int
    close: float
    high: float
    low: float


def _spread(price: float, etf: bool) -> float:
    return 0.01 if etf else max(0.01, round(price * 0.00005, 2))


class Market:
    """Underlying prices for all symbols, advanced one step at a time."""

    def __init__(
        self,
        seed: int,
        step_seconds: float,
        start_epoch: float,
        regime: Regime,
        regime_period: float,
    ) -> None:
        self.seed = seed
        self.step_seconds = step_seconds
        self.start_epoch = start_epoch
        self.regime = regime
        self.regime_period = regime_period
        self.steps = 0
        self._rng = np.random.default_rng(seed)
        self.symbols = [s.symbol for s in SPECS]
        self.index = {sym: i for i, sym in enumerate(self.symbols)}
        self.ref = np.array([s.price for s in SPECS])
        self.log_price = np.log(self.ref)
        self._anchor = self.log_price.copy()
        scale = math.sqrt(step_seconds / TRADING_YEAR_SECONDS)
        self._beta = np.array([s.beta for s in SPECS])
        vol = np.array([s.vol for s in SPECS])
        market_vol = SPECS[0].vol
        self._market_sd = market_vol * scale
        self._idio_sd = (
            np.sqrt(np.maximum(vol**2 - (self._beta * market_vol) ** 2, (0.3 * vol) ** 2)) * scale
        )
        self._idio_sd[0] = 0.05 * market_vol * scale
        self._etf = [s.etf for s in SPECS]
        self.vix_log = math.log(VIX_REF)
        self._vix_sd = VIX_SPEC.vol * scale
        self.quotes: dict[str, Quote] = {}
        self.bars = BarRecorder()
        self._init_quotes()

    def now(self) -> float:
        """Simulated epoch seconds of the current step."""
        return self.start_epoch + self.steps * self.step_seconds

    def price(self, symbol: str) -> float:
        """Current mid of an underlying (or the VIX level)."""
        if symbol == "VIX":
            return round(math.exp(self.vix_log), 2)
        return float(math.exp(self.log_price[self.index[symbol]]))

    def force_regime(self, regime: Regime) -> None:
        """Switch regime now (fault/control API); choppy re-anchors mean reversion."""
        self.regime = regime
        self._anchor = self.log_price.copy()

    def step(self) -> None:
        """Advance one step: regime schedule, factor + idiosyncratic moves, VIX, quotes."""
        z = self._rng.standard_normal(len(self.symbols) + 2)
        u = float(self._rng.random())
        sizes = self._rng.integers(1, 30, size=(len(self.symbols) + 1, 3))
        self.steps += 1
        self._maybe_switch(u)
        p = PARAMS[self.regime]
        dt = self.step_seconds
        r_m = p.drift_per_hour * dt / 3600 + p.vol_mult * self._market_sd * z[0]
        moves = self._beta * r_m + p.vol_mult * self._idio_sd * z[1:-1]
        if p.reversion:
            moves -= (self.log_price - self._anchor) * min(1.0, p.reversion * dt)
        self.log_price += moves
        pull = (math.log(p.vix_target) - self.vix_log) * min(1.0, dt / 1800)
        self.vix_log += -4.0 * r_m + 0.3 * self._vix_sd * z[-1] + pull
        self.vix_log = min(max(self.vix_log, math.log(9.0)), math.log(90.0))
        self._update_quotes(z, sizes)

    def _maybe_switch(self, u: float) -> None:
        if not self.regime_period:
            return
        every = max(1, round(self.regime_period / self.step_seconds))
        if self.steps % every == 0:
            others = [r for r in ORDER if r != self.regime]
            self.force_regime(others[int(u * len(others)) % len(others)])

    def _init_quotes(self) -> None:
        for i, sym in enumerate(self.symbols):
            px = float(self.ref[i])
            spread = _spread(px, self._etf[i])
            bid = math.floor((px - spread / 2) * 100) / 100
            self.quotes[sym] = Quote(
                bid,
                round(bid + spread, 2),
                round(px, 2),
                5,
                5,
                1,
                0,
                round(px, 2),
                round(px, 2),
                round(px, 2),
            )
        vix = round(VIX_REF, 2)
        self.quotes["VIX"] = Quote(0.0, 0.0, vix, 0, 0, 0, 0, vix, vix, vix)

    def _update_quotes(self, z: np.ndarray, sizes: np.ndarray) -> None:
        now = self.now()
        prices = np.exp(self.log_price)
        for i, sym in enumerate(self.symbols):
            px = float(prices[i])
            q = self.quotes[sym]
            spread = _spread(px, self._etf[i])
            q.bid = math.floor((px - spread / 2) * 100) / 100
            q.ask = round(q.bid + spread, 2)
            q.last = q.ask if z[i + 1] > 0 else q.bid
            q.bid_size, q.ask_size = int(sizes[i, 0]) * 100, int(sizes[i, 1]) * 100
            q.last_size = int(sizes[i, 2]) * 100
            q.volume += q.last_size
            q.high, q.low = max(q.high, q.last), min(q.low, q.last)
            self.bars.record(sym, now, q.last, q.last_size)
        vq = self.quotes["VIX"]
        vq.last = round(math.exp(self.vix_log), 2)
        vq.high, vq.low = max(vq.high, vq.last), min(vq.low, vq.last)
        self.bars.record("VIX", now, vq.last, 0)
