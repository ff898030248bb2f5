"""The Redis lease that makes exactly one adapter the IB client.

IB allows one connection per client id; two adapters racing for it was the old
system's "client id already in use" failure. The owner holds ``gw:lease:{host}:
{port}:{client_id}`` (``SET NX PX``) and renews it with a compare-and-set script,
so an owner whose lease already lapsed can never extend the new owner's lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.logs import get_logger

log = get_logger("optbot.gateway_adapter.lease")

# KEYS[1] lease key, ARGV[1] our token, ARGV[2] ttl ms: extend only our own lease.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Lease:
    """One holder's view of the lease: acquire, keep renewed, release."""

    def __init__(self, redis: aioredis.Redis, key: str, owner: str, ttl_ms: int) -> None:
        self.key = key
        self.owner = owner
        self.token = f"{owner}/{uuid.uuid4().hex[:8]}"
        self.ttl_ms = ttl_ms
        self._redis = redis
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._valid_until = 0.0  # monotonic: when our last confirmed lease runs out
        self.holder = ""  # who holds it when we do not (for status)

    @property
    def held(self) -> bool:
        """True while our last confirmed grant has not run out (with a safety margin)."""
        return time.monotonic() < self._valid_until

    def _granted(self, started: float) -> None:
        # Count from before the request: the server may have set it a bit later.
        self._valid_until = started + self.ttl_ms / 1000.0 * 0.9

    async def try_acquire(self) -> bool:
        started = time.monotonic()
        try:
            ok = await self._redis.set(self.key, self.token, nx=True, px=self.ttl_ms)
            if ok:
                self._granted(started)
                self.holder = self.owner
                return True
            raw = await self._redis.get(self.key)
        except RedisError as exc:
            log.warning("lease_acquire_failed", key=self.key, error=str(exc))
            return False
        self.holder = raw.decode(errors="replace") if isinstance(raw, bytes) else ""
        return False

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Poll until we hold the lease (True) or ``stop`` is set (False)."""
        interval = self.ttl_ms / 3000.0
        while not stop.is_set():
            if await self.try_acquire():
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
        return False

    async def renew(self) -> bool:
        started = time.monotonic()
        try:
            ok = await self._renew(keys=[self.key], args=[self.token, self.ttl_ms])
        except RedisError as exc:
            log.warning("lease_renew_failed", key=self.key, error=str(exc))
            return self.held  # keep going while the last grant is still valid
        if ok:
            self._granted(started)
            return True
        self._valid_until = 0.0
        return False

    async def keep(self, stop: asyncio.Event, on_lost: Callable[[str], None]) -> None:
        """Renew every ttl/3 until ``stop``; call ``on_lost`` the moment it is gone."""
        interval = self.ttl_ms / 3000.0
        while not stop.is_set():
            # Never sleep past our grant: a failing Redis must end our term in time.
            wait = min(interval, max(0.0, self._valid_until - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            if stop.is_set():
                return
            if not await self.renew():
                on_lost("lease lost (taken over or expired)")
                return

    async def release(self) -> None:
        self._valid_until = 0.0
        try:
            await self._release(keys=[self.key], args=[self.token])
        except RedisError as exc:
            log.warning("lease_release_failed", key=self.key, error=str(exc))
