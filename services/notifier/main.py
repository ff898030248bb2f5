"""notifier service: watch (streams to sys:alerts) and deliver (sys:alerts to channels).

Both halves run in one process but meet only on ``sys:alerts``: whatever writes an
alert (this watcher, the strategy's reconcile, the dashboard's test button) gets it
delivered the same way. Without ``OPTBOT_ALERT_URLS`` the watcher still writes
alerts (the dashboard shows them) and the heartbeat says no channel is configured.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from redis.exceptions import RedisError

from services.notifier import summary
from services.notifier.channels import parse_urls
from services.notifier.conditions import Conditions
from services.notifier.deliver import Deliverer
from services.notifier.outbox import ChannelWorker
from services.notifier.watch import Watcher
from shared.aio import sleep_or_stop
from shared.contract import GW_STATUS, ORDERS_EVENTS, SYS_ALERTS, SYS_CONTROL
from shared.logs import get_logger
from shared.runner import ServiceContext
from shared.schemas import Alert, Control, GatewayStatus, IbError, OrderEvent, RiskStateChange

log = get_logger("optbot.notifier")

FIRST_START_LOOKBACK_S = 600  # a new group delivers alerts up to this old, not all history


def first_start_id(now: float) -> str:
    return f"{int((now - FIRST_START_LOOKBACK_S) * 1000)}-0"


async def _tick_loop(
    ctx: ServiceContext, watcher: Watcher, deliverer: Deliverer, conditions: Conditions
) -> None:
    s = ctx.settings
    while not ctx.stop.is_set():
        try:
            now = time.time()
            await watcher.tick(now)
            await deliverer.repeat_due(now)
            await summary.maybe_send(conditions, datetime.now(UTC), s.alert_summary_at)
        except RedisError as exc:  # Redis away: the next tick tries again
            log.warning("watch_failed", error=str(exc))
        _heartbeat(ctx, deliverer, conditions)
        await sleep_or_stop(ctx.stop, s.alert_watch_interval_s)


def _heartbeat(ctx: ServiceContext, deliverer: Deliverer, conditions: Conditions) -> None:
    failing = [w.channel.id for w in deliverer.workers if w.health.state in ("failing", "invalid")]
    ctx.extra.update(
        channels=str(len(deliverer.workers)),
        channels_failing=",".join(failing),
        queued=str(deliverer.queued),
        sent=str(sum(w.health.sent for w in deliverer.workers)),
        open_conditions=str(len(conditions.open)),
    )


async def main(ctx: ServiceContext) -> None:
    """Entry point for ``optbot run notifier``."""
    s = ctx.settings
    channels = parse_urls(s.alert_urls.get_secret_value(), s.alert_send_timeout_s)
    workers = [
        ChannelWorker(
            ctx.redis, ch, rate_per_min=s.alert_rate_per_min, retry_max_s=s.alert_retry_max_s
        )
        for ch in channels
    ]
    for w in workers:
        await w.load()
    conditions = Conditions(ctx.redis, s, src=f"notifier/{ctx.instance}")
    await conditions.load()
    watcher = Watcher(ctx.redis, s, conditions)
    deliverer = Deliverer(ctx.redis, s, workers)
    log.info(
        "notifier_channels", channels=[c.id for c in channels], valid=[c.valid for c in channels]
    )
    # A new group starts a little in the past: a gateway already down, a halt or an
    # alert written just before the first start are seen (later starts resume the group).
    start = first_start_id(time.time())
    ctx.consume(GW_STATUS, watcher.on_status, accept=(GatewayStatus, IbError), start_id=start)
    ctx.consume(SYS_CONTROL, watcher.on_control, accept=(Control, RiskStateChange), start_id=start)
    ctx.consume(ORDERS_EVENTS, watcher.on_order_event, accept=(OrderEvent,), start_id=start)
    ctx.consume(SYS_ALERTS, deliverer.on_alert, accept=(Alert,), start_id=start)
    for w in workers:
        ctx.spawn(w.run(ctx.stop), f"channel:{w.channel.id}")
    ctx.spawn(_tick_loop(ctx, watcher, deliverer, conditions), "watch")
    _heartbeat(ctx, deliverer, conditions)
