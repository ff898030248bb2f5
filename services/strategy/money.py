"""Money as Decimal: P&L must add up to the cent, which floats cannot promise."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal(0)


def dec(x: float | int | str | Decimal) -> Decimal:
    """Exact decimal of a wire value (via ``repr`` so 2.35 stays 2.35, not 2.3499...)."""
    if isinstance(x, Decimal):
        return x
    return Decimal(repr(x)) if isinstance(x, float) else Decimal(x)


def cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def fmt(x: Decimal) -> str:
    return f"{cents(x):.2f}"
