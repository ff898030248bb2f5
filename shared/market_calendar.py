"""The NYSE calendar for trading logic: trading date, option expiry instant, DTE.

One helper for every service, in America/New_York: at 23:30 in New York the UTC date
is already tomorrow, and a host in another zone has yet another date, so the DTE of
an option differed between the gateway (host date) and the strategy (UTC date).
Equity options stop trading at the session close of their expiry date: 16:00 New
York, 13:00 on early-close days (exchange_calendars, XNYS); an expiry date that is
not a session (a holiday) expires at the close of the session before it.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
CLOSE = dt.time(16, 0)
CALENDAR_START = "2015-01-01"
CALENDAR_YEARS_AHEAD = 3  # beyond it (far LEAPS) the regular 16:00 close is assumed


@contextmanager
def _quiet() -> Iterator[None]:
    """Hide exchange_calendars' own pandas deprecation warnings (theirs, not ours)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


@cache
def _xnys() -> Any:
    import exchange_calendars  # slow import (pandas): only when an expiry instant is needed

    end = dt.date.today() + dt.timedelta(days=366 * CALENDAR_YEARS_AHEAD)
    with _quiet():
        return exchange_calendars.get_calendar("XNYS", start=CALENDAR_START, end=end.isoformat())


def preload() -> None:
    """Build the calendar now: about a second (pandas), so call it off the event loop
    at start-up (``await asyncio.to_thread(preload)``), never first on a hot path."""
    _xnys()


def trading_date(now: dt.datetime | float) -> dt.date:
    """The New York calendar date of an instant (an aware datetime or epoch seconds)."""
    if isinstance(now, int | float):
        return dt.datetime.fromtimestamp(now, NEW_YORK).date()
    if now.tzinfo is None:
        raise ValueError("trading_date needs an aware datetime (a naive one has no zone)")
    return now.astimezone(NEW_YORK).date()


def parse_expiry(expiry: str) -> dt.date:
    """``YYYYMMDD`` (IB's lastTradeDateOrContractMonth; a time suffix is ignored)."""
    return dt.datetime.strptime(expiry[:8], "%Y%m%d").date()


def _in_range(day: dt.date) -> bool:
    cal = _xnys()
    return bool(cal.first_session.date() <= day <= cal.last_session.date())


def is_session(day: dt.date) -> bool:
    """Whether NYSE trades on ``day`` (weekends and holidays are not sessions)."""
    if not _in_range(day):
        return day.weekday() < 5
    import pandas as pd

    with _quiet():
        return bool(_xnys().is_session(pd.Timestamp(day)))


@lru_cache(maxsize=4096)
def expiry_instant(expiry: str) -> dt.datetime:
    """When an option of this expiry stops trading and settles (aware, UTC)."""
    day = parse_expiry(expiry)
    if not _in_range(day):
        return dt.datetime.combine(day, CLOSE, NEW_YORK).astimezone(dt.UTC)
    import pandas as pd

    cal = _xnys()
    with _quiet():
        session = cal.date_to_session(pd.Timestamp(day), direction="previous")
        close: Any = cal.session_close(session)
    return dt.datetime.fromtimestamp(close.timestamp(), dt.UTC)


def dte(expiry: str, now: dt.datetime | float) -> int:
    """Calendar days from the New York date of ``now`` to the expiry date."""
    return (parse_expiry(expiry) - trading_date(now)).days


def expired(expiry: str, now: dt.datetime | float) -> bool:
    """Whether ``now`` is at or after the expiry instant."""
    at = now if isinstance(now, dt.datetime) else dt.datetime.fromtimestamp(now, dt.UTC)
    return at >= expiry_instant(expiry)
