"""The reconcile after every (re)connect: what IB did while we were away, before trading.

Runs while the gateway state is SYNCING (connection.py publishes CONNECTED only
after it succeeded):

1. executions (reqExecutions, msg 7): fills we have not published yet, each once
   (guarded by its exec id: ``IbExecutor.sync``);
2. open orders (reqOpenOrders, msg 5, with reqCompletedOrders, msg 99, for IB's final
   status): a routed order our journal holds that IB no longer works is closed in
   the journal (CANCELLED / REJECTED with IB's status) and reported; an order IB
   works under our client id that the journal does not hold is reported (critical:
   its fills would reach no ledger);
3. positions (reqPositions, msg 61): a fresh account snapshot at once, so the
   strategy compares the broker's positions with its ledger before new entries.

Every finding is a ``reconcile`` alert on ``sys:alerts`` with a stable key.
Simulated orders need no step 1-2: they fill only while we are connected.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from services.gateway_adapter.account import AccountReporter
from services.gateway_adapter.connection import IbConnection
from services.gateway_adapter.ib_orders import CANCELLED, IbExecutor
from services.gateway_adapter.pacing import TokenBucket
from shared.bus import Publisher
from shared.contract import SYS_ALERTS
from shared.logs import get_logger
from shared.schemas import Alert, AlertSeverity, OrderEventKind

log = get_logger("optbot.gateway_adapter.reconcile")

SOURCE = "gateway_adapter"


@dataclass(slots=True)
class SyncReport:
    """What one reconcile found (its summary becomes the CONNECTED reason)."""

    fills: int = 0
    closed: list[str] = field(default_factory=list)  # journal orders IB no longer works
    unknown: list[str] = field(default_factory=list)  # IB orders the journal does not hold
    positions: int = 0

    def summary(self) -> str:
        return (
            f"{self.fills} missed fill(s), {len(self.closed)} order(s) closed, "
            f"{len(self.unknown)} unknown at IB, {self.positions} position(s)"
        )


class Reconciler:
    """One reconcile per logon; raises ConnectionError / TimeoutError for a retry."""

    def __init__(
        self,
        *,
        conn: IbConnection,
        executor: IbExecutor | None,
        account: AccountReporter,
        publisher: Publisher,
        pacer: TokenBucket,
        timeout_s: float,
    ) -> None:
        self._conn = conn
        self._executor = executor
        self._account = account
        self._pub = publisher
        self._pacer = pacer
        self._timeout = timeout_s
        self.last: SyncReport | None = None
        self.runs = 0

    async def run(self) -> str:
        report = SyncReport()
        if self._executor is not None:
            report.fills = await self._executor.sync(self._timeout)
            await self._orders(self._executor, report)
        await self._pacer.take()
        positions = await asyncio.wait_for(self._conn.ib.reqPositionsAsync(), self._timeout)
        report.positions = sum(1 for p in positions if p.position)
        self._account.publish()  # the strategy compares it with its ledger at once
        self.last, self.runs = report, self.runs + 1
        log.info("reconciled", **{k: str(v) for k, v in _fields(report).items()})
        return report.summary()

    async def _orders(self, executor: IbExecutor, report: SyncReport) -> None:
        ours = set(executor.orders)  # placed before the request: IB's answer includes them
        ib = self._conn.ib
        await self._pacer.take()
        working = await asyncio.wait_for(ib.reqOpenOrdersAsync(), self._timeout)
        refs = {t.order.orderRef: t for t in working if not t.isDone()}
        missing = sorted(cid for cid in ours if cid not in refs and cid in executor.orders)
        final: dict[str, str] = {}
        if missing:
            await self._pacer.take()
            done = await asyncio.wait_for(ib.reqCompletedOrdersAsync(True), self._timeout)
            final = {t.order.orderRef: t.orderStatus.status for t in done}
        for cid in missing:
            await self._close(executor, cid, final.get(cid, ""), report)
        for trade in working:  # not ``refs``: orders without an orderRef would collapse
            if not trade.isDone() and trade.order.orderRef not in executor.orders:
                self._unknown(trade.order.orderRef, trade, report)

    async def _close(self, executor: IbExecutor, cid: str, status: str, report: SyncReport) -> None:
        """Our journal holds ``cid`` working; IB does not work it any more."""
        if status == "Filled":  # its execution is still on the way: leave it to the fill
            self._alert(
                f"reconcile:order:{cid}",
                AlertSeverity.WARNING,
                f"order {cid} filled at IB while we were away; its fill is not reported yet",
                {"client_order_id": cid, "ib_status": status},
            )
            return
        kind = OrderEventKind.REJECTED if status == "Inactive" else OrderEventKind.CANCELLED
        was = status if status in CANCELLED or status == "Inactive" else "no longer working"
        reason = f"reconcile: order {was} at IB while we were disconnected"
        if not await executor.close(cid, kind, reason):
            return
        report.closed.append(cid)
        self._alert(
            f"reconcile:order:{cid}",
            AlertSeverity.WARNING,
            f"order {cid} was {was} at IB while we were away: closed in the journal",
            {"client_order_id": cid, "ib_status": status or "absent", "event": kind.value},
        )

    def _unknown(self, ref: str, trade: Any, report: SyncReport) -> None:
        """IB works an order under our client id that the journal does not hold."""
        name = ref or f"ib-{trade.order.orderId}"
        report.unknown.append(name)
        self._alert(
            f"reconcile:order:{name}",
            AlertSeverity.CRITICAL,
            f"IB works order {name} ({trade.order.action} {trade.order.totalQuantity} "
            f"{trade.contract.localSymbol or trade.contract.symbol}) that our journal does not "
            "hold: its fills would reach no ledger; cancel it in TWS or check",
            {"order_ref": ref, "ib_order_id": str(trade.order.orderId)},
        )

    def _alert(self, key: str, severity: AlertSeverity, message: str, details: Any) -> None:
        alert = Alert(
            code="reconcile",
            severity=severity,
            message=message,
            source=SOURCE,
            details=details,
            key=key[:128],
        )
        self._pub.add(SYS_ALERTS, alert, key=alert.code)
        log.warning("reconcile", key=key, message=message)


def _fields(r: SyncReport) -> dict[str, Any]:
    return {
        "fills": r.fills,
        "closed": ",".join(r.closed),
        "unknown": ",".join(r.unknown),
        "positions": r.positions,
    }
