"""Per-channel outboxes in Redis, each drained by its own worker.

A message is queued (``RPUSH notifier:outbox:{channel}``) before anything is sent,
and removed only after the channel accepted it, so a notifier restart neither loses
nor repeats it. A failing channel retries its oldest message with doubling waits
and never holds up the other channels. Each channel's health is a JSON field of
``notifier:channels``, read by the dashboard and ``optbot status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.notifier.channels import Channel, Message
from shared.aio import sleep_or_stop, wait_any
from shared.contract import NOTIFIER_CHANNELS, notifier_delivery_key, notifier_outbox_key
from shared.logs import get_logger

log = get_logger("optbot.notifier.outbox")

OUTBOX_CAP = 1000  # oldest dropped beyond this; the alerts stay on sys:alerts
DELIVERY_TTL_S = 7 * 86_400
RETRY_MIN_S = 1.0
IDLE_POLL_S = 1.0


@dataclass
class Health:
    """What the page and ``optbot status`` show per channel."""

    state: str = "idle"  # ok, failing, invalid, idle
    sent: int = 0
    failures: int = 0
    attempts: int = 0  # consecutive failed attempts of the head message
    last_ok: float = 0.0
    last_error: str = ""
    next_try: float = 0.0
    queued: int = 0


class RateLimit:
    """At most ``per_min`` sends in any 60 s: a burst waits instead of being dropped."""

    def __init__(self, per_min: int) -> None:
        self.per_min = per_min
        self._sent: deque[float] = deque()

    def wait_s(self, now: float) -> float:
        while self._sent and now - self._sent[0] >= 60.0:
            self._sent.popleft()
        return 0.0 if len(self._sent) < self.per_min else 60.0 - (now - self._sent[0])

    def record(self, now: float) -> None:
        self._sent.append(now)


async def enqueue(pipe: aioredis.client.Pipeline, channels: list[Channel], msg: Message) -> None:
    """Queue ``msg`` on every channel (in the caller's MULTI) and mark it queued."""
    payload = json.dumps(asdict(msg))
    key = notifier_delivery_key(msg.entry)
    for ch in channels:
        pipe.rpush(notifier_outbox_key(ch.id), payload)
        pipe.ltrim(notifier_outbox_key(ch.id), -OUTBOX_CAP, -1)
        pipe.hset(key, ch.id, "queued")
    if channels:
        pipe.expire(key, DELIVERY_TTL_S)


class ChannelWorker:
    """Sends one channel's outbox in order, with rate limit and retry backoff."""

    def __init__(
        self,
        redis: aioredis.Redis,
        channel: Channel,
        *,
        rate_per_min: int,
        retry_max_s: float,
    ) -> None:
        self.redis = redis
        self.channel = channel
        self.rate = RateLimit(rate_per_min)
        self.retry_max_s = retry_max_s
        self.wake = asyncio.Event()  # set when a message is queued
        self.health = Health(state="idle" if channel.valid else "invalid")
        self.outbox = notifier_outbox_key(channel.id)

    async def load(self) -> None:
        """Keep the counters of the previous run (sent, failures) across a restart."""
        raw = await self.redis.hget(NOTIFIER_CHANNELS, self.channel.id)
        if raw:
            old = json.loads(raw)
            self.health.sent = int(old.get("sent", 0))
            self.health.failures = int(old.get("failures", 0))
            self.health.last_ok = float(old.get("last_ok", 0.0))
        await self._save()

    async def _save(self) -> None:
        self.health.queued = int(await self.redis.llen(self.outbox))
        await self.redis.hset(NOTIFIER_CHANNELS, self.channel.id, json.dumps(asdict(self.health)))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                delay = await self.step()
            except RedisError as exc:
                log.warning("outbox_redis_error", channel=self.channel.id, error=str(exc))
                delay = IDLE_POLL_S
            if delay > 0:
                await self._pause(stop, delay)

    async def _pause(self, stop: asyncio.Event, delay: float) -> None:
        """Sleep ``delay`` s, or less when new work is queued (unless backing off)."""
        if self.health.attempts:
            await sleep_or_stop(stop, delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wait_any(stop, self.wake), delay)
        self.wake.clear()

    async def step(self) -> float:
        """Try the head of the outbox once; the seconds to wait before the next step."""
        raw = await self.redis.lindex(self.outbox, 0)
        if raw is None:
            return IDLE_POLL_S
        wait = self.rate.wait_s(time.time())
        if wait > 0:
            return wait
        msg = Message(**json.loads(raw))
        error = await self.channel.send(msg)
        now = time.time()
        self.rate.record(now)
        delivery = notifier_delivery_key(msg.entry)
        if not error:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.lpop(self.outbox)
                pipe.hset(delivery, self.channel.id, "sent")
                await pipe.execute()
            h = self.health
            h.state, h.sent, h.attempts, h.last_ok, h.next_try = "ok", h.sent + 1, 0, now, 0.0
            log.info("alert_sent", channel=self.channel.id, entry=msg.entry, title=msg.title)
            await self._save()
            return 0.0
        return await self._failed(msg, delivery, error, now)

    async def _failed(self, msg: Message, delivery: str, error: str, now: float) -> float:
        h = self.health
        h.attempts += 1
        h.failures += 1
        h.state = "invalid" if not self.channel.valid else "failing"
        h.last_error = error
        backoff = float(min(self.retry_max_s, RETRY_MIN_S * 2.0 ** min(h.attempts - 1, 20)))
        h.next_try = now + backoff
        await self.redis.hset(delivery, self.channel.id, f"retrying ({h.attempts}): {error}")
        log.warning(
            "alert_send_failed",
            channel=self.channel.id,
            entry=msg.entry,
            attempt=h.attempts,
            retry_in_s=round(backoff, 1),
            error=error,
        )
        await self._save()
        return backoff
