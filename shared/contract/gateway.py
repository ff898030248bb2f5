"""Gateway keys: the adapter's public streams and hashes and its private state."""

from __future__ import annotations

from typing import Final

from shared.contract.spec import GATEWAY, MARKET_DATA, MONITOR, NOTIFIER, STRATEGY, Entry, Kind
from shared.schemas import (
    AccountRefresh,
    AccountSnapshot,
    GatewayStatus,
    HistoryBars,
    HistoryRequest,
    IbError,
    OptionChain,
    OptionChainRequest,
    OrderCancel,
    OrderEvent,
    OrderModify,
    OrderNew,
    Subscribe,
    Unsubscribe,
)

GW_COMMANDS: Final = "gw:commands"
GW_STATUS: Final = "gw:status"
# Replies to requests (option chain, history): one stream per requester,
# ``gw:replies:{service}``, written by the adapter, read by that service alone (XREAD,
# no group: a reply is only of use to the process whose request waits for it).
GW_REPLIES: Final = "gw:replies"
REQUESTERS: Final = (MARKET_DATA, STRATEGY)  # the services that ask and wait
ORDERS_REQUESTS: Final = "orders:requests"
ORDERS_EVENTS: Final = "orders:events"
ACCOUNT: Final = "account"
ACCOUNT_LAST: Final = "account:last"  # the stream is named ``account``: not the hash
ACCOUNT_SIM: Final = "account:sim"
GW_SUBS: Final = "gw:subs"
GW_CONTRACTS: Final = "gw:contracts"
GW_LEASE: Final = "gw:lease:{host}:{port}:{client_id}"
ORDERS_SEEN: Final = "orders:seen"
ORDERS_WORKING: Final = "orders:working"
ORDERS_IB: Final = "orders:ib"
ORDERS_IB_STATES: Final = "orders:ib:states"
ORDERS_EXECS: Final = "orders:execs"
SIM_ACCOUNT: Final = "sim:account"


def reply_stream(requester: str) -> str:
    """The address of ``requester``'s replies; ValueError for a service that never asks."""
    if requester not in REQUESTERS:
        raise ValueError(f"no reply stream for {requester!r}; requesters: {', '.join(REQUESTERS)}")
    return f"{GW_REPLIES}:{requester}"


def lease_key(host: str, port: int, client_id: int) -> str:
    """The lease on one IB client id: whoever holds it is the one active adapter."""
    return GW_LEASE.format(host=host, port=port, client_id=client_id)


_PRIVATE = "adapter only: "
ENTRIES: Final = (
    Entry(GW_COMMANDS, Kind.STREAM, GATEWAY, "commands to the adapter (lines, chains, history)",
          readers=(MONITOR,), consumers=(GATEWAY,), senders=(MARKET_DATA, STRATEGY),
          value=(Subscribe, Unsubscribe, OptionChainRequest, HistoryRequest, AccountRefresh),
          cap="OPTBOT_MAXLEN_COMMANDS", inbox=True),
    Entry(GW_STATUS, Kind.STREAM, GATEWAY, "connection state, IB errors and warnings",
          readers=(MONITOR,), consumers=(MARKET_DATA, STRATEGY, NOTIFIER),
          value=(GatewayStatus, IbError), cap="OPTBOT_MAXLEN_STATUS"),
    *(
        Entry(reply_stream(r), Kind.STREAM, GATEWAY,
              f"option chain and history replies to {r}'s requests, by request id",
              readers=(MONITOR, r), value=(OptionChain, HistoryBars),
              cap="OPTBOT_MAXLEN_REPLIES")
        for r in REQUESTERS
    ),
    Entry(ORDERS_REQUESTS, Kind.STREAM, GATEWAY, "new, modify, cancel orders (client ids)",
          readers=(STRATEGY, MONITOR), consumers=(GATEWAY,), senders=(STRATEGY,),
          value=(OrderNew, OrderModify, OrderCancel), cap="OPTBOT_MAXLEN_ORDERS", inbox=True),
    # One writer: a refused order never reached the adapter, so it is a strategy decision.
    Entry(ORDERS_EVENTS, Kind.STREAM, GATEWAY, "acks, fills, cancels, rejects, expiries",
          readers=(MONITOR, NOTIFIER), consumers=(STRATEGY, NOTIFIER),
          value=(OrderEvent,), cap="OPTBOT_MAXLEN_ORDERS", scripts=True),
    Entry(ACCOUNT, Kind.STREAM, GATEWAY, "account snapshots (the broker's or the simulated book)",
          readers=(MONITOR,), consumers=(STRATEGY,), value=(AccountSnapshot,),
          cap="OPTBOT_MAXLEN_ACCOUNT", scripts=True),
    Entry(ACCOUNT_LAST, Kind.HASH, GATEWAY, "the broker's latest snapshot as plain fields",
          readers=(STRATEGY, MONITOR)),
    Entry(ACCOUNT_SIM, Kind.HASH, GATEWAY, "the simulated book's snapshot as plain fields",
          readers=(STRATEGY, MONITOR), scripts=True),
    Entry(GW_SUBS, Kind.HASH, GATEWAY, _PRIVATE + "open lines and their requesters"),
    Entry(GW_CONTRACTS, Kind.HASH, GATEWAY, _PRIVATE + "qualified contracts (conId cache)"),
    Entry(GW_LEASE, Kind.STRING, GATEWAY, _PRIVATE + "who holds the IB client id",
          cap="PX OPTBOT_GW_LEASE_TTL_MS", scripts=True),
    Entry(ORDERS_SEEN, Kind.HASH, GATEWAY, _PRIVATE + "client order ids already handled",
          scripts=True),
    Entry(ORDERS_WORKING, Kind.HASH, GATEWAY, _PRIVATE + "simulated working orders (msgpack)",
          scripts=True),
    Entry(ORDERS_IB, Kind.HASH, GATEWAY, _PRIVATE + "orders routed to IB that may still fill",
          value=(OrderNew,), scripts=True),
    Entry(ORDERS_IB_STATES, Kind.HASH, GATEWAY, _PRIVATE + "IB order states already published",
          scripts=True),
    Entry(ORDERS_EXECS, Kind.HASH, GATEWAY, _PRIVATE + "IB exec ids already published",
          scripts=True),
    Entry(SIM_ACCOUNT, Kind.HASH, GATEWAY, _PRIVATE + "the simulated account's book",
          scripts=True),
)  # fmt: skip
