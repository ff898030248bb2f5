"""Consumer groups: ack after success, reclaim from the dead, poison to the DLQ."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from typing import Any

import msgspec
import redis.asyncio as aioredis

from shared.bus import GroupConsumer, Publisher, Refused
from shared.contract import SYS_DLQ
from shared.envelope import Message, decode
from shared.redis_server import RedisHandle
from shared.schemas import ContractRef, OrderCancel, Quote
from shared.settings import Settings
from tests.helpers import wait_until

STREAM = "orders:requests"


async def _publish_cancels(redis: aioredis.Redis, settings: Settings, n: int) -> None:
    pub = Publisher(redis, settings, src="test")
    for i in range(n):
        pub.add(STREAM, OrderCancel(client_order_id=f"c{i}"), key=f"c{i}")
    await pub.flush()


def _consumer(
    redis: aioredis.Redis, settings: Settings, name: str, handler: Any, **kw: Any
) -> GroupConsumer:
    return GroupConsumer(
        redis,
        settings,
        stream=STREAM,
        group="g",
        consumer=name,
        handler=handler,
        start_id="0",
        **kw,
    )


async def _pending(redis: aioredis.Redis) -> int:
    info = await redis.xpending(STREAM, "g")
    return int(info["pending"])


async def _run_until(consumer: GroupConsumer, condition: Any, timeout: float = 10.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await wait_until(condition, timeout=timeout)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_run_when_handler_succeeds_acks_every_entry(
    settings: Settings, redis: aioredis.Redis
) -> None:
    await _publish_cancels(redis, settings, 50)
    seen: list[str] = []

    async def handle(msg: Message[Any]) -> None:
        seen.append(msg.body.client_order_id)

    consumer = _consumer(redis, settings, "a", handle)
    await _run_until(consumer, lambda: len(seen) == 50)
    assert seen == [f"c{i}" for i in range(50)]
    assert await _pending(redis) == 0 and consumer.handled == 50


async def test_run_when_handler_refuses_entry_dead_letters_it_at_once_and_goes_on(
    settings: Settings, redis: aioredis.Redis
) -> None:
    await _publish_cancels(redis, settings, 3)
    seen: list[str] = []

    async def handle(msg: Message[Any]) -> None:
        if msg.body.client_order_id == "c1":
            raise Refused("c1: no retry can fix this")
        seen.append(msg.body.client_order_id)

    consumer = _consumer(redis, settings, "a", handle)
    await _run_until(consumer, lambda: len(seen) == 2 and consumer.dead_lettered == 1)
    (dead,) = [f for _, f in await redis.xrange(SYS_DLQ)]
    assert dead[b"reason"] == b"c1: no retry can fix this" and dead[b"orig.key"] == b"c1"
    assert seen == ["c0", "c2"] and await _pending(redis) == 0
    assert consumer.handled == 2 and consumer.failed == 0  # refused once, never retried


async def test_reclaim_when_consumer_task_cancelled_midway_handles_each_entry_once(
    settings: Settings, redis: aioredis.Redis
) -> None:
    await _publish_cancels(redis, settings, 20)
    done: set[str] = set()
    effects: list[str] = []
    stuck = asyncio.Event()

    async def hang(msg: Message[Any]) -> None:
        stuck.set()
        await asyncio.sleep(3600)  # dies mid-handling: nothing of its batch is acked

    async def idempotent(msg: Message[Any]) -> None:
        if msg.key not in done:
            done.add(msg.key)
            effects.append(msg.key)

    first = _consumer(redis, settings, "a", hang)
    task = asyncio.create_task(first.run(asyncio.Event()))
    await asyncio.wait_for(stuck.wait(), 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert await _pending(redis) == 20

    second = _consumer(redis, settings, "b", idempotent, claim_idle_ms=200)
    await _run_until(second, lambda: len(done) == 20)
    assert sorted(effects) == sorted(f"c{i}" for i in range(20))
    assert await _pending(redis) == 0
    assert second.reclaimed == 20


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from shared.bus import GroupConsumer, connect_redis
    from shared.settings import load_settings

    async def main():
        settings = load_settings(redis_url=sys.argv[1], consume_block_ms=100)
        redis = connect_redis(sys.argv[1])
        async def handle(msg):
            await redis.sadd("child:seen", msg.key)
            await asyncio.sleep(3600)
        c = GroupConsumer(redis, settings, stream="orders:requests", group="g",
                          consumer="child", handler=handle, start_id="0")
        await c.run(asyncio.Event())

    asyncio.run(main())
    """
)


async def test_reclaim_when_consumer_process_sigkilled_second_consumer_finishes_all(
    redis_server: RedisHandle, settings: Settings, redis: aioredis.Redis
) -> None:
    await _publish_cancels(redis, settings, 30)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, redis_server.url, env=os.environ.copy()
    )
    try:
        await wait_until(lambda: redis.scard("child:seen"), timeout=20, what="child handling")
    finally:
        child.send_signal(signal.SIGKILL)
        await asyncio.wait_for(child.wait(), 10)
    assert await _pending(redis) == 30, "the killed child held its whole batch unacked"
    handled: list[str] = []

    async def handle(msg: Message[Any]) -> None:
        if await redis.sadd("done", msg.key):  # idempotent effect
            handled.append(msg.key)

    second = _consumer(redis, settings, "b", handle, claim_idle_ms=200)
    await _run_until(second, lambda: len(handled) == 30, timeout=15)
    assert await redis.scard("done") == 30 and len(handled) == 30
    assert await _pending(redis) == 0


async def test_restart_when_same_consumer_name_handles_its_own_pending_first(
    settings: Settings, redis: aioredis.Redis
) -> None:
    await _publish_cancels(redis, settings, 5)
    # Deliver to "a" without acking, as if "a" crashed after reading.
    await redis.xgroup_create(STREAM, "g", "0")
    await redis.xreadgroup("g", "a", {STREAM: ">"}, count=5)
    seen: list[str] = []

    async def handle(msg: Message[Any]) -> None:
        seen.append(msg.key)

    consumer = _consumer(redis, settings, "a", handle)  # long idle limit: no XAUTOCLAIM help
    await _run_until(consumer, lambda: len(seen) == 5)
    assert await _pending(redis) == 0 and consumer.reclaimed == 0


async def test_poison_when_handler_always_fails_goes_to_dlq_and_consumer_keeps_going(
    settings: Settings, redis: aioredis.Redis
) -> None:
    await _publish_cancels(redis, settings, 10)
    good: list[str] = []

    async def handle(msg: Message[Any]) -> None:
        if msg.key == "c3":
            raise ValueError("cannot handle c3")
        good.append(msg.key)

    consumer = _consumer(redis, settings, "a", handle, claim_idle_ms=100, max_deliveries=3)
    await _run_until(consumer, lambda: redis.xlen(SYS_DLQ), timeout=15)
    assert sorted(good) == sorted(f"c{i}" for i in range(10) if i != 3)
    [(_, dead)] = await redis.xrange(SYS_DLQ)
    assert dead[b"stream"] == STREAM.encode() and dead[b"group"] == b"g"
    assert b"delivered 4 times (cap 3)" in dead[b"reason"]
    assert b"ValueError: cannot handle c3" in dead[b"reason"]
    assert dead[b"orig.key"] == b"c3" and dead[b"orig.type"] == b"order.cancel"
    original = {k.removeprefix(b"orig."): v for k, v in dead.items() if k.startswith(b"orig.")}
    assert decode(original).body == OrderCancel(client_order_id="c3")
    assert await _pending(redis) == 0
    # and it keeps going: a later entry is still handled
    await redis.xadd(
        STREAM,
        {
            b"type": b"order.cancel",
            b"v": b"1",
            b"src": b"t",
            b"ts": b"1",
            b"key": b"late",
            b"body": b"\x81\xafclient_order_id\xa4late",
        },
    )
    await _run_until(consumer, lambda: "late" in good)


async def test_run_when_entries_predate_json_bodies_handles_them_like_new_ones(
    settings: Settings, redis: aioredis.Redis
) -> None:
    # The upgrade: msgpack entries already in the stream, one of them delivered to a
    # consumer that died before acking; JSON entries published after. All are handled.
    def legacy(cid: str) -> dict[bytes, bytes]:
        body = msgspec.msgpack.encode(OrderCancel(client_order_id=cid))
        return {
            b"type": b"order.cancel",
            b"v": b"1",
            b"src": b"old",
            b"ts": b"1",
            b"key": cid.encode(),
            b"body": body,
        }

    await redis.xadd(STREAM, legacy("old-pending"))  # type: ignore[arg-type]
    await redis.xgroup_create(STREAM, "g", "0")
    await redis.xreadgroup("g", "died", {STREAM: ">"}, count=1)
    await redis.xadd(STREAM, legacy("old-new"))  # type: ignore[arg-type]
    await _publish_cancels(redis, settings, 1)
    seen: list[str] = []

    async def handle(msg: Message[Any]) -> None:
        seen.append(msg.body.client_order_id)

    consumer = _consumer(redis, settings, "a", handle, claim_idle_ms=100)
    await _run_until(consumer, lambda: len(seen) == 3)
    assert sorted(seen) == ["c0", "old-new", "old-pending"]
    assert await redis.xlen(SYS_DLQ) == 0 and await _pending(redis) == 0


async def test_decode_failure_when_entry_malformed_goes_to_dlq_at_once(
    settings: Settings, redis: aioredis.Redis
) -> None:
    await redis.xadd(
        STREAM,
        {b"type": b"order.cancel", b"v": b"1", b"src": b"t", b"ts": b"1", b"body": b"\x93garbage"},
    )
    await redis.xadd(STREAM, {b"hello": b"world"})
    await _publish_cancels(redis, settings, 1)
    seen: list[str] = []

    async def handle(msg: Message[Any]) -> None:
        seen.append(msg.key)

    consumer = _consumer(redis, settings, "a", handle)
    await _run_until(consumer, lambda: seen == ["c0"])
    dead = [f for _, f in await redis.xrange(SYS_DLQ)]
    assert len(dead) == 2
    assert b"undecodable body" in dead[0][b"reason"] or b"invalid body" in dead[0][b"reason"]
    assert dead[1][b"reason"] == b"missing field 'type'" and dead[1][b"orig.hello"] == b"world"
    assert await _pending(redis) == 0


async def test_conflate_when_batch_has_many_quotes_per_symbol_handles_latest_only(
    settings: Settings, redis: aioredis.Redis
) -> None:
    pub = Publisher(redis, settings, src="t")
    for i in range(30):
        sym = "SPY" if i % 2 else "QQQ"
        pub.add("md:ticks", Quote(contract=ContractRef(symbol=sym), last=100.0 + i), key=sym)
    await pub.flush()
    seen: list[tuple[str, float]] = []

    async def handle(msg: Message[Any]) -> None:
        seen.append((msg.key, msg.body.last))

    consumer = GroupConsumer(
        redis,
        settings,
        stream="md:ticks",
        group="g",
        consumer="a",
        handler=handle,
        start_id="0",
        conflate=lambda m: m.key,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await wait_until(lambda: len(seen) == 2)
    stop.set()
    await task
    assert sorted(seen) == [("QQQ", 128.0), ("SPY", 129.0)]
    assert consumer.conflated == 28
    assert int((await redis.xpending("md:ticks", "g"))["pending"]) == 0


async def test_accept_when_type_does_not_belong_dead_letters_with_original_fields(
    settings: Settings, redis: aioredis.Redis
) -> None:
    pub = Publisher(redis, settings, src="t")
    pub.add(STREAM, Quote(contract=ContractRef(symbol="SPY"), bid=1.0), key="SPY")
    pub.add(STREAM, OrderCancel(client_order_id="c1"), key="c1")
    await pub.flush()
    seen: list[str] = []

    async def handle(msg: Message[Any]) -> None:
        seen.append(msg.key)

    consumer = _consumer(redis, settings, "a", handle, accept=(OrderCancel,))
    await _run_until(consumer, lambda: seen == ["c1"])
    [(_, dead)] = await redis.xrange(SYS_DLQ)
    assert dead[b"reason"] == b"type quote does not belong on orders:requests"
    assert dead[b"orig.type"] == b"quote" and dead[b"orig.key"] == b"SPY"
    assert await _pending(redis) == 0


async def test_raw_reads_when_enabled_leave_other_xreadgroup_callers_their_dicts(
    settings: Settings, redis: aioredis.Redis
) -> None:
    # The consumer reads entries as Redis sends them (no dict per entry); that switch
    # is per call, so code sharing the client still gets redis-py's usual shape.
    await _publish_cancels(redis, settings, 3)
    seen: list[str] = []

    async def handle(msg: Message[Any]) -> None:
        seen.append(msg.body.client_order_id)

    consumer = _consumer(redis, settings, "a", handle)
    await _run_until(consumer, lambda: len(seen) == 3)
    await redis.xgroup_create(STREAM, "plain", "0")
    reply: Any = await redis.xreadgroup("plain", "p", {STREAM: ">"}, count=10)
    fields = reply[0][1][0][1]
    assert isinstance(fields, dict) and decode(fields).body == OrderCancel(client_order_id="c0")
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xreadgroup("plain", "p", {STREAM: "0"}, count=10)
        (piped,) = await pipe.execute()
    assert isinstance(piped[0][1][0][1], dict)


async def test_raw_reads_when_entry_is_malformed_dead_letters_the_original_fields(
    settings: Settings, redis: aioredis.Redis
) -> None:
    await redis.xadd(STREAM, {b"type": b"order.cancel", b"v": b"1", b"src": b"x", b"ts": b"oops"})
    handled: list[Any] = []

    async def handle(msg: Message[Any]) -> None:
        handled.append(msg)

    consumer = _consumer(redis, settings, "a", handle)
    await _run_until(consumer, lambda: consumer.dead_lettered == 1)
    ((_, dead),) = await redis.xrange(SYS_DLQ)
    assert dead[b"orig.ts"] == b"oops" and b"not a non-negative integer" in dead[b"reason"]
    assert handled == [] and await _pending(redis) == 0


async def test_drain_when_poison_entry_was_trimmed_acks_it_without_crashing(
    settings: Settings, redis: aioredis.Redis
) -> None:
    # A message that crashed its consumer every time (delivery count past the cap) and
    # was then trimmed from the stream: the restart must let go of it, not crash again.
    await _publish_cancels(redis, settings, 2)
    await redis.xgroup_create(STREAM, "g", "0")
    await redis.xreadgroup("g", "a", {STREAM: ">"}, count=10)
    for _ in range(settings.max_deliveries + 1):  # delivered again and again to "a"
        await redis.xreadgroup("g", "a", {STREAM: "0"}, count=10)
    rows: Any = await redis.xrange(STREAM)
    await redis.xdel(STREAM, rows[0][0])  # trimmed while pending
    seen: list[str] = []

    async def handle(msg: Message[Any]) -> None:
        seen.append(msg.body.client_order_id)

    consumer = _consumer(redis, settings, "a", handle)
    await _run_until(consumer, lambda: consumer.dead_lettered == 1)
    assert seen == [] and await _pending(redis) == 0  # c1 was poison too: dead-lettered
    ((_, dead),) = await redis.xrange(SYS_DLQ)
    assert dead[b"orig.body"] and b"delivered" in dead[b"reason"]


async def test_reclaim_when_batch_outlasts_claim_idle_never_handles_an_entry_twice(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """A batch of slow handlers (option chains take seconds) outlives ``claim_idle_ms``;
    its acks must reach Redis before the next XAUTOCLAIM, or the consumer reclaims and
    handles its own finished entries again (each chain asked twice)."""
    await _publish_cancels(redis, settings, 5)
    seen: list[str] = []

    async def slow(msg: Message[Any]) -> None:
        await asyncio.sleep(0.1)  # the handler's own work, not a wait in the test
        seen.append(msg.body.client_order_id)

    fast = settings.model_copy(update={"claim_idle_ms": 100})
    consumer = _consumer(redis, fast, "a", slow)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await wait_until(lambda: len(seen) >= 5, timeout=5, what="five entries handled")
        before = consumer.last_loop
        await wait_until(lambda: consumer.last_loop > before + 0.5, timeout=5, what="more polls")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert seen == [f"c{i}" for i in range(5)] and consumer.reclaimed == 0
