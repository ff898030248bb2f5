"""The entry cycle on its own: which candidates get a chain, which an order, and why not.

Built on the desk rig (real Redis, the service's books, desk and cycles). The test
plays the gateway: it reads the chain request the cycle put on ``gw:commands`` and
answers it as the strategy's reply consumer would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.strategy.risk import RiskState
from shared.contract import GW_COMMANDS, reply_stream
from shared.envelope import decode, encode
from shared.schemas import (
    NO_CONTRACT_IN_WINDOW,
    Action,
    Candidate,
    ContractRef,
    Decision,
    DecisionOutcome,
    Direction,
    OptionChain,
    OptionChainRequest,
    OrderNew,
    Quote,
    Right,
    SecType,
    Sentiment,
    Unsubscribe,
)
from shared.settings import Settings
from tests.helpers import wait_until
from tests.strategy.desk_rig import Rig, hold_long, make_rig


def expiry_in(days: int) -> str:
    """A Friday about ``days`` ahead of today (the cycle's DTE is on the real date)."""
    day = dt.date.today() + dt.timedelta(days=days)
    return (day + dt.timedelta(days=(4 - day.weekday()) % 7)).strftime("%Y%m%d")


def call(symbol: str, strike: float, con_id: int) -> ContractRef:
    return ContractRef(
        symbol=symbol,
        sec_type=SecType.OPT,
        expiry=expiry_in(28),
        strike=strike,
        right=Right.CALL,
        multiplier=100,
        con_id=con_id,
    )


AMD_NEAR, AMD_FAR = call("AMD", 100.0, 101), call("AMD", 110.0, 102)


@pytest.fixture
async def rig(redis: aioredis.Redis, settings: Settings) -> Rig:
    rig = await make_rig(redis, settings)
    rig.books.market.sentiment = Sentiment.BULLISH
    return rig


def long(symbol: str, score: float = 1.0) -> Candidate:
    return Candidate(symbol=symbol, direction=Direction.LONG, score=score)


def quote(contract: ContractRef, bid: float, ask: float, delta: float | None = None) -> Quote:
    return Quote(contract=contract, bid=bid, ask=ask, mark=(bid + ask) / 2, delta=delta)


async def commands(rig: Rig) -> list[Any]:
    rows: Any = await rig.redis.xrange(GW_COMMANDS)
    return [decode(f, i).body for i, f in rows]


async def chain_requests(rig: Rig) -> list[OptionChainRequest]:
    return [c for c in await commands(rig) if isinstance(c, OptionChainRequest)]


async def decisions_about(rig: Rig, symbol: str) -> list[Decision]:
    return [d for d in await rig.decisions() if d.symbol == symbol]


async def cycle_answering(rig: Rig, contracts: list[ContractRef], error: str = "") -> None:
    """Run one entry cycle; answer its (single) chain request with ``contracts``."""
    cycle = asyncio.create_task(rig.cycles.entry_cycle())
    (req,) = await wait_until(lambda: chain_requests(rig), timeout=5, what="chain request")
    reply = OptionChain(
        request_id=req.request_id, underlying=req.underlying, contracts=contracts, error=error
    )
    fields: Any = encode(reply, "gateway_adapter/t", req.request_id)
    await rig.redis.xadd(reply_stream("strategy"), fields)  # as the adapter answers
    assert await rig.cycles.chains.requests.poll_once() == 1
    await asyncio.wait_for(cycle, 10)


async def test_entry_cycle_when_risk_halted_skips_and_asks_no_chain(rig: Rig) -> None:
    await rig.desk.set_state(RiskState.HALTED, "news", "ann")
    rig.books.market.candidates = [long("AMD")]
    await rig.cycles.entry_cycle()
    await rig.cycles.entry_cycle()  # the same reason is decided once
    (d,) = [d for d in await rig.decisions() if "no entries" in d.reason]
    assert d.outcome is DecisionOutcome.SKIPPED and "risk state HALTED (news)" in d.reason
    assert await chain_requests(rig) == []


@pytest.mark.parametrize(
    ("sentiment", "why"),
    [
        (None, "no market sentiment yet"),
        (Sentiment.BEARISH, "sentiment BEARISH: long candidates need BULLISH"),
    ],
)
async def test_entry_cycle_when_sentiment_does_not_agree_skips_candidate_without_chain(
    rig: Rig, sentiment: Sentiment | None, why: str
) -> None:
    rig.books.market.sentiment = sentiment
    rig.books.market.candidates = [long("AMD")]
    await rig.cycles.entry_cycle()
    assert [d.reason for d in await decisions_about(rig, "AMD")] == [why]
    assert await chain_requests(rig) == []


async def test_entry_cycle_when_symbol_already_held_skips_it(rig: Rig) -> None:
    await hold_long(rig)  # an INTC call
    rig.books.market.candidates = [long("INTC")]
    await rig.cycles.entry_cycle()
    (d,) = [d for d in await decisions_about(rig, "INTC") if d.outcome is DecisionOutcome.SKIPPED]
    assert d.reason.startswith("already holding INTC")
    assert await chain_requests(rig) == []


async def test_entry_cycle_when_more_candidates_than_free_slots_asks_only_the_best(
    redis: aioredis.Redis, settings: Settings
) -> None:
    rig = await make_rig(redis, settings.model_copy(update={"risk_max_positions": 1}))
    rig.books.market.sentiment = Sentiment.BULLISH
    rig.books.market.candidates = [long("AMD", 3.0), long("NVDA", 2.0)]
    await cycle_answering(rig, [])
    assert [r.underlying for r in await chain_requests(rig)] == ["AMD"]
    (d,) = await decisions_about(rig, "NVDA")
    assert d.reason == "max_positions: 1 free slot(s) go to better candidates first"


async def test_entry_cycle_when_chain_empty_rests_symbol_and_asks_no_chain_again(
    rig: Rig,
) -> None:
    rig.books.market.candidates = [long("AMD")]
    await cycle_answering(rig, [], error=NO_CONTRACT_IN_WINDOW)
    await rig.cycles.entry_cycle()  # within the cooldown: no second request
    assert len(await chain_requests(rig)) == 1
    reasons = [d.reason for d in await decisions_about(rig, "AMD")]
    assert reasons[0].startswith(f"no option chain: {NO_CONTRACT_IN_WINDOW}; no new chain for")
    assert len(reasons) == 2 and reasons[1] != reasons[0]  # the rest is said as such


async def test_entry_cycle_when_chain_never_answers_skips_after_timeout(rig: Rig) -> None:
    rig.books.market.candidates = [long("AMD")]
    await asyncio.wait_for(rig.cycles.entry_cycle(), 5)  # the rig's chain timeout: 1 s
    (d,) = await decisions_about(rig, "AMD")
    assert d.outcome is DecisionOutcome.SKIPPED and d.reason.startswith(
        "no option chain: ReplyTimeout"
    )


async def test_entry_cycle_when_chain_quoted_sends_one_sized_entry_and_releases_other_lines(
    rig: Rig,
) -> None:
    rig.books.market.candidates = [long("AMD")]
    rig.books.market.on_quote(quote(ContractRef(symbol="AMD"), 104.99, 105.01))
    rig.books.market.on_quote(quote(AMD_NEAR, 1.00, 1.04, delta=0.44))
    rig.books.market.on_quote(quote(AMD_FAR, 0.20, 0.24, delta=0.12))  # outside the band
    await cycle_answering(rig, [AMD_NEAR, AMD_FAR])
    (order,) = [m for m in await rig.sent() if isinstance(m, OrderNew)]
    assert (order.contract, order.action, order.quantity) == (AMD_NEAR, Action.BUY, 1)
    assert order.limit_price is not None and 1.00 <= order.limit_price <= 1.04
    assert order.reason.startswith("entry long AMD: ")
    (released,) = [c for c in await commands(rig) if isinstance(c, Unsubscribe)]
    assert released.contracts == [AMD_FAR] and released.requester == "strategy"
    (d,) = await decisions_about(rig, "AMD")
    assert d.outcome is DecisionOutcome.TAKEN and d.client_order_id == order.client_order_id


async def test_entry_cycle_when_entry_working_for_symbol_asks_no_second_chain(rig: Rig) -> None:
    rig.books.market.candidates = [long("AMD")]
    rig.books.market.on_quote(quote(AMD_NEAR, 1.00, 1.04, delta=0.44))
    await cycle_answering(rig, [AMD_NEAR])
    await rig.cycles.entry_cycle()
    assert len(await chain_requests(rig)) == 1
    reasons = [d.reason for d in await decisions_about(rig, "AMD")]
    assert reasons[-1] == "an entry order for AMD is working"


async def test_run_when_woken_by_signal_cycles_before_the_interval(rig: Rig) -> None:
    stop = asyncio.Event()
    runner = asyncio.create_task(rig.cycles.run(stop))  # interval 15 s
    await wait_until(lambda: rig.cycles.cycles == 1, timeout=5, what="first cycle")
    rig.cycles.wake.set()
    await wait_until(lambda: rig.cycles.cycles == 2, timeout=5, what="woken cycle")
    stop.set()
    await asyncio.wait_for(runner, 2)
