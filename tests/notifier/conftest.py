"""Fixtures: loopback receivers and the notifier started with ``run_service`` in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from services.notifier.main import main as notifier_main
from shared.runner import run_service
from shared.settings import Settings
from tests.notifier.receivers import JsonReceiver, SmtpReceiver

SECRET_PATH = "hook/S3CR3T-webhook-5b1e"
SECRET_MAIL = "s3cr3t-trader-77aa@example.com"
FAST: dict[str, Any] = {
    "heartbeat_interval_s": 0.2,
    "heartbeat_ttl_s": 1.0,
    "alert_watch_interval_s": 0.1,
    "alert_gateway_down_s": 0.5,
    "alert_repeat_s": 3600.0,
    "alert_retry_max_s": 0.5,
    "alert_send_timeout_s": 5.0,
}


@pytest.fixture
def json_receiver() -> Iterator[JsonReceiver]:
    r = JsonReceiver(SECRET_PATH).start()
    yield r
    r.stop()


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    r = SmtpReceiver(SECRET_MAIL).start()
    yield r
    r.stop()


class NotifierHandle:
    def __init__(self, settings: Settings, task: asyncio.Task[int], stop: asyncio.Event) -> None:
        self.settings = settings
        self.task = task
        self.stop_event = stop

    async def stop(self) -> int:
        self.stop_event.set()
        return await asyncio.wait_for(self.task, 15)


StartNotifier = Callable[..., Awaitable[NotifierHandle]]


@pytest.fixture
async def start_notifier(settings: Settings) -> AsyncIterator[StartNotifier]:
    handles: list[NotifierHandle] = []

    async def factory(urls: str = "", **overrides: Any) -> NotifierHandle:
        values = {**FAST, **overrides, "alert_urls": SecretStr(urls)}
        cfg = settings.model_copy(update=values)
        stop = asyncio.Event()
        task = asyncio.create_task(run_service("notifier", notifier_main, cfg, stop=stop))
        handle = NotifierHandle(cfg, task, stop)
        handles.append(handle)
        return handle

    yield factory
    for h in handles:
        if not h.task.done():
            with contextlib.suppress(Exception):
                await h.stop()
