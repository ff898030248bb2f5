"""Simulator → gateway adapter → market data over a real Redis.

Bounds stated here: warm signals within 30 s of start (history warm-up, no live bar
needed); a forced regime switch flips sentiment within 90 s on a sped-up market.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from services.tws_simulator.regimes import Regime
from shared.contract.values import CandidatesHash, SentimentHash, decode_fields
from shared.envelope import decode
from shared.settings import load_settings
from tests.helpers import wait_until
from tests.integration.conftest import StartSystem

WARM_BOUND_S = 30.0
FLIP_BOUND_S = 90.0


async def test_start_when_gateway_serves_history_publishes_signals_within_bound(
    start_system: StartSystem, redis: aioredis.Redis
) -> None:
    await start_system(["gateway_adapter", "market_data"], md_eval_interval_s=1.0)
    sentiment = await wait_until(
        lambda: redis.hgetall("md:sentiment"), timeout=WARM_BOUND_S, what="md:sentiment"
    )
    assert sentiment[b"state"] in (b"BULLISH", b"NEUTRAL", b"BEARISH")
    assert b"trend_pct" in sentiment and b"vix" in sentiment
    assert float(sentiment[b"vix"]) > 0
    candidates = await wait_until(
        lambda: _full_list(redis), timeout=WARM_BOUND_S, what="5 candidates"
    )
    watched = set(load_settings().watchlist)
    symbols = [candidates[str(i).encode()].split()[0].decode() for i in range(1, 6)]
    assert len(set(symbols)) == 5 and set(symbols) <= watched and "VIX" not in symbols
    # what market_data wrote decodes with the contract's types the readers use
    assert decode_fields(sentiment, SentimentHash) is not None
    head = decode_fields(candidates, CandidatesHash)
    assert head is not None and [r.symbol for r in head.rows()] == symbols
    live_vix = await redis.hgetall("md:last:VIX")
    assert float(live_vix[b"mark"]) > 0


async def test_regime_switch_when_market_turns_down_flips_sentiment_to_bearish(
    start_system: StartSystem, redis: aioredis.Redis
) -> None:
    system = await start_system(
        ["gateway_adapter", "market_data"],
        sim={
            "tick_interval": 0.1,
            "time_scale": 120.0,
            "initial_regime": "trending_up",
            "regime_period": 0,
        },
        md_watchlist="SPY,QQQ,VIX,AAPL,MSFT,NVDA,AMD,TSLA",
        md_bar_seconds=5,
        md_history_duration="60 S",
        md_eval_interval_s=0.5,
        sent_trend_bars=4,
        sent_sma_bars=3,
        sent_vix_bars=3,
        sent_confirm=2,
        mom_short_bars=1,
        mom_mid_bars=2,
        mom_long_bars=3,
    )
    await wait_until(lambda: _state(redis, b"BULLISH"), timeout=FLIP_BOUND_S, what="BULLISH")
    system.sim.force_regime(Regime.TRENDING_DOWN)
    await wait_until(lambda: _state(redis, b"BEARISH"), timeout=FLIP_BOUND_S, what="BEARISH")
    changes = [decode(f).body for _, f in await redis.xrange("md:signals")]
    states = [c.state.value for c in changes if getattr(c, "TYPE", "") == "sentiment"]
    assert states[-1] == "BEARISH" and "BULLISH" in states


async def _full_list(redis: aioredis.Redis) -> dict[bytes, bytes] | None:
    fields = await redis.hgetall("md:candidates")
    return fields if fields.get(b"count") == b"5" else None


async def _state(redis: aioredis.Redis, state: bytes) -> bool:
    return await redis.hget("md:sentiment", "state") == state
