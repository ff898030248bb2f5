"""Realistic bus data, written the way the services write it (entries and hashes)."""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec
import redis.asyncio as aioredis

from shared.bus import Publisher
from shared.bus.dlq import dead_letter_fields
from shared.contract import (
    ACCOUNT,
    GW_STATUS,
    MD_TICKS,
    ORDERS_EVENTS,
    ORDERS_REQUESTS,
    STRATEGY_DECISIONS,
    SYS_DLQ,
    last_quote_key,
    service_key,
)
from shared.contract.values import PnlFields, PositionRow
from shared.envelope import now_ns
from shared.schemas import (
    AccountSnapshot,
    Action,
    ConnState,
    ContractRef,
    DataType,
    Decision,
    DecisionKind,
    DecisionOutcome,
    Direction,
    GatewayStatus,
    IbError,
    OrderEvent,
    OrderEventKind,
    OrderNew,
    Position,
    Quote,
    Right,
    SecType,
)
from shared.settings import Settings

OPTION = ContractRef(
    symbol="AAPL",
    sec_type=SecType.OPT,
    con_id=9001,
    expiry="20261218",
    strike=250.0,
    right=Right.CALL,
    multiplier=100,
)
BASE = {"SPY": 500.0, "QQQ": 430.0, "AAPL": 230.0, "MSFT": 410.0}


def _t(v: float | None) -> str:
    return "" if v is None else repr(v)


def hash_fields(q: Quote, updated_ns: int) -> dict[str, str]:
    """The plain ``md:last:{KEY}`` fields the gateway adapter writes."""
    fields = {
        name: _t(getattr(q, name))
        for name in (
            "bid",
            "ask",
            "last",
            "close",
            "mark",
            "bid_size",
            "ask_size",
            "volume",
            "iv",
            "delta",
            "gamma",
            "vega",
            "theta",
            "und_price",
        )
    }
    return {
        **fields,
        "key": q.contract.key,
        "con_id": str(q.contract.con_id),
        "data_type": q.data_type.value,
        "ib_ts": str(q.ib_ts),
        "updated": str(updated_ns),
    }


def stock_quote(symbol: str, px: float, close: float | None = None) -> Quote:
    return Quote(
        contract=ContractRef(symbol=symbol),
        bid=round(px - 0.01, 2),
        ask=round(px + 0.01, 2),
        last=round(px, 2),
        close=close if close is not None else BASE.get(symbol, px),
        mark=round(px, 2),
        volume=1_000_000.0,
    )


def vix_quote(level: float) -> Quote:
    """An index: no bid/ask (IB sends -1; the adapter turns that into None)."""
    return Quote(
        contract=ContractRef(symbol="VIX", sec_type=SecType.IND), last=level, close=14.0, mark=level
    )


def option_quote() -> Quote:
    return Quote(
        contract=OPTION,
        bid=4.1,
        ask=4.3,
        last=4.2,
        mark=4.2,
        close=4.0,
        iv=0.31,
        delta=0.42,
        gamma=0.02,
        vega=0.35,
        theta=-0.08,
        und_price=230.0,
    )


def publish_quote(pub: Publisher, q: Quote) -> None:
    ts = now_ns()
    pub.add(MD_TICKS, q, key=q.contract.key, ts=ts)
    pub.add_hash(last_quote_key(q.contract.key), hash_fields(q, ts))


def publish_quotes(pub: Publisher, step: int = 0) -> None:
    """One round of quotes; prices move with ``step``."""
    for i, (sym, base) in enumerate(BASE.items()):
        publish_quote(pub, stock_quote(sym, base + 0.05 * ((step + i) % 40)))
    publish_quote(pub, vix_quote(14.0 + 0.01 * (step % 50)))


async def seed(redis: aioredis.Redis, settings: Settings) -> None:
    """Everything the page shows: quotes, signals, gateway, orders, account, DLQ."""
    pub = Publisher(redis, settings, src="gateway_adapter/test")
    publish_quotes(pub)
    publish_quote(pub, option_quote())
    now = time.time()
    iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now))
    pub.add_hash(
        "md:sentiment",
        {
            "state": "BULLISH",
            "since": iso,
            "reason": "SPY and QQQ above SMA",
            "data_type": "live",
            "updated": iso,
            "spy_trend_pct": "0.4100",
            "vix": "14.0000",
        },
        replace=True,
    )
    rows = [
        {"symbol": "AAPL", "direction": "long", "score": 1.234, "roc_short": 0.5},
        {"symbol": "MSFT", "direction": "short", "score": 0.812},
    ]
    pub.add_hash(
        "md:candidates",
        {
            "updated": iso,
            "count": "2",
            "data_type": "live",
            "excluded": json.dumps({"INTC": "price below minimum"}),
            "json": json.dumps(rows),
        },
        replace=True,
    )
    for i in range(30):
        t = int(now // 60 * 60) - (30 - i) * 60
        c = 499.0 + i * 0.1
        pub.add_list(
            "md:bars:SPY",
            json.dumps(
                {
                    "t": t,
                    "o": c - 0.05,
                    "h": c + 0.2,
                    "l": c - 0.2,
                    "c": c,
                    "v": 1000.0,
                    "gap": False,
                }
            ),
            keep=390,
        )
    pub.add(
        GW_STATUS,
        GatewayStatus(
            state=ConnState.CONNECTED,
            client_id=1,
            server_version=178,
            data_type=DataType.LIVE,
            account="DU1234567",
        ),
        key="connected",
    )
    pub.add(
        GW_STATUS,
        IbError(code=2104, message="Market data farm connection is OK:usfarm", severity="warning"),
        key="2104",
    )
    pub.add_hash(service_key("gateway_adapter"), gateway_heartbeat())
    order = OrderNew(
        client_order_id="s-1",
        contract=OPTION,
        action=Action.BUY,
        quantity=2,
        limit_price=4.25,
        reason="AAPL long momentum",
    )
    pub.add(ORDERS_REQUESTS, order, key="s-1")
    pub.add(
        ORDERS_EVENTS,
        OrderEvent(
            client_order_id="s-1",
            kind=OrderEventKind.ACK,
            contract=OPTION,
            action=Action.BUY,
            remaining=2,
        ),
        key="s-1",
    )
    pub.add(
        ORDERS_EVENTS,
        OrderEvent(
            client_order_id="s-1",
            kind=OrderEventKind.FILL,
            contract=OPTION,
            action=Action.BUY,
            fill_qty=2,
            fill_price=4.22,
            commission=1.3,
            filled_total=2,
            exec_id="e-1",
        ),
        key="s-1",
    )
    for nl in (3756.96, 3751.0, 3760.5):
        pub.add(ACCOUNT, account_snapshot(nl), key="DU1234567")
    await pub.flush()
    await redis.xadd(
        SYS_DLQ,
        dead_letter_fields(  # type: ignore[arg-type]
            reason="quote: invalid body: Expected `float` >= 0.0",
            stream=MD_TICKS,
            entry_id="1-0",
            group="strategy",
            consumer="c1",
            fields={b"type": b"quote", b"body": b"\x81\xa1x\x01"},
        ),
    )
    pub.add(
        STRATEGY_DECISIONS, decision("AAPL", DecisionOutcome.TAKEN, "momentum 1.23"), key="AAPL"
    )
    pub.add(
        STRATEGY_DECISIONS,
        decision("MSFT", DecisionOutcome.DENIED, "max_positions: 3 open"),
        key="MSFT",
    )
    await pub.flush()


def gateway_heartbeat() -> dict[str, str]:
    now = f"{time.time():.3f}"
    return {
        "name": "gateway_adapter",
        "pid": "4242",
        "started": now,
        "heartbeat": now,
        "lag": "0",
        "state": "connected",
        "ib_state": "connected",
        "client_id": "1",
        "server_version": "178",
        "data_type": "live",
        "account": "DU1234567",
    }


def account_snapshot(net_liq: float) -> AccountSnapshot:
    return AccountSnapshot(
        account="DU1234567",
        net_liquidation=net_liq,
        cash=2900.0,
        buying_power=2900.0,
        day_pnl=12.5,
        unrealized_pnl=-4.0,
        realized_pnl=0.0,
        positions=[Position(contract=OPTION, quantity=2, avg_cost=422.0)],
    )


def decision(symbol: str, outcome: DecisionOutcome, reason: str) -> Decision:
    return Decision(
        cycle="c-1",
        kind=DecisionKind.ENTRY,
        outcome=outcome,
        reason=reason,
        symbol=symbol,
        direction=Direction.LONG,
        inputs={"score": 1.23},
    )


def position_row(**over: Any) -> PositionRow:
    """A ``strategy:positions`` row of 2 AAPL calls at 4.22 as the strategy writes it
    (``cost`` empty: the reader falls back to the per-share price)."""
    row = PositionRow(
        symbol="AAPL", expiry="20261218", strike=250.0, right="C", qty=2, avg_price="4.2200",
        mark="", mark_stale=False, cost="", market_value="", unrealized="", realized="0.00",
        commissions="0.00", delta="", opened="2026-12-02T15:00:00+00:00", entry_order="o-1",
        simulated=True,
    )  # fmt: skip
    return msgspec.structs.replace(row, **over)


def pnl_fields(**over: Any) -> PnlFields:
    """A ``strategy:pnl`` hash as the strategy writes it (updated now)."""
    money = {f: "0.00" for f in PnlFields.__struct_fields__}
    money |= {"daily_pnl_basis": "fresh marks", "stale_marks": "", "trading_day": "2026-12-02"}
    money |= {"equity_source": "ledger", "risk_state": "ACTIVE", "reconcile": "ok"}
    money |= {"positions": "1", "fills": "1", "working_orders": "0"}
    return PnlFields(**(money | {"updated": f"{time.time():.3f}"} | over))
