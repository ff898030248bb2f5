"""The watcher's open conditions, kept in Redis so a restart neither forgets nor repeats.

Each open/close/event is one ``Alert`` on ``sys:alerts``, written in the same MULTI
as the change to ``notifier:watch``: the stream and the watcher's memory never
disagree, and an alert opened before a restart is closed (not reopened) after it.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis.asyncio as aioredis

from services.notifier.text import duration
from shared.contract import NOTIFIER_WATCH, SYS_ALERTS
from shared.envelope import encode
from shared.schemas import Alert, AlertSeverity, AlertState
from shared.settings import Settings

STATE_PREFIX = "_"  # fields of notifier:watch that are timers/state, not open alerts


class Conditions:
    """Open conditions by key (value: when it opened); writes every change as an Alert."""

    def __init__(self, redis: aioredis.Redis, settings: Settings, src: str) -> None:
        self.redis = redis
        self.settings = settings
        self.src = src
        self.open: dict[str, float] = {}
        self.state: dict[str, Any] = {}
        self.written = 0

    async def load(self) -> None:
        raw: Any = await self.redis.hgetall(NOTIFIER_WATCH)
        for k, v in raw.items():
            name = k.decode()
            if name.startswith(STATE_PREFIX):
                self.state[name[1:]] = json.loads(v)
            else:
                self.open[name] = float(json.loads(v)["opened_at"])

    async def remember(self, name: str, value: Any) -> None:
        """Persist a timer or flag (``None`` forgets it)."""
        if value is None:
            self.state.pop(name, None)
            await self.redis.hdel(NOTIFIER_WATCH, STATE_PREFIX + name)
        else:
            self.state[name] = value
            await self.redis.hset(NOTIFIER_WATCH, STATE_PREFIX + name, json.dumps(value))

    async def open_alert(
        self,
        key: str,
        code: str,
        severity: AlertSeverity,
        message: str,
        *,
        opened_at: float | None = None,
        details: dict[str, str] | None = None,
        replace: bool = False,
    ) -> bool:
        """Open ``key`` unless it already is (``replace``: reopen it with the new text)."""
        if key in self.open and not replace:
            return False
        at = opened_at or time.time()
        alert = Alert(
            code=code, severity=severity, message=message[:4096], source="notifier",
            details=details or {}, key=key, state=AlertState.OPEN, opened_at=at,
        )  # fmt: skip
        self.open[key] = at
        await self._write(alert, json.dumps({"opened_at": at, "code": code}))
        return True

    async def close_alert(self, key: str, code: str, message: str) -> bool:
        """Close ``key`` if open; ``{duration}`` in ``message`` becomes how long it lasted."""
        at = self.open.pop(key, None)
        if at is None:
            return False
        alert = Alert(
            code=code, severity=AlertSeverity.INFO,
            message=message.replace("{duration}", duration(time.time() - at))[:4096],
            source="notifier", key=key, state=AlertState.CLOSED, opened_at=at,
        )  # fmt: skip
        await self._write(alert, None)
        return True

    async def event(
        self,
        key: str,
        code: str,
        severity: AlertSeverity,
        message: str,
        details: dict[str, str] | None = None,
    ) -> None:
        alert = Alert(
            code=code, severity=severity, message=message[:4096], source="notifier",
            details=details or {}, key=key, state=AlertState.EVENT,
        )  # fmt: skip
        await self._write(alert, None, keep=False)

    async def _write(self, alert: Alert, record: str | None, keep: bool = True) -> None:
        fields: Any = encode(alert, src=self.src, key=alert.alert_key)
        async with self.redis.pipeline(transaction=True) as pipe:
            if keep and record is not None:
                pipe.hset(NOTIFIER_WATCH, alert.alert_key, record)
            elif keep:
                pipe.hdel(NOTIFIER_WATCH, alert.alert_key)
            pipe.xadd(SYS_ALERTS, fields, maxlen=self.settings.maxlen(SYS_ALERTS), approximate=True)
            await pipe.execute()
        self.written += 1
