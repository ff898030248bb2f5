"""``IbExecutor``: orders routed to IB through ib_async (paper accounts only).

Enabled by ``OPTBOT_IB_ROUTE_ORDERS=true``. Refused, with a reject event and a
``gw:status`` entry, whenever the connected account is not a paper account
(paper ids start with ``D``): a bot bug must never reach a live account.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from ib_async import LimitOrder, MarketOrder, Trade

from services.gateway_adapter.connection import IbConnection
from services.gateway_adapter.execution import Emit, event, first_time
from services.gateway_adapter.pacing import TokenBucket
from services.gateway_adapter.qualify import Failure, Qualifier
from shared.logs import get_logger
from shared.schemas import OrderCancel, OrderEvent, OrderEventKind, OrderModify, OrderNew, OrderType

log = get_logger("optbot.gateway_adapter.ib_orders")

ROUTING_REFUSED = 0  # our own refusal, not an IB code


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
        emit: Emit,
        redis: aioredis.Redis,
        refused: Callable[[str], None],
    ) -> None:
        self._conn = conn
        self._qualifier = qualifier
        self._pacer = pacer
        self._emit = emit
        self._redis = redis
        self._refused = refused
        self.trades: dict[str, tuple[OrderNew, Trade]] = {}

    def _reject(self, order: OrderNew, reason: str) -> None:
        self._emit(event(order, OrderEventKind.REJECTED, reason=reason, simulated=False))

    async def submit(self, order: OrderNew) -> None:
        if not await first_time(self._redis, order, "ib"):
            log.info("order_duplicate", client_order_id=order.client_order_id)
            return
        account = self._conn.status.info.account
        if not self._conn.connected:
            self._reject(order, "gateway not connected")
            return
        if not is_paper(account):
            reason = f"routing to IB refused: account {account!r} is not a paper account"
            self._refused(reason)
            self._reject(order, reason)
            return
        res = (await self._qualifier.qualify([order.contract]))[order.contract.key]
        if isinstance(res, Failure):
            self._reject(order, f"contract: {res.reason} ({res.code})")
            return
        ib_order: Any = (
            MarketOrder(order.action.value, order.quantity)
            if order.order_type is OrderType.MKT
            else LimitOrder(order.action.value, order.quantity, order.limit_price or 0.0)
        )
        ib_order.orderRef = order.client_order_id
        ib_order.tif = order.tif
        ib_order.account = account
        await self._pacer.take()
        trade = self._conn.ib.placeOrder(res.contract, ib_order)
        self.trades[order.client_order_id] = (order, trade)
        self._watch(order, trade)

    def _watch(self, order: OrderNew, trade: Trade) -> None:
        acked: list[bool] = []

        def on_status(t: Trade) -> None:
            status = t.orderStatus.status
            if status in ("PreSubmitted", "Submitted") and not acked:
                acked.append(True)
                self._emit(
                    event(
                        order,
                        OrderEventKind.ACK,
                        ib_order_id=t.order.orderId,
                        remaining=order.quantity,
                        simulated=False,
                    )
                )
            elif status == "Inactive":
                self._reject(order, _last_message(t) or "order inactive at IB")

        def on_commission(t: Trade, fill: Any, report: Any) -> None:
            remaining = int(t.orderStatus.remaining)
            self._emit(
                event(
                    order,
                    OrderEventKind.PARTIAL if remaining else OrderEventKind.FILL,
                    ib_order_id=t.order.orderId,
                    fill_qty=int(fill.execution.shares),
                    fill_price=fill.execution.price,
                    commission=abs(report.commission or 0.0),
                    filled_total=int(t.orderStatus.filled),
                    remaining=remaining,
                    exec_id=fill.execution.execId,
                    simulated=False,
                )
            )

        def on_cancelled(t: Trade) -> None:
            self._emit(
                event(
                    order,
                    OrderEventKind.CANCELLED,
                    ib_order_id=t.order.orderId,
                    reason=_last_message(t),
                    simulated=False,
                )
            )

        trade.statusEvent += on_status
        trade.commissionReportEvent += on_commission
        trade.cancelledEvent += on_cancelled

    async def cancel(self, req: OrderCancel) -> None:
        entry = self.trades.get(req.client_order_id)
        if entry is None or entry[1].isDone() or not self._conn.connected:
            self._emit(
                OrderEvent(
                    client_order_id=req.client_order_id,
                    kind=OrderEventKind.REJECTED,
                    reason="cancel refused: order is not working at IB",
                    simulated=False,
                )
            )
            return
        await self._pacer.take()
        self._conn.ib.cancelOrder(entry[1].order)

    async def modify(self, req: OrderModify) -> None:
        entry = self.trades.get(req.client_order_id)
        if entry is None or entry[1].isDone() or not self._conn.connected:
            self._emit(
                OrderEvent(
                    client_order_id=req.client_order_id,
                    kind=OrderEventKind.REJECTED,
                    reason="modify refused: order is not working at IB",
                    simulated=False,
                )
            )
            return
        order, trade = entry
        trade.order.lmtPrice = req.limit_price
        await self._pacer.take()
        self._conn.ib.placeOrder(trade.contract, trade.order)
        self._emit(
            event(
                order,
                OrderEventKind.MODIFIED,
                ib_order_id=trade.order.orderId,
                reason=f"limit {req.limit_price}",
                simulated=False,
            )
        )


def _last_message(t: Trade) -> str:
    return next((e.message for e in reversed(t.log) if e.message), "")[:4096]
