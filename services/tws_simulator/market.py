"""Seeded price model: correlated GBM under switching regimes, VIX against SPY.

One clock for the path and the option pricer: volatility is annualised on
calendar time (YEAR_SECONDS, 365 days), and every symbol diffuses at exactly the
at-the-money implied volatility its options are priced at (``atm_vol``: the
symbol's reference IV scaled by the VIX level). So what a symbol realizes is what
its options imply, over any horizon; regimes add drift (and choppy a pull back to
an anchor), never extra diffusion.

With ``sessions`` (regular hours) the market is closed outside NYSE sessions: no
moves, no trades; the variance of the closed calendar time arrives as a gap at
the open, while options keep decaying overnight (they price on the same clock).

Every step draws a fixed number of random numbers from one generator, so the
path is a pure function of (seed, step count and lengths, forced regimes). A step
may be longer than ``step_seconds`` (lockstep: one step jumps a closed market to
the next open, carrying the whole closed time's variance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .bars import BarRecorder
from .nyse import Sessions
from .regimes import ORDER, PARAMS, Regime
from .schedule import Phase, phase_at
from .symbols import SPECS, VIX_SPEC, SymbolSpec

YEAR_SECONDS = 365 * 86400  # the pricer's year: calendar time, also for the path
VIX_REF = VIX_SPEC.price
VIX_VOL_POWER = 0.7  # how strongly implied (and so realized) volatility follows VIX
MIN_IDIO_SHARE = 0.3  # every symbol keeps at least this share of its own volatility
PRINT_LOTS = (1, 30)  # a step's trade is 100 x [1, 30) shares: 1,500 on average
MEAN_PRINT_SIZE = 100 * (PRINT_LOTS[0] + PRINT_LOTS[1] - 1) / 2


def atm_vol(spec: SymbolSpec, vix: float) -> float:
    """At-the-money implied volatility of ``spec`` at this VIX level (calendar time)."""
    return float(spec.iv * (vix / VIX_REF) ** VIX_VOL_POWER)


def factor_loadings(specs: tuple[SymbolSpec, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Unit-variance loadings (market, own) per symbol: beta sets the correlation,
    and a**2 + b**2 == 1 keeps each symbol's total volatility at its IV."""
    market_iv = specs[0].iv
    a = np.array([min(s.beta * market_iv / s.iv, math.sqrt(1 - MIN_IDIO_SHARE**2)) for s in specs])
    a[0] = math.sqrt(1 - 0.05**2)  # SPY is (almost) the market factor itself
    return a, np.sqrt(1 - a**2)


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
        sessions: Sessions | None = None,
        schedule: tuple[Phase, ...] = (),
    ) -> None:
        self.seed = seed
        self.step_seconds = step_seconds
        self.start_epoch = start_epoch
        self.regime = regime
        self.regime_period = regime_period
        self.sessions = sessions  # None: open around the clock
        self.schedule = schedule  # empty: regime_period draws (0: pinned)
        self.pinned = False  # a forced regime suspends the schedule
        self.phase: Phase | None = None
        self.open = True
        self._closed_since: float | None = None
        self.steps = 0
        # now() = _base + (steps - _base_steps) * step_seconds: exact for fixed steps; a
        # step of another length (lockstep, the jump to the open) moves the base.
        self._base = start_epoch
        self._base_steps = 0
        self._rng = np.random.default_rng(seed)
        self.symbols = [s.symbol for s in SPECS]
        self.index = {sym: i for i, sym in enumerate(self.symbols)}
        self.ref = np.array([s.price for s in SPECS])
        self.log_price = np.log(self.ref)
        self._anchor = self.log_price.copy()
        self._beta = np.array([s.beta for s in SPECS])
        self._iv = np.array([s.iv for s in SPECS])
        self._load_m, self._load_i = factor_loadings(SPECS)
        self._etf = [s.etf for s in SPECS]
        self._leader_drift = np.zeros(len(SPECS))
        self.vix_log = math.log(VIX_REF)
        self.quotes: dict[str, Quote] = {}
        self.bars = BarRecorder()
        self._init_quotes()
        if sessions is not None and not sessions.is_open(start_epoch):
            self.open, self._closed_since = False, start_epoch
        self._follow_schedule()

    def now(self) -> float:
        """Simulated epoch seconds of the current step."""
        return self._base + (self.steps - self._base_steps) * self.step_seconds

    def minute_volume(self) -> float:
        """Average shares a symbol trades per simulated minute on the live feed."""
        return MEAN_PRINT_SIZE * 60 / self.step_seconds

    def price(self, symbol: str) -> float:
        """Current mid of an underlying (or the VIX level)."""
        if symbol == "VIX":
            return round(math.exp(self.vix_log), 2)
        return float(math.exp(self.log_price[self.index[symbol]]))

    def force_regime(self, regime: Regime) -> None:
        """Switch regime now and hold it (fault/control API): the schedule is suspended.

        Under a schedule, the regime keeps the schedule's strength (its first phase
        of that regime: the demo's trends and leaders); otherwise the regime's own.
        """
        self.pinned = True
        phase = next((p for p in self.schedule if p.regime is regime), None)
        if phase is not None:
            self._enter(phase)
            return
        self.phase = None
        self._leader_drift[:] = 0.0
        self._set_regime(regime)

    def resume_schedule(self) -> None:
        """Back to the schedule's phase for the current time (after a forced regime)."""
        self.pinned = False
        self._follow_schedule()

    def _set_regime(self, regime: Regime) -> None:
        """Choppy mean reversion pulls toward the prices at the switch."""
        self.regime = regime
        self._anchor = self.log_price.copy()

    def _follow_schedule(self) -> None:
        if not self.schedule or self.pinned:
            return
        phase = phase_at(self.schedule, self.now() - self.start_epoch)
        if phase is not self.phase:
            self._enter(phase)

    def _enter(self, phase: Phase) -> None:
        self.phase = phase
        self._leader_drift[:] = 0.0
        for symbol in phase.leaders:
            self._leader_drift[self.index[symbol]] = phase.leader_drift_per_hour
        self._set_regime(phase.regime)

    def step(self, seconds: float | None = None) -> None:
        """Advance one step of ``step_seconds``, or of ``seconds`` (a lockstep step that
        lands on the requested time, or one jump over a closed market to the open):
        regime schedule, factor + idiosyncratic moves, VIX, quotes."""
        z = self._rng.standard_normal(len(self.symbols) + 2)
        u = float(self._rng.random())
        sizes = self._rng.integers(*PRINT_LOTS, size=(len(self.symbols) + 1, 3))
        if seconds is not None:
            self._base, self._base_steps = self.now() + seconds, self.steps + 1
        self.steps += 1
        if self.schedule:
            self._follow_schedule()
        else:
            self._maybe_switch(u)
        spans = self._open_seconds(self.step_seconds if seconds is None else seconds)
        if spans is None:
            return  # closed: nothing moves, nothing trades
        variance_seconds, dt = spans  # dt: the open seconds, for drift and reversion
        p = PARAMS[self.regime]
        scale = math.sqrt(variance_seconds / YEAR_SECONDS)
        vix_factor = (math.exp(self.vix_log) / VIX_REF) ** VIX_VOL_POWER
        sd = self._iv * vix_factor * scale
        drift_m = (self.phase.drift_per_hour if self.phase else p.drift_per_hour) * dt / 3600
        r_m = drift_m + sd[0] * self._load_m[0] * z[0]  # the market factor's return (SPY)
        moves = self._beta * drift_m + sd * (self._load_m * z[0] + self._load_i * z[1:-1])
        moves += self._leader_drift * dt / 3600
        if p.reversion:
            moves -= (self.log_price - self._anchor) * min(1.0, p.reversion * dt)
        self.log_price += moves
        pull = (math.log(p.vix_target) - self.vix_log) * min(1.0, dt / 1800)
        self.vix_log += -4.0 * r_m + 0.3 * VIX_SPEC.vol * scale * z[-1] + pull
        self.vix_log = min(max(self.vix_log, math.log(9.0)), math.log(90.0))
        self._update_quotes(z, sizes)

    def _open_seconds(self, dt: float) -> tuple[float, float] | None:
        """(calendar seconds whose variance this step of ``dt`` carries, seconds of it
        the market was open), or None while closed.

        Around the clock both are the step; with sessions, the first step after a
        close also carries the whole closed time (the overnight or weekend gap), but
        drifts only over its open part: a regime's drift never runs overnight.
        """
        if self.sessions is None:
            return dt, dt
        now = self.now()
        opened = self.sessions.session_open(now)
        if opened is None:
            if self.open:
                self.open, self._closed_since = False, now - dt
            return None
        gap = 0.0 if self._closed_since is None else now - dt - self._closed_since
        self.open, self._closed_since = True, None
        return dt + gap, min(dt, now - opened)

    def _maybe_switch(self, u: float) -> None:
        if not self.regime_period:
            return
        every = max(1, round(self.regime_period / self.step_seconds))
        if self.steps % every == 0:
            others = [r for r in ORDER if r != self.regime]
            self._set_regime(others[int(u * len(others)) % len(others)])

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
