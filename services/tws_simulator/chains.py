"""Option chain shape: which expirations and strikes exist for an underlying.

Derived from the calendar date and the reference price only, so the same
contract keeps the same conId across restarts on the same day. An expiration
whose Friday is an NYSE holiday moves to the business day before (``nyse.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

from .nyse import expiry_day

WEEKLIES = 8
MONTHLIES = 4
STRIKE_RANGE = 0.20  # +-20 % of the reference price


@dataclass(frozen=True, slots=True)
class Chain:
    """Expirations (YYYYMMDD, ascending) and strikes (ascending) of one underlying."""

    expirations: tuple[str, ...]
    strikes: tuple[float, ...]


def strike_increment(price: float, etf: bool) -> float:
    """Listed-strike spacing by price level (ETFs list $1 strikes)."""
    if etf:
        return 1.0
    if price < 50:
        return 0.5
    if price < 100:
        return 1.0
    if price < 300:
        return 2.5
    if price < 1000:
        return 5.0
    return 10.0


def _third_friday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    offset = (4 - first.weekday()) % 7
    return first + dt.timedelta(days=offset + 14)


def expirations(today: dt.date) -> tuple[str, ...]:
    """Weekly Fridays for ~8 weeks, then a few monthly (3rd Friday) expirations;
    a Friday that is an exchange holiday expires on the session before."""
    days_to_friday = (4 - today.weekday()) % 7 or 7
    fridays = [today + dt.timedelta(days=days_to_friday + 7 * i) for i in range(WEEKLIES)]
    last = fridays[-1]
    year, month = last.year, last.month
    monthlies: list[dt.date] = []
    while len(monthlies) < MONTHLIES:
        candidate = _third_friday(year, month)
        if candidate > last:
            monthlies.append(candidate)
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return tuple(expiry_day(d).strftime("%Y%m%d") for d in fridays + monthlies)


def strikes(price: float, etf: bool) -> tuple[float, ...]:
    """Strikes on the listing grid within STRIKE_RANGE of the reference price."""
    inc = strike_increment(price, etf)
    lo = int(price * (1 - STRIKE_RANGE) / inc) + 1
    hi = int(price * (1 + STRIKE_RANGE) / inc)
    return tuple(round(k * inc, 2) for k in range(lo, hi + 1))


@cache
def chain_for(price: float, etf: bool, today: dt.date) -> Chain:
    """The (cached) chain of an underlying on a given calendar day."""
    return Chain(expirations(today), strikes(price, etf))
