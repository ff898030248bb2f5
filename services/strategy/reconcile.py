"""Ledger versus executor: the positions we booked against those the account reports.

Two books, each compared with the fills that can appear in it: the broker's
account (``simulated=False`` snapshots) holds only what IB executed
(``simulated=False`` fills); the gateway's simulated book (``simulated=True``
snapshots, account id ``...-SIM``) holds only simulated fills. A fill and the
account snapshot that includes it race each other, so a difference must persist
for ``grace_s`` before it is an alert; when it clears, an info alert says so.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from shared.schemas import AccountSnapshot, Alert, AlertSeverity, AlertState


@dataclass(frozen=True, slots=True)
class Mismatch:
    key: str
    ledger_qty: int
    account_qty: int


def compare(ledger: dict[str, int], account: AccountSnapshot) -> list[Mismatch]:
    """Every contract whose quantity differs (sorted by key)."""
    broker: dict[str, int] = {}
    for p in account.positions:
        broker[p.contract.key] = broker.get(p.contract.key, 0) + p.quantity
    keys = sorted(set(ledger) | set(broker))
    return [
        Mismatch(k, ledger.get(k, 0), broker.get(k, 0))
        for k in keys
        if ledger.get(k, 0) != broker.get(k, 0)
    ]


class Reconciler:
    """Turns comparisons into alerts: one when a difference persists, one when it clears."""

    def __init__(self, grace_s: float = 3.0) -> None:
        self.grace_s = grace_s
        self.mismatches: list[Mismatch] = []
        self._since: float | None = None
        self._alerted = False
        self._opened_at = 0.0
        self.checks = 0

    def observe(self, mismatches: list[Mismatch], now: float) -> Alert | None:
        self.checks += 1
        if mismatches != self.mismatches:
            self.mismatches = mismatches
            self._since = now if mismatches else None
            if not mismatches and self._alerted:
                self._alerted = False
                return Alert(
                    code="reconcile",
                    severity=AlertSeverity.INFO,
                    message="ledger and broker account agree again",
                    source="strategy",
                    key="reconcile",
                    state=AlertState.CLOSED,
                    opened_at=self._opened_at,
                )
            self._alerted = False
        due = self._since is not None and now - self._since >= self.grace_s
        if mismatches and not self._alerted and due:
            self._alerted = True
            self._opened_at = time.time()  # wall clock: the notifier says "after 3 m 12 s"
            return Alert(
                key="reconcile",
                state=AlertState.OPEN,
                opened_at=self._opened_at,
                code="reconcile",
                severity=AlertSeverity.CRITICAL,
                message=f"ledger and broker account disagree on {len(mismatches)} position(s)",
                source="strategy",
                details={
                    m.key: f"ledger {m.ledger_qty}, account {m.account_qty}" for m in mismatches
                },
            )
        return None

    @property
    def status(self) -> str:
        return "ok" if not self.mismatches else f"mismatch ({len(self.mismatches)})"


class _Held(Protocol):
    qty: int
    simulated: bool


@dataclass
class BookReconciler:
    """One Reconciler per book (broker, simulated); a snapshot is checked against its own."""

    grace_s: float = 3.0
    broker: Reconciler = field(init=False)
    simulated: Reconciler = field(init=False)

    def __post_init__(self) -> None:
        self.broker = Reconciler(self.grace_s)
        self.simulated = Reconciler(self.grace_s)

    def observe(
        self, account: AccountSnapshot, positions: Mapping[str, _Held], now: float
    ) -> Alert | None:
        side = {k: h.qty for k, h in positions.items() if h.simulated == account.simulated}
        book = self.simulated if account.simulated else self.broker
        alert = book.observe(compare(side, account), now)
        if alert is not None and account.simulated:
            alert = Alert(
                code=alert.code,
                severity=alert.severity,
                message=alert.message.replace("broker account", "simulated book"),
                source=alert.source,
                details={**alert.details, "account": account.account},
                key="reconcile:simulated",
                state=alert.state,
                opened_at=alert.opened_at,
            )
        return alert

    @property
    def checks(self) -> int:
        return self.broker.checks + self.simulated.checks

    @property
    def mismatches(self) -> list[Mismatch]:
        return self.broker.mismatches + self.simulated.mismatches

    @property
    def status(self) -> str:
        n = len(self.mismatches)
        return "ok" if not n else f"mismatch ({n})"
