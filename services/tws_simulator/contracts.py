"""Contract universe: instruments, stable conIds, matching of partial requests.

IB answers a partial contract with every instrument that matches it; ib_async's
qualifyContracts treats more than one answer as ambiguous. We mimic that.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from .chains import Chain, chain_for
from .symbols import BY_SYMBOL, SPECS, VIX_SPEC, SymbolSpec

OPTION_MULTIPLIER = "100"


def stable_con_id(identity: str) -> int:
    """A conId derived from the contract identity: same contract, same id, every run."""
    digest = hashlib.sha256(identity.encode()).digest()
    return 100_000_000 + int.from_bytes(digest[:4], "big") % 900_000_000


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable (or quotable) contract as the simulator knows it."""

    con_id: int
    symbol: str
    sec_type: str  # STK | IND | OPT
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str
    trading_class: str
    long_name: str
    expiry: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    under_con_id: int = 0
    etf: bool = False

    @property
    def is_option(self) -> bool:
        return self.sec_type == "OPT"

    @property
    def mult(self) -> float:
        return float(self.multiplier) if self.multiplier else 1.0

    def core_fields(self) -> list[object]:
        """conId..tradingClass with exchange: position, execDetails, openOrder layout."""
        return [
            self.con_id,
            self.symbol,
            self.sec_type,
            self.expiry,
            self.strike,
            self.right,
            self.multiplier,
            self.exchange,
            self.currency,
            self.local_symbol,
            self.trading_class,
        ]

    def portfolio_fields(self) -> list[object]:
        """conId..tradingClass with primaryExchange: the updatePortfolio (msg 7) layout."""
        return [
            self.con_id,
            self.symbol,
            self.sec_type,
            self.expiry,
            self.strike,
            self.right,
            self.multiplier,
            self.primary_exchange,
            self.currency,
            self.local_symbol,
            self.trading_class,
        ]


@dataclass(frozen=True, slots=True)
class ContractQuery:
    """The 12 contract fields a client sends in reqContractDetails / reqMktData / placeOrder."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    expiry: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""

    @classmethod
    def from_fields(cls, f: list[str]) -> ContractQuery:
        """Parse fields[0:12] in ib_async's Contract wire order."""
        return cls(
            con_id=int(f[0] or 0),
            symbol=f[1].upper(),
            sec_type=f[2].upper(),
            expiry=f[3],
            strike=float(f[4] or 0),
            right=_norm_right(f[5]),
            multiplier=f[6],
            exchange=f[7].upper(),
            primary_exchange=f[8].upper(),
            currency=f[9].upper(),
            local_symbol=f[10],
            trading_class=f[11],
        )


def _norm_right(right: str) -> str:
    r = right.upper()
    return {"CALL": "C", "PUT": "P"}.get(r, r if r in ("C", "P") else "")


def occ_symbol(symbol: str, expiry: str, right: str, strike: float) -> str:
    """OCC option symbol, which is IB's localSymbol for US equity options."""
    return f"{symbol:<6}{expiry[2:]}{right}{round(strike * 1000):08d}"


class Universe:
    """All instruments; options are created lazily from chains."""

    def __init__(self, today: dt.date) -> None:
        self.today = today
        self.by_con_id: dict[int, Instrument] = {}
        self.listings: dict[str, list[Instrument]] = {}
        self._options: dict[tuple[str, str, float, str], Instrument] = {}
        self._all_chains_built = False
        for spec in SPECS:
            self.listings[spec.symbol] = self._stock_listings(spec)
        self.vix = self._add(
            Instrument(
                stable_con_id("IND|VIX|CBOE"),
                "VIX",
                "IND",
                "CBOE",
                "CBOE",
                "USD",
                "VIX",
                "VIX",
                VIX_SPEC.name,
            )
        )

    def _add(self, inst: Instrument) -> Instrument:
        self.by_con_id[inst.con_id] = inst
        return inst

    def roll(self, today: dt.date) -> None:
        """A new trading day lists new expirations and delists expired ones, as IB does
        (sessions run for days in lockstep). Known instruments keep resolving by conId:
        a position in an expired option is still a contract."""
        if today != self.today:
            self.today = today
            self._all_chains_built = False

    def _stock_listings(self, spec: SymbolSpec) -> list[Instrument]:
        usd = self._add(
            Instrument(
                stable_con_id(f"STK|{spec.symbol}|USD"),
                spec.symbol,
                "STK",
                "SMART",
                spec.primary,
                "USD",
                spec.symbol,
                spec.symbol,
                spec.name,
                etf=spec.etf,
            )
        )
        out = [usd]
        if spec.foreign_listing:
            out.append(
                self._add(
                    Instrument(
                        stable_con_id(f"STK|{spec.symbol}|EUR"),
                        spec.symbol,
                        "STK",
                        "SMART",
                        spec.foreign_listing,
                        "EUR",
                        spec.symbol,
                        spec.symbol,
                        spec.name,
                    )
                )
            )
        return out

    def underlying(self, symbol: str) -> Instrument | None:
        """The USD listing of an optionable underlying."""
        listings = self.listings.get(symbol)
        return listings[0] if listings else None

    def chain(self, symbol: str) -> Chain | None:
        spec = BY_SYMBOL.get(symbol)
        return chain_for(spec.price, spec.etf, self.today) if spec else None

    def option(self, symbol: str, expiry: str, strike: float, right: str) -> Instrument:
        """The option instrument for a chain point, created and registered on first use."""
        key = (symbol, expiry, strike, right)
        inst = self._options.get(key)
        if inst is None:
            under = self.listings[symbol][0]
            inst = self._add(
                Instrument(
                    stable_con_id(f"OPT|{symbol}|{expiry}|{strike:.3f}|{right}"),
                    symbol,
                    "OPT",
                    "SMART",
                    "",
                    "USD",
                    occ_symbol(symbol, expiry, right, strike),
                    symbol,
                    under.long_name,
                    expiry,
                    strike,
                    right,
                    OPTION_MULTIPLIER,
                    under.con_id,
                )
            )
            self._options[key] = inst
        return inst

    def by_id(self, con_id: int) -> Instrument | None:
        """Look up a conId, building all option chains once if it is not known yet."""
        inst = self.by_con_id.get(con_id)
        if inst is None and not self._all_chains_built:
            self._all_chains_built = True
            for spec in SPECS:
                list(self._enumerate_options(ContractQuery(symbol=spec.symbol, sec_type="OPT")))
            inst = self.by_con_id.get(con_id)
        return inst

    def match(self, q: ContractQuery) -> list[Instrument]:
        """Every instrument matching a (possibly partial) contract, as IB would list them."""
        if q.con_id:
            inst = self.by_id(q.con_id)
            return [inst] if inst and _compatible(inst, q) else []
        if q.sec_type == "IND":
            return [self.vix] if _index_matches(q) else []
        if q.sec_type == "OPT":
            return list(self._enumerate_options(q))
        if q.sec_type in ("STK", ""):
            return [i for i in self.listings.get(q.symbol, []) if _stock_matches(i, q)]
        return []

    def _enumerate_options(self, q: ContractQuery) -> Iterator[Instrument]:
        chain = self.chain(q.symbol)
        if chain is None or q.currency not in ("", "USD"):
            return
        if q.multiplier not in ("", OPTION_MULTIPLIER) or q.trading_class not in ("", q.symbol):
            return
        rights = (q.right,) if q.right else ("C", "P")
        for expiry in chain.expirations:
            if q.expiry and not expiry.startswith(q.expiry):
                continue
            for strike in chain.strikes:
                if q.strike and abs(strike - q.strike) > 1e-6:
                    continue
                for right in rights:
                    inst = self.option(q.symbol, expiry, strike, right)
                    if not q.local_symbol or q.local_symbol == inst.local_symbol:
                        yield inst


def _compatible(inst: Instrument, q: ContractQuery) -> bool:
    """A conId request may repeat other fields; they must not contradict the conId."""
    return (not q.symbol or q.symbol == inst.symbol) and (
        not q.sec_type or q.sec_type == inst.sec_type
    )


def _index_matches(q: ContractQuery) -> bool:
    return q.symbol == "VIX" and q.exchange in ("", "CBOE") and q.currency in ("", "USD")


def _stock_matches(inst: Instrument, q: ContractQuery) -> bool:
    if q.exchange and q.exchange not in ("SMART", inst.primary_exchange):
        return False
    if q.primary_exchange and q.primary_exchange != inst.primary_exchange:
        return False
    if q.currency and q.currency != inst.currency:
        return False
    return not q.local_symbol or q.local_symbol.upper() == inst.local_symbol
