"""IB Gateway's scheduled restarts: a disconnect then is expected, not an outage.

IBC restarts the Gateway every day at ``AutoRestartTime`` (``OPTBOT_IB_RESTART_TIME``)
and IB logs every session out weekly (Sunday 01:00 America/New_York); the first login
after that weekly reset needs a two-factor approval on the trader's phone. So: a
disconnect soon after either time is reported as a scheduled restart, and only when
the gateway is not back within ``OPTBOT_IB_LOGIN_GRACE_S`` does the alert say what
to do ("approve the IB login on your phone"). The adapter says so in the reason of
its ``disconnected`` status, and the notifier in its alerts.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.settings import IbRestartSettings

NEW_YORK = ZoneInfo("America/New_York")
WEEKLY = (6, time(1, 0))  # Sunday 01:00 New York: IB's weekly reset (2FA at next login)
EARLY_S = 60.0  # IBC may start closing a little before the minute


class Restart:
    DAILY = "daily"
    WEEKLY = "weekly"


def scheduled_restart(at: float, settings: IbRestartSettings) -> str | None:
    """``weekly``, ``daily`` or None: which scheduled restart a disconnect at ``at`` is."""
    local = datetime.fromtimestamp(at, NEW_YORK)
    window = settings.ib_restart_window_s
    for day in (local.date(), local.date() - timedelta(days=1)):
        if day.weekday() == WEEKLY[0] and _near(local, day, WEEKLY[1], window):
            return Restart.WEEKLY
        if settings.ib_restart_time:
            hh, mm = (int(x) for x in settings.ib_restart_time.split(":"))
            if _near(local, day, time(hh, mm), window):
                return Restart.DAILY
    return None


def restart_note(at: float, settings: IbRestartSettings) -> str:
    """What to add to a disconnect's reason at ``at``: the scheduled restart, or nothing."""
    kind = scheduled_restart(at, settings)
    if kind is None:
        return ""
    if kind == Restart.WEEKLY:
        return " (IB's weekly reset, Sunday 01:00 New York: the next login needs approval)"
    return f" (scheduled daily IB Gateway restart at {settings.ib_restart_time} New York)"


def _near(local: datetime, day: date, when: time, window: float) -> bool:
    start = datetime.combine(day, when, NEW_YORK)
    delta = (local - start).total_seconds()
    return -EARLY_S <= delta <= window
