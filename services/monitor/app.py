"""The FastAPI application: page, static assets, REST API, health and metrics."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from redis.exceptions import RedisError

from services.monitor import models as m
from services.monitor.access import ReadAccess, ReadGuard
from services.monitor.api import Monitor, build_router
from services.monitor.body_limit import BodyLimit
from services.monitor.controls import FailureLimiter
from services.monitor.headers import SecurityHeaders
from services.monitor.login import build_login_router
from services.monitor.metrics import CONTENT_TYPE
from services.monitor.read_system import services as read_services
from services.monitor.read_system import system as read_system
from shared import __version__
from shared.logs import get_logger
from shared.roster import expected_services

log = get_logger("optbot.monitor.app")

STATIC = Path(__file__).parent / "static"


def create_app(mon: Monitor) -> FastAPI:
    """One app per monitor; routes read through ``mon.reader`` and never write, but controls."""
    # FastAPIOffline serves Swagger UI / ReDoc assets from the package, not a CDN,
    # so /docs works on a trading box without internet like the dashboard does.
    app = FastAPIOffline(
        title="optbot monitor",
        version=__version__,
        description="Dashboard, REST API, live updates (SSE) and metrics of optbot.",
    )
    s = mon.ctx.settings
    limiter = FailureLimiter(s.monitor_control_max_failures, s.monitor_control_lockout_s)
    access = ReadAccess(s.monitor_read_token.get_secret_value(), s.control_token.get_secret_value())
    app.include_router(build_router(mon, limiter))
    app.include_router(build_login_router(access, limiter))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Outermost last: headers on every answer, then the read check, then the body cap.
    app.add_middleware(BodyLimit, limit=s.monitor_max_body_bytes)
    app.add_middleware(ReadGuard, access=access, limiter=limiter)
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(RedisError)
    async def redis_down(_request: Request, exc: RedisError) -> JSONResponse:
        log.warning("redis_unreachable", error=str(exc))
        return JSONResponse({"detail": f"Redis unreachable: {type(exc).__name__}"}, 503)

    @app.get("/", include_in_schema=False, response_model=None)
    async def page(request: Request) -> FileResponse | RedirectResponse:
        if access.enabled and not access.allowed(dict(request.scope["headers"])):
            return RedirectResponse("/login", 303)
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @app.get("/healthz", response_model=m.Health, tags=["health"])
    async def healthz() -> m.Health:
        """The process is up and serving (no dependency checked)."""
        return m.Health()

    @app.get(
        "/readyz",
        response_model=m.Readiness,
        tags=["health"],
        responses={503: {"model": m.Readiness, "description": "not ready, with the reasons"}},
    )
    async def readyz(response: Response) -> m.Readiness:
        """Ready when Redis answers and the newest quote is fresh."""
        ready = await mon.reader.readiness()
        if not ready.ready:
            response.status_code = 503
        return ready

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}},
    )
    async def metrics() -> Response:
        """Prometheus metrics; gauges (streams, lag, DLQ, services) refresh per scrape."""
        try:
            services = await read_services(mon.reader.redis, expected_services(mon.ctx.settings))
            mon.metrics.observe_system(await read_system(mon.reader.redis, 0), services)
            mon.metrics.redis_up.set(1)
        except (RedisError, OSError):
            mon.metrics.redis_up.set(0)
        return Response(mon.metrics.render(), media_type=CONTENT_TYPE)

    return app
