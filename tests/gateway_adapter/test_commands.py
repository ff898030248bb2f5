"""Commands: unknown symbols, the line budget, bad entries, history, account."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from services.gateway_adapter.budget import PRIO_CHAIN
from services.tws_simulator import Simulator
from shared.bus import Publisher
from shared.contract import (
    ACCOUNT,
    GW_COMMANDS,
    GW_REPLIES,
    MD_SIGNALS,
    ORDERS_REQUESTS,
    REQUESTERS,
    SYS_DLQ,
    reply_stream,
)
from shared.schemas import (
    AccountRefresh,
    AccountSnapshot,
    Action,
    ContractRef,
    HistoryBars,
    HistoryRequest,
    IbError,
    OptionChain,
    OptionChainRequest,
    OrderNew,
    Quote,
    SecType,
    Subscribe,
    Unsubscribe,
)
from shared.settings import Settings
from tests.gateway_adapter.conftest import StartAdapter, bodies
from tests.gateway_adapter.test_quotes import send
from tests.helpers import wait_until


async def errors(redis: aioredis.Redis) -> list[IbError]:
    return await bodies(redis, "gw:status", IbError)


async def test_subscribe_when_symbol_unknown_reports_200_and_keeps_running(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await start_adapter(sim)
    await wait_until(lambda: adapter.connected, timeout=4)
    await send(
        redis,
        settings,
        Subscribe(contracts=[ContractRef(symbol="NOPE"), ContractRef(symbol="SPY")]),
    )

    async def refused() -> list[IbError]:
        return [e for e in await errors(redis) if e.symbol == "NOPE" and e.code == 200]

    await wait_until(refused, timeout=3, what="error 200 for NOPE")
    await wait_until(lambda: redis.exists("md:last:SPY"), timeout=3)
    assert "NOPE" not in adapter.adapter.subs.desired and adapter.connected


async def test_subscribe_when_contract_ambiguous_refuses_with_reason(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await start_adapter(sim)
    await wait_until(lambda: adapter.connected, timeout=4)
    await send(redis, settings, Subscribe(contracts=[ContractRef(symbol="AAPL", currency="")]))

    async def refused() -> list[IbError]:
        return [e for e in await errors(redis) if e.symbol == "AAPL" and "ambiguous" in e.message]

    await wait_until(refused, timeout=3, what="ambiguous AAPL refused")


async def test_subscribe_when_over_budget_refuses_and_index_evicts_lowest(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await start_adapter(sim, ib_max_lines=2)
    await wait_until(lambda: adapter.connected, timeout=4)
    await send(
        redis,
        settings,
        Subscribe(contracts=[ContractRef(symbol="AAPL"), ContractRef(symbol="MSFT")], priority=3),
    )
    await send(redis, settings, Subscribe(contracts=[ContractRef(symbol="NVDA")], priority=3))
    await send(
        redis, settings, Subscribe(contracts=[ContractRef(symbol="VIX", sec_type=SecType.IND)])
    )

    async def outcome() -> bool:
        errs = await errors(redis)
        return any(
            e.symbol == "NVDA" and e.severity == "refused" and "budget" in e.message for e in errs
        ) and any(e.severity == "evicted" for e in errs)

    await wait_until(outcome, timeout=3, what="NVDA refused, one line evicted for VIX")
    await wait_until(
        lambda: "VIX" in adapter.adapter.subs.open and len(adapter.adapter.subs.open) == 2,
        timeout=3,
    )


async def test_subscribe_when_option_of_an_index_symbol_gets_ordinary_priority(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    """QQQ itself is an index line (priority 9); its options must not evict other options."""
    adapter = await start_adapter(sim)
    await wait_until(lambda: adapter.connected, timeout=4)
    await send(redis, settings, Subscribe(contracts=[ContractRef(symbol="QQQ")], priority=3))
    request = OptionChainRequest(
        request_id="q1",
        underlying="QQQ",
        min_dte=0,
        max_dte=60,
        moneyness=0.01,
        requester="strategy",
    )
    await send(redis, settings, request)
    (chain,) = await wait_until(
        lambda: bodies(redis, "gw:replies:strategy", OptionChain), timeout=10
    )
    budget = adapter.adapter.subs.budget
    await wait_until(lambda: all(budget.priority(c.key) for c in chain.contracts), timeout=5)
    assert budget.priority("QQQ") == 9
    assert {budget.priority(c.key) for c in chain.contracts} == {PRIO_CHAIN}


async def test_consume_when_command_malformed_sends_it_to_dlq(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await start_adapter(sim)
    await wait_until(lambda: adapter.connected, timeout=4)
    await redis.xadd(
        GW_COMMANDS, {"type": "cmd.subscribe", "v": "1", "src": "t", "ts": "1", "body": b"\xc1junk"}
    )
    await redis.xadd(
        GW_COMMANDS, {"type": "cmd.launch_rockets", "v": "1", "src": "t", "ts": "1", "body": b""}
    )
    await send(redis, settings, Quote(contract=ContractRef(symbol="SPY"), bid=1.0))  # misplaced

    async def three() -> bool:
        return int(await redis.xlen(SYS_DLQ)) == 3

    await wait_until(three, timeout=3, what="three dead letters")
    reasons = [f[b"reason"].decode() for _, f in await redis.xrange(SYS_DLQ)]
    assert any("undecodable" in r for r in reasons), reasons
    assert any("unknown type" in r for r in reasons) and any(
        "type quote does not belong on gw:commands" in r for r in reasons
    )
    assert adapter.connected


async def test_history_when_requested_replies_with_bars(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await start_adapter(sim)
    await wait_until(lambda: adapter.connected, timeout=4)
    await send(
        redis,
        settings,
        HistoryRequest(
            request_id="h1",
            contract=ContractRef(symbol="SPY"),
            duration="1 D",
            bar_size="5 mins",
            requester="strategy",
        ),
    )
    reply = (
        await wait_until(lambda: bodies(redis, "gw:replies:strategy", HistoryBars), timeout=5)
    )[0]
    assert reply.error == "" and len(reply.bars) > 10 and all(b.close > 0 for b in reply.bars)


async def test_account_when_refresh_requested_publishes_snapshot(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await start_adapter(sim)
    await wait_until(lambda: adapter.connected, timeout=4)
    first = await wait_until(
        lambda: bodies(redis, ACCOUNT, AccountSnapshot), timeout=3, what="snapshot at logon"
    )
    await send(redis, settings, AccountRefresh(request_id="r1"))

    async def more() -> bool:
        return int(await redis.xlen(ACCOUNT)) > len(first)

    await wait_until(more, timeout=3, what="refreshed snapshot")
    snaps = await bodies(redis, ACCOUNT, AccountSnapshot)
    snap = [s for s in snaps if not s.simulated][-1]
    assert snap.account == "DU1234567" and snap.net_liquidation > 0
    sim = [s for s in snaps if s.simulated][-1]  # the simulated book, marked as such
    assert sim.account == "DU1234567-SIM" and sim.net_liquidation == 3756.96
    assert (await redis.hget("account:last", "account")) == b"DU1234567"


async def test_option_chain_when_connection_drops_mid_request_replies_error(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await start_adapter(sim)
    await wait_until(lambda: adapter.connected, timeout=4)
    sim.set_reply_delay(1000)  # the request is on the wire when the link drops
    await send(
        redis,
        settings,
        OptionChainRequest(request_id="drop-1", underlying="SPY", requester="strategy"),
    )
    commands = await wait_until(lambda: adapter.adapter.commands, timeout=2)
    await wait_until(lambda: commands.in_flight == 1, timeout=2, what="chain request in flight")
    sim.drop_all()
    (reply,) = await wait_until(
        lambda: bodies(redis, "gw:replies:strategy", OptionChain), timeout=3
    )
    assert reply.request_id == "drop-1" and not reply.contracts and reply.error
    assert commands.in_flight == 0 and int(await redis.xlen(SYS_DLQ)) == 0


async def test_history_when_ib_does_not_answer_in_time_replies_error(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await start_adapter(sim, ib_request_timeout_s=0.5)
    await wait_until(lambda: adapter.connected, timeout=4)
    spy = ContractRef(symbol="SPY")
    await send(redis, settings, Subscribe(contracts=[spy]))  # qualified and cached first
    await wait_until(lambda: "SPY" in adapter.adapter.subs.open, timeout=3)
    sim.set_reply_delay(1500)
    await send(
        redis, settings, HistoryRequest(request_id="slow-1", contract=spy, requester="strategy")
    )
    (reply,) = await wait_until(
        lambda: bodies(redis, "gw:replies:strategy", HistoryBars), timeout=3
    )
    assert reply.request_id == "slow-1" and not reply.bars
    assert reply.error == "IB did not answer in time"
    assert int(await redis.xlen(SYS_DLQ)) == 0


async def test_unsubscribe_when_other_requester_or_order_needs_line_keeps_it_open(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await start_adapter(sim)
    await wait_until(lambda: adapter.connected, timeout=4)
    subs = adapter.adapter.subs
    spy, qqq, aapl = (ContractRef(symbol=s) for s in ("SPY", "QQQ", "AAPL"))
    await send(redis, settings, Subscribe(contracts=[spy, qqq, aapl], requester="strategy"))
    await send(redis, settings, Subscribe(contracts=[spy], requester="market_data"))
    await wait_until(lambda: len(subs.open) == 3, timeout=3, what="three lines")
    await wait_until(lambda: subs.desired["SPY"].requesters == ("market_data", "strategy"))
    rest = OrderNew(
        client_order_id="hold-1", contract=qqq, action=Action.BUY, quantity=1, limit_price=1.0
    )
    await Publisher(redis, settings, src="test").publish(ORDERS_REQUESTS, rest)
    await wait_until(lambda: "hold-1" in adapter.adapter.executor.working, timeout=3)  # type: ignore[attr-defined]

    await send(redis, settings, Unsubscribe(contracts=[spy, qqq, aapl], requester="strategy"))
    await wait_until(lambda: "AAPL" not in subs.open, timeout=3, what="AAPL closed")
    assert "SPY" in subs.open and subs.desired["SPY"].requesters == ("market_data",)
    assert "QQQ" in subs.open  # a working order still needs its quotes
    assert await redis.hexists("gw:subs", "SPY") and not await redis.hexists("gw:subs", "AAPL")
    await send(redis, settings, Unsubscribe(contracts=[spy], requester="market_data"))
    await wait_until(lambda: "SPY" not in subs.open, timeout=3, what="SPY closed by its last user")
    # A closed line's last quote expires (no hash per contract left forever) ...
    ttl = await wait_until(lambda: _positive(redis.ttl("md:last:SPY")), what="md:last TTL")
    assert ttl <= settings.gw_last_ttl_s and await redis.ttl("md:last:QQQ") == -1
    # ... and stays when the line opens again.
    await send(redis, settings, Subscribe(contracts=[spy], requester="market_data"))
    await wait_until(lambda: "SPY" in subs.open, timeout=3, what="SPY open again")
    await wait_until(lambda: _equals(redis.ttl("md:last:SPY"), -1), what="md:last persisted")


async def _positive(ttl: Any) -> int:
    value = int(await ttl)
    return value if value > 0 else 0


async def _equals(value: Any, expected: int) -> bool:
    return int(await value) == expected


async def test_option_chain_when_requested_replies_to_its_requester_only(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await start_adapter(sim)
    await wait_until(lambda: adapter.connected, timeout=4)
    request = OptionChainRequest(
        request_id="md-q1", underlying="SPY", max_dte=60, moneyness=0.02, requester="market_data"
    )
    await send(redis, settings, request)
    (chain,) = await wait_until(
        lambda: bodies(redis, reply_stream("market_data"), OptionChain), timeout=10
    )
    assert chain.request_id == "md-q1" and chain.contracts
    # Addressed: nothing on the other requester's stream, the old broadcast or md:signals.
    for stream in (reply_stream("strategy"), GW_REPLIES, MD_SIGNALS):
        assert int(await redis.xlen(stream)) == 0, stream
    assert int(await redis.xlen(SYS_DLQ)) == 0


async def test_requests_when_requester_missing_or_unknown_go_to_dlq_unanswered(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await start_adapter(sim)
    await wait_until(lambda: adapter.connected, timeout=4)
    spy = ContractRef(symbol="SPY")
    await send(redis, settings, HistoryRequest(request_id="h-none", contract=spy))
    await send(
        redis, settings, OptionChainRequest(request_id="c-who", underlying="SPY", requester="x")
    )
    mismatch = HistoryRequest(
        request_id="h-odd", contract=spy, requester="strategy", reply_to="md:signals"
    )
    await send(redis, settings, mismatch)

    async def three() -> bool:
        return int(await redis.xlen(SYS_DLQ)) == 3

    await wait_until(three, timeout=5, what="three refused requests")
    reasons = [f[b"reason"].decode() for _, f in await redis.xrange(SYS_DLQ)]
    assert "cmd.history h-none: no requester" in reasons[0] and "never broadcast" in reasons[0]
    assert "c-who: 'x'" in reasons[1]
    assert "reply_to 'md:signals' is not strategy's address gw:replies:strategy" in reasons[2]
    dead = [f for _, f in await redis.xrange(SYS_DLQ)]
    assert all(f[b"stream"] == GW_COMMANDS.encode() and b"orig.body" in f for f in dead)
    replies = (*(reply_stream(r) for r in REQUESTERS), GW_REPLIES, MD_SIGNALS)
    assert [int(await redis.xlen(s)) for s in replies] == [0] * len(replies)
    groups = await redis.xinfo_groups(GW_COMMANDS)
    assert groups[0]["pending"] == 0 and adapter.connected  # acked: not retried
    assert not adapter.adapter.subs.desired  # refused before any IB work
