"""``IbExecutor``: orders routed to IB through ib_async (paper accounts only).

Enabled by ``OPTBOT_IB_ROUTE_ORDERS=true``. Refused, with a reject event and a
``gw:status`` entry, whenever the connected account is not a paper account
(paper ids start with ``D``): a bot bug must never reach a live account. The
account is checked again right before every ``placeOrder`` (new and modify), with no
await in between: a reconnect during qualification or pacing may have logged on to
another account.

IB's callbacks are taken at the ``IB`` level (not per ``Trade``) and matched by
``orderRef`` = client order id, because ib_async forgets every Trade on a
disconnect. After each reconnect ``reqExecutions`` (msg 7) reports the fills IB
made while we were away; every fill is published once, guarded by its exec id in
``orders:execs`` in the same atomic write as the event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
import redis.asyncio as aioredis
from ib_async import LimitOrder, MarketOrder, Trade

from services.gateway_adapter.connection import IbConnection
from services.gateway_adapter.execution import event, refused, seen_payload
from services.gateway_adapter.journal import OrderJournal, Write, hdel, hset, seen_guard
from services.gateway_adapter.pacing import TokenBucket
from services.gateway_adapter.qualify import Failure, Qualifier
from shared.contract import ORDERS_EXECS as EXECS_KEY
from shared.contract import ORDERS_IB as IB_ORDERS_KEY
from shared.contract import ORDERS_IB_STATES as STATES_KEY
from shared.contract import ORDERS_SEEN
from shared.logs import get_logger
from shared.redis_text import as_str
from shared.schemas import OrderCancel, OrderEvent, OrderEventKind, OrderModify, OrderNew, OrderType

log = get_logger("optbot.gateway_adapter.ib_orders")

# orders:ib: client order id -> OrderNew, until the order is done
# orders:execs: exec id -> client order id: fills already published
# orders:ib:states: "{cid}|ack" / "{cid}|done": status events already published
WORKING = frozenset({"PreSubmitted", "Submitted"})
CANCELLED = frozenset({"Cancelled", "ApiCancelled"})

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(OrderNew)


def is_paper(account: str) -> bool:
    return account.startswith("D")


class IbExecutor:
    """Places, modifies and cancels through ib_async; IB's callbacks become events."""

    def __init__(
        self,
        *,
        conn: IbConnection,
        qualifier: Qualifier,
        pacer: TokenBucket,
        journal: OrderJournal,
        redis: aioredis.Redis,
        refused: Callable[[str], None],
    ) -> None:
        self._conn = conn
        self._qualifier = qualifier
        self._pacer = pacer
        self._journal = journal
        self._redis = redis
        self._refused = refused
        self.orders: dict[str, OrderNew] = {}
        self.synced = 0  # fills reported by the last reqExecutions
        self.syncs = 0
        ib = conn.ib
        ib.orderStatusEvent += self._on_status
        ib.commissionReportEvent += self._on_commission

    def needed_keys(self) -> set[str]:
        return {o.contract.key for o in self.orders.values()}

    async def restore(self) -> None:
        """Orders a previous owner routed and that may still fill."""
        await self._journal.drain()
        self.orders.clear()
        for field, raw in (await self._redis.hgetall(IB_ORDERS_KEY)).items():
            try:
                order = _dec.decode(raw)  # type: ignore[arg-type]
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                cid = as_str(field)
                reason = f"routed order could not be restored: {exc}"[:500]
                ev = OrderEvent(
                    client_order_id=cid,
                    kind=OrderEventKind.CANCELLED,
                    reason=reason,
                    simulated=False,
                )
                await self._journal.record(Write([ev], [hdel(IB_ORDERS_KEY, cid)]))
                continue
            self.orders[order.client_order_id] = order

    # --- requests ---------------------------------------------------------------------------

    async def submit(self, order: OrderNew) -> None:
        cid = order.client_order_id
        if cid in self.orders or await self._redis.hexists(ORDERS_SEEN, cid):
            log.info("order_duplicate", client_order_id=cid)
            return
        guard = seen_guard(cid, seen_payload(order, "ib"))
        target = await self._refusal(order)
        if isinstance(target, str):
            ev = event(order, OrderEventKind.REJECTED, reason=target, simulated=False)
            await self._journal.record(Write([ev], guard=guard))
            return
        # Seen + "may fill" recorded before placing: a crash after this line leaves an
        # order that restore() knows and reqExecutions can still report.
        self.orders[cid] = order
        if not await self._journal.record(
            Write(hashes=[hset(IB_ORDERS_KEY, cid, _enc.encode(order))], guard=guard)
        ):
            return
        ib_order: Any = (
            MarketOrder(order.action.value, order.quantity)
            if order.order_type is OrderType.MKT
            else LimitOrder(order.action.value, order.quantity, order.limit_price or 0.0)
        )
        ib_order.orderRef = cid
        ib_order.tif = order.tif
        await self._pacer.take()
        reason = self._place(target, ib_order)
        if reason:
            self.orders.pop(cid, None)
            ev = event(order, OrderEventKind.REJECTED, reason=reason, simulated=False)
            await self._journal.record(Write([ev], [hdel(IB_ORDERS_KEY, cid)]))

    def _account_refusal(self, expected: str = "") -> str:
        """Why the connected account may not receive an order now ("" when it may).

        ``expected``: the account a working order was placed in (modify).
        """
        account = self._conn.status.info.account
        if not self._conn.connected or not account:  # account unknown: still logging on
            return "gateway not connected"
        if not is_paper(account):
            reason = f"routing to IB refused: account {account!r} is not a paper account"
            self._refused(reason)
            return reason
        if expected and account != expected:
            reason = f"routing to IB refused: order was placed in {expected!r}, now {account!r}"
            self._refused(reason)
            return reason
        return ""

    def _place(self, contract: Any, ib_order: Any, expected: str = "") -> str:
        """Check the account and send, with no await in between; the refusal reason or ""."""
        reason = self._account_refusal(expected)
        if reason:
            return reason
        ib_order.account = self._conn.status.info.account
        self._conn.ib.placeOrder(contract, ib_order)
        return ""

    async def _refusal(self, order: OrderNew) -> str | Any:
        """A reason to refuse, or the qualified IB contract."""
        reason = self._account_refusal()
        if reason:
            return reason
        res = (await self._qualifier.qualify([order.contract]))[order.contract.key]
        if isinstance(res, Failure):
            return f"contract: {res.reason} ({res.code})"
        return res.contract

    def _trade(self, cid: str) -> Trade | None:
        """The live Trade of ``cid`` (ib_async makes new ones after a reconnect)."""
        if not self._conn.connected:
            return None
        return next((t for t in self._conn.ib.openTrades() if t.order.orderRef == cid), None)

    async def cancel(self, req: OrderCancel) -> None:
        trade = self._trade(req.client_order_id)
        if trade is None or trade.isDone():
            reason = "cancel refused: order is not working at IB"
            await self._journal.record(Write([refused(req.client_order_id, reason, False)]))
            return
        await self._pacer.take()
        self._conn.ib.cancelOrder(trade.order)

    async def modify(self, req: OrderModify) -> None:
        cid = req.client_order_id
        trade, order = self._trade(cid), self.orders.get(cid)
        if trade is None or trade.isDone() or order is None:
            reason = "modify refused: order is not working at IB"
            await self._journal.record(Write([refused(cid, reason, False)]))
            return
        await self._pacer.take()
        placed_in = trade.order.account
        old_price, trade.order.lmtPrice = trade.order.lmtPrice, req.limit_price
        reason = self._place(trade.contract, trade.order, expected=placed_in)
        if reason:
            trade.order.lmtPrice = old_price
            await self._journal.record(Write([refused(cid, f"modify refused: {reason}", False)]))
            return
        ev = event(
            order,
            OrderEventKind.MODIFIED,
            ib_order_id=trade.order.orderId,
            reason=f"limit {req.limit_price}",
            simulated=False,
        )
        await self._journal.record(Write([ev]))

    # --- IB callbacks -----------------------------------------------------------------------

    def _on_status(self, t: Trade) -> None:
        """orderStatus (msg 3): ack once, cancel / inactive once (guarded in Redis)."""
        cid, status = t.order.orderRef, t.orderStatus.status
        order = self.orders.get(cid)
        if order is None:
            return
        ib_id = t.order.orderId
        if status in WORKING:
            ev = event(
                order,
                OrderEventKind.ACK,
                ib_order_id=ib_id,
                remaining=int(t.orderStatus.remaining) or order.quantity,
                simulated=False,
            )
            self._journal.post(Write([ev], guard=(STATES_KEY, f"{cid}|ack", "1")))
        elif status in CANCELLED or status == "Inactive":
            kind = OrderEventKind.CANCELLED if status in CANCELLED else OrderEventKind.REJECTED
            reason = _last_message(t) or f"order {status.lower()} at IB"
            ev = event(order, kind, ib_order_id=ib_id, reason=reason, simulated=False)
            self.orders.pop(cid, None)
            self._journal.post(
                Write([ev], [hdel(IB_ORDERS_KEY, cid)], guard=(STATES_KEY, f"{cid}|done", "1"))
            )

    async def close(self, cid: str, kind: OrderEventKind, reason: str) -> bool:
        """Close a routed order IB no longer works (found by the reconcile); False if gone."""
        order = self.orders.pop(cid, None)
        if order is None:
            return False
        ev = event(order, kind, reason=reason[:4096], simulated=False)
        guard = (STATES_KEY, f"{cid}|done", "1")
        if not await self._journal.record(Write([ev], [hdel(IB_ORDERS_KEY, cid)], guard=guard)):
            await self._journal.record(Write(hashes=[hdel(IB_ORDERS_KEY, cid)]))  # told already
        return True

    def _on_commission(self, t: Trade, fill: Any, report: Any) -> None:
        """commissionReport (msg 59) after execDetails (msg 11): one fill event."""
        self._fill(fill, report.commission)

    def _fill(self, fill: Any, fee: Any) -> bool:
        ex = fill.execution
        order = self.orders.get(ex.orderRef)
        if order is None or not ex.execId:
            return False
        total = min(order.quantity, int(ex.cumQty or ex.shares))
        remaining = order.quantity - total
        ev = event(
            order,
            OrderEventKind.PARTIAL if remaining else OrderEventKind.FILL,
            ib_order_id=ex.orderId,
            fill_qty=int(ex.shares),
            fill_price=ex.price,
            commission=abs(fee or 0.0),
            filled_total=total,
            remaining=remaining,
            exec_id=ex.execId,
            simulated=False,
        )
        done = [hdel(IB_ORDERS_KEY, order.client_order_id)] if not remaining else []
        if not remaining:
            self.orders.pop(order.client_order_id, None)
        self._journal.post(Write([ev], done, guard=(EXECS_KEY, ex.execId, ex.orderRef)))
        return True

    async def sync(self, timeout_s: float) -> int:
        """After a (re)connect: reqExecutions (msg 7) and report fills we have not published."""
        if not self.orders:  # nothing routed can still fill
            self.syncs += 1
            return 0
        await self._pacer.take()
        fills = await asyncio.wait_for(self._conn.ib.reqExecutionsAsync(), timeout_s)
        self.synced = sum(1 for f in fills if self._fill(f, f.commissionReport.commission))
        await self._journal.drain()
        self.syncs += 1
        return self.synced


def _last_message(t: Trade) -> str:
    return next((e.message for e in reversed(t.log) if e.message), "")[:4096]
