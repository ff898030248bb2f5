"""Handlers for ``gw:commands`` and ``orders:requests``.

Business outcomes (unknown contract, budget refusal, order reject) are events on
the bus, never exceptions. A well-formed entry of a type that does not belong on
the stream goes to ``sys:dlq`` with the reason (undecodable ones never reach us:
the consumer dead-letters them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from services.gateway_adapter.account import AccountReporter
from services.gateway_adapter.chains import Requests
from services.gateway_adapter.execution import Executor
from services.gateway_adapter.subscriptions import Subscriptions
from shared.bus import DeadLetters, Publisher
from shared.envelope import Message, encode
from shared.logs import get_logger
from shared.schemas import (
    AccountRefresh,
    HistoryBars,
    HistoryRequest,
    OptionChain,
    OptionChainRequest,
    OrderCancel,
    OrderModify,
    OrderNew,
    Subscribe,
    Unsubscribe,
)
from shared.streams import GW_COMMANDS, MD_SIGNALS, ORDERS_REQUESTS

log = get_logger("optbot.gateway_adapter.commands")

GROUP = "gateway_adapter"
CHAIN_PRIORITY = 5


class CommandHandler:
    """Routes each command to the part of the adapter that owns it."""

    def __init__(
        self,
        *,
        subs: Subscriptions,
        requests: Requests,
        account: AccountReporter,
        publisher: Publisher,
        redis: aioredis.Redis,
        consumer: str,
        dlq_maxlen: int,
        connected: Callable[[], bool],
    ) -> None:
        self._subs = subs
        self._requests = requests
        self._account = account
        self._pub = publisher
        self._consumer = consumer
        self._dlq = DeadLetters(redis, dlq_maxlen)
        self._connected = connected
        self._routes: dict[type, Callable[[Any], Awaitable[None]]] = {
            Subscribe: self._subscribe,
            Unsubscribe: self._unsubscribe,
            OptionChainRequest: self._chain,
            HistoryRequest: self._history,
            AccountRefresh: self._refresh,
        }

    async def handle(self, msg: Message[Any]) -> None:
        route = self._routes.get(type(msg.body))
        if route is None:
            await dead_letter(self._dlq, GW_COMMANDS, self._consumer, msg, "not a gateway command")
            return
        await route(msg.body)

    async def _subscribe(self, cmd: Subscribe) -> None:
        await self._subs.subscribe(list(cmd.contracts), cmd.priority)

    async def _unsubscribe(self, cmd: Unsubscribe) -> None:
        await self._subs.unsubscribe(list(cmd.contracts))

    async def _chain(self, cmd: OptionChainRequest) -> None:
        if not self._connected():
            reply = OptionChain(
                request_id=cmd.request_id,
                underlying=cmd.underlying,
                contracts=[],
                error="gateway not connected",
            )
        else:
            reply = await self._requests.option_chain(cmd)
            if cmd.subscribe and reply.contracts:
                await self._subs.subscribe(list(reply.contracts), CHAIN_PRIORITY)
        await self._pub.publish(cmd.reply_to or MD_SIGNALS, reply, key=cmd.request_id)

    async def _history(self, cmd: HistoryRequest) -> None:
        if not self._connected():
            reply = HistoryBars(
                request_id=cmd.request_id,
                symbol=cmd.contract.key,
                bars=[],
                error="gateway not connected",
            )
        else:
            reply = await self._requests.history(cmd)
        await self._pub.publish(cmd.reply_to or MD_SIGNALS, reply, key=cmd.request_id)

    async def _refresh(self, cmd: AccountRefresh) -> None:
        self._account.publish()


class OrderDesk:
    """``orders:requests`` -> the configured Executor."""

    def __init__(
        self, executor: Executor, redis: aioredis.Redis, consumer: str, dlq_maxlen: int
    ) -> None:
        self.executor = executor
        self._consumer = consumer
        self._dlq = DeadLetters(redis, dlq_maxlen)

    async def handle(self, msg: Message[Any]) -> None:
        body = msg.body
        if isinstance(body, OrderNew):
            await self.executor.submit(body)
        elif isinstance(body, OrderCancel):
            await self.executor.cancel(body)
        elif isinstance(body, OrderModify):
            await self.executor.modify(body)
        else:
            await dead_letter(
                self._dlq, ORDERS_REQUESTS, self._consumer, msg, "not an order request"
            )


async def dead_letter(
    dlq: DeadLetters, stream: str, consumer: str, msg: Message[Any], reason: str
) -> None:
    """Send a decodable but misplaced entry to ``sys:dlq`` (re-encoded, same header)."""
    fields = encode(msg.body, msg.src, msg.key, msg.ts)
    await dlq.send(
        stream=stream,
        group=GROUP,
        consumer=consumer,
        entry_id=msg.id,
        fields=fields,
        reason=f"{reason}: type {msg.type}",
    )
