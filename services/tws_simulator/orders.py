"""Order book of the simulated exchange: placement, modification, cancels and fills.

Marketable orders fill immediately at the quote (buy at ask, sell at bid), while
placeOrder is handled: the fill is written before the next request is read. Other
limits rest and fill on the step the market crosses them. With regular hours an
order placed while the market is closed rests until the opening step. Fills are
complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .account import Account
from .contracts import Instrument
from .market import Quote
from .order_messages import (
    Execution,
    OrderStatus,
    SimOrder,
    commission_report,
    exec_details,
    open_order,
    order_status,
)
from .protocol import error_frame, server_time

# (client id, frames for a server version) -> deliver, encoded for that client, if connected
Build = Callable[[int], list[bytes]]
Send = Callable[[int, Build], None]
QuoteOf = Callable[[Instrument], Quote]


def commission(inst: Instrument, qty: float, price: float) -> float:
    """IB fixed pricing: options by premium tier, stocks $0.005/share; $1 minimum.

    Options (IBKR Pro, US): $0.65/contract at a premium >= 0.10, $0.50 from 0.05,
    $0.25 below 0.05 (interactivebrokers.com/en/pricing/commissions-options.php).
    Stock commission is capped at 1 % of trade value, as in IB's schedule.
    """
    if inst.is_option:
        rate = 0.65 if price >= 0.10 else 0.50 if price >= 0.05 else 0.25
        return round(max(1.0, rate * qty), 4)
    return min(max(1.0, 0.005 * qty), max(0.01 * qty * price, 0.01))


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """The placeOrder fields the simulator acts on."""

    order_id: int
    inst: Instrument
    action: str
    qty: float
    order_type: str
    lmt_price: float | None
    tif: str
    account: str
    order_ref: str


def error(req_id: int, code: int, text: str) -> Build:
    """An error message (msg 4) for whichever version the client negotiated."""
    return lambda version: [error_frame(version, req_id, code, text)]


class OrderBook:
    """All orders of all clients, plus the executions they produced."""

    def __init__(
        self,
        account: Account,
        quote_of: QuoteOf,
        send: Send,
        on_fill: Callable[[Instrument], None],
        now: Callable[[], float],
        market_open: Callable[[], bool] = lambda: True,
    ) -> None:
        self.account = account
        self.now = now  # the simulator's (simulated) time: execution and completion times
        self.market_open = market_open  # regular hours: orders wait for the open
        self.quote_of = quote_of
        self.send = send
        self.on_fill = on_fill
        self.orders: dict[tuple[int, int], SimOrder] = {}
        self.executions: list[Execution] = []
        self._next_perm = 1_000_000_001
        self._exec_seq = 0

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        return [
            o
            for o in self.orders.values()
            if not o.status.done and (client_id is None or o.client_id == client_id)
        ]

    def done_orders(self) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.status.done]

    def place(self, client_id: int, req: OrderRequest) -> None:
        """New order or modification of a working one (same client and order id)."""
        rejection = _validate(req)
        if rejection:
            self.send(client_id, error(req.order_id, 201, f"Order rejected - reason:{rejection}"))
            return
        existing = self.orders.get((client_id, req.order_id))
        if existing is not None and existing.status.done:
            code, text = (
                (104, "Can't modify a filled order.")
                if existing.status is OrderStatus.FILLED
                else (103, "Duplicate order id")
            )
            self.send(client_id, error(req.order_id, code, text))
            return
        if existing is None:
            order = SimOrder(
                client_id,
                req.order_id,
                self._next_perm,
                req.inst,
                req.action,
                req.qty,
                req.order_type,
                req.lmt_price,
                req.tif,
                req.account,
                req.order_ref,
            )
            self._next_perm += 1
            self.orders[(client_id, req.order_id)] = order
        else:
            order = existing
            order.qty, order.order_type = req.qty, req.order_type
            order.lmt_price, order.action = req.lmt_price, req.action
        self.send(client_id, lambda v: [open_order(order, v), order_status(order)])
        self._try_fill(order)

    def cancel(self, client_id: int, order_id: int) -> None:
        """cancelOrder (msg 4): orderStatus Cancelled, then error 202 as IB does."""
        order = self.orders.get((client_id, order_id))
        if order is None or order.status.done:
            text = f"OrderId {order_id} that needs to be cancelled is not found."
            self.send(client_id, error(order_id, 10147, text))
            return
        self._finish(order, OrderStatus.CANCELLED)
        cancelled = error(order_id, 202, "Order Canceled - reason:")
        self.send(client_id, lambda v: [order_status(order), *cancelled(v)])

    def cancel_all(self) -> None:
        """reqGlobalCancel (msg 58)."""
        for order in self.open_orders():
            self.cancel(order.client_id, order.order_id)

    def on_step(self) -> None:
        """Fill resting limits the market has crossed."""
        for order in self.open_orders():
            self._try_fill(order)

    def _try_fill(self, order: SimOrder) -> None:
        if not self.market_open():  # nothing trades outside the session; the open fills it
            return
        q = self.quote_of(order.inst)
        if order.action == "BUY":
            price = q.ask
            ok = price > 0 and (order.lmt_price is None or price <= order.lmt_price + 1e-9)
        else:
            price = q.bid
            ok = price > 0 and (order.lmt_price is None or price >= order.lmt_price - 1e-9)
        if ok:
            self._fill(order, price)

    def _fill(self, order: SimOrder, price: float) -> None:
        qty = order.qty - order.filled
        fee = commission(order.inst, qty, price)
        realized = self._book(order, qty, price, fee)
        order.filled = order.qty
        order.avg_fill_price = order.last_fill_price = price
        self._finish(order, OrderStatus.FILLED)
        self._exec_seq += 1
        ex = Execution(
            order,
            f"{order.perm_id:08x}.{self._exec_seq:08x}.01.01",
            server_time(self.now()),
            qty,
            price,
            fee,
            realized,
        )
        self.executions.append(ex)
        self.send(
            order.client_id,
            lambda v: [
                exec_details(-1, ex, v),
                order_status(order),
                open_order(order, v),
                commission_report(ex),
            ],
        )
        self.on_fill(order.inst)

    def _book(self, order: SimOrder, qty: float, price: float, fee: float) -> float | None:
        had = self.account.positions.get(order.inst.con_id)
        opening = had is None or had.qty == 0 or had.qty * order.signed_qty > 0
        signed = qty if order.action == "BUY" else -qty
        realized = self.account.apply_fill(order.inst, signed, price, fee)
        return None if opening else realized

    def _finish(self, order: SimOrder, status: OrderStatus) -> None:
        order.status = status
        order.completed_time = server_time(self.now())


def _validate(req: OrderRequest) -> str:
    if req.action not in ("BUY", "SELL"):
        return f"invalid action {req.action!r}"
    if req.qty <= 0:
        return "order size must be positive"
    if req.order_type not in ("LMT", "MKT"):
        return f"order type {req.order_type!r} is not supported by the simulator"
    if req.order_type == "LMT" and (req.lmt_price is None or req.lmt_price <= 0):
        return "limit price missing"
    return ""
