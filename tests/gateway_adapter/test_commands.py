"""Commands: unknown symbols, the line budget, bad entries, history, account."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.tws_simulator import Simulator
from shared.schemas import (
    AccountRefresh,
    AccountSnapshot,
    ContractRef,
    HistoryBars,
    HistoryRequest,
    IbError,
    Quote,
    SecType,
    Subscribe,
)
from shared.settings import Settings
from shared.streams import ACCOUNT, GW_COMMANDS, SYS_DLQ
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
            reply_to="replies",
        ),
    )
    reply = (await wait_until(lambda: bodies(redis, "replies", HistoryBars), timeout=5))[0]
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
    snap = (await bodies(redis, ACCOUNT, AccountSnapshot))[-1]
    assert snap.account == "DU1234567" and snap.net_liquidation > 0
    assert (await redis.hget("account:last", "account")) == b"DU1234567"
