"""Order execution behind one seam: simulated fills by default, IB paper on request.

``Executor`` is what the order desk calls. ``SimulatedExecutor`` fills against the
adapter's own quotes (buy at ask, sell at bid; resting limits fill when the quote
crosses). ``IbExecutor`` places the order through ib_async, only when
``OPTBOT_IB_ROUTE_ORDERS=true`` and only for a paper account (ids start with
``D``). Both record each client order id with ``HSETNX orders:seen`` before acting,
so a redelivered request never executes twice.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis

from services.gateway_adapter.publish import QuotePublisher
from shared.logs import get_logger
from shared.schemas import (
    Action,
    ContractRef,
    OrderCancel,
    OrderEvent,
    OrderEventKind,
    OrderModify,
    OrderNew,
    OrderType,
    Quote,
    SecType,
)

log = get_logger("optbot.gateway_adapter.execution")

SEEN_KEY = "orders:seen"
Emit = Callable[[OrderEvent], None]


class Executor(Protocol):
    """Executes order requests and reports every outcome as an ``OrderEvent``."""

    async def submit(self, order: OrderNew) -> None: ...
    async def cancel(self, req: OrderCancel) -> None: ...
    async def modify(self, req: OrderModify) -> None: ...


async def first_time(redis: aioredis.Redis, order: OrderNew, route: str) -> bool:
    """Record ``client_order_id`` atomically; False when it was seen before."""
    payload = json.dumps({"route": route, "key": order.contract.key, "qty": order.quantity})
    return bool(await redis.hsetnx(SEEN_KEY, order.client_order_id, payload))


def commission(ref: ContractRef, qty: int, per_contract: float, minimum: float) -> float:
    """IB fixed pricing: options per contract, stocks $0.005/share; a per-order minimum."""
    rate = per_contract if ref.sec_type is SecType.OPT else 0.005
    return round(max(minimum, rate * qty), 4)


def fill_price(order_action: Action, limit: float | None, q: Quote | None) -> float | None:
    """Where a marketable order fills now (buy at ask, sell at bid), else None."""
    if q is None:
        return None
    if order_action is Action.BUY:
        return q.ask if q.ask is not None and (limit is None or limit >= q.ask) else None
    return q.bid if q.bid is not None and (limit is None or limit <= q.bid) else None


def event(order: OrderNew, kind: OrderEventKind, **fields: Any) -> OrderEvent:
    return OrderEvent(
        client_order_id=order.client_order_id,
        kind=kind,
        contract=order.contract,
        action=order.action,
        **fields,
    )


@dataclass
class Working:
    order: OrderNew
    limit: float | None


class SimulatedExecutor:
    """Fills at the adapter's latest quote; resting limits wait for a crossing quote."""

    def __init__(
        self,
        *,
        quotes: QuotePublisher,
        emit: Emit,
        redis: aioredis.Redis,
        per_contract: float,
        minimum: float,
        live: Callable[[], bool],
        ensure_line: Callable[[ContractRef], Awaitable[None]] | None = None,
    ) -> None:
        self._quotes = quotes
        self._emit = emit
        self._redis = redis
        self._per_contract = per_contract
        self._minimum = minimum
        self._live = live
        self._ensure_line = ensure_line
        self.working: dict[str, Working] = {}
        quotes.on_quote = self._on_quote

    async def submit(self, order: OrderNew) -> None:
        if not await first_time(self._redis, order, "sim"):
            log.info("order_duplicate", client_order_id=order.client_order_id)
            return
        key = order.contract.key
        if not self._live():
            self._emit(event(order, OrderEventKind.REJECTED, reason="gateway not connected"))
            return
        q = self._quotes.quote(key)
        limit = order.limit_price if order.order_type is OrderType.LMT else None
        if order.order_type is OrderType.MKT and (q is None or q.mark is None):
            self._emit(event(order, OrderEventKind.REJECTED, reason=f"no quote for {key}"))
            return
        self._emit(event(order, OrderEventKind.ACK, remaining=order.quantity))
        price = fill_price(order.action, limit, q)
        if price is not None:
            self._fill(order, price)
            return
        self.working[order.client_order_id] = Working(order, limit)
        self._quotes.watched.add(key)
        if q is None and self._ensure_line is not None:
            await self._ensure_line(order.contract)

    def _fill(self, order: OrderNew, price: float) -> None:
        self._emit(
            event(
                order,
                OrderEventKind.FILL,
                fill_qty=order.quantity,
                fill_price=price,
                commission=commission(
                    order.contract, order.quantity, self._per_contract, self._minimum
                ),
                filled_total=order.quantity,
                remaining=0,
                exec_id=f"sim-{order.client_order_id}",
            )
        )

    def _on_quote(self, key: str, q: Quote) -> None:
        """Quote hook (hot path, only for watched keys): fill resting limits that cross."""
        for cid, w in list(self.working.items()):
            if w.order.contract.key != key:
                continue
            price = fill_price(w.order.action, w.limit, q)
            if price is not None:
                del self.working[cid]
                self._fill(w.order, price)
        if not any(w.order.contract.key == key for w in self.working.values()):
            self._quotes.watched.discard(key)

    async def cancel(self, req: OrderCancel) -> None:
        w = self.working.pop(req.client_order_id, None)
        if w is None:
            self._emit(
                OrderEvent(
                    client_order_id=req.client_order_id,
                    kind=OrderEventKind.REJECTED,
                    reason="cancel refused: order is not working (filled, cancelled or unknown)",
                )
            )
            return
        reason = req.reason or "cancelled on request"
        self._emit(
            event(w.order, OrderEventKind.CANCELLED, remaining=w.order.quantity, reason=reason)
        )

    async def modify(self, req: OrderModify) -> None:
        w = self.working.get(req.client_order_id)
        if w is None or w.limit is None:
            self._emit(
                OrderEvent(
                    client_order_id=req.client_order_id,
                    kind=OrderEventKind.REJECTED,
                    reason="modify refused: no working limit order with this id",
                )
            )
            return
        w.limit = req.limit_price
        self._emit(
            event(
                w.order,
                OrderEventKind.MODIFIED,
                remaining=w.order.quantity,
                reason=f"limit {req.limit_price}",
            )
        )
        price = fill_price(w.order.action, w.limit, self._quotes.quote(w.order.contract.key))
        if price is not None:
            del self.working[req.client_order_id]
            self._fill(w.order, price)
