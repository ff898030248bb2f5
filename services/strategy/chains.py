"""Option chains from the gateway: a keyed request, a Future and a timeout.

The request goes on ``gw:commands`` with ``reply_to=gw:replies``; the reply is
matched by request id. The gateway subscribes the chain's contracts, so their
quotes (with IB greeks) follow on ``md:ticks``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Any

from shared.bus import Publisher
from shared.contract import GW_COMMANDS, GW_REPLIES
from shared.envelope import Message
from shared.schemas import OptionChain, OptionChainRequest, Right

REQUEST_PREFIX = "st-"
ITM_SLACK = 0.01  # the adapter's spot and ours are a few ticks apart: keep the strike at spot


def itm_moneyness(delta_max: float, moneyness: float) -> float:
    """How far in the money a strike the selection could choose may be.

    A bought option in the money has |delta| above 0.5 (the at-the-money delta is
    already a little over 0.5), so with the band's top at or below 0.5 only a sliver
    around spot is asked for: half the lines of a two-sided window.
    """
    return min(ITM_SLACK, moneyness) if delta_max <= 0.5 else moneyness


class ChainClient:
    def __init__(self, publisher: Publisher, timeout_s: float) -> None:
        self._pub = publisher
        self._timeout = timeout_s
        self._pending: dict[str, asyncio.Future[OptionChain]] = {}
        self._ids = itertools.count(1)
        self._tag = f"{os.getpid()}"

    async def fetch(
        self,
        underlying: str,
        right: Right,
        *,
        min_dte: int,
        max_dte: int,
        moneyness: float,
        itm_moneyness: float | None = None,
        max_contracts: int = 0,
    ) -> OptionChain:
        """The chain, or raise TimeoutError when the gateway does not answer in time."""
        request_id = f"{REQUEST_PREFIX}{self._tag}-{next(self._ids)}-{underlying}"
        fut: asyncio.Future[OptionChain] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        req = OptionChainRequest(
            request_id=request_id,
            underlying=underlying,
            min_dte=min_dte,
            max_dte=max_dte,
            moneyness=moneyness,
            itm_moneyness=itm_moneyness,
            max_contracts=max_contracts,
            right=right,
            subscribe=True,
            reply_to=GW_REPLIES,
            requester="strategy",
        )
        try:
            await self._pub.publish(GW_COMMANDS, req, key=underlying)
            return await asyncio.wait_for(fut, self._timeout)
        finally:
            self._pending.pop(request_id, None)

    async def on_reply(self, msg: Message[Any]) -> None:
        body = msg.body
        if not isinstance(body, OptionChain):
            return
        fut = self._pending.get(body.request_id)
        if fut is not None and not fut.done():
            fut.set_result(body)

    def fail_all(self, reason: str) -> None:
        """The gateway went away: nobody waits out a timeout for a reply that cannot come."""
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError(reason))
