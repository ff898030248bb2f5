"""Subscriptions on their own: desired set, line budget, requesters, reconnects.

The unit is ``Subscriptions`` with the pieces it is built from (a real ib_async
connection to the simulator, the qualifier, the quote publisher, Redis), without
the adapter's life cycle around it, so each test drives exactly one behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.gateway_adapter.budget import PRIO_CHAIN
from services.gateway_adapter.connection import IbConnection
from services.gateway_adapter.pacing import TokenBucket
from services.gateway_adapter.publish import QuotePublisher
from services.gateway_adapter.qualify import Qualifier
from services.gateway_adapter.status import StatusReporter
from services.gateway_adapter.subscriptions import SUBS_KEY, Subscriptions
from services.tws_simulator import Simulator
from services.tws_simulator.ticks import DELAYED
from shared.bus import Publisher, connect_redis
from shared.contract import last_quote_key
from shared.redis_server import RedisHandle
from shared.runner import ServiceContext
from shared.schemas import ConnState, ContractRef, IbError, SecType
from shared.settings import load_settings
from tests.gateway_adapter.conftest import FAST, MakeSim, bodies
from tests.helpers import wait_until

SPY, QQQ = ContractRef(symbol="SPY"), ContractRef(symbol="QQQ")
VIX = ContractRef(symbol="VIX", sec_type=SecType.IND)
LAST_TTL_S = 600


class Rig:
    """One ``Subscriptions`` over a real IB connection; ``connect`` runs the reconnect loop."""

    def __init__(self, sim: Simulator, redis_url: str, *, max_lines: int, held: set[str]) -> None:
        self.sim = sim
        settings = load_settings(**{**FAST, "redis_url": redis_url, "ib_port": sim.port})
        self.redis = connect_redis(redis_url)
        self.pub = Publisher(self.redis, settings, src="gateway_adapter/t")
        ctx = ServiceContext(
            name="gateway_adapter",
            instance="t",
            settings=settings,
            redis=self.redis,
            publisher=self.pub,
            stop=asyncio.Event(),
        )
        self.status = StatusReporter(ctx)
        self.conn = IbConnection(settings, self.status)
        pacer = TokenBucket(settings.ib_pacing_per_s)
        quotes = QuotePublisher(self.pub, linger_s=0.002, redis=self.redis, maxlen=1000)
        self.subs = Subscriptions(
            conn=self.conn,
            qualifier=Qualifier(self.conn, self.redis, pacer, settings.ib_request_timeout_s),
            quotes=quotes,
            pacer=pacer,
            status=self.status,
            redis=self.redis,
            max_lines=max_lines,
            index_symbols=frozenset({"VIX"}),
            held=lambda: held,
            last_ttl_s=LAST_TTL_S,
        )
        self.term = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def connect(self, on_connected: Callable[[], Awaitable[None]] | None = None) -> None:
        """Run the connection as the adapter does; wait until it says CONNECTED."""
        self.task = asyncio.create_task(
            self.conn.run(self.term, on_connected or self.subs.reopen_all)
        )
        await wait_until(
            lambda: self.status.state is ConnState.CONNECTED, timeout=5, what="connected"
        )

    def lines(self) -> list[str]:
        """The symbols of the simulator's open lines for our client (one per IB line)."""
        session = self.sim.sessions.get(self.conn.client_id)
        return sorted(line.inst.symbol for line in session.lines.values()) if session else []

    async def errors(self) -> list[IbError]:
        await self.pub.flush()
        return await bodies(self.redis, "gw:status", IbError)

    async def close(self) -> None:
        self.term.set()
        if self.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.task, 5)
        self.conn.disconnect("test over")
        await self.redis.aclose()


MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig(
    sim: Simulator, redis_server: RedisHandle, redis: aioredis.Redis
) -> AsyncIterator[MakeRig]:
    rigs: list[Rig] = []

    async def factory(
        max_lines: int = 10, held: set[str] | None = None, on: Simulator | None = None
    ) -> Rig:
        rig = Rig(on or sim, redis_server.url, max_lines=max_lines, held=held or set())
        rigs.append(rig)
        return rig

    yield factory
    for rig in rigs:
        await rig.close()


async def desired_in_redis(redis: aioredis.Redis) -> set[str]:
    return {k.decode() for k in await redis.hkeys(SUBS_KEY)}  # type: ignore[misc]


async def test_subscribe_when_connected_opens_one_line_and_persists_desired(
    make_rig: MakeRig, redis: aioredis.Redis
) -> None:
    rig = await make_rig()
    await rig.connect()
    refused = await rig.subs.subscribe([SPY, SPY], 5, requester="watch")
    assert refused == {} and set(rig.subs.open) == {"SPY"}
    await wait_until(lambda: rig.lines() == ["SPY"], timeout=5, what="one SPY line")
    assert await desired_in_redis(redis) == {"SPY"}
    assert rig.subs.desired["SPY"].requesters == ("watch",)


async def test_subscribe_when_disconnected_persists_and_connect_opens_it(
    make_rig: MakeRig, redis: aioredis.Redis
) -> None:
    rig = await make_rig()
    assert await rig.subs.subscribe([SPY], 5) == {}
    assert rig.subs.open == {} and await desired_in_redis(redis) == {"SPY"}
    await rig.connect()
    await wait_until(lambda: rig.lines() == ["SPY"], timeout=5, what="SPY opened on connect")


async def test_reopen_when_subscribe_lands_between_connect_and_reopen_requests_line_once(
    make_rig: MakeRig,
) -> None:
    # A gw:commands entry handled after IB connected but before the adapter reopened its
    # lines used to open a line that reopen_all then cleared and requested again: IB kept
    # two lines for SPY (caught by the 1102 test: 4 lines in the simulator for 2 symbols).
    rig = await make_rig()

    async def on_connected() -> None:
        await rig.subs.subscribe([SPY], 5)  # the command, racing the set-up
        await rig.subs.reopen_all()

    await rig.connect(on_connected)
    await wait_until(lambda: rig.lines(), timeout=5, what="a SPY line")
    await rig.subs.subscribe([QQQ], 5)  # a later request: its reply proves SPY's is in
    await wait_until(lambda: "QQQ" in rig.lines(), timeout=5, what="QQQ line")
    assert rig.lines() == ["QQQ", "SPY"]


async def test_load_when_previous_owner_left_desired_set_opens_same_lines_skips_garbage(
    make_rig: MakeRig, redis: aioredis.Redis
) -> None:
    first = await make_rig()
    await first.subs.subscribe([SPY, VIX], 5, requester="md")
    await redis.hset(SUBS_KEY, "JUNK", b"{not json")
    second = await make_rig()
    assert await second.subs.load() == 2
    assert second.subs.desired["VIX"] == first.subs.desired["VIX"]
    await second.connect()
    await wait_until(lambda: second.lines() == ["SPY", "VIX"], timeout=3, what="both lines")


async def test_unsubscribe_when_other_requester_needs_line_keeps_it_until_last_leaves(
    make_rig: MakeRig, redis: aioredis.Redis
) -> None:
    rig = await make_rig()
    await rig.connect()
    await rig.subs.subscribe([SPY], 5, requester="a")
    await rig.subs.subscribe([SPY], 5, requester="b")
    await redis.hset(last_quote_key("SPY"), "bid", "1")  # what the quote publisher writes
    assert await rig.subs.unsubscribe([SPY], requester="a") == []
    assert rig.subs.desired["SPY"].requesters == ("b",) and "SPY" in rig.subs.open
    assert await redis.ttl(last_quote_key("SPY")) == -1  # a live line's quote never expires
    assert await rig.subs.unsubscribe([SPY], requester="b") == ["SPY"]
    await wait_until(lambda: rig.lines() == [], timeout=5, what="line cancelled at IB")
    assert await desired_in_redis(redis) == set() and "SPY" not in rig.subs.budget
    assert 0 < await redis.ttl(last_quote_key("SPY")) <= LAST_TTL_S  # readable a while


async def test_unsubscribe_when_position_held_keeps_line(make_rig: MakeRig) -> None:
    rig = await make_rig(held={"SPY"})
    await rig.connect()
    await rig.subs.subscribe([SPY], 5, requester="a")
    assert await rig.subs.unsubscribe([SPY], requester="a") == []
    assert rig.subs.desired["SPY"].requesters == () and rig.lines() == ["SPY"]


async def test_subscribe_when_budget_full_refuses_with_reason_and_reports_101(
    make_rig: MakeRig, redis: aioredis.Redis
) -> None:
    rig = await make_rig(max_lines=1)
    await rig.connect()
    assert await rig.subs.subscribe([SPY], 5) == {}
    refused = await rig.subs.subscribe([QQQ], 5)
    assert "budget full (1/1" in refused["QQQ"] and "QQQ" not in rig.subs.desired
    assert await desired_in_redis(redis) == {"SPY"}
    errors = [e for e in await rig.errors() if e.symbol == "QQQ"]
    assert [(e.code, e.severity) for e in errors] == [(101, "refused")]


async def test_subscribe_when_full_and_index_asks_evicts_lower_line(
    make_rig: MakeRig, redis: aioredis.Redis
) -> None:
    rig = await make_rig(max_lines=1)
    await rig.connect()
    await rig.subs.subscribe([SPY], PRIO_CHAIN)
    await wait_until(lambda: rig.lines() == ["SPY"], timeout=5)
    assert await rig.subs.subscribe([VIX], 1) == {}  # an index outranks whatever it asks
    await wait_until(lambda: rig.lines() == ["VIX"], timeout=5, what="SPY gave its line")
    assert await desired_in_redis(redis) == {"VIX"}
    evicted = [e for e in await rig.errors() if e.severity == "evicted"]
    assert [e.symbol for e in evicted] == ["SPY"] and "VIX" in evicted[0].message


async def test_subscribe_when_contract_unknown_refuses_and_forgets_it(
    make_rig: MakeRig, redis: aioredis.Redis
) -> None:
    rig = await make_rig()
    await rig.connect()
    await rig.subs.subscribe([ContractRef(symbol="NOSUCH")], 5)
    assert "NOSUCH" not in rig.subs.desired and "NOSUCH" not in rig.subs.budget

    async def forgotten() -> Any:
        return "NOSUCH" not in await desired_in_redis(redis)

    await wait_until(forgotten, timeout=5, what="gw:subs entry removed")
    assert [e.severity for e in await rig.errors() if e.symbol == "NOSUCH"] == ["refused"]
    assert rig.lines() == []


async def test_subscribe_when_ib_says_not_subscribed_354_retries_line_as_delayed(
    make_rig: MakeRig, make_sim: MakeSim, redis: aioredis.Redis
) -> None:
    sim = await make_sim(unsubscribed_symbols=frozenset({"AAPL"}))
    rig = await make_rig(on=sim)
    await rig.connect()
    await rig.subs.subscribe([ContractRef(symbol="AAPL")], 5)
    session = sim.sessions[rig.conn.client_id]
    await wait_until(
        lambda: [line.ids for line in session.lines.values()] == [DELAYED],
        timeout=5,
        what="AAPL line open with delayed data",
    )
    assert rig.subs.desired["AAPL"].delayed and "AAPL" in rig.subs.open
    raw = await redis.hget(SUBS_KEY, "AAPL")
    assert raw is not None and b'"delayed":true' in raw  # a successor asks delayed at once
    (warning,) = [e for e in await rig.errors() if e.symbol == "AAPL"]
    assert warning.code == 354 and "retrying as delayed" in warning.message


async def test_subscribe_when_ib_gives_delayed_instead_10167_keeps_line_and_warns(
    make_rig: MakeRig, make_sim: MakeSim
) -> None:
    sim = await make_sim(delayed_only_symbols=frozenset({"AAPL"}))
    rig = await make_rig(on=sim)
    await rig.connect()
    await rig.subs.subscribe([ContractRef(symbol="AAPL")], 5)

    async def warned() -> list[IbError]:
        return [e for e in await rig.errors() if e.code == 10167]

    (warning,) = await wait_until(warned, timeout=5, what="10167 reported")
    assert (warning.symbol, warning.severity) == ("AAPL", "warning")
    assert "AAPL" in rig.subs.open and rig.lines() == ["AAPL"]
