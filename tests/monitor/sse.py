"""A small SSE client for tests that reconnects like a browser's EventSource."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Event:
    name: str
    data: Any
    at: float = field(default_factory=time.monotonic)


class SseClient:
    """Follows ``url`` and keeps every event; reconnects after ``retry_s`` on any loss."""

    def __init__(self, url: str, retry_s: float = 0.2) -> None:
        self.url = url
        self.retry_s = retry_s
        self.events: list[Event] = []
        self.connects = 0
        self.disconnects = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> SseClient:
        self._task = asyncio.create_task(self._run())
        return self

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=15.0)) as client:
            while True:
                try:
                    async with client.stream("GET", self.url) as response:
                        response.raise_for_status()
                        self.connects += 1
                        await self._read(response)
                except (httpx.HTTPError, OSError):
                    pass
                self.disconnects += 1
                await asyncio.sleep(self.retry_s)

    async def _read(self, response: httpx.Response) -> None:
        name, data = "message", []
        async for line in response.aiter_lines():
            if not line:
                if data:
                    self.events.append(Event(name, json.loads("\n".join(data))))
                name, data = "message", []
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
