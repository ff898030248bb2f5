"""monitor service: uvicorn inside the service's own asyncio loop.

The server runs as a task of the service and stops when ``ctx.stop`` is set; the
runner owns the signals (uvicorn's handlers are not installed), so SIGTERM stops
the page, the live hub and the heartbeat the same way as every other service.
The bound address goes into the heartbeat (``url``), which is how a test started
on port 0 finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn

from services.monitor.api import Monitor
from services.monitor.app import create_app
from services.monitor.live import LiveHub
from services.monitor.metrics import MonitorMetrics
from services.monitor.reader import Reader
from shared.logs import get_logger
from shared.runner import ServiceContext

log = get_logger("optbot.monitor")

GRACEFUL_S = 3


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the service runner handles signals."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


def build(ctx: ServiceContext) -> Monitor:
    metrics = MonitorMetrics()
    reader = Reader(ctx.redis, ctx.settings)
    return Monitor(ctx=ctx, reader=reader, hub=LiveHub(reader, metrics), metrics=metrics)


async def serve(ctx: ServiceContext, server: uvicorn.Server) -> None:
    """Run uvicorn until ``ctx.stop``; a failed bind stops the service loudly."""
    task = asyncio.create_task(_serve_guarded(server), name="uvicorn")
    waiter = asyncio.create_task(ctx.stop.wait())
    try:
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            if not server.started:
                raise RuntimeError("the dashboard could not bind its address (see the log)")
            return
        server.should_exit = True
        await task
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()


async def _serve_guarded(server: uvicorn.Server) -> None:
    """uvicorn calls ``sys.exit`` when it cannot bind; make that an ordinary failure."""
    try:
        await server.serve()
    except SystemExit as exc:
        raise RuntimeError(f"uvicorn exited with {exc.code} (address in use?)") from exc


async def _announce(ctx: ServiceContext, server: _Server) -> None:
    """Put the bound URL into the heartbeat once uvicorn listens."""
    await server.listening.wait()
    if server.servers:
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        ctx.extra.update(url=f"http://{host}:{port}", port=str(port))
        log.info("dashboard_listening", url=f"http://{host}:{port}")


async def main(ctx: ServiceContext) -> None:
    """Entry point for ``optbot run monitor``."""
    mon = build(ctx)
    s = ctx.settings
    config = uvicorn.Config(
        create_app(mon),
        host=s.monitor_host,
        port=s.monitor_port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_S,
        # X-Forwarded-For/-Proto believed only from the configured reverse proxies;
        # uvicorn's default would trust them from loopback (any local process).
        proxy_headers=bool(s.monitor_trusted_proxies),
        forwarded_allow_ips=s.monitor_trusted_proxies.split(",")
        if s.monitor_trusted_proxies
        else [],
    )
    server = _Server(config)
    ctx.spawn(mon.hub.run(ctx.stop), "live")
    ctx.spawn(serve(ctx, server), "http")
    ctx.spawn(_announce(ctx, server), "announce")
