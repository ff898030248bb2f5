"""Handlers for ``gw:commands`` and ``orders:requests``.

Business outcomes (unknown contract, budget refusal, order reject) are events on
the bus, never exceptions. A well-formed entry of a type that does not belong on
the stream goes to ``sys:dlq`` with the reason (undecodable ones never reach us:
the consumer dead-letters them). A reply (option chain, history) goes to its
requester's own stream ``gw:replies:{requester}`` and nowhere else; a request
without a known requester is refused to ``sys:dlq`` before any IB work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from services.gateway_adapter.account import AccountReporter
from services.gateway_adapter.budget import PRIO_CHAIN
from services.gateway_adapter.chains import Requests
from services.gateway_adapter.execution import Executor
from services.gateway_adapter.sim_account import SimAccount
from services.gateway_adapter.subscriptions import Subscriptions
from shared.bus import Publisher, Refused
from shared.contract import REQUESTERS, reply_stream
from shared.envelope import Message
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
    Schema,
    Subscribe,
    Unsubscribe,
)

log = get_logger("optbot.gateway_adapter.commands")

R = TypeVar("R")
GROUP = "gateway_adapter"
CHAIN_PRIORITY = PRIO_CHAIN  # lowest: a chain never takes a watchlist or index line


class CommandHandler:
    """Routes each command to the part of the adapter that owns it."""

    def __init__(
        self,
        *,
        subs: Subscriptions,
        requests: Requests,
        account: AccountReporter,
        publisher: Publisher,
        connected: Callable[[], bool],
        sim_account: SimAccount | None = None,
    ) -> None:
        self._subs = subs
        self._requests = requests
        self._account = account
        self._sim_account = sim_account
        self.in_flight = 0  # requests to IB awaiting an answer (chain, history)
        self._pub = publisher
        self._connected = connected
        self._routes: dict[type[Schema], Callable[[Any], Awaitable[None]]] = {
            Subscribe: self._subscribe,
            Unsubscribe: self._unsubscribe,
            OptionChainRequest: self._chain,
            HistoryRequest: self._history,
            AccountRefresh: self._refresh,
        }

    @property
    def accepts(self) -> tuple[type[Schema], ...]:
        """What belongs on ``gw:commands``; the consumer dead-letters anything else."""
        return tuple(self._routes)

    async def handle(self, msg: Message[Any]) -> None:
        await self._routes[type(msg.body)](msg.body)

    async def _subscribe(self, cmd: Subscribe) -> None:
        await self._subs.subscribe(list(cmd.contracts), cmd.priority, cmd.requester)

    async def _unsubscribe(self, cmd: Unsubscribe) -> None:
        await self._subs.unsubscribe(list(cmd.contracts), cmd.requester)

    async def _chain(self, cmd: OptionChainRequest) -> None:
        address = _reply_address(cmd)
        reply = await self._ask(
            lambda: self._requests.option_chain(cmd),
            lambda error: OptionChain(
                request_id=cmd.request_id, underlying=cmd.underlying, contracts=[], error=error
            ),
        )
        if cmd.subscribe and reply.contracts:
            await self._subs.subscribe(list(reply.contracts), CHAIN_PRIORITY, cmd.requester)
        await self._pub.publish(address, reply, key=cmd.request_id)

    async def _history(self, cmd: HistoryRequest) -> None:
        address = _reply_address(cmd)
        reply = await self._ask(
            lambda: self._requests.history(cmd),
            lambda error: HistoryBars(
                request_id=cmd.request_id, symbol=cmd.contract.key, bars=[], error=error
            ),
        )
        await self._pub.publish(address, reply, key=cmd.request_id)

    async def _ask(self, call: Callable[[], Awaitable[R]], failed: Callable[[str], R]) -> R:
        """Run a request to IB; a dropped connection or a timeout becomes an error reply.

        Never raises into the consumer: a retry could not fix it, and a dead letter
        would leave the requester waiting for a reply that never comes.
        """
        if not self._connected():
            return failed("gateway not connected")
        self.in_flight += 1
        try:
            return await call()
        except TimeoutError:
            return failed("IB did not answer in time")
        except (ConnectionError, OSError) as exc:
            return failed(f"connection to IB lost during the request: {exc!r}"[:4096])
        finally:
            self.in_flight -= 1

    async def _refresh(self, cmd: AccountRefresh) -> None:
        self._account.publish()
        if self._sim_account is not None:
            self._sim_account.publish()


def _reply_address(cmd: OptionChainRequest | HistoryRequest) -> str:
    """``gw:replies:{requester}``; Refused (to sys:dlq) when no one could read the reply.

    ``reply_to``, when set, must be that same address: the requester names itself once.
    """
    if cmd.requester not in REQUESTERS:
        who = repr(cmd.requester) if cmd.requester else "no requester"
        raise Refused(
            f"{cmd.TYPE} {cmd.request_id}: {who}; a reply goes only to one of "
            f"{', '.join(REQUESTERS)} (never broadcast)"
        )
    address = reply_stream(cmd.requester)
    if cmd.reply_to not in ("", address):
        raise Refused(
            f"{cmd.TYPE} {cmd.request_id}: reply_to {cmd.reply_to!r} is not "
            f"{cmd.requester}'s address {address}"
        )
    return address


class OrderDesk:
    """``orders:requests`` -> the configured Executor."""

    accepts: tuple[type[Schema], ...] = (OrderNew, OrderCancel, OrderModify)

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    async def handle(self, msg: Message[Any]) -> None:
        body = msg.body
        if isinstance(body, OrderNew):
            await self.executor.submit(body)
        elif isinstance(body, OrderCancel):
            await self.executor.cancel(body)
        elif isinstance(body, OrderModify):
            await self.executor.modify(body)
