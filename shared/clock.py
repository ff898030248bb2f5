"""One clock for every time-based trading decision: the host's live, the simulator's in a
simulated session.

Trading logic (bar boundaries, cycle and reprice intervals, quote staleness, holding time,
DTE, the trading day, expiry, the daily-loss day) reads ``shared.clock.current()`` and never
``time.time()``, ``time.monotonic()``, ``datetime.now()``, ``asyncio.sleep`` or
``asyncio.wait_for`` directly (``tests/test_clock_usage.py`` enforces it). Heartbeats,
leases, Redis timeouts, reconnect backoff and the supervisor stay on the host clock.

- ``HostClock`` (the default): ``time.time``, ``time.monotonic`` and asyncio's timers.
- ``SimClock``: time moves only when ``advance(t)`` is called. ``sleep`` parks the calling
  task until simulated time reaches its deadline; ``advance`` wakes the due sleepers in
  deadline order, all at the new time: a 1 s loop carried across a night runs once at the
  open, not once per simulated second. ``settled()`` returns when every task the clock
  woke has parked again (or finished) and no ``busy()`` section is open: the moment a
  service has done everything the new time asked of it.

How simulated time reaches each service (``OPTBOT_CLOCK=sim``, set by ``optbot
backtest``): the driver steps the simulator (``advance`` on its control port), then XADDs
a ``ClockTick(t, seq)`` to the stream ``sys:clock``. The runner (``shared/runner.py``) of
every service installs a ``SimClock`` started at the first tick's ``t`` and follows the
stream with a plain XREAD (no group: every service sees every tick). For each tick it
calls ``clock.advance(t)``, awaits the service's sync hook (``ctx.on_clock_tick``), awaits
``clock.settled()``, flushes the publisher and RPUSHes ``ClockAck(seq, t,
next_deadline)`` to ``sys:clock:ack:{service}``; the driver waits for every service's ack,
then checks that the streams are quiet before the next step. Each consumer batch is
handled inside ``clock.busy()``, so a batch in hand delays the ack.

The gateway adapter also hears the simulator directly: TWS ``currentTime`` and each tick's
IB time carry simulated time. Its sync hook asks ``reqCurrentTime`` (a round trip on the
TWS socket: every message the simulator wrote before the answer has been read and
dispatched), advances its clock to the answer and flushes its quote publisher, so the
quotes of the step are on the bus before it acks. Stream entry ids and envelope ``ts`` stay
host time (transport); a quote's age is measured by stamping its arrival with
``clock.monotonic()``, which on a ``SimClock`` is simulated epoch seconds. Times that
travel on the bus are stamped on the trading clock where they are made: an order event's
``at`` (the adapter's journal; a fill's time and trading day), a decision's ``at``, a bar's
``ib_ts``, an equity point's ``t``, ``risk:state``'s ``since``.

Host-clock waits that remain (quote publish linger, the simulated account's fill linger,
Redis and IB timeouts) are not tracked by ``settled()``; their output lands after the ack
and is caught by the driver's check that every stream is quiet before it steps on.
``ClockAck.next_deadline`` tells the driver the earliest simulated time a service waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

# settled() returns only after the clock looked quiet over this many passes of the loop:
# a woken task's set()/set_result() reaches the next waiter through call_soon callbacks
# (future -> task wake-up -> done callback), a few passes each.
_SETTLE_PASSES = 8


class Clock(Protocol):
    """What trading logic may ask of time."""

    def time(self) -> float:
        """Epoch seconds."""
        ...

    def now(self) -> datetime:
        """The current instant, UTC, timezone-aware."""
        ...

    def monotonic(self) -> float:
        """Seconds for interval arithmetic only (on a SimClock: simulated epoch seconds)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def sleep_or_stop(self, stop: asyncio.Event, seconds: float) -> bool:
        """Sleep ``seconds`` but wake at once when ``stop`` is set; True when stopped."""
        ...

    async def wait_for(self, aw: Awaitable[T], timeout: float | None) -> T:
        """``aw``'s result, or TimeoutError after ``timeout`` seconds of this clock."""
        ...

    def busy(self) -> contextlib.AbstractContextManager[None]:
        """A section the clock must wait for before it calls itself settled."""
        ...


class HostClock:
    """The host's clock and asyncio's timers: live trading."""

    def time(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def sleep_or_stop(self, stop: asyncio.Event, seconds: float) -> bool:
        if stop.is_set():
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        return stop.is_set()

    async def wait_for(self, aw: Awaitable[T], timeout: float | None) -> T:
        return await asyncio.wait_for(aw, timeout)

    def busy(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


@dataclass(order=True)
class _Sleeper:
    deadline: float
    seq: int
    future: asyncio.Future[None] = field(compare=False)
    task: asyncio.Task[Any] = field(compare=False)
    token: int = field(compare=False)


class SimClock:
    """Simulated time: moves only by ``advance``; sleepers wake in deadline order."""

    def __init__(self, start: float) -> None:
        self._now = float(start)
        self._heap: list[_Sleeper] = []
        self._seq = itertools.count()
        self._tokens = itertools.count(1)
        # every task that ever waited on this clock -> the token of its current park,
        # or None while it runs (woken, or its awaited result arrived)
        self._tasks: dict[asyncio.Task[Any], int | None] = {}
        self._busy = 0
        self._changed: asyncio.Event | None = None

    # --- reading -------------------------------------------------------------------
    def time(self) -> float:
        return self._now

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now, UTC)

    def monotonic(self) -> float:
        return self._now

    def next_deadline(self) -> float | None:
        """The earliest simulated time a parked sleeper waits for, None when none does."""
        while self._heap and self._heap[0].future.done():
            heapq.heappop(self._heap)
        return self._heap[0].deadline if self._heap else None

    # --- moving --------------------------------------------------------------------
    def advance(self, t: float) -> int:
        """Move to ``t`` (never backwards) and wake every sleeper due by then, earliest
        deadline first; returns how many were woken."""
        self._now = max(self._now, float(t))
        woken = 0
        while self._heap and self._heap[0].deadline <= self._now:
            sleeper = heapq.heappop(self._heap)
            if sleeper.future.done():
                continue
            sleeper.future.set_result(None)
            self._unpark(sleeper.task, sleeper.token)
            woken += 1
        return woken

    # --- waiting -------------------------------------------------------------------
    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task, token = self._park()
        self._push(self._now + seconds, future, task, token)
        try:
            await future
        finally:
            future.cancel()
            self._unpark(task, token)

    async def sleep_or_stop(self, stop: asyncio.Event, seconds: float) -> bool:
        if stop.is_set():
            return True
        with contextlib.suppress(TimeoutError):
            await self.wait_for(stop.wait(), seconds)
        return stop.is_set()

    async def wait_for(self, aw: Awaitable[T], timeout: float | None) -> T:
        inner = asyncio.ensure_future(aw)
        if inner.done():
            return inner.result()
        if timeout is not None and timeout <= 0:
            return await _cancel_and_time_out(inner)
        timer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task, token = self._park()
        inner.add_done_callback(lambda _f: self._unpark(task, token))
        if timeout is not None:
            self._push(self._now + timeout, timer, task, token)
        try:
            pending: set[asyncio.Future[Any]] = {inner, timer}
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            inner.cancel()
            raise
        finally:
            timer.cancel()
            self._unpark(task, token)
        if inner.done():
            return inner.result()
        return await _cancel_and_time_out(inner)

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
            self._signal()

    async def settled(self) -> None:
        """Return once no task the clock knows is running and no busy section is open."""
        while True:
            passes = 0
            while passes < _SETTLE_PASSES:
                await asyncio.sleep(0)
                if self._active():
                    break
                passes += 1
            else:
                return
            changed = self._event()
            changed.clear()
            if self._active():
                await changed.wait()

    def running(self) -> list[str]:
        """Names of the tasks the clock is waiting for (for logs when a step hangs)."""
        return [t.get_name() for t in self.running_tasks()]

    def running_tasks(self) -> list[asyncio.Task[Any]]:
        return [t for t, tok in self._tasks.items() if tok is None and not t.done()]

    # --- bookkeeping ---------------------------------------------------------------
    def _active(self) -> bool:
        if self._busy:
            return True
        return any(tok is None and not t.done() for t, tok in self._tasks.items())

    def _park(self) -> tuple[asyncio.Task[Any], int]:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("SimClock waits need a running asyncio task")
        if task not in self._tasks:
            task.add_done_callback(self._forget)
        token = next(self._tokens)
        self._tasks[task] = token
        self._signal()
        return task, token

    def _unpark(self, task: asyncio.Task[Any], token: int) -> None:
        """Mark ``task`` running, unless it has parked again since (a stale callback)."""
        if self._tasks.get(task) == token:
            self._tasks[task] = None

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(task, None)
        self._signal()

    def _push(
        self, deadline: float, future: asyncio.Future[None], task: asyncio.Task[Any], token: int
    ) -> None:
        heapq.heappush(self._heap, _Sleeper(deadline, next(self._seq), future, task, token))

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _signal(self) -> None:
        if self._changed is not None:
            self._changed.set()


async def _cancel_and_time_out(inner: asyncio.Future[T]) -> T:
    """Cancel what timed out, let it unwind (as asyncio.wait_for does), raise TimeoutError."""
    inner.cancel()
    await asyncio.wait({inner})  # our own cancellation still propagates from here
    if not inner.cancelled() and inner.exception() is None:
        return inner.result()  # it finished while being cancelled: keep its result
    raise TimeoutError


_current: Clock = HostClock()


def current() -> Clock:
    """The process's clock: the host's unless a simulated session installed another."""
    return _current


def arrival_ns(host_ns: int) -> int:
    """The trading-clock time (ns since the epoch) of data that arrived at host time
    ``host_ns``.

    ib_async stamps each ticker with the host's ``time.time()`` when its data arrives (IB
    sends no time with a bid or an ask). Live that is the trading clock's instant; on a
    SimClock it is the simulated now, the time of the step whose data is being read (the
    adapter sets its clock to the simulator's before it builds the step's quotes), so a
    bar boundary never depends on how fast the host ran. A simulated time is rounded to
    the microsecond (epoch seconds times 1e9 in floats is not exact: 10:01:00 must not become
    10:00:59.999999744 and fall into the previous bar)."""
    c = current()
    return round(c.time() * 1e6) * 1000 if isinstance(c, SimClock) else host_ns


def install(clock: Clock) -> None:
    """Make ``clock`` the process's clock (the runner does this for OPTBOT_CLOCK=sim)."""
    global _current
    _current = clock


@contextlib.contextmanager
def using(clock: Clock) -> Iterator[Clock]:
    """Install ``clock`` for a block and put the previous one back (tests)."""
    previous = current()
    install(clock)
    try:
        yield clock
    finally:
        install(previous)
