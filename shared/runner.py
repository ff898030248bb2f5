"""Service runner: one asyncio loop per service, heartbeats, graceful stop.

Every service is ``async def main(ctx: ServiceContext) -> None``. The runner waits
for Redis (reporting while it waits, never crash-looping), publishes the heartbeat
hash ``svc:{name}``, runs the publisher and the consumers the service registers,
and on SIGTERM/SIGINT stops reading, lets the batch in hand finish and be acked,
flushes what is queued and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared import __version__
from shared import clock as trading_clock
from shared.aio import sleep_or_stop
from shared.bus import GroupConsumer, Handler, Publisher
from shared.bus.consumer import ConflateKey
from shared.clock_sync import ClockFollower, ClockHook, Tick, first_tick
from shared.contract import service_key
from shared.logs import configure_logging, get_logger
from shared.redis_auth import connect_as
from shared.settings import ConfigError, Settings

log = get_logger("optbot.runner")


@dataclass
class ServiceContext:
    """What a service gets: settings, Redis, a publisher, a stop event, its tasks."""

    name: str
    instance: str
    settings: Settings
    redis: aioredis.Redis
    publisher: Publisher
    stop: asyncio.Event
    started: float = field(default_factory=time.time)
    state: str = "starting"
    extra: dict[str, str] = field(default_factory=dict)
    heartbeat_key: str = ""  # may change at run time (an active/standby service moves it)
    consumers: list[GroupConsumer] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    # Simulated sessions: awaited on each sys:clock tick before the service settles
    # (the adapter's TWS round trip); see shared/clock_sync.py.
    on_clock_tick: ClockHook | None = None

    def consume(
        self,
        stream: str,
        handler: Handler,
        *,
        group: str | None = None,
        start_id: str = "$",
        conflate: ConflateKey | None = None,
        **overrides: Any,
    ) -> GroupConsumer:
        """Register and start a consumer-group reader; the group defaults to the service."""
        consumer = GroupConsumer(
            self.redis,
            self.settings,
            stream=stream,
            group=group or self.name,
            consumer=self.instance,
            handler=handler,
            start_id=start_id,
            conflate=conflate,
            **overrides,
        )
        self.consumers.append(consumer)
        self.spawn(consumer.run(self.stop), f"consume:{stream}")
        return consumer

    async def consume_after(
        self,
        load: Callable[[], Awaitable[None]],
        stream: str,
        handler: Handler,
        **options: Any,
    ) -> GroupConsumer:
        """``consume``, with ``load`` (the read of the current state) in between the
        creation of the group and the first delivery: a change published while the
        state is read is delivered afterwards instead of being lost before the group
        exists (``shared.bus.latest``)."""
        start_id = options.get("start_id", "$")
        await GroupConsumer(
            self.redis,
            self.settings,
            stream=stream,
            group=options.get("group") or self.name,
            consumer=self.instance,
            handler=handler,
            start_id=start_id,
        ).ensure_group()
        await load()
        return self.consume(stream, handler, **options)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a task owned by the service; its crash stops the service loudly."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self.tasks.append(task)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.error("task_crashed", task=task.get_name(), error=repr(task.exception()))
        self.stop.set()


ServiceMain = Callable[[ServiceContext], Awaitable[None]]


def default_instance(settings: Settings) -> str:
    return settings.instance or f"{socket.gethostname()}-{os.getpid()}"


async def wait_for_redis(redis: aioredis.Redis, stop: asyncio.Event, name: str) -> bool:
    """Ping until Redis answers (True) or stop is requested (False), reporting each miss."""
    delay = 0.2
    attempt = 0
    while not stop.is_set():
        try:
            await redis.ping()
            if attempt:
                log.info("redis_available", service=name, attempts=attempt)
            return True
        except (RedisError, OSError) as exc:
            attempt += 1
            log.warning("redis_unavailable", service=name, attempt=attempt, error=str(exc))
        await sleep_or_stop(stop, delay)
        delay = min(delay * 2, 5.0)
    return False


async def heartbeat_fields(ctx: ServiceContext) -> dict[str, str]:
    lag = 0
    for consumer in ctx.consumers:
        with contextlib.suppress(RedisError):
            lag += await consumer.lag()
    last_loop = max([c.last_loop for c in ctx.consumers] or [time.time()])
    return {
        "name": ctx.name,
        "instance": ctx.instance,
        "pid": str(os.getpid()),
        "host": socket.gethostname(),
        "version": __version__,
        "started": f"{ctx.started:.3f}",
        "heartbeat": f"{time.time():.3f}",
        "last_loop": f"{last_loop:.3f}",
        "lag": str(lag),
        "state": ctx.state,
        "published": str(ctx.publisher.published),
        "handled": str(sum(c.handled for c in ctx.consumers)),
        "dead_lettered": str(sum(c.dead_lettered for c in ctx.consumers)),
        **ctx.extra,
    }


async def heartbeat_loop(ctx: ServiceContext, key: str) -> None:
    """Refresh ``svc:{name}`` every interval; it expires if the service dies."""
    ttl_ms = int(ctx.settings.heartbeat_ttl_s * 1000)
    written = ""
    while not ctx.stop.is_set():
        try:
            fields = await heartbeat_fields(ctx)
            current = ctx.heartbeat_key or key
            async with ctx.redis.pipeline(transaction=True) as pipe:
                if written and written != current:
                    pipe.delete(written)
                pipe.hset(current, mapping=fields)  # type: ignore[arg-type]
                pipe.pexpire(current, ttl_ms)
                await pipe.execute()
            written = current
        except RedisError as exc:
            log.warning("heartbeat_failed", error=str(exc))
        await sleep_or_stop(ctx.stop, ctx.settings.heartbeat_interval_s)


def _install_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def _shutdown(ctx: ServiceContext, key: str, grace_s: float) -> None:
    """Let consumers finish their batch, flush, drop the heartbeat, close."""
    pending = [t for t in ctx.tasks if not t.done()]
    if pending:
        _done, still = await asyncio.wait(pending, timeout=grace_s)
        for task in still:
            task.cancel()
        await asyncio.gather(*still, return_exceptions=True)
    with contextlib.suppress(RedisError):
        await ctx.publisher.flush()
    with contextlib.suppress(RedisError):
        await ctx.redis.delete(ctx.heartbeat_key or key)
    await ctx.redis.aclose()


async def run_service(
    name: str,
    main: ServiceMain,
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    heartbeat_key: str | None = None,
) -> int:
    """Run one service until stopped; 0 on a clean stop, 1 when it failed."""
    configure_logging(settings.log_level, settings.log_format.value, service=name)
    stop = stop or asyncio.Event()
    _install_signals(stop)
    socket_timeout = settings.consume_block_ms / 1000.0 + 10.0
    try:
        redis = connect_as(settings, name, socket_timeout=socket_timeout)
    except ConfigError as exc:
        log.error("service_config_invalid", error=str(exc))
        return 2
    instance = default_instance(settings)
    log.info("service_starting", instance=instance, version=__version__, pid=os.getpid())
    if not await wait_for_redis(redis, stop, name):
        await redis.aclose()
        return 0
    sim: trading_clock.SimClock | None = None
    first: Tick | None = None
    if settings.clock == "sim":
        first = await first_tick(redis, stop)
        if first is None:  # stopped before the first tick
            await redis.aclose()
            return 0
        sim = trading_clock.SimClock(first[1].t)
        previous = trading_clock.current()
        trading_clock.install(sim)
        log.info("clock_simulated", start=first[1].t, seq=first[1].seq)
    ctx = ServiceContext(
        name=name,
        instance=instance,
        settings=settings,
        redis=redis,
        publisher=Publisher(redis, settings, src=f"{name}/{instance}"),
        stop=stop,
    )
    key = heartbeat_key or service_key(name)
    ctx.heartbeat_key = key
    ctx.spawn(ctx.publisher.run(stop), "publisher")
    ctx.spawn(heartbeat_loop(ctx, key), "heartbeat")
    ctx.state = "running"
    code = 0
    try:
        await main(ctx)
        if sim is not None and first is not None:
            follower = ClockFollower(redis, name, sim, ctx.publisher, lambda: ctx.on_clock_tick)
            ctx.spawn(follower.run(first, stop), "clock")
        await stop.wait()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("service_failed", error=repr(exc))
        code = 1
    finally:
        stop.set()
        ctx.state = "stopping"
        await _shutdown(ctx, key, grace_s=settings.consume_block_ms / 1000.0 + 5.0)
        if sim is not None:
            trading_clock.install(previous)  # in-process runs (tests) get their clock back
        log.info("service_stopped", code=code)
    if any(t.cancelled() is False and t.exception() is not None for t in ctx.tasks if t.done()):
        code = 1
    return code
