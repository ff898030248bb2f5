"""What must hold after every fault, read from the streams (never from a service's memory).

- no order filled twice: each (client order id, exec id) once; no order filled beyond
  its quantity; no fill for an order that was never requested;
- no fill lost: ``strategy:positions`` equals the net of the fills on ``orders:events``
  (and the adapter's account snapshot, when it reports positions);
- no position opened while HALTED / REDUCING (the strategy's ``risk.state`` records on
  ``sys:control``: what it applied, not what was asked), while the active
  gateway was not connected (``gw:status``), or on a quote older than the staleness
  limit (the newest ``md:ticks`` entry of the contract, by Redis entry time);
- ``sys:dlq`` holds only what the scenario made malformed (checked by the caller).

Times are Redis entry ids (the Redis server's clock), so no service's clock is trusted.
``GRACE_S`` allows for the time a consumer needs to see a status change. A backtest
reads the same streams on simulated time instead: ``Timeline`` maps an entry id to the
``t`` of the newest ``sys:clock`` tick at or before it (``read_record(timeline=...)``),
with one lockstep step as the grace.

Shared by the fault suite (tests/fault) and ``optbot backtest``.
"""

from __future__ import annotations

import bisect
import contextlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from shared.contract import (
    ACCOUNT,
    GW_STATUS,
    MD_TICKS,
    ORDERS_EVENTS,
    ORDERS_REQUESTS,
    SIM_ACCOUNT,
    STRATEGY_POSITIONS,
    SYS_CONTROL,
    SYS_DLQ,
)
from shared.envelope import DecodeError, decode
from shared.schemas import (
    AccountSnapshot,
    ConnState,
    GatewayStatus,
    OrderEvent,
    OrderEventKind,
    OrderNew,
    RiskState,
    RiskStateChange,
)

GRACE_S = 1.0
FILL_KINDS = (OrderEventKind.FILL, OrderEventKind.PARTIAL, OrderEventKind.EXPIRED)


def entry_time(entry_id: bytes | str) -> float:
    """Seconds since the epoch on the Redis server's clock (the ms part of the id)."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-")[0]) / 1000.0


When = Callable[[bytes | str], float]  # an entry id -> the time it counts as written at


class Timeline:
    """Simulated time of an entry: the ``t`` of the newest clock tick written at or before
    it (by the Redis server's millisecond: ids of different streams compare by time only).

    In lockstep a service acts on a tick only after the driver wrote it, and the next tick
    comes after everything has gone quiet, so what the strategy writes maps to exactly the
    tick it acted on. What the adapter relays from the simulator may be written just before
    the tick of its step, one step early: checks allow one step of grace.
    """

    def __init__(self, ticks: list[tuple[int, float]]) -> None:
        self._ms = [ms for ms, _ in ticks]
        self._t = [t for _, t in ticks]

    def __call__(self, entry_id: bytes | str) -> float:
        ms = int(entry_time(entry_id) * 1000)
        i = bisect.bisect_right(self._ms, ms) - 1
        if i < 0:
            return self._t[0] if self._t else ms / 1000.0
        return self._t[i]


async def _decoded(
    redis: aioredis.Redis, stream: str, when: When = entry_time
) -> list[tuple[float, Any]]:
    rows: Any = await redis.xrange(stream)
    out = []
    for entry_id, fields in rows:
        try:
            out.append((when(entry_id), decode(fields).body))
        except DecodeError:
            continue
    return out


@dataclass
class Record:
    """Everything the invariants look at, read once."""

    requests: list[tuple[float, OrderNew]]
    events: list[tuple[float, OrderEvent]]
    status: list[tuple[float, GatewayStatus]]
    controls: list[tuple[float, RiskStateChange]]  # the states the strategy applied
    accounts: list[tuple[float, AccountSnapshot]]
    positions: dict[str, int]
    lengths: dict[str, int] = field(default_factory=dict)
    when: When = entry_time  # how entry ids become times (Redis clock, or simulated)
    grace: float = GRACE_S  # how long a consumer may take to see a status change

    @property
    def fills(self) -> list[OrderEvent]:
        return [e for _, e in self.events if e.kind in FILL_KINDS and e.fill_qty > 0]

    @property
    def entries(self) -> list[tuple[float, OrderNew]]:
        return [(t, o) for t, o in self.requests if not o.reduce_only]

    def net_from_fills(self) -> dict[str, int]:
        net: Counter[str] = Counter()
        for ev in self.fills:
            assert ev.contract is not None and ev.action is not None
            net[ev.contract.key] += ev.fill_qty if ev.action.value == "BUY" else -ev.fill_qty
        return {k: v for k, v in net.items() if v}


async def read_record(
    redis: aioredis.Redis, *, when: When = entry_time, grace: float = GRACE_S
) -> Record:
    raw: Any = await redis.hgetall(STRATEGY_POSITIONS)
    positions = {k.decode(): int(json.loads(v)["qty"]) for k, v in raw.items()}
    lengths = {s: int(await redis.xlen(s)) for s in (ORDERS_REQUESTS, ORDERS_EVENTS)}

    async def rows(stream: str, kind: type[Any]) -> list[tuple[float, Any]]:
        return [(t, b) for t, b in await _decoded(redis, stream, when) if isinstance(b, kind)]

    return Record(
        requests=await rows(ORDERS_REQUESTS, OrderNew),
        events=await rows(ORDERS_EVENTS, OrderEvent),
        status=await rows(GW_STATUS, GatewayStatus),
        controls=await rows(SYS_CONTROL, RiskStateChange),
        accounts=await rows(ACCOUNT, AccountSnapshot),
        positions={k: q for k, q in positions.items() if q},
        lengths=lengths,
        when=when,
        grace=grace,
    )


def double_fills(rec: Record) -> list[str]:
    """Violations of "no order filled twice"."""
    out: list[str] = []
    ordered = {o.client_order_id: o.quantity for _, o in rec.requests}
    execs = Counter((e.client_order_id, e.exec_id) for e in rec.fills)
    out += [f"{cid} exec {x!r} booked {n} times" for (cid, x), n in execs.items() if n > 1]
    filled: Counter[str] = Counter()
    for e in rec.fills:
        if e.kind is not OrderEventKind.EXPIRED:  # a settlement closes, it was not ordered
            filled[e.client_order_id] += e.fill_qty
    for cid, qty in filled.items():
        if cid not in ordered:
            out.append(f"fill for {cid}, which was never requested")
        elif qty > ordered[cid]:
            out.append(f"{cid} filled {qty} > ordered {ordered[cid]}")
    return out


def lost_fills(rec: Record) -> list[str]:
    """Violations of "no fill lost": ledger positions vs the fills (vs the broker's book)."""
    out: list[str] = []
    net = rec.net_from_fills()
    if rec.positions != net:
        out.append(f"strategy:positions {rec.positions} != net of fills {net}")
    # The adapter's simulated book reports every state, flat included (its newest snapshot
    # counts even with no positions); a broker account reports ours only when routing.
    reporting = [a for _, a in rec.accounts if a.simulated] or [
        a for _, a in rec.accounts if a.positions
    ]
    if reporting:  # the adapter reports a book: it must agree too
        book = {p.contract.key: p.quantity for p in reporting[-1].positions if p.quantity}
        if book != net:
            out.append(f"account snapshot positions {book} != net of fills {net}")
    return out


def _state_at(changes: list[tuple[float, bool]], t: float, default: bool) -> bool:
    state = default
    for when, value in changes:
        if when > t:
            break
        state = value
    return state


def _blocked(
    changes: list[tuple[float, bool]], t: float, default: bool, grace: float = GRACE_S
) -> bool:
    """Blocked at ``t`` and already ``grace`` before it (a consumer had time to see it)."""
    return _state_at(changes, t, default) and _state_at(changes, t - grace, default)


def forbidden_entries(rec: Record) -> list[str]:
    """Entries sent while halted/reducing or while the active gateway was not connected."""
    gateway_down = [
        (t, s.state is not ConnState.CONNECTED)
        for t, s in rec.status
        if s.state is not ConnState.STANDBY
    ]
    halted = [(t, c.state is not RiskState.ACTIVE) for t, c in rec.controls]
    out = []
    for t, o in rec.entries:
        if _blocked(gateway_down, t, default=True, grace=rec.grace):
            out.append(f"{o.client_order_id} sent at {t:.3f} while the gateway was down")
        if _blocked(halted, t, default=False, grace=rec.grace):
            out.append(f"{o.client_order_id} sent at {t:.3f} while HALTED/REDUCING")
    return out


async def stale_entries(redis: aioredis.Redis, rec: Record, max_age_s: float) -> list[str]:
    """Entries whose contract had no md:ticks entry within the staleness limit before them."""
    if not rec.entries:
        return []
    rows: Any = await redis.xrange(MD_TICKS)
    if not rows:
        return [f"{len(rec.entries)} entries but md:ticks is empty"]
    first = rec.when(rows[0][0])
    ticks: dict[str, list[float]] = {}
    for entry_id, fields in rows:
        ticks.setdefault(fields.get(b"key", b"").decode(), []).append(rec.when(entry_id))
    out = []
    for t, o in rec.entries:
        if t - max_age_s - rec.grace < first:
            continue  # trimmed by MAXLEN: cannot tell
        before = [x for x in ticks.get(o.contract.key, []) if x <= t]
        age = t - before[-1] if before else None
        if age is None or age > max_age_s + rec.grace:
            out.append(f"{o.client_order_id} on a quote {age}s old (limit {max_age_s}s)")
    return out


async def dead_letters(redis: aioredis.Redis) -> list[dict[str, str]]:
    rows: Any = await redis.xrange(SYS_DLQ)
    return [
        {k.decode(): v.decode(errors="replace") for k, v in fields.items()} for _, fields in rows
    ]


async def sim_book_mismatch(redis: aioredis.Redis) -> list[str]:
    """The adapter's simulated book (``sim:account``) vs the fills: cash and positions.

    Both are read in one MULTI: the journal writes a fill and the book in one step, so
    only a read of both at one instant can be compared.
    """
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xrange(ORDERS_EVENTS)
        pipe.hgetall(SIM_ACCOUNT)
        rows, raw = await pipe.execute()
    events = []
    for _, entry in rows:
        with contextlib.suppress(DecodeError):
            events.append((0.0, decode(entry).body))
    rec = Record([], [e for e in events if isinstance(e[1], OrderEvent)], [], [], [], {})
    fields = {k.decode(): v for k, v in raw.items()}
    if "start" not in fields:
        return ["sim:account has no starting equity"]
    spent = 0.0
    for ev in rec.fills:
        assert ev.contract is not None and ev.action is not None
        signed = ev.fill_qty if ev.action.value == "BUY" else -ev.fill_qty
        spent += signed * (ev.fill_price or 0.0) * ev.contract.multiplier + ev.commission
    out: list[str] = []
    cash, expected = float(fields["cash"]), float(fields["start"]) - spent
    if round(cash, 4) != round(expected, 4):
        out.append(f"sim:account cash {cash} != start - fills {expected:.6f}")
    book = {k[4:]: int(json.loads(v)["qty"]) for k, v in fields.items() if k.startswith("pos:")}
    if book != rec.net_from_fills():
        out.append(f"sim:account positions {book} != net of fills {rec.net_from_fills()}")
    return out
