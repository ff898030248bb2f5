"""How many contracts: a premium budget as a share of net liquidation.

Small accounts are the point: 5 % of 3,756.96 is 187.85, so a 2.50 option
(250.00 a contract) gets zero contracts. Zero is an answer with a reason, never
rounded up to one.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from services.strategy.money import ZERO, cents, dec, fmt


@dataclass(frozen=True, slots=True)
class Size:
    quantity: int
    reason: str
    budget: Decimal
    premium: Decimal  # per contract


def size_order(
    *,
    net_liquidation: float,
    price: float,
    multiplier: int,
    premium_pct: float,
    max_contracts: int,
    room: Decimal | None = None,
) -> Size:
    """Contracts affordable within the per-trade budget, the contract cap and ``room``.

    ``room`` is what the total-premium limit still allows (None: no such limit).
    """
    budget = cents(dec(net_liquidation) * dec(premium_pct) / 100)
    premium = cents(dec(price) * multiplier)
    if premium <= ZERO:
        return Size(0, f"size 0: no premium (price {price})", budget, premium)
    limit, what = budget, "budget"
    if room is not None and room < budget:
        limit, what = max(room, ZERO), "room left under the total premium limit"
    qty = int((limit / premium).to_integral_value(rounding=ROUND_FLOOR))
    if qty == 0:
        return Size(0, f"size 0: premium {fmt(premium)} > {what} {fmt(limit)}", budget, premium)
    if qty > max_contracts:
        reason = f"size {max_contracts}: capped at max contracts (budget allows {qty})"
        return Size(max_contracts, reason, budget, premium)
    total = premium * qty
    return Size(
        qty, f"size {qty}: premium {fmt(total)} within {what} {fmt(limit)}", budget, premium
    )
