"""Historical bars that continue backwards from the live path's starting point.

Minute closes before the simulator started are generated from the seed (market
factor shared by all symbols, VIX inverse to SPY), so indicators can warm up on
the same market the live ticks continue. After the start, the recorded live
minute bars are used. History reaches back HISTORY_DAYS (a 24/7 market).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from .bars import Bar
from .market import VIX_REF, YEAR_SECONDS, Market, factor_loadings
from .symbols import BY_SYMBOL, SPECS

HISTORY_DAYS = 120
HISTORY_MINUTES = HISTORY_DAYS * 1440

BAR_SECONDS: dict[str, int] = {
    "1 min": 60,
    "2 mins": 120,
    "3 mins": 180,
    "5 mins": 300,
    "10 mins": 600,
    "15 mins": 900,
    "20 mins": 1200,
    "30 mins": 1800,
    "1 hour": 3600,
    "2 hours": 7200,
    "4 hours": 14400,
    "1 day": 86400,
}
_DURATION_UNITS = {"S": 1, "D": 86400, "W": 7 * 86400, "M": 30 * 86400, "Y": 365 * 86400}


class HistoryError(ValueError):
    """A request the HMDS would reject (error 321 / 162)."""


def parse_duration(text: str) -> int:
    """IB duration string ("3600 S", "1 D", "2 W", "1 M", "1 Y") in seconds."""
    parts = text.split()
    if len(parts) != 2 or parts[1].upper() not in _DURATION_UNITS or not parts[0].isdigit():
        raise HistoryError(f"Historical data duration {text!r} is invalid")
    return int(parts[0]) * _DURATION_UNITS[parts[1].upper()]


def parse_end(text: str, default: float) -> float:
    """endDateTime: empty (now), "YYYYMMDD HH:MM:SS[ TZ]" or "YYYYMMDD-HH:MM:SS" (UTC)."""
    text = text.strip()
    if not text:
        return default
    stamp = text.replace("-", " ")[:17]
    try:
        parsed = dt.datetime.strptime(stamp, "%Y%m%d %H:%M:%S")
    except ValueError as e:
        raise HistoryError(f"end date/time {text!r} is invalid") from e
    return parsed.replace(tzinfo=dt.UTC).timestamp()


class History:
    """Seeded backward minute paths per symbol, cached after first use."""

    def __init__(self, seed: int, market: Market) -> None:
        self.seed = seed
        self.market = market
        self.anchor = int(market.start_epoch // 60) * 60
        self._market_z: np.ndarray | None = None
        self._closes: dict[str, np.ndarray] = {}

    def _log_closes(self, symbol: str) -> np.ndarray:
        """log close at anchor - k*60 for k = 0..HISTORY_MINUTES (index k)."""
        cached = self._closes.get(symbol)
        if cached is not None:
            return cached
        if symbol == "VIX":
            spy = self._log_closes("SPY")
            out = math.log(VIX_REF) - 4.0 * (spy - spy[0])
            out = np.clip(out, math.log(9.0), math.log(90.0))
        else:
            out = self._stock_path(symbol)
        self._closes[symbol] = out
        return np.asarray(out)

    def _stock_path(self, symbol: str) -> np.ndarray:
        if self._market_z is None:
            self._market_z = np.random.default_rng([self.seed, 0, 1]).standard_normal(
                HISTORY_MINUTES
            )
        spec = BY_SYMBOL[symbol]
        idx = [s.symbol for s in SPECS].index(symbol) + 1
        load_m, load_i = factor_loadings(SPECS)
        sd = spec.iv * math.sqrt(60 / YEAR_SECONDS)  # the live path's clock and volatility
        z = np.random.default_rng([self.seed, idx, 1]).standard_normal(HISTORY_MINUTES)
        returns = sd * (load_m[idx - 1] * self._market_z + load_i[idx - 1] * z)
        start = math.log(spec.price)
        return np.concatenate(([start], start - np.cumsum(returns)))

    def bars(self, symbol: str, end: float, duration: int, bar_seconds: int) -> list[Bar]:
        """Bars whose start lies in [end - duration, end), aggregated from minutes."""
        t0 = max(end - duration, self.anchor - HISTORY_MINUTES * 60)
        times, o, h, lo, c, v = self._backward_minutes(symbol, t0, min(end, self.anchor))
        live = [
            b for t, b in sorted(self.market.bars.minutes.get(symbol, {}).items()) if t0 <= t < end
        ]
        if live:
            times = np.concatenate((times, [b.time for b in live]))
            o = np.concatenate((o, [b.open for b in live]))
            h = np.concatenate((h, [b.high for b in live]))
            lo = np.concatenate((lo, [b.low for b in live]))
            c = np.concatenate((c, [b.close for b in live]))
            v = np.concatenate((v, [b.volume for b in live]))
        return _aggregate(times, o, h, lo, c, v, bar_seconds)

    def _backward_minutes(self, symbol: str, t0: float, t1: float) -> tuple[np.ndarray, ...]:
        k_hi = int((self.anchor - math.ceil(t0 / 60) * 60) // 60)  # oldest bar index
        k_lo = max(1, math.floor((self.anchor - t1) / 60) + 1)
        k_hi = min(k_hi, HISTORY_MINUTES)
        if k_hi < k_lo:
            empty = np.array([])
            return empty, empty, empty, empty, empty, empty
        logs = self._log_closes(symbol)
        ks = np.arange(k_hi, k_lo - 1, -1)  # oldest first
        opens = np.exp(logs[ks])
        closes = np.exp(logs[ks - 1])
        wiggle = np.abs(np.sin(ks * 12.9898 + self.seed)) * 0.0006
        highs = np.maximum(opens, closes) * (1 + wiggle)
        lows = np.minimum(opens, closes) * (1 - wiggle[::-1])
        # Same scale as the live minutes (one print per step): a momentum screen
        # comparing recent (live) volume with older (history) volume sees no false surge.
        volume = 0.0 if symbol == "VIX" else self.market.minute_volume()
        vols = (0.5 + np.abs(np.cos(ks * 78.233 + self.seed))) / (0.5 + 2 / math.pi) * volume
        times = (self.anchor - ks * 60).astype(float)
        return times, opens, highs, lows, closes, vols


def _aggregate(
    times: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    bar_seconds: int,
) -> list[Bar]:
    if len(times) == 0:
        return []
    keys = (times // bar_seconds).astype(np.int64) * bar_seconds
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)] - 1
    highs = np.maximum.reduceat(h, starts)
    lows = np.minimum.reduceat(lo, starts)
    vols = np.add.reduceat(v, starts)
    return [
        Bar(
            int(keys[s]),
            round(float(o[s]), 2),
            round(float(hi), 2),
            round(float(lw), 2),
            round(float(c[e]), 2),
            int(vol),
        )
        for s, e, hi, lw, vol in zip(starts, ends, highs, lows, vols, strict=True)
    ]


def format_bar_time(t: int, bar_seconds: int, format_date: int) -> str:
    """Daily bars as YYYYMMDD; intraday as "YYYYMMDD HH:MM:SS UTC" or epoch (formatDate 2)."""
    if bar_seconds >= 86400:
        return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y%m%d")
    if format_date == 2:
        return str(t)
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y%m%d %H:%M:%S UTC")
