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

import msgspec
import redis.asyncio as aioredis

from services.notifier.conditions import Conditions
from shared.contract import (
    NOTIFIER_SUMMARY,
    ORDERS_EVENTS,
    STRATEGY_DECISIONS,
    STRATEGY_PNL,
    SYS_ALERTS,
)
from shared.contract.values import PnlFields, decode_fields
from shared.envelope import DecodeError, decode
from shared.logs import get_logger
from shared.redis_text import as_str
from shared.schemas import (
    Action,
    Alert,
    AlertSeverity,
    AlertState,
    Decision,
    DecisionOutcome,
    OrderEvent,
    OrderEventKind,
)

log = get_logger("optbot.notifier.summary")
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


async def _ledger(redis: aioredis.Redis) -> PnlFields | None:
    """The strategy's ``strategy:pnl`` as the contract's Struct; None (logged when it
    breaks the contract) leaves the figures "n/a" rather than the summary unsent."""
    try:
        return decode_fields(await redis.hgetall(STRATEGY_PNL), PnlFields)
    except msgspec.ValidationError as exc:
        log.error("contract_hash_unreadable", key=STRATEGY_PNL, error=str(exc))
        return None


async def build(redis: aioredis.Redis, day: str) -> tuple[str, dict[str, str]]:
    """The summary text of NY ``day`` and its figures."""
    start = datetime.fromisoformat(day).replace(tzinfo=NEW_YORK)
    since_ms = int(start.astimezone(UTC).timestamp() * 1000)
    events = [
        b for b in await _entries(redis, ORDERS_EVENTS, since_ms) if isinstance(b, OrderEvent)
    ]
    fills = [e for e in events if e.kind is OrderEventKind.FILL]
    round_trips = sum(1 for e in fills if e.action is Action.SELL)  # long options: a sell closes
    decisions = await _entries(redis, STRATEGY_DECISIONS, since_ms)
    denials = sum(  # orders the risk check refused (decisions that carry an order)
        1
        for d in decisions
        if isinstance(d, Decision) and d.outcome is DecisionOutcome.DENIED and d.client_order_id
    )
    alerts = [b for b in await _entries(redis, SYS_ALERTS, since_ms) if isinstance(b, Alert)]
    incidents = sum(
        1 for a in alerts
        if a.state is not AlertState.CLOSED and a.severity is not AlertSeverity.INFO
    )  # fmt: skip
    pnl = await _ledger(redis)
    figures = {
        "day_pnl": pnl.daily_pnl if pnl else "n/a",
        "realized": pnl.realized if pnl else "n/a",
        "unrealized": pnl.unrealized if pnl else "n/a",
        "equity": pnl.equity if pnl else "n/a",
        "open_positions": pnl.positions if pnl else "n/a",
        "risk_state": pnl.risk_state if pnl else "n/a",
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
