"""A strategy desk over real Redis for tests: books, desk and cycles as the service builds them.

Tests feed quotes, order events and controls straight in and read what was really
sent from ``orders:requests`` and decided on ``strategy:decisions``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from services.strategy.chains import ChainClient
from services.strategy.controls import ControlHandler
from services.strategy.cycle import Cycles
from services.strategy.desk import Books, Desk
from services.strategy.ledger import Ledger, fill_from_event
from services.strategy.market import MarketView
from services.strategy.money import dec
from services.strategy.orders import OrderBook
from services.strategy.risk import RiskEngine, RiskLimits, RiskState, RiskStatus
from shared.bus import Publisher, RequestClient
from shared.contract import ORDERS_REQUESTS, STRATEGY_DECISIONS, SYS_CONTROL
from shared.control import send_control
from shared.envelope import decode
from shared.schemas import (
    Action,
    Candidate,
    ConnState,
    ContractRef,
    Control,
    ControlAction,
    Decision,
    DecisionOutcome,
    Direction,
    GatewayStatus,
    OptionChain,
    OrderEvent,
    OrderEventKind,
    OrderNew,
    Quote,
    Right,
    SecType,
)
from shared.settings import Settings

CALL = ContractRef(
    symbol="INTC",
    sec_type=SecType.OPT,
    expiry="20991218",
    strike=21.0,
    right=Right.CALL,
    multiplier=100,
    con_id=7,
)
DAY1 = dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.UTC).timestamp()  # 10:00 New York


@dataclass
class Rig:
    redis: aioredis.Redis
    books: Books
    desk: Desk
    cycles: Cycles
    pub: Publisher
    clock: list[float]
    settings: Settings

    def quote(self, bid: float | None, ask: float | None, last: float | None = None) -> None:
        mark = (bid + ask) / 2 if bid is not None and ask is not None else last
        self.books.market.on_quote(Quote(contract=CALL, bid=bid, ask=ask, last=last, mark=mark))

    def event(self, ev: OrderEvent) -> None:
        """What the service does with an orders:events entry."""
        self.books.orders.on_event(ev)
        fill = fill_from_event(ev, int(self.clock[0] * 1e9))
        if fill is not None:
            self.books.ledger.apply(fill)

    def fill(
        self,
        cid: str,
        action: Action,
        qty: int,
        price: float,
        total: int,
        left: int,
        contract: ContractRef = CALL,
    ) -> None:
        kind = OrderEventKind.FILL if left == 0 else OrderEventKind.PARTIAL
        self.event(
            OrderEvent(
                client_order_id=cid,
                kind=kind,
                contract=contract,
                action=action,
                fill_qty=qty,
                fill_price=price,
                commission=0.65,
                filled_total=total,
                remaining=left,
                exec_id=f"e-{cid}-{total}",
            )
        )

    async def sent(self) -> list[Any]:
        rows: Any = await self.redis.xrange(ORDERS_REQUESTS)
        return [decode(f, i).body for i, f in rows]

    async def decisions(self) -> list[Decision]:
        await self.pub.flush()
        rows: Any = await self.redis.xrange(STRATEGY_DECISIONS)
        return [decode(f, i).body for i, f in rows]

    async def decisions_of(self, outcome: DecisionOutcome) -> list[Decision]:
        return [d for d in await self.decisions() if d.outcome is outcome]

    async def tick(self) -> None:
        await self.cycles.manage()
        await self.pub.flush()

    async def control(self, action: ControlAction, who: str, why: str, target: str = "") -> Any:
        """An operator's request, sent as the CLI sends it, applied as the service applies
        it (the entry read back from sys:control); returns the state it ends in."""
        body = Control(action=action, who=who, why=why, target=target)
        request_id = await send_control(self.redis, self.settings, body, src="cli/test")
        rows: Any = await self.redis.xrange(SYS_CONTROL, request_id, request_id)
        await ControlHandler(self.desk, self.cycles).on_control(decode(rows[0][1], request_id))
        await self.pub.flush()
        return self.books.status

    def due(self) -> None:
        """Make every working order's next reprice step due now."""
        for w in self.books.orders.working.values():
            w.next_step_at = 0.0


async def make_rig(redis: aioredis.Redis, settings: Settings) -> Rig:
    """A fresh desk on an empty database, its trading day opened at ``DAY1``."""
    await redis.flushdb()
    books = Books(
        ledger=Ledger(starting_cash=dec(settings.strat_starting_equity)),
        orders=OrderBook(),
        market=MarketView(),
        status=RiskStatus(RiskState.ACTIVE),
    )
    pub = Publisher(redis, settings, src="strategy/test")
    desk = Desk(
        books,
        risk=RiskEngine(RiskLimits.from_settings(settings)),
        publisher=pub,
        redis=redis,
        settings=settings,
    )
    requests = RequestClient(
        redis, pub, settings, requester="strategy", replies=(OptionChain,), timeout_s=1.0
    )
    await requests.start()  # tests deliver replies with requests.poll_once()
    cycles = Cycles(books, desk, ChainClient(requests), settings)
    clock = [DAY1]
    cycles.wall_clock = lambda: clock[0]
    books.market.on_status(GatewayStatus(state=ConnState.CONNECTED, client_id=1))
    rig = Rig(redis, books, desk, cycles, pub, clock, settings)
    await rig.tick()  # opens the trading day (no positions: nothing to wait for)
    assert desk.day.current is not None and desk.day.current.day == dt.date(2026, 12, 2)
    return rig


OTHER = ContractRef(
    symbol="BAC",
    sec_type=SecType.OPT,
    expiry="20991218",
    strike=30.0,
    right=Right.CALL,
    multiplier=100,
    con_id=8,
)


def buy(cid: str, qty: int, price: float, contract: ContractRef = CALL) -> OrderNew:
    return OrderNew(
        client_order_id=cid, contract=contract, action=Action.BUY, quantity=qty, limit_price=price
    )


async def hold_long(rig: Rig, price: float = 1.80, qty: int = 1) -> None:
    """A long position bought today (through the desk, so the book knows the entry)."""
    rig.quote(price - 0.02, price + 0.02)
    ctx = rig.cycles._context("c", cand())
    assert (await rig.desk.submit(buy("ob-1", qty, price), ctx)).allowed
    rig.event(OrderEvent(client_order_id="ob-1", kind=OrderEventKind.ACK, contract=CALL))
    rig.fill("ob-1", Action.BUY, qty, price, qty, 0)


def cand() -> Candidate:
    return Candidate(symbol="INTC", direction=Direction.LONG, score=1.0)
