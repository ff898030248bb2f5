"""Option expiry in the simulated book: settled once, in book and ledger, across restarts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis

from services.gateway_adapter.expiry import expiry_event, intrinsic
from services.strategy.ledger import Ledger, fill_from_event
from services.strategy.money import dec
from services.tws_simulator import Simulator
from shared.contract import ORDERS_EVENTS
from shared.market_calendar import expiry_instant
from shared.schemas import (
    Action,
    ConnState,
    ContractRef,
    OptionChain,
    OptionChainRequest,
    OrderEvent,
    OrderEventKind,
    OrderNew,
    OrderType,
    Right,
    SecType,
    Subscribe,
)
from shared.settings import Settings
from tests.gateway_adapter.conftest import AdapterHandle, StartAdapter, bodies
from tests.gateway_adapter.test_execution import events, order
from tests.gateway_adapter.test_quotes import send
from tests.helpers import wait_until

SPY = ContractRef(symbol="SPY")


def opt(strike: float, right: Right) -> ContractRef:
    return ContractRef(
        symbol="SPY",
        sec_type=SecType.OPT,
        expiry="20261127",
        strike=strike,
        right=right,
        multiplier=100,
    )


def test_expiry_event_when_itm_or_otm_settles_at_intrinsic_with_closing_action() -> None:
    assert intrinsic(opt(600, Right.CALL), 603.456) == 3.456
    assert intrinsic(opt(600, Right.CALL), 599.99) == 0.0
    assert intrinsic(opt(600, Right.PUT), 598.5) == 1.5
    assert intrinsic(opt(600, Right.PUT), 600.0) == 0.0
    long_ev = expiry_event(opt(600, Right.PUT), 3, 598.5)
    assert (long_ev.kind, long_ev.action, long_ev.fill_qty) == (
        OrderEventKind.EXPIRED,
        Action.SELL,
        3,
    )
    assert long_ev.fill_price == 1.5 and long_ev.commission == 0.0
    assert long_ev.exec_id == long_ev.client_order_id == "expiry-SPY 20261127 600 P"
    short_ev = expiry_event(opt(600, Right.CALL), -2, 590.0)
    assert short_ev.action is Action.BUY and short_ev.fill_price == 0.0
    assert "worthless" in short_ev.reason


async def _chain_ends(redis: aioredis.Redis, settings: Settings) -> tuple[ContractRef, ContractRef]:
    """The lowest (in the money) and highest (out of the money) call of the first expiry."""
    request = OptionChainRequest(
        request_id="exp",
        underlying="SPY",
        min_dte=0,
        max_dte=10,
        moneyness=0.05,
        right=Right.CALL,
        requester="strategy",
    )
    await send(redis, settings, request)
    chain = (
        await wait_until(lambda: bodies(redis, "gw:replies:strategy", OptionChain), timeout=5)
    )[0]
    first = [c for c in chain.contracts if c.expiry == chain.contracts[0].expiry]
    return first[0], first[-1]


async def _buy(redis: aioredis.Redis, settings: Settings, cid: str, ref: ContractRef) -> None:
    new = OrderNew(
        client_order_id=cid, contract=ref, action=Action.BUY, quantity=2, order_type=OrderType.MKT
    )
    await wait_until(
        lambda: redis.hget(f"md:last:{ref.key}", "ask"), timeout=4, what=f"{ref.key} quote"
    )
    await order(redis, settings, new)

    async def filled() -> bool:
        return any(e.kind is OrderEventKind.FILL for e in await events(redis, cid))

    await wait_until(filled, timeout=5, what=f"{cid} filled")


async def _expiries(redis: aioredis.Redis) -> list[OrderEvent]:
    found = await bodies(redis, ORDERS_EVENTS, OrderEvent)
    return [e for e in found if e.kind is OrderEventKind.EXPIRED]


def _after(expiry: str) -> float:
    return expiry_instant(expiry).timestamp() + 1.0


async def _start(sim: Simulator, start_adapter: StartAdapter, **kw: Any) -> AdapterHandle:
    handle = await start_adapter(sim, **kw)
    handle.adapter.expiry_interval_s = 0.1  # the loop looks often (5 s in service)
    return handle


async def test_expiry_when_held_options_pass_expiry_settle_once_in_book_and_ledger(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    # Arrange: two calls held, the underlying quoted, the clock still before expiry.
    handle = await _start(sim, start_adapter)
    status = handle.adapter.status
    await wait_until(lambda: status.state is ConnState.CONNECTED, timeout=4, what="logged on")
    executor: Any = handle.adapter.executor
    await send(redis, settings, Subscribe(contracts=[SPY], requester="test"))
    await wait_until(lambda: redis.hget("md:last:SPY", "last"), timeout=4, what="SPY quote")
    itm, otm = await _chain_ends(redis, settings)
    await _buy(redis, settings, "exp-itm", itm)
    await _buy(redis, settings, "exp-otm", otm)
    rest = OrderNew(
        client_order_id="exp-rest", contract=otm, action=Action.BUY, quantity=1, limit_price=0.01
    )
    await order(redis, settings, rest)
    await wait_until(lambda: events(redis, "exp-rest"), timeout=4, what="resting order acked")
    assert await _expiries(redis) == []  # nothing expires before its instant
    start = float(await redis.hget("sim:account", "start") or 0)

    # Act: the trading clock passes the expiry instant.
    executor.clock = lambda: _after(itm.expiry)
    settled = await wait_until(
        lambda: _two(_expiries(redis)), timeout=5, what="both options settled"
    )

    # Assert: OTM worthless, ITM at intrinsic of our own underlying quote; books balance.
    by_key = {e.contract.key: e for e in settled if e.contract}
    assert by_key[otm.key].fill_price == 0.0 and by_key[otm.key].action is Action.SELL
    itm_ev = by_key[itm.key]
    assert itm_ev.fill_qty == 2 and itm_ev.commission == 0.0
    spot = float(itm_ev.reason.split("SPY ")[1].split(",")[0])
    assert itm_ev.fill_price == intrinsic(itm, spot) > 0
    await handle.adapter.journal.drain()
    all_events = await bodies(redis, ORDERS_EVENTS, OrderEvent)
    ledger = Ledger(starting_cash=dec(start))
    for i, ev in enumerate(all_events):
        f = fill_from_event(ev, 1_000 + i)
        if f is not None:
            assert ledger.apply(f)
            assert not ledger.apply(f)  # a replayed event books nothing
    assert ledger.positions == {}
    assert ledger.cash + ledger.market_value - ledger.starting_cash == (
        ledger.realized + ledger.unrealized - ledger.commissions
    )
    raw = {k.decode(): v for k, v in (await redis.hgetall("sim:account")).items()}
    assert not [k for k in raw if k.startswith("pos:")] and not executor.account.positions
    assert dec(float(raw["cash"])) == ledger.cash
    assert round(Decimal(raw["realized"].decode()), 2) == ledger.realized
    assert executor.account.cash == float(raw["cash"])

    cancelled = (await events(redis, "exp-rest"))[-1]
    assert cancelled.kind is OrderEventKind.CANCELLED and cancelled.reason == "contract expired"

    # Once only: more passes, then a restarted adapter with the clock past expiry.
    await executor.expire()
    await handle.kill()
    again = await _start(sim, start_adapter, instance="a2")
    again.adapter.executor.clock = lambda: _after(itm.expiry)  # type: ignore[attr-defined]
    await wait_until(lambda: again.connected, timeout=6, what="restarted adapter connected")
    assert await again.adapter.executor.expire() == 0  # type: ignore[attr-defined]
    assert len(await _expiries(redis)) == 2
    assert (await redis.hget("sim:account", "cash")) == raw["cash"]

    # An order in the expired contract is refused.
    late = OrderNew(
        client_order_id="late", contract=otm, action=Action.BUY, quantity=1, limit_price=1.0
    )
    await order(redis, settings, late)
    (ev,) = await wait_until(lambda: events(redis, "late"), timeout=4, what="late refused")
    assert ev.kind is OrderEventKind.REJECTED and "expired" in ev.reason


async def _two(found: Any) -> list[OrderEvent]:
    got: list[OrderEvent] = await found
    return got if len(got) >= 2 else []
