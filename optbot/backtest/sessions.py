"""Which NYSE sessions a backtest runs: the exchange calendar (XNYS), early closes included.

A session is the regular trading day 09:30-16:00 America/New_York (13:00 on early-close
days); weekends and holidays are not sessions and are skipped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from shared.market_calendar import NEW_YORK


@dataclass(frozen=True)
class Session:
    """One regular session: its New York date and its open and close instants (epoch s)."""

    day: dt.date
    open: float
    close: float

    @property
    def hours(self) -> float:
        return (self.close - self.open) / 3600.0

    def label(self) -> str:
        return self.day.isoformat()


class CalendarError(ValueError):
    """A start date that is not an NYSE session, or sessions the calendar does not cover."""


def _calendar() -> Any:
    from shared.market_calendar import _xnys

    return _xnys()


def _session(cal: Any, ts: Any) -> Session:
    day = dt.date(ts.year, ts.month, ts.day)
    return Session(
        day, float(cal.session_open(ts).timestamp()), float(cal.session_close(ts).timestamp())
    )


def sessions(start: dt.date | None, days: int, *, now: float | None = None) -> list[Session]:
    """``days`` consecutive sessions from ``start`` (default: the last ``days`` sessions that
    closed before ``now``). A start that is not a session is an error naming it."""
    import pandas as pd

    from shared.market_calendar import _quiet

    if days < 1:
        raise CalendarError(f"--days must be at least 1, got {days}")
    cal = _calendar()
    first, last = cal.first_session.date(), cal.last_session.date()
    with _quiet():
        if start is None:
            today = dt.datetime.fromtimestamp(
                now if now is not None else dt.datetime.now(dt.UTC).timestamp(), NEW_YORK
            )
            closed = [
                s
                for s in cal.sessions_in_range(pd.Timestamp(first), pd.Timestamp(today.date()))
                if cal.session_close(s).timestamp() <= today.timestamp()
            ]
            if len(closed) < days:
                raise CalendarError(f"the calendar has only {len(closed)} sessions before today")
            return [_session(cal, s) for s in closed[-days:]]
        if not first <= start <= last:
            raise CalendarError(
                f"--start {start.isoformat()} is outside the NYSE calendar ({first} to {last})"
            )
        if not cal.is_session(pd.Timestamp(start)):
            what = "a weekend day" if start.weekday() >= 5 else "an NYSE holiday"
            nxt = cal.date_to_session(pd.Timestamp(start), direction="next").date()
            raise CalendarError(
                f"--start {start.isoformat()} is not an NYSE session ({what}); "
                f"the next session is {nxt.isoformat()}"
            )
        found = cal.sessions_in_range(pd.Timestamp(start), pd.Timestamp(last))[:days]
        if len(found) < days:
            raise CalendarError(
                f"the NYSE calendar ends {last}: only {len(found)} of {days} sessions from {start}"
            )
        return [_session(cal, s) for s in found]
