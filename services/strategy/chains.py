"""Option chains from the gateway, through the bus's one request/reply helper.

The request goes on ``gw:commands`` stamped with the strategy's address; the reply
comes on ``gw:replies:strategy`` only (``shared.bus.request``). The gateway
subscribes the chain's contracts, so their quotes (with IB greeks) follow on
``md:ticks``.
"""

from __future__ import annotations

from shared.bus import RequestClient
from shared.contract import GW_COMMANDS
from shared.schemas import OptionChain, OptionChainRequest, Right

ITM_SLACK = 0.01  # the adapter's spot and ours are a few ticks apart: keep the strike at spot


def itm_moneyness(delta_max: float, moneyness: float) -> float:
    """How far in the money a strike the selection could choose may be.

    A bought option in the money has |delta| above 0.5 (the at-the-money delta is
    already a little over 0.5), so with the band's top at or below 0.5 only a sliver
    around spot is asked for: half the lines of a two-sided window.
    """
    return min(ITM_SLACK, moneyness) if delta_max <= 0.5 else moneyness


class ChainClient:
    """Asks for one underlying's chain; the helper owns id, timeout and failure."""

    def __init__(self, requests: RequestClient) -> None:
        self.requests = requests

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
        """The chain; TimeoutError (no reply in time) or ConnectionError (gateway down)."""
        req = OptionChainRequest(
            request_id=self.requests.new_id(underlying),
            underlying=underlying,
            min_dte=min_dte,
            max_dte=max_dte,
            moneyness=moneyness,
            itm_moneyness=itm_moneyness,
            max_contracts=max_contracts,
            right=right,
            subscribe=True,
        )
        return await self.requests.ask(GW_COMMANDS, req, OptionChain, key=underlying)

    def fail_all(self, reason: str) -> None:
        """The gateway went away: every pending request fails now (GatewayDown)."""
        self.requests.fail_all(reason)
