"""A token bucket in front of every request we send to IB.

IB disconnects (or answers error 100) a client that sends more than 50 messages
per second; ib_async throttles too, but only after the fact, so bursts of our own
(a 100-line resubscribe, a chain qualification) are smoothed here first.
"""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        # rate + burst bounds what any sliding second can carry (IB counts that way).
        self.burst = burst if burst is not None else max(1.0, rate / 4)
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()  # FIFO: an early large request is not starved

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_take(self, n: float = 1.0) -> bool:
        """Take ``n`` tokens now if they are there (no waiting)."""
        self._refill()
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False

    async def take(self, n: float = 1.0) -> None:
        """Wait until ``n`` tokens are available and take them.

        ``n`` may exceed the burst, but then the caller's ``n`` messages all go out after
        the wait, together: callers that send one message per token take at most
        ``burst`` at a time.
        """
        async with self._lock:
            remaining = n
            while remaining > 0:
                chunk = min(remaining, self.burst)
                self._refill()
                if self._tokens < chunk:
                    await asyncio.sleep((chunk - self._tokens) / self.rate)
                    self._refill()
                self._tokens -= chunk
                remaining -= chunk
