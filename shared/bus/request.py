"""Request and reply over the bus: a request id, a Future, a timeout, one address.

Why one helper: a request that expects an answer (option chain, history) must never
leave its caller waiting forever nor be answered to someone else. Each request gets
an id unique to this process, names its requester, and waits on a Future that
fails loudly on timeout (``ReplyTimeout``) or when the gateway goes away
(``fail_all`` -> ``GatewayDown``); a cancelled caller just stops waiting.

Replies come on the requester's own stream, ``gw:replies:{service}``, read with
``XREAD`` from the entries written after this process started, without a consumer
group: a reply is of use only to the process whose Future waits for it, so each
instance reads the whole stream and keeps the replies to its own pending ids. A
reply nobody waits for (late, after a timeout or a cancellation, a duplicate from
a redelivered request, another instance's) is counted and dropped. At-least-once
lives on the request side: the gateway consumes ``gw:commands`` in a group.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
from typing import Any, TypeVar

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared import clock
from shared.aio import sleep_or_stop
from shared.bus.dlq import dead_letter_fields
from shared.bus.publisher import Publisher
from shared.contract import SYS_DLQ, reply_stream
from shared.envelope import DecodeError, Message, decode
from shared.logs import get_logger
from shared.redis_text import as_str
from shared.schemas import Schema
from shared.settings import Settings

log = get_logger("optbot.bus.request")

R = TypeVar("R", bound=Schema)


class ReplyTimeout(TimeoutError):
    """No reply within the timeout: the gateway is slow, busy or gone."""


class GatewayDown(ConnectionError):
    """The gateway disconnected while the request waited: no reply can come."""


class RequestClient:
    """Sends requests stamped with this service's address and waits for their replies."""

    def __init__(
        self,
        redis: aioredis.Redis,
        publisher: Publisher,
        settings: Settings,
        *,
        requester: str,
        replies: tuple[type[Schema], ...],
        timeout_s: float,
        tag: str = "",
    ) -> None:
        self.requester = requester
        self.reply_to = reply_stream(requester)  # ValueError for a service that never asks
        self.replies = replies  # the reply types that belong on its stream; others: sys:dlq
        self._redis = redis
        self._pub = publisher
        self._timeout = timeout_s
        self._block_ms = settings.consume_block_ms
        self._batch = settings.consume_batch
        self._maxlen_dlq = settings.maxlen_dlq
        self._pending: dict[str, asyncio.Future[Message[Any]]] = {}
        self._ids = itertools.count(1)
        # unique per process, also across hosts and restarts: pid and a random part
        self._prefix = f"{tag or requester[:2]}-{os.getpid()}{secrets.token_hex(2)}-"
        self._cursor = ""  # last reply id read; set by ``run`` before any request is sent
        self._ready = asyncio.Event()
        self.answered = 0
        self.timed_out = 0
        self.ignored = 0  # replies nobody waits for (late, duplicate, another instance's)
        self.failed = 0  # failed by ``fail_all``

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def reading(self) -> bool:
        """Whether ``run`` reads the reply stream (requests wait for this, bounded)."""
        return self._ready.is_set()

    def new_id(self, label: str) -> str:
        """A request id unique in this process, readable in ``optbot tail``."""
        return f"{self._prefix}{next(self._ids)}-{label}"[:64]

    async def ask(
        self,
        stream: str,
        body: Schema,
        reply_type: type[R],
        *,
        key: str = "",
        timeout_s: float | None = None,
    ) -> R:
        """Send ``body`` (its id and address stamped here) and return its reply.

        ``body`` needs ``request_id``, ``requester`` and ``reply_to`` fields; an empty
        ``request_id`` gets a new one. Raises ``ReplyTimeout`` or ``GatewayDown``.
        """
        request_id = getattr(body, "request_id", "") or self.new_id(key or body.TYPE)
        body = msgspec.structs.replace(
            body,
            request_id=request_id,
            requester=self.requester,
            reply_to=self.reply_to,
        )
        if not issubclass(reply_type, self.replies):
            raise TypeError(f"{reply_type.TYPE} is not a reply {self.requester} reads")
        if request_id in self._pending:  # one Future per id, or one caller waits in vain
            raise ValueError(f"request {request_id} is already waiting for its reply")
        timeout = self._timeout if timeout_s is None else timeout_s
        fut: asyncio.Future[Message[Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        try:
            # On simulated time the reply comes without the clock moving (the gateway
            # answers from TWS at once), so the service is not settled while it waits:
            # the backtest's next step must not start before the answer is in.
            with clock.current().busy():
                async with asyncio.timeout(timeout):
                    await self._ready.wait()  # replies are read from before the request
                    # Queued and flushed: concurrent asks (25 history requests at start)
                    # share one pipeline round trip instead of one connection each.
                    self._pub.add(stream, body, key=key)
                    await self._pub.flush()
                    msg = await fut
        except TimeoutError:
            self.timed_out += 1
            log.warning("request_timeout", request=request_id, type=body.TYPE, timeout_s=timeout)
            raise ReplyTimeout(f"no reply to {body.TYPE} {request_id} in {timeout}s") from None
        finally:
            self._pending.pop(request_id, None)
        if not isinstance(msg.body, reply_type):
            raise TypeError(f"reply to {request_id} is {msg.type}, not {reply_type.TYPE}")
        self.answered += 1
        return msg.body

    def fail_all(self, reason: str) -> int:
        """The gateway went away: nobody waits out a timeout for a reply that cannot come."""
        failed = 0
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(GatewayDown(reason))
                failed += 1
        if failed:
            self.failed += failed
            log.warning("requests_failed", requests=failed, reason=reason)
        return failed

    async def run(self, stop: asyncio.Event) -> None:
        """Read the reply stream until ``stop``; then fail whatever still waits."""
        backoff = 0.1
        try:
            while not stop.is_set():
                try:
                    if not self._ready.is_set():
                        await self.start()
                    await self.poll_once()
                    backoff = 0.1
                except RedisError as exc:
                    log.warning("replies_read_failed", stream=self.reply_to, error=str(exc))
                    await sleep_or_stop(stop, backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            self.fail_all("requester stopping")

    async def start(self) -> None:
        """Replies written before now are not ours: read from the stream's newest entry.

        ``run`` calls it; a caller that reads with ``poll_once`` itself calls it first."""
        newest: Any = await self._redis.xrevrange(self.reply_to, count=1)
        self._cursor = as_str(newest[0][0]) if newest else "0-0"
        self._ready.set()

    async def poll_once(self) -> int:
        """One XREAD of the reply stream; returns the replies that found their Future."""
        reply: Any = await self._redis.xread(
            {self.reply_to: self._cursor}, count=self._batch, block=self._block_ms
        )
        matched = 0
        for _stream, entries in reply or []:
            for raw_id, fields in entries:
                self._cursor = as_str(raw_id)
                matched += await self._deliver(self._cursor, fields)
        return matched

    async def _deliver(self, entry_id: str, fields: dict[Any, Any]) -> int:
        try:
            msg = decode(fields, entry_id)
        except DecodeError as exc:
            await self._dead_letter(entry_id, fields, exc.reason)
            return 0
        if not isinstance(msg.body, self.replies):
            reason = f"type {msg.type} does not belong on {self.reply_to}"
            await self._dead_letter(entry_id, fields, reason)
            return 0
        request_id = str(getattr(msg.body, "request_id", ""))  # every reply type has one
        fut = self._pending.get(request_id)
        if fut is None or fut.done():
            self.ignored += 1
            log.info("reply_ignored", request=request_id, type=msg.type, entry=entry_id)
            return 0
        fut.set_result(msg)
        return 1

    async def _dead_letter(self, entry_id: str, fields: dict[Any, Any], reason: str) -> None:
        """An unreadable reply: kept in sys:dlq with the reason (no group: nothing to ack)."""
        data = dead_letter_fields(
            reason=reason,
            stream=self.reply_to,
            entry_id=entry_id,
            group="",
            consumer=self._prefix.rstrip("-"),
            fields=fields,
        )
        await self._redis.xadd(SYS_DLQ, data, maxlen=self._maxlen_dlq, approximate=True)  # type: ignore[arg-type]
        log.warning("dead_lettered", stream=self.reply_to, entry=entry_id, reason=reason)
