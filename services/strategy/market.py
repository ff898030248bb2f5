"""What the strategy knows of the market: quotes, gateway state, sentiment, candidates.

Quote age is measured on the trading clock's monotonic time (``shared.clock``: the
host's live, simulated time in a backtest) from the moment the quote arrived, never by
comparing another host's timestamps: a skewed clock elsewhere cannot make an old price
look fresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared import clock
from shared.schemas import Candidate, ConnState, GatewayStatus, Quote, Sentiment


@dataclass(slots=True)
class Seen:
    quote: Quote
    received: float  # clock.current().monotonic()


@dataclass
class MarketView:
    quotes: dict[str, Seen] = field(default_factory=dict)
    gateway: GatewayStatus | None = None  # latest status of the active adapter
    sentiment: Sentiment | None = None
    candidates: list[Candidate] = field(default_factory=list)

    def on_quote(self, q: Quote, now: float | None = None) -> None:
        self.quotes[q.contract.key] = Seen(q, clock.current().monotonic() if now is None else now)

    def quote(self, key: str) -> Quote | None:
        seen = self.quotes.get(key)
        return seen.quote if seen else None

    def age(self, key: str, now: float | None = None) -> float | None:
        """Seconds since the latest quote of ``key`` arrived; None if never."""
        seen = self.quotes.get(key)
        if seen is None:
            return None
        return (clock.current().monotonic() if now is None else now) - seen.received

    def fresh(self, key: str, max_age_s: float, now: float | None = None) -> Quote | None:
        age = self.age(key, now)
        return self.quote(key) if age is not None and age <= max_age_s else None

    def on_status(self, status: GatewayStatus) -> None:
        """Track the active adapter: the latest status that is not a standby's."""
        if status.state is not ConnState.STANDBY:
            self.gateway = status

    @property
    def gateway_connected(self) -> bool:
        return self.gateway is not None and self.gateway.state is ConnState.CONNECTED

    @property
    def gateway_why(self) -> str:
        if self.gateway is None:
            return "no gateway status yet"
        return f"{self.gateway.state.value} {self.gateway.reason}".strip()
