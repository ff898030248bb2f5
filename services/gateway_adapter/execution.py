"""Order execution behind one seam: simulated fills by default, IB paper on request.

``Executor`` is what the order desk calls. ``SimulatedExecutor`` fills against the
adapter's own quotes (rules in ``fills.py``: at the touch, at most the quoted size,
market orders with slippage; the rest waits for later quotes). ``IbExecutor``
(``ib_orders.py``) routes to IB, only when ``OPTBOT_IB_ROUTE_ORDERS=true`` and only
for a paper account. Every state change goes through the ``OrderJournal``: the
seen id, the working-order book (``orders:working``), the simulated account and
the events are written in one atomic step, so a redelivered request never
executes twice and a restarted or standby adapter resumes the same working orders.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
import redis.asyncio as aioredis

from services.gateway_adapter.expiry import (
    expiry_event,
    expiry_guard,
    is_expired,
    underlying_price,
)
from services.gateway_adapter.fills import (
    WorkingOrder,
    commission,
    dump,
    fill_fee,
    load,
    next_fill,
)
from services.gateway_adapter.journal import (
    HashOp,
    OrderJournal,
    Write,
    hdel,
    hset,
    seen_guard,
)
from services.gateway_adapter.publish import QuotePublisher
from services.gateway_adapter.sim_account import SimAccount
from shared import clock
from shared.contract import ORDERS_SEEN
from shared.contract import ORDERS_WORKING as WORKING_KEY
from shared.logs import get_logger
from shared.redis_text import as_str
from shared.schemas import (
    ContractRef,
    OrderCancel,
    OrderEvent,
    OrderEventKind,
    OrderModify,
    OrderNew,
    OrderType,
    Quote,
)

log = get_logger("optbot.gateway_adapter.execution")

Emit = Callable[[OrderEvent], None]


def _trading_time() -> float:
    return clock.current().time()


class Executor(Protocol):
    """Executes order requests and reports every outcome as an ``OrderEvent``."""

    async def restore(self) -> None: ...
    async def submit(self, order: OrderNew) -> None: ...
    async def cancel(self, req: OrderCancel) -> None: ...
    async def modify(self, req: OrderModify) -> None: ...
    def needed_keys(self) -> set[str]: ...


def seen_payload(order: OrderNew, route: str) -> str:
    return json.dumps({"route": route, "key": order.contract.key, "qty": order.quantity})


def event(order: OrderNew, kind: OrderEventKind, **fields: Any) -> OrderEvent:
    return OrderEvent(
        client_order_id=order.client_order_id,
        kind=kind,
        contract=order.contract,
        action=order.action,
        **fields,
    )


def refused(cid: str, reason: str, simulated: bool = True) -> OrderEvent:
    """A reject for a request about an order we do not have (cancel/modify)."""
    return OrderEvent(
        client_order_id=cid, kind=OrderEventKind.REJECTED, reason=reason, simulated=simulated
    )


class SimulatedExecutor:
    """Fills at the adapter's latest quotes; the working book survives restarts."""

    def __init__(
        self,
        *,
        quotes: QuotePublisher,
        journal: OrderJournal,
        redis: aioredis.Redis,
        account: SimAccount,
        per_contract: float,
        minimum: float,
        slippage_ticks: int,
        live: Callable[[], bool],
        ensure_line: Callable[[ContractRef], Awaitable[None]] | None = None,
    ) -> None:
        self._quotes = quotes
        self._journal = journal
        self._redis = redis
        self.account = account
        self._per_contract = per_contract
        self._minimum = minimum
        self._slippage = slippage_ticks
        self._live = live
        self._ensure_line = ensure_line
        self.working: dict[str, WorkingOrder] = {}
        self.restored = 0
        self.clock: Callable[[], float] = _trading_time  # what expires when
        self.expired = 0
        self._waiting: set[str] = set()  # options past expiry without an underlying quote
        quotes.on_quote = self._on_quote

    # --- state ------------------------------------------------------------------------------

    def needed_keys(self) -> set[str]:
        """Lines that must stay open: working orders, simulated positions, and the
        underlyings of held options (their last quote settles them at expiry)."""
        held = self.account.positions.values()
        return (
            {w.order.contract.key for w in self.working.values()}
            | set(self.account.positions)
            | {p.contract.symbol for p in held if p.contract.expiry}
        )

    async def restore(self) -> None:
        """Reload the working book a previous owner left; what cannot be read is cancelled."""
        await self._journal.drain()
        await self.account.load()
        self.working.clear()
        raw = await self._redis.hgetall(WORKING_KEY)
        for field, value in raw.items():
            cid = as_str(field)
            try:
                w = load(value)  # type: ignore[arg-type]
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                reason = f"working order could not be restored: {exc}"[:500]
                log.warning("order_not_restored", client_order_id=cid, reason=reason)
                ev = OrderEvent(client_order_id=cid, kind=OrderEventKind.CANCELLED, reason=reason)
                await self._journal.record(Write([ev], [hdel(WORKING_KEY, cid)]))
                continue
            self.working[cid] = w
            self._quotes.watched.add(w.order.contract.key)
        self.restored = len(self.working)
        if self.working:
            log.info("orders_restored", count=self.restored)
        for ref in {w.order.contract.key: w.order.contract for w in self.working.values()}.values():
            if self._ensure_line is not None:
                await self._ensure_line(ref)

    # --- fills -----------------------------------------------------------------------------

    def _execute(self, w: WorkingOrder, q: Quote | None) -> tuple[list[OrderEvent], list[HashOp]]:
        """Fill what the quote allows now: the events and the working-order write (the account
        change rides along as ``account.booking(events)``)."""
        step = next_fill(w, q, self._slippage)
        if step is not None and self._expired(w):
            step = None  # past its expiry nothing fills; expire() cancels the order
        events: list[OrderEvent] = []
        ops: list[HashOp] = []
        if step is not None:
            qty, price = step
            w.filled += qty
            w.fills += 1
            w.fees = round(w.fees + fill_fee(w.order.contract, qty, price, self._per_contract), 6)
            total = commission(w.fees, self._minimum)
            fee = round(max(0.0, total - w.commission), 4)
            w.commission = total
            ev = event(
                w.order,
                OrderEventKind.FILL if w.remaining == 0 else OrderEventKind.PARTIAL,
                fill_qty=qty,
                fill_price=price,
                commission=fee,
                filled_total=w.filled,
                remaining=w.remaining,
                exec_id=f"sim-{w.order.client_order_id}-{w.fills}",
            )
            events.append(ev)
        cid = w.order.client_order_id
        ops.append(hset(WORKING_KEY, cid, dump(w)) if w.remaining else hdel(WORKING_KEY, cid))
        return events, ops

    def _track(self, w: WorkingOrder) -> None:
        cid = w.order.client_order_id
        if w.remaining:
            self.working[cid] = w
            self._quotes.watched.add(w.order.contract.key)
        else:
            self.working.pop(cid, None)

    def _expired(self, w: WorkingOrder) -> bool:
        return is_expired(w.order.contract, self.clock())

    def _on_quote(self, key: str, q: Quote) -> None:
        """Quote hook (hot path, only for watched keys): fill what the new quote allows."""
        for w in [w for w in self.working.values() if w.order.contract.key == key]:
            if next_fill(w, q, self._slippage) is None or self._expired(w):
                continue
            events, ops = self._execute(w, q)
            self._track(w)
            self._journal.post(Write(events, ops, book=self.account.booking(events)))
        if not any(w.order.contract.key == key for w in self.working.values()):
            self._quotes.watched.discard(key)

    # --- requests --------------------------------------------------------------------------

    async def submit(self, order: OrderNew) -> None:
        cid = order.client_order_id
        if cid in self.working or await self._redis.hexists(ORDERS_SEEN, cid):
            log.info("order_duplicate", client_order_id=cid)
            return
        guard = seen_guard(cid, seen_payload(order, "sim"))
        key = order.contract.key
        q = self._quotes.quote(key)
        reject = self._reject_reason(order, q)
        if reject:
            ev = event(order, OrderEventKind.REJECTED, reason=reject)
            await self._journal.record(Write([ev], guard=guard))
            return
        limit = order.limit_price if order.order_type is OrderType.LMT else None
        w = WorkingOrder(order=order, limit=limit)
        events, ops = self._execute(w, q)
        self._track(w)  # before the write: a quote during it sees the order
        ack = event(order, OrderEventKind.ACK, remaining=order.quantity)
        try:
            book = self.account.booking(events)
            ok = await self._journal.record(Write([ack, *events], ops, guard, book))
        except BaseException:
            self.working.pop(cid, None)
            raise
        if not ok:  # seen meanwhile: nothing was written
            self.working.pop(cid, None)
            return
        if q is None and self._ensure_line is not None:
            await self._ensure_line(order.contract)

    def _reject_reason(self, order: OrderNew, q: Quote | None) -> str:
        if not self._live():
            return "gateway not connected"
        if order.order_type is OrderType.MKT and (q is None or q.mark is None):
            return f"no quote for {order.contract.key}"
        if is_expired(order.contract, self.clock()):
            return f"{order.contract.key} has expired"
        return ""

    # --- expiry ----------------------------------------------------------------------------

    async def expire(self) -> int:
        """Settle every held option past its expiry instant; returns how many settled.

        Working orders in an expired contract are cancelled first (their writes queue
        behind every pending fill), so the position read afterwards is final.
        """
        now = self.clock()
        for cid, w in list(self.working.items()):
            if is_expired(w.order.contract, now) and cid in self.working:
                await self.cancel(OrderCancel(client_order_id=cid, reason="contract expired"))
        settled = 0
        for p in [p for p in self.account.positions.values() if is_expired(p.contract, now)]:
            settled += await self._settle(p.contract, p.qty)
        self.expired += settled
        return settled

    async def _settle(self, ref: ContractRef, qty: int) -> int:
        spot = underlying_price(self._quotes.quote(ref.symbol))
        if spot is None:
            if ref.key not in self._waiting:
                self._waiting.add(ref.key)
                log.warning("expiry_waits_for_underlying", key=ref.key, underlying=ref.symbol)
            if self._ensure_line is not None:
                await self._ensure_line(ContractRef(symbol=ref.symbol))
            return 0
        self._waiting.discard(ref.key)
        ev = expiry_event(ref, qty, spot)
        book = self.account.booking([ev])
        if not await self._journal.record(Write([ev], guard=expiry_guard(ev), book=book)):
            log.warning("expiry_already_settled", key=ref.key)  # memory was stale: reload
            await self.account.load()
            return 0
        log.info(
            "option_expired",
            key=ref.key,
            qty=qty,
            underlying=spot,
            settlement=ev.fill_price,
            client_order_id=ev.client_order_id,
        )
        return 1

    async def cancel(self, req: OrderCancel) -> None:
        cid = req.client_order_id
        w = self.working.pop(cid, None)
        if w is None:
            reason = "cancel refused: order is not working (filled, cancelled or unknown)"
            await self._journal.record(Write([refused(cid, reason)]))
            return
        ev = event(
            w.order,
            OrderEventKind.CANCELLED,
            remaining=w.remaining,
            filled_total=w.filled,
            reason=req.reason or "cancelled on request",
        )
        try:
            await self._journal.record(Write([ev], [hdel(WORKING_KEY, cid)]))
        except BaseException:
            self.working[cid] = w
            raise

    async def modify(self, req: OrderModify) -> None:
        cid = req.client_order_id
        w = self.working.get(cid)
        if w is None or w.limit is None:
            reason = "modify refused: no working limit order with this id"
            await self._journal.record(Write([refused(cid, reason)]))
            return
        before = msgspec.structs.replace(w)
        w.limit = req.limit_price
        modified = event(
            w.order,
            OrderEventKind.MODIFIED,
            remaining=w.remaining,
            filled_total=w.filled,
            reason=f"limit {req.limit_price}",
        )
        events, ops = self._execute(w, self._quotes.quote(w.order.contract.key))
        self._track(w)
        try:
            book = self.account.booking(events)
            await self._journal.record(Write([modified, *events], ops, book=book))
        except BaseException:
            self.working[cid] = before
            raise
