"""Entry gate: what an order would be denied for anyway, checked before any chain.

A chain request costs market-data lines (IB grants about 100); an entry the risk
engine would deny for reasons that do not depend on the contract (risk state,
gateway, daily loss, order rate, open positions, premium room) must not cost one.
The reasons read like the risk engine's denials (``check: reason``).
"""

from __future__ import annotations

from decimal import Decimal

from services.strategy.money import ZERO, fmt
from services.strategy.risk import (
    OrderIntent,
    RiskLimits,
    RiskView,
    check_daily_loss,
    check_gateway,
    check_positions,
    check_rate,
    check_state,
    total_premium_cap,
    trade_budget,
)
from shared.schemas import Action, ContractRef

# 0.05 x 100: IB's option tick times the multiplier. No option we would buy (14+ DTE,
# |delta| 0.35-0.50) costs less, so a room below it cannot fit any contract.
MIN_PLAUSIBLE_PREMIUM = Decimal("5.00")

_ANY = OrderIntent(ContractRef(symbol="-"), Action.BUY, 1, 0.0)
_CHECKS = (
    ("state", check_state),
    ("gateway", check_gateway),
    ("daily_loss", check_daily_loss),
    ("order_rate", check_rate),
    ("max_positions", check_positions),
)


def entry_room(view: RiskView, limits: RiskLimits) -> Decimal:
    """What one new entry may spend: the per-trade budget or the total cap's rest, if less."""
    budget = trade_budget(view.opening_equity, limits)
    left = total_premium_cap(view.opening_equity, limits) - view.premium_at_risk
    return max(min(budget, left), ZERO)


def entry_block(view: RiskView, limits: RiskLimits) -> str | None:
    """Why no new entry could pass risk now, whatever the contract; None if one might.

    ``view`` is the desk's view for a contract we do not hold (``position_qty`` 0).
    """
    for name, check in _CHECKS:
        reason = check(_ANY, view, limits)
        if reason is not None:
            return f"{name}: {reason}"
    room = entry_room(view, limits)
    if room < MIN_PLAUSIBLE_PREMIUM:
        at_risk = fmt(view.premium_at_risk)
        return (
            f"total_premium: room left {fmt(room)} < {fmt(MIN_PLAUSIBLE_PREMIUM)}, "
            f"the cheapest plausible contract (premium at risk {at_risk})"
        )
    return None


def free_slots(view: RiskView, limits: RiskLimits) -> int:
    """How many new positions the position limit still allows."""
    return max(limits.max_positions - view.open_positions, 0)
