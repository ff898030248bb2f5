"""Shared helpers for simulator tests (imported by conftest and test modules)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ib_async import IB

from services.tws_simulator import Simulator


async def until(predicate: Callable[[], Any], timeout: float = 3.0) -> None:
    """Wait for a condition with a deadline (no sleep-and-hope)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met before deadline")
        await asyncio.sleep(0.01)


class Client:
    """A connected ib_async IB plus every error it received."""

    def __init__(self, ib: IB) -> None:
        self.ib = ib
        self.errors: list[tuple[int, int, str]] = []
        ib.errorEvent += lambda req_id, code, text, contract: self.errors.append(
            (req_id, code, text)
        )

    def codes(self) -> list[int]:
        return [code for _, code, _ in self.errors]


MakeSim = Callable[..., Awaitable[Simulator]]
Connect = Callable[..., Awaitable[Client]]
