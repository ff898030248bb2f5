"""Request/reply helper: id, timeout, cancellation, a reply to its requester only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared.bus import GatewayDown, Publisher, ReplyTimeout, RequestClient
from shared.contract import GW_COMMANDS, GW_REPLIES, SYS_DLQ, reply_stream
from shared.envelope import decode
from shared.schemas import ContractRef, HistoryBars, HistoryRequest, OptionChain
from shared.settings import Settings
from tests.helpers import wait_until

SPY = ContractRef(symbol="SPY")


def _history(request_id: str = "") -> HistoryRequest:
    return HistoryRequest(request_id=request_id, contract=SPY)


@asynccontextmanager
async def _client(
    redis: aioredis.Redis, settings: Settings, requester: str = "strategy", timeout_s: float = 5.0
) -> AsyncIterator[RequestClient]:
    """A running client (its reply reader started) that is stopped on exit."""
    pub = Publisher(redis, settings, src=f"{requester}/test")
    client = RequestClient(
        redis, pub, settings, requester=requester, replies=(HistoryBars,), timeout_s=timeout_s
    )
    stop = asyncio.Event()
    reader = asyncio.create_task(client.run(stop))
    await wait_until(lambda: client.reading, what="the reply reader")
    try:
        yield client
    finally:
        stop.set()
        await asyncio.wait_for(reader, 5)


async def _requests(redis: aioredis.Redis, at_least: int = 1) -> list[HistoryRequest]:
    found = [decode(f).body for _, f in await redis.xrange(GW_COMMANDS)]
    return found if len(found) >= at_least else []


async def _answer(
    redis: aioredis.Redis, settings: Settings, req: HistoryRequest, to: str | None = None
) -> None:
    """What the gateway does: the reply on the requester's stream (or on ``to``)."""
    pub = Publisher(redis, settings, src="gateway_adapter/test")
    reply = HistoryBars(request_id=req.request_id, symbol=req.contract.symbol, bars=[])
    await pub.publish(to or reply_stream(req.requester), reply, key=req.request_id)


def _serve(redis: aioredis.Redis, settings: Settings, n: int, skip: int = 0) -> asyncio.Task[None]:
    """A fake gateway answering requests ``skip`` to ``n``, each to its own requester."""

    async def serve() -> None:
        sent = await wait_until(lambda: _requests(redis, n), what=f"{n} requests")
        for req in sent[skip:n]:
            await _answer(redis, settings, req)

    return asyncio.create_task(serve())


async def test_ask_when_gateway_answers_returns_reply_and_stamps_the_address(
    redis: aioredis.Redis, settings: Settings
) -> None:
    async with _client(redis, settings, "market_data") as client:
        server = _serve(redis, settings, 1)
        reply = await client.ask(GW_COMMANDS, _history(), HistoryBars, key="SPY")
        await server
    (sent,) = await _requests(redis)
    assert sent.requester == "market_data" and sent.reply_to == "gw:replies:market_data"
    assert reply.request_id == sent.request_id and sent.request_id.startswith("ma-")
    assert client.answered == 1 and client.pending == 0


async def test_ask_when_no_reply_in_time_raises_reply_timeout_and_forgets_it(
    redis: aioredis.Redis, settings: Settings
) -> None:
    async with _client(redis, settings, timeout_s=0.3) as client:
        with pytest.raises(ReplyTimeout, match=r"no reply to cmd.history st-\S+ in 0.3s"):
            await client.ask(GW_COMMANDS, _history(), HistoryBars)
        assert isinstance(ReplyTimeout("x"), TimeoutError)  # callers catch TimeoutError
        assert client.pending == 0 and client.timed_out == 1


async def test_reply_when_late_after_timeout_is_ignored_and_next_request_works(
    redis: aioredis.Redis, settings: Settings
) -> None:
    async with _client(redis, settings, timeout_s=0.3) as client:
        with pytest.raises(ReplyTimeout):
            await client.ask(GW_COMMANDS, _history("late-1"), HistoryBars)
        (late,) = await _requests(redis)
        await _answer(redis, settings, late)
        await wait_until(lambda: client.ignored == 1, what="late reply read and dropped")
        server = _serve(redis, settings, 2, skip=1)
        reply = await client.ask(GW_COMMANDS, _history("next-1"), HistoryBars, timeout_s=5)
        await server
        assert reply.request_id == "next-1" and client.answered == 1 and client.ignored == 1


async def test_ask_when_caller_cancelled_stops_waiting_and_drops_the_reply(
    redis: aioredis.Redis, settings: Settings
) -> None:
    async with _client(redis, settings) as client:
        waiting = asyncio.create_task(client.ask(GW_COMMANDS, _history("gone-1"), HistoryBars))
        await wait_until(lambda: _requests(redis), what="request sent")
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert client.pending == 0
        (req,) = await _requests(redis)
        await _answer(redis, settings, req)
        await wait_until(lambda: client.ignored == 1, what="reply to a cancelled request")
        assert client.answered == 0


async def test_reply_when_addressed_to_another_requester_never_reaches_this_one(
    redis: aioredis.Redis, settings: Settings
) -> None:
    async with (
        _client(redis, settings, "strategy", timeout_s=1.0) as strategy,
        _client(redis, settings, "market_data") as market_data,
    ):
        asking = asyncio.create_task(strategy.ask(GW_COMMANDS, _history("st-1"), HistoryBars))
        (req,) = await wait_until(lambda: _requests(redis), what="strategy's request")
        # Misaddressed: the strategy's reply on market_data's stream is not the strategy's.
        await _answer(redis, settings, req, to=reply_stream("market_data"))
        await wait_until(lambda: market_data.ignored == 1, what="market_data drops it")
        with pytest.raises(ReplyTimeout):
            await asking
        assert strategy.ignored == 0 and strategy.answered == 0
        # Addressed right, each gets its own reply and sees nothing of the other's.
        server = _serve(redis, settings, 3, skip=1)
        got = await asyncio.gather(
            strategy.ask(GW_COMMANDS, _history("st-2"), HistoryBars),
            market_data.ask(GW_COMMANDS, _history("md-2"), HistoryBars),
        )
        await server
    assert [r.request_id for r in got] == ["st-2", "md-2"]
    assert (strategy.ignored, market_data.ignored) == (0, 1)
    assert int(await redis.xlen(GW_REPLIES)) == 0  # no broadcast stream


async def test_fail_all_when_gateway_disconnects_fails_pending_at_once(
    redis: aioredis.Redis, settings: Settings
) -> None:
    async with _client(redis, settings, timeout_s=30.0) as client:
        waiting = [
            asyncio.create_task(client.ask(GW_COMMANDS, _history(f"w-{i}"), HistoryBars))
            for i in range(2)
        ]
        await wait_until(lambda: _requests(redis, 2), what="two requests sent")
        assert client.fail_all("gateway disconnected") == 2
        for task in waiting:
            with pytest.raises(GatewayDown, match="gateway disconnected"):
                await asyncio.wait_for(task, 1)  # long before the 30 s timeout
        assert isinstance(GatewayDown("x"), ConnectionError) and client.pending == 0
        assert client.failed == 2 and client.fail_all("again") == 0


async def test_run_when_stopped_fails_what_still_waits(
    redis: aioredis.Redis, settings: Settings
) -> None:
    pub = Publisher(redis, settings, src="strategy/test")
    client = RequestClient(
        redis, pub, settings, requester="strategy", replies=(HistoryBars,), timeout_s=30.0
    )
    stop = asyncio.Event()
    reader = asyncio.create_task(client.run(stop))
    waiting = asyncio.create_task(client.ask(GW_COMMANDS, _history("s-1"), HistoryBars))
    await wait_until(lambda: _requests(redis), what="request sent")
    stop.set()
    await asyncio.wait_for(reader, 5)
    with pytest.raises(GatewayDown, match="requester stopping"):
        await asyncio.wait_for(waiting, 1)


async def test_reply_when_undecodable_goes_to_dlq_and_reader_keeps_going(
    redis: aioredis.Redis, settings: Settings
) -> None:
    async with _client(redis, settings) as client:
        junk: dict[Any, Any] = {"type": "history", "v": "1", "src": "x", "ts": "1", "body": b"\xc1"}
        await redis.xadd(reply_stream("strategy"), junk)
        server = _serve(redis, settings, 1)
        reply = await client.ask(GW_COMMANDS, _history("after-junk"), HistoryBars)
        await server
    assert reply.request_id == "after-junk"
    (dead,) = [f for _, f in await redis.xrange(SYS_DLQ)]
    assert dead[b"stream"] == b"gw:replies:strategy" and b"undecodable" in dead[b"reason"]


async def test_run_when_replies_exist_before_start_reads_only_newer_ones(
    redis: aioredis.Redis, settings: Settings
) -> None:
    old = HistoryBars(request_id="old-1", symbol="SPY", bars=[])
    await Publisher(redis, settings, src="t").publish(reply_stream("strategy"), old)
    async with _client(redis, settings) as client:
        server = _serve(redis, settings, 1)
        await client.ask(GW_COMMANDS, _history("new-1"), HistoryBars)
        await server
        assert client.ignored == 0  # old-1 was never read


def test_client_when_service_never_asks_refuses_to_build(
    redis: aioredis.Redis, settings: Settings
) -> None:
    build: Callable[[], RequestClient] = lambda: RequestClient(  # noqa: E731
        redis,
        Publisher(redis, settings, src="t"),
        settings,
        requester="monitor",
        replies=(HistoryBars,),
        timeout_s=1,
    )
    with pytest.raises(ValueError, match="no reply stream for 'monitor'"):
        build()


async def test_ask_when_reply_type_not_read_by_requester_raises_type_error(
    redis: aioredis.Redis, settings: Settings
) -> None:
    async with _client(redis, settings) as client:
        with pytest.raises(TypeError, match="option_chain is not a reply strategy reads"):
            await client.ask(GW_COMMANDS, _history("t-1"), OptionChain)
    assert await redis.xlen(GW_COMMANDS) == 0  # refused before sending


async def test_reply_when_of_a_type_not_read_here_goes_to_dlq(
    redis: aioredis.Redis, settings: Settings
) -> None:
    async with _client(redis, settings) as client:
        misplaced = OptionChain(request_id="x-1", underlying="SPY", contracts=[])
        await Publisher(redis, settings, src="t").publish(reply_stream("strategy"), misplaced)
        dead = await wait_until(lambda: redis.xrange(SYS_DLQ), what="dead letter")
        assert dead[0][1][b"reason"] == b"type option_chain does not belong on gw:replies:strategy"
        assert client.ignored == 0


async def test_ask_when_hundreds_wait_at_once_all_get_their_reply(
    redis: aioredis.Redis, settings: Settings
) -> None:
    # One connection per request (a direct XADD each) exhausted the client's pool.
    async with _client(redis, settings) as client:
        server = _serve(redis, settings, 300)
        asks = [client.ask(GW_COMMANDS, _history(f"c-{i}"), HistoryBars) for i in range(300)]
        got = await asyncio.gather(*asks)
        await server
    assert [r.request_id for r in got] == [f"c-{i}" for i in range(300)]
    assert client.answered == 300 and client.pending == 0
