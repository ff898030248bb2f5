"""The daily summary after the NYSE close: P&L, round trips, denials, incidents.

Sent once per NYSE session at ``OPTBOT_ALERT_SUMMARY_AT`` (America/New_York); the
date of the last one is kept in ``notifier:summary`` so a restart does not resend.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from services.notifier.conditions import Conditions
from shared.envelope import DecodeError, decode
from shared.redis_text import as_str
from shared.schemas import Action, Alert, AlertSeverity, AlertState, OrderEvent, OrderEventKind
from shared.streams import NOTIFIER_SUMMARY, ORDERS_EVENTS, STRATEGY_PNL, SYS_ALERTS

NEW_YORK = ZoneInfo("America/New_York")
SCAN_CAP = 200_000  # entries read per stream for one day's counts (bounded)


@cache
def _calendar() -> Any:
    import exchange_calendars  # slow import (pandas): once, when a summary is due

    return exchange_calendars.get_calendar("XNYS")


def is_session(day: datetime) -> bool:
    import pandas as pd

    return bool(_calendar().is_session(pd.Timestamp(day.date())))


def due(now: datetime, at: str, last: str | None) -> str | None:
    """The NY date a summary is due for at ``now`` (None: not yet, or already sent)."""
    local = now.astimezone(NEW_YORK)
    hh, mm = (int(x) for x in at.split(":"))
    day = local.date().isoformat()
    if local.time() < time(hh, mm) or last == day or not is_session(local):
        return None
    return day


async def _entries(redis: aioredis.Redis, stream: str, since_ms: int) -> list[Any]:
    rows: Any = await redis.xrange(stream, f"{since_ms}-0", "+", count=SCAN_CAP)
    out = []
    for entry_id, fields in rows:
        try:
            out.append(decode(fields, entry_id.decode()).body)
        except DecodeError:
            continue
    return out


async def build(redis: aioredis.Redis, day: str) -> tuple[str, dict[str, str]]:
    """The summary text of NY ``day`` and its figures."""
    start = datetime.fromisoformat(day).replace(tzinfo=NEW_YORK)
    since_ms = int(start.astimezone(UTC).timestamp() * 1000)
    events = [
        b for b in await _entries(redis, ORDERS_EVENTS, since_ms) if isinstance(b, OrderEvent)
    ]
    fills = [e for e in events if e.kind is OrderEventKind.FILL]
    round_trips = sum(1 for e in fills if e.action is Action.SELL)  # long options: a sell closes
    denials = sum(1 for e in events if e.kind is OrderEventKind.DENIED)
    alerts = [b for b in await _entries(redis, SYS_ALERTS, since_ms) if isinstance(b, Alert)]
    incidents = sum(
        1 for a in alerts
        if a.state is not AlertState.CLOSED and a.severity is not AlertSeverity.INFO
    )  # fmt: skip
    pnl_raw: Any = await redis.hgetall(STRATEGY_PNL)
    pnl = {k.decode(): v.decode() for k, v in pnl_raw.items()}
    figures = {
        "day_pnl": pnl.get("daily_pnl", "n/a"),
        "realized": pnl.get("realized", "n/a"),
        "unrealized": pnl.get("unrealized", "n/a"),
        "equity": pnl.get("equity", "n/a"),
        "open_positions": pnl.get("positions", "n/a"),
        "risk_state": pnl.get("risk_state", "n/a"),
        "fills": str(len(fills)),
        "round_trips": str(round_trips),
        "denials": str(denials),
        "incidents": str(incidents),
    }
    text = (
        f"{day}: P&L {figures['day_pnl']} (realized {figures['realized']}, unrealized "
        f"{figures['unrealized']}), equity {figures['equity']}; {round_trips} round trip(s), "
        f"{len(fills)} fill(s), {denials} denial(s), {incidents} incident(s); "
        f"risk {figures['risk_state']}, {figures['open_positions']} open position(s)"
    )
    return text, figures


async def maybe_send(conditions: Conditions, now: datetime, at: str) -> bool:
    """Write the day's summary to sys:alerts once, after the close; True when written."""
    redis = conditions.redis
    last = await redis.get(NOTIFIER_SUMMARY)
    # The NYSE calendar loads pandas once (seconds): off the loop, so heartbeats go on.
    day = await asyncio.to_thread(due, now, at, as_str(last) if last else None)
    if day is None:
        return False
    text, figures = await build(redis, day)
    await conditions.event(f"summary:{day}", "daily_summary", AlertSeverity.INFO, text, figures)
    await redis.set(NOTIFIER_SUMMARY, day)
    return True
