"""Pure indicator functions over close series (oldest first)."""

from __future__ import annotations

from collections.abc import Sequence


def roc_pct(closes: Sequence[float], bars: int) -> float | None:
    """Rate of change over ``bars`` bars, in percent; None until there is enough data."""
    if bars <= 0 or len(closes) < bars + 1 or closes[-1 - bars] <= 0:
        return None
    return (closes[-1] / closes[-1 - bars] - 1.0) * 100.0


def sma(values: Sequence[float], bars: int) -> float | None:
    """Simple moving average of the last ``bars`` values."""
    if bars <= 0 or len(values) < bars:
        return None
    return sum(values[-bars:]) / bars


def pct_from(value: float, reference: float | None) -> float | None:
    """How far ``value`` is above ``reference``, in percent."""
    if reference is None or reference <= 0:
        return None
    return (value / reference - 1.0) * 100.0
