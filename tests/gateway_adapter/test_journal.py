"""The order journal on its own: one atomic write per change, in order, memory after Redis.

Real Redis throughout. A Redis that refuses the write is a real refusal: an ACL user
that may not run scripts (NOPERM), later allowed to, so no write is faked.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError

from services.gateway_adapter.journal import (
    HashOp,
    OrderJournal,
    Write,
    hdel,
    hset,
    seen_guard,
)
from services.strategy.ledger import fill_from_event
from shared import clock
from shared.bus import connect_redis
from shared.clock import SimClock
from shared.contract import ORDERS_EVENTS, ORDERS_SEEN
from shared.redis_server import RedisHandle
from shared.schemas import Action, ContractRef, OrderEvent, OrderEventKind, SecType
from tests.gateway_adapter.conftest import bodies
from tests.helpers import wait_until

WORKING, ACCOUNT = "orders:working", "sim:account"


def ev(cid: str, kind: OrderEventKind = OrderEventKind.ACK) -> OrderEvent:
    return OrderEvent(client_order_id=cid, kind=kind)


async def events(redis: aioredis.Redis) -> list[tuple[str, OrderEventKind]]:
    return [(e.client_order_id, e.kind) for e in await bodies(redis, ORDERS_EVENTS, OrderEvent)]


class Cash:
    """A booking: cash staged on a copy, adopted only once the write succeeded."""

    def __init__(self, cash: int, delta: int) -> None:
        self.cash, self.delta = cash, delta
        self.staged: list[int] = []

    def stage(self) -> Sequence[HashOp]:
        self.staged.append(self.cash + self.delta)
        return [hset(ACCOUNT, "cash", str(self.staged[-1]))]

    def commit(self) -> None:
        self.cash = self.staged[-1]


class Echo:
    """A booking that stages what another booking has committed so far."""

    def __init__(self, source: Cash) -> None:
        self.source = source
        self.seen: list[int] = []

    def stage(self) -> Sequence[HashOp]:
        self.seen.append(self.source.cash)
        return [hset(ACCOUNT, "seen", str(self.source.cash))]

    def commit(self) -> None:
        """Nothing of its own to adopt."""


@pytest.fixture
def journal(redis: aioredis.Redis) -> OrderJournal:
    return OrderJournal(redis, "gateway_adapter/t", maxlen=1000)


class Refusing:
    """A client logged in as an ACL user with ``rules``; ``allow(*more)`` widens them."""

    def __init__(self, admin: aioredis.Redis, url: str) -> None:
        self.admin, self.url = admin, url
        self.user, self.password = f"journal-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
        self.client: aioredis.Redis | None = None

    async def login(self, *rules: str) -> aioredis.Redis:
        await self.allow("on", f">{self.password}", *rules)
        self.client = connect_redis(self.url, username=self.user, password=self.password)
        return self.client

    async def allow(self, *rules: str) -> None:
        await self.admin.execute_command("ACL", "SETUSER", self.user, *rules)

    async def refusals(self) -> int:
        """How many of our user's commands Redis refused (``ACL LOG``)."""
        log = await self.admin.acl_log()
        return sum(int(e["count"]) for e in log if e["username"] == self.user)


@pytest.fixture
async def refusing(redis_server: RedisHandle, redis: aioredis.Redis) -> AsyncIterator[Refusing]:
    acl = Refusing(redis, redis_server.url)
    yield acl
    if acl.client is not None:
        await acl.client.aclose()
    await redis.execute_command("ACL", "DELUSER", acl.user)


NO_SCRIPTS = ("~*", "+@all", "-eval", "-evalsha")


async def test_record_when_applied_writes_every_hash_and_event_of_the_write(
    journal: OrderJournal, redis: aioredis.Redis
) -> None:
    await redis.hset(WORKING, "old", "x")
    fill = ev("c1", OrderEventKind.FILL)
    ops = [hset(WORKING, "c1", "w"), hdel(WORKING, "old"), hset(ACCOUNT, "cash", "99")]
    assert await journal.record(Write([ev("c1"), fill], ops))
    assert await events(redis) == [("c1", OrderEventKind.ACK), ("c1", OrderEventKind.FILL)]
    assert await redis.hgetall(WORKING) == {b"c1": b"w"}
    assert await redis.hget(ACCOUNT, "cash") == b"99"
    assert journal.writes == 1


async def test_record_when_guard_already_set_returns_false_and_writes_nothing(
    journal: OrderJournal, redis: aioredis.Redis
) -> None:
    assert await journal.record(Write([ev("c1")], guard=seen_guard("c1", "first")))
    again = Write(
        [ev("c1", OrderEventKind.FILL)], [hset(WORKING, "c1", "w")], seen_guard("c1", "2")
    )
    assert not await journal.record(again)
    assert await events(redis) == [("c1", OrderEventKind.ACK)]
    assert not await redis.exists(WORKING)
    assert await redis.hget(ORDERS_SEEN, "c1") == b"first"  # the guard keeps the first payload


async def test_post_and_record_when_interleaved_apply_in_the_order_made(
    journal: OrderJournal, redis: aioredis.Redis
) -> None:
    journal.post(Write([ev("p1")]))
    journal.post(Write([ev("p2")], [hset(WORKING, "k", "from p2")]))
    # record waits for the posts before it, though they were never awaited
    assert await journal.record(Write([ev("r3")], [hset(WORKING, "k", "r3")]))
    assert [cid for cid, _ in await events(redis)] == ["p1", "p2", "r3"]
    journal.post(Write([ev("p4")]))
    await journal.drain()
    assert [cid for cid, _ in await events(redis)] == ["p1", "p2", "r3", "p4"]
    assert await redis.hget(WORKING, "k") == b"r3"  # the later write wins


async def test_record_when_redis_refuses_raises_and_booking_stays_unchanged(
    refusing: Refusing, redis: aioredis.Redis
) -> None:
    journal = OrderJournal(await refusing.login(*NO_SCRIPTS), "gateway_adapter/t", maxlen=1000)
    cash = Cash(1000, -250)
    with pytest.raises(NoPermissionError):
        await journal.record(Write([ev("c1")], book=cash))
    assert cash.staged == [750] and cash.cash == 1000  # staged, never adopted
    assert await events(redis) == [] and not await redis.exists(ACCOUNT)


async def test_post_when_redis_refuses_retries_until_written_then_commits(
    refusing: Refusing, redis: aioredis.Redis
) -> None:
    journal = OrderJournal(await refusing.login(*NO_SCRIPTS), "gateway_adapter/t", maxlen=1000)
    cash = Cash(1000, -250)
    journal.post(Write([ev("c1", OrderEventKind.FILL)], book=cash))
    await wait_until(lambda: len(cash.staged) >= 2, timeout=5, what="a retry")
    assert cash.cash == 1000 and await events(redis) == []
    await refusing.allow("+eval", "+evalsha")
    await journal.drain()
    assert await events(redis) == [("c1", OrderEventKind.FILL)]
    assert cash.cash == 750 and await redis.hget(ACCOUNT, "cash") == b"750"


async def test_booking_when_guard_refuses_is_staged_but_not_committed(
    journal: OrderJournal, redis: aioredis.Redis
) -> None:
    await journal.record(Write([ev("c1")], guard=seen_guard("c1", "x")))
    cash = Cash(1000, -250)
    assert not await journal.record(Write([ev("c1")], guard=seen_guard("c1", "x"), book=cash))
    assert cash.staged == [750] and cash.cash == 1000 and not await redis.exists(ACCOUNT)


async def test_booking_when_earlier_write_queued_stages_after_its_commit(
    journal: OrderJournal, redis: aioredis.Redis
) -> None:
    first = Cash(1000, -100)
    journal.post(Write([ev("c1")], book=first))  # not yet applied when the next is made
    echo = Echo(first)
    assert await journal.record(Write([ev("c2")], book=echo))
    assert echo.seen == [900] and await redis.hget(ACCOUNT, "seen") == b"900"


async def test_record_when_earlier_post_still_retrying_waits_for_it(
    refusing: Refusing, redis: aioredis.Redis
) -> None:
    client = await refusing.login("~orders:events", "~orders:seen", "+@all")  # not the book
    journal = OrderJournal(client, "gateway_adapter/t", maxlen=1000)
    journal.post(Write([ev("p1")], [hset(WORKING, "p1", "w")]))  # refused: retried
    recorded = asyncio.ensure_future(journal.record(Write([ev("r2")])))  # Redis would take it

    async def refused_twice() -> bool:
        return await refusing.refusals() >= 2

    await wait_until(refused_twice, timeout=5, what="the post refused and retried")
    assert not recorded.done() and await events(redis) == []
    await refusing.allow(f"~{WORKING}")
    assert await asyncio.wait_for(recorded, 5)
    assert [cid for cid, _ in await events(redis)] == ["p1", "r2"]


async def test_record_when_on_simulated_time_stamps_events_with_it(
    redis: aioredis.Redis,
) -> None:
    """A fill's time (holding time, trading day) is the trading clock's, not the host's."""
    journal = OrderJournal(redis, "test", 1000)
    sim_now = 1_772_634_600.0  # 2026-03-04 09:30 New York
    with clock.using(SimClock(sim_now)):
        assert await journal.record(Write(events=[ev("a", OrderEventKind.FILL)]))
    (stamped,) = await bodies(redis, ORDERS_EVENTS, OrderEvent)
    assert stamped.at == sim_now
    fill = OrderEvent(
        client_order_id="a",
        kind=OrderEventKind.FILL,
        contract=ContractRef(symbol="SPY", sec_type=SecType.STK),
        action=Action.BUY,
        fill_qty=1,
        fill_price=1.0,
        filled_total=1,
        at=stamped.at,
    )
    booked = fill_from_event(fill, ts_ns=2_000_000_000 * 10**9)  # the entry's host ts
    assert booked is not None and booked.ts_ns == int(sim_now * 1e9)
