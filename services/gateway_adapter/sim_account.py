"""The simulated account: cash and positions made only of the executor's own fills.

In simulated-execution mode the broker's account never sees our fills, so the
strategy could not reconcile its ledger against anything. This book can be: it
starts at the broker's NetLiquidation at first connect (else
``OPTBOT_STRAT_STARTING_EQUITY``), pays premium and commission per fill, and is
published as an ``AccountSnapshot`` with ``simulated=True`` and the account id
``{account}-SIM``. Its state lives in the ``sim:account`` hash, written in the
same atomic journal write as the fill event that changes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import msgspec
import redis.asyncio as aioredis

from services.gateway_adapter.journal import HashOp, hset
from shared.bus import Publisher
from shared.contract import ACCOUNT
from shared.contract import ACCOUNT_SIM as SIM_ACCOUNT_HASH  # plain fields, like account:last
from shared.contract import SIM_ACCOUNT as SIM_ACCOUNT_KEY
from shared.redis_text import as_str
from shared.schemas import AccountSnapshot, Action, ContractRef, OrderEvent, Position, Quote

_POS = "pos:"


class SimPosition(msgspec.Struct, kw_only=True):
    contract: ContractRef
    qty: int = 0
    cost: float = 0.0  # signed cost of the open quantity (no commission)


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(SimPosition)


def _books(ev: OrderEvent) -> bool:
    return bool(
        ev.contract is not None
        and ev.action is not None
        and ev.fill_price is not None
        and ev.fill_qty
    )


def _trade(p: SimPosition, signed: int, unit: float) -> float:
    """Move ``p`` by ``signed`` contracts at ``unit`` per contract; returns realized P&L."""
    realized = 0.0
    if p.qty and (p.qty > 0) != (signed > 0):  # the closing part releases average cost
        closing = min(abs(signed), abs(p.qty))
        released = p.cost * closing / abs(p.qty)
        step = closing if signed > 0 else -closing
        realized = -step * unit - released
        p.cost -= released
        p.qty += step
        signed -= step
    if signed:
        p.cost = (p.cost if p.qty else 0.0) + signed * unit
        p.qty += signed
    return realized


class SimBooking:
    """Fills booked on a copy of the account; adopted only after the journal wrote them.

    Booking in memory before the write was the double count: a failed write left the
    fill in memory and its redelivery booked it again (issue 14).
    """

    def __init__(self, account: SimAccount, events: Sequence[OrderEvent]) -> None:
        self._account = account
        self.events = list(events)
        self._staged: tuple[float, float, dict[str, SimPosition | None]] | None = None

    def stage(self) -> list[HashOp]:
        a = self._account
        cash, realized = a.cash, a.realized
        changed: dict[str, SimPosition | None] = {}
        for ev in self.events:
            assert ev.contract is not None and ev.fill_price is not None  # _books() held
            ref, key = ev.contract, ev.contract.key
            signed = ev.fill_qty if ev.action is Action.BUY else -ev.fill_qty
            unit = ev.fill_price * ref.multiplier
            cash = round(cash - signed * unit - ev.commission, 6)
            held = changed[key] if key in changed else a.positions.get(key)
            p = msgspec.structs.replace(held) if held else SimPosition(contract=ref)
            realized += _trade(p, signed, unit)
            changed[key] = p if p.qty else None
        self._staged = (cash, realized, changed)
        ops = [
            hset(SIM_ACCOUNT_KEY, _POS + k, _enc.encode(p))
            if p is not None
            else HashOp(SIM_ACCOUNT_KEY, _POS + k, None)
            for k, p in changed.items()
        ]
        return [
            *ops,
            hset(SIM_ACCOUNT_KEY, "cash", repr(cash)),
            hset(SIM_ACCOUNT_KEY, "realized", repr(round(realized, 6))),
        ]

    def commit(self) -> None:
        if self._staged is not None:
            self._account.adopt(*self._staged)
            self._staged = None


class SimAccount:
    """Cash and positions of simulated fills; snapshots on change and every few seconds."""

    def __init__(
        self,
        redis: aioredis.Redis,
        publisher: Publisher,
        *,
        default_equity: float,
        broker_equity: Callable[[], float | None],
        account_id: Callable[[], str],
        quote: Callable[[str], Quote | None],
        interval_s: float = 5.0,
    ) -> None:
        self._redis = redis
        self._pub = publisher
        self._default = default_equity
        self._broker_equity = broker_equity
        self._account_id = account_id
        self._quote = quote
        self._interval = interval_s
        self._dirty = asyncio.Event()
        self.start: float | None = None
        self.cash = 0.0
        self.realized = 0.0
        self.positions: dict[str, SimPosition] = {}
        self.published = 0

    async def load(self) -> None:
        """Read the book a previous owner left (positions, cash, starting equity)."""
        raw = await self._redis.hgetall(SIM_ACCOUNT_KEY)
        fields = {as_str(k): v for k, v in raw.items()}
        self.positions.clear()
        self.start = float(fields["start"]) if "start" in fields else None
        self.cash = float(fields.get("cash", fields.get("start", b"0")))
        self.realized = float(fields.get("realized", b"0"))
        for name, value in fields.items():
            if name.startswith(_POS):
                with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                    p = _dec.decode(value)
                    self.positions[p.contract.key] = p

    async def open(self) -> None:
        """At connect: fix the starting equity once (broker NetLiquidation, else the setting)."""
        if self.start is not None:
            return
        start = self._broker_equity() or self._default
        if await self._redis.hsetnx(SIM_ACCOUNT_KEY, "start", repr(start)):
            await self._redis.hsetnx(SIM_ACCOUNT_KEY, "cash", repr(start))
        await self.load()
        self._dirty.set()

    def booking(self, events: Sequence[OrderEvent]) -> SimBooking | None:
        """The fills among ``events`` as a journal ``Booking`` (None when there are none)."""
        fills = [ev for ev in events if _books(ev)]
        return SimBooking(self, fills) if fills else None

    def adopt(self, cash: float, realized: float, changed: dict[str, SimPosition | None]) -> None:
        """Take over state staged by a booking whose journal write succeeded."""
        self.cash, self.realized = cash, realized
        for key, p in changed.items():
            if p is None:
                self.positions.pop(key, None)
            else:
                self.positions[key] = p
        self._dirty.set()

    def snapshot(self) -> AccountSnapshot | None:
        if self.start is None:
            return None
        positions: list[Position] = []
        value = 0.0
        for p in self.positions.values():
            q = self._quote(p.contract.key)
            mark = q.mark if q is not None else None
            mult = p.contract.multiplier
            mv = p.qty * mark * mult if mark is not None else p.cost
            value += mv
            positions.append(
                Position(
                    contract=p.contract,
                    quantity=p.qty,
                    avg_cost=round(p.cost / p.qty, 6),  # per contract, as IB reports it
                    market_price=mark,
                    unrealized_pnl=round(mv - p.cost, 6),
                )
            )
        account = self._account_id()
        return AccountSnapshot(
            account=f"{account}-SIM" if account else "SIM",
            net_liquidation=round(self.cash + value, 6),
            cash=round(self.cash, 6),
            buying_power=round(max(0.0, self.cash), 6),
            realized_pnl=round(self.realized, 6),
            unrealized_pnl=round(sum(x.unrealized_pnl or 0.0 for x in positions), 6),
            positions=positions,
            simulated=True,
        )

    def publish(self) -> bool:
        snap = self.snapshot()
        if snap is None:
            return False
        self._pub.add(ACCOUNT, snap, key=snap.account)
        self._pub.add_hash(
            SIM_ACCOUNT_HASH,
            {
                "account": snap.account,
                "net_liquidation": repr(snap.net_liquidation),
                "cash": repr(snap.cash),
                "start": repr(self.start),
                "positions": str(len(snap.positions)),
            },
        )
        self.published += 1
        return True

    async def run(self, stop: asyncio.Event, live: Callable[[], bool]) -> None:
        """Publish after fills (debounced) and every ``interval_s`` for fresh marks."""
        while not stop.is_set():
            waiters = [asyncio.ensure_future(e.wait()) for e in (self._dirty, stop)]
            await asyncio.wait(waiters, timeout=self._interval, return_when="FIRST_COMPLETED")
            for w in waiters:
                w.cancel()
            if stop.is_set():
                return
            await asyncio.sleep(0.1)  # let a burst of partial fills settle
            self._dirty.clear()
            if live():
                self.publish()
