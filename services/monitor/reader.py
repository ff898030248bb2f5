"""Redis reads turned into response models: one facade for the API and the live hub."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.exceptions import RedisError

from services.monitor import models as m
from services.monitor import read_market, read_system, read_trading
from services.monitor.read_performance import PerformanceReader
from shared import __version__
from shared.roster import expected_services
from shared.settings import Settings

# Panels of the dashboard; each is pushed as one SSE event with the REST body.
PANELS = (
    "status",
    "quotes",
    "market",
    "orders",
    "account",
    "performance",
    "decisions",
    "system",
)
LOG_ROWS = 50  # rows in the page's logs (orders, fills, decisions, DLQ, errors)
EQUITY_POINTS = 300


class Reader:
    """Reads what the services write; never writes anything."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.performance = PerformanceReader(redis)
        self.quote_keys = list(dict.fromkeys([*read_market.INDEX_KEYS, *settings.watchlist]))
        self._panels: dict[str, Callable[[], Awaitable[BaseModel]]] = {
            "status": self.status,
            "quotes": self.quotes,
            "market": self.market,
            "orders": lambda: read_trading.orders(self.redis, LOG_ROWS),
            "account": lambda: read_trading.account(self.redis, EQUITY_POINTS),
            "performance": self.performance.today,
            "decisions": lambda: read_trading.decisions(self.redis, LOG_ROWS),
            "system": lambda: read_system.system(self.redis, LOG_ROWS),
        }

    @property
    def controls_enabled(self) -> bool:
        return bool(self.settings.control_token.get_secret_value())

    async def panel(self, name: str) -> BaseModel:
        return await self._panels[name]()

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

    async def quotes(self, keys: list[str] | None = None) -> m.Quotes:
        return await read_market.quotes(
            self.redis, keys or self.quote_keys, self.settings.md_stale_s
        )

    async def market(self) -> m.Market:
        return m.Market(
            sentiment=await read_market.sentiment(self.redis),
            candidates=await read_market.candidates(self.redis),
        )

    async def bars(self, symbol: str, limit: int) -> m.Bars:
        return await read_market.bars(self.redis, symbol, limit, self.settings.md_stale_s)

    async def status(self) -> m.Status:
        return m.Status(
            now=time.time(),
            mode=self.settings.mode.value,
            version=__version__,
            redis=True,
            controls_enabled=self.controls_enabled,
            gateway=await read_system.gateway(self.redis),
            risk=await read_system.risk(self.redis),
            services=await read_system.services(self.redis, expected_services(self.settings)),
        )

    async def readiness(self) -> m.Readiness:
        if not await self.ping():
            return m.Readiness(ready=False, redis=False, reasons=["Redis unreachable"])
        age = await read_system.newest_tick_age(self.redis)
        limit = self.settings.monitor_ready_stale_s
        reasons = []
        if age is None:
            reasons.append("no quotes on md:ticks yet")
        elif age > limit:
            reasons.append(f"newest quote is {age:.0f}s old (limit {limit:g}s)")
        return m.Readiness(ready=not reasons, redis=True, quote_age_s=age, reasons=reasons)
