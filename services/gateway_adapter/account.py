"""Account state on the ``account`` stream and the ``account:last`` hash.

ib_async keeps account values, portfolio and P&L current once connected (it
subscribes at logon; we add ``reqPnL`` for daily P&L). Changes are debounced into
one ``AccountSnapshot``; ``cmd.account_refresh`` publishes one at once.
Note: the stream is named ``account``, so the hash cannot share that key.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

from services.gateway_adapter.connection import IbConnection
from shared.bus import Publisher
from shared.contract import ACCOUNT
from shared.contract import ACCOUNT_LAST as ACCOUNT_HASH
from shared.logs import get_logger
from shared.schemas import AccountSnapshot, ContractRef, Position, Right, SecType

log = get_logger("optbot.gateway_adapter.account")

_SEC_TYPES = {"STK": SecType.STK, "IND": SecType.IND, "OPT": SecType.OPT}


def money(x: Any) -> float | None:
    """A finite amount, or None for NaN, inf, IB's empty strings and absurd values."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and abs(v) <= 1e12 and v != 1.7976931348623157e308 else None


def ref_from_contract(c: Any) -> ContractRef | None:
    """The bus identity of an IB contract (None for types we do not trade)."""
    sec = _SEC_TYPES.get(c.secType)
    if sec is None or not c.symbol:
        return None
    if sec is SecType.OPT:
        return ContractRef(
            symbol=c.symbol,
            sec_type=sec,
            con_id=c.conId,
            currency=c.currency or "USD",
            expiry=c.lastTradeDateOrContractMonth,
            strike=c.strike,
            right=Right(c.right[:1]) if c.right[:1] in ("C", "P") else None,
            multiplier=int(float(c.multiplier or 100)),
        )
    return ContractRef(symbol=c.symbol, sec_type=sec, con_id=c.conId, currency=c.currency or "USD")


class AccountReporter:
    """Turns ib_async's account state into snapshots, debounced."""

    def __init__(self, conn: IbConnection, publisher: Publisher, debounce_s: float = 0.2) -> None:
        self._conn = conn
        self._pub = publisher
        self._debounce = debounce_s
        self._dirty = asyncio.Event()
        self.published = 0
        ib = conn.ib
        for event in (ib.accountValueEvent, ib.positionEvent, ib.pnlEvent, ib.updatePortfolioEvent):
            event += self._on_change

    def _on_change(self, *_: Any) -> None:
        self._dirty.set()

    @property
    def account(self) -> str:
        return self._conn.status.info.account

    def net_liquidation(self) -> float | None:
        """The broker's NetLiquidation, once ib_async has the account values."""
        return self._values().get("NetLiquidation") if self.account else None

    def held_keys(self) -> set[str]:
        """ContractRef keys of every non-zero position (their lines get top priority)."""
        keys: set[str] = set()
        for p in self._conn.ib.positions():
            ref = ref_from_contract(p.contract) if p.position else None
            if ref is not None:
                keys.add(ref.key)
        return keys

    def on_connected(self) -> None:
        """Subscribe daily P&L (reqPnL); account values come with ib_async's logon."""
        if self.account:
            self._conn.ib.reqPnL(self.account)
        self._dirty.set()

    def _values(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for v in self._conn.ib.accountValues(self.account):
            if v.tag in ("NetLiquidation", "TotalCashValue", "BuyingPower") and v.currency in (
                "USD",
                "BASE",
            ):
                amount = money(v.value)
                if amount is not None and (v.tag not in out or v.currency == "USD"):
                    out[v.tag] = amount
        return out

    def _positions(self) -> list[Position]:
        out: list[Position] = []
        for item in self._conn.ib.portfolio(self.account):
            ref = ref_from_contract(item.contract)
            if ref is None or not item.position:
                continue
            out.append(
                Position(
                    contract=ref,
                    quantity=int(item.position),
                    avg_cost=money(item.averageCost) or 0.0,
                    market_price=_price(item.marketPrice),
                    unrealized_pnl=money(item.unrealizedPNL),
                )
            )
        return out

    def snapshot(self) -> AccountSnapshot | None:
        """The current snapshot, or None until NetLiquidation is known."""
        values = self._values()
        if "NetLiquidation" not in values or not self.account:
            return None
        pnl = next(iter(self._conn.ib.pnl(self.account)), None)
        return AccountSnapshot(
            account=self.account,
            net_liquidation=values["NetLiquidation"],
            cash=values.get("TotalCashValue", 0.0),
            buying_power=values.get("BuyingPower", 0.0),
            day_pnl=money(pnl.dailyPnL) if pnl else None,
            unrealized_pnl=money(pnl.unrealizedPnL) if pnl else None,
            realized_pnl=money(pnl.realizedPnL) if pnl else None,
            positions=self._positions(),
        )

    def publish(self) -> bool:
        snap = self.snapshot()
        if snap is None:
            return False
        self._pub.add(ACCOUNT, snap, key=snap.account)
        self._pub.add_hash(
            ACCOUNT_HASH,
            {
                "account": snap.account,
                "net_liquidation": repr(snap.net_liquidation),
                "cash": repr(snap.cash),
                "buying_power": repr(snap.buying_power),
                "day_pnl": "" if snap.day_pnl is None else repr(snap.day_pnl),
                "positions": str(len(snap.positions)),
            },
        )
        self.published += 1
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Publish a snapshot shortly after account changes settle."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), 0.5)
            if not self._dirty.is_set():
                continue
            await asyncio.sleep(self._debounce)
            self._dirty.clear()
            if self._conn.connected:
                self.publish()


def _price(x: Any) -> float | None:
    v = money(x)
    return v if v is not None and 0 < v <= 1e9 else None
