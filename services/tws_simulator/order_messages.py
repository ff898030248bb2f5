"""Encoders for the order messages whose layouts are long and version-dependent.

Field lists follow IB's decoder (``processOpenOrder``, ``processCompletedOrderMsg``,
``processExecutionDataMsg``) for the negotiated version one-for-one; a single
missing field shifts everything after it and breaks the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .contracts import Instrument
from .protocol import Out, frame
from .versions import (
    AUTO_CANCEL_PARENT,
    DURATION,
    FA_PROFILE_DESUPPORT,
    PEGBEST_PEGMID_OFFSETS,
    PENDING_PRICE_REVISION,
    POST_TO_ATS,
)

UNSET_DOUBLE = "1.7976931348623157E308"


class OrderStatus(StrEnum):
    PRE_SUBMITTED = "PreSubmitted"
    SUBMITTED = "Submitted"
    FILLED = "Filled"
    CANCELLED = "Cancelled"

    @property
    def done(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.CANCELLED)


@dataclass(slots=True)
class SimOrder:
    """An order as the simulated exchange holds it."""

    client_id: int
    order_id: int
    perm_id: int
    inst: Instrument
    action: str  # BUY | SELL
    qty: float
    order_type: str  # LMT | MKT
    lmt_price: float | None
    tif: str
    account: str
    order_ref: str
    status: OrderStatus = OrderStatus.SUBMITTED
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    completed_time: str = ""

    @property
    def signed_qty(self) -> float:
        return self.qty if self.action == "BUY" else -self.qty


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill, kept for reqExecutions and commission reports."""

    order: SimOrder
    exec_id: str
    time: str  # "YYYYMMDD HH:MM:SS UTC"
    qty: float
    price: float
    commission: float
    realized: float | None  # None when the fill opened a position


def _lmt(order: SimOrder) -> object:
    return order.lmt_price if order.lmt_price is not None else ""


def _fa_profile(version: int) -> list[object]:
    """faProfile follows faPercentage until FA_PROFILE_DESUPPORT (177)."""
    return [""] if version < FA_PROFILE_DESUPPORT else []


def _peg_offsets(version: int) -> list[object]:
    """minTradeQty, minCompeteSize, competeAgainstBestOffset, midOffsetAtWhole/Half (170+)."""
    return [""] * 5 if version >= PEGBEST_PEGMID_OFFSETS else []


def _open_order_tail(version: int) -> list[object]:
    """The fields after usePriceMgmtAlgo, each behind its own version gate."""
    out: list[object] = []
    if version >= DURATION:
        out.append("")
    if version >= POST_TO_ATS:
        out.append("")
    if version >= AUTO_CANCEL_PARENT:
        out.append(0)
    return out + _peg_offsets(version)


def open_order(o: SimOrder, version: int) -> bytes:
    """openOrder (msg 5): no version field from ORDER_CONTAINER (145) on."""
    head: list[object] = [
        Out.OPEN_ORDER,
        o.order_id,
        *o.inst.core_fields(),
        o.action,
        o.qty,
        o.order_type,
        _lmt(o),
        "",
        o.tif,
        "",
        o.account,
        "",
        0,
        o.order_ref,
        o.client_id,
        o.perm_id,
        0,
        0,
        0,
        "",
        "",
        "",
        "",
        "",
    ]
    # modelCode .. deltaNeutralAuxPrice (29)
    middle: list[object] = [
        "",
        "",
        "",
        "",
        "",
        0,
        "",
        -1,
        0,
        "",
        "",
        "",
        "",
        "",
        "",
        0,
        0,
        0,
        "",
        0,
        0,
        0,
        "",
        0,
        0,
        "",
        0,
        "",
        "",
    ]
    # continuousUpdate .. comboLegsDescrip (7), 0 legs, 0 order legs, 0 smart params,
    # scale sizes + increment, hedgeType, optOutSmartRouting .. dncPresent, algoStrategy
    tail: list[object] = [0, 0, "", "", "", "", "", 0, 0, 0, "", "", "", "", 0, "", "IB", 0, 0, ""]
    state: list[object] = [0, 0, o.status.value, *([""] * 14), 0, 0]
    # numConditions, adjustedOrderType .. usePriceMgmtAlgo (16)
    rest: list[object] = [0, "", "", "", "", "", "", "", 0, "", "", "", "", 0, 0, 0, 0]
    return frame(
        *head,
        *_fa_profile(version),
        *middle,
        *tail,
        *state,
        *rest,
        *_open_order_tail(version),
    )


def completed_order(o: SimOrder, version: int) -> bytes:
    """completedOrder (msg 101) for reqCompletedOrders."""
    head: list[object] = [
        Out.COMPLETED_ORDER,
        *o.inst.core_fields(),
        o.action,
        o.qty,
        o.order_type,
        _lmt(o),
        "",
        o.tif,
        "",
        o.account,
        "",
        0,
        o.order_ref,
        o.perm_id,
        0,
        0,
        0,
        "",
        "",
        "",
        "",
    ]
    # modelCode .. deltaNeutralAuxPrice (23)
    middle: list[object] = [
        "",
        "",
        "",
        "",
        "",
        0,
        "",
        -1,
        "",
        "",
        "",
        "",
        "",
        "",
        0,
        0,
        "",
        0,
        0,
        "",
        0,
        "",
        "",
    ]
    # continuousUpdate .. comboLegsDescrip (5), legs 0, order legs 0, params 0,
    # scale (3), hedgeType, clearingAccount .. dncPresent (4), algoStrategy
    tail: list[object] = [0, 0, "", "", "", 0, 0, 0, "", "", "", "", "", "IB", 0, 0, ""]
    state: list[object] = [0, o.status.value, 0, 0, 0]  # solicited..randomizePrice, numConds
    final: list[object] = [
        "",
        "",
        "",
        0,
        0,
        "",
        o.filled,
        0,
        0,
        "",
        0,
        0,
        "",
        o.completed_time,
        o.status.value,
    ]
    return frame(
        *head, *_fa_profile(version), *middle, *tail, *state, *final, *_peg_offsets(version)
    )


def order_status(o: SimOrder) -> bytes:
    """orderStatus (msg 3): no version field at server version >= 166."""
    remaining = max(o.qty - o.filled, 0.0)
    return frame(
        Out.ORDER_STATUS,
        o.order_id,
        o.status.value,
        o.filled,
        remaining,
        o.avg_fill_price,
        o.perm_id,
        0,
        o.last_fill_price,
        o.client_id,
        "",
        0.0,
    )


def exec_details(req_id: int, e: Execution, version: int) -> bytes:
    """execDetails (msg 11); pendingPriceRevision from PENDING_PRICE_REVISION (178)."""
    o = e.order
    side = "BOT" if o.action == "BUY" else "SLD"
    revision: list[object] = [0] if version >= PENDING_PRICE_REVISION else []
    return frame(
        Out.EXECUTION_DATA,
        req_id,
        o.order_id,
        *o.inst.core_fields(),
        e.exec_id,
        e.time,
        o.account,
        "SMART" if o.inst.exchange == "SMART" else o.inst.exchange,
        side,
        e.qty,
        e.price,
        o.perm_id,
        o.client_id,
        0,
        o.filled,
        o.avg_fill_price,
        o.order_ref,
        "",
        "",
        "",
        2,
        *revision,
    )


def commission_report(e: Execution) -> bytes:
    """commissionReport (msg 59); realizedPNL is IB's UNSET double for opening fills."""
    realized = UNSET_DOUBLE if e.realized is None else round(e.realized, 2)
    return frame(
        Out.COMMISSION_REPORT, 1, e.exec_id, round(e.commission, 2), "USD", realized, "", ""
    )
