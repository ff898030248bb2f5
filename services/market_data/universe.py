"""The watched universe as contracts the gateway can qualify."""

from __future__ import annotations

from shared.schemas import ContractRef, SecType

INDEXES = {"VIX": "CBOE"}


def contract_for(symbol: str) -> ContractRef:
    """VIX is a CBOE index (no bid/ask); everything else a SMART-routed stock or ETF."""
    if symbol in INDEXES:
        return ContractRef(symbol=symbol, sec_type=SecType.IND, exchange=INDEXES[symbol])
    return ContractRef(symbol=symbol, sec_type=SecType.STK)


def universe(symbols: list[str]) -> list[ContractRef]:
    return [contract_for(s) for s in symbols]


_IB_BAR_SIZES = {
    5: "5 secs",
    10: "10 secs",
    15: "15 secs",
    30: "30 secs",
    60: "1 min",
    120: "2 mins",
    180: "3 mins",
    300: "5 mins",
    600: "10 mins",
    900: "15 mins",
    1200: "20 mins",
    1800: "30 mins",
    3600: "1 hour",
}


def ib_bar_size(seconds: int) -> str:
    """IB's barSizeSetting for ``seconds``; other lengths are not served by IB."""
    try:
        return _IB_BAR_SIZES[seconds]
    except KeyError:
        raise ValueError(
            f"no IB bar size of {seconds}s; use one of {sorted(_IB_BAR_SIZES)}"
        ) from None
