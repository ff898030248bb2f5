"""The simulated universe: reference prices and behaviour of each underlying.

Reference prices anchor option strikes and conIds, so they must not depend on the
seed; the seed only shapes the price path.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """Static description of one underlying."""

    symbol: str
    price: float  # reference spot at simulator start
    vol: float  # VIX only (its own volatility); underlyings diffuse at ``iv`` (market.py)
    beta: float  # loading on the market (SPY) factor
    iv: float  # at-the-money implied volatility when VIX is at its reference level
    primary: str
    name: str
    etf: bool = False
    foreign_listing: str = ""  # second exchange (EUR) so a bare Stock(symbol) is ambiguous


SPECS: tuple[SymbolSpec, ...] = (
    SymbolSpec("SPY", 590.0, 0.15, 1.0, 0.14, "ARCA", "SPDR S&P 500 ETF TRUST", etf=True),
    SymbolSpec("QQQ", 510.0, 0.20, 1.2, 0.19, "NASDAQ", "INVESCO QQQ TRUST SERIES 1", etf=True),
    SymbolSpec("IWM", 225.0, 0.22, 1.1, 0.22, "ARCA", "ISHARES RUSSELL 2000 ETF", etf=True),
    SymbolSpec("DIA", 430.0, 0.14, 0.9, 0.14, "ARCA", "SPDR DJIA TRUST", etf=True),
    SymbolSpec("AAPL", 230.0, 0.26, 1.1, 0.25, "NASDAQ", "APPLE INC", foreign_listing="IBIS"),
    SymbolSpec("MSFT", 420.0, 0.24, 1.0, 0.23, "NASDAQ", "MICROSOFT CORP", foreign_listing="IBIS"),
    SymbolSpec("NVDA", 135.0, 0.50, 1.8, 0.48, "NASDAQ", "NVIDIA CORP", foreign_listing="IBIS"),
    SymbolSpec("AMZN", 210.0, 0.32, 1.2, 0.30, "NASDAQ", "AMAZON.COM INC", foreign_listing="IBIS"),
    SymbolSpec("META", 590.0, 0.38, 1.3, 0.36, "NASDAQ", "META PLATFORMS INC-CLASS A"),
    SymbolSpec("GOOGL", 175.0, 0.30, 1.1, 0.29, "NASDAQ", "ALPHABET INC-CL A"),
    SymbolSpec("TSLA", 350.0, 0.60, 2.0, 0.58, "NASDAQ", "TESLA INC"),
    SymbolSpec("AMD", 125.0, 0.48, 1.7, 0.46, "NASDAQ", "ADVANCED MICRO DEVICES"),
    SymbolSpec("NFLX", 880.0, 0.36, 1.2, 0.34, "NASDAQ", "NETFLIX INC"),
    SymbolSpec("JPM", 240.0, 0.22, 1.0, 0.21, "NYSE", "JPMORGAN CHASE & CO"),
    SymbolSpec("BAC", 45.0, 0.26, 1.2, 0.25, "NYSE", "BANK OF AMERICA CORP"),
    SymbolSpec("XOM", 110.0, 0.24, 0.6, 0.23, "NYSE", "EXXON MOBIL CORP"),
    SymbolSpec("UNH", 520.0, 0.26, 0.5, 0.25, "NYSE", "UNITEDHEALTH GROUP INC"),
    SymbolSpec("V", 310.0, 0.20, 0.9, 0.19, "NYSE", "VISA INC-CLASS A SHARES"),
    SymbolSpec("MA", 520.0, 0.21, 1.0, 0.20, "NYSE", "MASTERCARD INC - A"),
    SymbolSpec("COST", 900.0, 0.22, 0.8, 0.21, "NASDAQ", "COSTCO WHOLESALE CORP"),
    SymbolSpec("AVGO", 230.0, 0.45, 1.5, 0.44, "NASDAQ", "BROADCOM INC"),
    SymbolSpec("CRM", 330.0, 0.34, 1.2, 0.33, "NYSE", "SALESFORCE INC"),
    SymbolSpec("ORCL", 170.0, 0.32, 1.1, 0.31, "NYSE", "ORACLE CORP"),
    SymbolSpec("INTC", 21.0, 0.45, 1.2, 0.44, "NASDAQ", "INTEL CORP"),
    SymbolSpec("DIS", 112.0, 0.26, 1.0, 0.25, "NYSE", "WALT DISNEY CO/THE"),
    SymbolSpec("WMT", 92.0, 0.18, 0.6, 0.18, "NYSE", "WALMART INC"),
    SymbolSpec("KO", 63.0, 0.15, 0.5, 0.15, "NYSE", "COCA-COLA CO/THE"),
    SymbolSpec("PFE", 26.0, 0.24, 0.6, 0.24, "NYSE", "PFIZER INC"),
)

VIX_SPEC = SymbolSpec("VIX", 16.0, 0.9, -5.0, 0.0, "CBOE", "CBOE Volatility Index")

BY_SYMBOL: dict[str, SymbolSpec] = {s.symbol: s for s in SPECS}
