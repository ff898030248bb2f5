"""REST routes under ``/api``: everything the page shows, typed for ``/openapi.json``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from sse_starlette import EventSourceResponse

from services.monitor import models as m
from services.monitor import read_market, read_system, read_trading
from services.monitor.alerts import alert_routes
from services.monitor.controls import FailureLimiter, authorize, perform
from services.monitor.live import LiveHub
from services.monitor.metrics import MonitorMetrics
from services.monitor.reader import Reader
from shared.logs import get_logger
from shared.runner import ServiceContext
from shared.schemas import ControlAction

_KEY = r"[A-Za-z0-9.]{1,12}( [0-9]{8} [0-9.]{1,10} [CP])?"
KEY = f"^{_KEY}$"  # SPY, or AAPL 20261218 250 C
KEYS = f"^{_KEY}(,{_KEY}){{0,99}}$"  # up to 100, comma separated
SYMBOL = r"^[A-Za-z0-9.]{1,12}$"

log = get_logger("optbot.monitor.api")

Limit = Annotated[int, Query(ge=1, le=500, description="rows to return")]

_PROBLEM: dict[int | str, dict[str, Any]] = {
    503: {"model": m.Problem, "description": "Redis unreachable"},
}
_CONTROL_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": m.Problem, "description": "the body is not JSON"},
    401: {"model": m.Problem, "description": "missing or wrong Bearer token"},
    403: {"model": m.Problem, "description": "controls disabled (no OPTBOT_CONTROL_TOKEN)"},
    429: {"model": m.Problem, "description": "too many failed attempts from this client"},
    503: {"model": m.Problem, "description": "Redis unreachable, or the strategy not running"},
    504: {"model": m.Problem, "description": "the strategy did not apply it in time"},
}


Handler = Callable[..., Awaitable[m.ControlResult]]


@dataclass
class Monitor:
    """What the routes need: the service context, the reader, the hub, the metrics."""

    ctx: ServiceContext
    reader: Reader
    hub: LiveHub
    metrics: MonitorMetrics


def _keys(raw: str | None) -> list[str] | None:
    """Validated by the ``KEYS`` pattern already; de-duplicated, order kept."""
    return list(dict.fromkeys(raw.split(","))) if raw else None


def build_router(mon: Monitor, limiter: FailureLimiter) -> APIRouter:  # noqa: C901 - one small closure per route
    """All ``/api`` routes, bound to one monitor; ``limiter``: the failed-token lockout."""
    api = APIRouter(prefix="/api", responses=_PROBLEM)
    reader, redis = mon.reader, mon.reader.redis

    @api.get("/status", response_model=m.Status, tags=["system"])
    async def status() -> m.Status:
        """Header: mode, gateway connection, services and risk state."""
        return await reader.status()

    @api.get("/quotes", response_model=m.Quotes, tags=["market"])
    async def quotes(
        keys: Annotated[
            str | None,
            Query(
                pattern=KEYS,
                description="comma-separated contract keys (default: indexes and watchlist)",
            ),
        ] = None,
    ) -> m.Quotes:
        """Latest quotes; missing values are null, never -1."""
        return await reader.quotes(_keys(keys))

    @api.get(
        "/quotes/{key}",
        response_model=m.Quote,
        tags=["market"],
        responses={404: {"model": m.Problem, "description": "no quote for this key"}},
    )
    async def quote(key: Annotated[str, Path(pattern=KEY)]) -> m.Quote:
        """One contract's latest quote (404 when none was ever published)."""
        q = (await reader.quotes([key])).quotes[0]
        if q.updated is None:
            raise HTTPException(404, f"no quote for {key!r}")
        return q

    @api.get("/bars/{symbol}", response_model=m.Bars, tags=["market"])
    async def bars(
        symbol: Annotated[str, Path(pattern=SYMBOL)],
        limit: Annotated[int, Query(ge=1, le=5000)] = 390,
    ) -> m.Bars:
        """Bars of ``md:bars:{SYMBOL}`` (oldest first) plus the latest quote."""
        return await reader.bars(symbol.upper(), limit)

    @api.get("/market", response_model=m.Market, tags=["market"])
    async def market() -> m.Market:
        """Sentiment and momentum candidates together."""
        return await reader.market()

    @api.get("/sentiment", response_model=m.Sentiment, tags=["market"])
    async def sentiment() -> m.Sentiment:
        """Market sentiment with the inputs behind it."""
        return await read_market.sentiment(redis)

    @api.get("/candidates", response_model=m.Candidates, tags=["market"])
    async def candidates() -> m.Candidates:
        """Momentum candidates with scores, and why others were excluded."""
        return await read_market.candidates(redis)

    @api.get("/orders", response_model=m.Orders, tags=["trading"])
    async def orders(limit: Limit = 50) -> m.Orders:
        """Order requests, order events and fills, newest first."""
        return await read_trading.orders(redis, limit)

    @api.get("/account", response_model=m.Account, tags=["trading"])
    async def account() -> m.Account:
        """Latest account snapshot, positions with marks and greeks, equity curve."""
        return await read_trading.account(redis, 300)

    @api.get("/positions", response_model=list[m.Position], tags=["trading"])
    async def positions() -> list[m.Position]:
        """Open positions with marks, greeks and unrealized P&L."""
        return (await read_trading.account(redis, 1)).positions

    @api.get("/performance", response_model=m.Performance, tags=["trading"])
    async def performance() -> m.Performance:
        """Today's round trips, win rate, realized P&L and drawdown (New York day), from
        the fills on orders:events: the same code as the backtest report."""
        return await reader.performance.today()

    @api.get("/decisions", response_model=m.Decisions, tags=["trading"])
    async def decisions(limit: Limit = 50) -> m.Decisions:
        """Strategy decisions (taken and skipped, with reasons), newest first."""
        return await read_trading.decisions(redis, limit)

    @api.get("/streams", response_model=list[m.StreamInfo], tags=["system"])
    async def streams() -> list[m.StreamInfo]:
        """Every stream: length, consumer groups, pending entries, lag."""
        return await read_system.streams(redis)

    @api.get("/dlq", response_model=m.DeadLetters, tags=["system"])
    async def dlq(limit: Limit = 20) -> m.DeadLetters:
        """Dead-letter count and the newest entries with their reasons."""
        return await read_system.dead_letters(redis, limit)

    @api.get("/ib-errors", response_model=list[m.IbError], tags=["system"])
    async def ib_errors(limit: Limit = 50) -> list[m.IbError]:
        """IB errors and warnings (and the adapter's own refusals), newest first."""
        return await read_system.ib_errors(redis, limit)

    @api.get("/system", response_model=m.System, tags=["system"])
    async def system(limit: Limit = 20) -> m.System:
        """Streams, dead letters and IB errors in one body."""
        return await read_system.system(redis, limit)

    @api.get(
        "/events",
        tags=["live"],
        response_class=EventSourceResponse,
        responses={
            200: {
                "content": {"text/event-stream": {}},
                "description": "SSE: hello, connection, bars and one event per panel",
            },
            503: {"model": m.Problem, "description": "too many live clients"},
        },
    )
    async def events(request: Request) -> EventSourceResponse:
        """Server-Sent Events: each panel's REST body when it changes (≤ push rate)."""
        cap = mon.ctx.settings.monitor_sse_max_clients
        if len(mon.hub.clients) >= cap:
            who = request.client.host if request.client else "unknown"
            log.warning("sse_refused", client=who, clients=len(mon.hub.clients), cap=cap)
            raise HTTPException(
                503,
                f"too many live-update clients ({cap}, OPTBOT_MONITOR_SSE_MAX_CLIENTS); "
                "close another dashboard tab or try again later",
                headers={"Retry-After": "10"},
            )
        client = mon.hub.subscribe()

        async def gen() -> Any:
            try:
                async for event in mon.hub.stream(client):
                    yield event
            finally:
                mon.hub.unsubscribe(client)

        return EventSourceResponse(gen(), ping=10, send_timeout=30)

    alert_routes(api, redis, mon.ctx, mon.metrics, limiter)
    _control_routes(api, mon, limiter)
    return api


def _control_routes(api: APIRouter, mon: Monitor, limiter: FailureLimiter) -> None:
    token = mon.ctx.settings.control_token.get_secret_value()

    def guard(action: ControlAction) -> Any:
        """Auth runs as a dependency, so a bad token is refused before the body is read."""

        def check(request: Request) -> None:
            authorize(request, action, token, mon.metrics, limiter)

        return Depends(check)

    async def act(
        request: Request, action: ControlAction, body: m.ControlRequest, target: str = ""
    ) -> m.ControlResult:
        result = await perform(mon.ctx, request, action, body, mon.metrics, target)
        mon.hub.mark("status")
        return result

    def route(action: ControlAction) -> Callable[[Handler], Handler]:
        return api.post(
            f"/control/{action.value}",
            response_model=m.ControlResult,
            tags=["control"],
            responses=_CONTROL_ERRORS,
            dependencies=[guard(action)],
        )

    @route(ControlAction.HALT)
    async def halt(request: Request, body: m.ControlRequest | None = None) -> m.ControlResult:
        """Stop all new orders (risk state HALTED)."""
        return await act(request, ControlAction.HALT, body or m.ControlRequest())

    @route(ControlAction.REDUCE)
    async def reduce(request: Request, body: m.ControlRequest | None = None) -> m.ControlResult:
        """Only exits and risk-reducing orders (risk state REDUCING)."""
        return await act(request, ControlAction.REDUCE, body or m.ControlRequest())

    @route(ControlAction.RESUME)
    async def resume(request: Request, body: m.ControlRequest | None = None) -> m.ControlResult:
        """Allow trading again (risk state ACTIVE)."""
        return await act(request, ControlAction.RESUME, body or m.ControlRequest())

    @route(ControlAction.FLATTEN)
    async def flatten(request: Request, body: m.FlattenRequest) -> m.ControlResult:
        """Ask the strategy to close one position (``target``: its contract key)."""
        return await act(request, ControlAction.FLATTEN, body, body.target)
