"""Pre-trade risk: every order and every reprice passes here; a denial is a reason.

States (services/strategy/README.md's table says the same):
- ACTIVE: everything, each opening order through every limit.
- REDUCING: only orders that lower exposure — rule exits and an operator's flatten.
  A daily-loss breach sets it (who = risk-engine): a loss limit stops new exposure,
  it never blocks getting out.
- HALTED: an operator's stop: nothing but cancels, and an operator's flatten, which
  works in every state.
A reduce-only order is checked, not trusted: it must close the ledger's position on
the other side, for no more than is held, with no other exit working for it. The
price-dependent limits (per-trade and total premium) are checked again at each
reprice's own price (``check_modify``), so a limit holds at every price an order can
fill at. The state lives in the ``risk:state`` hash so it survives restarts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import redis.asyncio as aioredis

from services.strategy.money import ZERO, cents, dec, fmt
from shared import clock
from shared.contract import RISK_STATE
from shared.redis_text import as_str
from shared.schemas import Action, ContractRef
from shared.schemas import RiskState as RiskState  # the one enum, re-exported for the desk
from shared.settings import RiskSettings

RISK_ENGINE = "risk-engine"


@dataclass(frozen=True, slots=True)
class RiskStatus:
    state: RiskState
    why: str = ""
    who: str = ""
    since: float = 0.0
    breach_day: str = ""  # the trading day (ISO) the daily-loss limit last tripped


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The checks' limits; built only from ``RiskSettings``, where each default is stated."""

    max_premium_pct: float
    max_total_premium_pct: float
    max_positions: int
    max_contracts: int
    max_daily_loss_pct: float
    max_orders_per_min: int
    max_quote_age_s: float

    @classmethod
    def from_settings(cls, s: RiskSettings) -> RiskLimits:
        return cls(
            max_premium_pct=s.risk_max_premium_pct,
            max_total_premium_pct=s.risk_max_total_premium_pct,
            max_positions=s.risk_max_positions,
            max_contracts=s.risk_max_contracts,
            max_daily_loss_pct=s.risk_max_daily_loss_pct,
            max_orders_per_min=s.risk_max_orders_per_min,
            max_quote_age_s=s.risk_max_quote_age_s,
        )


@dataclass(frozen=True, slots=True)
class OrderIntent:
    contract: ContractRef
    action: Action
    quantity: int
    limit_price: float | None
    reduce_only: bool = False
    operator: bool = False  # an operator's flatten: allowed in every state
    remaining: int | None = None  # for a reprice: the unfilled part (None: all of it)

    @property
    def premium(self) -> Decimal:
        """What the whole order costs at its limit (the most it can fill at)."""
        return cents(dec(self.limit_price or 0) * self.contract.multiplier * self.quantity)

    @property
    def open_premium(self) -> Decimal:
        """What its unfilled part can still add to the premium at risk."""
        qty = self.quantity if self.remaining is None else self.remaining
        return cents(dec(self.limit_price or 0) * self.contract.multiplier * qty)


@dataclass(frozen=True, slots=True)
class RiskView:
    """What the checks look at, gathered by the caller at the moment of the order."""

    status: RiskStatus
    gateway_connected: bool
    gateway_why: str
    quote_age_s: float | None  # None: no quote at all
    working_keys: frozenset[str]  # contracts with any working order
    exit_keys: frozenset[str]  # contracts with a working reduce-only order
    open_positions: int  # positions plus working opening orders
    position_qty: int  # contracts of this contract already held (signed: < 0 short)
    premium_at_risk: Decimal  # open long premium plus working opening orders' remainder
    opening_equity: Decimal  # the trading day's opening equity: the base of every limit
    daily_pnl: Decimal | None  # since the day opened; None: the day is not open yet
    orders_last_min: int


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    check: str
    reason: str
    breach: bool = False  # the daily loss limit is breached: no new exposure today


Check = Callable[[OrderIntent, RiskView, RiskLimits], str | None]


def check_state(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    if i.operator and i.reduce_only:
        return None  # an operator's flatten works in every state
    if v.status.state is RiskState.HALTED:
        return f"risk state HALTED ({v.status.why or 'no reason given'})"
    if v.status.state is RiskState.REDUCING and not i.reduce_only:
        return f"risk state REDUCING: only orders that lower exposure ({v.status.why})"
    return None


def check_duplicate(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    if i.contract.key in v.working_keys:
        return f"an order for {i.contract.key} is already working"
    return None


def check_exit_duplicate(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    if i.contract.key in v.exit_keys:
        return f"an exit for {i.contract.key} is already working"
    return None


def check_reduces(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    """A reduce-only order closes what the ledger holds, on the other side, no further."""
    held = v.position_qty
    if held == 0:
        return f"reduce-only {i.action.value} {i.quantity} but no position in {i.contract.key}"
    closing = Action.SELL if held > 0 else Action.BUY
    if i.action is not closing:
        return f"reduce-only {i.action.value} {i.quantity} would add to a position of {held:+d}"
    if i.quantity > abs(held):
        return f"reduce-only {i.action.value} {i.quantity} would go past flat (held {held:+d})"
    return None


def check_limit_price(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    if i.limit_price is None or i.limit_price <= 0:
        return "an opening order needs a limit price (its premium must be bounded)"
    return None


def check_gateway(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    if not v.gateway_connected:
        return f"gateway not connected ({v.gateway_why or 'no status yet'})"
    return None


def check_quote_age(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    if v.quote_age_s is None:
        return f"no quote for {i.contract.key}"
    if v.quote_age_s > lim.max_quote_age_s:
        return f"quote is {v.quote_age_s:.1f}s old (limit {lim.max_quote_age_s:g}s)"
    return None


def check_daily_loss(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    if v.daily_pnl is None:
        return "the trading day has not opened yet (waiting for fresh marks)"
    limit = daily_loss_limit(v.opening_equity, lim)
    if v.daily_pnl <= -limit:
        return f"daily loss {fmt(-v.daily_pnl)} >= limit {fmt(limit)}"
    return None


def check_rate(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    if v.orders_last_min >= lim.max_orders_per_min:
        return f"{v.orders_last_min} orders in the last minute (limit {lim.max_orders_per_min})"
    return None


def check_positions(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    if v.position_qty == 0 and v.open_positions >= lim.max_positions:
        return f"{v.open_positions} positions open (limit {lim.max_positions})"
    return None


def check_contracts(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    total = abs(v.position_qty) + i.quantity
    if total > lim.max_contracts:
        return f"{total} contracts in {i.contract.key} (limit {lim.max_contracts})"
    return None


def check_trade_premium(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    budget = trade_budget(v.opening_equity, lim)
    if i.premium > budget:
        return (
            f"premium {fmt(i.premium)} at {i.limit_price:.2f} > {lim.max_premium_pct:g}% "
            f"of opening equity {fmt(budget)}"
        )
    return None


def check_total_premium(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    cap = total_premium_cap(v.opening_equity, lim)
    total = v.premium_at_risk + i.open_premium
    if total > cap:
        return f"premium at risk {fmt(total)} > {lim.max_total_premium_pct:g}% cap {fmt(cap)}"
    return None


def daily_loss_limit(opening_equity: Decimal, lim: RiskLimits) -> Decimal:
    return cents(opening_equity * dec(lim.max_daily_loss_pct) / 100)


def trade_budget(opening_equity: Decimal, lim: RiskLimits) -> Decimal:
    return cents(opening_equity * dec(lim.max_premium_pct) / 100)


def total_premium_cap(opening_equity: Decimal, lim: RiskLimits) -> Decimal:
    return cents(opening_equity * dec(lim.max_total_premium_pct) / 100)


OPENING_CHECKS: tuple[tuple[str, Check], ...] = (
    ("state", check_state),
    ("duplicate", check_duplicate),
    ("limit_price", check_limit_price),
    ("gateway", check_gateway),
    ("stale_quote", check_quote_age),
    ("daily_loss", check_daily_loss),
    ("order_rate", check_rate),
    ("max_positions", check_positions),
    ("max_contracts", check_contracts),
    ("trade_premium", check_trade_premium),
    ("total_premium", check_total_premium),
)
REDUCING_CHECKS: tuple[tuple[str, Check], ...] = (
    ("state", check_state),
    ("duplicate", check_exit_duplicate),
    ("reduce_only", check_reduces),
)
# A reprice moves only the price: the state and the price-dependent limits again.
MODIFY_CHECKS: tuple[tuple[str, Check], ...] = (
    ("state", check_state),
    ("limit_price", check_limit_price),
    ("trade_premium", check_trade_premium),
    ("total_premium", check_total_premium),
)
REDUCING_MODIFY_CHECKS: tuple[tuple[str, Check], ...] = (("state", check_state),)


class RiskEngine:
    """Runs the checks in order; the first failing one is the denial."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits

    def check(self, intent: OrderIntent, view: RiskView) -> Verdict:
        checks = REDUCING_CHECKS if intent.reduce_only else OPENING_CHECKS
        return self._run(checks, intent, view)

    def check_modify(self, intent: OrderIntent, view: RiskView) -> Verdict:
        """A reprice of a working order to ``intent.limit_price``.

        ``view.premium_at_risk`` must leave out this order's own working remainder.
        """
        checks = REDUCING_MODIFY_CHECKS if intent.reduce_only else MODIFY_CHECKS
        return self._run(checks, intent, view)

    def _run(
        self, checks: tuple[tuple[str, Check], ...], intent: OrderIntent, view: RiskView
    ) -> Verdict:
        for name, fn in checks:
            reason = fn(intent, view, self.limits)
            if reason is not None:
                return Verdict(False, name, reason, breach=name == "daily_loss")
        return Verdict(True, "ok", "all checks passed")

    def max_entry_price(self, intent: OrderIntent, view: RiskView) -> float:
        """The highest limit (to the cent) at which ``intent`` passes both premium limits."""
        mult = intent.contract.multiplier
        remaining = intent.quantity if intent.remaining is None else intent.remaining
        per_trade = trade_budget(view.opening_equity, self.limits) / (mult * intent.quantity)
        best = per_trade
        if remaining > 0:
            room = total_premium_cap(view.opening_equity, self.limits) - view.premium_at_risk
            best = min(best, room / (mult * remaining))
        if best <= ZERO:
            return 0.0
        return float(best.quantize(Decimal("0.01"), rounding=ROUND_FLOOR))

    def loss_breached(self, view: RiskView) -> str | None:
        """The daily-loss reason when the limit is breached (checked on every mark too)."""
        if view.daily_pnl is None:
            return None
        return check_daily_loss(
            OrderIntent(ContractRef(symbol="-"), Action.BUY, 1, 0.0), view, self.limits
        )


# --- persistence --------------------------------------------------------------------


async def load_status(redis: aioredis.Redis) -> RiskStatus:
    """The persisted state; a missing or unreadable one is ACTIVE (fresh install)."""
    raw: Any = await redis.hgetall(RISK_STATE)
    fields = {as_str(k): as_str(v) for k, v in raw.items()}
    try:
        state = RiskState(fields.get("state", "ACTIVE").upper())
    except ValueError:
        state = RiskState.HALTED  # unknown text: fail safe
        fields["why"] = f"unreadable risk state {fields.get('state')!r}"
    try:
        since = float(fields.get("since", "0") or 0)
    except ValueError:
        since = 0.0
    return RiskStatus(
        state,
        fields.get("why", ""),
        fields.get("who", ""),
        since,
        fields.get("breach_day", ""),
    )


def status_fields(status: RiskStatus) -> dict[str, str]:
    return {
        "state": status.state.value,
        "why": status.why,
        "who": status.who,
        "since": f"{status.since or clock.current().time():.3f}",
        "breach_day": status.breach_day,
    }
