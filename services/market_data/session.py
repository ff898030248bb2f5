"""Trading sessions from the NYSE calendar (exchange_calendars): hours and holidays.

The simulated market trades around the clock (``OPTBOT_MD_MARKET_HOURS=always``);
against IB, ``regular`` screens only 09:30-16:00 ET on NYSE sessions (early
closes included) and ``extended`` 04:00-20:00 ET on those days.
"""

from __future__ import annotations

from datetime import datetime, time
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from shared import clock
from shared.settings import MarketHours

NEW_YORK = ZoneInfo("America/New_York")
EXTENDED = (time(4, 0), time(20, 0))


class MarketSession:
    def __init__(self, hours: MarketHours) -> None:
        self.hours = hours

    @cached_property
    def _calendar(self) -> Any:
        import exchange_calendars  # slow import (pandas): only when hours matter

        return exchange_calendars.get_calendar("XNYS")

    def is_open(self, now: datetime | None = None) -> bool:
        if self.hours is MarketHours.ALWAYS:
            return True
        import pandas as pd

        now = now or clock.current().now()
        minute = pd.Timestamp(now).tz_convert("UTC").floor("min")
        if self.hours is MarketHours.REGULAR:
            return bool(self._calendar.is_open_on_minute(minute))
        local = now.astimezone(NEW_YORK)
        day = pd.Timestamp(local.date())
        if not self._calendar.is_session(day):
            return False
        return EXTENDED[0] <= local.time() < EXTENDED[1]
