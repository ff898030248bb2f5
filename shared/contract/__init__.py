"""The bus contract: every Redis stream, hash, list and string key, declared once.

Services import key names, key builders and value types from here and never spell a
key themselves (tests/test_contract.py scans services/ for literals). Each entry has
one owner; the Redis ACL users (``shared/acl.py``) and the "Streams and keys" tables
(docs/architecture.md, each service's README) are generated from ``ENTRIES``.
"""

from __future__ import annotations

from typing import Final

from shared.contract import gateway, market, notifier, system, trading
from shared.contract.gateway import (
    ACCOUNT,
    ACCOUNT_LAST,
    ACCOUNT_SIM,
    GW_COMMANDS,
    GW_CONTRACTS,
    GW_LEASE,
    GW_REPLIES,
    GW_STATUS,
    GW_SUBS,
    ORDERS_EVENTS,
    ORDERS_EXECS,
    ORDERS_IB,
    ORDERS_IB_STATES,
    ORDERS_REQUESTS,
    ORDERS_SEEN,
    ORDERS_WORKING,
    REQUESTERS,
    SIM_ACCOUNT,
    lease_key,
    reply_stream,
)
from shared.contract.market import (
    MD_BARS,
    MD_CANDIDATES,
    MD_LAST,
    MD_SENTIMENT,
    MD_SIGNALS,
    MD_TICKS,
    bars_key,
    last_quote_key,
)
from shared.contract.notifier import (
    NOTIFIER_CHANNELS,
    NOTIFIER_OPEN,
    NOTIFIER_SUMMARY,
    NOTIFIER_WATCH,
    notifier_delivery_key,
    notifier_outbox_key,
    notifier_seen_key,
)
from shared.contract.spec import (
    GATEWAY,
    MARKET_DATA,
    MONITOR,
    NOTIFIER,
    OPERATOR,
    ROLES,
    SERVICES,
    SIMULATOR,
    STRATEGY,
    Entry,
    Kind,
)
from shared.contract.system import (
    ON_THE_CLOCK,
    SYS_ALERTS,
    SYS_CLOCK,
    SYS_DLQ,
    clock_ack_key,
    service_key,
    standby_key,
)
from shared.contract.trading import (
    RISK_STATE,
    STRATEGY_DAY,
    STRATEGY_DECISIONS,
    STRATEGY_EQUITY,
    STRATEGY_ORDERS,
    STRATEGY_PNL,
    STRATEGY_POSITIONS,
    SYS_CONTROL,
)

ENTRIES: Final[tuple[Entry, ...]] = (
    *market.ENTRIES,
    *gateway.ENTRIES,
    *trading.ENTRIES,
    *system.ENTRIES,
    *notifier.ENTRIES,
)

# Second writers of a fact, each to go (issue 16): the contract tolerates these and no
# others (tests/test_contract.py), so the list can only shrink.
TOLERATED_SECOND_WRITERS: Final[dict[str, tuple[str, ...]]] = {}

# The bus streams, in the contract's order: what `optbot status` lists.
ALL_STREAMS: Final = tuple(e.name for e in ENTRIES if e.kind is Kind.STREAM)


def entry(name: str) -> Entry:
    """The entry declaring ``name`` (a key or a pattern); KeyError names it."""
    for e in ENTRIES:
        if e.name == name:
            return e
    raise KeyError(f"{name!r} is not declared in shared/contract")


__all__ = [
    "ACCOUNT",
    "ACCOUNT_LAST",
    "ACCOUNT_SIM",
    "ALL_STREAMS",
    "ENTRIES",
    "GATEWAY",
    "GW_COMMANDS",
    "GW_CONTRACTS",
    "GW_LEASE",
    "GW_REPLIES",
    "GW_STATUS",
    "GW_SUBS",
    "MARKET_DATA",
    "MD_BARS",
    "MD_CANDIDATES",
    "MD_LAST",
    "MD_SENTIMENT",
    "MD_SIGNALS",
    "MD_TICKS",
    "MONITOR",
    "NOTIFIER",
    "NOTIFIER_CHANNELS",
    "NOTIFIER_OPEN",
    "NOTIFIER_SUMMARY",
    "NOTIFIER_WATCH",
    "ON_THE_CLOCK",
    "OPERATOR",
    "ORDERS_EVENTS",
    "ORDERS_EXECS",
    "ORDERS_IB",
    "ORDERS_IB_STATES",
    "ORDERS_REQUESTS",
    "ORDERS_SEEN",
    "ORDERS_WORKING",
    "REQUESTERS",
    "RISK_STATE",
    "ROLES",
    "SERVICES",
    "SIMULATOR",
    "SIM_ACCOUNT",
    "STRATEGY",
    "STRATEGY_DAY",
    "STRATEGY_DECISIONS",
    "STRATEGY_EQUITY",
    "STRATEGY_ORDERS",
    "STRATEGY_PNL",
    "STRATEGY_POSITIONS",
    "SYS_ALERTS",
    "SYS_CLOCK",
    "SYS_CONTROL",
    "SYS_DLQ",
    "TOLERATED_SECOND_WRITERS",
    "Entry",
    "Kind",
    "bars_key",
    "clock_ack_key",
    "entry",
    "last_quote_key",
    "lease_key",
    "notifier_delivery_key",
    "notifier_outbox_key",
    "notifier_seen_key",
    "reply_stream",
    "service_key",
    "standby_key",
]  # fmt: skip
