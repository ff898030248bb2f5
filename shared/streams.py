"""Stream and key names, kept importable for older imports: ``shared.contract`` declares them."""

from __future__ import annotations

from shared.contract import (
    ACCOUNT,
    ALL_STREAMS,
    GW_COMMANDS,
    GW_REPLIES,
    GW_STATUS,
    MD_SIGNALS,
    MD_TICKS,
    NOTIFIER_CHANNELS,
    NOTIFIER_OPEN,
    NOTIFIER_SUMMARY,
    NOTIFIER_WATCH,
    ORDERS_EVENTS,
    ORDERS_REQUESTS,
    RISK_STATE,
    STRATEGY_DAY,
    STRATEGY_DECISIONS,
    STRATEGY_EQUITY,
    STRATEGY_ORDERS,
    STRATEGY_PNL,
    STRATEGY_POSITIONS,
    SYS_ALERTS,
    SYS_CONTROL,
    SYS_DLQ,
    last_quote_key,
    notifier_delivery_key,
    notifier_outbox_key,
    notifier_seen_key,
    service_key,
    standby_key,
)

__all__ = [
    "ACCOUNT", "ALL_STREAMS", "GW_COMMANDS", "GW_REPLIES", "GW_STATUS", "MD_SIGNALS",
    "MD_TICKS", "NOTIFIER_CHANNELS", "NOTIFIER_OPEN", "NOTIFIER_SUMMARY", "NOTIFIER_WATCH",
    "ORDERS_EVENTS", "ORDERS_REQUESTS", "RISK_STATE", "STRATEGY_DAY", "STRATEGY_DECISIONS",
    "STRATEGY_EQUITY", "STRATEGY_ORDERS", "STRATEGY_PNL", "STRATEGY_POSITIONS", "SYS_ALERTS",
    "SYS_CONTROL", "SYS_DLQ", "last_quote_key", "notifier_delivery_key", "notifier_outbox_key",
    "notifier_seen_key", "service_key", "standby_key",
]  # fmt: skip
