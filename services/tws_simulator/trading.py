"""Order requests: placeOrder (3), cancelOrder (4), open/completed orders, executions, ids."""

from __future__ import annotations

from .contracts import ContractQuery
from .order_messages import commission_report, completed_order, exec_details, open_order
from .order_messages import order_status as order_status_frame
from .orders import OrderRequest
from .protocol import Out, frame
from .refdata import NO_DEFINITION
from .session import Session


def place_order(s: Session, f: list[str]) -> None:
    """placeOrder (msg 3, no version): only the leading order fields matter here."""
    order_id = int(f[1])
    matches = s.sim.universe.match(ContractQuery.from_fields(f[2:14]))
    if len(matches) != 1:
        s.error(order_id, 200, NO_DEFINITION)
        return
    lmt = float(f[19]) if f[19] else None
    req = OrderRequest(
        order_id,
        matches[0],
        f[16].upper(),
        float(f[17] or 0),
        f[18].upper(),
        lmt,
        f[21] or "DAY",
        f[23] or s.sim.account.account_id,
        f[26],
    )
    assert s.client_id is not None
    s.sim.note_order_id(order_id)
    s.sim.book.place(s.client_id, req)


def cancel_order(s: Session, f: list[str]) -> None:
    """cancelOrder (msg 4, version 1)."""
    assert s.client_id is not None
    s.sim.book.cancel(s.client_id, int(f[2]))


def req_open_orders(s: Session, f: list[str]) -> None:
    """reqOpenOrders (msg 5): this client's working orders, then openOrderEnd (53)."""
    _send_open(s, s.client_id)


def req_all_open_orders(s: Session, f: list[str]) -> None:
    """reqAllOpenOrders (msg 16): every client's working orders."""
    _send_open(s, None)


def _send_open(s: Session, client_id: int | None) -> None:
    frames = []
    for o in s.sim.book.open_orders(client_id):
        frames += [open_order(o, s.version), order_status_frame(o)]
    frames.append(frame(Out.OPEN_ORDER_END, 1))
    s.send(frames)


def req_completed_orders(s: Session, f: list[str]) -> None:
    """reqCompletedOrders (msg 99): filled/cancelled orders, then completedOrdersEnd (102)."""
    frames = [completed_order(o, s.version) for o in s.sim.book.done_orders()]
    frames.append(frame(Out.COMPLETED_ORDERS_END))
    s.send(frames)


def req_executions(s: Session, f: list[str]) -> None:
    """reqExecutions (msg 7, version 3): fills + commission reports, then execDetailsEnd."""
    req_id = int(f[2])
    client_filter = int(f[3] or 0)
    symbol = f[6].upper()
    frames = []
    for ex in s.sim.book.executions:
        if client_filter and ex.order.client_id != client_filter:
            continue
        if symbol and ex.order.inst.symbol != symbol:
            continue
        frames += [exec_details(req_id, ex, s.version), commission_report(ex)]
    frames.append(frame(Out.EXECUTION_DATA_END, 1, req_id))
    s.send(frames)


def req_ids(s: Session, f: list[str]) -> None:
    """reqIds (msg 8): nextValidId (9)."""
    s.send([frame(Out.NEXT_VALID_ID, 1, s.sim.next_order_id)])


def req_global_cancel(s: Session, f: list[str]) -> None:
    """reqGlobalCancel (msg 58)."""
    s.sim.book.cancel_all()
