"""Option chains and historical bars: the request/reply commands that ask IB.

A chain is ``reqSecDefOptParams`` for the underlying, then the expiries inside the
DTE window and the strikes inside the moneyness window (nearest strikes first, at
most ``OPTBOT_GW_CHAIN_MAX_CONTRACTS`` or the request's ``max_contracts`` if fewer;
``itm_moneyness`` narrows the in-the-money side), each qualified before it is returned.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from services.gateway_adapter.connection import IbConnection
from services.gateway_adapter.pacing import TokenBucket
from services.gateway_adapter.publish import QuotePublisher
from services.gateway_adapter.qualify import Failure, Qualified, Qualifier
from services.gateway_adapter.sanitize import price, quote_from_ticker
from shared import clock
from shared.market_calendar import dte
from shared.schemas import (
    NO_CONTRACT_IN_WINDOW,
    Bar,
    ContractRef,
    HistoryBars,
    HistoryRequest,
    OptionChain,
    OptionChainRequest,
    Right,
    SecType,
)

_UNITS = {
    "sec": 1,
    "secs": 1,
    "min": 60,
    "mins": 60,
    "hour": 3600,
    "hours": 3600,
    "day": 86_400,
    "days": 86_400,
    "week": 604_800,
    "month": 2_592_000,
}


def bar_seconds(bar_size: str) -> int:
    """IB bar size text ("1 min", "5 mins", "1 hour", "1 day") in seconds."""
    n, _, unit = bar_size.strip().partition(" ")
    return int(n) * _UNITS[unit.strip().lower()]


class Requests:
    """Chain and history requests, paced and bounded by a timeout."""

    def __init__(
        self,
        conn: IbConnection,
        qualifier: Qualifier,
        quotes: QuotePublisher,
        pacer: TokenBucket,
        *,
        timeout_s: float,
        chain_max: int,
    ) -> None:
        self._conn = conn
        self._qualifier = qualifier
        self._quotes = quotes
        self._pacer = pacer
        self._timeout = timeout_s
        self._chain_max = chain_max

    async def _one(self, ref: ContractRef) -> Qualified | Failure:
        return (await self._qualifier.qualify([ref]))[ref.key]

    async def _spot(self, q: Qualified) -> float | None:
        """Underlying price: our own stream if we have it, else one snapshot."""
        live = self._quotes.quote(q.ref.key)
        if live is not None and live.mark is not None:
            return live.mark
        await self._pacer.take()
        tickers = await asyncio.wait_for(self._conn.ib.reqTickersAsync(q.contract), self._timeout)
        if not tickers:
            return None
        quote = quote_from_ticker(tickers[0], q.ref, q.ref.sec_type is SecType.IND)
        return quote.mark

    async def option_chain(self, req: OptionChainRequest) -> OptionChain:
        under = await self._one(ContractRef(symbol=req.underlying))
        if isinstance(under, Failure):
            return _chain(req, [], f"underlying: {under.reason} ({under.code})")
        await self._pacer.take()
        params = await asyncio.wait_for(
            self._conn.ib.reqSecDefOptParamsAsync(req.underlying, "", "STK", under.contract.conId),
            self._timeout,
        )
        row: Any = next((p for p in params if p.exchange == "SMART"), params[0] if params else None)
        spot = await self._spot(under)
        if row is None or spot is None:
            return _chain(req, [], "no option parameters or no underlying price")
        refs = self._window(req, row, spot)
        results = await self._qualifier.qualify(refs)
        found = [r.ref for r in results.values() if isinstance(r, Qualified)]
        found.sort(key=lambda r: (r.expiry, r.strike or 0.0, r.right or ""))
        return _chain(req, found, "" if found else NO_CONTRACT_IN_WINDOW)

    def _window(self, req: OptionChainRequest, row: Any, spot: float) -> list[ContractRef]:
        now = clock.current().time()  # DTE on the NYSE date, not the host's local date
        expiries = sorted(e for e in row.expirations if req.min_dte <= dte(e, now) <= req.max_dte)
        strikes = sorted(
            (k for k in row.strikes if abs(k / spot - 1.0) <= req.moneyness),
            key=lambda k: abs(k - spot),
        )
        rights = [req.right] if req.right else [Right.CALL, Right.PUT]
        cap = min(self._chain_max, req.max_contracts or self._chain_max)
        refs: list[ContractRef] = []
        for strike in strikes:
            for expiry in expiries:
                for right in rights:
                    if len(refs) >= cap:
                        return refs
                    if not _in_window(req, right, strike / spot - 1.0):
                        continue
                    refs.append(
                        ContractRef(
                            symbol=req.underlying,
                            sec_type=SecType.OPT,
                            expiry=expiry,
                            strike=float(strike),
                            right=right,
                            multiplier=100,
                        )
                    )
        return refs

    async def history(self, req: HistoryRequest) -> HistoryBars:
        res = await self._one(req.contract)
        if isinstance(res, Failure):
            return _bars(req, [], f"{res.reason} ({res.code})")
        try:
            interval = bar_seconds(req.bar_size)
        except (KeyError, ValueError):
            return _bars(req, [], f"unknown bar size {req.bar_size!r}")
        await self._pacer.take()
        with self._conn.watch([res.contract]) as errors:
            raw = await asyncio.wait_for(
                self._conn.ib.reqHistoricalDataAsync(
                    res.contract,
                    endDateTime="",
                    durationStr=req.duration,
                    barSizeSetting=req.bar_size,
                    whatToShow="TRADES",
                    useRTH=False,
                    formatDate=2,
                ),
                self._timeout,
            )
        bars = [b for b in (_bar(req.contract.key, x, interval) for x in raw or []) if b]
        problems = errors[id(res.contract)]
        error = f"{problems[0][1]} ({problems[0][0]})" if problems and not bars else ""
        return _bars(req, bars, error)


def _in_window(req: OptionChainRequest, right: Right, m: float) -> bool:
    """``m`` is strike / spot - 1: calls are in the money below spot, puts above it."""
    itm = req.moneyness if req.itm_moneyness is None else req.itm_moneyness
    depth = -m if right is Right.CALL else m  # > 0: in the money by that fraction
    return depth <= itm and -depth <= req.moneyness


def _bar(symbol: str, b: Any, interval: int) -> Bar | None:
    values = [price(v) for v in (b.open, b.high, b.low, b.close)]
    if any(v is None for v in values):
        return None
    when = b.date
    if not isinstance(when, dt.datetime):
        when = dt.datetime(when.year, when.month, when.day, tzinfo=dt.UTC)
    o, h, low, c = values
    assert o is not None and h is not None and low is not None and c is not None
    return Bar(
        symbol=symbol,
        start_ns=int(when.timestamp() * 1e9),
        interval_s=interval,
        open=o,
        high=h,
        low=low,
        close=c,
        volume=max(0.0, float(b.volume or 0)),
    )


def _chain(req: OptionChainRequest, refs: list[ContractRef], error: str) -> OptionChain:
    return OptionChain(
        request_id=req.request_id, underlying=req.underlying, contracts=refs, error=error
    )


def _bars(req: HistoryRequest, bars: list[Bar], error: str) -> HistoryBars:
    return HistoryBars(request_id=req.request_id, symbol=req.contract.key, bars=bars, error=error)
