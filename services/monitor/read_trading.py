"""Trading reads: order requests and events, fills, account, positions, decisions."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
import redis.asyncio as aioredis

from services.monitor import models as m
from services.monitor.convert import epoch_s, num, price, str_map, text
from services.monitor.read_market import quote_from_hash
from shared.contract import (
    ACCOUNT,
    ORDERS_EVENTS,
    ORDERS_REQUESTS,
    STRATEGY_DECISIONS,
    STRATEGY_EQUITY,
    STRATEGY_PNL,
    STRATEGY_POSITIONS,
    last_quote_key,
)
from shared.contract.values import EquityPoint, PnlFields, PositionRow, decode_fields
from shared.envelope import DecodeError, Message, decode
from shared.logs import get_logger
from shared.schemas import (
    AccountSnapshot,
    Decision,
    OrderCancel,
    OrderEvent,
    OrderEventKind,
    OrderModify,
    OrderNew,
    Position,
)

log = get_logger("optbot.monitor.read_trading")
R = TypeVar("R", bound=msgspec.Struct)

_FILLS = (OrderEventKind.FILL, OrderEventKind.PARTIAL)
OPTION_MULTIPLIER = 100
DECISIONS_STREAM = STRATEGY_DECISIONS


async def _decoded(redis: aioredis.Redis, stream: str, count: int) -> list[Message[Any]]:
    """Newest entries of ``stream`` decoded, newest first; bad entries are skipped."""
    rows: Any = await redis.xrevrange(stream, count=count)
    out: list[Message[Any]] = []
    for entry_id, fields in rows:
        try:
            out.append(decode(fields, text(entry_id)))
        except DecodeError:
            continue
    return out


def _request(msg: Message[Any]) -> m.OrderRequest | None:
    b = msg.body
    if not isinstance(b, OrderNew | OrderCancel | OrderModify):
        return None  # a misplaced type on the stream (the adapter dead-letters it)
    base: dict[str, Any] = {"id": msg.id, "ts": msg.ts / 1e9, "type": msg.type, "reason": b.reason}
    if isinstance(b, OrderNew):
        return m.OrderRequest(
            **base,
            client_order_id=b.client_order_id,
            contract=b.contract.key,
            action=b.action.value,
            quantity=b.quantity,
            order_type=b.order_type.value,
            limit_price=b.limit_price,
        )
    if isinstance(b, OrderCancel | OrderModify):
        limit = b.limit_price if isinstance(b, OrderModify) else None
        return m.OrderRequest(**base, client_order_id=b.client_order_id, limit_price=limit)
    return None


def _event(msg: Message[Any]) -> m.OrderEvent | None:
    b = msg.body
    if not isinstance(b, OrderEvent):
        return None
    return m.OrderEvent(
        id=msg.id,
        ts=msg.ts / 1e9,
        client_order_id=b.client_order_id,
        kind=b.kind.value,
        contract=b.contract.key if b.contract else "",
        action=b.action.value if b.action else "",
        fill_qty=b.fill_qty,
        fill_price=b.fill_price,
        commission=b.commission,
        filled_total=b.filled_total,
        remaining=b.remaining,
        reason=b.reason,
        simulated=b.simulated,
    )


async def orders(redis: aioredis.Redis, limit: int) -> m.Orders:
    requests = [r for r in map(_request, await _decoded(redis, ORDERS_REQUESTS, limit)) if r]
    events = [e for e in map(_event, await _decoded(redis, ORDERS_EVENTS, limit * 5)) if e]
    fills = [e for e in events if e.kind in _FILLS][:limit]
    return m.Orders(requests=requests, events=events[:limit], fills=fills)


async def _marks(redis: aioredis.Redis, keys: list[str]) -> list[dict[str, str]]:
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hgetall(last_quote_key(key))
        rows: list[Any] = await pipe.execute()
    return [str_map(r) for r in rows]


def _with_greeks(p: m.Position, fields: dict[str, str]) -> m.Position:
    """Add the live mark and greeks from ``md:last`` where the source lacks them."""
    q = quote_from_hash(p.contract, fields, 0.0, float("inf"))
    return p.model_copy(
        update={
            "mark": p.mark if p.mark is not None else (q.mark or q.price),
            "delta": p.delta if p.delta is not None else q.delta,
            "gamma": q.gamma,
            "vega": q.vega,
            "theta": q.theta,
            "iv": q.iv,
        }
    )


def _broker_position(p: Position, fields: dict[str, str]) -> m.Position:
    """A position from the broker's snapshot; IB's average cost is per contract (it
    includes the multiplier), the unit the dashboard shows for every source."""
    q = quote_from_hash(p.contract.key, fields, 0.0, float("inf"))
    mark = p.market_price or q.mark or q.price
    unrealized = p.unrealized_pnl
    if unrealized is None and mark is not None:
        unrealized = (mark * p.contract.multiplier - p.avg_cost) * p.quantity
    return m.Position(
        contract=p.contract.key,
        symbol=p.contract.symbol,
        sec_type=p.contract.sec_type.value,
        quantity=p.quantity,
        avg_cost=p.avg_cost,
        mark=mark,
        unrealized_pnl=unrealized,
    )


def _ledger_avg_cost(row: PositionRow, qty: int) -> float:
    """The ledger's average cost per contract, the unit of IB's positions: its cost of
    the open quantity over that quantity (``avg_price`` is per share). A row without
    a cost falls back to the per-share price times the US equity option multiplier."""
    cost = num(row.cost)
    if cost is not None and qty:
        return round(cost / qty, 6)
    per_share = num(row.avg_price) or 0.0
    return per_share * (OPTION_MULTIPLIER if row.expiry else 1)


def _ledger_position(key: str, raw: str) -> m.Position | None:
    """One ``strategy:positions`` field (JSON written by the strategy's ledger)."""
    row = _row(raw, PositionRow, STRATEGY_POSITIONS)
    if row is None:
        return None
    return m.Position(
        contract=key,
        symbol=row.symbol,
        sec_type="OPT" if row.expiry else "STK",
        quantity=row.qty,
        avg_cost=_ledger_avg_cost(row, row.qty),
        mark=price(row.mark),
        mark_stale=row.mark_stale,
        unrealized_pnl=num(row.unrealized),
        delta=num(row.delta),
    )


def _row(raw: Any, cls: type[R], key: str) -> R | None:
    """One JSON value of ``key`` as the contract's ``cls``; a row that does not match
    the contract is logged (the writer changed) and left out."""
    try:
        return msgspec.json.decode(text(raw), type=cls)
    except msgspec.DecodeError as exc:
        log.error("contract_row_unreadable", key=key, error=str(exc))
        return None


async def _equity_curve(redis: aioredis.Redis, points: int) -> list[m.EquityPoint]:
    """``strategy:equity`` (the ledger's curve), thinned to at most ``points``."""
    raw: list[Any] = await redis.lrange(STRATEGY_EQUITY, -points * 10, -1)
    rows = [_row(r, EquityPoint, STRATEGY_EQUITY) for r in raw]
    out = [
        m.EquityPoint(ts=row.t, net_liquidation=e)
        for row in rows
        if row is not None and (e := num(row.equity)) is not None
    ]
    step = max(1, -(-len(out) // points))
    thinned = out[::step]
    if out and thinned[-1] is not out[-1]:
        thinned.append(out[-1])  # the newest point always shows
    return thinned


def _apply_ledger(acct: m.Account, pnl: PnlFields) -> m.Account:
    """The strategy's ledger is the P&L of record when it runs."""
    return acct.model_copy(
        update={
            "source": "strategy",
            "day_pnl": num(pnl.daily_pnl),
            "unrealized_pnl": num(pnl.unrealized),
            "realized_pnl": num(pnl.realized),
            "commissions": num(pnl.commissions),
            "opening_equity": num(pnl.opening_equity),
            "equity_source": pnl.equity_source,
            "trading_day": pnl.trading_day,
            "daily_loss_limit": num(pnl.daily_loss_limit),
            "stale_marks": [k for k in pnl.stale_marks.split(",") if k],
            "net_liquidation": acct.net_liquidation or num(pnl.net_liquidation),
            "cash": acct.cash if acct.cash is not None else num(pnl.cash),
            "updated": acct.updated or epoch_s(pnl.updated),
        }
    )


async def _ledger(redis: aioredis.Redis) -> PnlFields | None:
    """``strategy:pnl`` as the contract's Struct; None while the strategy has not
    written it, and (logged) when it no longer matches the contract."""
    try:
        return decode_fields(await redis.hgetall(STRATEGY_PNL), PnlFields)
    except msgspec.ValidationError as exc:
        log.error("contract_hash_unreadable", key=STRATEGY_PNL, error=str(exc))
        return None


async def account(redis: aioredis.Redis, equity_points: int) -> m.Account:
    """The book orders execute on, plus the strategy's ledger when present.

    With simulated execution the adapter publishes its own book (``simulated``) next to
    the broker's static account: the trader's money is the simulated book, and the two
    are never mixed in one figure or curve.
    """
    snaps = [
        x
        for x in await _decoded(redis, ACCOUNT, equity_points)
        if isinstance(x.body, AccountSnapshot)
    ]
    simulated = [x for x in snaps if x.body.simulated]
    snaps = simulated or snaps
    acct = m.Account()
    positions: list[m.Position] = []
    if snaps:
        b: AccountSnapshot = snaps[0].body
        acct = m.Account(
            account=b.account,
            currency=b.currency,
            net_liquidation=b.net_liquidation,
            cash=b.cash,
            buying_power=b.buying_power,
            day_pnl=b.day_pnl,
            unrealized_pnl=b.unrealized_pnl,
            realized_pnl=b.realized_pnl,
            updated=snaps[0].ts / 1e9,
            source="account (simulated book)" if b.simulated else "account",
            equity=[
                m.EquityPoint(ts=s.ts / 1e9, net_liquidation=s.body.net_liquidation)
                for s in reversed(snaps)
            ],
        )
        marks = await _marks(redis, [p.contract.key for p in b.positions])
        positions = [_broker_position(p, f) for p, f in zip(b.positions, marks, strict=True)]
    pnl = await _ledger(redis)
    if pnl is not None:
        acct = _apply_ledger(acct, pnl)
        ledger = str_map(await redis.hgetall(STRATEGY_POSITIONS))
        positions = [p for k, v in sorted(ledger.items()) if (p := _ledger_position(k, v))]
    curve = await _equity_curve(redis, equity_points)
    if len(curve) >= 2:
        acct.equity = curve
    marks = await _marks(redis, [p.contract for p in positions])
    acct.positions = [_with_greeks(p, f) for p, f in zip(positions, marks, strict=True)]
    return acct


def _decision(msg: Message[Any]) -> m.Decision | None:
    b = msg.body
    if not isinstance(b, Decision):
        return None
    return m.Decision(
        id=msg.id,
        ts=msg.ts / 1e9,
        cycle=b.cycle,
        kind=b.kind.value,
        outcome=b.outcome.value,
        reason=b.reason,
        symbol=b.symbol,
        direction=b.direction.value if b.direction else "",
        contract=b.contract.key if b.contract else "",
        quantity=b.quantity,
        limit_price=b.limit_price,
        client_order_id=b.client_order_id,
        inputs=dict(b.inputs),
    )


async def decisions(redis: aioredis.Redis, limit: int) -> m.Decisions:
    """Strategy decisions (taken, skipped, denied) with reasons, newest first."""
    rows = [d for d in map(_decision, await _decoded(redis, STRATEGY_DECISIONS, limit)) if d]
    return m.Decisions(stream=STRATEGY_DECISIONS, decisions=rows)
