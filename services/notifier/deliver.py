"""Deliver: sys:alerts (consumer group) to every channel's outbox, exactly once.

``sys:alerts`` is the source of truth; this side decides what becomes a message:
- a one-off event: once per key within ``OPTBOT_ALERT_DEDUP_S``;
- an open condition: once when it opens, then again every ``OPTBOT_ALERT_REPEAT_S``
  while it lasts (the open set is ``notifier:open``, so repeats survive a restart);
- a closed condition: one recovery message, only for a condition that was told open.
A marker (``notifier:seen:*``, SET NX) per decision makes a redelivered entry, or a
second writer of the same condition, a no-op: no duplicate message after a restart.
"""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from services.notifier import text
from services.notifier.channels import Channel, Message
from services.notifier.outbox import ChannelWorker, enqueue
from shared.contract import NOTIFIER_OPEN, notifier_delivery_key, notifier_seen_key
from shared.envelope import Message as Envelope
from shared.logs import get_logger
from shared.redis_text import as_str
from shared.schemas import Alert, AlertState
from shared.settings import Settings

log = get_logger("optbot.notifier.deliver")

CONDITION_MARK_TTL_S = 30 * 86_400


class Deliverer:
    """Turns alerts into queued messages; the channel workers send them."""

    def __init__(
        self, redis: aioredis.Redis, settings: Settings, workers: list[ChannelWorker]
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.workers = workers
        self.queued = 0
        self.suppressed = 0

    @property
    def channels(self) -> list[Channel]:
        return [w.channel for w in self.workers]

    def _marker(self, alert: Alert) -> tuple[str, float]:
        key = alert.alert_key
        if alert.state is AlertState.EVENT:
            return f"event:{key}", self.settings.alert_dedup_s
        return f"{alert.state.value}:{key}:{alert.opened_at:.3f}", CONDITION_MARK_TTL_S

    async def on_alert(self, msg: Envelope[Any]) -> None:
        """Consumer handler for ``sys:alerts``."""
        alert = msg.body
        if not isinstance(alert, Alert):
            return
        if alert.state is AlertState.CLOSED and not await self.redis.hexists(
            NOTIFIER_OPEN, alert.alert_key
        ):
            self._suppress(msg, alert, "closed, never told open")
            return
        marker, ttl = self._marker(alert)
        seen = notifier_seen_key(marker)
        if not await self.redis.set(seen, msg.id, nx=True, ex=max(1, round(ttl))):
            first = await self.redis.get(seen)
            redelivered = first is not None and as_str(first) == msg.id
            if not redelivered or await self.redis.exists(notifier_delivery_key(msg.id)):
                self._suppress(msg, alert, "duplicate")
                return
        await self._queue(msg, alert)

    def _suppress(self, msg: Envelope[Any], alert: Alert, why: str) -> None:
        self.suppressed += 1
        log.info("alert_suppressed", entry=msg.id, key=alert.alert_key, why=why)

    async def _queue(self, msg: Envelope[Any], alert: Alert) -> None:
        now = time.time()
        out = Message(
            entry=msg.id,
            title=text.title(alert),
            body=text.body(alert, now=now),
            kind=text.notify_type(alert),
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            await enqueue(pipe, self.channels, out)
            if alert.state is AlertState.OPEN:
                record = {"entry": msg.id, "last_sent": now, "alert": _alert_json(alert)}
                pipe.hset(NOTIFIER_OPEN, alert.alert_key, json.dumps(record))
            elif alert.state is AlertState.CLOSED:
                pipe.hdel(NOTIFIER_OPEN, alert.alert_key)
            await pipe.execute()
        self.queued += 1
        self._wake()
        log.info(
            "alert_queued",
            entry=msg.id,
            key=alert.alert_key,
            state=alert.state.value,
            severity=alert.severity.value,
            channels=len(self.channels),
        )

    async def _requeue(self, key: Any, out: Message, record: dict[str, Any]) -> bool:
        """Queue a reminder unless the condition closed meanwhile (WATCH)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(NOTIFIER_OPEN)
                if not await pipe.hexists(NOTIFIER_OPEN, key):
                    return False
                pipe.multi()  # type: ignore[no-untyped-call]
                await enqueue(pipe, self.channels, out)
                pipe.hset(NOTIFIER_OPEN, key, json.dumps(record))
                await pipe.execute()
            except WatchError:
                return False
        return True

    def _wake(self) -> None:
        for w in self.workers:
            w.wake.set()

    async def repeat_due(self, now: float) -> int:
        """Queue a reminder for every open condition not sent for ``alert_repeat_s``."""
        raw: Any = await self.redis.hgetall(NOTIFIER_OPEN)
        count = 0
        for key, value in raw.items():
            record = json.loads(value)
            if now - float(record["last_sent"]) < self.settings.alert_repeat_s:
                continue
            alert = msgspec.json.decode(record["alert"].encode(), type=Alert)
            out = Message(
                entry=str(record["entry"]),
                title=text.title(alert, repeat=True),
                body=text.body(alert, now=now, repeat=True),
                kind=text.notify_type(alert),
            )
            record["last_sent"] = now
            if not await self._requeue(key, out, record):
                continue
            count += 1
            log.info("alert_repeated", key=key.decode() if isinstance(key, bytes) else key)
        if count:
            self._wake()
        return count


def _alert_json(alert: Alert) -> str:
    return msgspec.json.encode(alert).decode()
