"""Pre-trade risk: every order passes here; a denial is a reason, not an exception.

States: ACTIVE (all checks apply), REDUCING (only orders that lower exposure),
HALTED (nothing; cancels do not pass through risk at all). Reduce-only orders skip
the limits (getting out must not be blocked by a limit on getting in), but never a
halt. The state lives in the ``risk:state`` hash so it survives restarts and
``optbot halt`` / ``resume`` / the dashboard change it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis

from services.strategy.money import cents, dec, fmt
from shared.redis_text import as_str
from shared.schemas import Action, ContractRef
from shared.settings import Settings
from shared.streams import RISK_STATE


class RiskState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


@dataclass(frozen=True, slots=True)
class RiskStatus:
    state: RiskState
    why: str = ""
    who: str = ""
    since: float = 0.0


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_premium_pct: float = 5.0
    max_total_premium_pct: float = 15.0
    max_positions: int = 3
    max_contracts: int = 2
    max_daily_loss_pct: float = 4.0
    max_orders_per_min: int = 10
    max_quote_age_s: float = 5.0

    @classmethod
    def from_settings(cls, s: Settings) -> RiskLimits:
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
    limit_price: float
    reduce_only: bool = False

    @property
    def premium(self) -> Decimal:
        return cents(dec(self.limit_price) * self.contract.multiplier * self.quantity)


@dataclass(frozen=True, slots=True)
class RiskView:
    """What the checks look at, gathered by the caller at the moment of the order."""

    status: RiskStatus
    gateway_connected: bool
    gateway_why: str
    quote_age_s: float | None  # None: no quote at all
    working_keys: frozenset[str]
    open_positions: int  # positions plus working opening orders
    position_qty: int  # contracts of this contract already held (abs)
    premium_at_risk: Decimal  # open long premium plus working opening orders
    net_liquidation: Decimal
    starting_equity: Decimal
    daily_pnl: Decimal
    orders_last_min: int


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    check: str
    reason: str
    halt: bool = False  # the daily loss limit was breached: trading must stop


Check = Callable[[OrderIntent, RiskView, RiskLimits], str | None]


def check_state(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    if v.status.state is RiskState.HALTED:
        return f"risk state HALTED ({v.status.why or 'no reason given'})"
    if v.status.state is RiskState.REDUCING and not i.reduce_only:
        return f"risk state REDUCING: only orders that lower exposure ({v.status.why})"
    return None


def check_duplicate(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    if i.contract.key in v.working_keys:
        return f"an order for {i.contract.key} is already working"
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
    limit = daily_loss_limit(v.starting_equity, lim)
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
    total = v.position_qty + i.quantity
    if total > lim.max_contracts:
        return f"{total} contracts in {i.contract.key} (limit {lim.max_contracts})"
    return None


def check_trade_premium(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    budget = cents(v.net_liquidation * dec(lim.max_premium_pct) / 100)
    if i.premium > budget:
        return (
            f"premium {fmt(i.premium)} > {lim.max_premium_pct:g}% of net liquidation {fmt(budget)}"
        )
    return None


def check_total_premium(i: OrderIntent, v: RiskView, lim: RiskLimits) -> str | None:
    cap = total_premium_cap(v.net_liquidation, lim)
    total = v.premium_at_risk + i.premium
    if total > cap:
        return f"premium at risk {fmt(total)} > {lim.max_total_premium_pct:g}% cap {fmt(cap)}"
    return None


def daily_loss_limit(starting_equity: Decimal, lim: RiskLimits) -> Decimal:
    return cents(starting_equity * dec(lim.max_daily_loss_pct) / 100)


def total_premium_cap(net_liquidation: Decimal, lim: RiskLimits) -> Decimal:
    return cents(net_liquidation * dec(lim.max_total_premium_pct) / 100)


OPENING_CHECKS: tuple[tuple[str, Check], ...] = (
    ("state", check_state),
    ("duplicate", check_duplicate),
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
    ("duplicate", check_duplicate),
)


class RiskEngine:
    """Runs the checks in order; the first failing one is the denial."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits

    def check(self, intent: OrderIntent, view: RiskView) -> Verdict:
        checks = REDUCING_CHECKS if intent.reduce_only else OPENING_CHECKS
        for name, fn in checks:
            reason = fn(intent, view, self.limits)
            if reason is not None:
                return Verdict(False, name, reason, halt=name == "daily_loss")
        return Verdict(True, "ok", "all checks passed")

    def loss_breached(self, view: RiskView) -> str | None:
        """The daily-loss reason when the limit is breached (checked on every mark too)."""
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
    return RiskStatus(state, fields.get("why", ""), fields.get("who", ""), since)


def status_fields(status: RiskStatus) -> dict[str, str]:
    return {
        "state": status.state.value,
        "why": status.why,
        "who": status.who,
        "since": f"{status.since or time.time():.3f}",
    }
