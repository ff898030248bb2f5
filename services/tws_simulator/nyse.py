"""The NYSE calendar (exchange_calendars, XNYS): sessions, closes and expiry days.

Listed options expire at the close of their expiration day: 16:00 America/New_York,
or the early close (13:00) on half days. When the Friday of a weekly or monthly
expiration is an exchange holiday (Good Friday, Juneteenth, July 3rd observed),
the listing expires on the business day before, as real OCC listings do.
"""

from __future__ import annotations

import bisect
import datetime as dt
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

NEW_YORK = ZoneInfo("America/New_York")
CLOSE = dt.time(16, 0)


@cache
def calendar() -> Any:
    """The XNYS calendar (about 20 years back, one year ahead); loaded once, slow."""
    import exchange_calendars  # pandas: import only when the calendar is needed

    return exchange_calendars.get_calendar("XNYS")


def _covered(day: dt.date) -> bool:
    cal = calendar()
    return bool(cal.first_session.date() <= day <= cal.last_session.date())


def expiry_day(day: dt.date) -> dt.date:
    """The session an expiration falling on ``day`` really expires on (holiday: the day before)."""
    if not _covered(day):
        return day
    import pandas as pd

    session = calendar().date_to_session(pd.Timestamp(day), direction="previous")
    return dt.date(session.year, session.month, session.day)


def close_epoch(day: dt.date) -> float:
    """Epoch seconds of the session close on ``day`` (early closes included).

    Outside the calendar's range (or on a non-session) it is 16:00 New York time.
    """
    if _covered(day):
        import pandas as pd

        cal = calendar()
        ts = pd.Timestamp(day)
        if cal.is_session(ts):
            return float(cal.session_close(ts).timestamp())
    return dt.datetime.combine(day, CLOSE, NEW_YORK).timestamp()


@cache
def expiry_epoch(expiry: str) -> float:
    """When an option with lastTradeDate ``expiry`` (YYYYMMDD) stops trading and settles."""
    day = dt.datetime.strptime(expiry, "%Y%m%d").date()
    return close_epoch(expiry_day(day))


class NotASession(ValueError):
    """A start date on which NYSE does not trade (weekend, holiday, outside the calendar)."""


class Sessions:
    """Regular-hours sessions as epoch intervals, for a fast "is the market open" per step."""

    def __init__(self) -> None:
        schedule = calendar().schedule
        self._opens: list[float] = [t.timestamp() for t in schedule["open"].array]
        self._closes: list[float] = [t.timestamp() for t in schedule["close"].array]
        self._days = [dt.date(t.year, t.month, t.day) for t in schedule.index]

    def is_open(self, epoch: float) -> bool:
        """True from a session's open (inclusive) to its close (exclusive)."""
        i = bisect.bisect_right(self._opens, epoch) - 1
        return i >= 0 and epoch < self._closes[i]

    def session_open(self, epoch: float) -> float | None:
        """The open of the session ``epoch`` lies in, or None while closed."""
        i = bisect.bisect_right(self._opens, epoch) - 1
        return self._opens[i] if i >= 0 and epoch < self._closes[i] else None

    def session_close(self, epoch: float) -> float | None:
        """The close of the session ``epoch`` lies in (13:00 on early closes), or None."""
        i = bisect.bisect_right(self._opens, epoch) - 1
        return self._closes[i] if i >= 0 and epoch < self._closes[i] else None

    def next_open(self, epoch: float) -> float | None:
        """The first session open after ``epoch``; None beyond the calendar."""
        i = bisect.bisect_right(self._opens, epoch)
        return self._opens[i] if i < len(self._opens) else None

    def open_on(self, day: dt.date) -> float:
        """Epoch seconds of the session open on ``day``; ``NotASession`` if NYSE is shut."""
        i = bisect.bisect_left(self._days, day)
        if i < len(self._days) and self._days[i] == day:
            return self._opens[i]
        first, last = self._days[0], self._days[-1]
        if not first <= day <= last:
            raise NotASession(f"{day} is outside the NYSE calendar ({first} to {last})")
        following = self._days[i]
        raise NotASession(
            f"{day} ({day:%A}) is not an NYSE session (weekend or holiday); "
            f"the next session is {following} ({following:%A})"
        )

    def open_times(self, start: float, end: float) -> np.ndarray:
        """Session opens within [start, end) (epoch seconds)."""
        lo = bisect.bisect_left(self._opens, start)
        hi = bisect.bisect_left(self._opens, end)
        return np.array(self._opens[lo:hi])


@cache
def sessions() -> Sessions:
    """One shared Sessions table per process."""
    return Sessions()
