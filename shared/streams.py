"""Stream and key names: part of the interface, documented in the README."""

from __future__ import annotations

from typing import Final

MD_TICKS: Final = "md:ticks"
MD_SIGNALS: Final = "md:signals"
GW_COMMANDS: Final = "gw:commands"
GW_STATUS: Final = "gw:status"
# Replies to requests (option chain, history): one stream per requester,
# ``gw:replies:{service}``, written by the adapter, read by that service alone.
GW_REPLIES: Final = "gw:replies"
REQUESTERS: Final = ("market_data", "strategy")  # the services that ask and wait


def reply_stream(requester: str) -> str:
    """The address of ``requester``'s replies; ValueError for a service that never asks."""
    if requester not in REQUESTERS:
        raise ValueError(f"no reply stream for {requester!r}; requesters: {', '.join(REQUESTERS)}")
    return f"{GW_REPLIES}:{requester}"


ORDERS_REQUESTS: Final = "orders:requests"
ORDERS_EVENTS: Final = "orders:events"
ACCOUNT: Final = "account"
SYS_DLQ: Final = "sys:dlq"
SYS_CONTROL: Final = "sys:control"
SYS_ALERTS: Final = "sys:alerts"
STRATEGY_DECISIONS: Final = "strategy:decisions"

ALL_STREAMS: Final = (
    MD_TICKS,
    MD_SIGNALS,
    GW_COMMANDS,
    GW_STATUS,
    *(reply_stream(r) for r in REQUESTERS),
    ORDERS_REQUESTS,
    ORDERS_EVENTS,
    ACCOUNT,
    SYS_DLQ,
    SYS_CONTROL,
    SYS_ALERTS,
    STRATEGY_DECISIONS,
)

RISK_STATE: Final = "risk:state"
STRATEGY_POSITIONS: Final = "strategy:positions"
STRATEGY_PNL: Final = "strategy:pnl"
STRATEGY_ORDERS: Final = "strategy:orders"
STRATEGY_EQUITY: Final = "strategy:equity"
STRATEGY_DAY: Final = "strategy:day"  # the trading day's opening equity (strategy only)

# notifier: its own delivery state (survives a restart, so nothing is sent twice)
NOTIFIER_CHANNELS: Final = "notifier:channels"  # hash: channel id -> JSON health
NOTIFIER_OPEN: Final = "notifier:open"  # hash: alert key -> JSON of the open condition
NOTIFIER_WATCH: Final = "notifier:watch"  # hash: the watcher's conditions (key -> JSON)
NOTIFIER_SUMMARY: Final = "notifier:summary"  # string: NY date of the last daily summary


def notifier_outbox_key(channel: str) -> str:
    """List of messages waiting for ``channel`` (oldest first)."""
    return f"notifier:outbox:{channel}"


def notifier_delivery_key(entry_id: str) -> str:
    """Hash of one sys:alerts entry's delivery per channel (sent / queued / failed)."""
    return f"notifier:delivery:{entry_id}"


def notifier_seen_key(marker: str) -> str:
    """Dedup marker (SET NX with a TTL): this alert was already queued."""
    return f"notifier:seen:{marker}"


def last_quote_key(symbol: str) -> str:
    """Hash with the latest plain-field quote of ``symbol``."""
    return f"md:last:{symbol}"


def service_key(name: str) -> str:
    """Heartbeat hash of a service; it expires when the service dies."""
    return f"svc:{name}"


def standby_key(name: str, instance: str) -> str:
    """Heartbeat hash of a standby instance of an active/standby service (the adapter)."""
    return f"{service_key(name)}:standby:{instance}"
